//! The console's pages: each gathers what one page shows (through the services and the
//! repository's readers, with the viewer's visibility) and renders a template from
//! `templates/console/`.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use charter_core::grant::GrantRequest;
use charter_core::offboarding::Offboarding;
use charter_core::review::{Attest, AttestDecision, Review, ReviewStatus};
use charter_core::{
    Api, DataClass, Emergency, Grant, GrantStatus, Name, Partner, Principal, PrincipalId, Region,
    Role, Scope,
};
use charter_evidence::{AuditRecord, action};
use charter_store::{AuditQuery, CredentialRecord};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use super::{ConsoleError, ConsoleResult, Done, Form, Viewer, visible_grant};
use crate::error::ApiError;
use crate::pages::{self, CompliancePage, Nav};
use crate::services::findings::{self, Finding};
use crate::services::snapshot::{Reads, Snapshot};
use crate::services::{compliance, evidence};
use crate::state::{AppState, Shared};
use crate::usage;

/// Renders a console page with the page headers plus `no-referrer`.
pub fn respond(page: &impl Template) -> Result<Response, ApiError> {
    let mut resp = pages::respond(page)?;
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(resp)
}

/// A wire name of a closed enum (its serde name).
fn wire<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn when_opt(t: Option<Timestamp>) -> String {
    t.map(when).unwrap_or_else(|| "—".into())
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An id as it may stand in a console URL (the ids Charter mints are URL-safe).
pub fn path_id(id: &str) -> Result<&str, ApiError> {
    if crate::repo::plausible_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found("object"))
    }
}

/// What a `done=` parameter says, from a fixed list (never echoed).
fn done_message(q: &HashMap<String, String>) -> Option<&'static str> {
    Some(match q.get("done")?.as_str() {
        "approved" => "Approved.",
        "rejected" => "Rejected.",
        "suspended" => "Suspended.",
        "resumed" => "Resumed.",
        "revoked" => "Revoked.",
        "opened" => "Emergency access opened; a post-incident review is due within 72 hours.",
        "offboarded" => "Offboarding finished; the verification results are below.",
        "attested" => "Attestation recorded.",
        _ => return None,
    })
}

