//! `/v1/findings`: posture problems, computed from the current state and the audit log at
//! the time of the call (nothing is stored). Each finding names its kind, a severity, the
//! subject it is about, the evidence behind it, and the OWASP NHI Top 10 (2025) risk and
//! NIST CSF 2.0 subcategory fixed for its kind (DESIGN.md, "Findings").

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use charter_core::review::{POST_INCIDENT_HOURS, Review, ReviewKind};
use charter_core::{
    Api, CredentialStatus, Grant, GrantStatus, Partner, PartnerStatus, Principal, Role,
};
use charter_store::{CredentialRecord, Kind, ListFilter, Record, Versioned};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::state::{AppState, Shared};
use crate::usage;

/// A grant ending within this many days, with no renewal pending, is `grant_expiring`.
pub const EXPIRING_DAYS: i64 = 7;
/// A grant older than this with no allowed call in as long is `grant_unused`.
pub const UNUSED_DAYS: i64 = 30;
/// `credential_shared` looks at this many hours of access decisions.
pub const SHARED_WINDOW_HOURS: i64 = 24;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    OwnerMissing,
    GrantExpiring,
    GrantUnused,
    ScopeUnused,
    CredentialStale,
    CredentialShared,
    ReviewOverdue,
    EmergencyUnreviewed,
    TransferWithoutBasis,
    OffboardingFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
}

impl FindingKind {
    pub const ALL: [FindingKind; 10] = [
        Self::OwnerMissing,
        Self::GrantExpiring,
        Self::GrantUnused,
        Self::ScopeUnused,
        Self::CredentialStale,
        Self::CredentialShared,
        Self::ReviewOverdue,
        Self::EmergencyUnreviewed,
        Self::TransferWithoutBasis,
        Self::OffboardingFailed,
    ];

    /// `(severity, OWASP NHI Top 10 2025, NIST CSF 2.0)`: fixed per kind.
    pub fn mapping(self) -> (Severity, &'static str, &'static str) {
        use Severity::{Critical, High, Medium};
        match self {
            Self::OwnerMissing => (High, "NHI1", "PR.AA-01"),
            Self::GrantExpiring => (Medium, "NHI7", "PR.AA-05"),
            Self::GrantUnused => (Medium, "NHI5", "PR.AA-05"),
            Self::ScopeUnused => (Medium, "NHI5", "PR.AA-05"),
            Self::CredentialStale => (High, "NHI7", "PR.AA-01"),
            Self::CredentialShared => (High, "NHI9", "PR.AA-01"),
            Self::ReviewOverdue => (High, "NHI5", "PR.AA-05"),
            Self::EmergencyUnreviewed => (Critical, "NHI5", "PR.AA-05"),
            Self::TransferWithoutBasis => (Critical, "NHI3", "PR.AA-05"),
            Self::OffboardingFailed => (Critical, "NHI1", "PR.AA-05"),
        }
    }
}

/// What a finding is about: `{type, id}` (`partner`, `api`, `grant`, `credential`,
/// `offboarding`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub subject: Subject,
    #[schema(value_type = Object)]
    pub evidence: Value,
    pub owasp_nhi: &'static str,
    pub csf: &'static str,
    /// The partner and API the finding concerns, for who may see it.
    #[serde(skip)]
    partner: Option<String>,
    #[serde(skip)]
    api: Option<String>,
}

impl Finding {
    fn new(kind: FindingKind, subject: (&'static str, &str), evidence: Value) -> Self {
        let (severity, owasp_nhi, csf) = kind.mapping();
        Self {
            kind,
            severity,
            subject: Subject {
                kind: subject.0,
                id: subject.1.to_owned(),
            },
            evidence,
            owasp_nhi,
            csf,
            partner: None,
            api: None,
        }
    }

    fn about(mut self, partner: Option<&str>, api: Option<&str>) -> Self {
        self.partner = partner.map(str::to_owned);
        self.api = api.map(str::to_owned);
        self
    }

    fn of_grant(kind: FindingKind, g: &Grant, evidence: Value) -> Self {
        Self::new(kind, ("grant", g.id.as_str()), evidence)
            .about(Some(g.partner.as_str()), Some(g.api.as_str()))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// Only findings of this kind.
    pub kind: Option<FindingKind>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingList {
    pub items: Vec<Finding>,
    /// Findings are not paged: always `null`.
    pub next: Option<String>,
    /// The time the findings reflect.
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: Timestamp,
}

/// Every object of a kind (all pages).
pub(crate) async fn all<T: Record>(state: &AppState, filter: ListFilter) -> ApiResult<Vec<T>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .repo
            .store
            .list(T::KIND, &filter, after.as_deref(), 500)
            .await?;
        for doc in &page {
            out.push(Versioned::<T>::from_doc(doc)?.value);
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.clone()),
            _ => return Ok(out),
        }
    }
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// What the rules look at, read once per call.
struct World {
    now: Timestamp,
    partners: Vec<Partner>,
    apis: Vec<Api>,
    grants: Vec<Grant>,
}

impl World {
    fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id.as_str() == id)
    }

    fn active(&self) -> impl Iterator<Item = &Grant> {
        self.grants
            .iter()
            .filter(|g| g.status == GrantStatus::Active && self.now < g.expires_at)
    }
}

