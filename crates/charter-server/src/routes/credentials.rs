//! Credentials of a grant: stewards issue, rotate and revoke them. A client secret is shown
//! once, in the reply that creates it; only its keyed hash is kept. Revoking a credential
//! bumps its grant's epoch, so every token it obtained dies with it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_auth::jwk::PublicJwk;
use charter_core::credential::{DEFAULT_OVERLAP_SECONDS, MAX_OVERLAP_SECONDS};
use charter_core::{Credential, CredentialId, CredentialKind, Grant, GrantStatus, Role};
use charter_evidence::action;
use charter_store::{CredentialRecord, ListFilter, Op, Unit, Verifier, Versioned};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{ListReply, Page, ReasonBody};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::repo::to_value;
use crate::services::grants::Visibility;
use crate::state::{AppState, Shared};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    pub kind: CredentialKind,
    /// The partner's public JWK (Ed25519 or P-256) for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<Value>,
    /// Lower than the server's maximum age (default 90 days).
    pub max_age_days: Option<u32>,
}

/// The reply that creates or rotates a credential: the only place a secret ever appears.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCredential {
    pub id: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub kind: CredentialKind,
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: jiff::Timestamp,
}

fn new_client_id() -> String {
    let b: [u8; 16] = rand::random();
    format!("chc_{}", hex::encode(b))
}

/// A verifier for `kind`: a fresh secret (returned) and its hash, or the parsed public JWK.
fn verifier(
    state: &AppState,
    kind: CredentialKind,
    public_jwk: Option<Value>,
    version: u32,
) -> ApiResult<(Verifier, Option<String>, Option<String>)> {
    match (kind, public_jwk) {
        (CredentialKind::ClientSecret, None) => {
            let secret = charter_auth::secret::generate_client_secret();
            let hash = state.keys.secrets.hash(secret.expose());
            Ok((
                Verifier {
                    version,
                    secret_hash: Some(hash),
                    public_jwk: None,
                },
                Some(secret.expose().clone()),
                None,
            ))
        }
        (CredentialKind::ClientSecret, Some(_)) => Err(ApiError::Invalid(
            "a client_secret credential takes no public_jwk".into(),
        )),
        (CredentialKind::PrivateKeyJwt, Some(jwk)) => {
            let parsed = PublicJwk::parse(&jwk)
                .map_err(|e| ApiError::Invalid(format!("public_jwk: {e}")))?;
            let thumbprint = parsed.thumbprint();
            let text =
                serde_json::to_string(&parsed).map_err(|e| ApiError::Unexpected(e.into()))?;
            Ok((
                Verifier {
                    version,
                    secret_hash: None,
                    public_jwk: Some(text),
                },
                None,
                Some(thumbprint),
            ))
        }
        (CredentialKind::PrivateKeyJwt, None) => Err(ApiError::Invalid(
            "a private_key_jwt credential needs public_jwk".into(),
        )),
    }
}

#[utoipa::path(post, path = "/v1/grants/{id}/credentials", tag = "credentials", request_body = NewCredential,
    responses((status = 201, body = IssuedCredential), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn issue(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<NewCredential>,
) -> ApiResult<(StatusCode, Json<IssuedCredential>)> {
    caller.require(&[Role::Steward])?;
    let grant = state.repo.load::<Grant>(&id, "grant").await?.value;
    if grant.status != GrantStatus::Active {
        return Err(ApiError::Conflict(format!(
            "credentials are issued for active grants; this one is {}",
            grant.status.as_str()
        )));
    }
    let max_age = match req.max_age_days {
        None => state.settings.credential_max_age_days,
        Some(d) if (1..=state.settings.credential_max_age_days).contains(&d) => d,
        Some(_) => {
            return Err(ApiError::Invalid(format!(
                "max_age_days must be between 1 and {}",
                state.settings.credential_max_age_days
            )));
        }
    };
    let (verifier, secret, thumbprint) = verifier(&state, req.kind, req.public_jwk, 1)?;
    let (ms, rnd) = state.repo.id_seed();
    let credential = Credential::new(
        CredentialId::generate(ms, rnd),
        &grant,
        new_client_id(),
        req.kind,
        max_age,
        thumbprint,
        state.now(),
    )?;
    let record = CredentialRecord {
        credential: credential.clone(),
        verifiers: vec![verifier],
    };
    let rec = state.repo.record(
        caller.id(),
        action::CREDENTIAL_ISSUE,
        credential.id.as_str(),
        None,
        json!({ "after": to_value(&credential), "grant": grant.id, "partner": grant.partner }),
    );
    state
        .repo
        .write(Unit {
            ops: vec![Op::Insert(Versioned::new_doc(&record, None))],
            audit: vec![rec],
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedCredential {
            id: credential.id.to_string(),
            client_id: credential.client_id,
            client_secret: secret,
            kind: credential.kind,
            version: 1,
            expires_at: credential.expires_at,
        }),
    ))
}

