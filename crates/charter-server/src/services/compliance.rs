//! The compliance report: pure control evaluations over a [`Snapshot`] and the posture
//! findings computed from it (by [`super::findings::findings`], once, never re-derived here).
//! Each control of NIST CSF 2.0 (PR.AA), NIST SP 800-207 (zero-trust tenets) and the OWASP NHI
//! Top 10 (2025) is mapped to concrete rules over what Charter holds — grants, credentials,
//! partners, offboardings, signing keys, the audit chain and its access-decision records.
//!
//! Every control answers `pass`, `fail` or `not_applicable` (nothing in scope to assess),
//! states its rule, carries the numbers and ids behind the verdict, and lists the finding
//! kinds that made it fail. A sub-rule that cannot fail because the domain refuses the
//! condition when it is written (a token TTL over 3600 s, a requester approving their own
//! grant) is not counted as an evaluation that passed: it is listed under `by_construction`
//! with status `enforced_by_construction` and where the refusal lives — and it still fails if
//! the stored data shows the condition anyway (a record written around the domain). A control
//! whose every rule is of that kind answers `enforced_by_construction` itself. Where a control reaches beyond what Charter can observe, its
//! evidence says so (`"scope": "partial"` and `not_checked`). A chain that was not verified
//! for the snapshot fails the controls that rest on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use charter_core::grant::{DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, check_reach};
use charter_core::offboarding::{Offboarding, OffboardingStatus};
use charter_core::{
    Api, ApprovalDecision, CredentialKind, CredentialStatus, Grant, GrantStatus, Partner,
    PartnerKind, PartnerStatus, Principal,
};
use charter_store::CredentialRecord;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::findings::{self, Finding, FindingKind, SHARED_WINDOW_HOURS};
use super::snapshot::{AccessLog, Snapshot};
use crate::keyring::{KeyRecord, KeyStatus};
use crate::usage::Scan;

/// Days of audit records the decision-based rules read.
pub const WINDOW_DAYS: i64 = 30;
/// The active token-signing key should be younger than this (PR.AA-04).
pub const SIGNING_KEY_MAX_AGE_DAYS: i64 = 90;
/// Ids listed per violation in a control's evidence (the counts are always complete).
const MAX_LISTED: usize = 50;
/// Decision records are read this far before the window, so that an outcome early in the
/// window finds the decision that preceded it.
pub const DECISION_LEAD: SignedDuration = SignedDuration::from_secs(600);

const CSF: &str = "NIST CSF 2.0";
const ZTA: &str = "NIST SP 800-207";
const NHI: &str = "OWASP NHI Top 10 (2025)";

/// The frameworks, in report order.
pub const FRAMEWORKS: [&str; 3] = [CSF, ZTA, NHI];

/// The start of the decision-based rules' window ending `now`.
pub fn window_start(now: Timestamp) -> Timestamp {
    now - SignedDuration::from_hours(24 * WINDOW_DAYS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Nothing in scope that the control's rules apply to.
    NotApplicable,
    /// The rule cannot fail: the domain refuses the condition when it is written. Nothing
    /// was evaluated that could have found otherwise, short of data written around it.
    EnforcedByConstruction,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotApplicable => "not_applicable",
            Self::EnforcedByConstruction => "enforced_by_construction",
        }
    }
}

/// A sub-rule the domain makes impossible to break.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Construction {
    pub rule: &'static str,
    /// Where the condition is refused.
    pub enforced_by: &'static str,
    /// `enforced_by_construction`, or `fail` when stored records show the condition anyway.
    pub status: Status,
    /// Stored records that show the condition (written around the domain).
    pub violations: usize,
}

impl Construction {
    fn new(rule: &'static str, enforced_by: &'static str, violations: usize) -> Self {
        Self {
            rule,
            enforced_by,
            status: if violations == 0 {
                Status::EnforcedByConstruction
            } else {
                Status::Fail
            },
            violations,
        }
    }
}

const TTL_BY_CONSTRUCTION: &str = "No live grant's token TTL is over 3600 s.";
const TTL_ENFORCED_BY: &str = "a grant request with token_ttl_seconds outside 1..=3600 is refused (charter-core grant.rs, Grant::new); tokens are minted with the grant's TTL";
const SELF_APPROVAL_BY_CONSTRUCTION: &str = "No grant is approved by its own requester.";
const SELF_APPROVAL_ENFORCED_BY: &str =
    "an approval by the grant's requester is refused (charter-core grant.rs, Grant::decide)";

/// One control's verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Control {
    pub framework: &'static str,
    pub control: &'static str,
    pub title: &'static str,
    /// The concrete rule Charter checks for this control.
    pub rule: &'static str,
    pub status: Status,
    /// Numbers and ids behind the verdict.
    #[schema(value_type = Object)]
    pub evidence: Value,
    /// The finding kinds that made the control fail.
    pub findings: Vec<FindingKind>,
    /// Sub-rules enforced by construction (not evaluations that passed).
    pub by_construction: Vec<Construction>,
}

/// What the report covers: `{type: "estate"}` or `{type: "partner", id, name}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportScope {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub not_applicable: usize,
    pub enforced_by_construction: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComplianceReport {
    /// The time the report reflects.
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: Timestamp,
    pub scope: ReportScope,
    pub summary: Summary,
    /// Days of access-decision records the decision-based rules read.
    pub window_days: i64,
    pub controls: Vec<Control>,
}

/// A control's identity and rule.
struct Def {
    framework: &'static str,
    control: &'static str,
    title: &'static str,
    rule: &'static str,
}

