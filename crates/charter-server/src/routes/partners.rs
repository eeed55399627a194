//! `/v1/partners`: stewards register partner organisations with their processing regions and
//! accountable business owners (principals with role `approver`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::{
    Partner, PartnerId, PartnerKind, PartnerStatus, Principal, PrincipalId, Region, Role,
};
use charter_evidence::action;
use charter_store::ListFilter;

use super::{ListReply, Page, list_page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::{AppState, Shared};
use crate::wire::{self, NewPartner, PatchPartner};

fn check_regions(regions: Vec<Region>) -> ApiResult<Vec<Region>> {
    let mut regions = regions;
    regions.sort();
    regions.dedup();
    if regions.is_empty() {
        return Err(ApiError::Invalid(
            "regions must name at least one region".into(),
        ));
    }
    Ok(regions)
}

/// Owners must be enabled principals with role `approver`; each counts once.
async fn check_owners(state: &AppState, owners: Vec<PrincipalId>) -> ApiResult<Vec<PrincipalId>> {
    let mut out: Vec<PrincipalId> = Vec::with_capacity(owners.len());
    for owner in owners {
        if out.contains(&owner) {
            continue;
        }
        let p: Principal = state.repo.referenced(owner.as_str(), "owner").await?;
        if p.disabled || !p.has_role(Role::Approver) {
            return Err(ApiError::Invalid(format!(
                "owner {owner} is not an enabled approver"
            )));
        }
        out.push(owner);
    }
    Ok(out)
}

#[utoipa::path(post, path = "/v1/partners", tag = "partners", request_body = NewPartner,
    responses((status = 201, body = wire::Partner), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<Shared>,
    caller: Caller,
    Body(req): Body<NewPartner>,
) -> ApiResult<(StatusCode, Json<wire::Partner>)> {
    caller.require(&[Role::Steward])?;
    let regions = check_regions(req.regions)?;
    let owners = check_owners(&state, req.owners).await?;
    let kind = PartnerKind::from(req.kind);
    if kind == PartnerKind::SaasConnector && owners.is_empty() {
        return Err(ApiError::Invalid(
            "a SaaS connector names its accountable owner on our side: owners must not be empty"
                .into(),
        ));
    }
    let now = state.now();
    let (ms, rnd) = state.repo.id_seed();
    let partner = Partner {
        id: PartnerId::generate(ms, rnd),
        name: req.name,
        kind,
        regions,
        owners,
        status: PartnerStatus::Active,
        created_at: now,
        updated_at: now,
    };
    state
        .repo
        .create(&partner, None, caller.id(), action::PARTNER_CREATE, None)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::Partner::from(&partner))))
}

#[utoipa::path(patch, path = "/v1/partners/{id}", tag = "partners", request_body = PatchPartner,
    responses((status = 200, body = wire::Partner), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<PatchPartner>,
) -> ApiResult<Json<wire::Partner>> {
    caller.require(&[Role::Steward])?;
    let old = state.repo.load::<Partner>(&id, "partner").await?;
    if old.value.status == PartnerStatus::Offboarded {
        return Err(ApiError::Conflict("the partner is offboarded".into()));
    }
    let mut partner = old.value.clone();
    if let Some(regions) = req.regions {
        partner.regions = check_regions(regions)?;
    }
    if let Some(owners) = req.owners {
        partner.owners = check_owners(&state, owners).await?;
    }
    partner.updated_at = state.now();
    state
        .repo
        .update(
            &old,
            &partner,
            caller.id(),
            action::PARTNER_UPDATE,
            None,
            None,
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
