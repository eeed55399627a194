//! `/v1/reviews`: parse, authorise, call `services::reviews`, render. Stewards start
//! recertification campaigns; owners of a partner attest each item.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::Role;
use charter_core::review::{Review, ReviewKind, ReviewStatus};
use charter_store::ListFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ListReply, Page, list_page};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Body, Params};
use crate::services::reviews::{self, Readers};
use crate::state::Shared;
use crate::wire::{self, AttestBody, StartReview};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
    /// Only open or only completed reviews.
    pub status: Option<wire::ReviewStatus>,
    /// Only campaigns (`recertification`) or only `post_incident` reviews.
    pub kind: Option<wire::ReviewKind>,
}

/// A steward starts a recertification campaign over every active (or overdue-suspended)
/// grant of a partner or on an API.
#[utoipa::path(post, path = "/v1/reviews", tag = "reviews", request_body = StartReview,
    responses((status = 201, body = wire::Review), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn start(
    State(state): State<Shared>,
    caller: Caller,
    body: Body<StartReview>,
) -> ApiResult<(StatusCode, Json<wire::Review>)> {
    caller.require(&[Role::Steward])?;
    let req = body.parse()?;
    let subject = reviews::subject(req.partner, req.api)?;
    let review = reviews::start(&state.repo, &caller.principal.id, subject).await?;
    Ok((StatusCode::CREATED, Json(wire::Review::from(&review))))
}

#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", params(ReviewQuery),
    responses((status = 200, body = ListReply<wire::Review>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<ReviewQuery>,
) -> ApiResult<Json<ListReply<wire::Review>>> {
    let mut readers = Readers::of(&caller.principal)?;
    let filter = ListFilter {
        parent: None,
        status: q.status.map(|s| ReviewStatus::from(s).as_str().to_owned()),
    };
    let mut reply = list_page::<Review>(
        &state,
        filter,
        Page {
            limit: q.limit,
            after: q.after,
        },
        |r| q.kind.is_none_or(|k| r.kind == ReviewKind::from(k)),
    )
    .await?;
    let mut kept = Vec::with_capacity(reply.items.len());
    for r in reply.items {
        if readers.sees(&state.repo, &r).await? {
            kept.push(r);
        }
    }
    reply.items = kept;
    Ok(Json(reply.render()))
}

/// A review; items still awaiting their decision show usage evidence as of now, decided
/// items the evidence their reviewer saw.
#[utoipa::path(get, path = "/v1/reviews/{id}", tag = "reviews",
    responses((status = 200, body = wire::Review), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::Review>> {
    let mut readers = Readers::of(&caller.principal)?;
    let review = reviews::get(&state.repo, &mut readers, &id).await?;
    Ok(Json(wire::Review::from(&review)))
}

/// An owner of the grant's partner — never the grant's requester, admins included — keeps,
/// reduces or revokes the grant of one item.
#[utoipa::path(post, path = "/v1/reviews/{id}/items/{item}/attest", tag = "reviews",
    request_body = AttestBody,
    responses((status = 200, body = wire::Review), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn attest(
    State(state): State<Shared>,
    caller: Caller,
    Path((id, item_id)): Path<(String, String)>,
    body: Body<AttestBody>,
) -> ApiResult<Json<wire::Review>> {
    caller.require(&[Role::Approver])?;
    let req = body.parse()?;
    let input = req.into_attest(caller.principal.id.clone());
    let review = reviews::attest(&state.repo, &id, &item_id, input).await?;
    Ok(Json(wire::Review::from(&review)))
}
