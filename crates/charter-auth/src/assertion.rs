//! RFC 7523 client assertions (`private_key_jwt`): a partner workload authenticates at the
//! token endpoint with a short-lived JWT signed by the key it registered.

use serde_json::Value;

use crate::jwk::PublicJwk;
use crate::jws::{self, KEY_POINTING_HEADERS, ShapeError};

/// Longest assertion looked at (bytes).
pub const MAX_ASSERTION_BYTES: usize = 8192;
/// Clock skew tolerated on `exp`, `nbf` and `iat` (seconds).
pub const ASSERTION_LEEWAY_SECS: i64 = 5;
/// How far ahead of `now` an assertion's `exp` may lie (seconds, plus the leeway): one hour,
/// which stock clients use (authlib signs `exp = iat + 3600`). It bounds how long the
/// caller's replay cache must remember a `jti` ([`AssertionClaims::accepted_until`]).
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Longest `jti` accepted (bytes).
pub const MAX_JTI_LEN: usize = 256;

/// `typ` values an assertion may carry (absent is fine too). Anything else, notably
/// `at+jwt` and `dpop+jwt`, is another kind of JWT and is refused.
const ACCEPTED_TYPS: [&str; 2] = ["jwt", "client-authentication+jwt"];

/// What the caller needs from a valid assertion to refuse its replay: remember `jti` until
/// [`AssertionClaims::accepted_until`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    pub jti: String,
    pub exp: i64,
}