const PR_AA_01: Def = Def {
    framework: CSF,
    control: "PR.AA-01",
    title: "Identities and credentials for authorized users, services, and hardware are managed by the organization",
    rule: "No owner_missing, credential_stale or credential_shared finding: every partner not yet offboarded and every API has an enabled accountable owner, every active credential is within its maximum age, every live grant that was given credentials still has an active one, and no client id calls from several networks.",
};
const PR_AA_03: Def = Def {
    framework: CSF,
    control: "PR.AA-03",
    title: "Users, services, and hardware are authenticated",
    rule: "Every live grant authenticates its workload with client_secret or private_key_jwt credentials whose maximum age is at most the server policy and that are not past it (no credential_stale finding about a credential), and no credential_guessing finding (no client id whose secret or assertion is being guessed at). The 3600 s token TTL limit is enforced by construction (see by_construction).",
};
const PR_AA_04: Def = Def {
    framework: CSF,
    control: "PR.AA-04",
    title: "Identity assertions are protected, conveyed, and verified",
    rule: "There is exactly one active token-signing key, activated at most 90 days ago, and a next key is already published for rotation (evaluated). Reported, not evaluated: the token format and pinned algorithm (properties of the implementation), and DPoP — how many grants require it (a per-grant choice, so none requiring it does not fail the control) and how many calls were refused as dpop_invalid in the window; the proofs themselves are checked by the gateway per call and not re-checked here.",
};
const PR_AA_05: Def = Def {
    framework: CSF,
    control: "PR.AA-05",
    title: "Access permissions, entitlements, and authorizations are defined in a policy, managed, enforced, and reviewed, and incorporate the principles of least privilege and separation of duties (PR.AC-4 in CSF 1.1)",
    rule: "Every active or suspended grant that is not break-glass holds at least approvals_required approvals from distinct principals; and there is no grant_unused, scope_unused, review_overdue, emergency_unreviewed, transfer_without_basis or offboarding_failed finding (grant_expiring is reported, not failed). That no requester approves their own grant is enforced by construction (see by_construction).",
};
const TENET_3: Def = Def {
    framework: ZTA,
    control: "Tenet-3",
    title: "Access to individual enterprise resources is granted on a per-session basis",
    rule: "Every live grant's access tokens live at most 3600 s (the session) — enforced by construction, so this control evaluates nothing that could fail short of records written around the domain; the access.decision records of the window are counted and reported.",
};
const TENET_4: Def = Def {
    framework: ZTA,
    control: "Tenet-4",
    title: "Access to resources is determined by dynamic policy",
    rule: "The gateway decides each call on the live definitions: for every API in scope the live view holds the stored revision, and the live view is fresh. Operation data class, region and transfer basis are checked per call; grants whose reach exceeds the current API definition are reported (such calls are denied).",
};
const TENET_6: Def = Def {
    framework: ZTA,
    control: "Tenet-6",
    title: "All resource authentication and authorization are dynamic and strictly enforced before access is allowed",
    rule: "The audit chain verifies end to end, and every access.outcome record (a call that reached an upstream) in the window has an earlier allow access.decision record with the same request id (decision before forward).",
};
const TENET_7: Def = Def {
    framework: ZTA,
    control: "Tenet-7",
    title: "The enterprise collects as much information as possible about the current state of assets, network infrastructure and communications and uses it to improve its security posture",
    rule: "The audit chain of every lifecycle change and access decision verifies end to end, and posture findings are computed from it at the time of the call.",
};
const NHI1: Def = Def {
    framework: NHI,
    control: "NHI1",
    title: "Improper Offboarding",
    rule: "No offboarding_failed or owner_missing finding, and no partner being or having been offboarded holds an active or suspended grant or an active credential.",
};
const NHI2: Def = Def {
    framework: NHI,
    control: "NHI2",
    title: "Secret Leakage",
    rule: "Client secrets are stored only as keyed hashes: every client_secret version's verifier is a 256-bit HMAC (64 hex characters) with no key material beside it, and every private_key_jwt version holds only a public JWK.",
};
const NHI3: Def = Def {
    framework: NHI,
    control: "NHI3",
    title: "Vulnerable Third-Party NHI",
    rule: "No transfer_without_basis finding, and every live SaaS-connector grant above internal data records a data exception in each approval.",
};
const NHI5: Def = Def {
    framework: NHI,
    control: "NHI5",
    title: "Overprivileged NHI",
    rule: "No grant_unused, scope_unused, review_overdue or emergency_unreviewed finding.",
};
const NHI7: Def = Def {
    framework: NHI,
    control: "NHI7",
    title: "Long-Lived Secrets",
    rule: "No credential_stale finding, and no active credential has a maximum age above the server policy; grants ending within 7 days without a renewal (grant_expiring) are reported, not failed.",
};
const NHI9: Def = Def {
    framework: NHI,
    control: "NHI9",
    title: "NHI Reuse",
    rule: "No credential_shared finding: no client id is seen calling from two or more source networks within 24 hours; a credential belongs to exactly one grant by construction.",
};

/// Access decisions in the window (in scope).
#[derive(Debug, Default)]
struct Decisions {
    allowed: u64,
    denied: u64,
    by_reason: BTreeMap<String, u64>,
    /// Allowed decisions by request id, with their sequence number.
    allowed_requests: HashMap<String, u64>,
    /// The oldest record the scan read, if it was truncated.
    oldest_seq: Option<u64>,
    scan: Scan,
}

/// Outcome records checked against the decisions before them.
#[derive(Debug, Default)]
struct Outcomes {
    checked: u64,
    without_prior_allow: Vec<String>,
    /// Outcomes older than the oldest decision a truncated scan read.
    unverifiable: u64,
    scan: Scan,
}

/// What the rules look at, cut to the report's scope.
struct Facts<'a> {
    now: Timestamp,
    since: Timestamp,
    estate: bool,
    /// Every partner (cross-border checks need the grant's partner).
    all_partners: HashMap<&'a str, &'a Partner>,
    all_apis: HashMap<&'a str, &'a Api>,
    partners: Vec<&'a Partner>,
    apis: Vec<&'a Api>,
    grants: Vec<&'a Grant>,
    credentials: Vec<&'a CredentialRecord>,
    offboardings: Vec<&'a Offboarding>,
    findings: Vec<&'a Finding>,
    principals: &'a [Principal],
    keys: &'a [KeyRecord],
    access: &'a AccessLog,
    decisions: Decisions,
    outcomes: Outcomes,
    policy_max_age_days: u32,
    feed_fresh: bool,
    live_revisions: &'a HashMap<String, Option<u32>>,
}

