//! `charter api …`: publish an API from a TOML description (the fields of `POST /v1/apis`),
//! republish it, list and show APIs. See `examples/orders.toml`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Map, Value};

use super::{PageArgs, connect, emit_named, items, next_page_hint};
use crate::GlobalArgs;
use crate::names::Names;
use crate::table::{Table, field, print_detail, short_time};

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Publish an API described in a TOML file.
    Publish {
        /// TOML with name, audience, upstream, owner (optional) and [[operations]].
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Republish an API (its owner): operations reclassified, added or removed.
    Republish {
        id: String,
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// List APIs.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one API with its operations.
    Show { id: String },
}

const ORDER: &[&str] = &[
    "id",
    "name",
    "audience",
    "upstream",
    "owner",
    "revision",
    "created_at",
    "updated_at",
];

pub async fn run(global: &GlobalArgs, cmd: ApiCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiCmd::Publish { file } => {
            let body = read_toml(&file)?;
            let client = connect(global)?;
            let reply = client.post(&["v1", "apis"], &body).await?;
            emit_named(global, &client, &reply, &["owner"], print_api).await?;
        }
        ApiCmd::Republish { id, file } => {
            let body = read_toml(&file)?;
            let client = connect(global)?;
            let reply = client.put(&["v1", "apis", &id], &body).await?;
            emit_named(global, &client, &reply, &["owner"], print_api).await?;
        }
        ApiCmd::List { page } => {
            let client = connect(global)?;
            let reply = client.get(&["v1", "apis"], &page.query()).await?;
            emit_named(global, &client, &reply, &["owner"], |r, names| {
                let mut t =
                    Table::new(&["ID", "NAME", "AUDIENCE", "OWNER", "OPS", "REV", "UPDATED"]);
                for a in items(r) {
                    let ops = a
                        .get("operations")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    t.row(vec![
                        field(a, "id"),
                        field(a, "name"),
                        field(a, "audience"),
                        names.field(a, "owner"),
                        ops.to_string(),
                        field(a, "revision"),
                        short_time(a, "updated_at"),
                    ]);
                }
                t.print();
                next_page_hint(r);
            })
            .await?;
        }
        ApiCmd::Show { id } => {
            let client = connect(global)?;
            let reply = client.get(&["v1", "apis", &id], &[]).await?;
            emit_named(global, &client, &reply, &["owner"], print_api).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_api(api: &Value, names: &Names) {
    print_detail(&names.annotate(api, &["owner"]), ORDER, &["operations"]);
    let mut t = Table::new(&["SCOPE", "METHOD", "PATH", "DATA CLASS", "REGION"]);
    for op in api
        .get("operations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        t.row(vec![
            field(op, "scope"),
            field(op, "method"),
            field(op, "path"),
            field(op, "data_class"),
            field(op, "region"),
        ]);
    }
    println!();
    t.print();
}

/// Reads a TOML file into the JSON body of `POST /v1/apis`.
pub fn read_toml(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    Ok(toml_to_json(toml::Value::Table(table)))
}

/// A TOML error on one line: `FILE line N: message`.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let line = match e.span() {
        Some(span) => {
            let end = span.start.min(text.len());
            let n = text.as_bytes()[..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!(" line {n}")
        }
        None => String::new(),
    };
    anyhow::anyhow!("{}{line}: {}", path.display(), e.message().trim())
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_example_converts_to_the_publish_body() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders.toml");
        let body = read_toml(&path).unwrap();
        assert_eq!(body["name"], "orders");
        assert_eq!(body["audience"], "https://api.example.com/orders");
        let ops = body["operations"].as_array().unwrap();
        assert!(ops.len() >= 3);
        assert_eq!(
            ops[0],
            json!({"scope": "orders:read", "method": "GET", "path": "/orders/{id}",
                   "data_class": "confidential", "region": "eu"})
        );
    }

    #[test]
    fn toml_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\naudience = \n").unwrap();
        let err = read_toml(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
