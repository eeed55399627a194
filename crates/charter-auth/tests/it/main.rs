//! Integration tests for charter-auth: one binary, one module per concern.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod assertions;
mod dpop;
mod jwk;
mod keys;
mod secrets;
mod support;
mod tokens;
