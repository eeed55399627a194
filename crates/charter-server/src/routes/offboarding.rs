//! `POST /v1/partners/{id}/offboard`: revoke everything the partner holds, then verify that
//! removal holds everywhere it must — with what Charter can hold itself (it keeps no bearer
//! tokens or secrets): a canary token per grant minted at the grant's last epoch before
//! revocation, the token endpoint's own client authentication, introspection, and every
//! registered gateway's check endpoint.

use charter_evidence::action;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use charter_auth::token::{AccessClaims, mint, new_jti};
use charter_core::offboarding::{Canary, Check, Offboarding};
use charter_core::{Api, Grant, OffboardingId, Partner, Role, Scope};
use charter_gateway::registry::GatewayRecord;
use charter_store::{CredentialRecord, ListFilter, Op, Unit, Versioned};
use serde_json::json;

use super::ReasonBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body as JsonBody;
use crate::oauth::ClientAuth;
use crate::repo::to_value;
use crate::state::Shared;

/// A gateway that has not sent a heartbeat for this long is no longer running.
const GATEWAY_ALIVE_SECONDS: i64 = 60;
const CANARY_TTL_SECONDS: i64 = 300;

/// A concrete request path for the first operation a grant's scopes reach.
fn probe_target(api: &Api, grant: &Grant) -> Option<(String, String)> {
    let op = api
        .operations
        .iter()
        .find(|op| grant.scopes.contains(&op.scope))?;
    let path: Vec<&str> = op
        .path
        .as_str()
        .split('/')
        .map(|seg| if seg.starts_with('{') { "canary" } else { seg })
        .collect();
    let method = op.method.as_str().to_owned();
    Some((method, format!("/{}{}", api.name, path.join("/"))))
}

struct Minted {
    canary: Canary,
    token: String,
    probe: Option<(String, String)>,
}

