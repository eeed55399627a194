//! Public JSON Web Keys (RFC 7517) of the two kinds Charter accepts from outside: Ed25519
//! (`kty: "OKP"`, RFC 8037) and P-256 (`kty: "EC"`). Private, symmetric and RSA keys are
//! refused, as are unknown curves, wrong lengths, points off the curve and small-order
//! Ed25519 points. RFC 7638 thumbprints.
//!
//! JOSE algorithm names: an Ed25519 key signs under `EdDSA` (RFC 8037) or its RFC 9864
//! fully-specified name `Ed25519` — the same algorithm, so both are accepted from clients —
//! and a P-256 key under `ES256`. [`CLIENT_SIGNING_ALGS`] is the list the token service
//! advertises; which name applies is always decided by the key, never by a header.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::b64;

/// Longest `kid` accepted on a JWK.
pub const MAX_KID_LEN: usize = 256;

/// Every JOSE `alg` a client's signature (client assertion, DPoP proof) may carry, in the
/// order the OAuth metadata lists them. Each is usable only with its own key type
/// ([`PublicJwk::accepts_alg`]).
pub const CLIENT_SIGNING_ALGS: [&str; 3] = ["EdDSA", "Ed25519", "ES256"];

/// `alg` names of an Ed25519 key: `EdDSA` (RFC 8037; what Charter itself emits) and
/// `Ed25519` (RFC 9864).
const ED25519_ALGS: &[&str] = &["EdDSA", "Ed25519"];
/// `alg` names of a P-256 key.
const P256_ALGS: &[&str] = &["ES256"];

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("a JWK must be a JSON object")]
    NotObject,
    #[error("the JWK carries private key material (`{0}`); register only the public key")]
    PrivateKey(&'static str),
    #[error("symmetric (`oct`) keys are not accepted")]
    Symmetric,
    #[error("unsupported key type (only OKP/Ed25519 and EC/P-256 are accepted)")]
    UnsupportedKeyType,
    #[error("unsupported curve (only Ed25519 and P-256 are accepted)")]
    UnsupportedCurve,
    #[error("missing JWK member `{0}`")]
    Missing(&'static str),
    #[error("JWK member `{0}` is malformed")]
    Invalid(&'static str),
    #[error("JWK member `{0}` has the wrong length")]
    WrongLength(&'static str),
    #[error("the public key is not a valid point on its curve")]
    InvalidPoint,
    #[error("the Ed25519 public key is a small-order point and would accept forged signatures")]
    WeakKey,
    #[error("the JWK's `alg` does not match its key type")]
    AlgorithmMismatch,
    #[error("the JWK's `use` must be `sig`")]
    WrongUse,
}

/// A public signing key. Only constructed through validation ([`PublicJwk::parse`], serde
/// deserialization, or a Charter-generated key), so every value is a usable public key.
///
/// Serializes with members `kty, crv, x, [y], [kid], [alg], [use]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(try_from = "Value")]
pub struct PublicJwk {
    kty: String,
    crv: String,
    x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    key_use: Option<String>,
}

impl PublicJwk {
    /// Validates a JWK received from outside (a partner's registered key, a DPoP header).
    pub fn parse(value: &Value) -> Result<Self, JwkError> {
        let obj = value.as_object().ok_or(JwkError::NotObject)?;
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(JwkError::PrivateKey(member));
        }
        let kty = required_str(obj, "kty")?;
        let crv = match kty {
            "OKP" | "EC" => required_str(obj, "crv")?,
            "oct" => return Err(JwkError::Symmetric),
            _ => return Err(JwkError::UnsupportedKeyType),
        };
        let x = required_str(obj, "x")?;
        let y = optional_str(obj, "y")?;
        let expected_algs = match (kty, crv) {
            ("OKP", "Ed25519") => {
                if y.is_some() {
                    return Err(JwkError::Invalid("y"));
                }
                let public = b64::decode_array::<32>(x).ok_or(JwkError::WrongLength("x"))?;
                check_ed25519_point(&public)?;
                ED25519_ALGS
            }
            ("EC", "P-256") => {
                let y = y.ok_or(JwkError::Missing("y"))?;
                let xb = b64::decode_array::<32>(x).ok_or(JwkError::WrongLength("x"))?;
                let yb = b64::decode_array::<32>(y).ok_or(JwkError::WrongLength("y"))?;
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, uncompressed_point(&xb, &yb))
                    .map_err(|_| JwkError::InvalidPoint)?;
                P256_ALGS
            }
            _ => return Err(JwkError::UnsupportedCurve),
        };
        let kid = optional_str(obj, "kid")?;
        if kid.is_some_and(|k| {
            k.is_empty() || k.len() > MAX_KID_LEN || k.chars().any(char::is_control)
        }) {
            return Err(JwkError::Invalid("kid"));
        }
        let alg = optional_str(obj, "alg")?;
        if alg.is_some_and(|a| !expected_algs.contains(&a)) {
            return Err(JwkError::AlgorithmMismatch);
        }
        let key_use = optional_str(obj, "use")?;
        if key_use.is_some_and(|u| u != "sig") {
            return Err(JwkError::WrongUse);
        }
        Ok(PublicJwk {
            kty: kty.to_owned(),
            crv: crv.to_owned(),
            x: x.to_owned(),
            y: y.map(str::to_owned),
            kid: kid.map(str::to_owned),
            alg: alg.map(str::to_owned),
            key_use: key_use.map(str::to_owned),
        })
    }

    /// The JWK of one of Charter's own Ed25519 signing keys (`alg: EdDSA`, `use: sig`).
    pub(crate) fn own_ed25519(public_key: &[u8], kid: &str) -> Self {
        PublicJwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: b64::encode(public_key),
            y: None,
            kid: Some(kid.to_owned()),
            alg: Some("EdDSA".to_owned()),
            key_use: Some("sig".to_owned()),
        }
    }

    /// The same key with `kid` set (validated like a parsed `kid`).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Result<Self, JwkError> {
        let kid = kid.into();
        if kid.is_empty() || kid.len() > MAX_KID_LEN || kid.chars().any(char::is_control) {
            return Err(JwkError::Invalid("kid"));
        }
        self.kid = Some(kid);
        Ok(self)
    }

    /// `"OKP"` or `"EC"`.
    pub fn kty(&self) -> &str {
        &self.kty
    }

    /// `"Ed25519"` or `"P-256"`.
    pub fn crv(&self) -> &str {
        &self.crv
    }

    pub fn x(&self) -> &str {
        &self.x
    }

    pub fn y(&self) -> Option<&str> {
        self.y.as_deref()
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The only algorithm this key verifies: `EdDSA` for Ed25519, `ES256` for P-256. It is
    /// pinned by the key type and never taken from a token header.
    pub fn algorithm(&self) -> Algorithm {
        if self.y.is_some() {
            Algorithm::ES256
        } else {
            Algorithm::EdDSA
        }
    }

    /// The JOSE name of [`Self::algorithm`] that Charter uses for it: `EdDSA` or `ES256`.
    pub fn algorithm_name(&self) -> &'static str {
        match self.algorithm() {
            Algorithm::ES256 => "ES256",
            _ => "EdDSA",
        }
    }

    /// Every JOSE `alg` name this key's signatures may be presented under: `EdDSA` and
    /// `Ed25519` (RFC 9864) for an Ed25519 key, `ES256` for a P-256 key.
    pub fn algorithm_names(&self) -> &'static [&'static str] {
        if self.y.is_some() {
            P256_ALGS
        } else {
            ED25519_ALGS
        }
    }

    /// Whether a header's `alg` names this key's algorithm ([`Self::algorithm_names`]).
    /// Anything else — another key type's name, `none`, HMAC, RSA — is `false`.
    pub fn accepts_alg(&self, alg: &str) -> bool {
        self.algorithm_names().contains(&alg)
    }

    /// RFC 7638 thumbprint: base64url(SHA-256) of the required members in lexicographic
    /// order without whitespace (`crv, kty, x` for OKP; `crv, kty, x, y` for EC).
    ///
    /// The member values are fixed names and base64url text, so no JSON escaping applies.
    pub fn thumbprint(&self) -> String {
        let canonical = match &self.y {
            Some(y) => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
                self.crv, self.kty, self.x, y
            ),
            None => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
                self.crv, self.kty, self.x
            ),
        };
        b64::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// The key in the form jsonwebtoken's aws-lc-rs backend verifies with: the raw 32-byte
    /// Ed25519 key, or the uncompressed P-256 point.
    pub(crate) fn decoding_key(&self) -> Result<DecodingKey, JwkError> {
        let x = b64::decode_array::<32>(&self.x).ok_or(JwkError::WrongLength("x"))?;
        match &self.y {
            None => Ok(DecodingKey::from_ed_der(&x)),
            Some(y) => {
                let y = b64::decode_array::<32>(y).ok_or(JwkError::WrongLength("y"))?;
                Ok(DecodingKey::from_ec_der(&uncompressed_point(&x, &y)))
            }
        }
    }
}