/// Principals that exist and are enabled, by id (looked up once each).
struct Principals<'a> {
    state: &'a AppState,
    seen: HashMap<String, Option<Principal>>,
}

impl Principals<'_> {
    async fn get(&mut self, id: &str) -> ApiResult<Option<&Principal>> {
        if !self.seen.contains_key(id) {
            let p = match self.state.repo.store.get(Kind::Principal, id).await? {
                Some(doc) => Some(Versioned::<Principal>::from_doc(&doc)?.value),
                None => None,
            };
            self.seen.insert(id.to_owned(), p);
        }
        Ok(self.seen.get(id).and_then(Option::as_ref))
    }

    /// `None` if the principal is accountable; else why not (`missing`, `disabled`).
    async fn unaccountable(&mut self, id: &str) -> ApiResult<Option<&'static str>> {
        Ok(match self.get(id).await? {
            None => Some("missing"),
            Some(p) if p.disabled => Some("disabled"),
            Some(_) => None,
        })
    }
}

/// `owner_missing`: a partner (not yet offboarded) none of whose owners is an enabled
/// principal, or an API whose owner principal is disabled or gone.
async fn owner_missing(state: &AppState, w: &World) -> ApiResult<Vec<Finding>> {
    let mut principals = Principals {
        state,
        seen: HashMap::new(),
    };
    let mut out = Vec::new();
    for p in w
        .partners
        .iter()
        .filter(|p| p.status != PartnerStatus::Offboarded)
    {
        let mut unaccountable = Vec::new();
        for o in &p.owners {
            if let Some(why) = principals.unaccountable(o.as_str()).await? {
                unaccountable.push(json!({ "owner": o, "state": why }));
            }
        }
        if unaccountable.len() == p.owners.len() {
            out.push(
                Finding::new(
                    FindingKind::OwnerMissing,
                    ("partner", p.id.as_str()),
                    json!({ "name": p.name, "owners": p.owners, "unaccountable_owners": unaccountable }),
                )
                .about(Some(p.id.as_str()), None),
            );
        }
    }
    for a in &w.apis {
        if let Some(why) = principals.unaccountable(a.owner.as_str()).await? {
            out.push(
                Finding::new(
                    FindingKind::OwnerMissing,
                    ("api", a.id.as_str()),
                    json!({ "name": a.name, "owner": a.owner, "owner_state": why }),
                )
                .about(None, Some(a.id.as_str())),
            );
        }
    }
    Ok(out)
}

/// `grant_expiring`: an active (not break-glass) grant ending within 7 days with no other
/// request pending for the same partner and API.
fn grant_expiring(w: &World) -> Vec<Finding> {
    w.active()
        .filter(|g| g.emergency.is_none() && g.expires_at <= w.now + days(EXPIRING_DAYS))
        .filter(|g| {
            !w.grants.iter().any(|o| {
                o.id != g.id
                    && o.status == GrantStatus::Pending
                    && o.partner == g.partner
                    && o.api == g.api
            })
        })
        .map(|g| {
            let left = g.expires_at.duration_since(w.now);
            Finding::of_grant(
                FindingKind::GrantExpiring,
                g,
                json!({ "expires_at": g.expires_at, "hours_left": left.as_hours(),
                        "renewal_pending": false }),
            )
        })
        .collect()
}

/// `grant_unused`: an active grant older than 30 days with no allowed call in 30 days.
async fn grant_unused(state: &AppState, w: &World) -> ApiResult<Vec<Finding>> {
    let since = w.now - days(UNUSED_DAYS);
    let mut out = Vec::new();
    for g in w
        .active()
        .filter(|g| g.activated_at.is_some_and(|a| a <= since))
    {
        let last = usage::last_allowed_call(state.repo.store.as_ref(), g.id.as_str(), since, w.now)
            .await?;
        if last.is_none() {
            out.push(Finding::of_grant(
                FindingKind::GrantUnused,
                g,
                json!({ "activated_at": g.activated_at, "window_days": UNUSED_DAYS,
                        "since": since, "allowed_calls": 0 }),
            ));
        }
    }
    Ok(out)
}

