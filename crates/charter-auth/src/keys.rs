//! Key material: the [`MasterKey`] that protects everything at rest, Charter's Ed25519
//! [`SigningKey`]s, their sealed (encrypted) form [`SealedKey`], and the [`KeySet`] of public
//! keys tokens are verified against (the JWKS).

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

use crate::jwk::{JwkError, PublicJwk};
use crate::secret::Secret;
use crate::{b64, rng};

/// Longest key id Charter assigns to its own keys.
pub const MAX_SIGNING_KID_LEN: usize = 128;

/// Purpose string under which the key that seals signing keys is derived.
const SEAL_PURPOSE: &str = "charter-auth/signing-key-seal/v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 bytes in base64")]
    InvalidMasterKey,
    #[error("a key id must be 1 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    InvalidKid,
    #[error("key generation failed")]
    Generation,
    #[error("sealing the signing key failed")]
    Seal,
    /// Wrong master key, tampered ciphertext, nonce or kid, or a public key that does not
    /// match the private key. Deliberately one variant: the cause is not revealed.
    #[error("the sealed signing key could not be opened (wrong master key or tampered)")]
    Unseal,
    #[error("the sealed signing key is malformed")]
    MalformedSealedKey,
    #[error("every key in a key set needs a kid")]
    MissingKid,
    #[error("duplicate kid in key set")]
    DuplicateKid,
    #[error(transparent)]
    Jwk(#[from] JwkError),
}

/// The root secret that protects keys and secrets at rest (32 bytes). Other keys are
/// derived from it per purpose ([`MasterKey::derive`]). Never printed.
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn generate() -> Self {
        MasterKey(rng::bytes())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    /// Parses base64url (no padding, as [`MasterKey::to_base64`] writes it) or standard
    /// base64; surrounding whitespace is ignored. Must decode to exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| KeyError::InvalidMasterKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidMasterKey)?;
        Ok(MasterKey(bytes))
    }

    /// base64url without padding.
    pub fn to_base64(&self) -> Secret<String> {
        Secret::new(b64::encode(self.0))
    }

    /// A 32-byte key for one purpose: HMAC-SHA-256(master, purpose). Distinct purposes give
    /// independent keys (e.g. `"client-secret-hmac"` for [`crate::SecretHasher`]).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let tag = hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn sealing_key(&self) -> Result<LessSafeKey, KeyError> {
        let mut raw = self.derive(SEAL_PURPOSE);
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| KeyError::Seal);
        wipe(&mut raw);
        Ok(LessSafeKey::new(key?))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Best-effort overwrite of secret bytes (without `unsafe`, the compiler may still keep
/// copies elsewhere).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// One of Charter's Ed25519 signing keys (for access tokens, evidence bundles…), with the
/// key id it is published under. Stored only sealed ([`SigningKey::seal`]).
pub struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// A fresh Ed25519 key pair. `kid`: 1–128 characters of `A-Z a-z 0-9 - . _ ~`.
    pub fn generate(kid: String) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
        Ok(SigningKey { kid, pair })
    }

    /// A fresh key with a random kid (`k_` + 16 random bytes in base64url).
    pub fn generate_with_random_kid() -> Result<Self, KeyError> {
        let id: [u8; 16] = rng::bytes();
        Self::generate(format!("k_{}", b64::encode(id)))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key_bytes(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// `{kty: OKP, crv: Ed25519, x, kid, alg: EdDSA, use: sig}`.
    pub fn public_jwk(&self) -> PublicJwk {
        PublicJwk::own_ed25519(self.public_key_bytes(), &self.kid)
    }

    /// A raw Ed25519 signature over `message` (64 bytes). Building block for JWS; callers
    /// that mint access tokens use [`crate::token::mint`].
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// Encrypts the private key for storage: AES-256-GCM (key derived from `master`) over
    /// the PKCS#8 document, a random 96-bit nonce, the kid as associated data.
    pub fn seal(&self, master: &MasterKey) -> Result<SealedKey, KeyError> {
        let key = master.sealing_key()?;
        let document = self.pair.to_pkcs8().map_err(|_| KeyError::Seal)?;
        let mut buffer = document.as_ref().to_vec();
        let nonce_bytes: [u8; NONCE_LEN] = rng::bytes();
        let sealed = key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(self.kid.as_bytes()),
            &mut buffer,
        );
        if sealed.is_err() {
            wipe(&mut buffer);
            return Err(KeyError::Seal);
        }
        Ok(SealedKey {
            kid: self.kid.clone(),
            nonce: b64::encode(nonce_bytes),
            ciphertext: b64::encode(&buffer),
            public_x: b64::encode(self.public_key_bytes()),
        })
    }

    /// Decrypts a sealed key. A wrong master key, a changed kid, nonce or ciphertext, or a
    /// `public_x` that does not belong to the private key all give [`KeyError::Unseal`].
    pub fn unseal(sealed: &SealedKey, master: &MasterKey) -> Result<Self, KeyError> {
        check_kid(&sealed.kid).map_err(|_| KeyError::MalformedSealedKey)?;
        let nonce_bytes =
            b64::decode_array::<NONCE_LEN>(&sealed.nonce).ok_or(KeyError::MalformedSealedKey)?;
        let public_x =
            b64::decode_array::<32>(&sealed.public_x).ok_or(KeyError::MalformedSealedKey)?;
        let mut buffer = b64::decode(&sealed.ciphertext).ok_or(KeyError::MalformedSealedKey)?;
        let key = master.sealing_key()?;
        let result = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(sealed.kid.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| KeyError::Unseal)
            .and_then(|plain| Ed25519KeyPair::from_pkcs8(plain).map_err(|_| KeyError::Unseal));
        wipe(&mut buffer);
        let pair = result?;
        if pair.public_key().as_ref() != public_x {
            return Err(KeyError::Unseal);
        }
        Ok(SigningKey {
            kid: sealed.kid.clone(),
            pair,
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("public_x", &b64::encode(self.public_key_bytes()))
            .finish_non_exhaustive()
    }
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_SIGNING_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid)
    }
}