impl TryFrom<Value> for PublicJwk {
    type Error = JwkError;

    fn try_from(value: Value) -> Result<Self, JwkError> {
        PublicJwk::parse(&value)
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, JwkError> {
    optional_str(obj, name)?.ok_or(JwkError::Missing(name))
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwkError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwkError::Invalid(name)),
    }
}

fn uncompressed_point(x: &[u8; 32], y: &[u8; 32]) -> [u8; 65] {
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..33].copy_from_slice(x);
    point[33..].copy_from_slice(y);
    point
}

/// The y-coordinates (little-endian, sign bit clear) of the eight points of small order on
/// edwards25519: 1 (the identity), p-1 (order 2), 0 (order 4) and the two order-8 values.
/// Computed from the curve equation and checked by multiplying each point by 8. A public key
/// with one of these y-coordinates lets anyone forge signatures (aws-lc does not refuse
/// them), so they are refused here.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    },
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    {
        // p - 1 = 2^255 - 20
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        p_minus_1
    },
];

fn check_ed25519_point(public: &[u8; 32]) -> Result<(), JwkError> {
    let mut y = *public;
    y[31] &= 0x7f;
    // Non-canonical encodings (y >= p = 2^255 - 19) are refused (RFC 8032 §5.1.3).
    let y_at_least_p = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed;
    if y_at_least_p {
        return Err(JwkError::InvalidPoint);
    }
    if SMALL_ORDER_Y.contains(&y) {
        return Err(JwkError::WeakKey);
    }
    ParsedPublicKey::new(&ED25519, public).map_err(|_| JwkError::InvalidPoint)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // RFC 8037 Appendix A.2 public key.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn small_order_points_are_refused() {
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut key = y;
                key[31] |= sign;
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(key)});
                assert!(PublicJwk::parse(&jwk).is_err(), "{key:?} accepted");
            }
        }
    }

    #[test]
    fn non_canonical_y_is_refused() {
        let mut p_plus_1 = [0xffu8; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(p_plus_1)});
        assert_eq!(PublicJwk::parse(&jwk), Err(JwkError::InvalidPoint));
    }

    #[test]
    fn serde_round_trip_goes_through_validation() {
        let jwk =
            json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "k1", "use": "sig"});
        let parsed: PublicJwk = serde_json::from_value(jwk.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), jwk);
        let private = json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X,
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"});
        assert!(serde_json::from_value::<PublicJwk>(private).is_err());
    }
}
