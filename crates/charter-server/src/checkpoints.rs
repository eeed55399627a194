//! Signed checkpoints of the audit chain head, written outside the database: the server's
//! half. The line format, the signature and the auditor's judgement are
//! `charter_evidence::checkpoint` (pure, shared with `charter audit verify --checkpoint`);
//! this module signs with the evidence key, appends to the sink file (by default
//! `<data_dir>/checkpoints.jsonl`, which an auditor copies away), reads its last line back,
//! and schedules checkpoints in the background. The background task also pushes every line
//! to the configured sinks outside the data directory ([`Forwarder`]): another file
//! (`[checkpoints] sink_file`) and an HTTP witness (`[checkpoints] witness_url`, one POST
//! per line), so that one who can write the database and the data directory cannot rewrite
//! every copy.
//!
//! Invariants:
//! - a checkpoint is only signed for a head that extends the previous checkpoint in the file:
//!   the records since it are verified first (`charter_store::verify_chain_from`, the one
//!   chain-verify loop), so the server never vouches for a log that was truncated or
//!   rewritten behind a checkpoint it already gave out (it refuses, and says so in its log
//!   and metrics, until someone looks);
//! - the file line is written (and synced) before the `audit.checkpoint` record that
//!   announces it; that record moves the head past the checkpoint, which is expected;
//! - the outside sinks never hold the writer up: a line they could not take stays queued (in
//!   order, bounded) and is offered again at the next tick; failures are logged and counted
//!   (`charter_audit_checkpoint_sink_failures_total{sink}`).

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use charter_evidence::checkpoint::Checkpoint;
use charter_evidence::{ChainHead, action};
use charter_store::{AuditQuery, Unit};
use serde_json::json;

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

/// Signs `head` at time `at` with the evidence key.
pub fn sign(head: &ChainHead, at: String, key: &EvidenceState) -> ApiResult<Checkpoint> {
    Checkpoint::sign(head, at, key.kid(), |m| key.sign(m))
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("checkpoint signature: {e}")))
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
    let key = state.keys.evidence_current(&state.repo).await?;
    let cp = sign(&head, state.now().to_string(), &key)?;
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
    let reached =
        charter_store::verify_chain_from(state.repo.store.as_ref(), start.clone(), Some(to.seq))
            .await?
            .map_err(|brk| broken(format!("the audit chain is broken: {brk}")))?;
    if reached != *to {
        return Err(broken(format!(
            "the records after checkpoint {} do not lead to the head {}",
            start.seq, to.seq
        )));
    }
    Ok(())
}

/// The checkpoint sinks outside the data directory, and the lines each still owes.
pub struct Forwarder {
    file: Option<PathBuf>,
    witness: Option<(reqwest::Client, reqwest::Url)>,
    pending_file: VecDeque<Checkpoint>,
    pending_witness: VecDeque<Checkpoint>,
}

/// Lines kept per sink while it is unreachable (a week of checkpoints a minute apart); the
/// oldest are dropped beyond that, and counted.
const MAX_PENDING: usize = 10_000;

impl Forwarder {
    /// Sinks from the configuration: another file, and a witness URL (http or https) that
    /// receives each line by POST.
    ///
    /// # Errors
    ///
    /// A witness URL that is not an http(s) URL, or an HTTP client that cannot be built.
    pub fn new(file: Option<PathBuf>, witness_url: Option<&str>) -> anyhow::Result<Self> {
        let witness = match witness_url {
            None => None,
            Some(url) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| anyhow::anyhow!("checkpoints.witness_url {url:?}: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    anyhow::bail!("checkpoints.witness_url {url:?}: not an http(s) URL");
                }
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?;
                Some((client, parsed))
            }
        };
        Ok(Self {
            file,
            witness,
            pending_file: VecDeque::new(),
            pending_witness: VecDeque::new(),
        })
    }

    /// Queues a new checkpoint for every configured sink.
    pub fn push(&mut self, cp: &Checkpoint) {
        let queues = [
            (self.file.is_some(), &mut self.pending_file, "file"),
            (self.witness.is_some(), &mut self.pending_witness, "witness"),
        ];
        for (configured, queue, sink) in queues {
            if !configured {
                continue;
            }
            if queue.len() >= MAX_PENDING {
                queue.pop_front();
                metrics::counter!("charter_audit_checkpoint_sink_dropped_total", "sink" => sink)
                    .increment(1);
            }
            queue.push_back(cp.clone());
        }
    }

    /// Offers every queued line to its sink, oldest first, stopping at a sink's first
    /// failure (kept for the next call). Returns how many lines are still owed.
    pub async fn flush(&mut self) -> usize {
        if let Some(path) = self.file.clone() {
            while let Some(cp) = self.pending_file.front().cloned() {
                let target = path.clone();
                match blocking(move || append(&target, &cp)).await {
                    Ok(()) => {
                        self.pending_file.pop_front();
                    }
                    Err(e) => {
                        sink_failed("file", &path.display().to_string(), &e.to_string());
                        break;
                    }
                }
            }
        }
        if let Some((client, url)) = &self.witness {
            while let Some(cp) = self.pending_witness.front() {
                let line = match serde_json::to_string(cp) {
                    Ok(line) => line,
                    Err(_) => {
                        self.pending_witness.pop_front();
                        continue;
                    }
                };
                let sent = client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(line)
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        self.pending_witness.pop_front();
                    }
                    Ok(resp) => {
                        sink_failed(
                            "witness",
                            url.as_str(),
                            &format!("answered {}", resp.status()),
                        );
                        break;
                    }
                    Err(e) => {
                        sink_failed("witness", url.as_str(), &e.to_string());
                        break;
                    }
                }
            }
        }
        self.pending_file.len() + self.pending_witness.len()
    }
}

