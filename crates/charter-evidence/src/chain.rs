//! The audit record, its SHA-256 hash chain, and streaming chain verification.
//!
//! Each record's `prev` holds [`record_hash`] of the previous record's
//! canonical encoding; record 1 links to [`GENESIS_HASH`]. A writer seals new
//! records with [`AuditRecord::seal`]; a reader replays stored rows through a
//! [`ChainVerifier`], which reports the first record at which the chain breaks.

use sha2::{Digest, Sha256};

use crate::canonical::{CanonicalError, canonical_json};

/// The `prev` of record 1: 64 hex zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event as it is hashed into the chain.
///
/// This is the wire/record format: the field names, and the fact that every
/// field is always present (`reason` is `null` when absent), are part of the
/// contract. Unknown fields are rejected when parsing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the log: 1-based and gap-free.
    pub seq: u64,
    /// RFC 3339 UTC timestamp as written by the writer (opaque here).
    pub at: String,
    /// Principal id, client id, or `"system"` / `"anonymous"`.
    pub actor: String,
    /// What happened, e.g. `"grant.approve"`, `"access.decision"`.
    pub action: String,
    /// Id of the object acted on (`""` if none).
    pub target: String,
    /// Free-text justification; serialized as `null` when `None`.
    pub reason: Option<String>,
    /// An object: before/after summaries, decision fields, ...
    pub details: serde_json::Value,
    /// Lowercase hex SHA-256 of the previous record's canonical encoding.
    pub prev: String,
}

impl AuditRecord {
    /// The record's RFC 8785 canonical encoding: the exact text that is
    /// stored and hashed.
    ///
    /// # Errors
    ///
    /// [`CanonicalError`] if `details` (or `seq`) holds an integer beyond ±2^53.
    pub fn canonical(&self) -> Result<String, CanonicalError> {
        canonical_json(&serde_json::to_value(self)?)
    }

    /// Seal the record onto the chain whose current head is `head`: set
    /// `seq = head.seq + 1` and `prev = head.hash`, and return
    /// `(canonical body, hash)`. The new head is `(self.seq, hash)`.
    ///
    /// # Errors
    ///
    /// [`CanonicalError`] if the record has no canonical encoding; `seq` and
    /// `prev` have been updated even then.
    pub fn seal(&mut self, head: &ChainHead) -> Result<(String, String), CanonicalError> {
        self.seq = head.seq.saturating_add(1);
        self.prev.clone_from(&head.hash);
        let body = self.canonical()?;
        let hash = record_hash(&body);
        Ok((body, hash))
    }
}

/// An audit record whose `details` are already in canonical form. Callers prepare records
/// (the costly part: walking and sorting `details`) in parallel; the one writer then only
/// assembles the canonical text around `seq` and `prev` and hashes it. The text is exactly
/// what [`AuditRecord::canonical`] produces for the same record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRecord {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    /// `details` in canonical form.
    pub details: String,
}

impl PreparedRecord {
    /// Canonicalises the record's `details`.
    ///
    /// # Errors
    ///
    /// [`CanonicalError`] if `details` holds an integer beyond ±2^53.
    pub fn prepare(rec: &AuditRecord) -> Result<Self, CanonicalError> {
        Ok(Self {
            at: rec.at.clone(),
            actor: rec.actor.clone(),
            action: rec.action.clone(),
            target: rec.target.clone(),
            reason: rec.reason.clone(),
            details: canonical_json(&rec.details)?,
        })
    }

    /// Links the record into its subject's sub-chain: sets `details.subject_prev` to the
    /// hash of the previous record about the same target (`None`: this is the first, and the
    /// member is `null`), replacing whatever the submitter put there. The writer calls this
    /// for records [`crate::action::on_subject_chain`] selects, before sealing. `details`
    /// that are not an object are left alone (the record then carries no link, which a
    /// bundle verifier reports).
    ///
    /// # Errors
    ///
    /// [`CanonicalError`] if the details do not parse back (they were canonicalised by
    /// [`prepare`](Self::prepare), so only a hand-made record fails).
    pub fn link_subject(&mut self, subject_prev: Option<&str>) -> Result<(), CanonicalError> {
        let mut details: serde_json::Value = serde_json::from_str(&self.details)?;
        if let Some(members) = details.as_object_mut() {
            members.insert(
                SUBJECT_PREV.to_owned(),
                subject_prev.map_or(serde_json::Value::Null, |h| {
                    serde_json::Value::String(h.to_owned())
                }),
            );
            self.details = canonical_json(&details)?;
        }
        Ok(())
    }