/// Tallies the window's decisions and pairs each outcome with the allow decision before it,
/// over the records whose target `in_scope` accepts.
fn tally(log: &AccessLog, in_scope: impl Fn(&str) -> bool) -> (Decisions, Outcomes) {
    let mut decisions = Decisions {
        scan: log.decisions_scan,
        ..Decisions::default()
    };
    for d in log.decisions.iter().filter(|d| in_scope(&d.target)) {
        if d.allowed
            && let Some(id) = &d.request_id
        {
            // Newest first: the oldest allow of a request id is kept.
            decisions.allowed_requests.insert(id.clone(), d.seq);
        }
        // The lead before the window only serves to pair outcomes.
        if d.at < log.since {
            continue;
        }
        if d.allowed {
            decisions.allowed += 1;
        } else {
            decisions.denied += 1;
            let reason = d.reason.clone().unwrap_or_else(|| "unknown".into());
            *decisions.by_reason.entry(reason).or_default() += 1;
        }
    }
    if log.decisions_scan.truncated {
        decisions.oldest_seq = log.decisions.last().map(|d| d.seq);
    }
    let mut outcomes = Outcomes {
        scan: log.outcomes_scan,
        ..Outcomes::default()
    };
    for o in log.outcomes.iter().filter(|o| in_scope(&o.target)) {
        outcomes.checked += 1;
        let request = o.request_id.as_deref().unwrap_or_default();
        match decisions.allowed_requests.get(request) {
            Some(d) if *d < o.seq => {}
            _ if decisions.oldest_seq.is_some_and(|oldest| o.seq <= oldest) => {
                outcomes.unverifiable += 1;
            }
            _ => outcomes.without_prior_allow.push(request.to_owned()),
        }
    }
    (decisions, outcomes)
}

impl<'a> Facts<'a> {
    fn new(s: &'a Snapshot, found: &'a [Finding], partner: Option<&Partner>) -> Self {
        let scope = partner.map(|p| p.id.as_str());
        let in_scope = |p: &str| scope.is_none_or(|s| s == p);
        let grants: Vec<&Grant> = s
            .grants
            .iter()
            .filter(|g| in_scope(g.partner.as_str()))
            .collect();
        let scoped_grants: BTreeSet<&str> = grants.iter().map(|g| g.id.as_str()).collect();
        let used_apis: BTreeSet<&str> = grants.iter().map(|g| g.api.as_str()).collect();
        let (decisions, outcomes) = tally(&s.access, |target| {
            scope.is_none() || scoped_grants.contains(target)
        });
        Self {
            now: s.taken_at,
            since: s.access.since,
            estate: scope.is_none(),
            all_partners: s.partners.iter().map(|p| (p.id.as_str(), p)).collect(),
            all_apis: s.apis.iter().map(|a| (a.id.as_str(), a)).collect(),
            partners: s
                .partners
                .iter()
                .filter(|p| in_scope(p.id.as_str()))
                .collect(),
            apis: s
                .apis
                .iter()
                .filter(|a| scope.is_none() || used_apis.contains(a.id.as_str()))
                .collect(),
            credentials: s
                .credentials
                .iter()
                .filter(|c| in_scope(c.credential.partner.as_str()))
                .collect(),
            offboardings: s
                .offboardings
                .iter()
                .filter(|o| in_scope(o.partner.as_str()))
                .collect(),
            findings: found
                .iter()
                .filter(|f| scope.is_none() || f.partner().is_some_and(in_scope))
                .collect(),
            grants,
            principals: &s.principals,
            keys: &s.keys,
            access: &s.access,
            decisions,
            outcomes,
            policy_max_age_days: s.policy_max_age_days,
            feed_fresh: s.feed_fresh,
            live_revisions: &s.live_revisions,
        }
    }

    /// Grants that let their partner in now.
    fn live(&self) -> impl Iterator<Item = &'a Grant> + '_ {
        self.grants.iter().copied().filter(|g| g.is_live(self.now))
    }

    /// Grants that hold access (active or suspended), break-glass included.
    fn held(&self) -> impl Iterator<Item = &'a Grant> + '_ {
        self.grants
            .iter()
            .copied()
            .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Suspended))
    }

    /// Credentials that can authenticate now.
    fn active_credentials(&self) -> impl Iterator<Item = &'a CredentialRecord> + '_ {
        self.credentials.iter().copied().filter(|c| {
            c.credential.status == CredentialStatus::Active && self.now < c.credential.expires_at
        })
    }

    fn found(&self, kinds: &[FindingKind]) -> Vec<&'a Finding> {
        self.findings
            .iter()
            .copied()
            .filter(|f| kinds.contains(&f.kind))
            .collect()
    }

    fn count_found(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    fn days_since(&self, t: Timestamp) -> i64 {
        self.now.duration_since(t).as_hours() / 24
    }

    /// Whether the chain verified end to end (not verified counts as not).
    fn chain_broken(&self) -> bool {
        !matches!(self.access.chain, Some(Ok(_)))
    }

    fn chain_evidence(&self) -> Value {
        match &self.access.chain {
            Some(Ok(head)) => json!({ "valid": true, "records": head.seq, "head": head }),
            Some(Err(brk)) => json!({ "valid": false, "error": "chain_broken",
                               "first_bad_record": brk.first_bad_record, "detail": brk.reason }),
            None => {
                json!({ "valid": null, "detail": "the chain was not verified for this report" })
            }
        }
    }

    fn decision_evidence(&self) -> Value {
        json!({ "allowed": self.decisions.allowed, "denied": self.decisions.denied,
                "since": self.since, "records_truncated": self.decisions.scan.truncated })
    }
}

fn listed<T: Serialize>(items: &[T]) -> Value {
    json!(items.iter().take(MAX_LISTED).collect::<Vec<_>>())
}

fn count_by<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, u64> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i).or_default() += 1;
    }
    out
}

pub fn text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The verdict: `fail` on any violation or failing finding, else `pass` if the control had
/// something to assess, else `not_applicable`.
fn verdict(
    def: &Def,
    violations: bool,
    applicable: bool,
    found: &[&Finding],
    evidence: Value,
) -> Control {
    verdict_with(def, violations, applicable, found, evidence, Vec::new())
}

/// [`verdict`] with sub-rules enforced by construction: any of them observed violated fails
/// the control.
fn verdict_with(
    def: &Def,
    violations: bool,
    applicable: bool,
    found: &[&Finding],
    evidence: Value,
    by_construction: Vec<Construction>,
) -> Control {
    let violations = violations || by_construction.iter().any(|c| c.status == Status::Fail);
    let mut evidence = match evidence {
        Value::Object(m) => m,
        other => Map::from_iter([("detail".to_owned(), other)]),
    };
    let kinds: BTreeSet<FindingKind> = found.iter().map(|f| f.kind).collect();
    if !found.is_empty() {
        let subjects: Vec<_> = found
            .iter()
            .take(MAX_LISTED)
            .map(|f| json!({ "kind": f.kind, "subject": f.subject }))
            .collect();
        evidence.insert("failing_findings".into(), json!(found.len()));
        evidence.insert("finding_subjects".into(), Value::Array(subjects));
    }
    let status = if violations || !found.is_empty() {
        Status::Fail
    } else if applicable {
        Status::Pass
    } else {
        Status::NotApplicable
    };
    Control {
        framework: def.framework,
        control: def.control,
        title: def.title,
        rule: def.rule,
        status,
        evidence: Value::Object(evidence),
        findings: kinds.into_iter().collect(),
        by_construction,
    }
}

