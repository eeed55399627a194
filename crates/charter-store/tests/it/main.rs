//! Conformance suite of the `Store` boundary: every test runs twice, once per backend
//! (`sqlite` and `postgres` modules), each on its own fresh database, through the public
//! `Store` trait and `AuditWriter` only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod append_only;
mod chain;
mod lookups;
mod paging;
mod savepoints;
mod subchains;
mod versions;
