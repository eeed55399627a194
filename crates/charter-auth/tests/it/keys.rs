//! Signing keys sealed at rest, master keys, key sets.

use charter_auth::token;
use charter_auth::{KeyError, KeySet, MasterKey, SealedKey, SigningKey};
use serde_json::json;

use crate::support::*;

#[test]
fn seal_unseal_round_trip() {
    let master = MasterKey::generate();
    let key = ed_key("2026-11-k1");
    let sealed = key.seal(&master).unwrap();
    assert_eq!(sealed.kid, "2026-11-k1");
    assert_eq!(unb64(&sealed.nonce).len(), 12);
    assert_eq!(unb64(&sealed.public_x), key.public_key_bytes());

    // Stored as JSON, read back.
    let stored = serde_json::to_string(&sealed).unwrap();
    let loaded: SealedKey = serde_json::from_str(&stored).unwrap();
    let unsealed = SigningKey::unseal(&loaded, &master).unwrap();
    assert_eq!(unsealed.kid(), key.kid());
    assert_eq!(unsealed.public_jwk(), key.public_jwk());
    assert_eq!(loaded.public_jwk().unwrap(), key.public_jwk());

    // The unsealed key signs tokens the original's public key verifies.
    let keys = KeySet::new([key.public_jwk()]).unwrap();
    let token = token::mint(&unsealed, &claims()).unwrap();
    assert!(token::verify(&token, &keys).is_ok());
}

