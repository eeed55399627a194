//! Snapshot of the canonical encoding and hash of one fixed record.
//! This is the worked example in docs/audit-encoding.md: if it changes, the
//! on-disk format changed.

use charter_evidence::{AuditRecord, ChainHead};
use serde_json::json;

#[test]
fn sample_record_encoding_and_hash() {
    let mut rec = AuditRecord {
        seq: 0,
        at: "2025-03-14T09:26:53Z".to_owned(),
        actor: "principal:alice".to_owned(),
        action: "grant.approve".to_owned(),
        target: "grant:g-0042".to_owned(),
        reason: Some("Renewal for Zürich partner".to_owned()),
        details: json!({
            "partner": "Société Générale ✓",
            "before": { "state": "pending", "quota": 1000 },
            "after": { "state": "approved", "quota": 5000 },
            "scopes": ["orders:read", "orders:write"],
        }),
        prev: String::new(),
    };
    let (body, hash) = rec.seal(&ChainHead::genesis()).unwrap();
    insta::assert_snapshot!("sample_record", format!("{body}\n{hash}"));
}
