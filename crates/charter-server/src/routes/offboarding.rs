//! `POST /v1/partners/{id}/offboard`: parse, authorise, call `services::offboarding`,
//! render the offboarding record with every verification check.

use axum::Json;
use axum::extract::{Path, State};
use charter_core::Role;

use super::ReasonBody;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Body as JsonBody;
use crate::services::offboarding;
use crate::state::Shared;
use crate::wire;

#[utoipa::path(post, path = "/v1/partners/{id}/offboard", tag = "partners", request_body = ReasonBody,
    responses((status = 200, body = wire::Offboarding), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn offboard(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ReasonBody>,
) -> ApiResult<Json<wire::Offboarding>> {
    caller.require(&[Role::Steward])?;
    // The token introspection probes use (a short-lived principal the service creates);
    // principal tokens are made and hashed here, at the edge.
    let token = crate::auth::new_token();
    let probe = offboarding::ProbeToken {
        hash: crate::auth::token_hash(&token),
        token,
    };
    let policy = offboarding::Policy {
        require_gateway: state.settings.offboarding_require_gateway,
    };
    let record = offboarding::offboard(
        &state.tokens(),
        policy,
        probe,
        &caller.principal.id,
        &id,
        req.reason,
    )
    .await?;
    Ok(Json(wire::Offboarding::from(&record)))
}
