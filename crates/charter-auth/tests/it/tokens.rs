//! Access tokens: round trip, and every attack refused with its own error.

use aws_lc_rs::hmac;
use charter_auth::token::{self, ACCESS_TOKEN_TYP};
use charter_auth::{Cnf, KeySet, MAX_TOKEN_BYTES, TokenError, check_time};
use serde_json::{Value, json};

use crate::support::*;

fn setup() -> (charter_auth::SigningKey, KeySet) {
    let key = ed_key("k1");
    let keys = KeySet::new([key.public_jwk()]).unwrap();
    (key, keys)
}

fn header(kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid})
}

#[test]
fn mint_then_verify_round_trips_every_claim() {
    let (key, keys) = setup();
    let claims = claims();
    let token = token::mint(&key, &claims).unwrap();

    assert_eq!(
        decode_part(&token, 0),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"})
    );
    let payload = decode_part(&token, 1);
    assert_eq!(
        payload,
        json!({
            "iss": "https://charter.example",
            "sub": "cli_demo",
            "aud": "https://api.example/orders",
            "client_id": "cli_demo",
            "scope": "orders:read orders:write",
            "jti": claims.jti,
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 600,
            "grant": "grt_01JX0000000000000000000000",
            "epoch": 3,
        })
    );
    assert_eq!(unb64(token.split('.').nth(2).unwrap()).len(), 64);

    let verified = token::verify(&token, &keys).unwrap();
    assert_eq!(verified, claims);
    assert_eq!(check_time(&verified, NOW + 10, 5), Ok(()));
    assert_eq!(
        check_time(&verified, NOW + 700, 5),
        Err(TokenError::Expired)
    );
    assert_eq!(
        check_time(&verified, NOW - 60, 5),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn dpop_bound_token_carries_cnf() {
    let (key, keys) = setup();
    let mut claims = claims();
    claims.cnf = Some(Cnf {
        jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into(),
    });
    let token = token::mint(&key, &claims).unwrap();
    assert_eq!(
        decode_part(&token, 1)["cnf"],
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    );
    assert_eq!(token::verify(&token, &keys).unwrap(), claims);
}

#[test]
fn verifies_after_rotation_with_either_published_key() {
    let old = ed_key("k-old");
    let new = ed_key("k-new");
    let keys = KeySet::new([new.public_jwk(), old.public_jwk()]).unwrap();
    for key in [&old, &new] {
        let token = token::mint(key, &claims()).unwrap();
        assert!(token::verify(&token, &keys).is_ok());
    }
    let only_new = KeySet::new([new.public_jwk()]).unwrap();
    let token = token::mint(&old, &claims()).unwrap();
    assert_eq!(
        token::verify(&token, &only_new),
        Err(TokenError::UnknownKid)
    );
}

#[test]
fn typ_variants() {
    let (key, keys) = setup();
    let payload = serde_json::to_value(claims()).unwrap();
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let t = signed_ed(
            &key,
            &json!({"alg": "EdDSA", "typ": typ, "kid": "k1"}),
            &payload,
        );
        assert!(token::verify(&t, &keys).is_ok(), "{typ}");
    }
    for typ in [json!("JWT"), json!("dpop+jwt"), json!(""), json!(1)] {
        let t = signed_ed(
            &key,
            &json!({"alg": "EdDSA", "typ": typ, "kid": "k1"}),
            &payload,
        );
        assert_eq!(
            token::verify(&t, &keys),
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    let t = signed_ed(&key, &json!({"alg": "EdDSA", "kid": "k1"}), &payload);
    assert_eq!(token::verify(&t, &keys), Err(TokenError::WrongType));
    assert_eq!(ACCESS_TOKEN_TYP, "at+jwt");
}

#[test]
fn alg_none_is_refused() {
    let (_key, keys) = setup();
    let payload = serde_json::to_value(claims()).unwrap();
    for alg in ["none", "None", "NONE"] {
        let input = signing_input(&json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}), &payload);
        for token in [format!("{input}."), format!("{input}.c2ln")] {
            assert_eq!(
                token::verify(&token, &keys),
                Err(TokenError::UnsupportedAlgorithm),
                "{token}"
            );
        }
    }
    let input = signing_input(&json!({"typ": "at+jwt", "kid": "k1"}), &payload);
    assert_eq!(
        token::verify(&format!("{input}.c2ln"), &keys),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn hs256_keyed_with_our_public_key_is_refused() {
    let (key, keys) = setup();
    let payload = serde_json::to_value(claims()).unwrap();
    let public = key.public_key_bytes().to_vec();
    let public_jwk_json = serde_json::to_vec(&key.public_jwk()).unwrap();
    for secret in [
        public,
        key.public_jwk().x().as_bytes().to_vec(),
        public_jwk_json,
    ] {
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let token = compact(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}),
            &payload,
            |m| hmac::sign(&mac_key, m).as_ref().to_vec(),
        );
        assert_eq!(
            token::verify(&token, &keys),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn other_algorithms_on_an_eddsa_signature_are_refused() {
    let (key, keys) = setup();
    let payload = serde_json::to_value(claims()).unwrap();
    for alg in [
        "RS256", "ES256", "PS256", "HS512", "ES256K", "Ed25519", "eddsa", "",
    ] {
        let token = signed_ed(
            &key,
            &json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}),
            &payload,
        );
        assert_eq!(
            token::verify(&token, &keys),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let token = signed_ed(
        &key,
        &json!({"alg": ["EdDSA"], "typ": "at+jwt", "kid": "k1"}),
        &payload,
    );
    assert_eq!(
        token::verify(&token, &keys),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let (key, keys) = setup();
    let payload = serde_json::to_value(claims()).unwrap();
    let token = signed_ed(&key, &header("k2"), &payload);
    assert_eq!(token::verify(&token, &keys), Err(TokenError::UnknownKid));
    let token = signed_ed(&key, &json!({"alg": "EdDSA", "typ": "at+jwt"}), &payload);
    assert_eq!(token::verify(&token, &keys), Err(TokenError::MissingKid));
    let token = signed_ed(
        &key,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": 1}),
        &payload,
    );
    assert_eq!(token::verify(&token, &keys), Err(TokenError::MissingKid));
    let empty = KeySet::new([]).unwrap();
    let token = token::mint(&key, &claims()).unwrap();
    assert_eq!(token::verify(&token, &empty), Err(TokenError::UnknownKid));
}

#[test]
fn kid_of_a_p256_key_does_not_verify_access_tokens() {
    let key = ed_key("k1");
    let ec = P256::generate();
    let keys = KeySet::new([ec.jwk().with_kid("k1").unwrap()]).unwrap();
    let token = token::mint(&key, &claims()).unwrap();
    assert_eq!(token::verify(&token, &keys), Err(TokenError::UnknownKid));
}

#[test]
fn header_injection_is_refused_even_when_correctly_signed() {
    let (key, keys) = setup();
    let payload = serde_json::to_value(claims()).unwrap();
    let attacker = ed_key("k1");
    let injected: [(&str, Value); 5] = [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("jwk", serde_json::to_value(attacker.public_jwk()).unwrap()),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["b64"])),
    ];
    for (name, value) in injected {
        let mut h = header("k1");
        h[name] = value;
        let token = signed_ed(&key, &h, &payload);
        assert_eq!(
            token::verify(&token, &keys),
            Err(TokenError::ForbiddenHeader(name)),
            "{name}"
        );
    }
}

#[test]
fn tampered_payload_is_refused() {
    let (key, keys) = setup();
    let token = token::mint(&key, &claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    for (claim, value) in [
        ("scope", json!("orders:read orders:write admin")),
        ("exp", json!(NOW + 86_400)),
        ("epoch", json!(4)),
        ("sub", json!("cli_other")),
    ] {
        let mut payload = decode_part(&token, 1);
        payload[claim] = value;
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(serde_json::to_vec(&payload).unwrap()),
            parts[2]
        );
        assert_eq!(
            token::verify(&forged, &keys),
            Err(TokenError::BadSignature),
            "{claim}"
        );
    }
    // A flipped bit in the signature.
    let mut sig = unb64(parts[2]);
    sig[10] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64(sig));
    assert_eq!(token::verify(&forged, &keys), Err(TokenError::BadSignature));
    // Signature stripped.
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        token::verify(&stripped, &keys),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn same_kid_different_key_is_refused() {
    let (_key, keys) = setup();
    let impostor = ed_key("k1");
    let token = token::mint(&impostor, &claims()).unwrap();
    assert_eq!(token::verify(&token, &keys), Err(TokenError::BadSignature));
}

#[test]
fn oversized_token_is_refused() {
    let (key, keys) = setup();
    let mut claims = claims();
    claims.scope = "s ".repeat(MAX_TOKEN_BYTES);
    let token = token::mint(&key, &claims).unwrap();
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(token::verify(&token, &keys), Err(TokenError::TooLarge));
    let huge = "a".repeat(1 << 20);
    assert_eq!(token::verify(&huge, &keys), Err(TokenError::TooLarge));
}

#[test]
fn garbage_is_refused_without_panicking() {
    let (_key, keys) = setup();
    for garbage in [
        "",
        " ",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c.d",
        "a..c",
        ".b.c",
        "!!!.###.$$$",
        "eyJ.eyJ.eyJ",
        "Bearer abc.def.ghi",
        "a.b.c ",
        "e30.e30.e30=",
        "\u{0}.\u{0}.\u{0}",
        "é.é.é",
    ] {
        let result = token::verify(garbage, &keys);
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed | TokenError::HeaderNotJson)
            ),
            "{garbage:?}: {result:?}"
        );
    }
    assert_eq!(token::verify("", &keys), Err(TokenError::Malformed));
    // Valid base64url, not JSON.
    assert_eq!(
        token::verify(&format!("{}.e30.c2ln", b64("not json")), &keys),
        Err(TokenError::HeaderNotJson)
    );
    // JSON, but not an object.
    assert_eq!(
        token::verify(&format!("{}.e30.c2ln", b64("[\"EdDSA\"]")), &keys),
        Err(TokenError::HeaderNotJson)
    );
    // An empty header object has no alg.
    assert_eq!(
        token::verify("e30.e30.c2ln", &keys),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn duplicate_header_members_are_refused() {
    let (key, keys) = setup();
    let payload = b64(serde_json::to_vec(&claims()).unwrap());
    let header = b64(r#"{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#);
    let input = format!("{header}.{payload}");
    let token = format!("{input}.{}", b64(key.sign(input.as_bytes())));
    assert_eq!(token::verify(&token, &keys), Err(TokenError::HeaderNotJson));
}

#[test]
fn claims_that_are_not_access_claims_are_refused() {
    let (key, keys) = setup();
    for payload in [
        json!({"sub": "cli_demo"}),
        json!({"iss": "x", "sub": "y", "aud": ["a", "b"], "client_id": "y", "scope": "s",
               "jti": "j", "iat": 1, "nbf": 1, "exp": 2, "grant": "g", "epoch": 0}),
        json!({"iss": "x", "sub": "y", "aud": "a", "client_id": "y", "scope": "s",
               "jti": "j", "iat": 1, "nbf": 1, "exp": "2", "grant": "g", "epoch": 0}),
        json!({"iss": "x", "sub": "y", "aud": "a", "client_id": "y", "scope": "s",
               "jti": "j", "iat": 1, "nbf": 1, "exp": 2, "grant": "g", "epoch": -1}),
        json!(["not", "an", "object"]),
    ] {
        let token = signed_ed(&key, &header("k1"), &payload);
        assert_eq!(
            token::verify(&token, &keys),
            Err(TokenError::InvalidClaims),
            "{payload}"
        );
    }
    // A payload that is not JSON at all, correctly signed.
    let input = format!(
        "{}.{}",
        b64(serde_json::to_vec(&header("k1")).unwrap()),
        b64("{oops")
    );
    let token = format!("{input}.{}", b64(key.sign(input.as_bytes())));
    assert_eq!(token::verify(&token, &keys), Err(TokenError::InvalidClaims));
}

#[test]
fn time_is_the_callers_check() {
    // verify() itself accepts an expired token: exp/nbf are checked against the injected
    // clock by check_time, never by the JOSE library's system clock.
    let (key, keys) = setup();
    let mut claims = claims();
    claims.iat = 1;
    claims.nbf = 1;
    claims.exp = 2;
    let token = token::mint(&key, &claims).unwrap();
    let verified = token::verify(&token, &keys).unwrap();
    assert_eq!(check_time(&verified, NOW, 60), Err(TokenError::Expired));
}
