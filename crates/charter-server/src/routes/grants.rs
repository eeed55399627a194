//! `/v1/grants`: stewards request grants, partner owners approve or reject them, stewards
//! suspend, resume and revoke them. The rules live in `charter_core::grant`; this module
//! loads what they need and writes what they decide.

use charter_evidence::action;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::grant::GrantRequest;
use charter_core::{Api, ApprovalDecision, Grant, GrantId, GrantStatus, Name, Partner, Role};
use charter_store::{Kind, ListFilter, Versioned};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{ListReply, Page, ReasonBody, list_page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::{AppState, Shared};

async fn load_ref<T: charter_store::Record>(
    state: &AppState,
    id: &str,
    what: &str,
) -> ApiResult<T> {
    match state.store.get(T::KIND, id).await? {
        Some(doc) => Ok(Versioned::<T>::from_doc(&doc)?.value),
        None => Err(ApiError::Invalid(format!("{what} {id} does not exist"))),
    }
}

#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = GrantRequest,
    responses((status = 201, body = Grant), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn request(
    State(state): State<Shared>,
    caller: Caller,
    Body(req): Body<GrantRequest>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    caller.require(&[Role::Steward])?;
    let api: Api = load_ref(&state, req.api.as_str(), "API").await?;
    let partner: Partner = load_ref(&state, req.partner.as_str(), "partner").await?;
    let (ms, rnd) = state.id_seed();
    let grant = req.into_grant(
        GrantId::generate(ms, rnd),
        &api,
        &partner,
        caller.principal.id.clone(),
        state.now(),
    )?;
    let action = if grant.emergency.is_some() {
        action::GRANT_EMERGENCY_OPEN
    } else {
        action::GRANT_REQUEST
    };
    if grant.emergency.is_some() {
        // Break-glass opens its mandatory post-incident review in the same unit.
        super::reviews::open_post_incident(&state, &grant, &partner, caller.id(), action).await?;
    } else {
        state
            .create(&grant, None, caller.id(), action, None)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(grant)))
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
    pub status: Option<GrantStatus>,
}

/// Who may see a grant: readers of everything, the owner of its API, an owner of its partner.
pub(crate) struct Visibility {
    all: bool,
    api_owner: bool,
    approver: bool,
    me: charter_core::PrincipalId,
}

impl Visibility {
    pub(crate) fn of(caller: &Caller) -> ApiResult<Self> {
        caller.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])?;
        Ok(Self {
            all: caller.reads_all(),
            api_owner: caller.is(Role::ApiOwner),
            approver: caller.is(Role::Approver),
            me: caller.principal.id.clone(),
        })
    }

    pub(crate) async fn sees(&self, state: &AppState, grant: &Grant) -> ApiResult<bool> {
        if self.all {
            return Ok(true);
        }
        if self.approver
            && let Some(doc) = state
                .store
                .get(Kind::Partner, grant.partner.as_str())
                .await?
            && Versioned::<Partner>::from_doc(&doc)?
                .value
                .owners
                .contains(&self.me)
        {
            return Ok(true);
        }
        if self.api_owner
            && let Some(doc) = state.store.get(Kind::Api, grant.api.as_str()).await?
            && Versioned::<Api>::from_doc(&doc)?.value.owner == self.me
        {
            return Ok(true);
        }
        Ok(false)
    }
}

#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = ListReply<Grant>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<GrantQuery>,
) -> ApiResult<Json<ListReply<Grant>>> {
    let vis = Visibility::of(&caller)?;
    let filter = ListFilter {
        parent: q.partner,
        status: q.status.map(|s| s.as_str().to_owned()),
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
        if vis.sees(&state, &g).await? {
            kept.push(g);
        }
    }
    reply.items = kept;
    Ok(Json(reply))
}

