//! `GET /v1/findings`: parse, authorise, load a [`Snapshot`], compute the findings
//! (`services::findings`, pure rules), keep those the caller may see, render.

use axum::Json;
use axum::extract::State;
use charter_core::Role;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::services::findings::{self, Finding, FindingKind};
use crate::services::snapshot::Snapshot;
use crate::state::Shared;

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
    let reads = findings::reads(q.kind);
    let s = Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), reads).await?;
    let mut items = findings::findings(&s, s.taken_at);
    if let Some(kind) = q.kind {
        items.retain(|f| f.kind == kind);
    }
    let items = findings::visible_to(&caller.principal, &s, items);
    Ok(Json(FindingList {
        items,
        next: None,
        generated_at: s.taken_at,
    }))
}
