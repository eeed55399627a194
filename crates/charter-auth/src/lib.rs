//! Charter's JOSE, in one place: signing keys and their encryption at rest, access-token
//! minting and verification with a pinned algorithm, client secrets, RFC 7523 client
//! assertions, RFC 9449 DPoP proofs and RFC 7638 thumbprints.
//!
//! Architecture invariant: this crate is pure. It does no I/O except reading the bytes the
//! caller hands it, and it never reads the clock: every check that depends on time takes
//! `now` (unix seconds) as a parameter. Randomness comes from aws-lc-rs's system RNG.
//!
//! Security invariants:
//! - The algorithm that verifies a signature is chosen by the *key* (Ed25519 → `EdDSA`,
//!   P-256 → `ES256`), never by a token header. A client's header may name an Ed25519 key's
//!   algorithm `EdDSA` or `Ed25519` (RFC 9864), a P-256 key's only `ES256`; any other name —
//!   `none`, HMAC, RSA, another key type's — is refused before any key is touched. Charter's
//!   own tokens and signatures say `EdDSA`, and its access tokens verify only under that name.
//! - Headers that point at other keys (`jku`, `x5u`, `x5c`, `jwk` where not expected,
//!   `crit`) are refused outright.
//! - Only public keys are accepted from outside ([`PublicJwk::parse`] refuses private and
//!   symmetric members, unknown curves, invalid points and small-order Ed25519 keys).
//! - Secrets print as `[redacted]` ([`Secret`]); signing keys are stored only sealed
//!   (AES-256-GCM under a key derived from the [`MasterKey`]).

pub mod assertion;
pub mod dpop;
pub mod jwk;
pub mod keys;
pub mod secret;
pub mod token;

mod b64;
mod jws;
mod rng;

pub use assertion::{AssertionClaims, AssertionError, verify_client_assertion};
pub use dpop::{DpopError, DpopProof, verify_proof};
pub use jsonwebtoken::Algorithm;
pub use jwk::{CLIENT_SIGNING_ALGS, JwkError, PublicJwk};
pub use keys::{KeyError, KeySet, MasterKey, SealedKey, SigningKey};
pub use secret::{Secret, SecretHasher, generate_client_secret};
pub use token::{AccessClaims, Cnf, MAX_TOKEN_BYTES, TokenError, check_time, new_jti};

/// True when the JOSE backend (jsonwebtoken with aws-lc-rs) is usable. Call once at startup
/// to fail early on a misbuilt binary; verification refuses every token otherwise.
pub fn crypto_ready() -> bool {
    jws::provider_ready()
}
