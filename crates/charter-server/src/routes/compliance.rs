//! `GET /v1/compliance`: a compliance report for the estate or one partner, computed from the
//! state at the time of the call (nothing is stored). Each control of NIST CSF 2.0 (PR.AA),
//! NIST SP 800-207 (zero-trust tenets) and the OWASP NHI Top 10 (2025) is mapped to concrete
//! rules over what Charter holds — grants, credentials, partners, offboardings, signing keys,
//! the audit chain and its access-decision records — and over the posture findings, which
//! are computed once by [`super::findings::compute`] and reused here, never re-derived.
//!
//! Every control answers `pass`, `fail` or `not_applicable` (nothing in scope to assess),
//! states its rule, carries the numbers and ids behind the verdict, and lists the finding
//! kinds that made it fail. Where a control reaches beyond what Charter can observe, its
//! evidence says so (`"scope": "partial"` and `not_checked`).
//!
//! `?format=html` renders the same report as a server-side page (no script); every string
//! that reaches it is escaped by [`escape_html`].

use charter_evidence::action;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use charter_core::grant::{DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, check_reach};
use charter_core::offboarding::{Offboarding, OffboardingStatus};
use charter_core::{
    Api, ApprovalDecision, CredentialKind, CredentialStatus, Grant, GrantStatus, Partner,
    PartnerKind, PartnerStatus, Principal, Role,
};
use charter_evidence::{ChainBreak, ChainHead};
use charter_store::{AuditQuery, AuditRecord, CredentialRecord, ListFilter};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::findings::{self, Finding, FindingKind, SHARED_WINDOW_HOURS};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::keyring::{KeyRecord, KeyStatus};
use crate::state::{AppState, Shared};
use crate::usage::{MAX_SCAN, Scan};

/// Days of audit records the decision-based rules read.
pub const WINDOW_DAYS: i64 = 30;
/// The active token-signing key should be younger than this (PR.AA-04).
pub const SIGNING_KEY_MAX_AGE_DAYS: i64 = 90;
/// Ids listed per violation in a control's evidence (the counts are always complete).
const MAX_LISTED: usize = 50;
/// Decision records are read this far before the window, so that an outcome early in the
/// window finds the decision that preceded it.
const DECISION_LEAD: SignedDuration = SignedDuration::from_secs(600);
/// Records of several nodes reach the chain in commit order, which may differ from their
/// timestamps by a little; a scan reads this far past the start of its period.
const SKEW: SignedDuration = SignedDuration::from_secs(300);

const CSF: &str = "NIST CSF 2.0";
const ZTA: &str = "NIST SP 800-207";
const NHI: &str = "OWASP NHI Top 10 (2025)";

