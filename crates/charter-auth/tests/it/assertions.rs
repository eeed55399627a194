//! RFC 7523 client assertions (private_key_jwt) with Ed25519 and P-256 keys.

use charter_auth::assertion::{
    ASSERTION_LEEWAY_SECS, MAX_ASSERTION_BYTES, MAX_ASSERTION_LIFETIME_SECS,
    verify_client_assertion,
};
use charter_auth::{AssertionClaims, AssertionError, PublicJwk, SigningKey};
use serde_json::{Value, json};

use crate::support::*;

const CLIENT: &str = "cli_partner";
const ISSUER: &str = "https://charter.example";
const TOKEN_ENDPOINT: &str = "https://charter.example/oauth/token";
const AUDS: [&str; 2] = [ISSUER, TOKEN_ENDPOINT];

fn payload() -> Value {
    json!({
        "iss": CLIENT, "sub": CLIENT, "aud": TOKEN_ENDPOINT,
        "jti": "a-unique-id", "iat": NOW, "exp": NOW + 60,
    })
}

fn ed_header() -> Value {
    json!({"alg": "EdDSA", "typ": "JWT"})
}

struct Ed {
    key: SigningKey,
    jwk: PublicJwk,
}

fn ed_partner() -> Ed {
    let key = ed_key("partner-k1");
    // The partner registers only its public key.
    let jwk = PublicJwk::parse(&json!({
        "kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key_bytes())
    }))
    .unwrap();
    Ed { key, jwk }
}

fn check(p: &Ed, header: &Value, payload: &Value) -> Result<AssertionClaims, AssertionError> {
    let assertion = signed_ed(&p.key, header, payload);
    verify_client_assertion(&assertion, CLIENT, &p.jwk, &AUDS, NOW)
}

fn with(claim: &str, value: Value) -> Value {
    let mut p = payload();
    if value.is_null() {
        p.as_object_mut().unwrap().remove(claim);
    } else {
        p[claim] = value;
    }
    p
}

#[test]
fn ed25519_assertion_is_accepted() {
    let p = ed_partner();
    assert_eq!(
        check(&p, &ed_header(), &payload()),
        Ok(AssertionClaims {
            jti: "a-unique-id".into(),
            exp: NOW + 60
        })
    );
    // The issuer as audience, an audience array, no typ, a kid, no iat.
    assert!(check(&p, &ed_header(), &with("aud", json!(ISSUER))).is_ok());
    assert!(
        check(
            &p,
            &ed_header(),
            &with("aud", json!(["https://other", ISSUER]))
        )
        .is_ok()
    );
    assert!(check(&p, &json!({"alg": "EdDSA"}), &payload()).is_ok());
    assert!(check(&p, &json!({"alg": "EdDSA", "kid": "anything"}), &payload()).is_ok());
    assert!(
        check(
            &p,
            &json!({"alg": "EdDSA", "typ": "client-authentication+jwt"}),
            &payload()
        )
        .is_ok()
    );
    assert!(check(&p, &ed_header(), &with("iat", Value::Null)).is_ok());
    // exp at the edges of the window.
    assert!(check(&p, &ed_header(), &with("exp", json!(NOW - 4))).is_ok());
    assert!(check(&p, &ed_header(), &with("exp", json!(NOW + 3605))).is_ok());
}

#[test]
fn rfc9864_ed25519_alg_name_is_accepted_for_an_ed25519_key() {
    let p = ed_partner();
    for header in [
        json!({"alg": "Ed25519"}),
        json!({"alg": "Ed25519", "typ": "JWT"}),
        json!({"alg": "Ed25519", "typ": "client-authentication+jwt", "kid": "partner-k1"}),
    ] {
        assert_eq!(
            check(&p, &header, &payload()),
            Ok(AssertionClaims {
                jti: "a-unique-id".into(),
                exp: NOW + 60
            }),
            "{header}"
        );
    }
    // A key registered with `alg: Ed25519` takes both names too.
    let registered = PublicJwk::parse(&json!({
        "kty": "OKP", "crv": "Ed25519", "x": b64(p.key.public_key_bytes()), "alg": "Ed25519"
    }))
    .unwrap();
    for alg in ["Ed25519", "EdDSA"] {
        let assertion = signed_ed(&p.key, &json!({"alg": alg}), &payload());
        assert!(verify_client_assertion(&assertion, CLIENT, &registered, &AUDS, NOW).is_ok());
    }
    // The name does not lend another key's signature any weight.
    let impostor = ed_key("partner-k1");
    let forged = signed_ed(&impostor, &json!({"alg": "Ed25519"}), &payload());
    assert_eq!(
        verify_client_assertion(&forged, CLIENT, &p.jwk, &AUDS, NOW),
        Err(AssertionError::BadSignature)
    );
}