fn pr_aa_01(f: &Facts<'_>) -> Control {
    use FindingKind::{CredentialShared, CredentialStale, OwnerMissing};
    let found = f.found(&[OwnerMissing, CredentialStale, CredentialShared]);
    let without_credential: Vec<&str> = f
        .live()
        .filter(|g| !f.active_credentials().any(|c| c.credential.grant == g.id))
        .map(|g| g.id.as_str())
        .collect();
    let statuses: Vec<String> = f.partners.iter().map(|p| text(&p.status)).collect();
    let cred_statuses: Vec<String> = f
        .credentials
        .iter()
        .map(|c| text(&c.credential.status))
        .collect();
    let mut evidence = json!({
        "partners": f.partners.len(),
        "partners_by_status": count_by(statuses.iter().map(String::as_str)),
        "credentials_by_status": count_by(cred_statuses.iter().map(String::as_str)),
        "live_grants": f.live().count(),
        "live_grants_without_active_credential": listed(&without_credential),
    });
    if f.estate {
        let enabled = f.principals.iter().filter(|p| !p.disabled).count();
        evidence["apis"] = json!(f.apis.len());
        evidence["principals"] = json!({
            "enabled": enabled,
            "disabled": f.principals.len() - enabled,
            "enabled_with_expired_token": f.principals.iter()
                .filter(|p| !p.disabled && p.token_expires_at <= f.now).count(),
        });
    }
    let applicable = !f.partners.is_empty() || !f.apis.is_empty();
    verdict(&PR_AA_01, false, applicable, &found, evidence)
}

fn pr_aa_03(f: &Facts<'_>) -> Control {
    let live: Vec<&Grant> = f.live().collect();
    let long_ttl: Vec<Value> = live
        .iter()
        .filter(|g| g.token_ttl_seconds > MAX_TOKEN_TTL_SECONDS)
        .map(|g| json!({ "grant": g.id, "token_ttl_seconds": g.token_ttl_seconds }))
        .collect();
    let creds: Vec<&CredentialRecord> = f
        .active_credentials()
        .filter(|c| live.iter().any(|g| g.id == c.credential.grant))
        .collect();
    let over_policy: Vec<Value> = creds
        .iter()
        .filter(|c| c.credential.max_age_days > f.policy_max_age_days)
        .map(
            |c| json!({ "credential": c.credential.id, "max_age_days": c.credential.max_age_days }),
        )
        .collect();
    let kinds: Vec<String> = creds.iter().map(|c| text(&c.credential.kind)).collect();
    let found: Vec<&Finding> = f
        .found(&[
            FindingKind::CredentialStale,
            FindingKind::CredentialGuessing,
        ])
        .into_iter()
        .filter(|x| x.subject.kind == "credential")
        .collect();
    let evidence = json!({
        "live_grants": live.len(),
        "active_credentials_by_kind": count_by(kinds.iter().map(String::as_str)),
        "client_authentication": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "policy_max_age_days": f.policy_max_age_days,
        "longest_max_age_days": creds.iter().map(|c| c.credential.max_age_days).max(),
        "credentials_over_policy": listed(&over_policy),
        "token_ttl_limit_seconds": MAX_TOKEN_TTL_SECONDS,
        "longest_token_ttl_seconds": live.iter().map(|g| g.token_ttl_seconds).max(),
        "grants_over_ttl_limit": listed(&long_ttl),
    });
    let ttl = Construction::new(TTL_BY_CONSTRUCTION, TTL_ENFORCED_BY, long_ttl.len());
    verdict_with(
        &PR_AA_03,
        !over_policy.is_empty(),
        !live.is_empty(),
        &found,
        evidence,
        vec![ttl],
    )
}

fn pr_aa_04(f: &Facts<'_>) -> Control {
    let active: Vec<&KeyRecord> = f
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .collect();
    let next = f.keys.iter().any(|k| k.status == KeyStatus::Next);
    let retired_published = f
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Retired && k.publish_until.is_some_and(|u| u > f.now))
        .count();
    let key = active.first().map(|k| {
        let since = k.activated_at.unwrap_or(k.created_at);
        (k, since, f.days_since(since))
    });
    let too_old = key.is_some_and(|(_, _, age)| age > SIGNING_KEY_MAX_AGE_DAYS);
    let violations = active.len() != 1 || too_old || !next;
    let dpop_grants = f.grants.iter().filter(|g| g.require_dpop).count();
    let evidence = json!({
        "scope": "partial",
        "key_scope": "estate",
        "token_format": "JWT, typ at+jwt (RFC 9068)",
        "signature_alg": "EdDSA",
        "alg_pinned": "tokens with another alg (none, HMAC, RSA) are refused before any key is looked at",
        "active_signing_keys": active.len(),
        "active_key": key.map(|(k, since, age)| json!({ "kid": k.kid, "activated_at": since, "age_days": age })),
        "key_max_age_days": SIGNING_KEY_MAX_AGE_DAYS,
        "next_key_published": next,
        "retired_keys_still_published": retired_published,
        "dpop": {
            "evaluated": false,
            "grants_requiring": dpop_grants,
            "live_grants_requiring": f.live().filter(|g| g.require_dpop).count(),
            "denials_dpop_invalid": f.decisions.by_reason.get("dpop_invalid").copied().unwrap_or(0),
        },
        "not_checked": "the signature algorithm and the per-call DPoP proof check are properties of the implementation; the audit records each decision, not the proof; whether a grant should require DPoP is not judged",
    });
    verdict(&PR_AA_04, violations, true, &[], evidence)
}