/// The frameworks, in report order.
pub const FRAMEWORKS: [&str; 3] = [CSF, ZTA, NHI];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Html,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// Report on this partner only (default: the whole estate).
    pub partner: Option<String>,
    /// `json` (default) or `html`.
    pub format: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Nothing in scope that the control's rules apply to.
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotApplicable => "not_applicable",
        }
    }
}

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
    rule: "No owner_missing, credential_stale or credential_shared finding: every partner not yet offboarded and every API has an enabled accountable owner, every active credential is within its maximum age, every live grant has an active credential, and no client id calls from several networks.",
};
const PR_AA_03: Def = Def {
    framework: CSF,
    control: "PR.AA-03",
    title: "Users, services, and hardware are authenticated",
    rule: "Every live grant authenticates its workload with client_secret or private_key_jwt credentials whose maximum age is at most the server policy and that are not past it (no credential_stale finding about a credential), and every live grant's token TTL is at most 3600 s.",
};
const PR_AA_04: Def = Def {
    framework: CSF,
    control: "PR.AA-04",
    title: "Identity assertions are protected, conveyed, and verified",
    rule: "Access tokens are EdDSA-signed JWTs (typ at+jwt, alg pinned); there is exactly one active signing key, activated at most 90 days ago, and a next key is already published for rotation. DPoP is required per grant and verified per call by the gateway.",
};
const PR_AA_05: Def = Def {
    framework: CSF,
    control: "PR.AA-05",
    title: "Access permissions, entitlements, and authorizations are defined in a policy, managed, enforced, and reviewed, and incorporate the principles of least privilege and separation of duties (PR.AC-4 in CSF 1.1)",
    rule: "Every active or suspended grant that is not break-glass holds at least approvals_required approvals from distinct principals, none of them its requester; and there is no grant_unused, scope_unused, review_overdue, emergency_unreviewed, transfer_without_basis or offboarding_failed finding (grant_expiring is reported, not failed).",
};
const TENET_3: Def = Def {
    framework: ZTA,
    control: "Tenet-3",
    title: "Access to individual enterprise resources is granted on a per-session basis",
    rule: "Every live grant's access tokens live at most 3600 s (the session); each call through a gateway leaves an access.decision record, counted over the window.",
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

/// Everything the rules look at, read once per report and cut to its scope.
struct Facts {
    now: Timestamp,
    since: Timestamp,
    estate: bool,
    /// Every partner (cross-border checks need the grant's partner).
    all_partners: HashMap<String, Partner>,
    all_apis: HashMap<String, Api>,
    partners: Vec<Partner>,
    apis: Vec<Api>,
    grants: Vec<Grant>,
    credentials: Vec<CredentialRecord>,
    offboardings: Vec<Offboarding>,
    findings: Vec<Finding>,
    principals: Vec<Principal>,
    keys: Vec<KeyRecord>,
    chain: Result<ChainHead, ChainBreak>,
    decisions: Decisions,
    outcomes: Outcomes,
    policy_max_age_days: u32,
    feed_fresh: bool,
    live_revisions: HashMap<String, Option<u32>>,
}

/// The partner a finding concerns, read from its subject (a finding about an API has none).
fn finding_partner(
    f: &Finding,
    grants: &HashMap<&str, &Grant>,
    credentials: &HashMap<&str, &CredentialRecord>,
) -> Option<String> {
    let id = f.subject.id.as_str();
    let of_grant = |g: &str| grants.get(g).map(|g| g.partner.to_string());
    match f.subject.kind {
        "partner" => Some(id.to_owned()),
        "grant" => of_grant(id),
        "credential" => credentials
            .get(id)
            .map(|c| c.credential.partner.to_string())
            .or_else(|| f.evidence["grant"].as_str().and_then(of_grant))
            .or_else(|| f.evidence["grants"][0].as_str().and_then(of_grant)),
        "offboarding" => f.evidence["partner"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// Audit records of one action at or after `since`, newest first, handed to `f` with their
/// sequence number; reads at most [`MAX_SCAN`] records.
async fn scan_action(
    state: &AppState,
    action: &str,
    since: Timestamp,
    mut f: impl FnMut(u64, &AuditRecord),
) -> ApiResult<Scan> {
    let mut scan = Scan::default();
    let mut before = 0;
    loop {
        let page = state
            .repo
            .store
            .audit_query(&AuditQuery {
                before,
                action: Some(action.to_owned()),
                limit: 1000,
                newest_first: true,
                ..AuditQuery::default()
            })
            .await?;
        for row in &page {
            scan.records += 1;
            let rec: AuditRecord = serde_json::from_str(&row.body).map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!("audit record {} unreadable: {e}", row.seq))
            })?;
            match rec.at.parse::<Timestamp>() {
                Ok(at) if at < since - SKEW => return Ok(scan),
                Ok(at) if at >= since => f(row.seq, &rec),
                _ => {}
            }
            if scan.records >= MAX_SCAN {
                scan.truncated = true;
                return Ok(scan);
            }
        }
        match page.last() {
            Some(last) if page.len() == 1000 => before = last.seq,
            _ => return Ok(scan),
        }
    }
}

impl Facts {
    async fn load(state: &AppState, partner: Option<&Partner>) -> ApiResult<Self> {
        let now = state.now();
        let since = now - SignedDuration::from_hours(24 * WINDOW_DAYS);
        let all = ListFilter::default;
        let partners: Vec<Partner> = findings::all(state, all()).await?;
        let apis: Vec<Api> = findings::all(state, all()).await?;
        let grants: Vec<Grant> = findings::all(state, all()).await?;
        let credentials: Vec<CredentialRecord> = findings::all(state, all()).await?;
        let offboardings: Vec<Offboarding> = findings::all(state, all()).await?;
        let principals: Vec<Principal> = findings::all(state, all()).await?;
        let keys: Vec<KeyRecord> = findings::all(state, all()).await?;
        let mut found = findings::compute(state, None, now).await?;
        let chain = charter_store::verify_chain(state.repo.store.as_ref()).await?;

        let scope = partner.map(|p| p.id.to_string());
        let in_scope = |p: &str| scope.as_deref().is_none_or(|s| s == p);
        {
            let by_grant: HashMap<&str, &Grant> =
                grants.iter().map(|g| (g.id.as_str(), g)).collect();
            let by_cred: HashMap<&str, &CredentialRecord> = credentials
                .iter()
                .map(|c| (c.credential.id.as_str(), c))
                .collect();
            if scope.is_some() {
                found.retain(|f| {
                    finding_partner(f, &by_grant, &by_cred).is_some_and(|p| in_scope(&p))
                });
            }
        }
        let grants: Vec<Grant> = grants
            .into_iter()
            .filter(|g| in_scope(g.partner.as_str()))
            .collect();
        let scoped_grants: BTreeSet<String> = grants.iter().map(|g| g.id.to_string()).collect();
        let used_apis: BTreeSet<&str> = grants.iter().map(|g| g.api.as_str()).collect();
        let scoped_apis: Vec<Api> = apis
            .iter()
            .filter(|a| scope.is_none() || used_apis.contains(a.id.as_str()))
            .cloned()
            .collect();
        let live_revisions = scoped_apis
            .iter()
            .map(|a| {
                (
                    a.id.to_string(),
                    state.repo.live.api(a.id.as_str()).map(|l| l.revision),
                )
            })
            .collect();
        let target_in_scope = |target: &str| scope.is_none() || scoped_grants.contains(target);

        let mut decisions = Decisions::default();
        let scan = scan_action(
            state,
            action::ACCESS_DECISION,
            since - DECISION_LEAD,
            |seq, r| {
                decisions.oldest_seq = Some(seq);
                if !target_in_scope(&r.target) {
                    return;
                }
                let allowed = r.details["decision"] == "allow";
                if let Some(id) = r.details["request_id"].as_str()
                    && allowed
                {
                    decisions.allowed_requests.insert(id.to_owned(), seq);
                }
                // The lead before the window only serves to pair outcomes.
                if r.at.parse::<Timestamp>().is_ok_and(|at| at < since) {
                    return;
                }
                if allowed {
                    decisions.allowed += 1;
                } else {
                    decisions.denied += 1;
                    let reason = r.reason.clone().unwrap_or_else(|| "unknown".into());
                    *decisions.by_reason.entry(reason).or_default() += 1;
                }
            },
        )
        .await?;
        decisions.scan = scan;
        if !decisions.scan.truncated {
            decisions.oldest_seq = None;
        }

        let mut outcomes = Outcomes::default();
        let scan = scan_action(state, action::ACCESS_OUTCOME, since, |seq, r| {
            if !target_in_scope(&r.target) {
                return;
            }
            outcomes.checked += 1;
            let request = r.details["request_id"].as_str().unwrap_or_default();
            match decisions.allowed_requests.get(request) {
                Some(d) if *d < seq => {}
                _ if decisions.oldest_seq.is_some_and(|oldest| seq <= oldest) => {
                    outcomes.unverifiable += 1;
                }
                _ => outcomes.without_prior_allow.push(request.to_owned()),
            }
        })
        .await?;
        outcomes.scan = scan;

        Ok(Self {
            now,
            since,
            estate: scope.is_none(),
            all_partners: partners
                .iter()
                .map(|p| (p.id.to_string(), p.clone()))
                .collect(),
            all_apis: apis.iter().map(|a| (a.id.to_string(), a.clone())).collect(),
            partners: partners
                .into_iter()
                .filter(|p| in_scope(p.id.as_str()))
                .collect(),
            apis: scoped_apis,
            credentials: credentials
                .into_iter()
                .filter(|c| in_scope(c.credential.partner.as_str()))
                .collect(),
            offboardings: offboardings
                .into_iter()
                .filter(|o| in_scope(o.partner.as_str()))
                .collect(),
            grants,
            findings: found,
            principals,
            keys,
            chain,
            decisions,
            outcomes,
            policy_max_age_days: state.settings.credential_max_age_days,
            feed_fresh: state.feed.fresh(),
            live_revisions,
        })
    }

    /// Grants that let their partner in now.
    fn live(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().filter(|g| g.is_live(self.now))
    }

    /// Grants that hold access (active or suspended), break-glass included.
    fn held(&self) -> impl Iterator<Item = &Grant> {
        self.grants
            .iter()
            .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Suspended))
    }

    /// Credentials that can authenticate now.
    fn active_credentials(&self) -> impl Iterator<Item = &CredentialRecord> {
        self.credentials.iter().filter(|c| {
            c.credential.status == CredentialStatus::Active && self.now < c.credential.expires_at
        })
    }

    fn found(&self, kinds: &[FindingKind]) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| kinds.contains(&f.kind))
            .collect()
    }

    fn count_found(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    fn days_since(&self, t: Timestamp) -> i64 {
        self.now.duration_since(t).as_hours() / 24
    }

    fn chain_evidence(&self) -> Value {
        match &self.chain {
            Ok(head) => json!({ "valid": true, "records": head.seq, "head": head }),
            Err(brk) => json!({ "valid": false, "error": "chain_broken",
                               "first_bad_record": brk.first_bad_record, "detail": brk.reason }),
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

fn text<T: Serialize>(v: &T) -> String {
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
    }
}

fn pr_aa_01(f: &Facts) -> Control {
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

fn pr_aa_03(f: &Facts) -> Control {
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
        .found(&[FindingKind::CredentialStale])
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
    let violations = !long_ttl.is_empty() || !over_policy.is_empty();
    verdict(&PR_AA_03, violations, !live.is_empty(), &found, evidence)
}

fn pr_aa_04(f: &Facts) -> Control {
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
            "grants_requiring": dpop_grants,
            "live_grants_requiring": f.live().filter(|g| g.require_dpop).count(),
            "denials_dpop_invalid": f.decisions.by_reason.get("dpop_invalid").copied().unwrap_or(0),
        },
        "not_checked": "the signature algorithm and the per-call DPoP proof check are properties of the implementation; the audit records each decision, not the proof",
    });
    verdict(&PR_AA_04, violations, true, &[], evidence)
}

