//! `/v1/audit`: read the hash-chained log and verify it end to end.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use charter_core::Role;
use charter_evidence::{AuditRecord, ChainHead};
use charter_store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::state::Shared;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Records after this sequence number (ascending order).
    pub after: Option<u64>,
    /// Records before this sequence number (with `order=desc`).
    pub before: Option<u64>,
    pub limit: Option<u32>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    /// `asc` (default) or `desc` (newest first).
    pub order: Option<String>,
}

/// One audit record with its place in the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditItem {
    pub seq: u64,
    pub hash: String,
    #[schema(value_type = Object)]
    pub record: AuditRecord,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// Cursor: pass as `after` (ascending) or `before` (descending); `null` at the end.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage)), security(("bearer" = [])))]
pub async fn query(
    State(state): State<Shared>,
    caller: Caller,
    Params(p): Params<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    caller.require(&[Role::Auditor, Role::Steward])?;
    let limit = super::page_limit(p.limit)?;
    let newest_first = match p.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::Invalid("order is asc or desc".into())),
    };
    let q = AuditQuery {
        after: p.after.unwrap_or(0),
        before: p.before.unwrap_or(0),
        target: p.target,
        action: p.action,
        actor: p.actor,
        limit,
        newest_first,
    };
    let rows = state.repo.store.audit_query(&q).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let record: AuditRecord = serde_json::from_str(&row.body).map_err(|e| {
            ApiError::Unexpected(anyhow::anyhow!("audit record {} unreadable: {e}", row.seq))
        })?;
        items.push(AuditItem {
            seq: row.seq,
            hash: row.hash,
            record,
        });
    }
    Ok(Json(AuditPage { items, next }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReply {
    pub valid: bool,
    pub records: u64,
    #[schema(value_type = Object)]
    pub head: ChainHead,
}

/// Recomputes the chain from the first record: 200 when intact, 409 naming the first
/// broken record when not — a record whose stored columns (`at`, `actor`, `action`,
/// `target`) disagree with its body included.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReply), (status = 409, description = "chain_broken")),
    security(("bearer" = [])))]
pub async fn verify(State(state): State<Shared>, caller: Caller) -> ApiResult<Response> {
    caller.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])?;
    match charter_store::verify_chain(state.repo.store.as_ref()).await? {
        Ok(head) => Ok(Json(VerifyReply {
            valid: true,
            records: head.seq,
            head,
        })
        .into_response()),
        Err(brk) => {
            // Evidence is refused from now on too, whatever the guard verified before.
            state.repo.chain.note_break(&brk).await;
            Err(ApiError::ChainBroken(brk))
        }
    }
}
