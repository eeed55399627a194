//! A grant's usage as a committed summary: counts per scope and decision, first and last
//! call, tokens issued, and the root of a Merkle tree ([`crate::merkle`]) over the hashes of
//! the grant's usage records (`access.decision` and `token.issue`, in `seq` order). An
//! evidence bundle carries the summary instead of the records, so its size does not grow
//! with traffic; the records stay in the audit log, and an auditor checks any one of them
//! against the committed root with an inclusion proof ([`verify_proof`]), or recomputes the
//! whole summary from an export ([`UsageTree`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action;
use crate::chain::{AuditRecord, record_hash};
use crate::merkle::{self, Hash};

/// Calls of one scope by decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeCounts {
    pub allowed: u64,
    pub denied: u64,
}

/// What a bundle states about a grant's usage, and commits with `records` and `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSummary {
    /// Leaves of the tree: the grant's usage records summarised.
    pub records: u64,
    /// Lowercase hex of the tree's root.
    pub root: String,
    /// Sequence number of the last record in the tree (0 if none).
    pub last_seq: u64,
    /// `access.decision` records with `details.decision` `allow` / `deny`.
    pub allowed: u64,
    pub denied: u64,
    /// Calls per `details.operation.scope` (`""`: the call matched no operation).
    pub by_scope: BTreeMap<String, ScopeCounts>,
    /// `token.issue` records.
    pub tokens_issued: u64,
    /// The earliest and latest `at` of the grant's calls (compared as instants, the
    /// record's text verbatim), `null` without calls.
    pub first_at: Option<String>,
    pub last_at: Option<String>,
}

/// Builds the tree and the summary from a grant's usage records, pushed in `seq` order.
#[derive(Debug, Clone)]
pub struct UsageTree {
    grant: String,
    leaves: Vec<Hash>,
    seqs: Vec<u64>,
    allowed: u64,
    denied: u64,
    by_scope: BTreeMap<String, ScopeCounts>,
    tokens: u64,
    first: Option<(jiff::Timestamp, String)>,
    last: Option<(jiff::Timestamp, String)>,
}

/// Whether a record of this action is a usage record (a leaf of the tree).
pub fn is_usage(action: &str) -> bool {
    action == action::ACCESS_DECISION || action == action::TOKEN_ISSUE
}

impl UsageTree {
    pub fn new(grant: &str) -> Self {
        Self {
            grant: grant.to_owned(),
            leaves: Vec::new(),
            seqs: Vec::new(),
            allowed: 0,
            denied: 0,
            by_scope: BTreeMap::new(),
            tokens: 0,
            first: None,
            last: None,
        }
    }