/// The navigation for a viewer, `current` marked.
fn nav(viewer: &Viewer, current: &str) -> Nav {
    let mut links = vec![("/console", "My work"), ("/console/reviews", "Reviews")];
    if viewer.may(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver]) {
        links.push(("/console/findings", "Findings"));
    }
    if viewer.may(&[Role::Auditor, Role::Steward]) {
        links.push(("/console/audit", "Audit"));
    }
    if viewer.may(&[Role::Auditor, Role::Steward]) {
        links.push(("/console/compliance", "Compliance"));
    }
    Nav {
        name: viewer.principal.name.to_string(),
        roles: viewer
            .principal
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        csrf: viewer.session.csrf.clone(),
        links: links
            .into_iter()
            .map(|(href, label)| (href, label, href == current))
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
pub struct SignInPage {
    pub csrf: String,
    pub message: Option<String>,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

/// An error as a page, with its status.
pub fn error_page(e: ApiError) -> Response {
    let status = e.status();
    if let ApiError::Unexpected(cause) = &e {
        tracing::error!(error = ?cause, "console: unexpected error");
    }
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::UNAUTHORIZED => "Sign-in failed",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_client_error() => "Please check the form",
        _ => "Something went wrong",
    };
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        message: e.to_string(),
    };
    match respond(&page) {
        Ok(mut resp) => {
            *resp.status_mut() = status;
            if let ApiError::RateLimited(secs) = e {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        Err(_) => status.into_response(),
    }
}

/// Names of principals, partners and APIs, for showing beside ids.
struct Names(HashMap<String, String>);

impl Names {
    fn of(s: &Snapshot) -> Self {
        let mut m = HashMap::new();
        for p in &s.principals {
            m.insert(p.id.to_string(), p.name.to_string());
        }
        for p in &s.partners {
            m.insert(p.id.to_string(), p.name.to_string());
        }
        for a in &s.apis {
            m.insert(a.id.to_string(), a.name.to_string());
        }
        Self(m)
    }

    fn who(&self, id: &str) -> pages::Who {
        pages::Who {
            id: id.to_owned(),
            name: self.0.get(id).cloned(),
        }
    }
}

/// One grant in a list.
struct GrantRow {
    id: String,
    partner: pages::Who,
    api: pages::Who,
    use_case: String,
    status: String,
    scopes: String,
    expires: String,
    note: String,
}

impl GrantRow {
    fn of(g: &Grant, names: &Names, note: String) -> Self {
        Self {
            id: g.id.to_string(),
            partner: names.who(g.partner.as_str()),
            api: names.who(g.api.as_str()),
            use_case: g.use_case.to_string(),
            status: wire(&g.status),
            scopes: join(&g.scopes),
            expires: when(g.expires_at),
            note,
        }
    }
}

/// One review item waiting on someone.
struct ItemRow {
    review: String,
    item: String,
    grant: String,
    partner: pages::Who,
    api: pages::Who,
    due: String,
    overdue: bool,
}

struct OffboardingRow {
    id: String,
    partner: pages::Who,
    status: String,
    failed_checks: usize,
    at: String,
}

/// Calls and denials per hour over the last 24 hours, drawn as SVG bars (no script).
struct Chart {
    bars: Vec<Bar>,
    /// The busiest hour's calls: the top of the scale.
    max: u64,
    total_allowed: u64,
    total_denied: u64,
    partial: bool,
}

struct Bar {
    x: u32,
    label: String,
    allowed: u64,
    denied: u64,
    /// Heights in chart units (0–100) and the y of each rectangle's top.
    allowed_h: u32,
    allowed_y: u32,
    denied_h: u32,
    denied_y: u32,
}

const CHART_HEIGHT: u32 = 100;

impl Chart {
    fn new(hours: &[(u64, u64)], start: Timestamp, partial: bool) -> Self {
        let busiest = hours.iter().map(|(a, d)| a + d).max().unwrap_or(0);
        let max = busiest.max(1);
        let bars = hours
            .iter()
            .enumerate()
            .map(|(i, &(allowed, denied))| {
                let scale = |n: u64| ((n * u64::from(CHART_HEIGHT)) / max) as u32;
                let allowed_h = scale(allowed);
                let denied_h = scale(denied);
                let at = start + SignedDuration::from_hours(i as i64);
                Bar {
                    x: i as u32 * 12,
                    label: at.strftime("%H:00").to_string(),
                    allowed,
                    denied,
                    allowed_h,
                    allowed_y: CHART_HEIGHT - allowed_h,
                    denied_h,
                    denied_y: CHART_HEIGHT - allowed_h - denied_h,
                }
            })
            .collect();
        Self {
            bars,
            max: busiest,
            total_allowed: hours.iter().map(|h| h.0).sum(),
            total_denied: hours.iter().map(|h| h.1).sum(),
            partial,
        }
    }
}

struct Overview {
    partners: usize,
    active_grants: usize,
    chart: Chart,
    expiring: Vec<GrantRow>,
    overdue_reviews: usize,
    findings_by_severity: Vec<(String, usize)>,
    emergency_open: Vec<GrantRow>,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    nav: Nav,
    approver: bool,
    steward: bool,
    /// Grants I requested that still wait for approval (stewards).
    my_requests: Vec<GrantRow>,
    approvals: Vec<GrantRow>,
    reviews_due: Vec<ItemRow>,
    post_incident: Vec<ItemRow>,
    failed_offboardings: Vec<OffboardingRow>,
    overview: Option<Overview>,
}

/// Whether the viewer reads everything (admins, auditors, stewards).
fn reads_all(p: &Principal) -> bool {
    p.has_role(Role::Admin) || p.has_role(Role::Auditor) || p.has_role(Role::Steward)
}

/// The partners and APIs a viewer may see beyond what `reads_all` gives.
fn sees_partner(p: &Principal, partner: &Partner) -> bool {
    reads_all(p) || p.has_role(Role::ApiOwner) || partner.owners.contains(&p.id)
}

fn sees_grant(p: &Principal, g: &Grant, s: &Snapshot) -> bool {
    if reads_all(p) {
        return true;
    }
    let owns_partner = p.has_role(Role::Approver)
        && s.partners
            .iter()
            .any(|x| x.id == g.partner && x.owners.contains(&p.id));
    let owns_api =
        p.has_role(Role::ApiOwner) && s.apis.iter().any(|a| a.id == g.api && a.owner == p.id);
    owns_partner || owns_api
}

/// `GET /console`: what waits on me, then the overview.
pub async fn home(State(state): State<Shared>, viewer: Viewer) -> ConsoleResult<Response> {
    let reads = Reads {
        usage: false,
        sources: false,
        refusals: false,
        access_log: false,
    };
    let s = Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), reads).await?;
    let now = s.taken_at;
    let names = Names::of(&s);
    let me = &viewer.principal;

    // Approvals where I am an owner of the partner, that I did not request and have not
    // already decided.
    let approvals = if viewer.may(&[Role::Approver]) {
        s.grants
            .iter()
            .filter(|g| g.status == GrantStatus::Pending && g.requested_by != me.id)
            .filter(|g| !g.approvals.iter().any(|a| a.approver == me.id))
            // The grant's approvers: the partner's owners when it was requested.
            .filter(|g| g.approvers.contains(&me.id))
            .map(|g| {
                let note = format!(
                    "{} of {} approvals",
                    g.approvals.len(),
                    g.approvals_required
                );
                GrantRow::of(g, &names, note)
            })
            .collect()
    } else {
        Vec::new()
    };

    let mut reviews_due = Vec::new();
    let mut post_incident = Vec::new();
    if viewer.may(&[Role::Approver]) {
        for r in s.reviews.iter().filter(|r| r.status == ReviewStatus::Open) {
            for item in r.items.iter().filter(|i| !i.is_attested()) {
                if !item.reviewers.contains(&me.id) || item.requested_by == me.id {
                    continue;
                }
                let row = ItemRow {
                    review: r.id.to_string(),
                    item: item.id.clone(),
                    grant: item.grant.to_string(),
                    partner: names.who(item.partner.as_str()),
                    api: names.who(item.api.as_str()),
                    due: when(item.due_at),
                    overdue: item.due_at <= now,
                };
                match item.kind {
                    charter_core::review::ReviewKind::PostIncident => post_incident.push(row),
                    charter_core::review::ReviewKind::Recertification => reviews_due.push(row),
                }
            }
        }
    }

    let failed_offboardings = if viewer.may(&[Role::Steward, Role::Auditor]) {
        latest_offboardings(&s.offboardings)
            .into_iter()
            .filter(|o| wire(&o.status) != "completed")
            .map(|o| OffboardingRow {
                id: o.id.to_string(),
                partner: names.who(o.partner.as_str()),
                status: wire(&o.status),
                failed_checks: o.checks.iter().filter(|c| !c.passed).count(),
                at: when(o.finished_at),
            })
            .collect()
    } else {
        Vec::new()
    };

    let overview = if viewer.may(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver]) {
        Some(overview(&state, me, &s, &names).await?)
    } else {
        None
    };

    let steward = viewer.may(&[Role::Steward]);
    let my_requests = if steward {
        s.grants
            .iter()
            .filter(|g| g.status == GrantStatus::Pending && g.requested_by == me.id)
            .map(|g| {
                let note = format!(
                    "{} of {} approvals",
                    g.approvals.len(),
                    g.approvals_required
                );
                GrantRow::of(g, &names, note)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(respond(&HomePage {
        nav: nav(&viewer, "/console"),
        approver: viewer.may(&[Role::Approver]),
        steward,
        my_requests,
        approvals,
        reviews_due,
        post_incident,
        failed_offboardings,
        overview,
    })?)
}

/// The last offboarding of each partner.
fn latest_offboardings(all: &[Offboarding]) -> Vec<&Offboarding> {
    let mut last: BTreeMap<&str, &Offboarding> = BTreeMap::new();
    for o in all {
        last.insert(o.partner.as_str(), o);
    }
    last.into_values().collect()
}

async fn overview(
    state: &AppState,
    me: &Principal,
    s: &Snapshot,
    names: &Names,
) -> Result<Overview, ApiError> {
    let now = s.taken_at;
    let grants: Vec<&Grant> = s.grants.iter().filter(|g| sees_grant(me, g, s)).collect();
    let visible: std::collections::HashSet<&str> = grants.iter().map(|g| g.id.as_str()).collect();
    let active: Vec<&&Grant> = grants
        .iter()
        .filter(|g| g.status == GrantStatus::Active && g.expires_at > now)
        .collect();
    let week = now + SignedDuration::from_hours(7 * 24);
    let expiring = active
        .iter()
        .filter(|g| g.expires_at <= week)
        .map(|g| GrantRow::of(g, names, format!("ends {}", when(g.expires_at))))
        .collect();
    let emergency_open = active
        .iter()
        .filter(|g| g.emergency.is_some())
        .map(|g| {
            let incident = g
                .emergency
                .as_ref()
                .map(|e| e.incident.to_string())
                .unwrap_or_default();
            GrantRow::of(g, names, format!("incident {incident}"))
        })
        .collect();

    // Calls and denials per hour, over the grants the viewer may see.
    let start = (now - SignedDuration::from_hours(23))
        .round(jiff::Unit::Hour)
        .unwrap_or(now);
    let start = if start > now - SignedDuration::from_hours(23) {
        start - SignedDuration::from_hours(1)
    } else {
        start
    };
    let mut hours = vec![(0u64, 0u64); 24];
    let scan = usage::scan_action(
        state.repo.store.as_ref(),
        action::ACCESS_DECISION,
        None,
        start,
        now,
        |_, r, at| {
            if (r.target.is_empty() && reads_all(me)) || visible.contains(r.target.as_str()) {
                let i = (at.duration_since(start).as_secs() / 3600).clamp(0, 23) as usize;
                if r.details["decision"] == "allow" {
                    hours[i].0 += 1;
                } else {
                    hours[i].1 += 1;
                }
            }
            ControlFlow::Continue(())
        },
    )
    .await?;

    let found = visible_findings(me, s, findings::findings(s, now));
    let mut by_severity: BTreeMap<String, usize> = BTreeMap::new();
    for f in &found {
        *by_severity.entry(wire(&f.severity)).or_default() += 1;
    }
    let overdue_reviews = found
        .iter()
        .filter(|f| wire(&f.kind) == "review_overdue")
        .count();
    Ok(Overview {
        partners: s.partners.iter().filter(|p| sees_partner(me, p)).count(),
        active_grants: active.len(),
        chart: Chart::new(&hours, start, scan.truncated),
        expiring,
        overdue_reviews,
        findings_by_severity: ["critical", "high", "medium"]
            .iter()
            .map(|k| ((*k).to_owned(), by_severity.get(*k).copied().unwrap_or(0)))
            .collect(),
        emergency_open,
    })
}

/// Findings the viewer may see (the rule of `GET /v1/findings`).
fn visible_findings(me: &Principal, s: &Snapshot, items: Vec<Finding>) -> Vec<Finding> {
    findings::visible_to(me, s, items)
}

struct Approval {
    by: pages::Who,
    decision: String,
    at: String,
    justification: String,
    ticket: String,
}

struct ScopeUse {
    scope: String,
    calls: u64,
    used: bool,
}

struct Statement {
    kind: String,
    at: String,
    text: String,
}

#[derive(Template)]
#[template(path = "console/grant.html")]
struct GrantPage {
    nav: Nav,
    done: Option<&'static str>,
    id: String,
    partner: pages::Who,
    api: pages::Who,
    use_case: String,
    status: String,
    status_reason: String,
    scopes: String,
    data_class: String,
    regions: String,
    environments: String,
    transfer_basis: String,
    expires: String,
    review_due: String,
    requested_by: pages::Who,
    requested_at: String,
    emergency: String,
    approvals: Vec<Approval>,
    approvals_required: u32,
    usage: Vec<ScopeUse>,
    usage_period: String,
    denials: u64,
    timeline: Vec<Statement>,
    can_decide: bool,
    can_suspend: bool,
    can_resume: bool,
    can_revoke: bool,
    csrf: String,
}

/// `GET /console/grants/{id}`.
pub async fn grant(
    State(state): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Done,
) -> ConsoleResult<Response> {
    let g = visible_grant(&state, &viewer, &id).await?;
    let s = names_snapshot(&state).await?;
    let names = Names::of(&s);
    let me = &viewer.principal;
    let now = state.now();

    let usage = usage::evidence(
        state.repo.store.as_ref(),
        &g,
        charter_core::review::ReviewKind::Recertification,
        now,
    )
    .await
    .map_err(ApiError::from)?;
    let scope_use = g
        .scopes
        .iter()
        .map(|sc| {
            let calls = usage.calls_by_scope.get(sc.as_str()).copied().unwrap_or(0);
            ScopeUse {
                scope: sc.to_string(),
                calls,
                used: calls > 0,
            }
        })
        .collect();

    // The timeline: the grant's lifecycle records, read by action (never its calls, so the
    // page costs the same for a busy grant). The signed bundle is issued — and audited as
    // `evidence.issue` — only when someone downloads it.
    let timeline = lifecycle_timeline(&state, g.id.as_str(), &names).await?;

    let steward = viewer.may(&[Role::Steward]);
    let page = GrantPage {
        nav: nav(&viewer, ""),
        done: done_message(&q),
        id: g.id.to_string(),
        partner: names.who(g.partner.as_str()),
        api: names.who(g.api.as_str()),
        use_case: g.use_case.to_string(),
        status: wire(&g.status),
        status_reason: g
            .status_reason
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        scopes: join(&g.scopes),
        data_class: g.data_class_ceiling.as_str().to_owned(),
        regions: join(&g.regions),
        environments: join(&g.environments),
        transfer_basis: g
            .transfer_basis
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "—".into()),
        expires: when(g.expires_at),
        review_due: when_opt(g.review_due_at),
        requested_by: names.who(g.requested_by.as_str()),
        requested_at: when(g.requested_at),
        emergency: g
            .emergency
            .as_ref()
            .map(|e| e.incident.to_string())
            .unwrap_or_default(),
        approvals: g
            .approvals
            .iter()
            .map(|a| Approval {
                by: names.who(a.approver.as_str()),
                decision: wire(&a.decision),
                at: when(a.at),
                justification: a.justification.to_string(),
                ticket: a
                    .ticket
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "—".into()),
            })
            .collect(),
        approvals_required: g.approvals_required,
        usage: scope_use,
        usage_period: format!("{} – {}", when(usage.period_start), when(usage.period_end)),
        denials: usage.denials,
        timeline,
        can_decide: viewer.may(&[Role::Approver])
            && g.approvers.contains(&me.id)
            && g.status == GrantStatus::Pending
            && g.requested_by != me.id
            && !g.approvals.iter().any(|a| a.approver == me.id),
        can_suspend: steward && g.status == GrantStatus::Active,
        can_resume: steward && g.status == GrantStatus::Suspended,
        can_revoke: steward && matches!(g.status, GrantStatus::Active | GrantStatus::Suspended),
        csrf: viewer.session.csrf.clone(),
    };
    Ok(respond(&page)?)
}