#[utoipa::path(post, path = "/v1/partners/{id}/offboard", tag = "partners", request_body = ReasonBody,
    responses((status = 200, body = Offboarding), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn offboard(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ReasonBody>,
) -> ApiResult<Json<Offboarding>> {
    caller.require(&[Role::Steward])?;
    let started_at = state.now();
    let (ms, rnd) = state.repo.id_seed();
    let off_id = OffboardingId::generate(ms, rnd);
    let reason = req.reason;
    let old = state.repo.load::<Partner>(&id, "partner").await?;
    let mut partner = old.value.clone();
    partner.start_offboarding()?;
    partner.updated_at = started_at;
    let note = Some(json!({ "offboarding": off_id }));
    state
        .repo
        .update(
            &old,
            &partner,
            caller.id(),
            action::PARTNER_OFFBOARD_START,
            Some(reason.to_string()),
            note.clone(),
        )
        .await?;

    // Canaries first, at each live grant's current epoch.
    let grants: Vec<Versioned<Grant>> = state
        .repo
        .list_all(ListFilter {
            parent: Some(id.clone()),
            status: None,
        })
        .await?;
    let keys = state.keys.current()?;
    let now_s = started_at.as_second();
    let mut minted = Vec::new();
    for g in grants.iter().filter(|g| !g.value.status.is_final()) {
        let Some(api) = state.repo.live.api(g.value.api.as_str()) else {
            continue;
        };
        let jti = new_jti();
        let claims = AccessClaims {
            iss: state.settings.issuer.clone(),
            sub: format!("canary:{}", g.value.id),
            aud: api.audience.to_string(),
            client_id: "charter-offboarding-canary".into(),
            scope: g
                .value
                .scopes
                .iter()
                .map(Scope::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            jti: jti.clone(),
            iat: now_s,
            nbf: now_s,
            exp: now_s + CANARY_TTL_SECONDS,
            grant: g.value.id.to_string(),
            epoch: g.value.epoch,
            cnf: None,
        };
        let token = mint(&keys.signing, &claims)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("minting a canary: {e}")))?;
        minted.push(Minted {
            canary: Canary {
                grant: g.value.id.to_string(),
                jti,
            },
            token,
            probe: probe_target(&api, &g.value),
        });
    }

    // Revoke every grant and credential.
    let mut revoked_grants = Vec::new();
    for g in &grants {
        let mut grant = g.value.clone();
        if grant.revoke(reason.clone(), state.now()).is_ok() {
            state
                .repo
                .update(
                    g,
                    &grant,
                    caller.id(),
                    action::GRANT_REVOKE,
                    Some(reason.to_string()),
                    note.clone(),
                )
                .await?;
            revoked_grants.push(grant.id.to_string());
        }
    }
    let mut credentials: Vec<Versioned<CredentialRecord>> = Vec::new();
    for g in &grants {
        credentials.extend(
            state
                .repo
                .list_all::<CredentialRecord>(ListFilter {
                    parent: Some(g.value.id.to_string()),
                    status: None,
                })
                .await?,
        );
    }
    let mut revoked_credentials = Vec::new();
    for c in &credentials {
        let mut rec = c.value.clone();
        if rec.credential.revoke(reason.clone(), state.now()).is_ok() {
            let r = state.repo.record(
                caller.id(),
                action::CREDENTIAL_REVOKE,
                rec.credential.id.as_str(),
                Some(reason.to_string()),
                json!({ "after": to_value(&rec.credential), "offboarding": off_id, "grant": rec.credential.grant }),
            );
            state
                .repo
                .write(Unit {
                    ops: vec![Op::Update(c.next_doc(&rec))],
                    audit: vec![r],
                })
                .await?;
            revoked_credentials.push(rec.credential.id.to_string());
        }
    }

    // Verify.
    let mut checks = Vec::new();
    let token_endpoint = format!("{}{}", state.settings.issuer, crate::oauth::TOKEN_PATH);
    for c in &credentials {
        let client_id = c.value.credential.client_id.clone();
        let probe = ClientAuth::Secret {
            client_id: client_id.clone(),
            secret: "offboarding-probe".into(),
            basic: false,
        };
        let (passed, detail) = match crate::oauth::authenticate(&state, &probe, &token_endpoint) {
            Err("credential_revoked") => (
                true,
                "refused as revoked before any secret was compared".to_owned(),
            ),
            Err(other) => (false, format!("refused, but as {other}, not as revoked")),
            Ok(_) => (false, "the client authenticated".to_owned()),
        };
        checks.push(Check {
            name: "token_endpoint_refuses".into(),
            target: client_id,
            passed,
            at: state.now(),
            detail,
        });
    }
    for m in &minted {
        let (passed, detail) = match crate::oauth::check_raw_token(&state, &m.token) {
            Err(reason) => (true, format!("inactive: {reason}")),
            Ok(_) => (false, "introspection says active".to_owned()),
        };
        checks.push(Check {
            name: "introspection_inactive".into(),
            target: m.canary.jti.clone(),
            passed,
            at: state.now(),
            detail,
        });
    }
    let gateways: Vec<Versioned<GatewayRecord>> =
        state.repo.list_all(ListFilter::default()).await?;
    let alive: Vec<&GatewayRecord> = gateways
        .iter()
        .map(|g| &g.value)
        .filter(|g| state.now().as_second() - g.heartbeat_at.as_second() <= GATEWAY_ALIVE_SECONDS)
        .collect();
    let client = charter_gateway::proxy::Upstream::new().map_err(ApiError::Unexpected)?;
    for gw in &alive {
        for m in &minted {
            let Some((method, uri)) = &m.probe else {
                continue;
            };
            let (passed, detail) = probe_gateway(&client, gw, method, uri, &m.token).await;
            checks.push(Check {
                name: "gateway_denies".into(),
                target: format!("{} {}", gw.id, m.canary.jti),
                passed,
                at: state.now(),
                detail,
            });
        }
    }

    let status = Offboarding::verdict(&checks);
    let finished_at = state.now();
    let record = Offboarding {
        id: off_id.clone(),
        partner: partner.id.clone(),
        status,
        requested_by: caller.principal.id.clone(),
        reason: reason.clone(),
        revoked_grants,
        revoked_credentials,
        canaries: minted.iter().map(|m| m.canary.clone()).collect(),
        checks,
        started_at,
        finished_at,
    };
    let mut ops = vec![Op::Insert(Versioned::new_doc(&record, None))];
    if status == charter_core::offboarding::OffboardingStatus::Completed {
        let current = state.repo.load::<Partner>(&id, "partner").await?;
        let mut done = current.value.clone();
        done.finish_offboarding()?;
        done.updated_at = finished_at;
        ops.push(Op::Update(current.next_doc(&done)));
    }
    let r = state.repo.record(
        caller.id(),
        action::PARTNER_OFFBOARD,
        partner.id.as_str(),
        Some(reason.to_string()),
        to_value(&record),
    );
    state
        .repo
        .write(Unit {
            ops,
            audit: vec![r],
        })
        .await?;
    Ok(Json(record))
}

async fn probe_gateway(
    client: &charter_gateway::proxy::Upstream,
    gw: &GatewayRecord,
    method: &str,
    uri: &str,
    token: &str,
) -> (bool, String) {
    let req = axum::http::Request::builder()
        .method("GET")
        .uri(&gw.check_url)
        .header("x-original-method", method)
        .header("x-original-uri", uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty());
    let Ok(req) = req else {
        return (false, format!("bad check URL {}", gw.check_url));
    };
    match client.send(req, Duration::from_secs(5)).await {
        Ok(resp) => {
            let status = resp.status();
            let reason = resp
                .headers()
                .get("x-charter-reason")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let denied = status.as_u16() == 401 || status.as_u16() == 403;
            (denied, format!("{} {reason}", status.as_u16()))
        }
        Err((_, why)) => (false, format!("gateway unreachable: {why}")),
    }
}
