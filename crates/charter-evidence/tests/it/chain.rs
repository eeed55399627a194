//! Hash-chain sealing and tamper detection.

use charter_evidence::{
    AuditRecord, ChainBreak, ChainHead, ChainVerifier, GENESIS_HASH, StoredRecord, record_hash,
};
use serde_json::{Value, json};

fn event(i: u64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: format!("2025-01-0{i}T12:00:00Z"),
        actor: format!("principal-{i}"),
        action: "grant.approve".to_owned(),
        target: format!("grant-{i}"),
        reason: i.is_multiple_of(2).then(|| format!("ticket #{i}")),
        details: json!({ "before": { "state": "pending" }, "after": { "state": "approved" }, "n": i }),
        prev: String::new(),
    }
}

/// A sealed chain of `n` records, as the store would hold it.
fn build_chain(n: u64) -> Vec<StoredRecord> {
    let mut head = ChainHead::genesis();
    let mut rows = Vec::new();
    for i in 1..=n {
        let mut rec = event(i);
        let (body, hash) = rec.seal(&head).unwrap();
        assert_eq!(rec.seq, i);
        head = ChainHead {
            seq: rec.seq,
            hash: hash.clone(),
        };
        rows.push(StoredRecord {
            seq: rec.seq,
            body,
            hash,
        });
    }
    rows
}

fn verify(rows: &[StoredRecord]) -> Result<ChainHead, ChainBreak> {
    let mut v = ChainVerifier::new();
    for row in rows {
        v.push(row)?;
    }
    assert_eq!(v.records(), rows.len() as u64);
    Ok(v.head())
}

fn expect_break(rows: &[StoredRecord], first_bad_record: u64, reason_contains: &str) {
    let brk = verify(rows).unwrap_err();
    assert_eq!(brk.first_bad_record, first_bad_record, "{brk}");
    assert!(
        brk.reason.contains(reason_contains),
        "reason {:?} should contain {reason_contains:?}",
        brk.reason
    );
}

/// Re-encode a row's body after editing it as a JSON value (keeps it canonical).
fn edit_body(row: &mut StoredRecord, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&row.body).unwrap();
    edit(&mut value);
    row.body = charter_evidence::canonical_json(&value).unwrap();
}

#[test]
fn sealed_chain_verifies_and_head_matches() {
    let rows = build_chain(5);
    let head = verify(&rows).unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(head.hash, rows[4].hash);

    // Linkage as documented: record 1 links to genesis, each next one to its predecessor.
    let first: AuditRecord = serde_json::from_str(&rows[0].body).unwrap();
    assert_eq!(first.prev, GENESIS_HASH);
    for pair in rows.windows(2) {
        let next: AuditRecord = serde_json::from_str(&pair[1].body).unwrap();
        assert_eq!(next.prev, pair[0].hash);
        assert_eq!(record_hash(&pair[1].body), pair[1].hash);
    }
}

#[test]
fn empty_log_head_is_genesis() {
    let v = ChainVerifier::new();
    assert_eq!(
        v.head(),
        ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned()
        }
    );
    assert_eq!(v.records(), 0);
    assert_eq!(
        serde_json::to_value(v.head()).unwrap(),
        json!({ "seq": 0, "hash": GENESIS_HASH })
    );
}

