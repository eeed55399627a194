//! `GET /v1/compliance`: parse, authorise, load a [`Snapshot`], compute the findings and the
//! report (`services::compliance`, pure rules), render it as JSON or — `?format=html` — as a
//! page for people (`pages::CompliancePage`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use charter_core::{Partner, Role};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::pages::{self, CompliancePage};
use crate::services::compliance::{self, ComplianceReport};
use crate::services::findings;
use crate::services::snapshot::{Reads, Snapshot};
use crate::state::Shared;

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
    let s = Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), Reads::ALL).await?;
    let found = findings::findings(&s, s.taken_at);
    let report = compliance::report(&s, &found, partner.as_ref());
    match q.format.unwrap_or_default() {
        Format::Json => Ok(Json(report).into_response()),
        Format::Html => pages::respond(&CompliancePage::new(&report)),
    }
}