fn pr_aa_05(f: &Facts) -> Control {
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
    let violations = !self_approved.is_empty() || !insufficient.is_empty();
    verdict(
        &PR_AA_05,
        violations,
        checked > 0 || emergency > 0,
        &found,
        evidence,
    )
}

fn tenet_3(f: &Facts) -> Control {
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
    verdict(&TENET_3, !over.is_empty(), !live.is_empty(), &[], evidence)
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

fn tenet_4(f: &Facts) -> Control {
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

fn tenet_6(f: &Facts) -> Control {
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
    let violations = f.chain.is_err() || !o.without_prior_allow.is_empty();
    verdict(&TENET_6, violations, true, &[], evidence)
}

fn tenet_7(f: &Facts) -> Control {
    let kinds: Vec<String> = f.findings.iter().map(|x| text(&x.kind)).collect();
    let evidence = json!({
        "scope": "partial",
        "audit_chain": f.chain_evidence(),
        "findings_by_kind": count_by(kinds.iter().map(String::as_str)),
        "findings_computed_at": f.now,
        "access_decisions": f.decision_evidence(),
        "not_checked": "signed checkpoints of the chain head held outside the database are not examined by this report",
    });
    verdict(&TENET_7, f.chain.is_err(), true, &[], evidence)
}

fn nhi1(f: &Facts) -> Control {
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

fn nhi2(f: &Facts) -> Control {
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

fn nhi3(f: &Facts) -> Control {
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

fn nhi5(f: &Facts) -> Control {
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

fn nhi7(f: &Facts) -> Control {
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

fn nhi9(f: &Facts) -> Control {
    let found = f.found(&[FindingKind::CredentialShared]);
    let evidence = json!({
        "active_credentials": f.active_credentials().count(),
        "window_hours": SHARED_WINDOW_HOURS,
        "network_granularity": "IPv4 /24, IPv6 /64",
        "credential_per_grant": "a credential is issued for one grant; its client id names that grant in every token",
    });
    verdict(&NHI9, false, !f.credentials.is_empty(), &found, evidence)
}

/// Builds the report for the estate or one partner.
pub async fn build(state: &AppState, partner: Option<&Partner>) -> ApiResult<ComplianceReport> {
    let f = Facts::load(state, partner).await?;
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
        }
    }
    Ok(ComplianceReport {
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
    })
}

/// The compliance report: NIST CSF 2.0 PR.AA-01/03/04/05, NIST SP 800-207 tenets 3, 4, 6
/// and 7, OWASP NHI Top 10 (2025) NHI1/2/3/5/7/9, each pass/fail from the current state
/// with its evidence. Auditors, stewards and admins read the estate and any partner; an
/// approver reads the partners they own (`?partner=`).
#[utoipa::path(get, path = "/v1/compliance", tag = "compliance", params(ComplianceQuery),
    responses((status = 200, body = ComplianceReport, description = "JSON, or text/html with `?format=html`"),
              (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<ComplianceQuery>,
) -> ApiResult<Response> {
    caller.require(&[Role::Auditor, Role::Steward, Role::Approver])?;
    let partner = match &q.partner {
        Some(id) => Some(state.repo.load::<Partner>(id, "partner").await?.value),
        None => None,
    };
    if !caller.reads_all() {
        let owns = partner
            .as_ref()
            .is_some_and(|p| p.owners.contains(&caller.principal.id));
        if !owns {
            return Err(ApiError::Forbidden(
                "an approver reads the compliance report of a partner they own (?partner=)".into(),
            ));
        }
    }
    let report = build(&state, partner.as_ref()).await?;
    Ok(match q.format.unwrap_or_default() {
        Format::Json => Json(report).into_response(),
        Format::Html => {
            let mut resp = render_html(&report).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            resp
        }
    })
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Evidence as nested definition lists; every string escaped.
fn html_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("&#8212;"),
        Value::Bool(b) => out.push_str(if *b { "yes" } else { "no" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&escape_html(s)),
        Value::Array(items) if items.is_empty() => out.push_str("none"),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| {
                    let mut s = String::new();
                    html_value(i, &mut s);
                    s
                })
                .collect();
            out.push_str(&parts.join(", "));
        }
        Value::Array(items) => {
            out.push_str("<ul>");
            for i in items {
                out.push_str("<li>");
                html_value(i, out);
                out.push_str("</li>");
            }
            out.push_str("</ul>");
        }
        Value::Object(map) if map.is_empty() => out.push_str("none"),
        Value::Object(map) => {
            out.push_str("<dl>");
            for (k, v) in map {
                let _ = write!(out, "<dt>{}</dt><dd>", escape_html(k));
                html_value(v, out);
                out.push_str("</dd>");
            }
            out.push_str("</dl>");
        }
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:2em}\
th,td{border:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}\
th{background:#f3f3f3}.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;\
font-weight:bold;color:#fff}.pass{background:#2e7d32}.fail{background:#c62828}\
.not_applicable{background:#757575}dl{margin:0}dt{font-weight:bold;float:left;clear:left;\
margin-right:.4em}dt:after{content:':'}dd{margin:0 0 .2em 0}dd dl{margin-left:1em}\
ul{margin:0;padding-left:1.2em}.rule{color:#444;font-size:.95em}";

fn badge(status: Status) -> String {
    let s = status.as_str();
    format!("<span class=\"badge {s}\">{}</span>", s.replace('_', " "))
}

/// The report as a page a person reads: a summary, then one table per framework.
pub fn render_html(r: &ComplianceReport) -> String {
    let scope = match (&r.scope.id, &r.scope.name) {
        (Some(id), Some(name)) => format!(
            "partner {} (<code>{}</code>)",
            escape_html(name),
            escape_html(id)
        ),
        _ => "the whole estate".to_owned(),
    };
    let generated = escape_html(&r.generated_at.to_string());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Charter compliance report</title><style>{STYLE}</style></head><body>\
         <h1>Compliance report</h1><p>Scope: {scope}. Generated at {generated} from the \
         current state; decision-based rules read the last {} days of the audit log.</p>\
         <p>{} {} &#160; {} {} &#160; {} {}</p>",
        r.window_days,
        badge(Status::Pass),
        r.summary.pass,
        badge(Status::Fail),
        r.summary.fail,
        badge(Status::NotApplicable),
        r.summary.not_applicable,
    );
    for framework in FRAMEWORKS {
        let _ = write!(
            out,
            "<h2>{}</h2><table><thead><tr><th>Control</th><th>Status</th><th>Rule</th>\
             <th>Evidence</th><th>Findings</th></tr></thead><tbody>",
            escape_html(framework)
        );
        for c in r.controls.iter().filter(|c| c.framework == framework) {
            let mut evidence = String::new();
            html_value(&c.evidence, &mut evidence);
            let findings: Vec<String> = c.findings.iter().map(|k| escape_html(&text(k))).collect();
            let _ = write!(
                out,
                "<tr id=\"{id}\"><td><strong>{id}</strong><br>{title}</td><td>{badge}</td>\
                 <td class=\"rule\">{rule}</td><td>{evidence}</td><td>{findings}</td></tr>",
                id = escape_html(c.control),
                title = escape_html(c.title),
                badge = badge(c.status),
                rule = escape_html(c.rule),
                findings = if findings.is_empty() {
                    "none".to_owned()
                } else {
                    findings.join(", ")
                },
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape() {
        assert_eq!(
            escape_html(r#"<script>alert("x & 'y'")</script>"#),
            "&lt;script&gt;alert(&quot;x &amp; &#39;y&#39;&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain"), "plain");
    }

    #[test]
    fn evidence_renders_escaped() {
        let mut out = String::new();
        html_value(
            &json!({ "name": "<b>", "ids": ["a<", "b"], "n": 3, "none": [], "x": null,
                     "rows": [{ "grant": "g&1" }] }),
            &mut out,
        );
        assert!(!out.contains("<b>"), "{out}");
        assert!(out.contains("&lt;b&gt;"), "{out}");
        assert!(out.contains("a&lt;, b"), "{out}");
        assert!(
            out.contains("<li><dl><dt>grant</dt><dd>g&amp;1</dd></dl></li>"),
            "{out}"
        );
    }

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