impl AssertionClaims {
    /// The first second at which this assertion is refused as expired: `exp` plus the
    /// leeway. Until then it would verify again, so its `jti` must be remembered until then
    /// (remembering it only until `exp` leaves a replay window as wide as the leeway).
    pub fn accepted_until(&self) -> i64 {
        self.exp.saturating_add(ASSERTION_LEEWAY_SECS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("client assertion longer than {MAX_ASSERTION_BYTES} bytes")]
    TooLarge,
    #[error("client assertion is not three base64url parts")]
    Malformed,
    #[error("client assertion header is not a JSON object")]
    HeaderNotJson,
    #[error("client assertion alg does not match the registered key")]
    AlgorithmMismatch,
    #[error("client assertion typ is not a client-authentication JWT")]
    WrongType,
    #[error("client assertion header carries `{0}`, which is never honoured")]
    ForbiddenHeader(&'static str),
    #[error("client assertion kid does not match the registered key")]
    KidMismatch,
    #[error("the registered key is unusable")]
    UnusableKey,
    #[error("client assertion signature does not verify")]
    BadSignature,
    #[error("client assertion claims are malformed")]
    InvalidClaims,
    #[error("client assertion iss is not the client id")]
    IssuerMismatch,
    #[error("client assertion sub is not the client id")]
    SubjectMismatch,
    #[error("client assertion aud is not this server")]
    AudienceMismatch,
    #[error("client assertion has no exp")]
    MissingExp,
    #[error("client assertion expired")]
    Expired,
    #[error("client assertion exp is too far in the future")]
    ExpTooFar,
    #[error("client assertion not yet valid")]
    NotYetValid,
    #[error("client assertion issued in the future")]
    IssuedInFuture,
    #[error("client assertion has no jti")]
    MissingJti,
}

impl From<ShapeError> for AssertionError {
    fn from(e: ShapeError) -> Self {
        match e {
            ShapeError::TooLarge => AssertionError::TooLarge,
            ShapeError::Malformed => AssertionError::Malformed,
            ShapeError::HeaderNotJson => AssertionError::HeaderNotJson,
        }
    }
}

/// Verifies a client assertion against the client's registered key.
///
/// Header: `alg` must name the registered key's algorithm ([`PublicJwk::accepts_alg`]:
/// `EdDSA` or `Ed25519` for an Ed25519 key, `ES256` for a P-256 key); no
/// `jku`, `x5u`, `x5c`, `jwk` or `crit`; `typ`, if present, `JWT` or
/// `client-authentication+jwt`; `kid`, if both the header and the key have one, equal.
/// Claims: `iss` and `sub` equal to `client_id`; `aud` (string or array) containing one of
/// `accepted_audiences`; `exp` present, after `now - 5 s` and at most 1 h (+ 5 s) ahead;
/// `nbf` and `iat`, when present, not beyond `now + 5 s`; `jti` present and non-empty.
/// Replay (`jti` seen before) is the caller's check, with the returned `jti`, remembered
/// until [`AssertionClaims::accepted_until`].
pub fn verify_client_assertion(
    assertion: &str,
    client_id: &str,
    jwk: &PublicJwk,
    accepted_audiences: &[&str],
    now: i64,
) -> Result<AssertionClaims, AssertionError> {
    let compact = jws::parse_compact(assertion, MAX_ASSERTION_BYTES)?;
    if !compact
        .header_str("alg")
        .is_some_and(|alg| jwk.accepts_alg(alg))
    {
        return Err(AssertionError::AlgorithmMismatch);
    }
    match compact.header.get("typ") {
        None => {}
        Some(Value::String(typ)) if ACCEPTED_TYPS.iter().any(|t| jws::typ_is(typ, t)) => {}
        Some(_) => return Err(AssertionError::WrongType),
    }
    if let Some(name) = compact.forbidden_header(&KEY_POINTING_HEADERS) {
        return Err(AssertionError::ForbiddenHeader(name));
    }
    if let (Some(header_kid), Some(key_kid)) = (compact.header.get("kid"), jwk.kid())
        && header_kid.as_str() != Some(key_kid)
    {
        return Err(AssertionError::KidMismatch);
    }
    let key = jwk
        .decoding_key()
        .map_err(|_| AssertionError::UnusableKey)?;
    compact
        .verify_signature(&key, jwk.algorithm())
        .map_err(|()| AssertionError::BadSignature)?;

    let claims = compact
        .payload_object()
        .ok_or(AssertionError::InvalidClaims)?;
    if client_id.is_empty() || claims.get("iss").and_then(Value::as_str) != Some(client_id) {
        return Err(AssertionError::IssuerMismatch);
    }
    if claims.get("sub").and_then(Value::as_str) != Some(client_id) {
        return Err(AssertionError::SubjectMismatch);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => accepted_audiences.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| accepted_audiences.contains(&aud)),
        _ => false,
    };
    if !audience_ok {
        return Err(AssertionError::AudienceMismatch);
    }
    let exp = match claims.get("exp") {
        None => return Err(AssertionError::MissingExp),
        Some(v) => jws::numeric_date(v).ok_or(AssertionError::InvalidClaims)?,
    };
    if exp <= now.saturating_sub(ASSERTION_LEEWAY_SECS) {
        return Err(AssertionError::Expired);
    }
    if exp > now.saturating_add(MAX_ASSERTION_LIFETIME_SECS + ASSERTION_LEEWAY_SECS) {
        return Err(AssertionError::ExpTooFar);
    }
    let latest = now.saturating_add(ASSERTION_LEEWAY_SECS);
    if let Some(v) = claims.get("nbf")
        && jws::numeric_date(v).ok_or(AssertionError::InvalidClaims)? > latest
    {
        return Err(AssertionError::NotYetValid);
    }
    if let Some(v) = claims.get("iat")
        && jws::numeric_date(v).ok_or(AssertionError::InvalidClaims)? > latest
    {
        return Err(AssertionError::IssuedInFuture);
    }
    let jti = match claims.get("jti") {
        None => return Err(AssertionError::MissingJti),
        Some(Value::String(jti)) if jti.is_empty() => return Err(AssertionError::MissingJti),
        Some(Value::String(jti)) if jti.len() <= MAX_JTI_LEN => jti.clone(),
        Some(_) => return Err(AssertionError::InvalidClaims),
    };
    Ok(AssertionClaims { jti, exp })
}
