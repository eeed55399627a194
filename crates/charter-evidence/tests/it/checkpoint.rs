//! Signed checkpoints judged offline, as an auditor does: against a pinned set of evidence
//! keys, and against a sealed log that was cut short or rewritten after the checkpoint was
//! taken (both of which the chain alone does not notice).

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use charter_evidence::checkpoint::{
    self, ChainView, Checkpoint, CheckpointError, check_chain, parse_keys, verify,
};
use charter_evidence::{AuditRecord, ChainHead, ChainVerifier, StoredRecord, record_hash};
use serde_json::{Value, json};

const AT: &str = "2026-11-30T10:00:00Z";

fn key(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn jwk(key: &Ed25519KeyPair, kid: &str) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

fn sign(head: &ChainHead, key: &Ed25519KeyPair, kid: &str) -> Checkpoint {
    Checkpoint::sign(head, AT.into(), kid, |m| key.sign(m).as_ref().to_vec()).unwrap()
}

/// A sealed log of `n` records, as the store holds it.
fn log(n: u64) -> Vec<StoredRecord> {
    let mut head = ChainHead::genesis();
    let mut rows = Vec::new();
    for i in 1..=n {
        let mut rec = AuditRecord {
            seq: 0,
            at: format!("2026-11-30T09:{i:02}:00Z"),
            actor: "prn_01JADMIN".into(),
            action: "principal.create".into(),
            target: format!("prn_{i:02}"),
            reason: None,
            details: json!({ "n": i }),
            prev: String::new(),
        };
        let (body, hash) = rec.seal(&head).unwrap();
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

fn head_of(rows: &[StoredRecord]) -> ChainHead {
    rows.last().map_or_else(ChainHead::genesis, |r| ChainHead {
        seq: r.seq,
        hash: r.hash.clone(),
    })
}

/// What a server holding `rows` answers: its chain verified from the start, and the record
/// at the checkpoint's seq.
fn view_of(rows: &[StoredRecord], cp: &Checkpoint) -> ChainView {
    let mut verifier = ChainVerifier::new();
    let verified = rows
        .iter()
        .try_for_each(|r| verifier.push(r))
        .map(|()| verifier.head())
        .map_err(|brk| brk.to_string());
    ChainView {
        verified,
        record: rows
            .iter()
            .find(|r| r.seq == cp.seq)
            .map(|r| (r.seq, r.hash.clone())),
    }
}

/// Rewrites record `from` and re-seals every later record onto it: a chain that verifies.
fn rewrite_from(rows: &mut [StoredRecord], from: u64) {
    let mut prev = rows
        .iter()
        .find(|r| r.seq == from - 1)
        .map_or_else(|| ChainHead::genesis().hash, |r| r.hash.clone());
    for row in rows.iter_mut().filter(|r| r.seq >= from) {
        let mut rec: AuditRecord = serde_json::from_str(&row.body).unwrap();
        if rec.seq == from {
            rec.reason = Some("nothing to see here".into());
        }
        rec.prev = prev;
        row.body = rec.canonical().unwrap();
        row.hash = record_hash(&row.body);
        prev = row.hash.clone();
    }
}

#[test]
fn a_checkpoint_signed_by_a_key_outside_the_pinned_set_is_refused() {
    let rows = log(6);
    let (evidence, rogue) = (key(1), key(2));
    let pinned = parse_keys(&json!({ "keys": [jwk(&evidence, "evk_2026a")] })).unwrap();
    let honest = sign(&head_of(&rows), &evidence, "evk_2026a");
    assert_eq!(
        verify(&honest, &pinned, &view_of(&rows, &honest)),
        Ok(head_of(&rows))
    );

    // A key the auditor never pinned, under its own kid…
    let foreign = sign(&head_of(&rows), &rogue, "evk_rogue");
    assert_eq!(
        verify(&foreign, &pinned, &view_of(&rows, &foreign)),
        Err(CheckpointError::Signature(
            "no key in keys has kid \"evk_rogue\"".into()
        ))
    );
    // …or posing as the pinned kid.
    let posing = sign(&head_of(&rows), &rogue, "evk_2026a");
    let err = verify(&posing, &pinned, &view_of(&rows, &posing)).unwrap_err();
    assert_eq!(err, CheckpointError::Signature("does not verify".into()));
    assert_eq!(err.to_string(), "checkpoint signature: does not verify");
    // The foreign checkpoint verifies only once its key is pinned too (a key rotation).
    let both = parse_keys(&json!([
        jwk(&evidence, "evk_2026a"),
        jwk(&rogue, "evk_rogue")
    ]))
    .unwrap();
    assert!(verify(&foreign, &both, &view_of(&rows, &foreign)).is_ok());
    // A pinned key that is not an Ed25519 public key is refused before anything is verified.
    let mut bad = jwk(&evidence, "evk_2026a");
    bad["x"] = json!("AAAA");
    assert_eq!(
        parse_keys(&json!([bad])).unwrap_err().to_string(),
        "keys: key evk_2026a: x is not 32 bytes"
    );
}

#[test]
fn a_chain_rewritten_after_a_checkpoint_is_detected() {
    let evidence = key(1);
    let pinned = vec![jwk(&evidence, "evk_2026a")];
    let mut rows = log(10);
    let cp = sign(&head_of(&rows[..8]), &evidence, "evk_2026a");
    assert_eq!(cp.seq, 8);
    assert!(verify(&cp, &pinned, &view_of(&rows, &cp)).is_ok());

    // Record 5 is rewritten and every later hash and link recomputed.
    rewrite_from(&mut rows, 5);
    let view = view_of(&rows, &cp);
    assert_eq!(
        view.verified,
        Ok(head_of(&rows)),
        "the chain alone does not notice"
    );
    assert_eq!(
        verify(&cp, &pinned, &view),
        Err(CheckpointError::Rewritten { seq: 8 })
    );
    // Rewriting only after the checkpoint is growth the checkpoint does not vouch against.
    let mut grown = log(10);
    rewrite_from(&mut grown, 9);
    assert!(verify(&cp, &pinned, &view_of(&grown, &cp)).is_ok());
}

#[test]
fn a_log_cut_short_behind_a_checkpoint_is_detected() {
    let evidence = key(1);
    let pinned = vec![jwk(&evidence, "evk_2026a")];
    let rows = log(10);
    let cp = sign(&head_of(&rows), &evidence, "evk_2026a");
    let short = &rows[..6];
    let view = view_of(short, &cp);
    assert_eq!(view.verified, Ok(head_of(short)), "still a valid chain");
    let err = verify(&cp, &pinned, &view).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::Truncated {
            head: 6,
            checkpoint: 10
        }
    );
    assert_eq!(err.to_string(), "truncated: head 6 is behind checkpoint 10");
    // Cut, then grown back past the checkpoint with other records: the hash differs there.
    let mut regrown = rows.clone();
    rewrite_from(&mut regrown, 7);
    assert_eq!(
        check_chain(&cp, &view_of(&regrown, &cp)),
        Err(CheckpointError::Rewritten { seq: 10 })
    );
}

#[test]
fn the_signed_payload_is_the_canonical_head() {
    // Pinned: auditors' tools re-create this payload byte for byte.
    let value = checkpoint::signed_value(140, "ab", AT);
    assert_eq!(
        charter_evidence::canonical_json(&value).unwrap(),
        r#"{"at":"2026-11-30T10:00:00Z","hash":"ab","seq":140}"#
    );
}

#[test]
fn a_small_order_key_cannot_vouch_for_a_forgery() {
    // The identity point as a public key: aws-lc accepts (R = identity, S = 0) as its
    // signature of anything, so only the key check stands between it and a forgery.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut forged_sig = [0u8; 64];
    forged_sig[..32].copy_from_slice(&identity);
    assert!(
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &identity)
            .verify(b"any message", &forged_sig)
            .is_ok()
    );
    let weak = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(identity),
        "kid": "evk_weak",
    });
    let forged = Checkpoint::sign(&head_of(&log(3)), AT.into(), "evk_weak", |_| {
        forged_sig.to_vec()
    })
    .unwrap();
    assert_eq!(
        parse_keys(&json!([weak])).unwrap_err().to_string(),
        "keys: key evk_weak: x is a small-order point, which would accept forged signatures"
    );
    // Also when the key reaches the verifier unchecked (as a bundle's embedded keys do).
    assert!(matches!(
        checkpoint::verify_signature(&forged, &[weak]),
        Err(CheckpointError::Signature(why)) if why.contains("small-order")
    ));
}
