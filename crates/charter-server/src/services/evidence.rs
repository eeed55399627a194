//! Evidence bundles for a grant or a partner: who requested and approved access, what it
//! could reach, every credential, usage, reviews, emergency use and removal — each statement
//! citing the audit events that prove it, with the chain links that tie those events to the
//! log, the chain head, every evidence public key, and a detached JWS over the canonical
//! bundle. Format: `docs/evidence-bundle.md`; the offline verifier is
//! `charter_evidence::bundle::verify`. Every list is read to its last page: a bundle never
//! leaves out a credential or a grant because there were many.

use std::collections::BTreeMap;

use charter_core::{Grant, Partner};
use charter_evidence::{AuditRecord, StoredRecord, action};
use charter_store::{AuditQuery, CredentialRecord, ListFilter, Versioned};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::keyring::EvidenceState;
use crate::repo::Repo;
use crate::services::grants::Visibility;

/// A cited audit record, parsed, with its stored form.
struct Event {
    stored: StoredRecord,
    rec: AuditRecord,
}

async fn events_for(repo: &Repo, target: &str) -> ApiResult<Vec<Event>> {
    let rows = repo
        .audit_all(AuditQuery {
            target: Some(target.to_owned()),
            ..AuditQuery::default()
        })
        .await?;
    rows.into_iter()
        .map(|stored| {
            let rec: AuditRecord = serde_json::from_str(&stored.body).map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!(
                    "audit record {} unreadable: {e}",
                    stored.seq
                ))
            })?;
            Ok(Event { stored, rec })
        })
        .collect()
}

fn detail<'a>(e: &'a Event, key: &str) -> &'a Value {
    e.rec.details.get(key).unwrap_or(&Value::Null)
}

/// Builds the statements about one grant, citing `cited` events (by seq).
struct Builder {
    statements: Vec<Value>,
    cited: BTreeMap<u64, StoredRecord>,
}

impl Builder {
    fn cite(&mut self, e: &Event) -> u64 {
        self.cited
            .entry(e.stored.seq)
            .or_insert_with(|| e.stored.clone());
        e.stored.seq
    }

    fn push(&mut self, kind: &str, grant: &str, text: String, facts: Value, events: Vec<u64>) {
        let id = format!("st-{}", self.statements.len() + 1);
        self.statements.push(json!({ "id": id, "kind": kind, "grant": grant, "text": text, "facts": facts, "events": events }));
    }

    fn single(&mut self, kind: &str, grant: &str, text: String, facts: Value, e: &Event) {
        let seq = self.cite(e);
        self.push(kind, grant, text, facts, vec![seq]);
    }
}

fn reach_facts(after: &Value) -> Value {
    json!({
        "scopes": after["scopes"],
        "data_class_ceiling": after["data_class_ceiling"],
        "regions": after["regions"],
        "environments": after["environments"],
        "time_window": after["time_window"],
        "transfer_basis": after["transfer_basis"],
    })
}

