//! `POST /v1/partners/{id}/offboard`: parse, authorise, call `services::offboarding`,
//! render the offboarding record with every verification check.

use axum::Json;
use axum::extract::{Path, State};
use charter_core::Role;

use super::ReasonBody;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Body;
use crate::services::offboarding;
use crate::state::Shared;
use crate::wire;

#[utoipa::path(post, path = "/v1/partners/{id}/offboard", tag = "partners", request_body = ReasonBody,
    responses((status = 200, body = wire::Offboarding), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn offboard(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ReasonBody>,
) -> ApiResult<Json<wire::Offboarding>> {
    caller.require(&[Role::Steward])?;
    let req = body.parse()?;
    let policy = offboarding::Policy {
        require_gateway: state.settings.offboarding_require_gateway,
    };
    let record = offboarding::offboard(
        &state.tokens(),
        policy,
        crate::auth::probe_token(),
        &caller.principal.id,
        &id,
        req.reason,
    )
    .await?;
    Ok(Json(wire::Offboarding::from(&record)))
}
