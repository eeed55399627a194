//! `/v1/keys`: the token signing keys (public facts only) and their rotation;
//! `/v1/evidence-keys/rotate`: rotation of the evidence key.

use axum::Json;
use axum::extract::State;
use charter_core::Role;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::Shared;

/// Rotates the token signing key: the published next key starts signing, the active one is
/// retired but stays published until every token it signed has expired.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys",
    responses((status = 200, description = "the new active, next and retired key ids")), security(("bearer" = [])))]
pub async fn rotate(State(state): State<Shared>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&[])?;
    let details = state.keys.rotate(&state.repo, caller.id()).await?;
    Ok(Json(details))
}

/// The signing keys: id, status and times (never key material).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, description = "signing keys")), security(("bearer" = [])))]
pub async fn list(State(state): State<Shared>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Auditor])?;
    let keys = state.keys.current()?;
    let items: Vec<_> = keys
        .records
        .iter()
        .map(|r| {
            let k = &r.value;
            json!({ "kid": k.kid, "status": k.status, "created_at": k.created_at, "activated_at": k.activated_at,
                    "retired_at": k.retired_at, "publish_until": k.publish_until })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Rotates the evidence key (admin): the current key's signing period closes now (it stays
/// published at `/.well-known/charter-evidence-keys`, so old bundles and checkpoints still
/// verify) and a new key signs from now. Audited (`evidence_key.rotate`). Answers `{active,
/// retired, key}`, `key` the new public key as published, with its period.
#[utoipa::path(post, path = "/v1/evidence-keys/rotate", tag = "keys",
    responses((status = 200, description = "the new evidence key (`key`: public JWK with `not_before`, `not_after: null`) and the retired kids")),
    security(("bearer" = [])))]
pub async fn rotate_evidence(
    State(state): State<Shared>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&[])?;
    let reply = state.keys.rotate_evidence(&state.repo, caller.id()).await?;
    Ok(Json(reply))
}
