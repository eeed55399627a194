//! The evidence timeline: a signed bundle (its JSON form) as a page for people. Each row is
//! one statement, told from its `facts` — what the offline verifier checks against the cited
//! events — rather than from its free `text`.
//!
//! Names stand beside ids only where the bundle carries them: its signed `names` map (the
//! partner, principals, APIs and grants as the server knew them when it made the bundle),
//! else the `after` documents of the cited events (an API's name from its publish event, a
//! grant's use case, partner and API from its own events); nothing is looked up or invented. Lists read as text (`eu, us`). A row's time is its
//! facts' `at` (or `first_at`); statements whose facts carry no time (`reach`,
//! `api_definition`) take the time of the event they cite. Rows are in time order.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use charter_evidence::action;
use jiff::Timestamp;
use serde_json::Value;

use super::{Who, plain};

#[derive(Template)]
#[template(path = "evidence.html")]
pub struct EvidencePage {
    subject_kind: String,
    subject_id: String,
    /// For a grant bundle: the grant's partner, API and use case, as its events record them.
    grant: Option<GrantHeader>,
    /// For a partner bundle: the partner.
    partner: Option<Who>,
    issuer: String,
    generated_at: String,
    head_seq: String,
    head_hash: String,
    kid: String,
    /// A partner bundle spans grants: each row names its grant.
    show_grant: bool,
    rows: Vec<Row>,
}

struct GrantHeader {
    partner: Who,
    api: Who,
    use_case: String,
}

struct Row {
    when: String,
    kind: String,
    grant: Option<Who>,
    what: What,
    events: String,
}

/// One statement as a sentence.
#[derive(Debug, Clone, PartialEq, Template)]
#[template(path = "statement.html")]
enum What {
    Requested {
        actor: Who,
        verb: &'static str,
        use_case: Option<String>,
        at: String,
    },
    Emergency {
        incident: String,
        verb: &'static str,
        at: String,
    },
    Decided {
        actor: Who,
        verb: &'static str,
        at: String,
        justification: Option<String>,
        ticket: Option<String>,
    },
    Review {
        actor: Who,
        decision: String,
        at: String,
        justification: Option<String>,
    },
    Removed {
        actor: Who,
        action: String,
        at: String,
        reason: Option<String>,
    },
    Reach {
        scopes: String,
        ceiling: String,
        regions: String,
        environments: String,
        time_window: Option<String>,
        transfer_basis: Option<String>,
    },
    Usage {
        allowed: String,
        denied: String,
        /// `between … and …`, empty without calls.
        span: Option<(String, String)>,
        tokens: String,
        records: String,
    },
    Credential {
        credential: String,
        verb: String,
        at: String,
    },
    ApiDefinition {
        api: Who,
        revision: String,
        operations: usize,
    },
    Offboarding {
        status: String,
        passed: String,
        total: u64,
        at: String,
    },
    /// A kind this page does not know: its text as the bundle states it.
    Other { text: String },
}

/// A template's output is already escaped.
impl askama::filters::HtmlSafe for What {}

/// A cited audit record, as much of it as the page needs.
struct Event {
    at: String,
    action: String,
    target: String,
    after: Value,
}

/// What the cited events say about a grant.
struct GrantDoc {
    partner: String,
    api: String,
    use_case: String,
}

/// What the bundle's events say about names.
#[derive(Default)]
struct Known {
    /// Object id → name, from `after` documents carrying both.
    names: HashMap<String, String>,
    grants: HashMap<String, GrantDoc>,
}

impl Known {
    fn who(&self, id: &str) -> Who {
        Who {
            id: id.to_owned(),
            name: self.names.get(id).cloned(),
        }
    }