    /// Seals the record after `head`: returns `(seq, canonical body, hash)`. The members are
    /// written in RFC 8785 order (action, actor, at, details, prev, reason, seq, target).
    pub fn seal(&self, head: &ChainHead) -> (u64, String, String) {
        use crate::canonical::write_string;
        let seq = head.seq.saturating_add(1);
        let mut body = String::with_capacity(self.details.len() + 256);
        body.push_str("{\"action\":");
        write_string(&mut body, &self.action);
        body.push_str(",\"actor\":");
        write_string(&mut body, &self.actor);
        body.push_str(",\"at\":");
        write_string(&mut body, &self.at);
        body.push_str(",\"details\":");
        body.push_str(&self.details);
        body.push_str(",\"prev\":");
        write_string(&mut body, &head.hash);
        body.push_str(",\"reason\":");
        match &self.reason {
            Some(r) => write_string(&mut body, r),
            None => body.push_str("null"),
        }
        body.push_str(",\"seq\":");
        body.push_str(&seq.to_string());
        body.push_str(",\"target\":");
        write_string(&mut body, &self.target);
        body.push('}');
        let hash = record_hash(&body);
        (seq, body, hash)
    }
}

/// The member of `details` that links a record to the previous record of its subject.
pub const SUBJECT_PREV: &str = "subject_prev";

/// Lowercase hex of SHA-256 over the UTF-8 bytes of a canonical encoding.
pub fn record_hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// A record as read back from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The stored sequence number (the row's key, outside the body).
    pub seq: u64,
    /// The stored canonical body text.
    pub body: String,
    /// The stored hash of `body`.
    pub hash: String,
}

/// The columns a store keeps beside a record's body to select and filter records by (`at`,
/// `actor`, `action`, `target`). They are not hashed, so a verifier holds them to the body:
/// a row whose columns disagree with its body is a broken record, since whatever selects by
/// the column (an evidence bundle by `target`, usage by `action`) would see a different log
/// from the one the chain proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordColumns {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
}

impl RecordColumns {
    /// The columns a record's body says its row must have.
    pub fn of(rec: &AuditRecord) -> Self {
        Self {
            at: rec.at.clone(),
            actor: rec.actor.clone(),
            action: rec.action.clone(),
            target: rec.target.clone(),
        }
    }

    /// The first column that differs from `body`'s, by name.
    fn differs_from(&self, body: &Self) -> Option<&'static str> {
        [
            ("at", &self.at, &body.at),
            ("actor", &self.actor, &body.actor),
            ("action", &self.action, &body.action),
            ("target", &self.target, &body.target),
        ]
        .into_iter()
        .find(|(_, stored, body)| stored != body)
        .map(|(name, _, _)| name)
    }
}

/// The last record of a (verified) chain: its sequence number and hash.
///
/// An empty log's head is `seq` 0 with [`GENESIS_HASH`] (see [`ChainHead::genesis`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainHead {
    /// Sequence number of the last record (0 for an empty log).
    pub seq: u64,
    /// Hash of the last record ([`GENESIS_HASH`] for an empty log).
    pub hash: String,
}

impl ChainHead {
    /// The head of an empty log: seq 0, [`GENESIS_HASH`].
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

impl Default for ChainHead {
    fn default() -> Self {
        Self::genesis()
    }
}

/// Where and why verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at record {first_bad_record}: {reason}")]
pub struct ChainBreak {
    /// The first record that does not verify (the expected seq when the
    /// stored seq is not the expected next one).
    pub first_bad_record: u64,
    /// Short human-readable explanation.
    pub reason: String,
}

/// Streaming chain verifier: feed stored records in ascending stored-seq order.
///
/// Each [`push`](Self::push) checks, in order, and fails on the first problem:
///
/// 1. the stored seq is the expected next one (a deleted or reordered row
///    shows as a gap or a step back; the break then names the expected seq);
/// 2. the body parses as an [`AuditRecord`] (unknown fields rejected);
/// 3. the body is exactly its own canonical form;
/// 4. the record's `seq` equals the stored seq;
/// 5. the record's `prev` equals the previous record's hash;
/// 6. [`record_hash`] of the body equals the stored hash;
/// 7. with [`push_row`](Self::push_row): every stored column ([`RecordColumns`]) equals the
///    body's.
///
/// Once a push has failed the chain is broken and the verifier should not be
/// used further: it stays broken, and every later `push` returns the same
/// [`ChainBreak`]. [`head`](Self::head) and [`records`](Self::records) keep
/// describing the last record that verified.
///
/// Verification alone cannot detect truncation of the tail (dropping the most
/// recent records); that needs a signed checkpoint of a later head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
    records: u64,
    broken: Option<ChainBreak>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier for a whole log: expects record 1 with `prev` = [`GENESIS_HASH`].
    pub fn new() -> Self {
        Self::starting_at(ChainHead::genesis())
    }