async fn grant_statements(repo: &Repo, b: &mut Builder, grant: &Grant) -> ApiResult<()> {
    let gid = grant.id.to_string();
    let events = events_for(repo, &gid).await?;
    let mut last_reach: Option<Value> = None;
    let mut tokens = Vec::new();
    let mut decisions = Vec::new();
    for e in &events {
        let (actor, at, action) = (
            e.rec.actor.as_str(),
            e.rec.at.as_str(),
            e.rec.action.as_str(),
        );
        match action {
            action::GRANT_REQUEST | action::GRANT_EMERGENCY_OPEN => {
                b.single(
                    "requested",
                    &gid,
                    format!("{actor} requested access for {} on {at}", grant.use_case),
                    json!({ "actor": actor, "at": at, "action": action }),
                    e,
                );
                if action == action::GRANT_EMERGENCY_OPEN {
                    let incident = e.rec.details["after"]["emergency"]["incident"].clone();
                    b.single(
                        "emergency",
                        &gid,
                        format!("break-glass access opened under {incident} on {at}"),
                        json!({ "incident": incident, "at": at }),
                        e,
                    );
                }
            }
            action::GRANT_APPROVE | action::GRANT_REJECT => {
                let kind = if action == action::GRANT_APPROVE {
                    "approved"
                } else {
                    "rejected"
                };
                b.single(
                    kind,
                    &gid,
                    format!("{actor} {kind} on {at}: {}", detail(e, "justification").as_str().unwrap_or("")),
                    json!({ "actor": actor, "at": at, "justification": detail(e, "justification"), "ticket": detail(e, "ticket") }),
                    e,
                );
            }
            action::REVIEW_ATTEST => {
                b.single(
                    "review",
                    &gid,
                    format!("{actor} attested {} on {at}", detail(e, "decision").as_str().unwrap_or("")),
                    json!({ "actor": actor, "at": at, "decision": detail(e, "decision"), "justification": detail(e, "justification") }),
                    e,
                );
            }
            action::GRANT_REVOKE | action::GRANT_EXPIRE | action::GRANT_EMERGENCY_END => {
                b.single(
                    "removed",
                    &gid,
                    format!("access removed ({action}) by {actor} on {at}"),
                    json!({ "actor": actor, "at": at, "action": action, "reason": e.rec.reason }),
                    e,
                );
                if action == action::GRANT_EMERGENCY_END {
                    let incident = detail(e, "emergency").clone();
                    b.single(
                        "emergency",
                        &gid,
                        format!("break-glass access under {incident} ended on {at}"),
                        json!({ "incident": incident, "at": at }),
                        e,
                    );
                }
            }
            action::TOKEN_ISSUE => tokens.push(e),
            action::ACCESS_DECISION => decisions.push(e),
            _ => {}
        }
        // What the grant could reach, each time that changed.
        if let Some(after) = e
            .rec
            .details
            .get("after")
            .filter(|a| a.get("scopes").is_some())
        {
            let facts = reach_facts(after);
            if last_reach.as_ref() != Some(&facts) {
                let scopes = after["scopes"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                b.single(
                    "reach",
                    &gid,
                    format!(
                        "from {at}: scopes {scopes}, data up to {}, regions {}",
                        after["data_class_ceiling"].as_str().unwrap_or("?"),
                        after["regions"]
                    ),
                    facts.clone(),
                    e,
                );
                last_reach = Some(facts);
            }
        }
    }
    if !tokens.is_empty() {
        let seqs: Vec<u64> = tokens.iter().map(|e| b.cite(e)).collect();
        let (first, last) = time_span(&tokens);
        b.push(
            "token_issued",
            &gid,
            format!(
                "{} access tokens issued between {first} and {last}",
                seqs.len()
            ),
            json!({ "count": seqs.len(), "first_at": first, "last_at": last }),
            seqs,
        );
    }
    if !decisions.is_empty() {
        let allowed = decisions
            .iter()
            .filter(|e| detail(e, "decision") == "allow")
            .count();
        let seqs: Vec<u64> = decisions.iter().map(|e| b.cite(e)).collect();
        let (first, last) = time_span(&decisions);
        b.push("usage", &gid, format!("{allowed} calls allowed and {} denied between {first} and {last}", seqs.len() - allowed),
            json!({ "allowed": allowed, "denied": seqs.len() - allowed, "first_at": first, "last_at": last }), seqs);
    }

    // Credentials of the grant and their lifetimes.
    let creds: Vec<Versioned<CredentialRecord>> = repo
        .list_all(ListFilter {
            parent: Some(gid.clone()),
            status: None,
        })
        .await?;
    for cred in &creds {
        for e in events_for(repo, cred.value.credential.id.as_str()).await? {
            if e.rec.action.starts_with("credential.") {
                let (at, action) = (e.rec.at.clone(), e.rec.action.clone());
                b.single(
                    "credential",
                    &gid,
                    format!(
                        "credential {} {} on {at}",
                        cred.value.credential.id,
                        action.trim_start_matches("credential.")
                    ),
                    json!({ "credential": cred.value.credential.id, "action": action, "at": at }),
                    &e,
                );
            }
        }
    }

    // The API's definition during the grant's life: the version in force at the request and
    // every republish until the grant ended.
    let end = grant.ended_at.map(|t| t.to_string());
    let api_events = events_for(repo, grant.api.as_str()).await?;
    let requested = grant.requested_at.to_string();
    let mut in_force: Option<&Event> = None;
    for e in api_events
        .iter()
        .filter(|e| e.rec.action == action::API_PUBLISH || e.rec.action == action::API_REPUBLISH)
    {
        let at: jiff::Timestamp = e.rec.at.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let before_request = requested.parse::<jiff::Timestamp>().is_ok_and(|r| at <= r);
        let after_end = end
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| at > t);
        if before_request {
            in_force = Some(e);
        } else if !after_end {
            if let Some(prev) = in_force.take() {
                api_statement(b, &gid, prev);
            }
            api_statement(b, &gid, e);
        }
    }
    if let Some(prev) = in_force {
        api_statement(b, &gid, prev);
    }
    Ok(())
}

/// The earliest and latest `at` of some events, compared as points in time (concurrent
/// writes may be sealed slightly out of time order), as their exact text.
fn time_span(events: &[&Event]) -> (String, String) {
    let key = |e: &&&Event| {
        e.rec
            .at
            .parse::<jiff::Timestamp>()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    };
    let first = events
        .iter()
        .min_by_key(key)
        .map(|e| e.rec.at.clone())
        .unwrap_or_default();
    let last = events
        .iter()
        .max_by_key(key)
        .map(|e| e.rec.at.clone())
        .unwrap_or_default();
    (first, last)
}

