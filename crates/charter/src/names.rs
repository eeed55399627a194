//! Names beside ids in what the CLI prints for people: `Acme Logistics (prt_…)` where a
//! table or a detail view refers to a partner, an API or a principal.
//!
//! A command asks for the names of the references under some keys of its reply; each kind
//! that occurs there is listed once (every page: a partial list would silently leave ids
//! bare), so one invocation makes at most one list walk per kind. A kind the caller may not
//! list (principals are the admin's) or a failed lookup leaves the bare id: names are a
//! convenience and never fail a command. `--json` output does not pass through here.

use std::collections::{BTreeSet, HashMap};

use charter_core::{ApiId, PartnerId, PrincipalId};
use serde_json::{Map, Value};

use crate::client::{Client, ClientError};
use crate::table;

/// The kinds of object whose names the CLI shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Partner,
    Api,
    Principal,
}

impl Kind {
    /// The kind of a well-formed id, if it is one with a name.
    fn of(id: &str) -> Option<Self> {
        if PartnerId::parse(id).is_ok() {
            Some(Self::Partner)
        } else if ApiId::parse(id).is_ok() {
            Some(Self::Api)
        } else if PrincipalId::parse(id).is_ok() {
            Some(Self::Principal)
        } else {
            None
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Self::Partner => "partners",
            Self::Api => "apis",
            Self::Principal => "principals",
        }
    }
}

/// The largest page the admin API serves.
const PAGE: u32 = 500;

/// Names by id, for one invocation.
#[derive(Debug, Default)]
pub struct Names {
    names: HashMap<String, String>,
}

impl Names {
    /// The names of the partners, APIs and principals found under any of `keys` (at any
    /// depth) in `reply`.
    pub async fn lookup(client: &Client, reply: &Value, keys: &[&str]) -> Self {
        let mut kinds = BTreeSet::new();
        collect(reply, keys, &mut kinds);
        let mut names = HashMap::new();
        for kind in kinds {
            if let Ok(found) = list_all(client, kind).await {
                names.extend(found);
            }
        }
        Self { names }
    }

    #[cfg(test)]
    fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            names: pairs
                .iter()
                .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
                .collect(),
        }
    }

    /// `name (id)` when the name is known, else the id.
    pub fn label(&self, id: &str) -> String {
        match self.names.get(id) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_owned(),
        }
    }

    /// The table cell for `v[key]`: a reference as `name (id)`, a list of references
    /// joined with `, `, anything else as [`table::field`] renders it.
    pub fn field(&self, v: &Value, key: &str) -> String {
        match v.get(key) {
            Some(value) => self.cell(value),
            None => table::field(v, key),
        }
    }

    fn cell(&self, value: &Value) -> String {
        match value {
            Value::String(id) => self.label(id),
            Value::Array(list) if !list.is_empty() && list.iter().all(Value::is_string) => list
                .iter()
                .filter_map(Value::as_str)
                .map(|id| self.label(id))
                .collect::<Vec<_>>()
                .join(", "),
            other => table::cell(other),
        }
    }

    /// A copy of the object `v` whose members `keys` read as [`Names::field`] renders them,
    /// for a `key: value` view.
    pub fn annotate(&self, v: &Value, keys: &[&str]) -> Value {
        let Some(map) = v.as_object() else {
            return v.clone();
        };
        let mut out = Map::new();
        for (k, value) in map {
            let value = if keys.contains(&k.as_str()) && !value.is_null() {
                Value::String(self.cell(value))
            } else {
                value.clone()
            };
            out.insert(k.clone(), value);
        }
        Value::Object(out)
    }
}

/// The kinds of the ids found under `keys` anywhere in `v`.
fn collect(v: &Value, keys: &[&str], kinds: &mut BTreeSet<Kind>) {
    match v {
        Value::Object(map) => {
            for (k, value) in map {
                if keys.contains(&k.as_str()) {
                    ids_in(value, kinds);
                }
                collect(value, keys, kinds);
            }
        }
        Value::Array(list) => {
            for item in list {
                collect(item, keys, kinds);
            }
        }
        _ => {}
    }
}