#[test]
fn ed25519_alg_name_is_refused_for_a_p256_key() {
    let ec = P256::generate();
    let jwk = ec.jwk();
    for alg in ["Ed25519", "EdDSA"] {
        let assertion = compact(&json!({"alg": alg}), &payload(), |m| ec.sign(m));
        assert_eq!(
            verify_client_assertion(&assertion, CLIENT, &jwk, &AUDS, NOW),
            Err(AssertionError::AlgorithmMismatch),
            "{alg}"
        );
    }
}

#[test]
fn replay_must_be_remembered_through_the_leeway() {
    let p = ed_partner();
    let claims = check(&p, &ed_header(), &payload()).unwrap();
    assert_eq!(claims.accepted_until(), NOW + 60 + ASSERTION_LEEWAY_SECS);
    // Still accepted one second before accepted_until, refused at it.
    let assertion = signed_ed(&p.key, &ed_header(), &payload());
    let at = |now| verify_client_assertion(&assertion, CLIENT, &p.jwk, &AUDS, now);
    assert!(at(claims.accepted_until() - 1).is_ok());
    assert_eq!(at(claims.accepted_until()), Err(AssertionError::Expired));
}

#[test]
fn p256_assertion_is_accepted() {
    let ec = P256::generate();
    let jwk = ec.jwk();
    let assertion = compact(&json!({"alg": "ES256", "typ": "JWT"}), &payload(), |m| {
        ec.sign(m)
    });
    assert_eq!(
        verify_client_assertion(&assertion, CLIENT, &jwk, &AUDS, NOW),
        Ok(AssertionClaims {
            jti: "a-unique-id".into(),
            exp: NOW + 60
        })
    );
    // EdDSA header on a P-256 key (and Ed25519: ed25519_alg_name_is_refused_for_a_p256_key),
    // and an ES256 signature by another P-256 key.
    let wrong_alg = compact(&json!({"alg": "EdDSA"}), &payload(), |m| ec.sign(m));
    assert_eq!(
        verify_client_assertion(&wrong_alg, CLIENT, &jwk, &AUDS, NOW),
        Err(AssertionError::AlgorithmMismatch)
    );
    let other = P256::generate();
    let forged = compact(&json!({"alg": "ES256"}), &payload(), |m| other.sign(m));
    assert_eq!(
        verify_client_assertion(&forged, CLIENT, &jwk, &AUDS, NOW),
        Err(AssertionError::BadSignature)
    );
}

#[test]
fn wrong_audience_is_refused() {
    let p = ed_partner();
    for aud in [
        json!("https://charter.example/other"),
        json!("https://evil.example/oauth/token"),
        json!([]),
        json!(["https://evil.example"]),
        json!(42),
        Value::Null,
    ] {
        assert_eq!(
            check(&p, &ed_header(), &with("aud", aud.clone())),
            Err(AssertionError::AudienceMismatch),
            "{aud}"
        );
    }
}

#[test]
fn issuer_and_subject_must_be_the_client() {
    let p = ed_partner();
    assert_eq!(
        check(&p, &ed_header(), &with("iss", json!("cli_other"))),
        Err(AssertionError::IssuerMismatch)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("sub", json!("cli_other"))),
        Err(AssertionError::SubjectMismatch)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("sub", Value::Null)),
        Err(AssertionError::SubjectMismatch)
    );
    // Right signature, but presented for another client id.
    let assertion = signed_ed(&p.key, &ed_header(), &payload());
    assert_eq!(
        verify_client_assertion(&assertion, "cli_other", &p.jwk, &AUDS, NOW),
        Err(AssertionError::IssuerMismatch)
    );
}

