//! `charter audit …`: the newest audit records (`tail`), and a full verification of the
//! hash chain (`verify`: exit 0 when intact, 2 when broken). With `--checkpoint FILE`,
//! `verify` also holds the server to the last signed checkpoint in FILE: the signature must
//! verify with the evidence keys (the server's published ones, or `--keys` for an offline
//! copy), the chain must reach the checkpoint's seq and hold exactly its hash there — which
//! catches a log truncated or rewritten behind the checkpoint.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use charter_evidence::BundleError;
use charter_evidence::checkpoint::{self, ChainView, Checkpoint};
use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{connect, emit, emit_named, items};
use crate::GlobalArgs;
use crate::client::{Client, http_error};
use crate::table::{Table, field, time_secs};

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// The newest audit records, oldest first.
    Tail {
        /// How many records (1–500).
        #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
        n: u32,
    },
    /// Recompute the whole hash chain on the server (and hold it to a signed checkpoint).
    Verify {
        /// A checkpoints file (JSON lines, as the server appends to
        /// `<data-dir>/checkpoints.jsonl`); its last line is checked.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The evidence public keys: a JSON file (`{"keys": [...]}`) or an http(s) URL.
        /// Default: the server's `/.well-known/charter-evidence-keys`.
        #[arg(long, value_name = "FILE_OR_URL", requires = "checkpoint")]
        keys: Option<String>,
    },
}

/// Exit code of `audit verify` for a broken chain.
const CHAIN_BROKEN: u8 = 2;