    fn grant(&self, id: &str) -> Who {
        Who {
            id: id.to_owned(),
            name: self.grants.get(id).map(|g| g.use_case.clone()),
        }
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The cited events by seq, and the names their `after` documents carry (later events win).
fn read_events(bundle: &Value) -> (BTreeMap<u64, Event>, Known) {
    let mut events = BTreeMap::new();
    let mut known = Known::default();
    // The bundle's own names first: the after documents below only fill gaps.
    for (id, name) in bundle["names"].as_object().into_iter().flatten() {
        if let Some(name) = text(name) {
            known.names.insert(id.clone(), name);
        }
    }
    for e in bundle["events"].as_array().into_iter().flatten() {
        let (Some(seq), Some(body)) = (e["seq"].as_u64(), e["body"].as_str()) else {
            continue;
        };
        let Ok(rec) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        let after = rec["details"]["after"].clone();
        if let (Some(id), Some(name)) = (text(&after["id"]), text(&after["name"])) {
            known.names.entry(id).or_insert(name);
        }
        if let (Some(id), Some(use_case)) = (text(&after["id"]), text(&after["use_case"])) {
            known.grants.insert(
                id,
                GrantDoc {
                    partner: text(&after["partner"]).unwrap_or_default(),
                    api: text(&after["api"]).unwrap_or_default(),
                    use_case,
                },
            );
        }
        events.insert(
            seq,
            Event {
                at: text(&rec["at"]).unwrap_or_default(),
                action: text(&rec["action"]).unwrap_or_default(),
                target: text(&rec["target"]).unwrap_or_default(),
                after,
            },
        );
    }
    (events, known)
}

fn credential_verb(action: &str) -> String {
    match action {
        action::CREDENTIAL_ISSUE => "issued",
        action::CREDENTIAL_ROTATE => "rotated",
        action::CREDENTIAL_REVOKE => "revoked",
        action::CREDENTIAL_EXPIRE => "expired",
        other => other,
    }
    .to_owned()
}

/// `{days, start, end, timezone}` as `mon, tue 08:00–18:00 Europe/Berlin`.
fn time_window(v: &Value) -> Option<String> {
    if !v.is_object() {
        return None;
    }
    Some(
        [
            plain(&v["days"]),
            format!("{}–{}", plain(&v["start"]), plain(&v["end"])),
            plain(&v["timezone"]),
        ]
        .join(" "),
    )
}

fn what(kind: &str, st: &Value, cited: &[&Event], known: &Known) -> What {
    let facts = &st["facts"];
    let at = || plain(&facts["at"]);
    let actor = || known.who(facts["actor"].as_str().unwrap_or_default());
    match kind {
        "requested" => What::Requested {
            actor: actor(),
            verb: if facts["action"] == action::GRANT_EMERGENCY_OPEN {
                "opened break-glass access"
            } else {
                "requested access"
            },
            use_case: st["grant"]
                .as_str()
                .and_then(|g| known.grants.get(g))
                .map(|g| g.use_case.clone()),
            at: at(),
        },
        "emergency" => What::Emergency {
            incident: plain(&facts["incident"]),
            verb: if cited
                .iter()
                .any(|e| e.action == action::GRANT_EMERGENCY_END)
            {
                "ended"
            } else {
                "opened"
            },
            at: at(),
        },
        "approved" | "rejected" => What::Decided {
            actor: actor(),
            verb: if kind == "approved" {
                "approved"
            } else {
                "rejected"
            },
            at: at(),
            justification: text(&facts["justification"]),
            ticket: text(&facts["ticket"]),
        },
        "review" => What::Review {
            actor: actor(),
            decision: plain(&facts["decision"]),
            at: at(),
            justification: text(&facts["justification"]),
        },
        "removed" => What::Removed {
            actor: actor(),
            action: plain(&facts["action"]),
            at: at(),
            reason: text(&facts["reason"]),
        },
        "reach" => What::Reach {
            scopes: plain(&facts["scopes"]),
            ceiling: plain(&facts["data_class_ceiling"]),
            regions: plain(&facts["regions"]),
            environments: if facts["environments"].is_null() {
                String::new()
            } else {
                plain(&facts["environments"])
            },
            time_window: time_window(&facts["time_window"]),
            transfer_basis: text(&facts["transfer_basis"]),
        },
        "usage" => What::Usage {
            allowed: plain(&facts["allowed"]),
            denied: plain(&facts["denied"]),
            span: text(&facts["first_at"]).zip(text(&facts["last_at"])),
            tokens: plain(&facts["tokens_issued"]),
            records: plain(&facts["records"]),
        },
        "credential" => What::Credential {
            credential: plain(&facts["credential"]),
            verb: credential_verb(facts["action"].as_str().unwrap_or_default()),
            at: at(),
        },
        "api_definition" => {
            let event = cited.first();
            let id = event
                .and_then(|e| text(&e.after["id"]))
                .or_else(|| event.map(|e| e.target.clone()))
                .unwrap_or_default();
            What::ApiDefinition {
                api: Who {
                    name: event
                        .and_then(|e| text(&e.after["name"]))
                        .or_else(|| known.names.get(&id).cloned()),
                    id,
                },
                revision: plain(&facts["revision"]),
                operations: facts["operations"].as_array().map_or(0, Vec::len),
            }
        }
        "offboarding" => {
            let count = |k: &str| facts[k].as_u64().unwrap_or(0);
            What::Offboarding {
                status: plain(&facts["status"]),
                passed: plain(&facts["checks_passed"]),
                total: count("checks_passed") + count("checks_failed"),
                at: at(),
            }
        }
        _ => What::Other {
            text: plain(&st["text"]),
        },
    }
}

/// A statement's time: its facts' `at` or `first_at`, else the earliest cited event's.
fn when(facts: &Value, cited: &[&Event]) -> Option<(Timestamp, String)> {
    let own = [&facts["at"], &facts["first_at"]]
        .into_iter()
        .find_map(|v| {
            v.as_str()
                .and_then(|s| Some((s.parse().ok()?, s.to_owned())))
        });
    own.or_else(|| {
        cited
            .iter()
            .filter_map(|e| Some((e.at.parse::<Timestamp>().ok()?, e.at.clone())))
            .min_by_key(|(t, _)| *t)
    })
}

impl EvidencePage {
    /// The page for a bundle in its JSON form.
    pub fn from_bundle(bundle: &Value) -> Self {
        let (events, known) = read_events(bundle);
        let subject_kind = plain(&bundle["subject"]["type"]);
        let subject_id = plain(&bundle["subject"]["id"]);
        let mut rows: Vec<(Option<Timestamp>, Row)> = Vec::new();
        for st in bundle["statements"].as_array().into_iter().flatten() {
            let kind = plain(&st["kind"]);
            let seqs: Vec<u64> = st["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            let cited: Vec<&Event> = seqs.iter().filter_map(|s| events.get(s)).collect();
            let (at, when) = match when(&st["facts"], &cited) {
                Some((t, s)) => (Some(t), s),
                None => (None, String::new()),
            };
            let grant = text(&st["grant"]).map(|g| known.grant(&g));
            let row = Row {
                when,
                what: what(&kind, st, &cited, &known),
                kind,
                grant,
                events: seqs
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            rows.push((at, row));
        }
        // In time order; a statement without a time goes last; ties keep the bundle's order.
        rows.sort_by_key(|(at, _)| at.unwrap_or(Timestamp::MAX));
        let is_grant = subject_kind == "grant";
        // The head: the last event, the bundle's evidence.issue record.
        let head = bundle["events"]
            .as_array()
            .and_then(|e| e.last())
            .cloned()
            .unwrap_or(Value::Null);
        Self {
            grant: known
                .grants
                .get(&subject_id)
                .filter(|_| is_grant)
                .map(|g| GrantHeader {
                    partner: known.who(&g.partner),
                    api: known.who(&g.api),
                    use_case: g.use_case.clone(),
                }),
            partner: (subject_kind == "partner").then(|| known.who(&subject_id)),
            show_grant: !is_grant,
            subject_kind,
            subject_id,
            issuer: plain(&bundle["issuer"]),
            generated_at: plain(&bundle["generated_at"]),
            head_seq: plain(&head["seq"]),
            head_hash: plain(&head["hash"]),
            kid: bundle["keys"]
                .as_array()
                .and_then(|k| k.last())
                .map(|k| plain(&k["kid"]))
                .unwrap_or_default(),
            rows: rows.into_iter().map(|(_, r)| r).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GRANT: &str = "grt_01JDZ0000000000000000000G1";
    const API: &str = "api_01JDZ0000000000000000000A1";
    const PARTNER: &str = "prt_01JDZ0000000000000000000P1";
    const ALICE: &str = "prn_01JDZ0000000000000000000A1";

    fn event(seq: u64, at: &str, action: &str, target: &str, details: Value) -> Value {
        let body = json!({ "seq": seq, "at": at, "actor": ALICE, "action": action,
                           "target": target, "reason": null, "details": details, "prev": "" });
        json!({ "seq": seq, "hash": "h", "body": body.to_string() })
    }

    fn bundle() -> Value {
        let grant_doc = json!({ "id": GRANT, "partner": PARTNER, "api": API,
                                "use_case": "Delivery <sync>", "scopes": ["orders:read", "orders:list"],
                                "data_class_ceiling": "confidential", "regions": ["eu", "us"],
                                "environments": ["production"], "time_window": null,
                                "transfer_basis": "SCC 2021" });
        json!({
            "format": "charter-evidence/2",
            "subject": { "type": "grant", "id": GRANT },
            "names": { PARTNER: "Acme <Logistics>", ALICE: "alice" },
            "issuer": "http://127.0.0.1:7600",
            "generated_at": "2026-11-30T12:00:00Z",
            "statements": [
                { "id": "st-1", "kind": "requested", "grant": GRANT, "text": "…",
                  "facts": { "actor": ALICE, "at": "2026-11-30T10:00:00Z", "action": "grant.request" }, "events": [2] },
                { "id": "st-2", "kind": "reach", "grant": GRANT, "text": "…",
                  "facts": { "scopes": ["orders:read", "orders:list"], "data_class_ceiling": "confidential",
                             "regions": ["eu", "us"], "environments": ["production"], "time_window": null,
                             "transfer_basis": "SCC 2021" }, "events": [2] },
                { "id": "st-3", "kind": "approved", "grant": GRANT, "text": "…",
                  "facts": { "actor": ALICE, "at": "2026-11-30T10:05:00Z",
                             "justification": "<script>alert(\"x\")</script>", "ticket": "CHG-1" }, "events": [3] },
                { "id": "st-4", "kind": "credential", "grant": GRANT, "text": "credential crd_1 issue on …",
                  "facts": { "credential": "crd_1", "action": "credential.issue", "at": "2026-11-30T10:06:00Z" }, "events": [4] },
                { "id": "st-5", "kind": "api_definition", "grant": GRANT, "text": "…",
                  "facts": { "revision": 1, "operations": [{}, {}] }, "events": [1] },
            ],
            "events": [
                event(1, "2026-11-29T09:00:00Z", "api.publish", API,
                      json!({ "after": { "id": API, "name": "orders", "revision": 1, "operations": [{}, {}] } })),
                event(2, "2026-11-30T10:00:00Z", "grant.request", GRANT, json!({ "after": grant_doc })),
                event(3, "2026-11-30T10:05:00Z", "grant.approve", GRANT,
                      json!({ "justification": "<script>alert(\"x\")</script>", "ticket": "CHG-1" })),
                event(4, "2026-11-30T10:06:00Z", "credential.issue", "crd_1", json!({})),
            ],
            "checkpoints": [],
            "keys": [{ "kid": "evk_1" }],
        })
    }

    #[test]
    fn every_row_has_its_time_and_rows_are_in_time_order() {
        let page = EvidencePage::from_bundle(&bundle());
        let rows: Vec<(&str, &str)> = page
            .rows
            .iter()
            .map(|r| (r.when.as_str(), r.kind.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("2026-11-29T09:00:00Z", "api_definition"),
                ("2026-11-30T10:00:00Z", "requested"),
                ("2026-11-30T10:00:00Z", "reach"),
                ("2026-11-30T10:05:00Z", "approved"),
                ("2026-11-30T10:06:00Z", "credential"),
            ]
        );
    }

    #[test]
    fn names_beside_ids_lists_as_text_and_everything_escaped() {
        let html = EvidencePage::from_bundle(&bundle()).render().unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("“&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;” (ticket CHG-1)"),
            "{html}"
        );
        // The API's name from its publish event; the partner and the approver from the
        // bundle's names.
        assert!(
            html.contains(&format!("<dt>API</dt><dd>orders <code>{API}</code></dd>")),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "API orders <code>{API}</code> revision 1: 2 operations"
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<dt>Partner</dt><dd>Acme &#60;Logistics&#62; <code>{PARTNER}</code></dd>"
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "alice <code>{ALICE}</code> approved on 2026-11-30T10:05:00Z"
            )),
            "{html}"
        );
        assert!(html.contains("Delivery &#60;sync&#62;"), "{html}");
        // Plain lists, past tense.
        assert!(html.contains("regions eu, us"), "{html}");
        assert!(!html.contains("[&#34;eu&#34;"), "{html}");
        assert!(html.contains("scopes orders:read, orders:list"), "{html}");
        assert!(html.contains("transfer basis: SCC 2021"), "{html}");
        assert!(
            html.contains("credential <code>crd_1</code> issued on 2026-11-30T10:06:00Z"),
            "{html}"
        );
        assert!(!html.contains("<td class=\"when\"></td>"), "{html}");
        // A grant bundle has no grant column; the stylesheet is linked, not inlined.
        assert!(!html.contains("<th>grant</th>"), "{html}");
        assert!(html.contains("href=\"/static/charter.css?v="), "{html}");
        assert!(!html.contains("<style"), "{html}");
    }

    #[test]
    fn a_partner_bundle_names_each_rows_grant() {
        let mut b = bundle();
        b["subject"] = json!({ "type": "partner", "id": PARTNER });
        let html = EvidencePage::from_bundle(&b).render().unwrap();
        assert!(html.contains("<th>grant</th>"), "{html}");
        assert!(
            html.contains(&format!(
                "<td>Delivery &#60;sync&#62; <code>{GRANT}</code></td>"
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<dt>Partner</dt><dd>Acme &#60;Logistics&#62; <code>{PARTNER}</code></dd>"
            )),
            "{html}"
        );
    }
}
