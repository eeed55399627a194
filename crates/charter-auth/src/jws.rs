//! Compact JWS plumbing shared by access tokens, client assertions and DPoP proofs: size and
//! shape checks, a strict JSON object parser (duplicate members refused), header helpers and
//! signature verification through jsonwebtoken's aws-lc-rs backend.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::b64;

/// Header members that name or carry a key other than the one we chose. Never honoured.
pub(crate) const KEY_POINTING_HEADERS: [&str; 5] = ["jku", "x5u", "x5c", "jwk", "crit"];

/// Why a compact serialization could not even be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShapeError {
    TooLarge,
    Malformed,
    HeaderNotJson,
}

/// A compact JWS split into its parts, with the header decoded. Nothing is verified yet.
pub(crate) struct Compact<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) payload_b64: &'a str,
    pub(crate) signature_b64: &'a str,
    pub(crate) header: Map<String, Value>,
}

pub(crate) fn parse_compact(token: &str, max_bytes: usize) -> Result<Compact<'_>, ShapeError> {
    if token.len() > max_bytes {
        return Err(ShapeError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ShapeError::Malformed);
    };
    // An empty signature is let through (it never verifies) so that `alg: none` tokens are
    // refused for their algorithm, which is the more telling reason.
    if header_b64.is_empty()
        || payload_b64.is_empty()
        || ![header_b64, payload_b64, signature_b64]
            .iter()
            .all(|part| b64::is_alphabet(part))
    {
        return Err(ShapeError::Malformed);
    }
    let header_bytes = b64::decode(header_b64).ok_or(ShapeError::Malformed)?;
    let header = parse_object(&header_bytes).ok_or(ShapeError::HeaderNotJson)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(Compact {
        signing_input,
        payload_b64,
        signature_b64,
        header,
    })
}

impl Compact<'_> {
    /// A header member that must be a string; `None` when absent or of another type.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// The first member of `forbidden` present in the header.
    pub(crate) fn forbidden_header(&self, forbidden: &[&'static str]) -> Option<&'static str> {
        forbidden
            .iter()
            .copied()
            .find(|name| self.header.contains_key(*name))
    }

    /// Verifies the signature with `key` under `alg` (both chosen by the caller, never by the
    /// header). `Err(())` when the signature is not base64url or does not verify.
    pub(crate) fn verify_signature(&self, key: &DecodingKey, alg: Algorithm) -> Result<(), ()> {
        if !provider_ready() {
            return Err(());
        }
        match jsonwebtoken::crypto::verify(
            self.signature_b64,
            self.signing_input.as_bytes(),
            key,
            alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(()),
        }
    }

    /// The payload as a JSON object (strict: duplicate members refused).
    pub(crate) fn payload_object(&self) -> Option<Map<String, Value>> {
        parse_object(&b64::decode(self.payload_b64)?)
    }
}

/// True when jsonwebtoken has its aws-lc-rs backend. Without exactly one backend feature it
/// would panic at first use; checking first makes a misbuilt binary refuse every token
/// instead (fail closed).
pub(crate) fn provider_ready() -> bool {
    jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some()
}

/// Case-insensitive media-type comparison of a `typ` header against `expected` (a short
/// name such as `at+jwt`); the `application/` prefix is optional (RFC 7515 §4.1.9).
pub(crate) fn typ_is(typ: &str, expected: &str) -> bool {
    let typ = match (typ.get(..12), typ.get(12..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("application/") => rest,
        _ => typ,
    };
    typ.eq_ignore_ascii_case(expected)
}

/// A JSON NumericDate as whole seconds: integers, or finite non-integers rounded down
/// (RFC 7519 §2 allows fractions). `None` for anything else.
pub(crate) fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    if f.is_finite() && f.abs() < 1e15 {
        // Bounded above, so the cast cannot saturate.
        Some(f.floor() as i64)
    } else {
        None
    }
}

/// Parses a JSON object, refusing duplicate member names (which different parsers resolve
/// differently) and trailing data.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<StrictObject>(bytes)
        .ok()
        .map(|o| o.0)
}

struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object without duplicate members")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut out = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if out.contains_key(&name) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    out.insert(name, value);
                }
                Ok(StrictObject(out))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonwebtoken_has_its_aws_lc_backend() {
        assert!(provider_ready());
    }

    #[test]
    fn strict_object_refuses_duplicates_and_non_objects() {
        assert!(parse_object(br#"{"a":1,"b":2}"#).is_some());
        assert!(parse_object(br#"{"a":1,"a":2}"#).is_none());
        assert!(parse_object(b"[1]").is_none());
        assert!(parse_object(br#"{"a":1} x"#).is_none());
        assert!(parse_object(b"").is_none());
    }

    #[test]
    fn typ_comparison() {
        assert!(typ_is("at+jwt", "at+jwt"));
        assert!(typ_is("AT+JWT", "at+jwt"));
        assert!(typ_is("application/at+jwt", "at+jwt"));
        assert!(typ_is("Application/At+Jwt", "at+jwt"));
        assert!(!typ_is("JWT", "at+jwt"));
        assert!(!typ_is("application/", "at+jwt"));
        assert!(!typ_is("x-application/at+jwt", "at+jwt"));
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(numeric_date(&serde_json::json!(10)), Some(10));
        assert_eq!(numeric_date(&serde_json::json!(10.9)), Some(10));
        assert_eq!(numeric_date(&serde_json::json!("10")), None);
        assert_eq!(numeric_date(&serde_json::json!(1e300)), None);
    }

    #[test]
    fn compact_shape() {
        assert_eq!(parse_compact("", 100).err(), Some(ShapeError::Malformed));
        assert_eq!(parse_compact("a.b", 100).err(), Some(ShapeError::Malformed));
        assert_eq!(
            parse_compact("a.b.c.d", 100).err(),
            Some(ShapeError::Malformed)
        );
        assert_eq!(parse_compact("a.b.c", 3).err(), Some(ShapeError::TooLarge));
        assert_eq!(
            parse_compact("e30.b.c=", 100).err(),
            Some(ShapeError::Malformed)
        );
        // "bm90IGpzb24" is base64url for "not json".
        assert_eq!(
            parse_compact("bm90IGpzb24.b.c", 100).err(),
            Some(ShapeError::HeaderNotJson)
        );
        assert_eq!(
            parse_compact(".YQ.c2ln", 100).err(),
            Some(ShapeError::Malformed)
        );
        assert_eq!(
            parse_compact("e30..c2ln", 100).err(),
            Some(ShapeError::Malformed)
        );
        assert!(parse_compact("e30.YQ.", 100).is_ok());
        let c = parse_compact("e30.YQ.c2ln", 100).ok();
        assert!(c.is_some_and(|c| c.signing_input == "e30.YQ" && c.header.is_empty()));
    }
}
