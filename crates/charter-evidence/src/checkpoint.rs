//! Signed checkpoints of the audit chain head: the line format and its offline verifier.
//!
//! The hash chain detects an edited, deleted or reordered record anywhere but at the tail; a
//! log cut short (or rewritten from some record on, with every later hash recomputed) still
//! verifies. A checkpoint closes that gap: the head `{seq, hash, at}` signed by the evidence
//! key, one JSON line of a file outside the database. Whoever holds a checkpoint can later
//! prove that the log still reaches `seq` and that record `seq` still has `hash`.
//!
//! Line format (`docs/checkpoints.md`): `{"seq","hash","at","kid","signature"}`, the signature
//! a JWS with detached payload — protected header `{"alg":"EdDSA","kid":…,"b64":true}`,
//! payload the RFC 8785 canonical form of `{seq, hash, at}` — made and checked by the same
//! detached-JWS code as evidence bundles ([`crate::bundle::sign`],
//! [`crate::bundle::verify_detached`]).
//!
//! This module is the pure half: the format, [`Checkpoint::sign`] over a caller's signing
//! function, and the auditor's judgement ([`verify`] = [`verify_signature`] then
//! [`check_chain`]). The server (`charter_server::checkpoints`) holds the evidence key, the
//! sink file and the schedule; `charter audit verify --checkpoint` and the tests call the
//! functions here on what the server answers.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bundle::{self, BundleError};
use crate::chain::{ChainHead, GENESIS_HASH};

/// One signed checkpoint: one line of the sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Sequence number of the chain head.
    pub seq: u64,
    /// Hash of record `seq` ([`GENESIS_HASH`] for an empty log).
    pub hash: String,
    /// When the checkpoint was taken (RFC 3339).
    pub at: String,
    /// The evidence key that signed it.
    pub kid: String,
    /// Detached compact JWS: `base64url(header)..base64url(signature)`.
    pub signature: String,
}

impl Checkpoint {
    /// Signs `head` at time `at` with the evidence key `kid`: `sign` must return a raw
    /// Ed25519 signature of the bytes it is given, made with that key (as for
    /// [`bundle::sign`]).
    ///
    /// # Errors
    ///
    /// [`BundleError::Canonical`] if `head.seq` has no canonical form (beyond 2^53).
    pub fn sign(
        head: &ChainHead,
        at: String,
        kid: &str,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Result<Self, BundleError> {
        let signature = bundle::sign(&signed_value(head.seq, &head.hash, &at), kid, sign)?;
        Ok(Self {
            seq: head.seq,
            hash: head.hash.clone(),
            at,
            kid: kid.to_owned(),
            signature,
        })
    }

    /// The chain head this checkpoint vouches for.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// What is signed: `{seq, hash, at}`, in its RFC 8785 canonical form (the same detached
/// JWS as evidence bundles, [`crate::bundle`]).
pub fn signed_value(seq: u64, hash: &str, at: &str) -> Value {
    json!({ "seq": seq, "hash": hash, "at": at })
}

/// Why a checkpoint does not hold against the chain, or cannot be trusted itself. The
/// `Display` text is what `charter audit verify --checkpoint` prints after
/// `audit chain BROKEN: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint signature: {0}")]
    Signature(String),
    #[error("the chain does not verify: {0}")]
    ChainInvalid(String),
    #[error("truncated: head {head} is behind checkpoint {checkpoint}")]
    Truncated { head: u64, checkpoint: u64 },
    #[error("record {seq} is missing")]
    Missing { seq: u64 },
    #[error("record {seq} was rewritten: hash differs from checkpoint")]
    Rewritten { seq: u64 },
}

/// The evidence public keys an auditor pins: the body of
/// `/.well-known/charter-evidence-keys` (`{"keys": […]}`) or a bare array of JWKs. Every key
/// is checked as the verifier reads it ([`bundle::check_keys`]: an Ed25519 public JWK with a
/// `kid`, no `kid` twice).
///
/// # Errors
///
/// [`BundleError::Keys`] naming the first thing wrong.
pub fn parse_keys(value: &Value) -> Result<Vec<Value>, BundleError> {
    bundle::parse_pinned_keys(value)
}

/// Checks the checkpoint's signature against the pinned evidence keys (public JWKs, as
/// [`parse_keys`] returns them): the header must name `EdDSA`, the checkpoint's `kid`, and
/// nothing else but `b64: true`; the key with that kid must be an Ed25519 key among `keys`;
/// the signature must cover the canonical payload; and `at` must lie within the key's
/// signing period when the key carries one (`not_before`, `not_after`).
///
/// # Errors
///
/// [`CheckpointError::Signature`] naming what is wrong.
pub fn verify_signature(cp: &Checkpoint, keys: &[Value]) -> Result<(), CheckpointError> {
    let kid = bundle::verify_detached(&signed_value(cp.seq, &cp.hash, &cp.at), &cp.signature, keys)
        .map_err(|e| match e {
            BundleError::Signature(why) => CheckpointError::Signature(why),
            other => CheckpointError::Signature(other.to_string()),
        })?;
    if kid != cp.kid {
        return Err(CheckpointError::Signature(
            "the header's kid differs from the checkpoint's".into(),
        ));
    }
    bundle::check_signed_in_period(keys, &cp.kid, &cp.at).map_err(CheckpointError::Signature)?;
    Ok(())
}

/// What the server says about its chain, as an auditor reads it over the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainView {
    /// `GET /v1/audit/verify`: the verified head, or why the chain is broken.
    pub verified: Result<ChainHead, String>,
    /// `(seq, hash)` of the record the server returns at the checkpoint's seq
    /// (`GET /v1/audit?after=SEQ-1&limit=1`); `None` if it returned none.
    pub record: Option<(u64, String)>,
}