/// `scope_unused`: a scope of an active grant with no allowed call over the grant's review
/// period, once the grant is older than that period. One finding per grant, listing them.
async fn scope_unused(state: &AppState, w: &World) -> ApiResult<Vec<Finding>> {
    let mut out = Vec::new();
    for g in w.active() {
        let period = i64::from(g.recertify_every_days);
        let since = w.now - days(period);
        if g.activated_at.is_none_or(|a| a > since) {
            continue;
        }
        let used = usage::used_scopes(state.repo.store.as_ref(), g, since, w.now).await?;
        let unused: Vec<_> = g
            .scopes
            .iter()
            .filter(|s| !used.contains(s.as_str()))
            .collect();
        if !unused.is_empty() {
            out.push(Finding::of_grant(
                FindingKind::ScopeUnused,
                g,
                json!({ "scopes": unused, "used_scopes": used, "period_days": period,
                        "since": since }),
            ));
        }
    }
    Ok(out)
}

/// `credential_stale`: an active credential past its maximum age on a grant that is not
/// over, or an active grant with no active credential at all.
async fn credential_stale(state: &AppState, w: &World) -> ApiResult<Vec<Finding>> {
    let mut out = Vec::new();
    for g in w
        .grants
        .iter()
        .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Suspended))
    {
        let creds = all::<CredentialRecord>(
            state,
            ListFilter {
                parent: Some(g.id.to_string()),
                status: None,
            },
        )
        .await?;
        let active: Vec<_> = creds
            .iter()
            .map(|r| &r.credential)
            .filter(|c| c.status == CredentialStatus::Active)
            .collect();
        for c in active.iter().filter(|c| w.now >= c.expires_at) {
            out.push(
                Finding::new(
                    FindingKind::CredentialStale,
                    ("credential", c.id.as_str()),
                    json!({ "client_id": c.client_id, "grant": g.id, "created_at": c.created_at,
                            "max_age_days": c.max_age_days, "past_max_age_since": c.expires_at }),
                )
                .about(Some(g.partner.as_str()), Some(g.api.as_str())),
            );
        }
        if active.is_empty() && g.status == GrantStatus::Active && w.now < g.expires_at {
            out.push(Finding::of_grant(
                FindingKind::CredentialStale,
                g,
                json!({ "active_credentials": 0, "credentials": creds.len(),
                        "detail": "the grant has no active credential" }),
            ));
        }
    }
    Ok(out)
}

/// `credential_shared`: one client id seen in access decisions from two or more source
/// networks (IPv4 /24, IPv6 /64) in the last 24 hours.
///
/// A credential cannot span grants by construction: it is issued for one grant, its client
/// id is the unique key of that one credential record, and every token it obtains names
/// that grant. So the observable form of sharing is the same client id calling from
/// several networks (several workloads, or a leaked secret).
async fn credential_shared(state: &AppState, w: &World) -> ApiResult<Vec<Finding>> {
    let since = w.now - SignedDuration::from_hours(SHARED_WINDOW_HOURS);
    let (clients, scan) = usage::sources_by_client(state.repo.store.as_ref(), since, w.now).await?;
    let mut out = Vec::new();
    for (client_id, src) in clients.into_iter().filter(|(_, s)| s.networks.len() >= 2) {
        let record = match state
            .repo
            .store
            .get_by_lookup(Kind::Credential, &client_id)
            .await?
        {
            Some(doc) => Some(Versioned::<CredentialRecord>::from_doc(&doc)?.value),
            None => None,
        };
        let credential_id = record
            .as_ref()
            .map(|r| r.credential.id.to_string())
            .or(src.credential.clone())
            .unwrap_or_else(|| client_id.clone());
        let grant = record
            .as_ref()
            .map(|r| r.credential.grant.to_string())
            .or_else(|| src.grants.iter().next().cloned());
        let g = grant
            .as_deref()
            .and_then(|id| w.grants.iter().find(|g| g.id.as_str() == id));
        out.push(
            Finding::new(
                FindingKind::CredentialShared,
                ("credential", &credential_id),
                json!({ "client_id": client_id, "networks": src.networks, "calls": src.calls,
                        "grants": src.grants, "window_hours": SHARED_WINDOW_HOURS,
                        "records_truncated": scan.truncated }),
            )
            .about(g.map(|g| g.partner.as_str()), g.map(|g| g.api.as_str())),
        );
    }
    Ok(out)
}