#[test]
fn each_seal_uses_a_fresh_nonce() {
    let master = MasterKey::generate();
    let key = ed_key("k1");
    let a = key.seal(&master).unwrap();
    let b = key.seal(&master).unwrap();
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn wrong_master_key_fails() {
    let key = ed_key("k1");
    let sealed = key.seal(&MasterKey::generate()).unwrap();
    assert_eq!(
        SigningKey::unseal(&sealed, &MasterKey::generate()).err(),
        Some(KeyError::Unseal)
    );
}

#[test]
fn tampering_fails() {
    let master = MasterKey::generate();
    let key = ed_key("k1");
    let sealed = key.seal(&master).unwrap();

    let mut ct = unb64(&sealed.ciphertext);
    for i in [0, ct.len() / 2, ct.len() - 1] {
        ct[i] ^= 0x01;
        let tampered = SealedKey {
            ciphertext: b64(&ct),
            ..sealed.clone()
        };
        assert_eq!(
            SigningKey::unseal(&tampered, &master).err(),
            Some(KeyError::Unseal),
            "byte {i}"
        );
        ct[i] ^= 0x01;
    }
    let truncated = SealedKey {
        ciphertext: b64(&ct[..ct.len() - 1]),
        ..sealed.clone()
    };
    assert_eq!(
        SigningKey::unseal(&truncated, &master).err(),
        Some(KeyError::Unseal)
    );
    let empty = SealedKey {
        ciphertext: String::new(),
        ..sealed.clone()
    };
    assert_eq!(
        SigningKey::unseal(&empty, &master).err(),
        Some(KeyError::Unseal)
    );

    // The kid is bound as associated data: relabelling a key fails.
    let relabelled = SealedKey {
        kid: "k2".into(),
        ..sealed.clone()
    };
    assert_eq!(
        SigningKey::unseal(&relabelled, &master).err(),
        Some(KeyError::Unseal)
    );

    let mut nonce = unb64(&sealed.nonce);
    nonce[0] ^= 0x80;
    let renonced = SealedKey {
        nonce: b64(&nonce),
        ..sealed.clone()
    };
    assert_eq!(
        SigningKey::unseal(&renonced, &master).err(),
        Some(KeyError::Unseal)
    );

    // A swapped public half (so the JWKS would publish another key) is detected.
    let other = ed_key("k1");
    let swapped = SealedKey {
        public_x: b64(other.public_key_bytes()),
        ..sealed.clone()
    };
    assert_eq!(
        SigningKey::unseal(&swapped, &master).err(),
        Some(KeyError::Unseal)
    );

    for malformed in [
        SealedKey {
            nonce: "!!".into(),
            ..sealed.clone()
        },
        SealedKey {
            nonce: b64([0u8; 8]),
            ..sealed.clone()
        },
        SealedKey {
            ciphertext: "not base64!".into(),
            ..sealed.clone()
        },
        SealedKey {
            public_x: b64([0u8; 31]),
            ..sealed.clone()
        },
        SealedKey {
            kid: String::new(),
            ..sealed.clone()
        },
    ] {
        assert_eq!(
            SigningKey::unseal(&malformed, &master).err(),
            Some(KeyError::MalformedSealedKey)
        );
    }
}

#[test]
fn master_key_encoding_and_derivation() {
    let master = MasterKey::from_bytes([42; 32]);
    let text = master.to_base64();
    assert_eq!(format!("{text}"), "[redacted]");
    assert_eq!(text.expose().len(), 43);
    let again = MasterKey::from_base64(text.expose()).unwrap();
    assert_eq!(
        again.derive("client-secret-hmac"),
        master.derive("client-secret-hmac")
    );
    assert_ne!(master.derive("client-secret-hmac"), master.derive("other"));
    assert_ne!(
        MasterKey::from_bytes([43; 32]).derive("x"),
        master.derive("x")
    );
    for bad in ["", "abc", "!!!!", &b64([0u8; 31]), &b64([0u8; 33])] {
        assert_eq!(
            MasterKey::from_base64(bad).err(),
            Some(KeyError::InvalidMasterKey),
            "{bad}"
        );
    }
    assert!(!format!("{master:?}").contains("42"));
}

#[test]
fn signing_key_identity_and_debug() {
    assert_eq!(
        SigningKey::generate(String::new()).err(),
        Some(KeyError::InvalidKid)
    );
    assert_eq!(
        SigningKey::generate("a/b".into()).err(),
        Some(KeyError::InvalidKid)
    );
    let key = ed_key("k1");
    let jwk = serde_json::to_value(key.public_jwk()).unwrap();
    assert_eq!(
        jwk,
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key_bytes()),
               "kid": "k1", "alg": "EdDSA", "use": "sig"})
    );
    let debug = format!("{key:?}");
    assert!(debug.contains("k1") && debug.contains(&b64(key.public_key_bytes())));
    let random = SigningKey::generate_with_random_kid().unwrap();
    assert!(random.kid().starts_with("k_"));
    assert_ne!(
        random.kid(),
        SigningKey::generate_with_random_kid().unwrap().kid()
    );
}

#[test]
fn key_set_lookup_and_jwks() {
    let a = ed_key("a");
    let b = ed_key("b");
    let keys = KeySet::new([a.public_jwk(), b.public_jwk()]).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(!keys.is_empty());
    assert_eq!(keys.get("a"), Some(&a.public_jwk()));
    assert_eq!(keys.get("c"), None);
    let jwks = keys.jwks();
    assert_eq!(
        jwks,
        json!({"keys": [
            serde_json::to_value(a.public_jwk()).unwrap(),
            serde_json::to_value(b.public_jwk()).unwrap(),
        ]})
    );
    // A JWKS document parses back into the same key set.
    let parsed: Vec<charter_auth::PublicJwk> =
        serde_json::from_value(jwks["keys"].clone()).unwrap();
    let again = KeySet::new(parsed).unwrap();
    assert_eq!(again.jwks(), keys.jwks());

    assert_eq!(
        KeySet::new([a.public_jwk(), a.public_jwk()]).err(),
        Some(KeyError::DuplicateKid)
    );
    let no_kid = charter_auth::PublicJwk::parse(&json!({
        "kty": "OKP", "crv": "Ed25519", "x": b64(a.public_key_bytes())
    }))
    .unwrap();
    assert_eq!(KeySet::new([no_kid]).err(), Some(KeyError::MissingKid));
}