    /// Adds the next usage record (its stored hash, hex, and its parsed body).
    ///
    /// # Errors
    ///
    /// Why the record is not the grant's next usage record: another target, another action,
    /// a `seq` not above the last one, a hash that is not hex, a decision neither `allow`
    /// nor `deny`, an `at` that is not RFC 3339.
    pub fn push(&mut self, hash: &str, rec: &AuditRecord) -> Result<(), String> {
        let seq = rec.seq;
        if rec.target != self.grant {
            return Err(format!(
                "record {seq} is about {:?}, not {:?}",
                rec.target, self.grant
            ));
        }
        if !is_usage(&rec.action) {
            return Err(format!(
                "record {seq} is {}, not a usage record",
                rec.action
            ));
        }
        if self.seqs.last().is_some_and(|l| *l >= seq) {
            return Err(format!("record {seq} is out of seq order"));
        }
        let leaf = merkle::from_hex(hash)
            .ok_or_else(|| format!("record {seq}: hash is not 64 hex digits"))?;
        if rec.action == action::ACCESS_DECISION {
            let scope = rec.details["operation"]["scope"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let counts = self.by_scope.entry(scope).or_default();
            match rec.details.get("decision").and_then(Value::as_str) {
                Some("allow") => {
                    self.allowed += 1;
                    counts.allowed += 1;
                }
                Some("deny") => {
                    self.denied += 1;
                    counts.denied += 1;
                }
                _ => {
                    return Err(format!(
                        "record {seq}: details.decision is neither allow nor deny"
                    ));
                }
            }
            let at: jiff::Timestamp = rec
                .at
                .parse()
                .map_err(|_| format!("record {seq}: at is not an RFC 3339 timestamp"))?;
            if self.first.as_ref().is_none_or(|(t, _)| at < *t) {
                self.first = Some((at, rec.at.clone()));
            }
            if self.last.as_ref().is_none_or(|(t, _)| at >= *t) {
                self.last = Some((at, rec.at.clone()));
            }
        } else {
            self.tokens += 1;
        }
        self.leaves.push(merkle::leaf_hash(&leaf));
        self.seqs.push(seq);
        Ok(())
    }

    /// Leaves so far.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The summary of every record pushed.
    pub fn summary(&self) -> UsageSummary {
        UsageSummary {
            records: self.leaves.len() as u64,
            root: merkle::to_hex(&merkle::root_of_leaves(&self.leaves)),
            last_seq: self.seqs.last().copied().unwrap_or(0),
            allowed: self.allowed,
            denied: self.denied,
            by_scope: self.by_scope.clone(),
            tokens_issued: self.tokens,
            first_at: self.first.as_ref().map(|(_, s)| s.clone()),
            last_at: self.last.as_ref().map(|(_, s)| s.clone()),
        }
    }

    /// The leaf index of the record `seq`, if it is in the tree.
    pub fn index_of(&self, seq: u64) -> Option<usize> {
        self.seqs.binary_search(&seq).ok()
    }

    /// The audit path of leaf `index` (hex, from the leaf upwards).
    pub fn path(&self, index: usize) -> Option<Vec<String>> {
        merkle::inclusion_path(&self.leaves, index).map(|p| p.iter().map(merkle::to_hex).collect())
    }
}

/// An inclusion proof for one usage record, as `GET /v1/grants/{id}/usage/proof` answers
/// it and `charter evidence verify-usage` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageProof {
    pub grant: String,
    /// The leaf's index and the tree's size: the summary's `records`.
    pub index: u64,
    pub size: u64,
    /// The root the path leads to (hex): the summary's `root`.
    pub root: String,
    /// The record: its seq, stored hash and canonical body.
    pub record: ProofRecord,
    /// The audit path, hex, from the leaf upwards.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofRecord {
    pub seq: u64,
    pub hash: String,
    pub body: String,
}

/// Checks a proof against a committed summary: the proof's tree is the summary's (same size
/// and root), the record's hash is its body's, the body is a usage record of the grant with
/// that seq, and the audit path leads from it to the root. Returns the record.
///
/// # Errors
///
/// The first thing that does not hold, in words.
pub fn verify_proof(summary: &UsageSummary, proof: &UsageProof) -> Result<AuditRecord, String> {
    if proof.size != summary.records || proof.root != summary.root {
        return Err(format!(
            "the proof is for a tree of {} records with root {}, the bundle commits {} records with root {}",
            proof.size, proof.root, summary.records, summary.root
        ));
    }
    if record_hash(&proof.record.body) != proof.record.hash {
        return Err(format!("record {}: hash mismatch", proof.record.seq));
    }
    let rec: AuditRecord = serde_json::from_str(&proof.record.body)
        .map_err(|e| format!("record {}: not an audit record: {e}", proof.record.seq))?;
    if rec.seq != proof.record.seq {
        return Err(format!(
            "record {}: body seq is {}",
            proof.record.seq, rec.seq
        ));
    }
    if rec.target != proof.grant || !is_usage(&rec.action) {
        return Err(format!(
            "record {} is {} about {:?}, not a usage record of {:?}",
            rec.seq, rec.action, rec.target, proof.grant
        ));
    }
    let leaf = merkle::from_hex(&proof.record.hash)
        .ok_or_else(|| format!("record {}: hash is not 64 hex digits", rec.seq))?;
    let root = merkle::from_hex(&summary.root).ok_or("the committed root is not 64 hex digits")?;
    let path = proof
        .path
        .iter()
        .map(|h| merkle::from_hex(h))
        .collect::<Option<Vec<_>>>()
        .ok_or("the path holds a value that is not 64 hex digits")?;
    if !merkle::verify_inclusion(
        &merkle::leaf_hash(&leaf),
        proof.index,
        proof.size,
        &path,
        &root,
    ) {
        return Err(format!(
            "record {}: the audit path does not lead to the committed root",
            rec.seq
        ));
    }
    Ok(rec)
}