/// The lifecycle actions shown on a grant's timeline.
const GRANT_TIMELINE: &[&str] = &[
    action::GRANT_REQUEST,
    action::GRANT_EMERGENCY_OPEN,
    action::GRANT_APPROVE,
    action::GRANT_REJECT,
    action::GRANT_SUSPEND,
    action::GRANT_SUSPEND_OVERDUE,
    action::GRANT_RESUME,
    action::GRANT_REVOKE,
    action::GRANT_EXPIRE,
    action::GRANT_EMERGENCY_END,
    action::REVIEW_ATTEST,
];

/// A grant's lifecycle records, oldest first, as timeline rows.
async fn lifecycle_timeline(
    state: &AppState,
    grant: &str,
    names: &Names,
) -> Result<Vec<Statement>, ApiError> {
    let mut rows: Vec<(u64, Statement)> = Vec::new();
    for act in GRANT_TIMELINE {
        let found = state
            .repo
            .audit_all(AuditQuery {
                target: Some(grant.to_owned()),
                action: Some((*act).to_owned()),
                ..AuditQuery::default()
            })
            .await?;
        for row in found {
            let rec: AuditRecord = serde_json::from_str(&row.body).map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!("audit record {}: {e}", row.seq))
            })?;
            let who = names
                .0
                .get(&rec.actor)
                .cloned()
                .unwrap_or_else(|| rec.actor.clone());
            let why = rec
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            rows.push((
                row.seq,
                Statement {
                    kind: rec.action.replace(['.', '_'], " "),
                    at: rec
                        .at
                        .parse::<Timestamp>()
                        .map(when)
                        .unwrap_or_else(|_| rec.at.clone()),
                    text: format!("by {who}{why} (record {})", row.seq),
                },
            ));
        }
    }
    rows.sort_by_key(|(seq, _)| *seq);
    Ok(rows.into_iter().map(|(_, st)| st).collect())
}

