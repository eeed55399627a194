//! Evidence bundles (`charter-evidence/2`, `docs/evidence-bundle.md`) for a grant or a
//! partner: who requested and approved access, what it could reach, every credential, usage,
//! reviews, emergency use and removal — each statement citing the audit events that prove
//! it.
//!
//! A bundle carries the whole lifecycle sub-chain of each subject it speaks of (the grant or
//! grants, their credentials, the partner) and, instead of the grant's traffic, a committed
//! usage summary (counts, first and last call, tokens issued, a Merkle root over the usage
//! records). Making a bundle appends an `evidence.issue` record about its subject: it heads
//! the subject's sub-chain and commits the other sub-chains' heads and the usage summaries,
//! so the chain itself vouches for what the bundle holds, and a later bundle must extend an
//! earlier one. The offline verifier is `charter_evidence::bundle::verify`. Every list is
//! read to its last page: a bundle never leaves out a credential or a grant because there
//! were many.
//!
//! [`usage_proof`] answers an auditor's question about one usage record: the record and its
//! audit path to the root a bundle committed.

use std::collections::{BTreeMap, BTreeSet, btree_map};

use charter_core::{Api, Grant, Partner, Principal};
use charter_evidence::usage::{ProofRecord, UsageProof, UsageTree, is_usage};
use charter_evidence::{AuditRecord, StoredRecord, action};
use charter_store::{AuditQuery, CredentialRecord, ListFilter, Unit, Versioned};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::keyring::EvidenceState;
use crate::repo::Repo;
use crate::services::grants::Visibility;

/// A stored audit record, parsed.
struct Event {
    stored: StoredRecord,
    rec: AuditRecord,
}

fn parse(stored: StoredRecord) -> ApiResult<Event> {
    let rec: AuditRecord = serde_json::from_str(&stored.body).map_err(|e| {
        ApiError::Unexpected(anyhow::anyhow!(
            "audit record {} unreadable: {e}",
            stored.seq
        ))
    })?;
    Ok(Event { stored, rec })
}

/// Every record about `target` after `after`, oldest first.
async fn records_about(repo: &Repo, target: &str, after: u64) -> ApiResult<Vec<Event>> {
    repo.audit_all(AuditQuery {
        target: Some(target.to_owned()),
        after,
        ..AuditQuery::default()
    })
    .await?
    .into_iter()
    .map(parse)
    .collect()
}

/// The sub-chain records of `target` (its lifecycle) after `after`.
async fn lifecycle_of(repo: &Repo, target: &str, after: u64) -> ApiResult<Vec<Event>> {
    Ok(records_about(repo, target, after)
        .await?
        .into_iter()
        .filter(|e| action::on_subject_chain(&e.rec.action, target))
        .collect())
}

fn detail<'a>(e: &'a Event, key: &str) -> &'a Value {
    e.rec.details.get(key).unwrap_or(&Value::Null)
}

/// What a bundle is made of, gathered before its `evidence.issue` record is written.
#[derive(Default)]
struct Gathered {
    /// Lifecycle records per subject (grants, credentials, partner), ascending.
    chains: BTreeMap<String, Vec<Event>>,
    /// The credentials of each grant, in id order.
    credentials: BTreeMap<String, Vec<String>>,
    /// Each grant's usage tree.
    usage: BTreeMap<String, UsageTree>,
    /// The publish events of each API a grant reaches.
    apis: BTreeMap<String, Vec<Event>>,
    grants: Vec<Grant>,
}