impl ChainView {
    /// Reads the view from the two replies: the status and body of `GET /v1/audit/verify`
    /// and the body of `GET /v1/audit?after=SEQ-1&limit=1` (`None` for a checkpoint at
    /// seq 0, where there is no record to ask for).
    ///
    /// # Errors
    ///
    /// A description of a reply of the wrong shape.
    pub fn from_replies(
        verify_status: u16,
        verify: &Value,
        page: Option<&Value>,
    ) -> Result<Self, String> {
        let verified = match (verify_status, verify.get("valid").and_then(Value::as_bool)) {
            (200, Some(true)) => {
                let head = verify.get("head").ok_or("verify reply without head")?;
                Ok(ChainHead {
                    seq: head
                        .get("seq")
                        .and_then(Value::as_u64)
                        .ok_or("verify reply without head.seq")?,
                    hash: head
                        .get("hash")
                        .and_then(Value::as_str)
                        .ok_or("verify reply without head.hash")?
                        .to_owned(),
                })
            }
            (409, Some(false)) => Err(format!(
                "broken at record {}: {}",
                verify
                    .get("first_bad_record")
                    .map_or_else(|| "?".to_owned(), Value::to_string),
                verify
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("no description")
            )),
            (status, _) => return Err(format!("unexpected verify reply ({status}): {verify}")),
        };
        let record = match page {
            None => None,
            Some(page) => {
                let items = page
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or("audit page without items")?;
                match items.first() {
                    None => None,
                    Some(item) => Some((
                        item.get("seq")
                            .and_then(Value::as_u64)
                            .ok_or("audit item without seq")?,
                        item.get("hash")
                            .and_then(Value::as_str)
                            .ok_or("audit item without hash")?
                            .to_owned(),
                    )),
                }
            }
        };
        Ok(Self { verified, record })
    }
}

/// Judges a (signature-checked) checkpoint against the server's chain: the chain must
/// verify, reach at least the checkpoint's seq, and hold exactly the checkpointed hash at
/// that seq. Returns the verified head.
///
/// # Errors
///
/// The first [`CheckpointError`] that applies.
pub fn check_chain(cp: &Checkpoint, view: &ChainView) -> Result<ChainHead, CheckpointError> {
    let head = view
        .verified
        .clone()
        .map_err(CheckpointError::ChainInvalid)?;
    if head.seq < cp.seq {
        return Err(CheckpointError::Truncated {
            head: head.seq,
            checkpoint: cp.seq,
        });
    }
    if cp.seq == 0 {
        return if cp.hash == GENESIS_HASH {
            Ok(head)
        } else {
            Err(CheckpointError::Rewritten { seq: 0 })
        };
    }
    match &view.record {
        Some((seq, hash)) if *seq == cp.seq => {
            if *hash == cp.hash {
                Ok(head)
            } else {
                Err(CheckpointError::Rewritten { seq: cp.seq })
            }
        }
        _ => Err(CheckpointError::Missing { seq: cp.seq }),
    }
}

