//! Access tokens (RFC 9068 JWT profile): minted with Charter's Ed25519 key, verified against
//! the [`KeySet`] with the algorithm pinned to `EdDSA`.
//!
//! [`verify`] checks the token's form, header and signature only. Time (`exp`, `nbf`), `iss`
//! and `aud` depend on the caller's injected clock and configuration: check them with
//! [`check_time`] and plain comparisons after `verify` succeeds.

use std::sync::LazyLock;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::jws::{self, KEY_POINTING_HEADERS, ShapeError};
use crate::keys::{KeySet, SigningKey};
use crate::{b64, rng};

/// Longest token [`verify`] looks at (bytes).
pub const MAX_TOKEN_BYTES: usize = 8192;

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of a Charter access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    /// The client id.
    pub sub: String,
    /// The API's audience.
    pub aud: String,
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The grant id.
    pub grant: String,
    /// The grant's epoch when the token was issued; older epochs are revoked.
    pub epoch: u64,
    /// Proof-of-possession confirmation (DPoP-bound tokens, RFC 9449 §6).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Cnf>,
}

/// `cnf` claim: the RFC 7638 thumbprint of the DPoP key the token is bound to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Cnf {
    pub jkt: String,
}

/// Why a token was refused. Each check has its own variant; none carries attacker-chosen
/// text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is not three base64url parts")]
    Malformed,
    #[error("token header is not a JSON object")]
    HeaderNotJson,
    #[error("token algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    #[error("token typ is not at+jwt")]
    WrongType,
    #[error("token header carries `{0}`, which is never honoured")]
    ForbiddenHeader(&'static str),
    #[error("token header has no kid")]
    MissingKid,
    #[error("token kid names no current signing key")]
    UnknownKid,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token claims are not Charter access-token claims")]
    InvalidClaims,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token could not be signed")]
    Signing,
}

impl From<ShapeError> for TokenError {
    fn from(e: ShapeError) -> Self {
        match e {
            ShapeError::TooLarge => TokenError::TooLarge,
            ShapeError::Malformed => TokenError::Malformed,
            ShapeError::HeaderNotJson => TokenError::HeaderNotJson,
        }
    }
}

/// Signs `claims` with `key`: header `{"alg":"EdDSA","typ":"at+jwt","kid":…}`.
pub fn mint(key: &SigningKey, claims: &AccessClaims) -> Result<String, TokenError> {
    let header = serde_json::json!({ "alg": "EdDSA", "typ": ACCESS_TOKEN_TYP, "kid": key.kid() });
    let header = serde_json::to_vec(&header).map_err(|_| TokenError::Signing)?;
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
    let mut token = b64::encode(header);
    token.push('.');
    token.push_str(&b64::encode(payload));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64::encode(signature));
    Ok(token)
}

/// jsonwebtoken's validation, reduced to the signature under `EdDSA`: its time checks read
/// the system clock, so they are off and the caller checks time with [`check_time`].
static VALIDATION: LazyLock<Validation> = LazyLock::new(|| {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.algorithms = vec![Algorithm::EdDSA];
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    v
});

/// Verifies an access token's form, header and signature and returns its claims. Does not
/// check `exp`/`nbf` (see [`check_time`]), `iss` or `aud`.
///
/// Refused, in this order: over [`MAX_TOKEN_BYTES`]; not three base64url parts; header not a
/// JSON object; `alg` other than `EdDSA` (before any key is looked at); `typ` other than
/// `at+jwt`; any of `jku`, `x5u`, `x5c`, `jwk`, `crit`; no `kid` or one not in `keys`;
/// a signature that does not verify; claims that are not [`AccessClaims`].
pub fn verify(token: &str, keys: &KeySet) -> Result<AccessClaims, TokenError> {
    let compact = jws::parse_compact(token, MAX_TOKEN_BYTES)?;
    if compact.header_str("alg") != Some("EdDSA") {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    if !compact
        .header_str("typ")
        .is_some_and(|typ| jws::typ_is(typ, ACCESS_TOKEN_TYP))
    {
        return Err(TokenError::WrongType);
    }
    if let Some(name) = compact.forbidden_header(&KEY_POINTING_HEADERS) {
        return Err(TokenError::ForbiddenHeader(name));
    }
    let kid = compact.header_str("kid").ok_or(TokenError::MissingKid)?;
    let key = keys
        .decoding_key(kid, Algorithm::EdDSA)
        .ok_or(TokenError::UnknownKid)?;
    if !jws::provider_ready() {
        return Err(TokenError::BadSignature);
    }
    match jsonwebtoken::decode::<AccessClaims>(token, key, &VALIDATION) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => TokenError::InvalidClaims,
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                TokenError::UnsupportedAlgorithm
            }
            _ => TokenError::Malformed,
        }),
    }
}

/// Checks `exp` and `nbf` against the caller's clock with `leeway` seconds of skew: refused
/// when `now >= exp + leeway` ([`TokenError::Expired`]) or `now + leeway < nbf`
/// ([`TokenError::NotYetValid`]).
pub fn check_time(claims: &AccessClaims, now: i64, leeway: i64) -> Result<(), TokenError> {
    let leeway = leeway.max(0);
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if now.saturating_add(leeway) < claims.nbf {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// A fresh token id: 128 random bits in base64url (22 characters).
pub fn new_jti() -> String {
    let bytes: [u8; 16] = rng::bytes();
    b64::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(nbf: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            client_id: "s".into(),
            scope: "x".into(),
            jti: "j".into(),
            iat: nbf,
            nbf,
            exp,
            grant: "g".into(),
            epoch: 0,
            cnf: None,
        }
    }

    #[test]
    fn time_window_edges() {
        let c = claims(100, 200);
        assert_eq!(check_time(&c, 100, 0), Ok(()));
        assert_eq!(check_time(&c, 199, 0), Ok(()));
        assert_eq!(check_time(&c, 200, 0), Err(TokenError::Expired));
        assert_eq!(check_time(&c, 204, 5), Ok(()));
        assert_eq!(check_time(&c, 205, 5), Err(TokenError::Expired));
        assert_eq!(check_time(&c, 99, 0), Err(TokenError::NotYetValid));
        assert_eq!(check_time(&c, 95, 5), Ok(()));
        assert_eq!(check_time(&c, 94, 5), Err(TokenError::NotYetValid));
        assert_eq!(check_time(&claims(0, i64::MAX), i64::MAX - 1, 10), Ok(()));
    }

    #[test]
    fn jti_is_128_bits() {
        let a = new_jti();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_jti());
    }
}
