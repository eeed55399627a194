//! `/v1/grants`: parse, authorise, call `services::grants`, render. Stewards request grants,
//! partner owners approve or reject them, stewards suspend, resume and revoke them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::{Grant, Role};
use charter_store::ListFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ListReply, Page, ReasonBody, list_page};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Body, Params};
use crate::services::grants::{self, Lifecycle, Visibility};
use crate::state::Shared;
use crate::wire;

#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = wire::GrantRequest,
    responses((status = 201, body = wire::Grant), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn request(
    State(state): State<Shared>,
    caller: Caller,
    body: Body<wire::GrantRequest>,
) -> ApiResult<(StatusCode, Json<wire::Grant>)> {
    caller.require(&[Role::Steward])?;
    let req = body.parse()?;
    let grant = grants::request(&state.repo, &caller.principal.id, req.into()).await?;
    Ok((StatusCode::CREATED, Json(wire::Grant::from(&grant))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
    /// Only grants of this partner.
    pub partner: Option<String>,
    /// Only grants on this API.
    pub api: Option<String>,
    /// Only grants in this state.
    pub status: Option<wire::GrantStatus>,
}

#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = ListReply<wire::Grant>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<GrantQuery>,
) -> ApiResult<Json<ListReply<wire::Grant>>> {
    let vis = Visibility::of(&caller.principal)?;
    let filter = ListFilter {
        parent: q.partner,
        status: q
            .status
            .map(|s| charter_core::GrantStatus::from(s).as_str().to_owned()),
    };
    let mut reply = list_page::<Grant>(
        &state,
        filter,
        Page {
            limit: q.limit,
            after: q.after,
        },
        |g| q.api.as_deref().is_none_or(|a| g.api.as_str() == a),
    )
    .await?;
    let mut kept = Vec::with_capacity(reply.items.len());
    for g in reply.items {
        if vis.sees(&state.repo, &g).await? {
            kept.push(g);
        }
    }
    reply.items = kept;
    Ok(Json(reply.render()))
}

#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants",
    responses((status = 200, body = wire::Grant), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::Grant>> {
    let vis = Visibility::of(&caller.principal)?;
    let grant = vis.load(&state.repo, &id).await?;
    Ok(Json(wire::Grant::from(&grant)))
}

/// An owner of the grant's partner approves or rejects it; never its requester.
#[utoipa::path(post, path = "/v1/grants/{id}/approvals", tag = "grants", request_body = wire::Decision,
    responses((status = 200, body = wire::Grant), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn decide(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<wire::Decision>,
) -> ApiResult<Json<wire::Grant>> {
    caller.require(&[Role::Approver])?;
    let req = body.parse()?;
    let grant = grants::decide(&state.repo, &caller.principal.id, &id, req.into()).await?;
    Ok(Json(wire::Grant::from(&grant)))
}

async fn lifecycle(
    state: Shared,
    caller: Caller,
    id: String,
    body: Body<ReasonBody>,
    which: Lifecycle,
) -> ApiResult<Json<wire::Grant>> {
    caller.require(&[Role::Steward])?;
    let reason = body.parse()?.reason;
    let grant = grants::lifecycle(&state.repo, &caller.principal.id, &id, reason, which).await?;
    Ok(Json(wire::Grant::from(&grant)))
}

#[utoipa::path(post, path = "/v1/grants/{id}/suspend", tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = wire::Grant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn suspend(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<wire::Grant>> {
    lifecycle(state, caller, id, body, Lifecycle::Suspend).await
}

#[utoipa::path(post, path = "/v1/grants/{id}/resume", tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = wire::Grant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn resume(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<wire::Grant>> {
    lifecycle(state, caller, id, body, Lifecycle::Resume).await
}

#[utoipa::path(post, path = "/v1/grants/{id}/revoke", tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = wire::Grant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<wire::Grant>> {
    lifecycle(state, caller, id, body, Lifecycle::Revoke).await
}