impl Gathered {
    async fn grant(&mut self, repo: &Repo, grant: &Grant) -> ApiResult<()> {
        let gid = grant.id.to_string();
        let mut tree = UsageTree::new(&gid);
        let mut chain = Vec::new();
        for e in records_about(repo, &gid, 0).await? {
            if is_usage(&e.rec.action) {
                tree.push(&e.stored.hash, &e.rec).map_err(|why| {
                    ApiError::Unexpected(anyhow::anyhow!("usage of {gid}: {why}"))
                })?;
            } else if action::on_subject_chain(&e.rec.action, &gid) {
                chain.push(e);
            }
        }
        self.chains.insert(gid.clone(), chain);
        self.usage.insert(gid.clone(), tree);
        let creds: Vec<Versioned<CredentialRecord>> = repo
            .list_all(ListFilter {
                parent: Some(gid.clone()),
                status: None,
            })
            .await?;
        let mut ids = Vec::with_capacity(creds.len());
        for cred in &creds {
            let cid = cred.value.credential.id.to_string();
            self.chains
                .insert(cid.clone(), lifecycle_of(repo, &cid, 0).await?);
            ids.push(cid);
        }
        self.credentials.insert(gid, ids);
        let api = grant.api.to_string();
        if let btree_map::Entry::Vacant(slot) = self.apis.entry(api) {
            let published = records_about(repo, slot.key(), 0)
                .await?
                .into_iter()
                .filter(|e| {
                    e.rec.action == action::API_PUBLISH || e.rec.action == action::API_REPUBLISH
                })
                .collect();
            slot.insert(published);
        }
        self.grants.push(grant.clone());
        Ok(())
    }

    async fn partner(&mut self, repo: &Repo, partner: &str) -> ApiResult<()> {
        self.chains
            .insert(partner.to_owned(), lifecycle_of(repo, partner, 0).await?);
        Ok(())
    }

    /// Appends the `evidence.issue` record about `subject` (the head of its sub-chain,
    /// committing every other sub-chain's head and each grant's usage summary), then reads
    /// the subject's sub-chain up to it. Returns the record's seq.
    async fn issue(&mut self, repo: &Repo, actor: &str, subject: &str) -> ApiResult<u64> {
        let heads: BTreeMap<&str, Value> = self
            .chains
            .iter()
            .filter(|(id, _)| id.as_str() != subject)
            .filter_map(|(id, chain)| {
                let last = chain.last()?;
                Some((
                    id.as_str(),
                    json!({ "seq": last.stored.seq, "hash": last.stored.hash }),
                ))
            })
            .collect();
        let usage: BTreeMap<&str, Value> = self
            .usage
            .iter()
            .map(|(g, tree)| (g.as_str(), json!(tree.summary())))
            .collect();
        let rec = repo.record(
            actor,
            action::EVIDENCE_ISSUE,
            subject,
            None,
            json!({ "heads": heads, "usage": usage }),
        );
        let seqs = repo
            .write(Unit {
                ops: vec![],
                audit: vec![rec],
            })
            .await?;
        let issued = seqs.first().copied().ok_or_else(|| {
            ApiError::Unexpected(anyhow::anyhow!("the evidence.issue record has no seq"))
        })?;
        // The subject's lifecycle up to (and with) its new head: records written since it was
        // read join the bundle, later ones do not.
        let chain = self.chains.entry(subject.to_owned()).or_default();
        let after = chain.last().map_or(0, |e| e.stored.seq);
        for e in lifecycle_of(repo, subject, after).await? {
            if e.stored.seq <= issued {
                chain.push(e);
            }
        }
        Ok(issued)
    }
}

/// Builds the statements, citing events by seq.
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

/// Ids to names, for people: filled from the objects the bundle speaks of.
struct Names(BTreeMap<String, String>);

