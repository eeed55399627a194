//! Client secrets and their keyed hashes.

use std::collections::HashSet;

use charter_auth::{MasterKey, SecretHasher, generate_client_secret};

use crate::support::*;

#[test]
fn hasher_verifies_only_the_right_secret_under_the_right_key() {
    let master = MasterKey::generate();
    let hasher = SecretHasher::new(master.derive("client-secret-hmac"));
    let secret = generate_client_secret();
    let stored = hasher.hash(secret.expose());
    assert_eq!(stored.len(), 64);
    assert!(
        stored
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(hasher.hash(secret.expose()), stored, "deterministic");

    assert!(hasher.verify(secret.expose(), &stored));
    assert!(hasher.verify(secret.expose(), &stored.to_ascii_uppercase()));
    assert!(!hasher.verify(generate_client_secret().expose(), &stored));
    assert!(!hasher.verify(&format!("{}x", secret.expose()), &stored));
    assert!(!hasher.verify("", &stored));
    assert!(!hasher.verify(secret.expose(), ""));
    assert!(!hasher.verify(secret.expose(), &stored[..62]));
    assert!(!hasher.verify(secret.expose(), &format!("{}zz", &stored[..62])));
    assert!(!hasher.verify(secret.expose(), secret.expose()));

    let other = SecretHasher::new(master.derive("something-else"));
    assert_ne!(other.hash(secret.expose()), stored);
    assert!(!other.verify(secret.expose(), &stored));
    assert_eq!(format!("{hasher:?}"), "SecretHasher([redacted])");
}

#[test]
fn generated_secrets_are_distinct_256_bit_values() {
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let secret = generate_client_secret();
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        let text = secret.expose();
        let body = text.strip_prefix("chs_").unwrap();
        assert_eq!(body.len(), 43);
        assert_eq!(unb64(body).len(), 32);
        assert!(seen.insert(text.clone()));
    }
}
