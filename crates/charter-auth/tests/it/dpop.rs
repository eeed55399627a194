//! RFC 9449 DPoP proofs.

use charter_auth::dpop::access_token_hash;
use charter_auth::{DpopError, DpopProof, JwkError, PublicJwk, SigningKey, verify_proof};
use serde_json::{Value, json};

use crate::support::*;

const HTU: &str = "https://charter.example/oauth/token";
const MAX_AGE: i64 = 60;

fn client() -> SigningKey {
    ed_key("dpop")
}

fn jwk_json(key: &SigningKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key_bytes())})
}

fn header(key: &SigningKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk_json(key)})
}

fn claims() -> Value {
    json!({"jti": "proof-1", "htm": "POST", "htu": HTU, "iat": NOW})
}

fn with(mut v: Value, member: &str, value: Value) -> Value {
    if value.is_null() {
        v.as_object_mut().unwrap().remove(member);
    } else {
        v[member] = value;
    }
    v
}

fn verify(proof: &str) -> Result<DpopProof, DpopError> {
    verify_proof(proof, "POST", HTU, NOW, MAX_AGE, None)
}

#[test]
fn valid_proof_returns_the_key_thumbprint() {
    let key = client();
    let proof = signed_ed(&key, &header(&key), &claims());
    let verified = verify(&proof).unwrap();
    let expected = PublicJwk::parse(&jwk_json(&key)).unwrap().thumbprint();
    assert_eq!(
        verified,
        DpopProof {
            jkt: expected.clone(),
            jti: "proof-1".into(),
            iat: NOW
        }
    );
    // The thumbprint ignores optional members (kid, alg, use).
    assert_eq!(key.public_jwk().thumbprint(), expected);
    let with_extras = json!({"typ": "dpop+jwt", "alg": "EdDSA",
        "jwk": serde_json::to_value(key.public_jwk()).unwrap()});
    let proof = signed_ed(&key, &with_extras, &claims());
    assert_eq!(verify(&proof).unwrap().jkt, expected);
}

#[test]
fn p256_proof_is_accepted() {
    let ec = P256::generate();
    let h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": ec.jwk_json()});
    let proof = compact(&h, &claims(), |m| ec.sign(m));
    assert_eq!(verify(&proof).unwrap().jkt, ec.jwk().thumbprint());
    // An EdDSA header over a P-256 jwk.
    let h = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": ec.jwk_json()});
    let proof = compact(&h, &claims(), |m| ec.sign(m));
    assert_eq!(verify(&proof), Err(DpopError::AlgorithmMismatch));
}

#[test]
fn rfc9864_ed25519_alg_name_is_accepted_with_an_ed25519_jwk() {
    let key = client();
    let h = with(header(&key), "alg", json!("Ed25519"));
    let proof = signed_ed(&key, &h, &claims());
    let expected = PublicJwk::parse(&jwk_json(&key)).unwrap().thumbprint();
    assert_eq!(verify(&proof).unwrap().jkt, expected);
    // Same key, either name: the same thumbprint, so a token bound under one name is used
    // with proofs under the other.
    let eddsa = signed_ed(
        &key,
        &header(&key),
        &with(claims(), "jti", json!("proof-2")),
    );
    assert_eq!(verify(&eddsa).unwrap().jkt, expected);
    // A jwk that says `alg: Ed25519` (RFC 9864) is fine under either header name.
    let mut jwk = jwk_json(&key);
    jwk["alg"] = json!("Ed25519");
    for alg in ["Ed25519", "EdDSA"] {
        let h = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        assert_eq!(
            verify(&signed_ed(&key, &h, &claims())).unwrap().jkt,
            expected
        );
    }
    // With the access-token binding at a resource.
    let token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln";
    let bound = with(claims(), "ath", json!(access_token_hash(token)));
    let proof = signed_ed(&key, &h, &bound);
    assert!(verify_proof(&proof, "POST", HTU, NOW, MAX_AGE, Some(token)).is_ok());
    // Another key's signature under the new name still fails.
    let attacker = client();
    let forged = signed_ed(&attacker, &h, &claims());
    assert_eq!(verify(&forged), Err(DpopError::BadSignature));
}