/// Every object, for names and visibility (no audit facts).
async fn names_snapshot(state: &AppState) -> Result<Snapshot, ApiError> {
    let reads = Reads {
        usage: false,
        sources: false,
        refusals: false,
        access_log: false,
    };
    Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), reads).await
}

/// `GET /console/grants/{id}/evidence`: the signed bundle, as a download.
pub async fn grant_evidence(
    State(state): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> ConsoleResult<Response> {
    let g = visible_grant(&state, &viewer, &id).await?;
    let key = state.keys.evidence_current(&state.repo).await?;
    let bundle = evidence::for_grant(
        &state.repo,
        &key,
        &state.settings.issuer,
        viewer.principal.id.as_str(),
        &g,
    )
    .await?;
    let body = serde_json::to_vec_pretty(&bundle)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("bundle: {e}")))?;
    let disposition = format!("attachment; filename=\"evidence-{}.json\"", g.id.as_str());
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

struct CredentialRow {
    id: String,
    client_id: String,
    grant: String,
    kind: String,
    status: String,
    age_days: i64,
    max_age_days: u32,
}

struct CheckRow {
    name: String,
    target: String,
    passed: bool,
    at: String,
    detail: String,
}

struct OffboardingView {
    id: String,
    status: String,
    started: String,
    finished: String,
    checks: Vec<CheckRow>,
}