#[test]
fn seal_sets_seq_and_prev_and_body_is_canonical() {
    let head = ChainHead {
        seq: 41,
        hash: "ab".repeat(32),
    };
    let mut rec = event(1);
    let (body, hash) = rec.seal(&head).unwrap();
    assert_eq!(rec.seq, 42);
    assert_eq!(rec.prev, head.hash);
    assert_eq!(body, rec.canonical().unwrap());
    assert_eq!(hash, record_hash(&body));
    assert_eq!(serde_json::from_str::<AuditRecord>(&body).unwrap(), rec);
    // reason: None is kept as an explicit null.
    assert!(body.contains(r#""reason":null"#));
}

#[test]
fn starting_at_continues_after_a_known_head() {
    let rows = build_chain(5);
    let mut v = ChainVerifier::starting_at(ChainHead {
        seq: 2,
        hash: rows[1].hash.clone(),
    });
    for row in &rows[2..] {
        v.push(row).unwrap();
    }
    assert_eq!(v.records(), 3);
    assert_eq!(v.head().seq, 5);

    // A wrong starting hash is caught at the first pushed record.
    let mut v = ChainVerifier::starting_at(ChainHead {
        seq: 2,
        hash: rows[0].hash.clone(),
    });
    let brk = v.push(&rows[2]).unwrap_err();
    assert_eq!(brk.first_bad_record, 3);
    assert_eq!(brk.reason, "prev does not link to record 2");
}

#[test]
fn edited_body_is_a_hash_mismatch_at_that_record() {
    let mut rows = build_chain(5);
    edit_body(&mut rows[2], |v| v["actor"] = json!("mallory"));
    expect_break(&rows, 3, "hash mismatch");
}

#[test]
fn edited_body_with_recomputed_hash_breaks_the_next_link() {
    let mut rows = build_chain(5);
    edit_body(&mut rows[2], |v| {
        v["details"]["after"]["state"] = json!("denied")
    });
    rows[2].hash = record_hash(&rows[2].body);
    let brk = verify(&rows).unwrap_err();
    assert_eq!(brk.first_bad_record, 4);
    assert_eq!(brk.reason, "prev does not link to record 3");
    assert_eq!(
        brk.to_string(),
        "audit chain broken at record 4: prev does not link to record 3"
    );
}

#[test]
fn edited_first_record_with_recomputed_hash_breaks_record_2() {
    let mut rows = build_chain(3);
    edit_body(&mut rows[0], |v| v["target"] = json!("other"));
    rows[0].hash = record_hash(&rows[0].body);
    expect_break(&rows, 2, "prev does not link to record 1");
}

#[test]
fn first_record_must_link_to_genesis() {
    let mut rows = build_chain(2);
    edit_body(&mut rows[0], |v| v["prev"] = json!("11".repeat(32)));
    rows[0].hash = record_hash(&rows[0].body);
    expect_break(&rows, 1, "prev is not the genesis hash");
}

#[test]
fn deleted_middle_record_is_a_gap() {
    let mut rows = build_chain(5);
    rows.remove(2);
    let brk = verify(&rows).unwrap_err();
    assert_eq!(brk.first_bad_record, 3);
    assert_eq!(brk.reason, "sequence gap: expected 3, found 4");
}

#[test]
fn deleted_record_with_renumbered_rows_is_a_seq_mismatch() {
    let mut rows = build_chain(5);
    rows.remove(2);
    for (i, row) in rows.iter_mut().enumerate() {
        row.seq = i as u64 + 1;
    }
    expect_break(&rows, 3, "body seq 4 does not match stored seq 3");
}

#[test]
fn deleted_first_record_is_detected() {
    let mut rows = build_chain(3);
    rows.remove(0);
    expect_break(&rows, 1, "sequence gap: expected 1, found 2");
}

#[test]
fn swapped_records_are_detected() {
    let mut rows = build_chain(5);
    rows.swap(2, 3);
    let brk = verify(&rows).unwrap_err();
    assert_eq!(brk.first_bad_record, 3);
    assert_eq!(brk.reason, "sequence gap: expected 3, found 4");
}

#[test]
fn swapped_bodies_under_original_seqs_are_detected() {
    let mut rows = build_chain(5);
    let (a, b) = (rows[2].clone(), rows[3].clone());
    rows[2].body = b.body;
    rows[2].hash = b.hash;
    rows[3].body = a.body;
    rows[3].hash = a.hash;
    expect_break(&rows, 3, "body seq 4 does not match stored seq 3");
}

#[test]
fn duplicated_record_is_a_step_back() {
    let mut rows = build_chain(5);
    rows.insert(3, rows[2].clone());
    let brk = verify(&rows).unwrap_err();
    assert_eq!(brk.first_bad_record, 4);
    assert_eq!(brk.reason, "sequence step back: expected 4, found 3");
}

#[test]
fn non_canonical_body_is_detected_even_with_matching_hash() {
    let mut rows = build_chain(5);
    rows[1].body = rows[1].body.replacen(',', ", ", 1);
    rows[1].hash = record_hash(&rows[1].body);
    expect_break(&rows, 2, "body is not in canonical form");

    // Same content, keys out of order.
    let mut rows = build_chain(5);
    let value: Value = serde_json::from_str(&rows[1].body).unwrap();
    rows[1].body = serde_json::to_string_pretty(&value).unwrap();
    rows[1].hash = record_hash(&rows[1].body);
    expect_break(&rows, 2, "body is not in canonical form");
}

#[test]
fn missing_reason_field_is_not_canonical() {
    let mut rows = build_chain(3);
    let mut value: Value = serde_json::from_str(&rows[0].body).unwrap();
    value.as_object_mut().unwrap().remove("reason");
    rows[0].body = charter_evidence::canonical_json(&value).unwrap();
    rows[0].hash = record_hash(&rows[0].body);
    expect_break(&rows, 1, "body is not in canonical form");
}

#[test]
fn unknown_field_is_detected() {
    let mut rows = build_chain(5);
    edit_body(&mut rows[3], |v| v["extra"] = json!(1));
    rows[3].hash = record_hash(&rows[3].body);
    expect_break(&rows, 4, "unknown field `extra`");
}

#[test]
fn garbage_body_is_detected() {
    let mut rows = build_chain(2);
    rows[1].body = "not json".to_owned();
    expect_break(&rows, 2, "body is not a valid audit record");
}

#[test]
fn wrong_stored_hash_is_detected() {
    let mut rows = build_chain(3);
    rows[2].hash = rows[2].hash.to_uppercase();
    expect_break(&rows, 3, "hash mismatch");
}

#[test]
fn tail_truncation_is_not_detected_without_a_checkpoint() {
    // Documented limitation: dropping the newest records leaves a valid,
    // shorter chain. Only a signed checkpoint of a later head catches it.
    let rows = build_chain(5);
    let head = verify(&rows[..3]).unwrap();
    assert_eq!(head.seq, 3);
}

#[test]
fn verifier_stays_broken_after_a_failure() {
    let mut rows = build_chain(5);
    rows.remove(1);
    let mut v = ChainVerifier::new();
    v.push(&rows[0]).unwrap();
    let brk = v.push(&rows[1]).unwrap_err();
    assert_eq!(brk.first_bad_record, 2);
    // Even a record that would otherwise fit reports the same break.
    let good = build_chain(2).remove(1);
    assert_eq!(v.push(&good).unwrap_err(), brk);
    assert_eq!(v.records(), 1);
    assert_eq!(v.head().seq, 1);
}