fn pr_aa_05(f: &Facts<'_>) -> Control {
    use FindingKind::{
        EmergencyUnreviewed, GrantUnused, OffboardingFailed, ReviewOverdue, ScopeUnused,
        TransferWithoutBasis,
    };
    let found = f.found(&[
        GrantUnused,
        ScopeUnused,
        ReviewOverdue,
        EmergencyUnreviewed,
        TransferWithoutBasis,
        OffboardingFailed,
    ]);
    let mut checked = 0;
    let mut approvals = 0;
    let mut self_approved = Vec::new();
    let mut insufficient = Vec::new();
    let mut not_current_owner = Vec::new();
    for g in f.held().filter(|g| g.emergency.is_none()) {
        checked += 1;
        let approvers: BTreeSet<&str> = g
            .approvals
            .iter()
            .filter(|a| a.decision == ApprovalDecision::Approve)
            .map(|a| a.approver.as_str())
            .collect();
        approvals += approvers.len();
        if approvers.contains(g.requested_by.as_str()) {
            self_approved.push(json!({ "grant": g.id, "requested_by": g.requested_by }));
        }
        if (approvers.len() as u64) < u64::from(g.approvals_required) {
            insufficient.push(json!({ "grant": g.id, "approvals": approvers.len(),
                                      "approvals_required": g.approvals_required }));
        }
        if let Some(p) = f.all_partners.get(g.partner.as_str()) {
            for a in approvers
                .iter()
                .filter(|a| !p.owners.iter().any(|o| o.as_str() == **a))
            {
                not_current_owner.push(json!({ "grant": g.id, "approver": a }));
            }
        }
    }
    let emergency = f.grants.iter().filter(|g| g.emergency.is_some()).count();
    let evidence = json!({
        "csf_1_1": "PR.AC-4",
        "grants_checked": checked,
        "distinct_approvals": approvals,
        "self_approved": listed(&self_approved),
        "insufficient_approvals": listed(&insufficient),
        "approvers_no_longer_owners": listed(&not_current_owner),
        "emergency_grants": emergency,
        "grant_expiring": f.count_found(FindingKind::GrantExpiring),
    });
    let own = Construction::new(
        SELF_APPROVAL_BY_CONSTRUCTION,
        SELF_APPROVAL_ENFORCED_BY,
        self_approved.len(),
    );
    verdict_with(
        &PR_AA_05,
        !insufficient.is_empty(),
        checked > 0 || emergency > 0,
        &found,
        evidence,
        vec![own],
    )
}

fn tenet_3(f: &Facts<'_>) -> Control {
    let live: Vec<&Grant> = f.live().collect();
    let over: Vec<Value> = live
        .iter()
        .filter(|g| g.token_ttl_seconds > MAX_TOKEN_TTL_SECONDS)
        .map(|g| json!({ "grant": g.id, "token_ttl_seconds": g.token_ttl_seconds }))
        .collect();
    let evidence = json!({
        "scope": "partial",
        "live_grants": live.len(),
        "token_ttl_limit_seconds": MAX_TOKEN_TTL_SECONDS,
        "longest_token_ttl_seconds": live.iter().map(|g| g.token_ttl_seconds).max(),
        "grants_above_default_ttl": live.iter().filter(|g| g.token_ttl_seconds > DEFAULT_TOKEN_TTL_SECONDS).count(),
        "grants_over_ttl_limit": listed(&over),
        "revocation": "revoking a grant bumps its epoch: every outstanding token dies at once",
        "access_decisions": f.decision_evidence(),
        "not_checked": "calls that bypass every Charter gateway leave no record",
    });
    let ttl = Construction::new(TTL_BY_CONSTRUCTION, TTL_ENFORCED_BY, over.len());
    let mut c = verdict_with(&TENET_3, false, !live.is_empty(), &[], evidence, vec![ttl]);
    // Nothing here is evaluated beside the sub-rule enforced by construction.
    if c.status == Status::Pass {
        c.status = Status::EnforcedByConstruction;
    }
    c
}

const POLICY_REASONS: [&str; 9] = [
    "unknown_operation",
    "scope_not_granted",
    "data_class_exceeds_grant",
    "region_not_permitted",
    "transfer_basis_missing",
    "environment_mismatch",
    "outside_time_window",
    "dpop_invalid",
    "partner_inactive",
];

fn tenet_4(f: &Facts<'_>) -> Control {
    let apis: Vec<Value> = f
        .apis
        .iter()
        .map(|a| {
            let live = f.live_revisions.get(a.id.as_str()).copied().flatten();
            json!({ "id": a.id, "name": a.name, "revision": a.revision, "live_revision": live })
        })
        .collect();
    let stale: Vec<&str> = f
        .apis
        .iter()
        .filter(|a| f.live_revisions.get(a.id.as_str()).copied().flatten() != Some(a.revision))
        .map(|a| a.id.as_str())
        .collect();
    let drift: Vec<Value> = f
        .live()
        .filter_map(|g| {
            let api = f.all_apis.get(g.api.as_str())?;
            check_reach(api, &g.scopes, g.data_class_ceiling, &g.regions)
                .err()
                .map(|e| json!({ "grant": g.id, "api_revision": api.revision, "detail": e.to_string() }))
        })
        .collect();
    let denials: BTreeMap<&str, u64> = POLICY_REASONS
        .iter()
        .filter_map(|r| f.decisions.by_reason.get(*r).map(|n| (*r, *n)))
        .collect();
    let evidence = json!({
        "apis": listed(&apis),
        "apis_with_stale_live_view": listed(&stale),
        "live_view_fresh": f.feed_fresh,
        "live_view": "this node's in-process gateway",
        "grants_reach_beyond_current_definition": listed(&drift),
        "policy_denials": denials,
        "access_decisions": f.decision_evidence(),
    });
    let violations = !stale.is_empty() || !f.feed_fresh;
    verdict(&TENET_4, violations, !f.apis.is_empty(), &[], evidence)
}

fn tenet_6(f: &Facts<'_>) -> Control {
    let o = &f.outcomes;
    let evidence = json!({
        "audit_chain": f.chain_evidence(),
        "decision_before_forward": {
            "outcomes_checked": o.checked,
            "without_prior_allow": o.without_prior_allow.len(),
            "request_ids": listed(&o.without_prior_allow),
            "unverifiable": o.unverifiable,
            "records_truncated": o.scan.truncated || f.decisions.scan.truncated,
            "since": f.since,
        },
        "access_decisions": f.decision_evidence(),
    });
    let violations = f.chain_broken() || !o.without_prior_allow.is_empty();
    verdict(&TENET_6, violations, true, &[], evidence)
}

fn tenet_7(f: &Facts<'_>) -> Control {
    let kinds: Vec<String> = f.findings.iter().map(|x| text(&x.kind)).collect();
    let evidence = json!({
        "scope": "partial",
        "audit_chain": f.chain_evidence(),
        "findings_by_kind": count_by(kinds.iter().map(String::as_str)),
        "findings_computed_at": f.now,
        "access_decisions": f.decision_evidence(),
        "not_checked": "signed checkpoints of the chain head held outside the database are not examined by this report",
    });
    verdict(&TENET_7, f.chain_broken(), true, &[], evidence)
}