#[test]
fn lifetime_is_bounded() {
    let p = ed_partner();
    assert_eq!(
        check(&p, &ed_header(), &with("exp", json!(NOW - 5))),
        Err(AssertionError::Expired)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("exp", json!(NOW - 3600))),
        Err(AssertionError::Expired)
    );
    // At most one hour ahead (plus the leeway): authlib's stock 3600 s assertion passes.
    assert_eq!(MAX_ASSERTION_LIFETIME_SECS, 3600);
    assert!(check(&p, &ed_header(), &with("exp", json!(NOW + 3600))).is_ok());
    assert_eq!(
        check(&p, &ed_header(), &with("exp", json!(NOW + 3606))),
        Err(AssertionError::ExpTooFar)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("exp", json!(NOW + 86_400 * 365))),
        Err(AssertionError::ExpTooFar)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("exp", Value::Null)),
        Err(AssertionError::MissingExp)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("exp", json!("soon"))),
        Err(AssertionError::InvalidClaims)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("nbf", json!(NOW + 60))),
        Err(AssertionError::NotYetValid)
    );
    assert!(check(&p, &ed_header(), &with("nbf", json!(NOW + 5))).is_ok());
    assert_eq!(
        check(&p, &ed_header(), &with("iat", json!(NOW + 60))),
        Err(AssertionError::IssuedInFuture)
    );
}

#[test]
fn jti_is_required() {
    let p = ed_partner();
    assert_eq!(
        check(&p, &ed_header(), &with("jti", Value::Null)),
        Err(AssertionError::MissingJti)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("jti", json!(""))),
        Err(AssertionError::MissingJti)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("jti", json!(7))),
        Err(AssertionError::InvalidClaims)
    );
    assert_eq!(
        check(&p, &ed_header(), &with("jti", json!("j".repeat(257)))),
        Err(AssertionError::InvalidClaims)
    );
}

#[test]
fn algorithm_is_pinned_by_the_registered_key() {
    let p = ed_partner();
    for alg in [
        "ES256", "RS256", "HS256", "none", "", "ed25519", "EDDSA", "Ed448", "Ed25519 ",
    ] {
        assert_eq!(
            check(&p, &json!({"alg": alg}), &payload()),
            Err(AssertionError::AlgorithmMismatch),
            "{alg}"
        );
    }
    let input = signing_input(&json!({"alg": "none"}), &payload());
    assert_eq!(
        verify_client_assertion(&format!("{input}."), CLIENT, &p.jwk, &AUDS, NOW),
        Err(AssertionError::AlgorithmMismatch)
    );
}

#[test]
fn header_injection_and_foreign_jwt_types_are_refused() {
    let p = ed_partner();
    let attacker = ed_key("x");
    for (name, value) in [
        ("jku", json!("https://attacker.example/jwks")),
        ("x5u", json!("https://attacker.example/cert")),
        ("x5c", json!(["MIIB"])),
        ("jwk", serde_json::to_value(attacker.public_jwk()).unwrap()),
        ("crit", json!(["exp"])),
    ] {
        let mut h = ed_header();
        h[name] = value;
        assert_eq!(
            check(&p, &h, &payload()),
            Err(AssertionError::ForbiddenHeader(name))
        );
    }
    for typ in ["at+jwt", "dpop+jwt", "JWS"] {
        assert_eq!(
            check(&p, &json!({"alg": "EdDSA", "typ": typ}), &payload()),
            Err(AssertionError::WrongType)
        );
    }
}

#[test]
fn kid_must_match_a_registered_kid() {
    let p = ed_partner();
    let jwk = p.jwk.clone().with_kid("partner-k1").unwrap();
    let ok = signed_ed(
        &p.key,
        &json!({"alg": "EdDSA", "kid": "partner-k1"}),
        &payload(),
    );
    assert!(verify_client_assertion(&ok, CLIENT, &jwk, &AUDS, NOW).is_ok());
    let other = signed_ed(
        &p.key,
        &json!({"alg": "EdDSA", "kid": "partner-k2"}),
        &payload(),
    );
    assert_eq!(
        verify_client_assertion(&other, CLIENT, &jwk, &AUDS, NOW),
        Err(AssertionError::KidMismatch)
    );
}

#[test]
fn signature_and_shape_failures() {
    let p = ed_partner();
    let impostor = ed_key("partner-k1");
    let forged = signed_ed(&impostor, &ed_header(), &payload());
    assert_eq!(
        verify_client_assertion(&forged, CLIENT, &p.jwk, &AUDS, NOW),
        Err(AssertionError::BadSignature)
    );
    let big = with("pad", json!("x".repeat(MAX_ASSERTION_BYTES)));
    assert_eq!(check(&p, &ed_header(), &big), Err(AssertionError::TooLarge));
    for garbage in ["", "a.b", "a.b.c.d", "!.!.!"] {
        assert_eq!(
            verify_client_assertion(garbage, CLIENT, &p.jwk, &AUDS, NOW),
            Err(AssertionError::Malformed)
        );
    }
    assert_eq!(
        check(&p, &ed_header(), &json!(["not an object"])),
        Err(AssertionError::InvalidClaims)
    );
}