#[test]
fn ed25519_alg_name_with_a_p256_jwk_is_refused() {
    let ec = P256::generate();
    for alg in ["Ed25519", "EdDSA"] {
        let h = json!({"typ": "dpop+jwt", "alg": alg, "jwk": ec.jwk_json()});
        let proof = compact(&h, &claims(), |m| ec.sign(m));
        assert_eq!(verify(&proof), Err(DpopError::AlgorithmMismatch), "{alg}");
    }
    // And ES256 over an Ed25519 jwk, whichever Ed25519 name the jwk carries.
    let key = client();
    let mut jwk = jwk_json(&key);
    jwk["alg"] = json!("Ed25519");
    let h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    assert_eq!(
        verify(&signed_ed(&key, &h, &claims())),
        Err(DpopError::AlgorithmMismatch)
    );
}

#[test]
fn method_must_match_exactly() {
    let key = client();
    for htm in [json!("GET"), json!("post"), json!(""), Value::Null] {
        let proof = signed_ed(&key, &header(&key), &with(claims(), "htm", htm.clone()));
        assert_eq!(verify(&proof), Err(DpopError::MethodMismatch), "{htm}");
    }
}

#[test]
fn uri_must_match_after_normalisation() {
    let key = client();
    for same in [
        "https://charter.example/oauth/token",
        "HTTPS://Charter.Example:443/oauth/token",
        "https://charter.example/oauth/token?x=1#frag",
        "https://charter.example/oauth/./token",
        "https://charter.example/%6Fauth/token",
    ] {
        let proof = signed_ed(&key, &header(&key), &with(claims(), "htu", json!(same)));
        assert!(verify(&proof).is_ok(), "{same}");
    }
    for different in [
        json!("https://charter.example/oauth/introspect"),
        json!("http://charter.example/oauth/token"),
        json!("https://charter.example:8443/oauth/token"),
        json!("https://evil.example/oauth/token"),
        json!("https://charter.example/OAUTH/token"),
        json!("/oauth/token"),
        json!(""),
        json!(1),
        Value::Null,
    ] {
        let proof = signed_ed(
            &key,
            &header(&key),
            &with(claims(), "htu", different.clone()),
        );
        assert_eq!(verify(&proof), Err(DpopError::UriMismatch), "{different}");
    }
}

#[test]
fn iat_window() {
    let key = client();
    let at = |iat: i64| signed_ed(&key, &header(&key), &with(claims(), "iat", json!(iat)));
    assert!(verify(&at(NOW - MAX_AGE)).is_ok());
    assert!(verify(&at(NOW + 5)).is_ok());
    assert_eq!(verify(&at(NOW - MAX_AGE - 1)), Err(DpopError::IatTooOld));
    assert_eq!(verify(&at(NOW - 86_400)), Err(DpopError::IatTooOld));
    assert_eq!(verify(&at(NOW + 6)), Err(DpopError::IatInFuture));
    assert_eq!(verify(&at(NOW + 3600)), Err(DpopError::IatInFuture));
    let none = signed_ed(&key, &header(&key), &with(claims(), "iat", Value::Null));
    assert_eq!(verify(&none), Err(DpopError::MissingIat));
}

#[test]
fn jti_is_required() {
    let key = client();
    for (jti, err) in [
        (Value::Null, DpopError::MissingJti),
        (json!(""), DpopError::MissingJti),
        (json!(1), DpopError::InvalidClaims),
    ] {
        let proof = signed_ed(&key, &header(&key), &with(claims(), "jti", jti));
        assert_eq!(verify(&proof), Err(err));
    }
}

