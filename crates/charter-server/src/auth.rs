//! Who is calling the admin API. A principal presents `Authorization: Bearer <token>`; the
//! token is looked up by its SHA-256 (only hashes are stored), and must belong to an enabled
//! principal whose token has not expired. Every presented token is checked, so a correct one
//! always passes; failures are throttled per client address (`limits`): audited and answered
//! 401 within the quota, answered 429 and summarised past it.

use charter_evidence::action;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use charter_core::{Principal, Role};
use charter_store::{Kind, Versioned};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};

const TOKEN_PREFIX: &str = "chp_";

/// A fresh principal token: 256 random bits, shown once.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A fresh token for the short-lived principal an offboarding's introspection probes use
/// (principal tokens are made and hashed here, at the edge).
pub fn probe_token() -> crate::services::offboarding::ProbeToken {
    let token = new_token();
    crate::services::offboarding::ProbeToken {
        hash: token_hash(&token),
        token,
    }
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated principal behind a request.
pub struct Caller {
    pub principal: Principal,
}

impl Caller {
    pub fn id(&self) -> &str {
        self.principal.id.as_str()
    }

    pub fn is(&self, role: Role) -> bool {
        self.principal.has_role(role)
    }

    pub fn is_admin(&self) -> bool {
        self.is(Role::Admin)
    }

    /// Passes if the caller is an admin or holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if self.is_admin() || roles.iter().any(|r| self.is(*r)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this call needs another role".into()))
        }
    }

    /// Auditors and stewards read everything (and admins).
    pub fn reads_all(&self) -> bool {
        self.is_admin() || self.is(Role::Auditor) || self.is(Role::Steward)
    }
}

/// The real client address (the TCP peer, or the client a trusted proxy names).
pub fn source_ip(parts: &Parts) -> IpAddr {
    charter_gateway::forwarded::ClientAddr::of(&parts.extensions)
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let ip = source_ip(parts);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(reject(state, ip, "missing bearer token").await);
        };
        let Some(principal) = principal_by_token_hash(state, &token_hash(token)).await? else {
            return Err(reject(state, ip, "unknown token").await);
        };
        if let Some(why) = unusable(&principal, state.now()) {
            return Err(reject(state, ip, why).await);
        }
        Ok(Caller { principal })
    }
}

/// The principal whose current token has this SHA-256. The live view holds principals by
/// token hash (kept current by every write and the change feed); a miss falls back to the
/// store. A rotated token's old hash names nobody.
pub async fn principal_by_token_hash(state: &AppState, hash: &str) -> ApiResult<Option<Principal>> {
    if let Some(p) = state.repo.live.principal_by_token_hash(hash) {
        return Ok(Some(Principal::clone(&p)));
    }
    let Some(doc) = state
        .repo
        .store
        .get_by_lookup(Kind::Principal, hash)
        .await?
    else {
        return Ok(None);
    };
    state.repo.live.apply(&doc);
    Ok(Some(Versioned::<Principal>::from_doc(&doc)?.value))
}

/// Why a principal may not act now (disabled, or its token expired), if it may not.
pub fn unusable(principal: &Principal, now: jiff::Timestamp) -> Option<&'static str> {
    if principal.disabled {
        Some("principal disabled")
    } else if now >= principal.token_expires_at {
        Some("token expired")
    } else {
        None
    }
}

/// Counts a failed authentication against the address; within the quota it is audited
/// (never the token) and answered 401, past it answered 429 and summarised once a minute.
pub(crate) async fn reject(state: &AppState, ip: IpAddr, why: &str) -> ApiError {
    metrics::counter!("charter_admin_auth_failures_total").increment(1);
    let throttled = state.limits.admin_addresses.fail(&ip);
    let rec = match throttled {
        None => state.repo.record(
            "anonymous",
            action::AUTH_FAILED,
            "",
            Some(why.to_owned()),
            json!({ "source": ip.to_string() }),
        ),
        Some(wait) => {
            metrics::counter!("charter_auth_failures_throttled_total", "endpoint" => "admin")
                .increment(1);
            if !state.limits.summary_due(format!("admin:{ip}")) {
                return ApiError::RateLimited(wait);
            }
            state.repo.record(
                "anonymous",
                action::AUTH_RATE_LIMITED,
                "",
                Some("too many failed authentications".to_owned()),
                json!({ "source": ip.to_string(), "endpoint": "admin" }),
            )
        }
    };
    if let Err(e) = state
        .repo
        .write(charter_store::Unit {
            ops: vec![],
            audit: vec![rec],
        })
        .await
    {
        tracing::warn!(error = %e, "could not audit a failed authentication");
    }
    match throttled {
        Some(wait) => ApiError::RateLimited(wait),
        None => ApiError::Unauthorized("missing, unknown, expired or disabled token".into()),
    }
}
