//! Integration tests for charter-evidence (one test binary).

// clippy.toml exempts `#[test]` functions; the shared helpers here panic on
// purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bundle;
mod canonical;
mod chain;
mod checkpoint;
mod snapshot;