fn nhi1(f: &Facts<'_>) -> Control {
    let found = f.found(&[FindingKind::OffboardingFailed, FindingKind::OwnerMissing]);
    let mut still_holding = Vec::new();
    for p in f.partners.iter().filter(|p| {
        matches!(
            p.status,
            PartnerStatus::Offboarding | PartnerStatus::Offboarded
        )
    }) {
        let grants: Vec<&str> = f
            .held()
            .filter(|g| g.partner == p.id)
            .map(|g| g.id.as_str())
            .collect();
        let creds: Vec<&str> = f
            .active_credentials()
            .filter(|c| c.credential.partner == p.id)
            .map(|c| c.credential.id.as_str())
            .collect();
        if !grants.is_empty() || !creds.is_empty() {
            still_holding.push(json!({ "partner": p.id, "status": p.status,
                                       "grants": grants, "credentials": creds }));
        }
    }
    let statuses: Vec<String> = f.partners.iter().map(|p| text(&p.status)).collect();
    let evidence = json!({
        "partners_by_status": count_by(statuses.iter().map(String::as_str)),
        "offboardings": {
            "completed": f.offboardings.iter().filter(|o| o.status == OffboardingStatus::Completed).count(),
            "failed": f.offboardings.iter().filter(|o| o.status == OffboardingStatus::Failed).count(),
            "incomplete": f.offboardings.iter().filter(|o| o.status == OffboardingStatus::Incomplete).count(),
        },
        "offboarded_partners_holding_access": listed(&still_holding),
    });
    verdict(
        &NHI1,
        !still_holding.is_empty(),
        !f.partners.is_empty(),
        &found,
        evidence,
    )
}

/// Lowercase hex of 32 bytes: what an HMAC-SHA-256 verifier looks like.
fn is_keyed_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn nhi2(f: &Facts<'_>) -> Control {
    let mut malformed = Vec::new();
    let mut verifiers = 0;
    for c in &f.credentials {
        let ok = c.verifiers.iter().all(|v| {
            verifiers += 1;
            match c.credential.kind {
                CredentialKind::ClientSecret => {
                    v.public_jwk.is_none() && v.secret_hash.as_deref().is_some_and(is_keyed_hash)
                }
                CredentialKind::PrivateKeyJwt => v.secret_hash.is_none() && v.public_jwk.is_some(),
            }
        });
        if !ok {
            malformed.push(c.credential.id.as_str());
        }
    }
    let kinds: Vec<String> = f
        .credentials
        .iter()
        .map(|c| text(&c.credential.kind))
        .collect();
    let active: Vec<String> = f
        .active_credentials()
        .map(|c| text(&c.credential.kind))
        .collect();
    let evidence = json!({
        "scope": "partial",
        "credentials_by_kind": count_by(kinds.iter().map(String::as_str)),
        "active_credentials_by_kind": count_by(active.iter().map(String::as_str)),
        "verifiers_checked": verifiers,
        "credentials_not_stored_as_keyed_hash": listed(&malformed),
        "storage": "client secrets: HMAC-SHA-256 under a key derived from the master key, shown once at issue; private_key_jwt: public JWK only",
        "not_checked": "a secret leaked on the partner's side is not observable here (NHI9 reports signs of reuse)",
    });
    verdict(
        &NHI2,
        !malformed.is_empty(),
        !f.credentials.is_empty(),
        &[],
        evidence,
    )
}

fn nhi3(f: &Facts<'_>) -> Control {
    let found = f.found(&[FindingKind::TransferWithoutBasis]);
    let live: Vec<&Grant> = f.live().collect();
    let mut exceptions = Vec::new();
    let mut missing = Vec::new();
    for g in live.iter().filter(|g| g.data_exception_required) {
        for a in g
            .approvals
            .iter()
            .filter(|a| a.decision == ApprovalDecision::Approve)
        {
            match &a.data_exception {
                Some(e) => exceptions.push(json!({ "grant": g.id, "approver": a.approver,
                                                   "data_exception": e })),
                None => missing.push(json!({ "grant": g.id, "approver": a.approver })),
            }
        }
    }
    let cross_border: Vec<Value> = live
        .iter()
        .filter_map(|g| {
            let p = f.all_partners.get(g.partner.as_str())?;
            let outside: Vec<_> = g
                .regions
                .iter()
                .filter(|r| !p.regions.contains(r))
                .collect();
            (!outside.is_empty()).then(|| {
                json!({ "grant": g.id, "regions_outside": outside,
                        "transfer_basis": g.transfer_basis })
            })
        })
        .collect();
    let saas: Vec<&Partner> = f
        .partners
        .iter()
        .copied()
        .filter(|p| p.kind == PartnerKind::SaasConnector)
        .collect();
    let evidence = json!({
        "scope": "partial",
        "saas_connector_partners": saas.len(),
        "live_saas_connector_grants": live.iter().filter(|g| saas.iter().any(|p| p.id == g.partner)).count(),
        "data_exceptions_recorded": listed(&exceptions),
        "approvals_missing_data_exception": listed(&missing),
        "cross_border_grants": listed(&cross_border),
        "not_checked": "the third party's own handling of its credentials is outside Charter's view",
    });
    verdict(
        &NHI3,
        !missing.is_empty(),
        !live.is_empty(),
        &found,
        evidence,
    )
}

fn nhi5(f: &Facts<'_>) -> Control {
    use FindingKind::{EmergencyUnreviewed, GrantUnused, ReviewOverdue, ScopeUnused};
    let found = f.found(&[GrantUnused, ScopeUnused, ReviewOverdue, EmergencyUnreviewed]);
    let held: Vec<&Grant> = f.held().collect();
    let ceilings: Vec<&str> = held.iter().map(|g| g.data_class_ceiling.as_str()).collect();
    let emergency = f.grants.iter().filter(|g| g.emergency.is_some()).count();
    let evidence = json!({
        "grants_held": held.len(),
        "grants_by_data_class_ceiling": count_by(ceilings.into_iter()),
        "scopes_granted": held.iter().map(|g| g.scopes.len()).sum::<usize>(),
        "emergency_grants": emergency,
        "unused_window_days": findings::UNUSED_DAYS,
    });
    let applicable = !held.is_empty() || emergency > 0;
    verdict(&NHI5, false, applicable, &found, evidence)
}

