//! Posture findings: pure rules over a [`Snapshot`], one function per kind (nothing is
//! stored; `GET /v1/findings` loads a snapshot and calls [`findings`]). Each finding names its
//! kind, a severity, the subject it is about, the evidence behind it, and the OWASP NHI Top 10
//! (2025) risk and NIST CSF 2.0 subcategory fixed for its kind (DESIGN.md, "Findings").
//!
//! `credential_stale` is about credentials that exist: one past its maximum age, or an active
//! grant whose credentials have all ended (it had one; none is active now). A grant that has
//! never had a credential raises no credential finding — nothing was issued that could be
//! stale, and such a grant cannot obtain a token.

use std::collections::{BTreeMap, HashMap};

use charter_core::offboarding::{Offboarding, OffboardingStatus};
use charter_core::review::{POST_INCIDENT_HOURS, ReviewKind};
use charter_core::{CredentialStatus, Grant, GrantStatus, PartnerStatus, Principal, Role};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::snapshot::{Reads, Snapshot};

/// A grant ending within this many days, with no renewal pending, is `grant_expiring`.
pub const EXPIRING_DAYS: i64 = 7;
/// A grant older than this with no allowed call in as long is `grant_unused`.
pub const UNUSED_DAYS: i64 = 30;
/// `credential_guessing` looks at this many hours of refused token requests.
pub const GUESSING_WINDOW_HOURS: i64 = 1;
/// A client id whose secret or assertion was refused this many times within the window is
/// being guessed at (also when its failures were throttled at all).
pub const GUESSING_FAILURES: u64 = 10;
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
    CredentialGuessing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
}