struct FindingRow {
    kind: String,
    severity: String,
    subject: String,
    owasp_nhi: &'static str,
    csf: &'static str,
    evidence: pages::Node,
}

impl FindingRow {
    fn of(f: &Finding) -> Self {
        Self {
            kind: wire(&f.kind),
            severity: wire(&f.severity),
            subject: format!("{} {}", f.subject.kind, f.subject.id),
            owasp_nhi: f.owasp_nhi,
            csf: f.csf,
            evidence: pages::Node::of(&f.evidence),
        }
    }
}

#[derive(Template)]
#[template(path = "console/partner.html")]
struct PartnerPage {
    nav: Nav,
    done: Option<&'static str>,
    id: String,
    name: String,
    kind: String,
    status: String,
    regions: String,
    owners: Vec<pages::Who>,
    grants: Vec<GrantRow>,
    credentials: Vec<CredentialRow>,
    findings: Vec<FindingRow>,
    offboarding: Option<OffboardingView>,
    can_offboard: bool,
    can_breakglass: bool,
    apis: Vec<(String, String)>,
    csrf: String,
}

/// `GET /console/partners/{id}`.
pub async fn partner(
    State(state): State<Shared>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Done,
) -> ConsoleResult<Response> {
    viewer.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])?;
    let p = state.repo.load::<Partner>(&id, "partner").await?.value;
    let me = &viewer.principal;
    if !sees_partner(me, &p) {
        return Err(ApiError::not_found("partner").into());
    }
    let reads = findings::reads(None);
    let s = Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), reads).await?;
    let names = Names::of(&s);
    let now = s.taken_at;
    let grants: Vec<&Grant> = s
        .grants
        .iter()
        .filter(|g| g.partner == p.id && sees_grant(me, g, &s))
        .collect();
    let credentials = s
        .credentials
        .iter()
        .map(|c: &CredentialRecord| &c.credential)
        .filter(|c| c.partner == p.id && grants.iter().any(|g| g.id == c.grant))
        .map(|c| CredentialRow {
            id: c.id.to_string(),
            client_id: c.client_id.clone(),
            grant: c.grant.to_string(),
            kind: wire(&c.kind),
            status: wire(&c.status),
            age_days: now.duration_since(c.created_at).as_hours() / 24,
            max_age_days: c.max_age_days,
        })
        .collect();
    let found = visible_findings(me, &s, findings::findings(&s, now));
    let findings = found
        .iter()
        .filter(|f| f.partner() == Some(p.id.as_str()))
        .map(FindingRow::of)
        .collect();
    let offboarding = s
        .offboardings
        .iter()
        .rev()
        .find(|o| o.partner == p.id)
        .map(|o| OffboardingView {
            id: o.id.to_string(),
            status: wire(&o.status),
            started: when(o.started_at),
            finished: when(o.finished_at),
            checks: o
                .checks
                .iter()
                .map(|c| CheckRow {
                    name: c.name.replace('_', " "),
                    target: c.target.clone(),
                    passed: c.passed,
                    at: when(c.at),
                    detail: c.detail.clone(),
                })
                .collect(),
        });
    let steward = viewer.may(&[Role::Steward]);
    let page = PartnerPage {
        nav: nav(&viewer, ""),
        done: done_message(&q),
        id: p.id.to_string(),
        name: p.name.to_string(),
        kind: wire(&p.kind),
        status: wire(&p.status),
        regions: join(&p.regions),
        owners: p.owners.iter().map(|o| names.who(o.as_str())).collect(),
        grants: grants
            .iter()
            .map(|g| GrantRow::of(g, &names, String::new()))
            .collect(),
        credentials,
        findings,
        offboarding,
        can_offboard: steward && wire(&p.status) != "offboarded",
        can_breakglass: steward && wire(&p.status) == "active",
        apis: s
            .apis
            .iter()
            .map(|a| (a.id.to_string(), a.name.to_string()))
            .collect(),
        csrf: viewer.session.csrf.clone(),
    };
    Ok(respond(&page)?)
}