fn nhi7(f: &Facts<'_>) -> Control {
    let found = f.found(&[FindingKind::CredentialStale]);
    let active: Vec<&CredentialRecord> = f.active_credentials().collect();
    let over: Vec<Value> = active
        .iter()
        .filter(|c| c.credential.max_age_days > f.policy_max_age_days)
        .map(
            |c| json!({ "credential": c.credential.id, "max_age_days": c.credential.max_age_days }),
        )
        .collect();
    let evidence = json!({
        "active_credentials": active.len(),
        "policy_max_age_days": f.policy_max_age_days,
        "longest_max_age_days": active.iter().map(|c| c.credential.max_age_days).max(),
        "oldest_active_credential_days": active.iter().map(|c| f.days_since(c.credential.created_at)).max(),
        "credentials_over_policy": listed(&over),
        "grant_expiring": f.count_found(FindingKind::GrantExpiring),
        "longest_remaining_grant_days": f.live().map(|g| g.expires_at.duration_since(f.now).as_hours() / 24).max(),
    });
    let applicable = !f.credentials.is_empty() || f.live().next().is_some();
    verdict(&NHI7, !over.is_empty(), applicable, &found, evidence)
}

fn nhi9(f: &Facts<'_>) -> Control {
    let found = f.found(&[FindingKind::CredentialShared]);
    let evidence = json!({
        "active_credentials": f.active_credentials().count(),
        "window_hours": SHARED_WINDOW_HOURS,
        "network_granularity": "IPv4 /24, IPv6 /64",
        "credential_per_grant": "a credential is issued for one grant; its client id names that grant in every token",
    });
    verdict(&NHI9, false, !f.credentials.is_empty(), &found, evidence)
}

