//! Signed checkpoints of the audit chain head, kept outside the database.
//!
//! The hash chain detects an edited, deleted or reordered record anywhere but at the tail; a
//! log cut short (or rewritten from some record on, with every later hash recomputed) still
//! verifies. A checkpoint closes that gap: the head `{seq, hash, at}` signed by the evidence
//! key and appended as one JSON line to a file (by default `<data_dir>/checkpoints.jsonl`)
//! that an auditor copies away. Whoever holds a checkpoint can later prove that the log
//! still reaches `seq` and that record `seq` still has `hash`.
//!
//! Line format (`docs/checkpoints.md`): `{"seq","hash","at","kid","signature"}`, the signature
//! a JWS with detached payload — protected header `{"alg":"EdDSA","kid":…,"b64":true}`,
//! payload the RFC 8785 canonical form of `{seq, hash, at}` — as for evidence bundles.
//!
//! Invariants:
//! - a checkpoint is only signed for a head that extends the previous checkpoint in the file:
//!   the records since it are verified first, so the server never vouches for a log that was
//!   truncated or rewritten behind a checkpoint it already gave out (it refuses, and says so
//!   in its log and metrics, until someone looks);
//! - the file line is written (and synced) before the `audit.checkpoint` record that
//!   announces it; that record moves the head past the checkpoint, which is expected;
//! - [`verify_signature`] and [`check_chain`] are pure: the CLI (`charter audit verify
//!   --checkpoint`) and the tests call the same functions on what the server answers.

use charter_evidence::action;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use charter_auth::PublicJwk;
use charter_evidence::{ChainHead, ChainVerifier, GENESIS_HASH};
use charter_store::{AuditQuery, Unit};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::keyring::EvidenceState;
use crate::state::{AppState, Shared};

/// The sink's file name inside the data directory, unless configured otherwise.
pub const DEFAULT_FILE: &str = "checkpoints.jsonl";
/// How often the background task looks at the head (it writes only when the head moved).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The audit action that announces a checkpoint.
pub const ACTION: &str = action::AUDIT_CHECKPOINT;

/// How much of the file's end is read to find the last checkpoint (lines are ~300 bytes).
const TAIL_BYTES: u64 = 64 * 1024;

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
    /// Signs `head` at time `at` with the evidence key.
    pub fn sign(head: &ChainHead, at: String, key: &EvidenceState) -> ApiResult<Self> {
        let payload = signed_value(head.seq, &head.hash, &at);
        let signature = charter_evidence::bundle::sign(&payload, key.kid(), |m| key.sign(m))
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("checkpoint signature: {e}")))?;
        Ok(Self {
            seq: head.seq,
            hash: head.hash.clone(),
            at,
            kid: key.kid().to_owned(),
            signature,
        })
    }

    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// What is signed: `{seq, hash, at}`, in its RFC 8785 canonical form (the same detached
/// JWS as evidence bundles, `charter_evidence::bundle`).
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

/// The evidence public keys from `/.well-known/charter-evidence-keys` (`{"keys": […]}`) or a
/// bare array of JWKs. Each is validated like any public key from outside.
pub fn parse_keys(value: &Value) -> Result<Vec<PublicJwk>, String> {
    let list = match value {
        Value::Array(list) => list,
        Value::Object(o) => o
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("expected {\"keys\": [...]}")?,
        _ => return Err("expected {\"keys\": [...]} or an array of JWKs".into()),
    };
    list.iter()
        .enumerate()
        .map(|(i, k)| PublicJwk::parse(k).map_err(|e| format!("key {}: {e}", i + 1)))
        .collect()
}

/// Checks the checkpoint's signature against the evidence keys: the header must name
/// `EdDSA`, the checkpoint's `kid`, and nothing else but `b64: true`; the key with that kid
/// must be an Ed25519 key among `keys`; the signature must cover the canonical payload.
pub fn verify_signature(cp: &Checkpoint, keys: &[PublicJwk]) -> Result<(), CheckpointError> {
    let keys: Vec<Value> = keys
        .iter()
        .filter_map(|k| serde_json::to_value(k).ok())
        .collect();
    let kid = charter_evidence::bundle::verify_detached(
        &signed_value(cp.seq, &cp.hash, &cp.at),
        &cp.signature,
        &keys,
    )
    .map_err(|e| {
        let text = e.to_string();
        CheckpointError::Signature(text.strip_prefix("signature: ").unwrap_or(&text).to_owned())
    })?;
    if kid != cp.kid {
        return Err(CheckpointError::Signature(
            "the header's kid differs from the checkpoint's".into(),
        ));
    }
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
    /// seq 0, where there is no record to ask for). `Err` for a reply of the wrong shape.
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
/// evidence keys, then [`check_chain`]. `charter audit verify --checkpoint` and the tests
/// both call this.
pub fn verify(
    cp: &Checkpoint,
    keys: &[PublicJwk],
    view: &ChainView,
) -> Result<ChainHead, CheckpointError> {
    verify_signature(cp, keys)?;
    check_chain(cp, view)
}

/// The last checkpoint in the text of a sink. Strict: the last non-empty line must be a
/// checkpoint. `Ok(None)` for a file without lines.
pub fn last_checkpoint(text: &str) -> Result<Option<Checkpoint>, String> {
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        None => Ok(None),
        Some(line) => serde_json::from_str(line)
            .map(Some)
            .map_err(|e| format!("the last line is not a checkpoint: {e}")),
    }
}

