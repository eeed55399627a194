//! `GET /v1/grants/{id}/evidence`, `GET /v1/partners/{id}/evidence`: parse, authorise, call
//! `services::evidence`, render the signed bundle as JSON or as an HTML timeline (`pages::EvidencePage`).
//! `GET /v1/grants/{id}/usage/proof?seq=N&size=M`: one usage record and its audit path to
//! the usage root a bundle committed.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use charter_core::Partner;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::pages::{self, EvidencePage};
use crate::services::evidence;
use crate::services::grants::Visibility;
use crate::state::Shared;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParams {
    /// `json` (default) or `html`.
    pub format: Option<String>,
}

fn answer(bundle: Value, format: Option<String>) -> ApiResult<Response> {
    match format.as_deref() {
        None | Some("json") => Ok(Json(bundle).into_response()),
        Some("html") => pages::respond(&EvidencePage::from_bundle(&bundle)),
        Some(_) => Err(ApiError::Invalid("format is json or html".into())),
    }
}

#[utoipa::path(get, path = "/v1/grants/{id}/evidence", tag = "evidence", params(EvidenceParams),
    responses((status = 200, description = "signed evidence bundle (JSON) or its HTML timeline"), (status = 404),
        (status = 409, description = "chain_broken: the audit chain does not verify; no bundle is signed")),
    security(("bearer" = [])))]
pub async fn for_grant(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<EvidenceParams>,
) -> ApiResult<Response> {
    let vis = Visibility::of(&caller.principal)?;
    let grant = vis.load(&state.repo, &id).await?;
    let key = state.keys.evidence_current(&state.repo).await?;
    let bundle = evidence::for_grant(
        &state.repo,
        &key,
        &state.settings.issuer,
        caller.id(),
        &grant,
    )
    .await?;
    answer(bundle, p.format)
}

#[utoipa::path(get, path = "/v1/partners/{id}/evidence", tag = "evidence", params(EvidenceParams),
    responses((status = 200, description = "signed evidence bundle (JSON) or its HTML timeline"), (status = 404),
        (status = 409, description = "chain_broken: the audit chain does not verify; no bundle is signed")),
    security(("bearer" = [])))]
pub async fn for_partner(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<EvidenceParams>,
) -> ApiResult<Response> {
    let vis = Visibility::of(&caller.principal)?;
    let partner = state.repo.load::<Partner>(&id, "partner").await?.value;
    let key = state.keys.evidence_current(&state.repo).await?;
    let bundle = evidence::for_partner(
        &state.repo,
        &key,
        &state.settings.issuer,
        caller.id(),
        &vis,
        &partner,
    )
    .await?;
    answer(bundle, p.format)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofParams {
    /// The usage record (`access.decision` or `token.issue` of the grant).
    pub seq: u64,
    /// The tree size: the `records` of the usage summary the auditor's bundle commits.
    pub size: u64,
}

#[utoipa::path(get, path = "/v1/grants/{id}/usage/proof", tag = "evidence", params(ProofParams),
    responses((status = 200, description = "the record and its audit path to the committed usage root"),
              (status = 404, description = "no such grant, or the record is not among its first `size` usage records"),
              (status = 422, description = "the grant has fewer than `size` usage records")),
    security(("bearer" = [])))]
pub async fn usage_proof(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<ProofParams>,
) -> ApiResult<Json<charter_evidence::usage::UsageProof>> {
    let vis = Visibility::of(&caller.principal)?;
    let grant = vis.load(&state.repo, &id).await?;
    Ok(Json(
        evidence::usage_proof(&state.repo, &grant, p.seq, p.size).await?,
    ))
}