#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants",
    responses((status = 200, body = Grant), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Grant>> {
    let vis = Visibility::of(&caller)?;
    let grant = state.load::<Grant>(&id, "grant").await?.value;
    if !vis.sees(&state, &grant).await? {
        return Err(ApiError::not_found("grant"));
    }
    Ok(Json(grant))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub decision: ApprovalDecision,
    #[schema(value_type = String)]
    pub justification: Name,
    #[schema(value_type = Option<String>)]
    pub ticket: Option<Name>,
    /// Required to approve a SaaS connector's grant above `internal` data: why the
    /// exception is accepted.
    #[schema(value_type = Option<String>)]
    pub data_exception: Option<Name>,
}

/// An owner of the grant's partner approves or rejects it; never its requester.
#[utoipa::path(post, path = "/v1/grants/{id}/approvals", tag = "grants", request_body = Decision,
    responses((status = 200, body = Grant), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn decide(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<Decision>,
) -> ApiResult<Json<Grant>> {
    caller.require(&[Role::Approver])?;
    let old = state.load::<Grant>(&id, "grant").await?;
    let partner = state
        .load::<Partner>(old.value.partner.as_str(), "partner")
        .await?
        .value;
    let mut grant = old.value.clone();
    let ticket = req.ticket.as_ref().map(|t| t.to_string());
    let exception = req.data_exception.as_ref().map(|e| e.to_string());
    let input = charter_core::grant::ApprovalInput {
        decision: req.decision,
        justification: req.justification.clone(),
        ticket: req.ticket,
        data_exception: req.data_exception,
    };
    grant.decide(&partner, &caller.principal.id, input, state.now())?;
    let action = match req.decision {
        ApprovalDecision::Approve => action::GRANT_APPROVE,
        ApprovalDecision::Reject => action::GRANT_REJECT,
    };
    let extra = json!({ "justification": req.justification.as_str(), "ticket": ticket, "data_exception": exception });
    state
        .update(
            &old,
            &grant,
            caller.id(),
            action,
            Some(req.justification.to_string()),
            Some(extra),
        )
        .await?;
    Ok(Json(grant))
}

/// Which lifecycle call.
#[derive(Clone, Copy)]
enum Lifecycle {
    Suspend,
    Resume,
    Revoke,
}

async fn lifecycle(
    state: Shared,
    caller: Caller,
    id: String,
    reason: Name,
    which: Lifecycle,
) -> ApiResult<Json<Grant>> {
    caller.require(&[Role::Steward])?;
    let old = state.load::<Grant>(&id, "grant").await?;
    let mut grant = old.value.clone();
    let now = state.now();
    let action = match which {
        Lifecycle::Suspend => {
            grant.suspend(reason.clone())?;
            action::GRANT_SUSPEND
        }
        Lifecycle::Resume => {
            // Contract (Reviews): overdue-suspended grants come back only through a review.
            if charter_core::review::is_overdue_suspended(&grant) {
                return Err(ApiError::Conflict(
                    "the grant is suspended for an overdue recertification: attest keep or reduce in a review".into(),
                ));
            }
            grant.resume(reason.clone(), now)?;
            action::GRANT_RESUME
        }
        Lifecycle::Revoke => {
            grant.revoke(reason.clone(), now)?;
            action::GRANT_REVOKE
        }
    };
    state
        .update(
            &old,
            &grant,
            caller.id(),
            action,
            Some(reason.to_string()),
            None,
        )
        .await?;
    Ok(Json(grant))
}

#[utoipa::path(post, path = "/v1/grants/{id}/suspend", tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = Grant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn suspend(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<ReasonBody>,
) -> ApiResult<Json<Grant>> {
    lifecycle(state, caller, id, b.reason, Lifecycle::Suspend).await
}

#[utoipa::path(post, path = "/v1/grants/{id}/resume", tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = Grant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn resume(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<ReasonBody>,
) -> ApiResult<Json<Grant>> {
    lifecycle(state, caller, id, b.reason, Lifecycle::Resume).await
}

#[utoipa::path(post, path = "/v1/grants/{id}/revoke", tag = "grants", request_body = ReasonBody,
    responses((status = 200, body = Grant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<ReasonBody>,
) -> ApiResult<Json<Grant>> {
    lifecycle(state, caller, id, b.reason, Lifecycle::Revoke).await
}
