//! Object identifiers: a type prefix and 26 Crockford base-32 characters (48 bits of
//! milliseconds, then 80 random bits), so ids sort by creation time and a list cursor is
//! simply the last id seen. The caller supplies time and randomness.
//!
//! Serde here is the stored document format (and audit `after`), not the API; the API's types
//! are in charter-server's `wire` module.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

/// Encodes 128 bits (timestamp ms in the top 48, random in the low 80) as 26 characters.
fn encode(millis: u64, random: [u8; 10]) -> String {
    let mut value: u128 = u128::from(millis & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = [0u8; BODY_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

fn valid_body(body: &str) -> bool {
    body.len() == BODY_LEN
        && body.bytes().all(|b| ALPHABET.contains(&b))
        // 26 chars carry 130 bits; the first may only hold the top 3 bits of 128.
        && body.as_bytes()[0] <= b'7'
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id from the creation time (Unix milliseconds) and 80 random bits.
            pub fn generate(millis: u64, random: [u8; 10]) -> Self {
                Self(format!("{}{}", $prefix, encode(millis, random)))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                match s.strip_prefix($prefix) {
                    Some(body) if valid_body(body) => Ok(Self(s.to_owned())),
                    _ => Err(IdError { kind: $kind }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(/// A principal: a person or service that calls the admin API.
    PrincipalId, "prn_", "principal");
id_type!(/// A published API.
    ApiId, "api_", "api");
id_type!(/// A partner organisation.
    PartnerId, "prt_", "partner");
id_type!(/// A grant: one partner's access path to one API.
    GrantId, "grt_", "grant");
id_type!(/// A credential of a grant.
    CredentialId, "crd_", "credential");
id_type!(/// An offboarding of a partner.
    OffboardingId, "off_", "offboarding");
id_type!(/// A recertification review (campaign).
    ReviewId, "rev_", "review");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = GrantId::generate(1_000, [0xff; 10]);
        let b = GrantId::generate(1_001, [0; 10]);
        assert!(a < b);
        assert_eq!(GrantId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 4 + 26);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "grt_",
            "prt_0000000000000000000000000a",
            "grt_0000000000000000000000000",
            "grt_000000000000000000000000001",
            "grt_8zzzzzzzzzzzzzzzzzzzzzzzzz",
            "grt_0000000000000000000000000u",
        ] {
            assert!(GrantId::parse(bad).is_err(), "{bad}");
        }
    }
}
