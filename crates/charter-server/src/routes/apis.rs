//! `/v1/apis`: API owners publish their APIs (operations with scope, data class and region)
//! and republish them; a republish takes effect for the very next call.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::{Api, ApiId, Operation, Principal, PrincipalId, Role};
use charter_evidence::action;
use charter_store::ListFilter;

use super::{ListReply, Page, list_page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::services::upstreams;
use crate::state::{AppState, Shared};
use crate::wire::{self, PublishApi};

/// Paths the gateway answers itself cannot be API names.
const RESERVED_NAMES: [&str; 4] = ["v1", "healthz", "readyz", "metrics"];

/// The gateway must be able to route every operation: the name is not reserved and the
/// templates compile into one router per method.
fn check_routable(api: &Api) -> ApiResult<()> {
    if RESERVED_NAMES.contains(&api.name.as_str()) {
        return Err(ApiError::Invalid(format!(
            "{} is a reserved name",
            api.name
        )));
    }
    charter_gateway::routing::CompiledApi::compile(api)
        .map(|_| ())
        .map_err(|e| ApiError::Invalid(format!("operations cannot be routed: {e}")))
}

/// Resolves the owner: an enabled `api_owner`; non-admins may only name themselves.
async fn check_owner(
    state: &AppState,
    caller: &Caller,
    owner: Option<PrincipalId>,
) -> ApiResult<PrincipalId> {
    let owner = match owner {
        Some(o) => o,
        None if caller.is(Role::ApiOwner) => caller.principal.id.clone(),
        None => return Err(ApiError::Invalid("owner is required".into())),
    };
    if !caller.is_admin() && owner != caller.principal.id {
        return Err(ApiError::Forbidden(
            "an API owner publishes APIs in their own name".into(),
        ));
    }
    let p: Principal = state.repo.referenced(owner.as_str(), "owner").await?;
    if p.disabled || !p.has_role(Role::ApiOwner) {
        return Err(ApiError::Invalid(format!(
            "owner {owner} is not an enabled api_owner"
        )));
    }
    Ok(owner)
}

#[utoipa::path(post, path = "/v1/apis", tag = "apis", request_body = PublishApi,
    responses((status = 201, body = wire::Api), (status = 409, description = "name or audience taken"), (status = 422)),
    security(("bearer" = [])))]
pub async fn publish(
    State(state): State<Shared>,
    caller: Caller,
    body: Body<PublishApi>,
) -> ApiResult<(StatusCode, Json<wire::Api>)> {
    caller.require(&[Role::ApiOwner])?;
    let req = body.parse()?;
    upstreams::check(&state.settings, &req.upstream).await?;
    let operations: Vec<Operation> = req.operations.into_iter().map(Operation::from).collect();
    Api::check_operations(&operations)?;
    let owner = check_owner(&state, &caller, req.owner).await?;
    let now = state.now();
    let (ms, rnd) = state.repo.id_seed();
    let api = Api {
        id: ApiId::generate(ms, rnd),
        name: req.name,
        audience: req.audience,
        upstream: req.upstream,
        owner,
        operations,
        revision: 1,
        created_at: now,
        updated_at: now,
    };
    check_routable(&api)?;
    state
        .repo
        .create(&api, None, caller.id(), action::API_PUBLISH, None)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::Api::from(&api))))
}

#[utoipa::path(put, path = "/v1/apis/{id}", tag = "apis", request_body = PublishApi,
    responses((status = 200, body = wire::Api), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn republish(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<PublishApi>,
) -> ApiResult<Json<wire::Api>> {
    caller.require(&[Role::ApiOwner])?;
    let old = state.repo.load::<Api>(&id, "API").await?;
    if !caller.is_admin() && old.value.owner != caller.principal.id {
        return Err(ApiError::Forbidden(
            "only the API's owner republishes it".into(),
        ));
    }
    let req = body.parse()?;
    upstreams::check(&state.settings, &req.upstream).await?;
    let operations: Vec<Operation> = req.operations.into_iter().map(Operation::from).collect();
    Api::check_operations(&operations)?;
    let owner = check_owner(
        &state,
        &caller,
        req.owner.or_else(|| Some(old.value.owner.clone())),
    )
    .await?;
    let mut api = old.value.clone();
    api.name = req.name;
    api.audience = req.audience;
    api.upstream = req.upstream;
    api.owner = owner;
    api.operations = operations;
    api.revision += 1;
    api.updated_at = state.now();
    check_routable(&api)?;
    state
        .repo
        .update(&old, &api, caller.id(), action::API_REPUBLISH, None, None)
        .await?;
    Ok(Json(wire::Api::from(&api)))
}

/// Approvers, auditors, stewards and admins see every API; an API owner sees their own.
fn visible(caller: &Caller, api: &Api) -> bool {
    caller.reads_all() || caller.is(Role::Approver) || api.owner == caller.principal.id
}

fn require_reader(caller: &Caller) -> ApiResult<()> {
    caller.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])
}

#[utoipa::path(get, path = "/v1/apis", tag = "apis", params(Page),
    responses((status = 200, body = ListReply<wire::Api>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<ListReply<wire::Api>>> {
    require_reader(&caller)?;
    let reply = list_page(&state, ListFilter::default(), page, |a| visible(&caller, a)).await?;
    Ok(Json(reply.render()))
}

#[utoipa::path(get, path = "/v1/apis/{id}", tag = "apis",
    responses((status = 200, body = wire::Api), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::Api>> {
    require_reader(&caller)?;
    let api = state.repo.load::<Api>(&id, "API").await?.value;
    if !visible(&caller, &api) {
        return Err(ApiError::not_found("API"));
    }
    Ok(Json(wire::Api::from(&api)))
}