#[test]
fn embedded_private_or_symmetric_keys_are_refused() {
    let key = client();
    let mut private = jwk_json(&key);
    private["d"] = json!(b64([7u8; 32]));
    let h = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": private});
    let proof = signed_ed(&key, &h, &claims());
    assert_eq!(
        verify(&proof),
        Err(DpopError::InvalidJwk(JwkError::PrivateKey("d")))
    );

    let h = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "oct", "k": b64([1u8; 32])}});
    let proof = signed_ed(&key, &h, &claims());
    assert_eq!(
        verify(&proof),
        Err(DpopError::InvalidJwk(JwkError::PrivateKey("k")))
    );

    let h = json!({"typ": "dpop+jwt", "alg": "EdDSA"});
    assert_eq!(
        verify(&signed_ed(&key, &h, &claims())),
        Err(DpopError::MissingJwk)
    );
}

#[test]
fn access_token_hash_binding() {
    let key = client();
    let token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln";
    let bound = with(claims(), "ath", json!(access_token_hash(token)));
    let proof = signed_ed(&key, &header(&key), &bound);
    assert!(verify_proof(&proof, "POST", HTU, NOW, MAX_AGE, Some(token)).is_ok());
    assert_eq!(
        verify_proof(
            &proof,
            "POST",
            HTU,
            NOW,
            MAX_AGE,
            Some("another.access.token")
        ),
        Err(DpopError::AthMismatch)
    );
    let unbound = signed_ed(&key, &header(&key), &claims());
    assert_eq!(
        verify_proof(&unbound, "POST", HTU, NOW, MAX_AGE, Some(token)),
        Err(DpopError::MissingAth)
    );
    // At the token endpoint (no access token yet) the ath is not required.
    assert!(verify(&unbound).is_ok());
}

#[test]
fn header_rules() {
    let key = client();
    for typ in [json!("JWT"), json!("at+jwt"), Value::Null] {
        let h = with(header(&key), "typ", typ.clone());
        assert_eq!(
            verify(&signed_ed(&key, &h, &claims())),
            Err(DpopError::WrongType),
            "{typ}"
        );
    }
    let h = with(header(&key), "typ", json!("application/DPoP+JWT"));
    assert!(verify(&signed_ed(&key, &h, &claims())).is_ok());
    for alg in [
        "none", "HS256", "RS256", "ES384", "", "ed25519", "EDDSA", "Ed448", " Ed25519",
    ] {
        let h = with(header(&key), "alg", json!(alg));
        assert_eq!(
            verify(&signed_ed(&key, &h, &claims())),
            Err(DpopError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let h = with(header(&key), "alg", json!("ES256"));
    assert_eq!(
        verify(&signed_ed(&key, &h, &claims())),
        Err(DpopError::AlgorithmMismatch)
    );
    for name in ["jku", "x5u", "x5c", "crit"] {
        let h = with(header(&key), name, json!(["https://attacker.example"]));
        assert_eq!(
            verify(&signed_ed(&key, &h, &claims())),
            Err(DpopError::ForbiddenHeader(name))
        );
    }
}

#[test]
fn proof_signed_by_another_key_is_refused() {
    let key = client();
    let attacker = client();
    // The attacker embeds the victim's public key but signs with its own.
    let proof = signed_ed(&attacker, &header(&key), &claims());
    assert_eq!(verify(&proof), Err(DpopError::BadSignature));
    let mut parts: Vec<String> = signed_ed(&key, &header(&key), &claims())
        .split('.')
        .map(str::to_string)
        .collect();
    parts[1] = b64(serde_json::to_vec(&with(claims(), "htm", json!("POST "))).unwrap());
    assert_eq!(verify(&parts.join(".")), Err(DpopError::BadSignature));
}

#[test]
fn shape_failures() {
    for garbage in ["", "a", "a.b.c.d", "ä.b.c"] {
        assert_eq!(verify(garbage), Err(DpopError::Malformed));
    }
    assert_eq!(verify(&"a".repeat(9000)), Err(DpopError::TooLarge));
    assert_eq!(
        verify(&format!("{}.e30.e30", b64("nope"))),
        Err(DpopError::HeaderNotJson)
    );
}
