//! Hand-built JWS helpers, so tests can forge exactly the tokens an attacker would.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use charter_auth::{AccessClaims, PublicJwk, SigningKey};
use serde_json::{Value, json};

pub const NOW: i64 = 1_800_000_000;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// `b64(header).b64(payload)` from JSON values.
pub fn signing_input(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}",
        b64(serde_json::to_vec(header).unwrap()),
        b64(serde_json::to_vec(payload).unwrap())
    )
}

/// A compact JWS with an arbitrary header, signed by `sign`.
pub fn compact(header: &Value, payload: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = signing_input(header, payload);
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// A compact JWS signed with an Ed25519 [`SigningKey`].
pub fn signed_ed(key: &SigningKey, header: &Value, payload: &Value) -> String {
    compact(header, payload, |m| key.sign(m))
}

pub fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&unb64(part)).unwrap()
}

pub fn ed_key(kid: &str) -> SigningKey {
    SigningKey::generate(kid.to_string()).unwrap()
}

pub fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://charter.example".into(),
        sub: "cli_demo".into(),
        aud: "https://api.example/orders".into(),
        client_id: "cli_demo".into(),
        scope: "orders:read orders:write".into(),
        jti: charter_auth::new_jti(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 600,
        grant: "grt_01JX0000000000000000000000".into(),
        epoch: 3,
        cnf: None,
    }
}

/// A P-256 key pair (ES256) with its public JWK derived from the uncompressed point.
pub struct P256 {
    pair: EcdsaKeyPair,
    pub x: String,
    pub y: String,
}

impl P256 {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 0x04, "uncompressed point");
        let x = b64(&point[1..33]);
        let y = b64(&point[33..65]);
        P256 { pair, x, y }
    }

    pub fn jwk_json(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y})
    }

    pub fn jwk(&self) -> PublicJwk {
        PublicJwk::parse(&self.jwk_json()).unwrap()
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        self.pair.sign(&rng, message).unwrap().as_ref().to_vec()
    }
}
