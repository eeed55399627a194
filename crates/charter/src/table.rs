//! Plain-text output for people: a table with a header row and padded columns, a
//! `key: value` block for one object, and the rendering of JSON values into cells. Control
//! characters coming from the server are replaced, so a reply cannot drive the terminal.

use std::fmt::Write;

use serde_json::Value;

/// Columns separated by two spaces, each as wide as its widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| clean(&c)).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str("  ");
                }
                let _ = write!(line, "{cell:<width$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// One object as `key: value` lines: the keys in `order` first, then any others the server
/// sent (sorted), except those in `skip`.
pub fn render_detail(v: &Value, order: &[&str], skip: &[&str]) -> String {
    let Some(map) = v.as_object() else {
        return format!("{}\n", cell(v));
    };
    let mut keys: Vec<&str> = order
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    let mut rest: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !order.contains(k) && !skip.contains(k))
        .collect();
    rest.sort_unstable();
    keys.extend(rest);
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for key in keys {
        let label = format!("{key}:");
        let value = map.get(key).map_or_else(String::new, cell);
        let _ = writeln!(out, "{label:<width$} {}", clean(&value));
    }
    out
}

pub fn print_detail(v: &Value, order: &[&str], skip: &[&str]) {
    print!("{}", render_detail(v, order, skip));
}

/// A JSON value as table text: `-` for null, lists joined with commas, objects compact.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            if items.is_empty() {
                "-".into()
            } else {
                items.iter().map(cell).collect::<Vec<_>>().join(",")
            }
        }
        other => other.to_string(),
    }
}

/// The cell for `v[key]`.
pub fn field(v: &Value, key: &str) -> String {
    v.get(key).map_or_else(|| "-".into(), cell)
}

/// An RFC 3339 timestamp as `YYYY-MM-DD HH:MM` UTC; anything else as it is.
pub fn short_time(v: &Value, key: &str) -> String {
    time_as(v, key, "%Y-%m-%d %H:%MZ")
}

/// An RFC 3339 timestamp as `YYYY-MM-DD HH:MM:SS` UTC; anything else as it is.
pub fn time_secs(v: &Value, key: &str) -> String {
    time_as(v, key, "%Y-%m-%d %H:%M:%SZ")
}

fn time_as(v: &Value, key: &str, format: &str) -> String {
    match v.get(key).and_then(Value::as_str) {
        Some(s) => match s.parse::<jiff::Timestamp>() {
            Ok(ts) => ts.strftime(format).to_string(),
            Err(_) => s.to_owned(),
        },
        None => "-".into(),
    }
}

/// Replaces control characters (escape sequences, newlines) with spaces.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pads_columns_and_trims_line_ends() {
        let mut t = Table::new(&["ID", "STATUS", "NOTE"]);
        t.row(vec!["grt_1".into(), "active".into(), String::new()]);
        t.row(vec!["grt_22222".into(), "pending".into(), "two".into()]);
        assert_eq!(
            t.render(),
            "ID         STATUS   NOTE\ngrt_1      active\ngrt_22222  pending  two\n"
        );
    }

    #[test]
    fn an_empty_table_prints_its_headers() {
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn control_characters_are_neutralised() {
        let mut t = Table::new(&["X"]);
        t.row(vec!["a\u{1b}[31mb\nc".into()]);
        assert_eq!(t.render(), "X\na [31mb c\n");
    }

    #[test]
    fn cells_render_json() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["eu", "us"])), "eu,us");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(
            cell(&json!({"incident": "INC-1"})),
            r#"{"incident":"INC-1"}"#
        );
        assert_eq!(cell(&json!(3)), "3");
    }

    #[test]
    fn details_follow_the_given_order_then_the_rest() {
        let v = json!({"b": 1, "id": "x", "z": null, "secret_list": [{"a": 1}]});
        assert_eq!(
            render_detail(&v, &["id", "missing"], &["secret_list"]),
            "id: x\nb:  1\nz:  -\n"
        );
    }

    #[test]
    fn short_times() {
        let v = json!({"at": "2026-11-30T23:05:59.123Z", "odd": "soon"});
        assert_eq!(short_time(&v, "at"), "2026-11-30 23:05Z");
        assert_eq!(time_secs(&v, "at"), "2026-11-30 23:05:59Z");
        assert_eq!(short_time(&v, "odd"), "soon");
        assert_eq!(short_time(&v, "none"), "-");
    }
}