/// `review_overdue`: an active or suspended grant whose recertification is past due.
fn review_overdue(w: &World) -> Vec<Finding> {
    w.grants
        .iter()
        .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Suspended))
        .filter_map(|g| {
            let due = g.review_due_at.filter(|d| *d <= w.now)?;
            Some(Finding::of_grant(
                FindingKind::ReviewOverdue,
                g,
                json!({ "review_due_at": due, "status": g.status, "status_reason": g.status_reason,
                        "days_overdue": w.now.duration_since(due).as_hours() / 24 }),
            ))
        })
        .collect()
}

/// `emergency_unreviewed`: break-glass whose post-incident review is not attested 72 hours
/// after the grant opened (or that has no such review at all).
async fn emergency_unreviewed(state: &AppState, w: &World) -> ApiResult<Vec<Finding>> {
    let mut out = Vec::new();
    for g in w.grants.iter().filter(|g| g.emergency.is_some()) {
        let opened = g.activated_at.unwrap_or(g.requested_at);
        let due = opened + SignedDuration::from_hours(POST_INCIDENT_HOURS);
        if w.now < due {
            continue;
        }
        let reviews = all::<Review>(
            state,
            ListFilter {
                parent: Some(g.id.to_string()),
                status: None,
            },
        )
        .await?;
        let items: Vec<_> = reviews
            .iter()
            .flat_map(|r| r.items.iter().map(move |i| (r, i)))
            .filter(|(_, i)| i.kind == ReviewKind::PostIncident && i.grant == g.id)
            .collect();
        if items.iter().any(|(_, i)| i.is_attested()) {
            continue;
        }
        out.push(Finding::of_grant(
            FindingKind::EmergencyUnreviewed,
            g,
            json!({ "incident": g.emergency.as_ref().map(|e| e.incident.as_str()),
                    "opened_at": opened, "opened_by": g.requested_by, "review_due_at": due,
                    "status": g.status,
                    "reviews": items.iter().map(|(r, i)| json!({ "review": r.id, "item": i.id })).collect::<Vec<_>>() }),
        ));
    }
    Ok(out)
}

/// `transfer_without_basis`: an active grant reaching a region outside its partner's
/// processing regions with no transfer basis recorded (possible once a partner's regions
/// change after the grant was approved).
fn transfer_without_basis(w: &World) -> Vec<Finding> {
    w.active()
        .filter(|g| g.transfer_basis.is_none())
        .filter_map(|g| {
            let partner = w.partner(g.partner.as_str())?;
            let outside: Vec<_> = g
                .regions
                .iter()
                .filter(|r| !partner.regions.contains(r))
                .collect();
            (!outside.is_empty()).then(|| {
                Finding::of_grant(
                    FindingKind::TransferWithoutBasis,
                    g,
                    json!({ "regions_outside": outside, "partner_regions": partner.regions,
                            "grant_regions": g.regions, "transfer_basis": null }),
                )
            })
        })
        .collect()
}

/// `offboarding_failed`: the latest offboarding of a partner reported `failed`, with the
/// checks that failed. Takes offboarding records in their contract shape (`{id, partner,
/// status, checks:[{name, target, passed, at, detail}], started_at, finished_at}`), in
/// creation order.
pub fn offboarding_failed(records: &[Value]) -> Vec<Finding> {
    let mut latest: BTreeMap<&str, &Value> = BTreeMap::new();
    for r in records {
        if let Some(p) = r["partner"].as_str() {
            latest.insert(p, r);
        }
    }
    latest
        .into_iter()
        .filter(|(_, r)| r["status"] == "failed")
        .filter_map(|(partner, r)| {
            let id = r["id"].as_str()?;
            let failed: Vec<_> = r["checks"]
                .as_array()
                .map(|c| c.iter().filter(|c| c["passed"] != true).cloned().collect())
                .unwrap_or_default();
            Some(
                Finding::new(
                    FindingKind::OffboardingFailed,
                    ("offboarding", id),
                    json!({ "partner": partner, "failed_checks": failed,
                            "finished_at": r["finished_at"] }),
                )
                .about(Some(partner), None),
            )
        })
        .collect()
}

async fn offboardings(state: &AppState) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .repo
            .store
            .list(
                Kind::Offboarding,
                &ListFilter::default(),
                after.as_deref(),
                500,
            )
            .await?;
        for doc in &page {
            match serde_json::from_str(&doc.body) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!(id = %doc.id, error = %e, "unreadable offboarding record"),
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.clone()),
            _ => return Ok(out),
        }
    }
}