/// The kinds of a reference or a list of references.
fn ids_in(v: &Value, kinds: &mut BTreeSet<Kind>) {
    match v {
        Value::String(id) => kinds.extend(Kind::of(id)),
        Value::Array(list) => {
            kinds.extend(list.iter().filter_map(Value::as_str).filter_map(Kind::of))
        }
        _ => {}
    }
}

/// Every `(id, name)` of a kind, page by page.
async fn list_all(client: &Client, kind: Kind) -> Result<Vec<(String, String)>, ClientError> {
    let mut found = Vec::new();
    let mut after = String::new();
    loop {
        let page = client
            .get(
                &["v1", kind.collection()],
                &[("limit", PAGE.to_string()), ("after", after.clone())],
            )
            .await?;
        for item in crate::commands::items(&page) {
            let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
            if let (Some(id), Some(name)) = (text("id"), text("name")) {
                found.push((id, name));
            }
        }
        match page.get("next").and_then(Value::as_str) {
            // A cursor that does not move would loop forever.
            Some(next) if !next.is_empty() && next != after => after = next.to_owned(),
            _ => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACME: &str = "prt_01kb0000000000000000000000";
    const ORDERS: &str = "api_01kb0000000000000000000000";
    const ALICE: &str = "prn_01kb0000000000000000000000";
    const BOB: &str = "prn_01kb0000000000000000000001";

    fn names() -> Names {
        Names::from_pairs(&[
            (ACME, "Acme Logistics"),
            (ORDERS, "orders"),
            (ALICE, "alice"),
        ])
    }

    #[test]
    fn known_ids_get_their_name_unknown_ones_stay_bare() {
        let n = names();
        assert_eq!(n.label(ACME), format!("Acme Logistics ({ACME})"));
        assert_eq!(n.label(BOB), BOB);
        let grant =
            json!({ "partner": ACME, "api": ORDERS, "owners": [ALICE, BOB], "none": null, "n": 3 });
        assert_eq!(n.field(&grant, "api"), format!("orders ({ORDERS})"));
        assert_eq!(n.field(&grant, "owners"), format!("alice ({ALICE}), {BOB}"));
        assert_eq!(n.field(&grant, "none"), "-");
        assert_eq!(n.field(&grant, "n"), "3");
        assert_eq!(n.field(&grant, "missing"), "-");
        assert_eq!(n.field(&json!({ "owners": [] }), "owners"), "-");
    }

    #[test]
    fn annotate_rewrites_only_the_keys_given() {
        let v = json!({ "id": ACME, "partner": ACME, "owners": [ALICE], "ended_at": null });
        let out = names().annotate(&v, &["partner", "owners", "ended_at"]);
        assert_eq!(
            out,
            json!({ "id": ACME, "partner": format!("Acme Logistics ({ACME})"),
                    "owners": format!("alice ({ALICE})"), "ended_at": null })
        );
    }

    #[test]
    fn only_the_kinds_under_the_keys_are_looked_up() {
        let reply = json!({ "items": [
            { "id": "grt_01kb0000000000000000000000", "partner": ACME,
              "record": { "actor": ALICE, "details": { "api": ORDERS } } },
        ]});
        let mut kinds = BTreeSet::new();
        collect(&reply, &["partner", "actor"], &mut kinds);
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            [Kind::Partner, Kind::Principal]
        );
        let mut kinds = BTreeSet::new();
        collect(&reply, &["id", "target"], &mut kinds);
        assert!(kinds.is_empty(), "a grant id has no name to look up");
        assert_eq!(Kind::of("prt_short"), None);
        assert_eq!(Kind::of("chc_0f"), None);
    }
}
