//! The evidence guard: no evidence bundle is signed over a broken audit chain.
//!
//! Before the evidence service signs a bundle it asks [`ChainGuard::verified_head`], which
//! verifies the log incrementally — from the head it verified last (kept in memory) to the
//! end of the log, with every row's columns held to its body (`charter_store::
//! verify_chain_from`, the one loop) — instead of the whole log on every call. The first
//! call of a process starts from the newest `audit.checkpoint` record whose signature
//! verifies with the published evidence keys and whose record still holds the checkpointed
//! hash; without one, from genesis. After assembly, [`ChainGuard::check_cited`] checks every
//! event the bundle carries on its own (body canonical, hashing to its stored hash).
//!
//! Invariants:
//! - a break is sticky: once any verification in this process (the guard, or
//!   `GET /v1/audit/verify`) has seen the chain broken, evidence is refused (409
//!   `chain_broken`, naming the first bad record) until the node restarts;
//! - the verified head only moves forward, and only over records that verified; the record
//!   at the verified head is re-read on every call, so a rewrite that reaches it (every hash
//!   after an edit recomputed) is caught;
//! - a signed checkpoint that no longer holds (its record rewritten or gone) is a break at
//!   its seq, never a reason to fall back to a weaker starting point.
//!
//! What it does not re-read: records before the verified head that are not cited by the
//! bundle. An edit there that leaves the record's hash alone (a column, or a body without
//! its hash) is caught by the next full verification (`GET /v1/audit/verify`), which then
//! makes the break sticky here too.

use charter_evidence::checkpoint::{self, Checkpoint};
use charter_evidence::{ChainBreak, ChainHead, StoredRecord, action, check_row};
use charter_store::{AuditQuery, Store};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default)]
struct GuardState {
    /// The last record this process verified in its place in the chain.
    verified: Option<ChainHead>,
    /// The first break any verification saw.
    broken: Option<ChainBreak>,
}

/// The verified head of this process, behind one lock (one verification at a time; a
/// caller that waited finds the head already advanced).
#[derive(Debug, Default)]
pub struct ChainGuard {
    state: tokio::sync::Mutex<GuardState>,
}

impl ChainGuard {
    /// Remembers a break found elsewhere (a full verification): evidence is refused from now.
    pub async fn note_break(&self, brk: &ChainBreak) {
        let mut st = self.state.lock().await;
        if st.broken.is_none() {
            st.broken = Some(brk.clone());
        }
    }

    /// Verifies the log from the last verified head to its end and returns the new head.
    ///
    /// # Errors
    ///
    /// [`ApiError::ChainBroken`] naming the first bad record (and from then on, for every
    /// call); a store error as such.
    /// `published`: the evidence public keys (as `/.well-known/charter-evidence-keys` lists
    /// them), which a starting checkpoint must verify with.
    pub async fn verified_head(
        &self,
        store: &dyn Store,
        published: &[Value],
    ) -> ApiResult<ChainHead> {
        let mut st = self.state.lock().await;
        if let Some(brk) = &st.broken {
            return Err(ApiError::ChainBroken(brk.clone()));
        }
        let outcome = match st.verified.clone() {
            Some(head) => Ok(head),
            None => seed(store, published).await?,
        };
        let outcome = match outcome {
            Ok(start) => match anchor(store, &start).await? {
                Ok(()) => charter_store::verify_chain_from(store, start, None).await?,
                Err(brk) => Err(brk),
            },
            Err(brk) => Err(brk),
        };
        match outcome {
            Ok(head) => {
                st.verified = Some(head.clone());
                Ok(head)
            }
            Err(brk) => {
                tracing::error!(first_bad_record = brk.first_bad_record, reason = %brk.reason,
                    "the audit chain is broken: evidence is refused");
                metrics::counter!("charter_evidence_refused_broken_chain_total").increment(1);
                st.broken = Some(brk.clone());
                Err(ApiError::ChainBroken(brk))
            }
        }
    }

    /// Checks every event a bundle carries (`events[].{seq, hash, body}`) on its own: a
    /// canonical audit record of that seq whose hash is the stored one. Catches a cited
    /// record edited after the guard verified past it.
    ///
    /// # Errors
    ///
    /// [`ApiError::ChainBroken`] naming the first bad event.
    pub async fn check_cited(&self, bundle: &Value) -> ApiResult<()> {
        let events = bundle
            .get("events")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for event in events {
            let (Some(seq), Some(hash), Some(body)) = (
                event.get("seq").and_then(Value::as_u64),
                event.get("hash").and_then(Value::as_str),
                event.get("body").and_then(Value::as_str),
            ) else {
                continue;
            };
            let row = StoredRecord {
                seq,
                body: body.to_owned(),
                hash: hash.to_owned(),
            };
            if let Err(brk) = check_row(&row, None) {
                self.note_break(&brk).await;
                return Err(ApiError::ChainBroken(brk));
            }
        }
        Ok(())
    }
}

/// The record at `head.seq` must still be there, intact, with the hash verified before.
async fn anchor(store: &dyn Store, head: &ChainHead) -> ApiResult<Result<(), ChainBreak>> {
    if head.seq == 0 {
        return Ok(Ok(()));
    }
    let rows = store
        .audit_rows(&AuditQuery {
            after: head.seq - 1,
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    let brk = |reason: &str| ChainBreak {
        first_bad_record: head.seq,
        reason: reason.to_owned(),
    };
    Ok(match rows.first() {
        Some((row, columns)) if row.seq == head.seq => match check_row(row, Some(columns)) {
            Ok(_) if row.hash == head.hash => Ok(()),
            Ok(_) => Err(brk(
                "the record was rewritten after it was verified (its hash changed)",
            )),
            Err(e) => Err(e),
        },
        _ => Err(brk(
            "the record is missing: the log was cut behind a verified head",
        )),
    })
}

/// Where the first verification of a process starts: the newest checkpoint recorded in the
/// log whose signature verifies with the published evidence keys (its record must then
/// hold the checkpointed hash — if not, that is the break), else genesis.
async fn seed(store: &dyn Store, published: &[Value]) -> ApiResult<Result<ChainHead, ChainBreak>> {
    let newest = store
        .audit_query(&AuditQuery {
            action: Some(action::AUDIT_CHECKPOINT.to_owned()),
            newest_first: true,
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    let Some(row) = newest.first() else {
        return Ok(Ok(ChainHead::genesis()));
    };
    let signed = serde_json::from_str::<charter_evidence::AuditRecord>(&row.body)
        .ok()
        .and_then(|rec| serde_json::from_value::<Checkpoint>(rec.details).ok());
    let keys = checkpoint::parse_keys(&Value::Array(published.to_vec()));
    let trusted = match (signed, keys) {
        (Some(cp), Ok(keys)) if checkpoint::verify_signature(&cp, &keys).is_ok() => cp,
        // Not a checkpoint this deployment signed: start from the beginning.
        _ => return Ok(Ok(ChainHead::genesis())),
    };
    let head = trusted.head();
    Ok(anchor(store, &head).await?.map(|()| head))
}
