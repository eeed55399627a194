//! Credentials of a grant: parse, authorise, call `services::credentials`, render. Stewards
//! issue, rotate and revoke; a client secret appears once, in the reply that creates it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::credential::DEFAULT_OVERLAP_SECONDS;
use charter_core::{Grant, Role};
use charter_store::{CredentialRecord, ListFilter, Versioned};

use super::{ListReply, Page, ReasonBody};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::services::credentials;
use crate::services::grants::Visibility;
use crate::state::{AppState, Shared};
use crate::wire::{self, IssuedCredential, NewCredential, RotateCredential};

#[utoipa::path(post, path = "/v1/grants/{id}/credentials", tag = "credentials", request_body = NewCredential,
    responses((status = 201, body = IssuedCredential), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn issue(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<NewCredential>,
) -> ApiResult<(StatusCode, Json<IssuedCredential>)> {
    caller.require(&[Role::Steward])?;
    let req = body.parse()?;
    let issued = credentials::issue(
        &state.repo,
        &state.keys,
        &caller.principal.id,
        &id,
        credentials::Request {
            kind: req.kind.into(),
            public_jwk: req.public_jwk,
            max_age_days: req.max_age_days,
        },
        state.settings.credential_max_age_days,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

async fn load_visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Versioned<CredentialRecord>> {
    let vis = Visibility::of(&caller.principal)?;
    let rec = state
        .repo
        .load::<CredentialRecord>(id, "credential")
        .await?;
    let grant = state
        .repo
        .load::<Grant>(rec.value.credential.grant.as_str(), "credential")
        .await?
        .value;
    if !vis.sees(&state.repo, &grant).await? {
        return Err(ApiError::not_found("credential"));
    }
    Ok(rec)
}

#[utoipa::path(get, path = "/v1/grants/{id}/credentials", tag = "credentials", params(Page),
    responses((status = 200, body = ListReply<wire::Credential>), (status = 404)), security(("bearer" = [])))]
pub async fn list_for_grant(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> ApiResult<Json<ListReply<wire::Credential>>> {
    let vis = Visibility::of(&caller.principal)?;
    let grant = state.repo.load::<Grant>(&id, "grant").await?.value;
    if !vis.sees(&state.repo, &grant).await? {
        return Err(ApiError::not_found("grant"));
    }
    let filter = ListFilter {
        parent: Some(grant.id.to_string()),
        status: None,
    };
    let reply = super::list_page::<CredentialRecord>(&state, filter, page, |_| true).await?;
    Ok(Json(ListReply {
        items: reply
            .items
            .iter()
            .map(|r| wire::Credential::from(&r.credential))
            .collect(),
        next: reply.next,
    }))
}

#[utoipa::path(get, path = "/v1/credentials/{id}", tag = "credentials",
    responses((status = 200, body = wire::Credential), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::Credential>> {
    let rec = load_visible(&state, &caller, &id).await?;
    Ok(Json(wire::Credential::from(&rec.value.credential)))
}

#[utoipa::path(post, path = "/v1/credentials/{id}/rotate", tag = "credentials", request_body = RotateCredential,
    responses((status = 200, body = IssuedCredential), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<RotateCredential>,
) -> ApiResult<Json<IssuedCredential>> {
    caller.require(&[Role::Steward])?;
    let req = body.parse_optional()?.unwrap_or_default();
    let overlap = req.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECONDS);
    let issued = credentials::rotate(
        &state.repo,
        &state.keys,
        &caller.principal.id,
        &id,
        req.public_jwk,
        overlap,
    )
    .await?;
    Ok(Json(issued.into()))
}

#[utoipa::path(post, path = "/v1/credentials/{id}/revoke", tag = "credentials", request_body = ReasonBody,
    responses((status = 200, body = wire::Credential), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<wire::Credential>> {
    caller.require(&[Role::Steward])?;
    let body = body.parse()?;
    let credential =
        credentials::revoke(&state.repo, &caller.principal.id, &id, body.reason).await?;
    Ok(Json(wire::Credential::from(&credential)))
}