/// Why the sink could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Malformed { path: String, detail: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The last checkpoint a sink file holds (reading only its end); `Ok(None)` if the file is
/// missing or empty. A torn last line (a crash mid-write) is skipped in favour of the line
/// before it.
pub fn read_last(path: &Path) -> Result<Option<Checkpoint>, SinkError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let len = file.metadata().map_err(io_error(path))?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_error(path))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if start > 0 && !lines.is_empty() {
        // The first line read may be the end of a longer one.
        lines.remove(0);
    }
    for (i, line) in lines.iter().rev().enumerate() {
        match serde_json::from_str::<Checkpoint>(line) {
            Ok(cp) => return Ok(Some(cp)),
            // Only the very last line may be torn.
            Err(_) if i == 0 && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(SinkError::Malformed {
                    path: path.display().to_string(),
                    detail: format!("a line is not a checkpoint: {e}"),
                });
            }
        }
    }
    // Nothing but a torn line: no checkpoint was completed yet.
    Ok(None)
}

/// Appends one line and syncs it to disk; a torn last line is first closed with a newline.
fn append(path: &Path, cp: &Checkpoint) -> Result<(), SinkError> {
    let mut line = serde_json::to_string(cp).map_err(|e| SinkError::Malformed {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io_error(path))?;
    if file.metadata().map_err(io_error(path))?.len() > 0 {
        file.seek(SeekFrom::End(-1)).map_err(io_error(path))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last).map_err(io_error(path))?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    file.write_all(line.as_bytes()).map_err(io_error(path))?;
    file.sync_data().map_err(io_error(path))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("checkpoint task: {e}")))?
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("checkpoint sink: {e}")))
}

/// One checkpoint at a time per process, so lines are appended in head order.
static SINK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Signs the current chain head and appends it to `sink`, then records `audit.checkpoint`.
/// Refuses (409) when the log no longer extends the last checkpoint in `sink`: the head is
/// behind it, its record was rewritten, or a record since it does not verify.
pub async fn checkpoint_now(state: &AppState, sink: &Path) -> ApiResult<Checkpoint> {
    let _one = SINK_LOCK.lock().await;
    let path = sink.to_path_buf();
    let last = blocking(move || read_last(&path)).await?;
    let head = state.repo.store.audit_head().await?;
    verify_extends(state, last.as_ref().map(Checkpoint::head), &head).await?;
    let key = state.keys.evidence()?;
    let cp = Checkpoint::sign(&head, state.now().to_string(), &key)?;
    let (path, line) = (sink.to_path_buf(), cp.clone());
    blocking(move || append(&path, &line)).await?;
    let rec = state.repo.record(
        "system",
        ACTION,
        "",
        None,
        // The whole signed line, so the SIEM export carries every checkpoint too.
        json!({ "seq": cp.seq, "hash": cp.hash, "at": cp.at, "kid": cp.kid, "signature": cp.signature }),
    );
    state
        .repo
        .write(Unit {
            ops: vec![],
            audit: vec![rec],
        })
        .await?;
    metrics::counter!("charter_audit_checkpoints_total").increment(1);
    Ok(cp)
}

/// Takes a checkpoint unless nothing but checkpoint records was appended since the last
/// one in `sink` (so an idle log, or several nodes checkpointing one database, do not keep
/// each other busy).
pub async fn checkpoint_if_moved(state: &AppState, sink: &Path) -> ApiResult<Option<Checkpoint>> {
    let path = sink.to_path_buf();
    if let Some(last) = blocking(move || read_last(&path)).await? {
        let head = state.repo.store.audit_head().await?;
        if head.seq > last.seq {
            let gap = head.seq - last.seq;
            let only_checkpoints = gap <= 100
                && state
                    .repo
                    .store
                    .audit_query(&AuditQuery {
                        after: last.seq,
                        before: head.seq + 1,
                        action: Some(ACTION.to_owned()),
                        limit: 100,
                        ..AuditQuery::default()
                    })
                    .await?
                    .len() as u64
                    == gap;
            if only_checkpoints {
                return Ok(None);
            }
        } else if head == last.head() {
            return Ok(None);
        }
    }
    checkpoint_now(state, sink).await.map(Some)
}