/// Every finding of the kinds asked for, at `now`.
pub async fn compute(
    state: &AppState,
    only: Option<FindingKind>,
    now: Timestamp,
) -> ApiResult<Vec<Finding>> {
    let w = World {
        now,
        partners: all(state, ListFilter::default()).await?,
        apis: all(state, ListFilter::default()).await?,
        grants: all(state, ListFilter::default()).await?,
    };
    let mut out = Vec::new();
    for kind in FindingKind::ALL {
        if only.is_some_and(|k| k != kind) {
            continue;
        }
        out.extend(match kind {
            FindingKind::OwnerMissing => owner_missing(state, &w).await?,
            FindingKind::GrantExpiring => grant_expiring(&w),
            FindingKind::GrantUnused => grant_unused(state, &w).await?,
            FindingKind::ScopeUnused => scope_unused(state, &w).await?,
            FindingKind::CredentialStale => credential_stale(state, &w).await?,
            FindingKind::CredentialShared => credential_shared(state, &w).await?,
            FindingKind::ReviewOverdue => review_overdue(&w),
            FindingKind::EmergencyUnreviewed => emergency_unreviewed(state, &w).await?,
            FindingKind::TransferWithoutBasis => transfer_without_basis(&w),
            FindingKind::OffboardingFailed => offboarding_failed(&offboardings(state).await?),
        });
    }
    out.sort_by(|a, b| (a.severity, a.kind, &a.subject).cmp(&(b.severity, b.kind, &b.subject)));
    Ok(out)
}

/// Posture findings as of now. Auditors, stewards and admins see all; an API owner those
/// about their APIs, an approver those about the partners they own.
#[utoipa::path(get, path = "/v1/findings", tag = "findings", params(FindingQuery),
    responses((status = 200, body = FindingList)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<FindingQuery>,
) -> ApiResult<Json<FindingList>> {
    caller.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])?;
    let now = state.now();
    let mut items = compute(&state, q.kind, now).await?;
    if !caller.reads_all() {
        let me = &caller.principal.id;
        let mut owned_partners = Vec::new();
        let mut owned_apis = Vec::new();
        if caller.is(Role::Approver) {
            for p in all::<Partner>(&state, ListFilter::default()).await? {
                if p.owners.contains(me) {
                    owned_partners.push(p.id.to_string());
                }
            }
        }
        if caller.is(Role::ApiOwner) {
            for a in all::<Api>(&state, ListFilter::default()).await? {
                if &a.owner == me {
                    owned_apis.push(a.id.to_string());
                }
            }
        }
        items.retain(|f| {
            f.partner
                .as_ref()
                .is_some_and(|p| owned_partners.contains(p))
                || f.api.as_ref().is_some_and(|a| owned_apis.contains(a))
        });
    }
    Ok(Json(FindingList {
        items,
        next: None,
        generated_at: now,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_the_contract() {
        let table: Vec<_> = FindingKind::ALL
            .iter()
            .map(|k| {
                let (sev, nhi, csf) = k.mapping();
                format!(
                    "{} {} {nhi} {csf}",
                    serde_json::to_value(k).unwrap().as_str().unwrap(),
                    serde_json::to_value(sev).unwrap().as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            table,
            [
                "owner_missing high NHI1 PR.AA-01",
                "grant_expiring medium NHI7 PR.AA-05",
                "grant_unused medium NHI5 PR.AA-05",
                "scope_unused medium NHI5 PR.AA-05",
                "credential_stale high NHI7 PR.AA-01",
                "credential_shared high NHI9 PR.AA-01",
                "review_overdue high NHI5 PR.AA-05",
                "emergency_unreviewed critical NHI5 PR.AA-05",
                "transfer_without_basis critical NHI3 PR.AA-05",
                "offboarding_failed critical NHI1 PR.AA-05",
            ]
        );
    }

    #[test]
    fn only_the_latest_failed_offboarding_is_a_finding() {
        let rec = |id: &str, partner: &str, status: &str| {
            json!({ "id": id, "partner": partner, "status": status, "finished_at": "2026-11-30T10:00:00Z",
                    "checks": [{ "name": "gateway_denies", "target": "gw_1", "passed": status == "completed",
                                 "at": "2026-11-30T10:00:00Z", "detail": "" }] })
        };
        let found = offboarding_failed(&[
            rec("off_1", "prt_a", "failed"),
            rec("off_2", "prt_a", "completed"),
            rec("off_3", "prt_b", "failed"),
        ]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject.id, "off_3");
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(
            found[0].evidence["failed_checks"][0]["name"],
            "gateway_denies"
        );
    }
}
