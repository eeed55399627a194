//! `charter audit verify --checkpoint`: a running `charter serve` appends signed checkpoints
//! of its chain head to `<data-dir>/checkpoints.jsonl`; an auditor holding one detects a
//! database replaced by a shorter (still perfectly chained) one, which plain
//! `charter audit verify` cannot. Also: offline keys (`--keys FILE`) and a forged line.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{announced, charter, cli, wait_exit};

pub(crate) const ADMIN: &str = "checkpoint-test-admin-token-0123456789";

/// `charter serve` over `data`, checkpointing every second (from a config file).
pub(crate) struct Node {
    child: Child,
    pub(crate) url: String,
    log: PathBuf,
}

impl Node {
    pub(crate) async fn start(dir: &Path, data: &Path, name: &str) -> Self {
        let config = dir.join("charter.toml");
        std::fs::write(&config, "checkpoint_interval_seconds = 1\n").unwrap();
        let log = dir.join(format!("{name}.log"));
        let mut child = charter()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"])
            .env("CHARTER_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let (url, _) = announced(&mut child, &log).await;
        let mut node = Self { child, url, log };
        let (http, health) = (reqwest::Client::new(), format!("{}/healthz", node.url));
        node.until("the control plane answers", || async {
            http.get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        node
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` (a start-up or background-task wait, not an assertion on timing).
    pub(crate) async fn until<F: std::future::Future<Output = bool>>(
        &mut self,
        what: &str,
        mut ready: impl FnMut() -> F,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready().await {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("charter serve exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain until {what}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = wait_exit(&mut self.child, Duration::from_secs(20)).await;
        assert!(status.success(), "{status}: {}", self.log());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn last_seq(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            let line = t.lines().rev().find(|l| !l.trim().is_empty())?.to_owned();
            serde_json::from_str::<serde_json::Value>(&line).ok()?["seq"].as_u64()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_checkpoint_catches_a_database_replaced_by_a_shorter_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sink = data.join("checkpoints.jsonl");
    let mut node = Node::start(dir.path(), &data, "first").await;
    let url = node.url.clone();

    // Some history, then wait for the background task to checkpoint past it.
    for i in 0..5 {
        let out = cli(
            &url,
            Some(ADMIN),
            &[
                "principal",
                "add",
                "--name",
                &format!("ops-{i}"),
                "--role",
                "auditor",
                "--json",
            ],
        );
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let head = cli(&url, Some(ADMIN), &["audit", "verify", "--json"])
        .ok()
        .json()["head"]["seq"]
        .as_u64()
        .unwrap();
    node.until("a checkpoint covers the history", || async {
        last_seq(&sink) >= head
    })
    .await;

    // The auditor keeps a copy of the checkpoints and of the evidence keys.
    let held = dir.path().join("held.jsonl");
    std::fs::copy(&sink, &held).unwrap();
    let held_str = held.to_str().unwrap();
    let cp_seq = last_seq(&held);
    let keys = reqwest::get(format!("{url}/.well-known/charter-evidence-keys"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys_file = dir.path().join("evidence-keys.json");
    std::fs::write(&keys_file, keys).unwrap();
    let keys_str = keys_file.to_str().unwrap();

    let out = cli(
        &url,
        Some(ADMIN),
        &["audit", "verify", "--checkpoint", held_str],
    )
    .ok();
    assert!(out.stdout.starts_with("audit chain intact: "), "{out:?}");
    assert!(
        out.stdout.contains(&format!("checkpoint {cp_seq} of ")),
        "{out:?}"
    );
    let out = cli(
        &url,
        Some(ADMIN),
        &[
            "audit",
            "verify",
            "--checkpoint",
            held_str,
            "--keys",
            keys_str,
            "--json",
        ],
    )
    .ok();
    assert_eq!(out.json()["valid"], true);
    assert_eq!(out.json()["checkpoint"]["seq"], cp_seq);

    // A forged line: the signature gives it away.
    let text = std::fs::read_to_string(&held).unwrap();
    let mut line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    line["seq"] = json!(cp_seq - 1);
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(&forged, format!("{line}\n")).unwrap();
    let out = cli(
        &url,
        Some(ADMIN),
        &["audit", "verify", "--checkpoint", forged.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        "audit chain BROKEN: checkpoint signature: does not verify"
    );

    // The database is swapped for a fresh one: a shorter, perfectly chained log.
    node.stop().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("charter.db{suffix}")));
    }
    let mut node = Node::start(dir.path(), &data, "second").await;
    let url = node.url.clone();
    let plain = cli(&url, Some(ADMIN), &["audit", "verify"]).ok();
    assert!(
        plain.stdout.starts_with("audit chain intact: "),
        "the chain alone sees nothing: {plain:?}"
    );

    let out = cli(
        &url,
        Some(ADMIN),
        &[
            "audit",
            "verify",
            "--checkpoint",
            held_str,
            "--keys",
            keys_str,
        ],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stdout
            .starts_with("audit chain BROKEN: truncated: head ")
            && out
                .stdout
                .contains(&format!("is behind checkpoint {cp_seq}")),
        "{out:?}"
    );
    // With the new server's keys, the old checkpoint's key is unknown there.
    let out = cli(
        &url,
        Some(ADMIN),
        &["audit", "verify", "--checkpoint", held_str],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stdout.contains("no key in keys has kid"), "{out:?}");

    // The server itself refuses to sign a head that does not extend its last checkpoint.
    node.until("the server reports the truncation", || async {
        std::fs::read_to_string(dir.path().join("second.log"))
            .unwrap_or_default()
            .contains("truncated")
    })
    .await;
    assert_eq!(
        last_seq(&sink),
        cp_seq,
        "nothing was signed over the shorter log"
    );
    node.stop().await;
}