/// The whole offline judgement of a checkpoint an auditor holds: its signature against the
/// pinned evidence keys, then [`check_chain`]. `charter audit verify --checkpoint` and the
/// tests both call this.
///
/// # Errors
///
/// The first [`CheckpointError`] that applies.
pub fn verify(
    cp: &Checkpoint,
    keys: &[Value],
    view: &ChainView,
) -> Result<ChainHead, CheckpointError> {
    verify_signature(cp, keys)?;
    check_chain(cp, view)
}

/// The last checkpoint in the text of a sink. Strict: the last non-empty line must be a
/// checkpoint. `Ok(None)` for a text without lines.
///
/// # Errors
///
/// A description of why the last line is not a checkpoint.
pub fn last_checkpoint(text: &str) -> Result<Option<Checkpoint>, String> {
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        None => Ok(None),
        Some(line) => serde_json::from_str(line)
            .map(Some)
            .map_err(|e| format!("the last line is not a checkpoint: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// An evidence key (seed `seed` repeated) and its published JWK.
    fn key(seed: u8) -> (Ed25519KeyPair, Vec<Value>) {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            "kid": "evk_test",
            "alg": "EdDSA",
            "use": "sig",
        });
        (pair, vec![jwk])
    }

    fn head(seq: u64, hash: &str) -> ChainHead {
        ChainHead {
            seq,
            hash: hash.to_owned(),
        }
    }

    fn signed() -> (Checkpoint, Vec<Value>) {
        let (pair, keys) = key(7);
        let cp = Checkpoint::sign(
            &head(140, &"ab".repeat(32)),
            "2026-11-30T10:00:00Z".into(),
            "evk_test",
            |m| pair.sign(m).as_ref().to_vec(),
        )
        .unwrap();
        (cp, keys)
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_any_edit_breaks_it() {
        let (cp, keys) = signed();
        assert_eq!(verify_signature(&cp, &keys), Ok(()));
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(cp.signature.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            json!({ "alg": "EdDSA", "kid": "evk_test", "b64": true })
        );
        assert!(cp.signature.contains(".."), "detached payload");

        let edits: [fn(&mut Checkpoint); 4] = [
            |c| c.seq += 1,
            |c| c.hash = "cd".repeat(32),
            |c| c.at = "2026-11-30T10:00:01Z".into(),
            |c| c.signature = c.signature.replacen("..", ".e30.", 1),
        ];
        for edit in edits {
            let mut bad = cp.clone();
            edit(&mut bad);
            assert!(matches!(
                verify_signature(&bad, &keys),
                Err(CheckpointError::Signature(_))
            ));
        }
        let mut other_kid = cp.clone();
        other_kid.kid = "evk_other".into();
        assert!(verify_signature(&other_kid, &keys).is_err());
        let (_, stranger) = key(8);
        assert_eq!(
            verify_signature(&cp, &stranger),
            Err(CheckpointError::Signature("does not verify".into())),
            "another key of the same kid"
        );
    }

    #[test]
    fn keys_come_as_a_jwks_or_a_list() {
        let (_, keys) = key(7);
        let jwks = json!({ "keys": keys });
        assert_eq!(parse_keys(&jwks).unwrap(), keys);
        assert_eq!(parse_keys(&json!(keys)).unwrap(), keys);
        assert!(parse_keys(&json!({ "keys": [{ "kty": "oct", "k": "AAAA" }] })).is_err());
        assert!(
            parse_keys(&json!({ "keys": [{ "kty": "oct", "k": "AAAA", "kid": "k1" }] })).is_err()
        );
        assert_eq!(
            parse_keys(&json!([keys[0], keys[0]]))
                .unwrap_err()
                .to_string(),
            "keys: kid \"evk_test\" appears twice"
        );
        assert!(parse_keys(&json!("x")).is_err());
        assert!(parse_keys(&json!({ "jwks": [] })).is_err());
    }

    fn view(verified: Result<ChainHead, String>, record: Option<(u64, &str)>) -> ChainView {
        ChainView {
            verified,
            record: record.map(|(s, h)| (s, h.to_owned())),
        }
    }

    #[test]
    fn the_chain_must_reach_and_hold_the_checkpoint() {
        let (cp, _) = signed();
        let h = "ab".repeat(32);
        let later = head(150, &"ef".repeat(32));
        assert_eq!(
            check_chain(&cp, &view(Ok(later.clone()), Some((140, &h)))),
            Ok(later.clone())
        );
        assert_eq!(
            check_chain(&cp, &view(Ok(head(120, &h)), None))
                .unwrap_err()
                .to_string(),
            "truncated: head 120 is behind checkpoint 140"
        );
        assert_eq!(
            check_chain(&cp, &view(Ok(later.clone()), Some((140, &"00".repeat(32)))))
                .unwrap_err()
                .to_string(),
            "record 140 was rewritten: hash differs from checkpoint"
        );
        assert_eq!(
            check_chain(&cp, &view(Ok(later.clone()), Some((141, &h)))),
            Err(CheckpointError::Missing { seq: 140 })
        );
        assert!(matches!(
            check_chain(
                &cp,
                &view(Err("broken at record 5".into()), Some((140, &h)))
            ),
            Err(CheckpointError::ChainInvalid(_))
        ));
    }

    #[test]
    fn a_checkpoint_of_the_empty_log_holds_genesis() {
        let (pair, keys) = key(7);
        let cp = Checkpoint::sign(
            &ChainHead::genesis(),
            "2026-11-30T10:00:00Z".into(),
            "evk_test",
            |m| pair.sign(m).as_ref().to_vec(),
        )
        .unwrap();
        let now = head(3, &"ef".repeat(32));
        assert_eq!(verify(&cp, &keys, &view(Ok(now.clone()), None)), Ok(now));
        let mut other = cp.clone();
        other.hash = "00".repeat(31) + "01";
        assert_eq!(
            check_chain(&other, &view(Ok(head(3, "x")), None)),
            Err(CheckpointError::Rewritten { seq: 0 })
        );
    }

    #[test]
    fn views_are_read_from_the_server_replies() {
        let ok = json!({ "valid": true, "records": 150, "head": { "seq": 150, "hash": "ff" } });
        let page = json!({ "items": [{ "seq": 140, "hash": "ab", "record": {} }], "next": "140" });
        let v = ChainView::from_replies(200, &ok, Some(&page)).unwrap();
        assert_eq!(v.verified, Ok(head(150, "ff")));
        assert_eq!(v.record, Some((140, "ab".to_owned())));
        let broken = json!({ "valid": false, "error": "chain_broken", "error_description": "hash mismatch", "first_bad_record": 7 });
        let v = ChainView::from_replies(409, &broken, Some(&json!({ "items": [] }))).unwrap();
        assert_eq!(
            v.verified,
            Err("broken at record 7: hash mismatch".to_owned())
        );
        assert_eq!(v.record, None);
        assert!(ChainView::from_replies(403, &json!({ "error": "forbidden" }), None).is_err());
    }

    #[test]
    fn the_last_line_is_the_checkpoint() {
        let (cp, _) = signed();
        let mut next = cp.clone();
        next.seq = 141;
        let line = |c: &Checkpoint| serde_json::to_string(c).unwrap();
        let text = format!("{}\n{}\n\n", line(&cp), line(&next));
        assert_eq!(last_checkpoint(&text).unwrap(), Some(next));
        assert_eq!(last_checkpoint("").unwrap(), None);
        assert!(last_checkpoint(&format!("{}\n{{\"seq\":14", line(&cp))).is_err());
        let extra = line(&cp).replacen('{', "{\"extra\":1,", 1);
        assert!(last_checkpoint(&extra).is_err(), "unknown members refused");
    }
}