/// A break-glass grant request from the partner page's form: `api`, `scope` (one or more,
/// or comma-separated), `incident`, `hours` (1–4), optional `ceiling`; regions are the
/// partner's.
pub async fn breakglass_request(
    state: &AppState,
    partner_id: &str,
    form: &Form,
) -> Result<GrantRequest, ApiError> {
    let partner = state
        .repo
        .load::<Partner>(partner_id, "partner")
        .await?
        .value;
    let api = state
        .repo
        .load::<Api>(form.one("api").unwrap_or(""), "API")
        .await?
        .value;
    let scopes = form
        .all("scope")
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).map_err(|e| ApiError::Invalid(format!("scope: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(ApiError::Invalid("name at least one scope".into()));
    }
    let incident = form.name("incident")?;
    let hours: i64 = form
        .one("hours")
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| ApiError::Invalid("hours is a whole number from 1 to 4".into()))?;
    if !(1..=charter_core::grant::MAX_EMERGENCY_HOURS).contains(&hours) {
        return Err(ApiError::Invalid(
            "hours is a whole number from 1 to 4".into(),
        ));
    }
    let ceiling = match form.one("ceiling").map(str::trim) {
        None | Some("") => DataClass::Confidential,
        Some(c) => c
            .parse::<DataClass>()
            .map_err(|e| ApiError::Invalid(format!("ceiling: {e}")))?,
    };
    let regions: Vec<Region> = partner.regions.clone();
    let use_case = Name::parse(&format!("Emergency access for {incident}"))?;
    Ok(GrantRequest {
        partner: partner.id.clone(),
        api: api.id.clone(),
        use_case,
        scopes,
        data_class_ceiling: ceiling,
        regions,
        environments: None,
        expires_at: state.now() + SignedDuration::from_hours(hours),
        token_ttl_seconds: None,
        recertify_every_days: None,
        approvals_required: None,
        transfer_basis: None,
        time_window: None,
        require_dpop: None,
        emergency: Some(Emergency { incident }),
    })
}

