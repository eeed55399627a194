//! `/v1/principals`: who may call the admin API, with which roles. Admin only, except that
//! a principal may read and rotate its own token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::{Principal, PrincipalId, Role};
use charter_evidence::action;
use charter_store::{ListFilter, Op, Unit, Versioned};
use jiff::SignedDuration;
use serde_json::json;

use super::{ListReply, Page, ReasonBody, list_page};
use crate::auth::{Caller, new_token, token_hash};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::Shared;
use crate::wire::{self, NewPrincipal, PrincipalWithToken, RotateBody};

fn token_lifetime(state: &Shared, days: Option<u32>) -> ApiResult<SignedDuration> {
    let days = match days {
        None => state.settings.principal_token_days,
        Some(d) if (1..=365).contains(&d) => i64::from(d),
        Some(_) => {
            return Err(ApiError::Invalid(
                "token_days must be between 1 and 365".into(),
            ));
        }
    };
    Ok(SignedDuration::from_hours(24 * days))
}

#[utoipa::path(post, path = "/v1/principals", tag = "principals", request_body = NewPrincipal,
    responses((status = 201, body = PrincipalWithToken), (status = 409, description = "name taken")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Shared>,
    caller: Caller,
    body: Body<NewPrincipal>,
) -> ApiResult<(StatusCode, Json<PrincipalWithToken>)> {
    caller.require(&[])?;
    let req = body.parse()?;
    if req.roles.is_empty() {
        return Err(ApiError::Invalid(
            "roles must name at least one role".into(),
        ));
    }
    let mut roles: Vec<Role> = req.roles.into_iter().map(Role::from).collect();
    roles.sort();
    roles.dedup();
    let now = state.now();
    let (ms, rnd) = state.repo.id_seed();
    let principal = Principal {
        id: PrincipalId::generate(ms, rnd),
        name: req.name,
        roles,
        created_at: now,
        token_expires_at: now + token_lifetime(&state, req.token_days)?,
        disabled: false,
    };
    let token = new_token();
    state
        .repo
        .create(
            &principal,
            Some(token_hash(&token)),
            caller.id(),
            action::PRINCIPAL_CREATE,
            None,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PrincipalWithToken {
            principal: wire::Principal::from(&principal),
            token,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/principals", tag = "principals", params(Page),
    responses((status = 200, body = ListReply<wire::Principal>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<ListReply<wire::Principal>>> {
    caller.require(&[])?;
    let reply = list_page::<Principal>(&state, ListFilter::default(), page, |_| true).await?;
    Ok(Json(reply.render()))
}

async fn load_visible(
    state: &Shared,
    caller: &Caller,
    id: &str,
) -> ApiResult<Versioned<Principal>> {
    if !caller.is_admin() && caller.id() != id {
        return Err(ApiError::Forbidden(
            "only an admin reads other principals".into(),
        ));
    }
    state.repo.load::<Principal>(id, "principal").await
}

#[utoipa::path(get, path = "/v1/principals/{id}", tag = "principals",
    responses((status = 200, body = wire::Principal), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::Principal>> {
    let principal = load_visible(&state, &caller, &id).await?.value;
    Ok(Json(wire::Principal::from(&principal)))
}

/// Issues a new token; the old one stops working at once.
#[utoipa::path(post, path = "/v1/principals/{id}/rotate", tag = "principals",
    request_body(content = RotateBody, description = "optional"),
    responses((status = 200, body = PrincipalWithToken), (status = 404)), security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<RotateBody>,
) -> ApiResult<Json<PrincipalWithToken>> {
    let old = load_visible(&state, &caller, &id).await?;
    let body = body.parse_optional()?.unwrap_or_default();
    if old.value.disabled {
        return Err(ApiError::Conflict(
            "a disabled principal cannot be given a token".into(),
        ));
    }
    let mut principal = old.value.clone();
    principal.token_expires_at = state.now() + token_lifetime(&state, body.token_days)?;
    let token = new_token();
    let rec = state.repo.record(
        caller.id(),
        action::PRINCIPAL_ROTATE,
        &id,
        None,
        json!({ "token_expires_at": principal.token_expires_at.to_string() }),
    );
    state
        .repo
        .write(Unit {
            ops: vec![Op::Update(
                old.next_doc_with_lookup(&principal, token_hash(&token)),
            )],
            audit: vec![rec],
        })
        .await?;
    Ok(Json(PrincipalWithToken {
        principal: wire::Principal::from(&principal),
        token,
    }))
}

#[utoipa::path(post, path = "/v1/principals/{id}/disable", tag = "principals", request_body = ReasonBody,
    responses((status = 200, body = wire::Principal), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn disable(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<wire::Principal>> {
    caller.require(&[])?;
    let body = body.parse()?;
    let old = state.repo.load::<Principal>(&id, "principal").await?;
    if caller.id() == id {
        return Err(ApiError::Conflict(
            "a principal cannot disable itself".into(),
        ));
    }
    if old.value.disabled {
        return Err(ApiError::Conflict(
            "the principal is already disabled".into(),
        ));
    }
    let mut principal = old.value.clone();
    principal.disabled = true;
    state
        .repo
        .update(
            &old,
            &principal,
            caller.id(),
            action::PRINCIPAL_DISABLE,
            Some(body.reason.to_string()),
            None,
        )
        .await?;
    Ok(Json(wire::Principal::from(&principal)))
}