/// A signing key as stored: encrypted, with its public half in the clear (so the JWKS can be
/// served without the master key).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SealedKey {
    pub kid: String,
    /// base64url of the 96-bit AES-GCM nonce.
    pub nonce: String,
    /// base64url of the encrypted PKCS#8 document followed by the GCM tag.
    pub ciphertext: String,
    /// base64url of the 32-byte Ed25519 public key.
    pub public_x: String,
}

impl SealedKey {
    /// The public JWK, read from `public_x` without the master key (validated like any JWK).
    pub fn public_jwk(&self) -> Result<PublicJwk, KeyError> {
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": self.public_x,
            "kid": self.kid, "alg": "EdDSA", "use": "sig",
        });
        Ok(PublicJwk::parse(&jwk)?)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    kid: String,
    jwk: PublicJwk,
    key: DecodingKey,
}

/// The public keys tokens are verified against, by kid (the JWKS). Small by nature (the
/// current key and those rotated out but still verifying), so lookups are a linear scan.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    entries: Vec<Entry>,
}

impl KeySet {
    /// Every key needs a `kid`, and kids must be distinct. Order is kept (publish the
    /// current key first).
    pub fn new(keys: impl IntoIterator<Item = PublicJwk>) -> Result<Self, KeyError> {
        let mut entries: Vec<Entry> = Vec::new();
        for jwk in keys {
            let kid = jwk.kid().ok_or(KeyError::MissingKid)?.to_owned();
            if entries.iter().any(|e| e.kid == kid) {
                return Err(KeyError::DuplicateKid);
            }
            let key = jwk.decoding_key()?;
            entries.push(Entry { kid, jwk, key });
        }
        Ok(KeySet { entries })
    }

    pub fn get(&self, kid: &str) -> Option<&PublicJwk> {
        self.entry(kid).map(|e| &e.jwk)
    }

    /// The verification key for `kid` if it verifies `alg`.
    pub(crate) fn decoding_key(&self, kid: &str, alg: Algorithm) -> Option<&DecodingKey> {
        self.entry(kid)
            .filter(|e| e.jwk.algorithm() == alg)
            .map(|e| &e.key)
    }

    fn entry(&self, kid: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kid == kid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PublicJwk> {
        self.entries.iter().map(|e| &e.jwk)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `{"keys": [...]}` as served at `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.entries.iter().map(|e| &e.jwk).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_rules() {
        assert!(check_kid("k1").is_ok());
        assert!(check_kid("2026-11.a_b~c").is_ok());
        assert!(check_kid("").is_err());
        assert!(check_kid("a b").is_err());
        assert!(check_kid("ä").is_err());
        assert!(check_kid(&"a".repeat(129)).is_err());
    }

    #[test]
    fn derive_is_purpose_separated() {
        let master = MasterKey::from_bytes([7; 32]);
        assert_ne!(master.derive("a"), master.derive("b"));
        assert_eq!(master.derive("a"), master.derive("a"));
        assert_eq!(format!("{master:?}"), "MasterKey([redacted])");
    }

    #[test]
    fn master_key_base64_round_trip() {
        let master = MasterKey::generate();
        let text = master.to_base64();
        let again = MasterKey::from_base64(text.expose()).unwrap();
        assert_eq!(master.0, again.0);
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ").err(),
            Some(KeyError::InvalidMasterKey)
        );
        let padded = STANDARD.encode([9u8; 32]);
        assert_eq!(
            MasterKey::from_base64(&format!("{padded}\n")).unwrap().0,
            [9u8; 32]
        );
    }
}