/// An attestation from the review queue's form.
pub fn attestation(form: &Form, by: PrincipalId) -> Result<Attest, ApiError> {
    let decision = form
        .one("decision")
        .unwrap_or("")
        .parse::<AttestDecision>()
        .map_err(|e| ApiError::Invalid(format!("decision: {e}")))?;
    let scopes = match decision {
        AttestDecision::Reduce => {
            let kept = form
                .all("scope")
                .iter()
                .map(|s| {
                    Scope::parse(s.trim()).map_err(|e| ApiError::Invalid(format!("scope: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if kept.is_empty() {
                return Err(ApiError::Invalid("reduce: tick the scopes to keep".into()));
            }
            Some(kept)
        }
        _ => None,
    };
    Ok(Attest {
        decision,
        scopes,
        justification: form.name("justification")?,
        by,
    })
}

struct ReviewItemView {
    review: String,
    item: String,
    kind: String,
    grant: String,
    partner: pages::Who,
    api: pages::Who,
    use_case: String,
    due: String,
    overdue: bool,
    scopes: Vec<ScopeUse>,
    last_call: String,
    denials: u64,
    period_days: u32,
    decided: Option<String>,
    can_attest: bool,
}

#[derive(Template)]
#[template(path = "console/reviews.html")]
struct ReviewsPage {
    nav: Nav,
    done: Option<&'static str>,
    items: Vec<ReviewItemView>,
    csrf: String,
}

/// `GET /console/reviews`: open review items the viewer may read, with usage evidence.
pub async fn reviews(
    State(state): State<Shared>,
    viewer: Viewer,
    Query(q): Done,
) -> ConsoleResult<Response> {
    let mut readers = crate::services::reviews::Readers::of(&viewer.principal)?;
    let s = names_snapshot(&state).await?;
    let names = Names::of(&s);
    let me = &viewer.principal;
    let now = s.taken_at;
    let mut items = Vec::new();
    let open: Vec<&Review> = s
        .reviews
        .iter()
        .filter(|r| r.status == ReviewStatus::Open)
        .collect();
    for r in open {
        if !readers.sees(&state.repo, r).await? {
            continue;
        }
        let review =
            crate::services::reviews::get(&state.repo, &mut readers, r.id.as_str()).await?;
        for item in &review.items {
            let ev = &item.evidence;
            items.push(ReviewItemView {
                review: review.id.to_string(),
                item: item.id.clone(),
                kind: wire(&item.kind).replace('_', "-"),
                grant: item.grant.to_string(),
                partner: names.who(item.partner.as_str()),
                api: names.who(item.api.as_str()),
                use_case: item.use_case.to_string(),
                due: when(item.due_at),
                overdue: item.due_at <= now && !item.is_attested(),
                scopes: item
                    .scopes
                    .iter()
                    .map(|sc| {
                        let calls = ev.calls_by_scope.get(sc.as_str()).copied().unwrap_or(0);
                        ScopeUse {
                            scope: sc.to_string(),
                            calls,
                            used: calls > 0,
                        }
                    })
                    .collect(),
                last_call: when_opt(ev.last_call_at),
                denials: ev.denials,
                period_days: ev.period_days,
                decided: item.decision.as_ref().map(|d| {
                    format!(
                        "{} by {}",
                        wire(&d.decision),
                        names
                            .who(d.by.as_str())
                            .name
                            .unwrap_or_else(|| d.by.to_string())
                    )
                }),
                can_attest: viewer.may(&[Role::Approver])
                    && !item.is_attested()
                    && item.reviewers.contains(&me.id)
                    && item.requested_by != me.id,
            });
        }
    }
    Ok(respond(&ReviewsPage {
        nav: nav(&viewer, "/console/reviews"),
        done: done_message(&q),
        items,
        csrf: viewer.session.csrf.clone(),
    })?)
}

#[derive(Template)]
#[template(path = "console/findings.html")]
struct FindingsPage {
    nav: Nav,
    items: Vec<FindingRow>,
    generated_at: String,
}

/// `GET /console/findings`.
pub async fn findings(State(state): State<Shared>, viewer: Viewer) -> ConsoleResult<Response> {
    viewer.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])?;
    let s = Snapshot::load(
        &state.repo,
        &state.settings,
        state.feed.fresh(),
        findings::reads(None),
    )
    .await?;
    let found = visible_findings(&viewer.principal, &s, findings::findings(&s, s.taken_at));
    Ok(respond(&FindingsPage {
        nav: nav(&viewer, "/console/findings"),
        items: found.iter().map(FindingRow::of).collect(),
        generated_at: when(s.taken_at),
    })?)
}

/// The audit search's filters, as the form sends them.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditFilters {
    #[serde(default)]
    partner: String,
    #[serde(default)]
    grant: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    /// Cursor: records before this sequence number.
    before: Option<u64>,
}

struct AuditRow {
    seq: u64,
    at: String,
    actor: pages::Who,
    action: String,
    target: pages::Who,
    decision: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    f: AuditFilters,
    rows: Vec<AuditRow>,
    next: Option<String>,
    scanned: usize,
}

/// Rows shown per page, and raw records read at most to fill one.
const AUDIT_PAGE: usize = 50;
const AUDIT_SCAN: usize = 5_000;

/// `GET /console/audit`: the log newest first, filtered by partner, grant, decision, reason
/// and time range, a page at a time.
pub async fn audit(
    State(state): State<Shared>,
    viewer: Viewer,
    Query(f): Query<AuditFilters>,
) -> ConsoleResult<Response> {
    viewer.require(&[Role::Auditor, Role::Steward])?;
    let parse_time = |v: &str, what: &str| -> Result<Option<Timestamp>, ApiError> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<Timestamp>()
            .or_else(|_| {
                v.parse::<jiff::civil::DateTime>()
                    .map_err(|e| e.to_string())
                    .and_then(|d| {
                        jiff::tz::TimeZone::UTC
                            .to_timestamp(d)
                            .map_err(|e| e.to_string())
                    })
            })
            .map(Some)
            .map_err(|_| ApiError::Invalid(format!("{what}: use a time such as 2026-12-01T08:00")))
    };
    let since = parse_time(&f.since, "since")?;
    let until = parse_time(&f.until, "until")?;
    let grant = f.grant.trim();
    let partner = f.partner.trim();
    let names = Names::of(&names_snapshot(&state).await?);
    // A partner's records: about the partner, its grants and its credentials.
    let mut partner_targets = std::collections::HashSet::new();
    if !partner.is_empty() {
        partner_targets.insert(partner.to_owned());
        let filter = charter_store::ListFilter {
            parent: Some(partner.to_owned()),
            status: None,
        };
        for g in state.repo.list_all::<Grant>(filter).await? {
            partner_targets.insert(g.value.id.to_string());
        }
        for c in state
            .repo
            .list_all::<CredentialRecord>(charter_store::ListFilter::default())
            .await?
        {
            let c = c.value.credential;
            if c.partner.as_str() == partner {
                partner_targets.insert(c.id.to_string());
                partner_targets.insert(c.client_id);
            }
        }
    }
    let mut rows = Vec::new();
    let mut before = f.before.unwrap_or(0);
    let mut scanned = 0usize;
    let mut next = None;
    'pages: loop {
        let page = state
            .repo
            .store
            .audit_query(&AuditQuery {
                before,
                target: (!grant.is_empty()).then(|| grant.to_owned()),
                limit: 500,
                newest_first: true,
                ..AuditQuery::default()
            })
            .await
            .map_err(ApiError::from)?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            scanned += 1;
            before = row.seq;
            let rec: AuditRecord = serde_json::from_str(&row.body).map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!("audit record {}: {e}", row.seq))
            })?;
            let at = rec.at.parse::<Timestamp>().ok();
            if let (Some(u), Some(at)) = (until, at)
                && at > u
            {
                continue;
            }
            if let (Some(s), Some(at)) = (since, at)
                && at < s
            {
                break 'pages;
            }
            if !partner.is_empty()
                && !partner_targets.contains(rec.target.as_str())
                && rec.details["partner"].as_str() != Some(partner)
            {
                continue;
            }
            let decision = rec.details["decision"].as_str().unwrap_or("").to_owned();
            if !f.decision.is_empty() && decision != f.decision {
                continue;
            }
            let reason = rec.reason.clone().unwrap_or_default();
            if !f.reason.trim().is_empty() && reason != f.reason.trim() {
                continue;
            }
            rows.push(AuditRow {
                seq: row.seq,
                at: at
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| rec.at.clone()),
                actor: names.who(&rec.actor),
                action: rec.action.clone(),
                target: names.who(&rec.target),
                decision,
                reason,
            });
            if rows.len() == AUDIT_PAGE || scanned >= AUDIT_SCAN {
                next = Some(audit_link(&f, row.seq));
                break 'pages;
            }
        }
        if scanned >= AUDIT_SCAN {
            next = Some(audit_link(&f, before));
            break;
        }
    }
    Ok(respond(&AuditPage {
        nav: nav(&viewer, "/console/audit"),
        f,
        rows,
        next,
        scanned,
    })?)
}

fn audit_link(f: &AuditFilters, before: u64) -> String {
    let q = serde_urlencoded::to_string([
        ("partner", f.partner.as_str()),
        ("grant", f.grant.as_str()),
        ("decision", f.decision.as_str()),
        ("reason", f.reason.as_str()),
        ("since", f.since.as_str()),
        ("until", f.until.as_str()),
        ("before", &before.to_string()),
    ])
    .unwrap_or_default();
    format!("/console/audit?{q}")
}

/// `GET /console/compliance`: the compliance report of the estate, inside the console.
pub async fn compliance(State(state): State<Shared>, viewer: Viewer) -> ConsoleResult<Response> {
    viewer.require(&[Role::Auditor, Role::Steward])?;
    let s = Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), Reads::ALL).await?;
    let found = findings::findings(&s, s.taken_at);
    let report = compliance::report(&s, &found, None);
    let page = CompliancePage::new(&report).with_nav(nav(&viewer, "/console/compliance"));
    Ok(respond(&page)?)
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        Self::Api(ApiError::Unexpected(anyhow::anyhow!("rendering: {e}")))
    }
}