/// Checks that the log up to `to` extends `from` (the last checkpoint; `None`: the whole
/// log from the start), reading only the records after `from`.
async fn verify_extends(
    state: &AppState,
    from: Option<ChainHead>,
    to: &ChainHead,
) -> ApiResult<()> {
    let broken = |why: String| ApiError::Conflict(format!("refusing to checkpoint: {why}"));
    let start = from.unwrap_or_else(ChainHead::genesis);
    if to.seq < start.seq {
        return Err(broken(format!(
            "the audit log was truncated: head {} is behind the last checkpoint {}",
            to.seq, start.seq
        )));
    }
    if start.seq > 0 {
        let rows = state
            .repo
            .store
            .audit_query(&AuditQuery {
                after: start.seq - 1,
                limit: 1,
                ..AuditQuery::default()
            })
            .await?;
        let same = rows.first().is_some_and(|r| {
            r.seq == start.seq
                && r.hash == start.hash
                && charter_evidence::record_hash(&r.body) == r.hash
        });
        if !same {
            return Err(broken(format!(
                "record {} was rewritten since the last checkpoint",
                start.seq
            )));
        }
    }
    let mut verifier = ChainVerifier::starting_at(start.clone());
    let mut after = start.seq;
    while after < to.seq {
        let page = state
            .repo
            .store
            .audit_query(&AuditQuery {
                after,
                before: to.seq + 1,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for rec in &page {
            verifier
                .push(rec)
                .map_err(|brk| broken(format!("the audit chain is broken: {brk}")))?;
        }
    }
    if verifier.head() != *to {
        return Err(broken(format!(
            "the records after checkpoint {} do not lead to the head {}",
            start.seq, to.seq
        )));
    }
    Ok(())
}

/// Checkpoints every `every` while the head moves, writing to `sink`. Failures are logged
/// and counted (`charter_audit_checkpoint_failures_total`); the task keeps trying.
pub async fn run(state: Shared, sink: PathBuf, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match checkpoint_if_moved(&state, &sink).await {
            Ok(Some(cp)) => tracing::debug!(seq = cp.seq, "audit checkpoint written"),
            Ok(None) => {}
            Err(e) => {
                metrics::counter!("charter_audit_checkpoint_failures_total").increment(1);
                // Unexpected errors print as "internal error"; the log wants the cause.
                let why = match &e {
                    ApiError::Unexpected(cause) => format!("{cause:#}"),
                    other => other.to_string(),
                };
                tracing::error!(error = %why, sink = %sink.display(), "no audit checkpoint written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use charter_auth::SigningKey;

    fn key() -> (EvidenceState, Vec<PublicJwk>) {
        let signing = SigningKey::generate("evk_test".into()).unwrap();
        let published = vec![signing.public_jwk()];
        (
            EvidenceState {
                signing,
                published: published.clone(),
            },
            published,
        )
    }

    fn head(seq: u64, hash: &str) -> ChainHead {
        ChainHead {
            seq,
            hash: hash.to_owned(),
        }
    }

    fn signed() -> (Checkpoint, Vec<PublicJwk>) {
        let (k, keys) = key();
        let cp = Checkpoint::sign(
            &head(140, &"ab".repeat(32)),
            "2026-11-30T10:00:00Z".into(),
            &k,
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
        let (_, stranger) = key();
        assert!(
            verify_signature(&cp, &stranger).is_err(),
            "another key of the same kid"
        );
    }

    #[test]
    fn keys_come_as_a_jwks_or_a_list() {
        let (_, keys) = key();
        let jwks = json!({ "keys": keys });
        assert_eq!(parse_keys(&jwks).unwrap(), keys);
        assert_eq!(parse_keys(&json!(keys)).unwrap(), keys);
        assert!(parse_keys(&json!({ "keys": [{ "kty": "oct", "k": "AAAA" }] })).is_err());
        assert!(parse_keys(&json!("x")).is_err());
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
    fn the_sink_keeps_the_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        assert_eq!(read_last(&path).unwrap(), None);
        let (cp, _) = signed();
        append(&path, &cp).unwrap();
        let mut next = cp.clone();
        next.seq = 141;
        append(&path, &next).unwrap();
        assert_eq!(read_last(&path).unwrap(), Some(next.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(last_checkpoint(&text).unwrap(), Some(next.clone()));
        assert_eq!(text.lines().count(), 2);
        // A torn line (crash mid-write) is passed over, and closed before the next append.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":14")
            .unwrap();
        assert_eq!(read_last(&path).unwrap(), Some(next.clone()));
        assert!(last_checkpoint(&std::fs::read_to_string(&path).unwrap()).is_err());
        let mut third = cp.clone();
        third.seq = 142;
        append(&path, &third).unwrap();
        assert_eq!(read_last(&path).unwrap(), Some(third));
    }
}