/// The report for the estate, or for one partner, from a snapshot and the findings computed
/// from it.
pub fn report(s: &Snapshot, found: &[Finding], partner: Option<&Partner>) -> ComplianceReport {
    let f = Facts::new(s, found, partner);
    let controls = vec![
        pr_aa_01(&f),
        pr_aa_03(&f),
        pr_aa_04(&f),
        pr_aa_05(&f),
        tenet_3(&f),
        tenet_4(&f),
        tenet_6(&f),
        tenet_7(&f),
        nhi1(&f),
        nhi2(&f),
        nhi3(&f),
        nhi5(&f),
        nhi7(&f),
        nhi9(&f),
    ];
    let mut summary = Summary::default();
    for c in &controls {
        match c.status {
            Status::Pass => summary.pass += 1,
            Status::Fail => summary.fail += 1,
            Status::NotApplicable => summary.not_applicable += 1,
            Status::EnforcedByConstruction => summary.enforced_by_construction += 1,
        }
    }
    ComplianceReport {
        generated_at: f.now,
        scope: match partner {
            Some(p) => ReportScope {
                kind: "partner",
                id: Some(p.id.to_string()),
                name: Some(p.name.to_string()),
            },
            None => ReportScope {
                kind: "estate",
                id: None,
                name: None,
            },
        },
        summary,
        window_days: WINDOW_DAYS,
        controls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hashes() {
        assert!(is_keyed_hash(&"ab".repeat(32)));
        assert!(!is_keyed_hash(&"AB".repeat(32)));
        assert!(!is_keyed_hash("chs_secret"));
    }

    #[test]
    fn every_finding_kind_can_fail_a_control() {
        // The kinds each control fails on, as stated in its rule.
        let rules = [
            PR_AA_01.rule,
            PR_AA_03.rule,
            PR_AA_05.rule,
            NHI1.rule,
            NHI3.rule,
            NHI5.rule,
            NHI7.rule,
            NHI9.rule,
        ]
        .join(" ");
        for kind in FindingKind::ALL {
            assert!(rules.contains(&text(&kind)), "{kind:?}");
        }
    }
}

#[cfg(test)]
mod rules {
    use charter_evidence::{ChainBreak, ChainHead};

    use super::*;
    use crate::services::findings::findings;
    use crate::services::snapshot::fixture::{credential, days, now, partner, region, world};
    use crate::services::snapshot::{DecisionFact, OutcomeFact};

    fn control<'a>(r: &'a ComplianceReport, id: &str) -> &'a Control {
        r.controls.iter().find(|c| c.control == id).unwrap()
    }

    fn run(s: &Snapshot, partner: Option<&Partner>) -> ComplianceReport {
        report(s, &findings(s, s.taken_at), partner)
    }

    /// The world, with its chain verified and its grant in use.
    fn verified() -> Snapshot {
        let mut s = world();
        s.access.chain = Some(Ok(ChainHead {
            seq: 10,
            hash: "ab".repeat(32),
        }));
        let g = s.grants[0].id.to_string();
        s.usage.last_call.insert(g.clone(), Some(now() - days(1)));
        s
    }

    fn decision(seq: u64, target: &str, request: &str, allowed: bool) -> DecisionFact {
        DecisionFact {
            seq,
            at: now() - days(1),
            target: target.to_owned(),
            allowed,
            request_id: Some(request.to_owned()),
            reason: (!allowed).then(|| "scope_not_granted".to_owned()),
        }
    }

    fn outcome(seq: u64, target: &str, request: &str) -> OutcomeFact {
        OutcomeFact {
            seq,
            target: target.to_owned(),
            request_id: Some(request.to_owned()),
        }
    }

    #[test]
    fn a_stale_credential_fails_the_controls_that_name_it() {
        let mut s = verified();
        let r = run(&s, None);
        for id in ["PR.AA-01", "PR.AA-03", "NHI7"] {
            assert_eq!(control(&r, id).status, Status::Pass, "{id}");
        }
        let g = s.grants[0].clone();
        s.credentials = vec![credential(1, &g, days(95))];
        let r = run(&s, None);
        for id in ["PR.AA-01", "PR.AA-03", "NHI7"] {
            let c = control(&r, id);
            assert_eq!(c.status, Status::Fail, "{id}");
            assert_eq!(c.findings, [FindingKind::CredentialStale], "{id}");
        }
    }

    #[test]
    fn a_grant_never_given_a_credential_fails_nothing() {
        let mut s = verified();
        s.credentials.clear();
        let r = run(&s, None);
        for id in ["PR.AA-01", "PR.AA-03", "NHI7"] {
            assert_ne!(control(&r, id).status, Status::Fail, "{id}");
        }
        let e = &control(&r, "PR.AA-01").evidence;
        assert_eq!(
            e["live_grants_without_active_credential"],
            json!([s.grants[0].id])
        );
    }

    #[test]
    fn an_unverified_or_broken_chain_fails_the_tenets_that_rest_on_it() {
        let mut s = verified();
        let r = run(&s, None);
        assert_eq!(control(&r, "Tenet-6").status, Status::Pass);
        assert_eq!(control(&r, "Tenet-7").status, Status::Pass);
        s.access.chain = None;
        let r = run(&s, None);
        assert_eq!(control(&r, "Tenet-7").status, Status::Fail);
        assert_eq!(
            control(&r, "Tenet-7").evidence["audit_chain"]["valid"],
            Value::Null
        );
        s.access.chain = Some(Err(ChainBreak {
            first_bad_record: 4,
            reason: "hash mismatch".into(),
        }));
        let r = run(&s, None);
        for id in ["Tenet-6", "Tenet-7"] {
            let c = control(&r, id);
            assert_eq!(c.status, Status::Fail, "{id}");
            assert_eq!(c.evidence["audit_chain"]["first_bad_record"], 4, "{id}");
        }
    }

    #[test]
    fn every_forwarded_call_needs_an_earlier_allow_in_scope() {
        let mut s = verified();
        let g = s.grants[0].id.to_string();
        // Newest first, as read from the log.
        s.access.decisions = vec![
            decision(5, &g, "req-2", false),
            decision(3, &g, "req-1", true),
        ];
        s.access.outcomes = vec![outcome(4, &g, "req-1")];
        let r = run(&s, None);
        let c = control(&r, "Tenet-6");
        assert_eq!(c.status, Status::Pass, "{}", c.evidence);
        assert_eq!(c.evidence["access_decisions"]["allowed"], 1);
        assert_eq!(c.evidence["access_decisions"]["denied"], 1);
        assert_eq!(
            control(&r, "Tenet-4").evidence["policy_denials"],
            json!({ "scope_not_granted": 1 })
        );

        // An upstream reached with no allow before it.
        s.access.outcomes.insert(0, outcome(6, &g, "req-unjudged"));
        let r = run(&s, None);
        let c = control(&r, "Tenet-6");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(
            c.evidence["decision_before_forward"]["request_ids"],
            json!(["req-unjudged"])
        );
        // Another partner's report does not see it.
        let other = partner(2, 1);
        s.partners.push(other.clone());
        let r = run(&s, Some(&other));
        assert_eq!(control(&r, "Tenet-6").status, Status::Pass);
        assert_eq!(
            control(&r, "Tenet-6").evidence["access_decisions"]["allowed"],
            0
        );
    }

    #[test]
    fn a_partner_report_covers_its_own_grants_and_findings() {
        let mut s = verified();
        let other = partner(2, 1);
        s.partners.push(other.clone());
        s.partners[0].regions = vec![region("us")]; // partner 1 crosses a border
        let r = run(&s, None);
        assert_eq!(control(&r, "NHI3").status, Status::Fail);
        let r = run(&s, Some(&other));
        assert_eq!(r.scope.id.as_deref(), Some(other.id.as_str()));
        assert_eq!(control(&r, "NHI3").status, Status::NotApplicable);
        assert_eq!(control(&r, "PR.AA-05").status, Status::NotApplicable);
        assert_eq!(control(&r, "NHI1").status, Status::Pass);
    }

    #[test]
    fn self_approval_is_enforced_by_construction_and_still_fails_if_stored() {
        let mut s = verified();
        let c = control(&run(&s, None), "PR.AA-05").clone();
        assert_eq!(c.status, Status::Pass);
        assert_eq!(c.by_construction.len(), 1);
        assert_eq!(c.by_construction[0].status, Status::EnforcedByConstruction);
        assert!(c.by_construction[0].enforced_by.contains("Grant::decide"));
        // A record written around the domain (the database edited) is still caught.
        s.grants[0].requested_by = s.grants[0].approvals[0].approver.clone();
        let r = run(&s, None);
        let c = control(&r, "PR.AA-05");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.by_construction[0].status, Status::Fail);
        assert_eq!(c.by_construction[0].violations, 1);
        assert_eq!(
            c.evidence["self_approved"][0]["grant"],
            s.grants[0].id.as_str()
        );
    }

    #[test]
    fn the_token_ttl_limit_is_reported_as_enforced_by_construction_not_as_passed() {
        let mut s = verified();
        let r = run(&s, None);
        // Tenet-3 evaluates nothing else: it never claims a pass it could not have failed.
        let t3 = control(&r, "Tenet-3");
        assert_eq!(t3.status, Status::EnforcedByConstruction);
        assert_eq!(r.summary.enforced_by_construction, 1);
        let aa3 = control(&r, "PR.AA-03");
        assert_eq!(
            aa3.status,
            Status::Pass,
            "the credential rules were evaluated"
        );
        assert_eq!(
            aa3.by_construction[0].status,
            Status::EnforcedByConstruction
        );
        let json = serde_json::to_value(t3).unwrap();
        assert_eq!(json["status"], "enforced_by_construction");
        assert_eq!(
            json["by_construction"][0]["status"],
            "enforced_by_construction"
        );
        // With no live grant there is nothing the rule applies to.
        let mut none = s.clone();
        none.grants.clear();
        assert_eq!(
            control(&run(&none, None), "Tenet-3").status,
            Status::NotApplicable
        );
        // A grant stored with a longer TTL (written around the domain) fails both.
        s.grants[0].token_ttl_seconds = 7200;
        let r = run(&s, None);
        for id in ["Tenet-3", "PR.AA-03"] {
            let c = control(&r, id);
            assert_eq!(c.status, Status::Fail, "{id}");
            assert_eq!(c.by_construction[0].violations, 1, "{id}");
        }
    }

    #[test]
    fn the_dpop_part_of_pr_aa_04_says_it_is_reported_not_evaluated() {
        let s = verified();
        let r = run(&s, None);
        let c = control(&r, "PR.AA-04");
        assert!(c.rule.contains("Reported, not evaluated"), "{}", c.rule);
        assert!(!c.rule.contains("DPoP is required per grant"), "{}", c.rule);
        assert_eq!(c.evidence["dpop"]["evaluated"], false);
        assert_eq!(c.evidence["dpop"]["grants_requiring"], 0);
    }
}
