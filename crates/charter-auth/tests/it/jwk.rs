//! Public JWKs and RFC 7638 thumbprints.

use aws_lc_rs::digest;
use charter_auth::{Algorithm, JwkError, PublicJwk};
use serde_json::json;

use crate::support::*;

/// RFC 8037 Appendix A.2 public key.
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

#[test]
fn rfc8037_thumbprint_vector() {
    // RFC 8037 Appendix A.3.
    let jwk = PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})).unwrap();
    assert_eq!(
        jwk.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    assert_eq!(jwk.algorithm(), Algorithm::EdDSA);
    // Optional members do not change the thumbprint.
    let decorated = PublicJwk::parse(
        &json!({"x": RFC8037_X, "use": "sig", "kty": "OKP", "alg": "EdDSA", "kid": "a", "crv": "Ed25519"}),
    )
    .unwrap();
    assert_eq!(decorated.thumbprint(), jwk.thumbprint());
}

#[test]
fn p256_thumbprint_is_over_the_canonical_members() {
    let ec = P256::generate();
    let jwk = ec.jwk();
    assert_eq!(jwk.algorithm(), Algorithm::ES256);
    assert_eq!((jwk.kty(), jwk.crv()), ("EC", "P-256"));
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        ec.x, ec.y
    );
    let expected = b64(digest::digest(&digest::SHA256, canonical.as_bytes()));
    assert_eq!(jwk.thumbprint(), expected);
    assert_eq!(serde_json::to_value(&jwk).unwrap(), ec.jwk_json());
}

#[test]
fn private_symmetric_and_foreign_keys_are_refused() {
    let ok = json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X});
    for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        let mut jwk = ok.clone();
        jwk[member] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        assert_eq!(
            PublicJwk::parse(&jwk),
            Err(JwkError::PrivateKey(member)),
            "{member}"
        );
    }
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "oct"})),
        Err(JwkError::Symmetric)
    );
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "oct", "k": "c2VjcmV0"})),
        Err(JwkError::PrivateKey("k"))
    );
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        Err(JwkError::UnsupportedKeyType)
    );
    for crv in ["X25519", "Ed448", "secp256k1", "P-384"] {
        let kty = if crv.starts_with('P') || crv.starts_with("secp") {
            "EC"
        } else {
            "OKP"
        };
        assert_eq!(
            PublicJwk::parse(&json!({"kty": kty, "crv": crv, "x": RFC8037_X, "y": RFC8037_X})),
            Err(JwkError::UnsupportedCurve),
            "{crv}"
        );
    }
    assert_eq!(PublicJwk::parse(&json!("OKP")), Err(JwkError::NotObject));
    assert_eq!(PublicJwk::parse(&json!({})), Err(JwkError::Missing("kty")));
    assert_eq!(
        PublicJwk::parse(&json!({"kty": 1})),
        Err(JwkError::Invalid("kty"))
    );
}

#[test]
fn lengths_points_and_metadata_are_checked() {
    let short = b64([1u8; 31]);
    let long = b64([1u8; 33]);
    for x in [
        short.as_str(),
        long.as_str(),
        "",
        "not base64!",
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    ] {
        assert_eq!(
            PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": x})),
            Err(JwkError::WrongLength("x")),
            "{x}"
        );
    }
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "y": RFC8037_X})),
        Err(JwkError::Invalid("y"))
    );
    // The identity point: any signature would verify.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": b64(identity)})),
        Err(JwkError::WeakKey)
    );

    let ec = P256::generate();
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "EC", "crv": "P-256", "x": ec.x})),
        Err(JwkError::Missing("y"))
    );
    assert_eq!(
        PublicJwk::parse(&json!({"kty": "EC", "crv": "P-256", "x": ec.x, "y": short})),
        Err(JwkError::WrongLength("y"))
    );
    // (1, 1) is not on P-256; neither is the real x with a changed y.
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut y = unb64(&ec.y);
    y[31] ^= 1;
    for (x, y) in [(b64(one), b64(one)), (ec.x.clone(), b64(&y))] {
        assert_eq!(
            PublicJwk::parse(&json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})),
            Err(JwkError::InvalidPoint)
        );
    }

    let mut jwk = ec.jwk_json();
    jwk["alg"] = json!("EdDSA");
    assert_eq!(PublicJwk::parse(&jwk), Err(JwkError::AlgorithmMismatch));
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("enc");
    assert_eq!(PublicJwk::parse(&jwk), Err(JwkError::WrongUse));
    jwk["use"] = json!("sig");
    jwk["kid"] = json!("");
    assert_eq!(PublicJwk::parse(&jwk), Err(JwkError::Invalid("kid")));
    jwk["kid"] = json!("k-1");
    let parsed = PublicJwk::parse(&jwk).unwrap();
    assert_eq!(parsed.kid(), Some("k-1"));
    assert_eq!(parsed.x(), ec.x);
    assert_eq!(parsed.y(), Some(ec.y.as_str()));
}

#[test]
fn jwk_alg_member_takes_either_ed25519_name() {
    // RFC 9864: an Ed25519 JWK may say `alg: Ed25519` (or the older `EdDSA`).
    for alg in ["EdDSA", "Ed25519"] {
        let jwk =
            PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "alg": alg}))
                .unwrap();
        assert_eq!(jwk.algorithm(), Algorithm::EdDSA);
        assert!(jwk.accepts_alg("EdDSA") && jwk.accepts_alg("Ed25519"));
        assert!(!jwk.accepts_alg("ES256"));
    }
    for alg in ["ES256", "Ed448", "ed25519", "EDDSA", "none", "HS256"] {
        assert_eq!(
            PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "alg": alg})),
            Err(JwkError::AlgorithmMismatch),
            "{alg}"
        );
    }
    let ec = P256::generate();
    let mut jwk = ec.jwk_json();
    jwk["alg"] = json!("Ed25519");
    assert_eq!(PublicJwk::parse(&jwk), Err(JwkError::AlgorithmMismatch));
    let p256 = ec.jwk();
    assert!(p256.accepts_alg("ES256"));
    assert!(!p256.accepts_alg("Ed25519") && !p256.accepts_alg("EdDSA"));
}

#[test]
fn advertised_client_algs_are_exactly_the_accepted_ones() {
    let ed = PublicJwk::parse(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})).unwrap();
    let ec = P256::generate().jwk();
    let mut accepted: Vec<&str> = ed.algorithm_names().to_vec();
    accepted.extend_from_slice(ec.algorithm_names());
    assert_eq!(accepted, charter_auth::CLIENT_SIGNING_ALGS);
}