fn api_statement(b: &mut Builder, gid: &str, e: &Event) {
    let after = &e.rec.details["after"];
    b.single(
        "api_definition",
        gid,
        format!(
            "API {} revision {} (from {})",
            after["name"].as_str().unwrap_or("?"),
            after["revision"],
            e.rec.at
        ),
        json!({ "revision": after["revision"], "operations": after["operations"] }),
        e,
    );
}

async fn partner_statements(repo: &Repo, b: &mut Builder, partner: &str) -> ApiResult<()> {
    for e in events_for(repo, partner).await? {
        if e.rec.action == action::PARTNER_OFFBOARD {
            let checks = e.rec.details["checks"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let passed = checks.iter().filter(|c| c["passed"] == true).count();
            let at = e.rec.at.clone();
            b.single("offboarding", "", format!("offboarding {} on {at}: {passed} of {} checks passed", e.rec.details["status"].as_str().unwrap_or("?"), checks.len()),
                json!({ "status": e.rec.details["status"], "checks_passed": passed, "checks_failed": checks.len() - passed, "at": at }), &e);
        }
    }
    Ok(())
}

/// Assembles, links and signs a bundle.
async fn finish(
    repo: &Repo,
    evidence: &EvidenceState,
    issuer: &str,
    subject: Value,
    b: Builder,
) -> ApiResult<Value> {
    let first = b.cited.keys().next().copied().unwrap_or(0);
    let links: Vec<Value> = repo
        .audit_all(AuditQuery {
            after: first.saturating_sub(2),
            ..AuditQuery::default()
        })
        .await?
        .iter()
        .map(|r| json!({ "seq": r.seq, "hash": r.hash }))
        .collect();
    let head = links
        .last()
        .cloned()
        .unwrap_or_else(|| json!({ "seq": 0, "hash": charter_evidence::GENESIS_HASH }));
    let events: Vec<Value> = b
        .cited
        .values()
        .map(|r| json!({ "seq": r.seq, "hash": r.hash, "body": r.body }))
        .collect();
    let mut bundle = json!({
        "format": charter_evidence::bundle::FORMAT,
        "subject": subject,
        "issuer": issuer,
        "generated_at": repo.now().to_string(),
        "statements": b.statements,
        "events": events,
        "links": links,
        "head": head,
        "keys": evidence.published,
    });
    let signature =
        charter_evidence::bundle::sign(&bundle, evidence.kid(), |m| evidence.sign(m))
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("signing the bundle: {e}")))?;
    bundle["signature"] = json!(signature);
    Ok(bundle)
}

/// The signed bundle for one grant (its statements and its partner's offboardings). Refused
/// (409 `chain_broken`) over a chain that does not verify (`chain_guard`).
pub async fn for_grant(
    repo: &Repo,
    evidence: &EvidenceState,
    issuer: &str,
    grant: &Grant,
) -> ApiResult<Value> {
    repo.chain
        .verified_head(repo.store.as_ref(), &evidence.published)
        .await?;
    let mut b = Builder {
        statements: Vec::new(),
        cited: BTreeMap::new(),
    };
    grant_statements(repo, &mut b, grant).await?;
    partner_statements(repo, &mut b, grant.partner.as_str()).await?;
    let subject = json!({ "type": "grant", "id": grant.id });
    let bundle = finish(repo, evidence, issuer, subject, b).await?;
    repo.chain.check_cited(&bundle).await?;
    Ok(bundle)
}

/// The signed bundle for a partner: every grant `vis` may see (all pages), and the partner's
/// offboardings. A caller who sees none of its grants gets 404, as for an unknown partner.
/// Refused (409 `chain_broken`) over a chain that does not verify (`chain_guard`).
pub async fn for_partner(
    repo: &Repo,
    evidence: &EvidenceState,
    issuer: &str,
    vis: &Visibility,
    partner: &Partner,
) -> ApiResult<Value> {
    repo.chain
        .verified_head(repo.store.as_ref(), &evidence.published)
        .await?;
    let grants: Vec<Versioned<Grant>> = repo
        .list_all(ListFilter {
            parent: Some(partner.id.to_string()),
            status: None,
        })
        .await?;
    let mut b = Builder {
        statements: Vec::new(),
        cited: BTreeMap::new(),
    };
    let mut visible = 0;
    for g in &grants {
        if vis.sees(repo, &g.value).await? {
            visible += 1;
            grant_statements(repo, &mut b, &g.value).await?;
        }
    }
    if visible == 0 && !grants.is_empty() {
        return Err(ApiError::not_found("partner"));
    }
    partner_statements(repo, &mut b, partner.id.as_str()).await?;
    let subject = json!({ "type": "partner", "id": partner.id });
    let bundle = finish(repo, evidence, issuer, subject, b).await?;
    repo.chain.check_cited(&bundle).await?;
    Ok(bundle)
}