    /// A verifier that continues after a known head: expects record
    /// `head.seq + 1` with `prev` = `head.hash`.
    pub fn starting_at(head: ChainHead) -> Self {
        Self {
            head,
            records: 0,
            broken: None,
        }
    }

    /// Verify the next stored record and advance the head.
    ///
    /// # Errors
    ///
    /// [`ChainBreak`] naming the first bad record; see the type docs for the
    /// checks and the behaviour after a failure.
    pub fn push(&mut self, rec: &StoredRecord) -> Result<(), ChainBreak> {
        self.advance(rec, None)
    }

    /// [`push`](Self::push) for a stored row with its columns: also checks that every
    /// column equals the body's (a `target` or `action` edited outside the chain).
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push); a column mismatch names the record and the column.
    pub fn push_row(
        &mut self,
        rec: &StoredRecord,
        columns: &RecordColumns,
    ) -> Result<(), ChainBreak> {
        self.advance(rec, Some(columns))
    }

    fn advance(
        &mut self,
        rec: &StoredRecord,
        columns: Option<&RecordColumns>,
    ) -> Result<(), ChainBreak> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        match self.check(rec, columns) {
            Ok(()) => {
                self.head = ChainHead {
                    seq: rec.seq,
                    hash: rec.hash.clone(),
                };
                self.records += 1;
                Ok(())
            }
            Err(brk) => {
                self.broken = Some(brk.clone());
                Err(brk)
            }
        }
    }

    /// The last verified record (the starting head if none verified yet).
    pub fn head(&self) -> ChainHead {
        self.head.clone()
    }

    /// How many records were pushed successfully.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn check(&self, rec: &StoredRecord, columns: Option<&RecordColumns>) -> Result<(), ChainBreak> {
        let expected = self.head.seq.saturating_add(1);
        let fail = |reason: String| ChainBreak {
            first_bad_record: rec.seq,
            reason,
        };

        if rec.seq != expected {
            let kind = if rec.seq > expected {
                "sequence gap"
            } else {
                "sequence step back"
            };
            return Err(ChainBreak {
                first_bad_record: expected,
                reason: format!("{kind}: expected {expected}, found {}", rec.seq),
            });
        }

        let record = parse_body(rec)?;

        if record.prev != self.head.hash {
            return Err(fail(if self.head.seq == 0 {
                "prev is not the genesis hash".to_owned()
            } else {
                format!("prev does not link to record {}", self.head.seq)
            }));
        }

        if record_hash(&rec.body) != rec.hash {
            return Err(fail("hash mismatch".to_owned()));
        }

        if let Some(column) = columns.and_then(|c| c.differs_from(&RecordColumns::of(&record))) {
            return Err(fail(format!(
                "stored column {column} differs from the record's body"
            )));
        }

        Ok(())
    }
}

/// The stored body as an audit record: it parses (unknown fields refused), is exactly its
/// own canonical form, and carries the stored seq.
fn parse_body(rec: &StoredRecord) -> Result<AuditRecord, ChainBreak> {
    let fail = |reason: String| ChainBreak {
        first_bad_record: rec.seq,
        reason,
    };
    let record: AuditRecord = serde_json::from_str(&rec.body)
        .map_err(|e| fail(format!("body is not a valid audit record: {e}")))?;
    let canonical = record
        .canonical()
        .map_err(|e| fail(format!("body has no canonical form: {e}")))?;
    if canonical != rec.body {
        return Err(fail("body is not in canonical form".to_owned()));
    }
    if record.seq != rec.seq {
        return Err(fail(format!(
            "body seq {} does not match stored seq {}",
            record.seq, rec.seq
        )));
    }
    Ok(record)
}