impl Names {
    /// `name (id)`, or the id alone.
    fn of(&self, id: &str) -> String {
        match self.0.get(id) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_owned(),
        }
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

/// A JSON list of strings as text: `eu, us`.
fn list(v: &Value) -> String {
    match v.as_array() {
        Some(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        None => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
    }
}

fn grant_statements(b: &mut Builder, g: &Gathered, names: &Names, grant: &Grant, issued: u64) {
    let gid = grant.id.to_string();
    let mut last_reach: Option<Value> = None;
    for e in g.chains.get(&gid).into_iter().flatten() {
        let (actor, at, action) = (
            e.rec.actor.as_str(),
            e.rec.at.as_str(),
            e.rec.action.as_str(),
        );
        let who = names.of(actor);
        match action {
            action::GRANT_REQUEST | action::GRANT_EMERGENCY_OPEN => {
                b.single(
                    "requested",
                    &gid,
                    format!("{who} requested access for {} on {at}", grant.use_case),
                    json!({ "actor": actor, "at": at, "action": action }),
                    e,
                );
                if action == action::GRANT_EMERGENCY_OPEN {
                    let incident = e.rec.details["after"]["emergency"]["incident"].clone();
                    b.single(
                        "emergency",
                        &gid,
                        format!(
                            "break-glass access opened under {} on {at}",
                            list(&incident)
                        ),
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
                    format!("{who} {kind} on {at}: {}", detail(e, "justification").as_str().unwrap_or("")),
                    json!({ "actor": actor, "at": at, "justification": detail(e, "justification"), "ticket": detail(e, "ticket") }),
                    e,
                );
            }
            action::REVIEW_ATTEST => {
                b.single(
                    "review",
                    &gid,
                    format!("{who} attested {} on {at}", detail(e, "decision").as_str().unwrap_or("")),
                    json!({ "actor": actor, "at": at, "decision": detail(e, "decision"), "justification": detail(e, "justification") }),
                    e,
                );
            }
            action::GRANT_REVOKE | action::GRANT_EXPIRE | action::GRANT_EMERGENCY_END => {
                b.single(
                    "removed",
                    &gid,
                    format!("access removed ({action}) by {who} on {at}"),
                    json!({ "actor": actor, "at": at, "action": action, "reason": e.rec.reason }),
                    e,
                );
                if action == action::GRANT_EMERGENCY_END {
                    let incident = detail(e, "emergency").clone();
                    b.single(
                        "emergency",
                        &gid,
                        format!("break-glass access under {} ended on {at}", list(&incident)),
                        json!({ "incident": incident, "at": at }),
                        e,
                    );
                }
            }
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
                b.single(
                    "reach",
                    &gid,
                    format!(
                        "from {at}: scopes {}, data up to {}, regions {}",
                        list(&after["scopes"]),
                        after["data_class_ceiling"].as_str().unwrap_or("?"),
                        list(&after["regions"])
                    ),
                    facts.clone(),
                    e,
                );
                last_reach = Some(facts);
            }
        }
    }

    // Usage: the committed summary, citing the evidence.issue record that commits it.
    if let Some(tree) = g.usage.get(&gid) {
        let s = tree.summary();
        let span = match (&s.first_at, &s.last_at) {
            (Some(first), Some(last)) => format!(" between {first} and {last}"),
            _ => String::new(),
        };
        b.push(
            "usage",
            &gid,
            format!(
                "{} calls allowed and {} denied{span}; {} access tokens issued ({} usage records, Merkle root {})",
                s.allowed, s.denied, s.tokens_issued, s.records, s.root
            ),
            json!(s),
            vec![issued],
        );
    }

    // Credentials of the grant and their lifetimes.
    for cid in g.credentials.get(&gid).into_iter().flatten() {
        for e in g.chains.get(cid).into_iter().flatten() {
            if e.rec.action.starts_with("credential.") {
                let (at, action) = (e.rec.at.clone(), e.rec.action.clone());
                b.single(
                    "credential",
                    &gid,
                    format!("credential {cid} {} on {at}", credential_verb(&action)),
                    json!({ "credential": cid, "action": action, "at": at }),
                    e,
                );
            }
        }
    }

    // The API's definition during the grant's life: the version in force at the request and
    // every republish until the grant ended.
    let end = grant.ended_at;
    let mut in_force: Option<&Event> = None;
    for e in g.apis.get(grant.api.as_str()).into_iter().flatten() {
        let at: jiff::Timestamp = e.rec.at.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let before_request = at <= grant.requested_at;
        let after_end = end.is_some_and(|t| at > t);
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
}

fn credential_verb(action: &str) -> &str {
    match action {
        action::CREDENTIAL_ISSUE => "issued",
        action::CREDENTIAL_ROTATE => "rotated",
        action::CREDENTIAL_REVOKE => "revoked",
        action::CREDENTIAL_EXPIRE => "expired",
        other => other.trim_start_matches("credential."),
    }
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

fn partner_statements(b: &mut Builder, g: &Gathered, partner: &str) {
    for e in g.chains.get(partner).into_iter().flatten() {
        if e.rec.action == action::PARTNER_OFFBOARD {
            let checks = e.rec.details["checks"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let passed = checks.iter().filter(|c| c["passed"] == true).count();
            let at = e.rec.at.clone();
            b.single("offboarding", "", format!("offboarding {} on {at}: {passed} of {} checks passed", e.rec.details["status"].as_str().unwrap_or("?"), checks.len()),
                json!({ "status": e.rec.details["status"], "checks_passed": passed, "checks_failed": checks.len() - passed, "at": at }), e);
        }
    }
}

/// The names of the partner, the APIs, the grants (their use case) and every principal who
/// acted on a sub-chain, as the objects hold them now.
async fn names(repo: &Repo, g: &Gathered, partner: &Partner) -> ApiResult<Names> {
    let mut out = BTreeMap::new();
    out.insert(partner.id.to_string(), partner.name.to_string());
    for grant in &g.grants {
        out.insert(grant.id.to_string(), grant.use_case.to_string());
        let api = grant.api.to_string();
        if let btree_map::Entry::Vacant(slot) = out.entry(api.clone())
            && let Ok(found) = repo.load::<Api>(&api, "api").await
        {
            slot.insert(found.value.name.to_string());
        }
    }
    let actors: BTreeSet<&str> = g
        .chains
        .values()
        .flatten()
        .map(|e| e.rec.actor.as_str())
        .filter(|a| a.starts_with("prn_"))
        .collect();
    for actor in actors {
        if let Ok(found) = repo.load::<Principal>(actor, "principal").await {
            out.insert(actor.to_owned(), found.value.name.to_string());
        }
    }
    Ok(Names(out))
}

/// For each checkpoint the log announces (an `audit.checkpoint` record) whose seq lies from
/// `first` to `head`, the hash the database holds at that seq.
async fn checkpoints(repo: &Repo, first: u64, head: u64) -> ApiResult<Vec<Value>> {
    let announced = repo
        .audit_all(AuditQuery {
            after: first,
            action: Some(action::AUDIT_CHECKPOINT.to_owned()),
            ..AuditQuery::default()
        })
        .await?;
    let mut seqs = BTreeSet::new();
    for stored in announced {
        if let Some(seq) = parse(stored)?.rec.details["seq"].as_u64()
            && (first..=head).contains(&seq)
        {
            seqs.insert(seq);
        }
    }
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let rows = repo
            .store
            .audit_query(&AuditQuery {
                after: seq - 1,
                limit: 1,
                ..AuditQuery::default()
            })
            .await?;
        if let Some(row) = rows.first().filter(|r| r.seq == seq) {
            out.push(json!({ "seq": seq, "hash": row.hash }));
        }
    }
    Ok(out)
}

/// Writes the `evidence.issue` record, builds the statements, and assembles and signs the
/// bundle.
async fn finish(
    repo: &Repo,
    evidence: &EvidenceState,
    issuer: &str,
    actor: &str,
    partner: &Partner,
    subject: (&str, &str),
    mut g: Gathered,
) -> ApiResult<Value> {
    let (kind, id) = subject;
    let issued = g.issue(repo, actor, id).await?;
    let names = names(repo, &g, partner).await?;
    let mut b = Builder {
        statements: Vec::new(),
        cited: BTreeMap::new(),
    };
    for grant in &g.grants {
        grant_statements(&mut b, &g, &names, grant, issued);
    }
    partner_statements(&mut b, &g, partner.id.as_str());
    // Every record of every sub-chain travels with the bundle, cited or not.
    for e in g.chains.values().flatten() {
        b.cite(e);
    }
    let first = g
        .chains
        .get(id)
        .and_then(|c| c.first())
        .map_or(issued, |e| e.stored.seq);
    let checkpoints = checkpoints(repo, first, issued).await?;
    let events: Vec<Value> = b
        .cited
        .values()
        .map(|r| json!({ "seq": r.seq, "hash": r.hash, "body": r.body }))
        .collect();
    let mut bundle = json!({
        "format": charter_evidence::bundle::FORMAT,
        "subject": { "type": kind, "id": id },
        "issuer": issuer,
        "generated_at": repo.now().to_string(),
        "names": names.0,
        "statements": b.statements,
        "events": events,
        "checkpoints": checkpoints,
        "keys": evidence.published,
    });
    let signature =
        charter_evidence::bundle::sign(&bundle, evidence.kid(), |m| evidence.sign(m))
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("signing the bundle: {e}")))?;
    bundle["signature"] = json!(signature);
    Ok(bundle)
}

/// The signed bundle for one grant (its credentials, usage, and its partner's lifecycle
/// and offboardings), issued by `actor`. Refused (409 `chain_broken`) over a chain that does
/// not verify (`chain_guard`).
pub async fn for_grant(
    repo: &Repo,
    evidence: &EvidenceState,
    issuer: &str,
    actor: &str,
    grant: &Grant,
) -> ApiResult<Value> {
    repo.chain
        .verified_head(repo.store.as_ref(), &evidence.published)
        .await?;
    let partner = repo
        .load::<Partner>(grant.partner.as_str(), "partner")
        .await?
        .value;
    let mut g = Gathered::default();
    g.grant(repo, grant).await?;
    g.partner(repo, partner.id.as_str()).await?;
    let id = grant.id.to_string();
    let bundle = finish(repo, evidence, issuer, actor, &partner, ("grant", &id), g).await?;
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
    actor: &str,
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
    let mut g = Gathered::default();
    let mut visible = 0;
    for grant in &grants {
        if vis.sees(repo, &grant.value).await? {
            visible += 1;
            g.grant(repo, &grant.value).await?;
        }
    }
    if visible == 0 && !grants.is_empty() {
        return Err(ApiError::not_found("partner"));
    }
    g.partner(repo, partner.id.as_str()).await?;
    let id = partner.id.to_string();
    let bundle = finish(repo, evidence, issuer, actor, partner, ("partner", &id), g).await?;
    repo.chain.check_cited(&bundle).await?;
    Ok(bundle)
}

/// The inclusion proof of usage record `seq` of `grant` in the tree of the grant's first
/// `size` usage records (the tree a bundle committed with `records` = `size`). 404 when the
/// record is not among them, 422 when the grant has fewer than `size` usage records.
pub async fn usage_proof(repo: &Repo, grant: &Grant, seq: u64, size: u64) -> ApiResult<UsageProof> {
    let gid = grant.id.to_string();
    let mut tree = UsageTree::new(&gid);
    let mut record = None;
    for e in records_about(repo, &gid, 0).await? {
        if tree.len() as u64 >= size {
            break;
        }
        if is_usage(&e.rec.action) {
            tree.push(&e.stored.hash, &e.rec)
                .map_err(|why| ApiError::Unexpected(anyhow::anyhow!("usage of {gid}: {why}")))?;
            if e.stored.seq == seq {
                record = Some(e.stored);
            }
        }
    }
    if (tree.len() as u64) < size {
        return Err(ApiError::Invalid(format!(
            "the grant has {} usage records, fewer than size {size}",
            tree.len()
        )));
    }
    let (Some(stored), Some(index)) = (record, tree.index_of(seq)) else {
        return Err(ApiError::not_found("usage record"));
    };
    let path = tree
        .path(index)
        .ok_or_else(|| ApiError::not_found("usage record"))?;
    Ok(UsageProof {
        grant: gid,
        index: index as u64,
        size,
        root: tree.summary().root,
        record: ProofRecord {
            seq: stored.seq,
            hash: stored.hash,
            body: stored.body,
        },
        path,
    })
}