pub async fn run(global: &GlobalArgs, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    let client = connect(global)?;
    match cmd {
        AuditCmd::Tail { n } => {
            let query = [("order", "desc".to_owned()), ("limit", n.to_string())];
            let reply = client.get(&["v1", "audit"], &query).await?;
            emit_named(global, &client, &reply, &["actor", "target"], |r, names| {
                let mut t = Table::new(&["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "REASON"]);
                for item in items(r).iter().rev() {
                    let rec = item.get("record").unwrap_or(&Value::Null);
                    t.row(vec![
                        field(item, "seq"),
                        time_secs(rec, "at"),
                        names.field(rec, "actor"),
                        field(rec, "action"),
                        names.field(rec, "target"),
                        field(rec, "reason"),
                    ]);
                }
                t.print();
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify {
            checkpoint: Some(file),
            keys,
        } => verify_checkpoint(global, &client, &file, keys.as_deref()).await,
        AuditCmd::Verify {
            checkpoint: None, ..
        } => {
            let reply = client
                .send(Method::GET, &["v1", "audit", "verify"], &[], None)
                .await?;
            match reply.status {
                StatusCode::OK => {
                    emit(global, &reply.body, |b| {
                        let head = b.get("head").unwrap_or(&Value::Null);
                        println!(
                            "audit chain intact: {} records, head {} {}",
                            field(b, "records"),
                            field(head, "seq"),
                            field(head, "hash")
                        );
                    })?;
                    Ok(ExitCode::SUCCESS)
                }
                StatusCode::CONFLICT if reply.body.get("valid") == Some(&Value::Bool(false)) => {
                    emit(global, &reply.body, |b| {
                        println!(
                            "audit chain BROKEN at record {}: {}",
                            field(b, "first_bad_record"),
                            field(b, "error_description")
                        );
                    })?;
                    Ok(ExitCode::from(CHAIN_BROKEN))
                }
                status => Err(http_error(status, &reply.body).into()),
            }
        }
    }
}

/// Where the evidence keys come from.
#[derive(Debug, PartialEq, Eq)]
enum KeySource {
    /// The server's `/.well-known/charter-evidence-keys`.
    Server,
    Url(String),
    File(PathBuf),
}

impl KeySource {
    fn parse(arg: Option<&str>) -> Self {
        match arg {
            None => Self::Server,
            Some(a) if a.starts_with("https://") || a.starts_with("http://") => {
                Self::Url(a.to_owned())
            }
            Some(a) => Self::File(PathBuf::from(a)),
        }
    }
}

async fn fetch_keys(client: &Client, source: &KeySource) -> anyhow::Result<Value> {
    let url = match source {
        KeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the keys file {}", path.display()))?;
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()));
        }
        KeySource::Url(url) => reqwest::Url::parse(url).with_context(|| format!("--keys {url}"))?,
        KeySource::Server => client.url(&[".well-known", "charter-evidence-keys"], &[])?,
    };
    let reply = client.execute(client.request(Method::GET, url)).await?;
    if !reply.status.is_success() {
        return Err(http_error(reply.status, &reply.body).into());
    }
    Ok(reply.body)
}

/// The last checkpoint of a checkpoints file.
fn read_checkpoint(file: &Path) -> anyhow::Result<Checkpoint> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the checkpoint file {}", file.display()))?;
    checkpoint::last_checkpoint(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        .ok_or_else(|| anyhow::anyhow!("{} holds no checkpoint", file.display()))
}

/// `audit verify --checkpoint FILE [--keys FILE_OR_URL]`.
async fn verify_checkpoint(
    global: &GlobalArgs,
    client: &Client,
    file: &Path,
    keys: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let cp = read_checkpoint(file)?;
    let keys = fetch_keys(client, &KeySource::parse(keys)).await?;
    let keys = checkpoint::parse_keys(&keys).map_err(|e| match e {
        BundleError::Keys(why) => anyhow::anyhow!("evidence keys: {why}"),
        other => anyhow::anyhow!("evidence keys: {other}"),
    })?;
    let verified = client
        .send(Method::GET, &["v1", "audit", "verify"], &[], None)
        .await?;
    let page = if cp.seq > 0 {
        let query = [
            ("after", (cp.seq - 1).to_string()),
            ("limit", "1".to_owned()),
        ];
        Some(client.get(&["v1", "audit"], &query).await?)
    } else {
        None
    };
    let view = ChainView::from_replies(verified.status.as_u16(), &verified.body, page.as_ref())
        .map_err(|e| match verified.status {
            StatusCode::OK | StatusCode::CONFLICT => anyhow::anyhow!(e),
            status => http_error(status, &verified.body).into(),
        })?;
    let outcome = checkpoint::verify(&cp, &keys, &view);
    let summary = json!({ "seq": cp.seq, "hash": cp.hash, "at": cp.at, "kid": cp.kid });
    match outcome {
        Ok(head) => {
            let reply = json!({ "valid": true, "head": head, "checkpoint": summary });
            emit(global, &reply, |_| {
                println!(
                    "audit chain intact: head {} {}; checkpoint {} of {} (key {}) holds",
                    head.seq, head.hash, cp.seq, cp.at, cp.kid
                );
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            let reply = json!({ "valid": false, "error": why.to_string(), "checkpoint": summary });
            emit(global, &reply, |_| println!("audit chain BROKEN: {why}"))?;
            Ok(ExitCode::from(CHAIN_BROKEN))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_server_a_url_or_a_file() {
        assert_eq!(KeySource::parse(None), KeySource::Server);
        assert_eq!(
            KeySource::parse(Some(
                "https://charter.example.com/.well-known/charter-evidence-keys"
            )),
            KeySource::Url("https://charter.example.com/.well-known/charter-evidence-keys".into())
        );
        assert_eq!(
            KeySource::parse(Some("keys.json")),
            KeySource::File("keys.json".into())
        );
    }

    #[test]
    fn the_last_line_of_the_file_is_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        std::fs::write(&file, "").unwrap();
        assert!(
            read_checkpoint(&file)
                .unwrap_err()
                .to_string()
                .contains("no checkpoint")
        );
        let line = |seq: u64| {
            format!(
                "{{\"seq\":{seq},\"hash\":\"ab\",\"at\":\"2026-11-30T10:00:00Z\",\"kid\":\"evk_1\",\"signature\":\"h..s\"}}\n"
            )
        };
        std::fs::write(&file, format!("{}{}\n", line(4), line(9))).unwrap();
        assert_eq!(read_checkpoint(&file).unwrap().seq, 9);
        std::fs::write(&file, format!("{}{{\"seq\":", line(4))).unwrap();
        assert!(
            read_checkpoint(&file).is_err(),
            "an auditor's copy must end in a whole line"
        );
        assert!(read_checkpoint(&dir.path().join("missing")).is_err());
    }
}