async fn load_visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Versioned<CredentialRecord>> {
    let vis = Visibility::of(caller)?;
    let rec = state
        .repo
        .load::<CredentialRecord>(id, "credential")
        .await?;
    let grant = state
        .repo
        .load::<Grant>(rec.value.credential.grant.as_str(), "credential")
        .await?
        .value;
    if !vis.sees(&state.repo, &grant).await? {
        return Err(ApiError::not_found("credential"));
    }
    Ok(rec)
}

#[utoipa::path(get, path = "/v1/grants/{id}/credentials", tag = "credentials", params(Page),
    responses((status = 200, body = ListReply<Credential>), (status = 404)), security(("bearer" = [])))]
pub async fn list_for_grant(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> ApiResult<Json<ListReply<Credential>>> {
    let vis = Visibility::of(&caller)?;
    let grant = state.repo.load::<Grant>(&id, "grant").await?.value;
    if !vis.sees(&state.repo, &grant).await? {
        return Err(ApiError::not_found("grant"));
    }
    let filter = ListFilter {
        parent: Some(grant.id.to_string()),
        status: None,
    };
    let reply = super::list_page::<CredentialRecord>(&state, filter, page, |_| true).await?;
    Ok(Json(ListReply {
        items: reply.items.into_iter().map(|r| r.credential).collect(),
        next: reply.next,
    }))
}

#[utoipa::path(get, path = "/v1/credentials/{id}", tag = "credentials",
    responses((status = 200, body = Credential), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Credential>> {
    Ok(Json(
        load_visible(&state, &caller, &id).await?.value.credential,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    /// The new public JWK (`private_key_jwt`).
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<Value>,
    /// How long the current version keeps working (default 86400; 0 ends it now).
    pub overlap_seconds: Option<u32>,
}

#[utoipa::path(post, path = "/v1/credentials/{id}/rotate", tag = "credentials", request_body = RotateCredential,
    responses((status = 200, body = IssuedCredential), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<IssuedCredential>> {
    caller.require(&[Role::Steward])?;
    let req: RotateCredential = if body.iter().all(u8::is_ascii_whitespace) {
        RotateCredential::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let overlap = req.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECONDS);
    if overlap > MAX_OVERLAP_SECONDS {
        return Err(ApiError::Invalid(format!(
            "overlap_seconds is at most {MAX_OVERLAP_SECONDS}"
        )));
    }
    let old = state
        .repo
        .load::<CredentialRecord>(&id, "credential")
        .await?;
    let mut record = old.value.clone();
    let next_version = record
        .credential
        .versions
        .iter()
        .map(|v| v.version)
        .max()
        .unwrap_or(0)
        + 1;
    let (verifier, secret, thumbprint) =
        verifier(&state, record.credential.kind, req.public_jwk, next_version)?;
    let version = record.credential.rotate(overlap, thumbprint, state.now())?;
    let live: Vec<u32> = record
        .credential
        .versions
        .iter()
        .map(|v| v.version)
        .collect();
    record.verifiers.retain(|v| live.contains(&v.version));
    record.verifiers.push(Verifier {
        version,
        ..verifier
    });
    let rec = state.repo.record(
        caller.id(),
        action::CREDENTIAL_ROTATE,
        &id,
        None,
        json!({ "after": to_value(&record.credential), "version": version, "overlap_seconds": overlap,
                "grant": record.credential.grant, "partner": record.credential.partner }),
    );
    state
        .repo
        .write(Unit {
            ops: vec![Op::Update(old.next_doc(&record))],
            audit: vec![rec],
        })
        .await?;
    Ok(Json(IssuedCredential {
        id: record.credential.id.to_string(),
        client_id: record.credential.client_id.clone(),
        client_secret: secret,
        kind: record.credential.kind,
        version,
        expires_at: record.credential.expires_at,
    }))
}

#[utoipa::path(post, path = "/v1/credentials/{id}/revoke", tag = "credentials", request_body = ReasonBody,
    responses((status = 200, body = Credential), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ReasonBody>,
) -> ApiResult<Json<Credential>> {
    caller.require(&[Role::Steward])?;
    let old = state
        .repo
        .load::<CredentialRecord>(&id, "credential")
        .await?;
    let mut record = old.value.clone();
    let now = state.now();
    record.credential.revoke(body.reason.clone(), now)?;
    let mut ops = vec![Op::Update(old.next_doc(&record))];
    // Tokens obtained with the credential die with it: bump the grant's epoch.
    let grant = state
        .repo
        .load::<Grant>(record.credential.grant.as_str(), "grant")
        .await?;
    let mut epoch = None;
    if !grant.value.status.is_final() {
        let mut g = grant.value.clone();
        g.epoch += 1;
        epoch = Some(g.epoch);
        ops.push(Op::Update(grant.next_doc(&g)));
    }
    let rec = state.repo.record(
        caller.id(),
        action::CREDENTIAL_REVOKE,
        &id,
        Some(body.reason.to_string()),
        json!({ "after": to_value(&record.credential), "grant": record.credential.grant,
                "partner": record.credential.partner, "grant_epoch": epoch }),
    );
    state
        .repo
        .write(Unit {
            ops,
            audit: vec![rec],
        })
        .await?;
    Ok(Json(record.credential))
}