fn sink_failed(sink: &'static str, target: &str, why: &str) {
    metrics::counter!("charter_audit_checkpoint_sink_failures_total", "sink" => sink).increment(1);
    tracing::warn!(
        sink,
        target,
        error = why,
        "checkpoint not delivered; retrying at the next tick"
    );
}

/// Checkpoints every `every` while the head moves, writing to `sink` and forwarding each
/// new line to the outside sinks of `forward`. Failures are logged and counted
/// (`charter_audit_checkpoint_failures_total`); the task keeps trying.
pub async fn run(state: Shared, sink: PathBuf, mut forward: Forwarder, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match checkpoint_if_moved(&state, &sink).await {
            Ok(Some(cp)) => {
                tracing::debug!(seq = cp.seq, "audit checkpoint written");
                forward.push(&cp);
            }
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
        forward.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use charter_auth::SigningKey;
    use charter_evidence::checkpoint::{last_checkpoint, parse_keys, verify_signature};

    fn signed() -> (Checkpoint, Vec<serde_json::Value>) {
        let signing = SigningKey::generate("evk_test".into()).unwrap();
        let mut jwk = serde_json::to_value(signing.public_jwk()).unwrap();
        jwk["not_before"] = json!("2026-11-01T00:00:00Z");
        jwk["not_after"] = json!(null);
        let published = vec![jwk];
        let keys = parse_keys(&json!({ "keys": published })).unwrap();
        let key = EvidenceState { signing, published };
        let head = ChainHead {
            seq: 140,
            hash: "ab".repeat(32),
        };
        (
            sign(&head, "2026-11-30T10:00:00Z".into(), &key).unwrap(),
            keys,
        )
    }

    #[test]
    fn the_evidence_key_signs_what_the_published_keys_verify() {
        let (cp, keys) = signed();
        assert_eq!((cp.seq, cp.kid.as_str()), (140, "evk_test"));
        assert_eq!(verify_signature(&cp, &keys), Ok(()));
        let (_, other) = signed();
        assert!(
            verify_signature(&cp, &other).is_err(),
            "another evidence key"
        );
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

#[cfg(test)]
mod sink_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    fn checkpoint(seq: u64) -> Checkpoint {
        Checkpoint {
            seq,
            hash: "ab".repeat(32),
            at: "2026-11-30T10:00:00Z".into(),
            kid: "evk_test".into(),
            signature: "h..s".into(),
        }
    }

    /// A witness that refuses its first `refuse` requests (503), then keeps every line.
    async fn witness(refuse: usize) -> (String, Arc<Mutex<Vec<String>>>) {
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (kept, calls) = (lines.clone(), Arc::new(AtomicUsize::new(0)));
        let app = axum::Router::new().route(
            "/w",
            axum::routing::post(move |body: String| {
                let (kept, calls) = (kept.clone(), calls.clone());
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < refuse {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    kept.lock().unwrap().push(body);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/w"), lines)
    }

    #[tokio::test]
    async fn a_line_the_witness_refused_is_offered_again_in_order_at_the_next_tick() {
        let (url, lines) = witness(1).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("outside.jsonl");
        let mut forward = Forwarder::new(Some(file.clone()), Some(&url)).unwrap();
        forward.push(&checkpoint(7));
        assert_eq!(forward.flush().await, 1, "refused: still owed");
        assert_eq!(
            read_last(&file).unwrap(),
            Some(checkpoint(7)),
            "the file took it"
        );
        forward.push(&checkpoint(9));
        assert_eq!(forward.flush().await, 0);
        let got: Vec<Checkpoint> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got, vec![checkpoint(7), checkpoint(9)]);
        assert_eq!(read_last(&file).unwrap(), Some(checkpoint(9)));
    }

    #[tokio::test]
    async fn an_unreachable_witness_never_holds_the_writer_and_keeps_the_lines() {
        let dead = format!("http://127.0.0.1:{}/w", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let mut forward = Forwarder::new(None, Some(&dead)).unwrap();
        forward.push(&checkpoint(1));
        forward.push(&checkpoint(2));
        assert_eq!(forward.flush().await, 2);
        assert!(Forwarder::new(None, Some("ftp://example.com/")).is_err());
        assert!(Forwarder::new(None, Some("not a url")).is_err());
    }
}
