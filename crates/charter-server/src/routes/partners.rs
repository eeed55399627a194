//! `/v1/partners`: stewards register partner organisations with their processing regions and
//! accountable business owners (principals with role `approver`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::{Partner, Role};
use charter_store::ListFilter;

use super::{ListReply, Page, list_page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::services::partners;
use crate::state::Shared;
use crate::wire::{self, NewPartner, PatchPartner};

#[utoipa::path(post, path = "/v1/partners", tag = "partners", request_body = NewPartner,
    responses((status = 201, body = wire::Partner), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<Shared>,
    caller: Caller,
    body: Body<NewPartner>,
) -> ApiResult<(StatusCode, Json<wire::Partner>)> {
    caller.require(&[Role::Steward])?;
    let req = body.parse()?;
    let partner = partners::create(
        &state.repo,
        &caller.principal.id,
        partners::NewPartner {
            name: req.name,
            kind: req.kind.into(),
            regions: req.regions,
            owners: req.owners,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(wire::Partner::from(&partner))))
}

/// A steward changes the regions; only an admin changes the owners (403 otherwise).
#[utoipa::path(patch, path = "/v1/partners/{id}", tag = "partners", request_body = PatchPartner,
    responses((status = 200, body = wire::Partner), (status = 403, description = "owners changed by a non-admin"),
        (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<PatchPartner>,
) -> ApiResult<Json<wire::Partner>> {
    caller.require(&[Role::Steward])?;
    let req = body.parse()?;
    let partner = partners::update(
        &state.repo,
        &caller.principal,
        &id,
        partners::PartnerChange {
            regions: req.regions,
            owners: req.owners,
        },
    )
    .await?;
    Ok(Json(wire::Partner::from(&partner)))
}

/// Approvers see the partners they own; API owners see every partner (their counterparties);
/// auditors, stewards and admins see all.
fn visible(caller: &Caller, partner: &Partner) -> bool {
    caller.reads_all() || caller.is(Role::ApiOwner) || partner.owners.contains(&caller.principal.id)
}

fn require_reader(caller: &Caller) -> ApiResult<()> {
    caller.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])
}

#[utoipa::path(get, path = "/v1/partners", tag = "partners", params(Page),
    responses((status = 200, body = ListReply<wire::Partner>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<ListReply<wire::Partner>>> {
    require_reader(&caller)?;
    let reply = list_page(&state, ListFilter::default(), page, |p| visible(&caller, p)).await?;
    Ok(Json(reply.render()))
}

#[utoipa::path(get, path = "/v1/partners/{id}", tag = "partners",
    responses((status = 200, body = wire::Partner), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::Partner>> {
    require_reader(&caller)?;
    let partner = state.repo.load::<Partner>(&id, "partner").await?.value;
    if !visible(&caller, &partner) {
        return Err(ApiError::not_found("partner"));
    }
    Ok(Json(wire::Partner::from(&partner)))
}
