//! Integration tests for charter-core (one test binary, one module per concern).

// clippy.toml exempts `#[test]` functions; the fixture builders here unwrap on purpose too:
// a fixture that does not build is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod decision_table;
mod fixtures;
mod reasons;
mod time_zones;
mod wire_names;