impl FindingKind {
    pub const ALL: [FindingKind; 11] = [
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
        Self::CredentialGuessing,
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
            Self::CredentialGuessing => (High, "NHI2", "PR.AA-03"),
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

    /// The partner the finding concerns (none for a finding about an API).
    pub fn partner(&self) -> Option<&str> {
        self.partner.as_deref()
    }

    /// The API the finding concerns, if one.
    pub fn api(&self) -> Option<&str> {
        self.api.as_deref()
    }
}

/// The audit-derived facts the findings of `only` (every kind when `None`) look at.
pub fn reads(only: Option<FindingKind>) -> Reads {
    let wants = |kinds: &[FindingKind]| only.is_none_or(|k| kinds.contains(&k));
    Reads {
        usage: wants(&[FindingKind::GrantUnused, FindingKind::ScopeUnused]),
        sources: wants(&[FindingKind::CredentialShared]),
        refusals: wants(&[FindingKind::CredentialGuessing]),
        access_log: false,
    }
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// The findings a principal may see: all for auditors, stewards and admins; an API owner
/// those about their APIs, an approver those about the partners they own.
pub fn visible_to(principal: &Principal, s: &Snapshot, mut items: Vec<Finding>) -> Vec<Finding> {
    let reads_all = [Role::Admin, Role::Auditor, Role::Steward]
        .iter()
        .any(|r| principal.has_role(*r));
    if reads_all {
        return items;
    }
    let me = &principal.id;
    let owned_partners: Vec<&str> = s
        .partners
        .iter()
        .filter(|p| principal.has_role(Role::Approver) && p.owners.contains(me))
        .map(|p| p.id.as_str())
        .collect();
    let owned_apis: Vec<&str> = s
        .apis
        .iter()
        .filter(|a| principal.has_role(Role::ApiOwner) && &a.owner == me)
        .map(|a| a.id.as_str())
        .collect();
    items.retain(|f| {
        f.partner().is_some_and(|p| owned_partners.contains(&p))
            || f.api().is_some_and(|a| owned_apis.contains(&a))
    });
    items
}

/// `credential_guessing`: a partner's client id whose secret or assertion was refused at
/// least [`GUESSING_FAILURES`] times in the last [`GUESSING_WINDOW_HOURS`] (or often enough
/// to be throttled). Someone holds the client id and is trying credentials: the real client
/// still gets its tokens (failures never lock it out), so this finding is how people learn.
pub fn credential_guessing(s: &Snapshot) -> Vec<Finding> {
    s.usage
        .refusals
        .iter()
        .filter(|(_, r)| r.failures >= GUESSING_FAILURES || r.throttled)
        .filter_map(|(client_id, r)| {
            let credential = r.credential.as_deref()?;
            let api = r
                .grant
                .as_deref()
                .and_then(|g| s.grants.iter().find(|x| x.id.as_str() == g))
                .map(|g| g.api.to_string());
            Some(
                Finding::new(
                    FindingKind::CredentialGuessing,
                    ("credential", credential),
                    json!({
                        "client_id": client_id,
                        "failures": r.failures,
                        "throttled": r.throttled,
                        "sources": r.sources,
                        "window_hours": GUESSING_WINDOW_HOURS,
                        "grant": r.grant,
                    }),
                )
                .about(r.partner.as_deref(), api.as_deref()),
            )
        })
        .collect()
}

/// An active grant that has not reached its end.
pub fn is_active(g: &Grant, now: Timestamp) -> bool {
    g.status == GrantStatus::Active && now < g.expires_at
}

/// The start of the `grant_unused` window ending `now`, if the grant has been active for all
/// of it.
pub fn unused_window(g: &Grant, now: Timestamp) -> Option<Timestamp> {
    let since = now - days(UNUSED_DAYS);
    g.activated_at.is_some_and(|a| a <= since).then_some(since)
}

/// The start of the grant's review period ending `now`, if it has been active for all of it.
pub fn review_period(g: &Grant, now: Timestamp) -> Option<Timestamp> {
    let since = now - days(i64::from(g.recertify_every_days));
    g.activated_at.is_some_and(|a| a <= since).then_some(since)
}

fn active(s: &Snapshot, now: Timestamp) -> impl Iterator<Item = &Grant> {
    s.grants.iter().filter(move |g| is_active(g, now))
}

/// Every finding at `now` (the snapshot's time), most severe first.
pub fn findings(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    let mut out = owner_missing(s);
    out.extend(grant_expiring(s, now));
    out.extend(grant_unused(s, now));
    out.extend(scope_unused(s, now));
    out.extend(credential_stale(s, now));
    out.extend(credential_shared(s));
    out.extend(review_overdue(s, now));
    out.extend(emergency_unreviewed(s, now));
    out.extend(transfer_without_basis(s, now));
    out.extend(offboarding_failed(&s.offboardings));
    out.extend(credential_guessing(s));
    out.sort_by(|a, b| (a.severity, a.kind, &a.subject).cmp(&(b.severity, b.kind, &b.subject)));
    out
}

/// `owner_missing`: a partner (not yet offboarded) none of whose owners is an enabled
/// principal, or an API whose owner principal is disabled or gone.
pub fn owner_missing(s: &Snapshot) -> Vec<Finding> {
    let principals: HashMap<&str, &Principal> =
        s.principals.iter().map(|p| (p.id.as_str(), p)).collect();
    // `None` if the principal is accountable; else why not.
    let unaccountable = |id: &str| match principals.get(id) {
        None => Some("missing"),
        Some(p) if p.disabled => Some("disabled"),
        Some(_) => None,
    };
    let mut out = Vec::new();
    for p in s
        .partners
        .iter()
        .filter(|p| p.status != PartnerStatus::Offboarded)
    {
        let gone: Vec<_> = p
            .owners
            .iter()
            .filter_map(|o| {
                unaccountable(o.as_str()).map(|why| json!({ "owner": o, "state": why }))
            })
            .collect();
        if gone.len() == p.owners.len() {
            out.push(
                Finding::new(
                    FindingKind::OwnerMissing,
                    ("partner", p.id.as_str()),
                    json!({ "name": p.name, "owners": p.owners, "unaccountable_owners": gone }),
                )
                .about(Some(p.id.as_str()), None),
            );
        }
    }
    for a in &s.apis {
        if let Some(why) = unaccountable(a.owner.as_str()) {
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
    out
}

/// `grant_expiring`: an active (not break-glass) grant ending within 7 days with no other
/// request pending for the same partner and API.
pub fn grant_expiring(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    active(s, now)
        .filter(|g| g.emergency.is_none() && g.expires_at <= now + days(EXPIRING_DAYS))
        .filter(|g| {
            !s.grants.iter().any(|o| {
                o.id != g.id
                    && o.status == GrantStatus::Pending
                    && o.partner == g.partner
                    && o.api == g.api
            })
        })
        .map(|g| {
            let left = g.expires_at.duration_since(now);
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
pub fn grant_unused(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    active(s, now)
        .filter_map(|g| {
            let since = unused_window(g, now)?;
            // Only a window that was read and held no allowed call.
            let None = s.usage.last_call.get(g.id.as_str())? else {
                return None;
            };
            Some(Finding::of_grant(
                FindingKind::GrantUnused,
                g,
                json!({ "activated_at": g.activated_at, "window_days": UNUSED_DAYS,
                        "since": since, "allowed_calls": 0 }),
            ))
        })
        .collect()
}

/// `scope_unused`: a scope of an active grant with no allowed call over the grant's review
/// period, once the grant is older than that period. One finding per grant, listing them.
pub fn scope_unused(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    active(s, now)
        .filter_map(|g| {
            let since = review_period(g, now)?;
            let used = s.usage.used_scopes.get(g.id.as_str())?;
            let unused: Vec<_> = g
                .scopes
                .iter()
                .filter(|sc| !used.contains(sc.as_str()))
                .collect();
            (!unused.is_empty()).then(|| {
                Finding::of_grant(
                    FindingKind::ScopeUnused,
                    g,
                    json!({ "scopes": unused, "used_scopes": used,
                            "period_days": g.recertify_every_days, "since": since }),
                )
            })
        })
        .collect()
}

/// `credential_stale`: an active credential past its maximum age on a grant that is not
/// over, or an active grant that had credentials and has no active one left. A grant that
/// never had a credential is not a finding.
pub fn credential_stale(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    let mut by_grant: HashMap<&str, Vec<&charter_core::Credential>> = HashMap::new();
    for r in &s.credentials {
        by_grant
            .entry(r.credential.grant.as_str())
            .or_default()
            .push(&r.credential);
    }
    let mut out = Vec::new();
    for g in s
        .grants
        .iter()
        .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Suspended))
    {
        let creds = by_grant
            .get(g.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let active: Vec<_> = creds
            .iter()
            .filter(|c| c.status == CredentialStatus::Active)
            .collect();
        for c in active.iter().filter(|c| now >= c.expires_at) {
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
        if !creds.is_empty() && active.is_empty() && is_active(g, now) {
            out.push(Finding::of_grant(
                FindingKind::CredentialStale,
                g,
                json!({ "active_credentials": 0, "credentials": creds.len(),
                        "detail": "the grant has no active credential" }),
            ));
        }
    }
    out
}

/// `credential_shared`: one client id seen in access decisions from two or more source
/// networks (IPv4 /24, IPv6 /64) in the last 24 hours.
///
/// A credential cannot span grants by construction: it is issued for one grant, its client
/// id is the unique key of that one credential record, and every token it obtains names
/// that grant. So the observable form of sharing is the same client id calling from
/// several networks (several workloads, or a leaked secret).
pub fn credential_shared(s: &Snapshot) -> Vec<Finding> {
    s.usage
        .sources
        .iter()
        .filter(|(_, src)| src.networks.len() >= 2)
        .map(|(client_id, src)| {
            let record = s
                .credentials
                .iter()
                .map(|r| &r.credential)
                .find(|c| &c.client_id == client_id);
            let credential_id = record
                .map(|c| c.id.to_string())
                .or_else(|| src.credential.clone())
                .unwrap_or_else(|| client_id.clone());
            let grant = record
                .map(|c| c.grant.to_string())
                .or_else(|| src.grants.iter().next().cloned());
            let g = grant
                .as_deref()
                .and_then(|id| s.grants.iter().find(|g| g.id.as_str() == id));
            Finding::new(
                FindingKind::CredentialShared,
                ("credential", &credential_id),
                json!({ "client_id": client_id, "networks": src.networks, "calls": src.calls,
                        "grants": src.grants, "window_hours": SHARED_WINDOW_HOURS,
                        "records_truncated": s.usage.sources_scan.truncated }),
            )
            .about(g.map(|g| g.partner.as_str()), g.map(|g| g.api.as_str()))
        })
        .collect()
}

/// `review_overdue`: an active or suspended grant whose recertification is past due.
pub fn review_overdue(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    s.grants
        .iter()
        .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Suspended))
        .filter_map(|g| {
            let due = g.review_due_at.filter(|d| *d <= now)?;
            Some(Finding::of_grant(
                FindingKind::ReviewOverdue,
                g,
                json!({ "review_due_at": due, "status": g.status, "status_reason": g.status_reason,
                        "days_overdue": now.duration_since(due).as_hours() / 24 }),
            ))
        })
        .collect()
}

/// `emergency_unreviewed`: break-glass whose post-incident review is not attested 72 hours
/// after the grant opened (or that has no such review at all).
pub fn emergency_unreviewed(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in s.grants.iter().filter(|g| g.emergency.is_some()) {
        let opened = g.activated_at.unwrap_or(g.requested_at);
        let due = opened + SignedDuration::from_hours(POST_INCIDENT_HOURS);
        if now < due {
            continue;
        }
        let items: Vec<_> = s
            .reviews
            .iter()
            .filter(|r| r.subject.id() == g.id.as_str())
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
    out
}

/// `transfer_without_basis`: an active grant reaching a region outside its partner's
/// processing regions with no transfer basis recorded (possible once a partner's regions
/// change after the grant was approved).
pub fn transfer_without_basis(s: &Snapshot, now: Timestamp) -> Vec<Finding> {
    active(s, now)
        .filter(|g| g.transfer_basis.is_none())
        .filter_map(|g| {
            let partner = s.partners.iter().find(|p| p.id == g.partner)?;
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

/// `offboarding_failed`: the latest offboarding of a partner (records in creation order)
/// is not `completed` — `failed` (with the checks that failed) or `incomplete` (with what
/// could not be probed); the evidence says which in `status`.
pub fn offboarding_failed(records: &[Offboarding]) -> Vec<Finding> {
    let mut latest: BTreeMap<&str, &Offboarding> = BTreeMap::new();
    for r in records {
        latest.insert(r.partner.as_str(), r);
    }
    latest
        .into_iter()
        .filter(|(_, r)| r.status != OffboardingStatus::Completed)
        .map(|(partner, r)| {
            let failed: Vec<_> = r.checks.iter().filter(|c| !c.passed).collect();
            Finding::new(
                FindingKind::OffboardingFailed,
                ("offboarding", r.id.as_str()),
                json!({ "partner": partner, "status": r.status, "failed_checks": failed,
                        "incomplete_reason": r.incomplete_reason,
                        "finished_at": r.finished_at }),
            )
            .about(Some(partner), None)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use charter_core::offboarding::Check;
    use charter_core::review::{Attest, AttestDecision, Review, UsageTally};
    use charter_core::{CredentialStatus, Emergency, OffboardingId, ReviewId};

    use super::*;
    use crate::services::snapshot::fixture::{
        credential, days, name, now, pid, principal, region, world,
    };
    use crate::usage::ClientSources;

    fn kinds(s: &Snapshot) -> Vec<(FindingKind, String)> {
        findings(s, s.taken_at)
            .into_iter()
            .map(|f| (f.kind, f.subject.id))
            .collect()
    }

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
                "credential_guessing high NHI2 PR.AA-03",
            ]
        );
    }

    #[test]
    fn a_healthy_world_has_no_findings() {
        let mut s = world();
        let g = s.grants[0].id.to_string();
        s.usage.last_call.insert(g.clone(), Some(now() - days(1)));
        s.usage
            .used_scopes
            .insert(g, ["orders:read", "orders:list"].map(String::from).into());
        assert_eq!(kinds(&s), []);
    }

    #[test]
    fn owner_missing_fires_for_disabled_or_unknown_owners_only() {
        let mut s = world();
        assert!(owner_missing(&s).is_empty());
        s.principals[0].disabled = true; // the partner's only owner
        s.principals.retain(|p| p.id != pid(9)); // the API's owner is gone
        let found = owner_missing(&s);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].subject.kind, "partner");
        assert_eq!(
            found[0].evidence["unaccountable_owners"][0]["state"],
            "disabled"
        );
        assert_eq!(found[0].partner(), Some(s.partners[0].id.as_str()));
        assert_eq!(found[1].subject.kind, "api");
        assert_eq!(found[1].evidence["owner_state"], "missing");
        assert_eq!(found[1].api(), Some(s.apis[0].id.as_str()));
        // One accountable owner is enough; an offboarded partner needs none.
        s.partners[0].owners.push(pid(9));
        s.principals.push(principal(9, false));
        assert!(owner_missing(&s).is_empty());
        s.partners[0].owners = vec![pid(77)];
        s.partners[0].status = charter_core::PartnerStatus::Offboarded;
        assert!(owner_missing(&s).is_empty());
    }

    #[test]
    fn grant_expiring_fires_within_seven_days_unless_a_renewal_is_pending() {
        let mut s = world();
        assert!(grant_expiring(&s, now()).is_empty());
        s.grants[0].expires_at = now() + days(3);
        let found = grant_expiring(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["hours_left"], 72);
        let mut renewal = s.grants[0].clone();
        renewal.id = charter_core::GrantId::generate(4, [2; 10]);
        renewal.status = GrantStatus::Pending;
        s.grants.push(renewal);
        assert!(grant_expiring(&s, now()).is_empty());
    }

    #[test]
    fn grant_unused_needs_a_read_window_without_a_call() {
        let mut s = world();
        let g = s.grants[0].id.to_string();
        // Usage not read: nothing is concluded.
        assert!(grant_unused(&s, now()).is_empty());
        s.usage.last_call.insert(g.clone(), None);
        let found = grant_unused(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["allowed_calls"], 0);
        assert_eq!(found[0].evidence["window_days"], UNUSED_DAYS);
        s.usage.last_call.insert(g, Some(now() - days(2)));
        assert!(grant_unused(&s, now()).is_empty());
        // A grant younger than the window is not unused.
        s.grants[0].activated_at = Some(now() - days(10));
        s.usage.last_call.insert(s.grants[0].id.to_string(), None);
        assert!(grant_unused(&s, now()).is_empty());
    }

    #[test]
    fn scope_unused_lists_the_scopes_without_a_call() {
        let mut s = world();
        let g = s.grants[0].id.to_string();
        assert!(scope_unused(&s, now()).is_empty());
        s.usage
            .used_scopes
            .insert(g.clone(), ["orders:read".to_owned()].into());
        let found = scope_unused(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["scopes"], json!(["orders:list"]));
        assert_eq!(found[0].evidence["used_scopes"], json!(["orders:read"]));
        assert_eq!(found[0].evidence["period_days"], 90);
        s.usage
            .used_scopes
            .insert(g, ["orders:read", "orders:list"].map(String::from).into());
        assert!(scope_unused(&s, now()).is_empty());
    }

    #[test]
    fn credential_stale_fires_past_max_age() {
        let mut s = world();
        assert!(credential_stale(&s, now()).is_empty());
        let g = s.grants[0].clone();
        s.credentials = vec![credential(1, &g, days(91))];
        let found = credential_stale(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject.kind, "credential");
        assert_eq!(found[0].evidence["grant"], g.id.as_str());
        assert_eq!(found[0].partner(), Some(g.partner.as_str()));
    }

    #[test]
    fn credential_stale_fires_when_every_credential_of_a_live_grant_ended() {
        let mut s = world();
        s.credentials[0].credential.status = CredentialStatus::Revoked;
        let found = credential_stale(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject.kind, "grant");
        assert_eq!(found[0].evidence["active_credentials"], 0);
        assert_eq!(found[0].evidence["credentials"], 1);
        // A suspended grant lets no one in: its ended credentials are not a finding.
        s.grants[0].status = GrantStatus::Suspended;
        assert!(credential_stale(&s, now()).is_empty());
    }

    #[test]
    fn a_grant_that_never_had_a_credential_is_not_credential_stale() {
        let mut s = world();
        s.credentials.clear();
        assert!(credential_stale(&s, now()).is_empty());
        assert_eq!(kinds(&s), []);
    }

    #[test]
    fn credential_shared_fires_on_two_networks() {
        let mut s = world();
        let c = &s.credentials[0].credential;
        let (client, credential, grant) =
            (c.client_id.clone(), c.id.to_string(), c.grant.to_string());
        let mut src = ClientSources {
            networks: ["203.0.113.0/24".to_owned()].into(),
            grants: [grant.clone()].into(),
            credential: None,
            calls: 3,
        };
        s.usage.sources.insert(client.clone(), src.clone());
        assert!(credential_shared(&s).is_empty(), "one network");
        src.networks.insert("198.51.100.0/24".into());
        s.usage.sources.insert(client.clone(), src);
        let found = credential_shared(&s);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject.id, credential);
        assert_eq!(found[0].evidence["client_id"], client.as_str());
        assert_eq!(found[0].evidence["grants"], json!([grant]));
        assert_eq!(found[0].partner(), Some(s.partners[0].id.as_str()));
    }

    #[test]
    fn review_overdue_fires_once_the_review_is_due() {
        let mut s = world();
        assert!(review_overdue(&s, now()).is_empty());
        s.grants[0].review_due_at = Some(now() - days(3));
        s.grants[0].status = GrantStatus::Suspended;
        let found = review_overdue(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["days_overdue"], 3);
        assert_eq!(found[0].evidence["status"], "suspended");
    }

    #[test]
    fn emergency_unreviewed_fires_72_hours_after_break_glass_until_attested() {
        let mut s = world();
        s.grants[0].emergency = Some(Emergency {
            incident: name("INC-7"),
        });
        s.grants[0].activated_at = Some(now() - SignedDuration::from_hours(71));
        assert!(emergency_unreviewed(&s, now()).is_empty(), "not yet due");
        s.grants[0].activated_at = Some(now() - SignedDuration::from_hours(73));
        let found = emergency_unreviewed(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["incident"], "INC-7");
        assert_eq!(found[0].severity, Severity::Critical);

        let mut g = s.grants[0].clone();
        let evidence = UsageTally::default().evidence(&g.scopes, now() - days(3), now());
        let mut review = Review::post_incident(
            ReviewId::generate(6, [1; 10]),
            &g,
            &s.partners[0],
            evidence,
            pid(50),
            now() - days(3),
        )
        .unwrap();
        s.reviews = vec![review.clone()];
        assert_eq!(
            emergency_unreviewed(&s, now()).len(),
            1,
            "open, not attested"
        );
        let attest = Attest {
            decision: AttestDecision::Revoke,
            scopes: None,
            justification: name("broader than needed"),
            by: pid(1),
        };
        review
            .attest("itm_1", attest, &mut g, &s.partners[0], None, now())
            .unwrap();
        s.reviews = vec![review];
        assert!(emergency_unreviewed(&s, now()).is_empty());
    }

    #[test]
    fn transfer_without_basis_fires_when_the_partner_moves_out() {
        let mut s = world();
        assert!(transfer_without_basis(&s, now()).is_empty());
        s.partners[0].regions = vec![region("us")];
        let found = transfer_without_basis(&s, now());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["regions_outside"], json!(["eu"]));
        s.grants[0].transfer_basis = Some(name("SCC 2021"));
        assert!(transfer_without_basis(&s, now()).is_empty());
    }

    #[test]
    fn only_the_latest_failed_offboarding_is_a_finding() {
        let rec = |n: u8, partner: u8, status: OffboardingStatus| Offboarding {
            id: OffboardingId::generate(7, [n; 10]),
            partner: charter_core::PartnerId::generate(2, [partner; 10]),
            status,
            incomplete_reason: None,
            requested_by: pid(50),
            reason: name("left"),
            revoked_grants: Vec::new(),
            revoked_credentials: Vec::new(),
            canaries: Vec::new(),
            checks: vec![Check {
                name: "gateway_denies".into(),
                target: "gw_1".into(),
                passed: status == OffboardingStatus::Completed,
                at: now(),
                detail: String::new(),
            }],
            started_at: now(),
            finished_at: now(),
        };
        let records = [
            rec(1, 1, OffboardingStatus::Failed),
            rec(2, 1, OffboardingStatus::Completed),
            rec(3, 2, OffboardingStatus::Failed),
        ];
        let found = offboarding_failed(&records);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject.id, records[2].id.as_str());
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(
            found[0].evidence["failed_checks"][0]["name"],
            "gateway_denies"
        );
        assert_eq!(found[0].evidence["failed_checks"][0]["passed"], false);
        assert_eq!(found[0].evidence["status"], "failed");
        assert!(offboarding_failed(&records[..2]).is_empty());
    }

    #[test]
    fn an_incomplete_offboarding_is_a_finding_that_says_why() {
        let mut record = Offboarding {
            id: OffboardingId::generate(7, [9; 10]),
            partner: charter_core::PartnerId::generate(2, [9; 10]),
            status: OffboardingStatus::Incomplete,
            incomplete_reason: Some("no live gateway is registered".into()),
            requested_by: pid(50),
            reason: name("left"),
            revoked_grants: Vec::new(),
            revoked_credentials: Vec::new(),
            canaries: Vec::new(),
            checks: Vec::new(),
            started_at: now(),
            finished_at: now(),
        };
        let found = offboarding_failed(std::slice::from_ref(&record));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["status"], "incomplete");
        assert_eq!(
            found[0].evidence["incomplete_reason"],
            "no live gateway is registered"
        );
        record.status = OffboardingStatus::Completed;
        assert!(offboarding_failed(&[record]).is_empty());
    }

    #[test]
    fn findings_come_most_severe_first() {
        let mut s = world();
        s.partners[0].regions = vec![region("us")]; // critical
        s.grants[0].expires_at = now() + days(2); // medium
        let order: Vec<_> = findings(&s, now()).into_iter().map(|f| f.kind).collect();
        assert_eq!(
            order,
            [
                FindingKind::TransferWithoutBasis,
                FindingKind::GrantExpiring
            ]
        );
    }

    #[test]
    fn reads_follow_the_kind_asked_for() {
        assert!(reads(None).usage && reads(None).sources && !reads(None).access_log);
        let owner = reads(Some(FindingKind::OwnerMissing));
        assert!(!owner.usage && !owner.sources);
        assert!(reads(Some(FindingKind::CredentialShared)).sources);
        assert!(reads(Some(FindingKind::ScopeUnused)).usage);
    }
}
