//! Tamper-evidence primitives for Charter's audit log.
//!
//! This crate owns six things, shared by the store's writer and the
//! offline verifier so that both sides agree byte for byte:
//!
//! * the audit record's **canonical encoding** — the RFC 8785 JSON
//!   Canonicalization Scheme (JCS), see [`canonical`];
//! * the **SHA-256 hash chain** — each [`AuditRecord`] carries the hex hash
//!   of its predecessor's canonical encoding in `prev`, the first one links
//!   to [`GENESIS_HASH`], see [`chain`];
//! * **chain verification** — [`ChainVerifier`] replays stored records and
//!   names the first record at which the chain is broken;
//! * **evidence bundles** — signing and offline verification of
//!   `charter-evidence/2` bundles, see [`bundle`];
//! * **usage commitments** — a Merkle tree (RFC 9162 style) over a grant's usage
//!   records and the summary a bundle commits, see [`merkle`] and [`usage`];
//! * **checkpoints** — the signed chain-head line format and the auditor's
//!   offline judgement of a checkpoint against the chain, see [`checkpoint`]
//!   (same detached JWS as bundles).
//!
//! The crate is pure computation: no I/O, no clock, no async runtime.
//! The on-disk format is described in `docs/audit-encoding.md`.

pub mod action;
pub mod bundle;
pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod merkle;
pub mod usage;

pub use bundle::{BundleError, Summary};
pub use canonical::{CanonicalError, canonical_json};
pub use chain::{
    AuditRecord, ChainBreak, ChainHead, ChainVerifier, GENESIS_HASH, PreparedRecord, RecordColumns,
    StoredRecord, check_row, record_hash,
};