/// Checks one stored row on its own, outside a walk: its body is a canonical audit record
/// with the stored seq, hashes to the stored hash, and the columns equal the body's.
/// Returns the parsed record. For a record already verified in its place in the chain
/// (a verified head the caller holds, a record an evidence bundle cites).
///
/// # Errors
///
/// [`ChainBreak`] naming the record.
pub fn check_row(
    rec: &StoredRecord,
    columns: Option<&RecordColumns>,
) -> Result<AuditRecord, ChainBreak> {
    let fail = |reason: String| ChainBreak {
        first_bad_record: rec.seq,
        reason,
    };
    let record = parse_body(rec)?;
    if record_hash(&rec.body) != rec.hash {
        return Err(fail("hash mismatch".to_owned()));
    }
    if let Some(column) = columns.and_then(|c| c.differs_from(&RecordColumns::of(&record))) {
        return Err(fail(format!(
            "stored column {column} differs from the record's body"
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_hash_is_64_hex_zeros() {
        assert_eq!(GENESIS_HASH.len(), 64);
        assert!(GENESIS_HASH.bytes().all(|b| b == b'0'));
        assert_eq!(ChainHead::default(), ChainHead::genesis());
    }

    #[test]
    fn record_hash_is_lowercase_sha256_hex() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            record_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn broken_verifier_stays_broken() {
        let mut v = ChainVerifier::new();
        let bad = StoredRecord {
            seq: 2,
            body: String::new(),
            hash: String::new(),
        };
        let first = v.push(&bad).unwrap_err();
        assert_eq!(first.first_bad_record, 1);
        let good_looking = StoredRecord {
            seq: 1,
            body: String::new(),
            hash: String::new(),
        };
        assert_eq!(v.push(&good_looking).unwrap_err(), first);
        assert_eq!(v.records(), 0);
        assert_eq!(v.head(), ChainHead::genesis());
    }
}

#[cfg(test)]
mod column_tests {
    use super::*;

    fn sealed() -> (StoredRecord, RecordColumns) {
        let mut rec = AuditRecord {
            seq: 0,
            at: "2026-11-30T10:00:00Z".into(),
            actor: "prn_steward".into(),
            action: crate::action::GRANT_REVOKE.into(),
            target: "grt_a".into(),
            reason: Some("contract ended".into()),
            details: serde_json::json!({}),
            prev: String::new(),
        };
        let (body, hash) = rec.seal(&ChainHead::genesis()).unwrap();
        let columns = RecordColumns::of(&rec);
        (StoredRecord { seq: 1, body, hash }, columns)
    }

    #[test]
    fn a_row_whose_columns_differ_from_its_body_breaks_the_chain() {
        let (row, columns) = sealed();
        assert_eq!(ChainVerifier::new().push_row(&row, &columns), Ok(()));
        assert_eq!(check_row(&row, Some(&columns)).map(|r| r.seq), Ok(1));
        type Edit = fn(&mut RecordColumns);
        let edits: [(&str, Edit); 4] = [
            ("at", |c| c.at = "2026-11-30T09:00:00Z".into()),
            ("actor", |c| c.actor = "prn_other".into()),
            ("action", |c| c.action = "grant.approve".into()),
            ("target", |c| c.target = "grt_b".into()),
        ];
        for (name, edit) in edits {
            let mut bad = columns.clone();
            edit(&mut bad);
            let brk = ChainVerifier::new().push_row(&row, &bad).unwrap_err();
            assert_eq!(brk.first_bad_record, 1);
            assert_eq!(
                brk.reason,
                format!("stored column {name} differs from the record's body")
            );
            assert_eq!(check_row(&row, Some(&bad)).unwrap_err(), brk);
        }
        // Without columns (a bundle's events), only the body and hash are checked.
        assert_eq!(ChainVerifier::new().push(&row), Ok(()));
    }
}

#[cfg(test)]
mod prepared_tests {
    use super::*;

    #[test]
    fn prepared_sealing_matches_the_generic_encoding() {
        let head = ChainHead {
            seq: 41,
            hash: "ab".repeat(32),
        };
        for (reason, details) in [
            (None, serde_json::json!({})),
            (
                Some("über \"quoted\"\n".to_owned()),
                serde_json::json!({ "z": [1, 2.5, null], "a": { "é": "\u{2028}", "b": true } }),
            ),
        ] {
            let mut rec = AuditRecord {
                seq: 0,
                at: "2026-11-29T01:00:00.123Z".into(),
                actor: "prn_x".into(),
                action: crate::action::GRANT_APPROVE.into(),
                target: "grt_\u{1F600}".into(),
                reason,
                details,
                prev: String::new(),
            };
            let prepared = PreparedRecord::prepare(&rec).unwrap();
            let (seq, body, hash) = prepared.seal(&head);
            let (generic_body, generic_hash) = rec.seal(&head).unwrap();
            assert_eq!((seq, &body, &hash), (42, &generic_body, &generic_hash));
        }
    }
}
