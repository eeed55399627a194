//! Integration tests for the `charter` binary (one test binary): `charter serve` as a real
//! process, and the admin verbs end to end against it. Servers listen on port 0 and tests
//! learn the bound addresses from the start-up lines, so no port is reserved in advance.

// clippy.toml exempts `#[test]` functions; the shared helpers here panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod checkpoints;
mod cli;
mod crash;
mod credentials;
mod demo;
mod evidence;
mod lifecycle;
mod offboarding;
mod readme;
mod serve;
mod trust;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_charter");

/// A port nothing listens on right now (for tests of a refused connection only: servers
/// listen on port 0).
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The base URLs `charter serve` announces on stderr once it listens — `charter: control
/// plane listening on URL` and `charter: gateway listening on URL` — read from its log.
/// Fails if the process exits first or says nothing for a minute.
pub async fn announced(child: &mut Child, log: &Path) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let url = |what: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("charter: {what} listening on ")))
                .map(str::to_owned)
        };
        if let (Some(control), Some(gateway)) = (url("control plane"), url("gateway")) {
            return (control, gateway);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("charter serve exited early ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "charter serve did not say where it listens:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `charter` command with a clean environment.
pub fn charter() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().stdin(Stdio::null());
    cmd
}

/// `charter serve` on loopback port 0 (both listeners) and a temporary data directory.
pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// Base URLs of the bound listeners, as the server announced them.
    pub control: String,
    pub gateway: String,
}

impl Server {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = charter()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let (control, gateway) = announced(&mut child, &log).await;
        let mut server = Self {
            child,
            dir,
            control,
            gateway,
        };
        server.wait_healthy().await;
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("charter serve exited early ({status}):\n{}", self.log());
            }
            let ok = http
                .get(format!("{}/healthz", self.control))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "charter serve did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        wait_exit(&mut self.child, Duration::from_secs(20)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A child process that is killed when dropped, so a failing test leaves nothing running
/// (a leftover demo would also hold the test's stderr open).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for a process to exit; kills it and fails after `limit`.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The outcome of one CLI call.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "command failed: {self:?}");
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }
}

/// Runs `charter ARGS` against `server` with `token` in CHARTER_TOKEN.
pub fn cli(server: &str, token: Option<&str>, args: &[&str]) -> Out {
    cli_env(server, token, &[], args)
}

/// [`cli`] with further environment variables.
pub fn cli_env(server: &str, token: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = charter();
    cmd.env("CHARTER_SERVER", server)
        .envs(env.iter().copied())
        .args(args);
    if let Some(t) = token {
        cmd.env("CHARTER_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// The `id` of a JSON reply.
pub fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A string member of a JSON reply.
pub fn text(v: &serde_json::Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// The cast most end-to-end tests start from, created through the CLI: an approver
/// (alice), a steward, an API owner who published `examples/orders.toml`, and a direct
/// partner "Acme Logistics" in `eu` owned by the approver.
pub struct Cast {
    pub approver: String,
    pub approver_token: String,
    pub steward: String,
    pub owner: String,
    pub api: String,
    pub partner: String,
}

pub fn cast(url: &str, admin: &str) -> Cast {
    let add = |name: &str, role: &str| {
        let v = cli(
            url,
            Some(admin),
            &["principal", "add", "--name", name, "--role", role, "--json"],
        )
        .ok()
        .json();
        (id(&v), text(&v, "token"))
    };
    let (approver, approver_token) = add("alice", "approver");
    let (_, steward) = add("partner-office", "steward");
    let (_, owner) = add("orders-team", "api_owner");
    let orders = example("orders.toml");
    let api = cli(
        url,
        Some(&owner),
        &["api", "publish", "-f", orders.to_str().unwrap(), "--json"],
    )
    .ok()
    .json();
    let partner = cli(
        url,
        Some(&steward),
        &[
            "partner",
            "add",
            "--name",
            "Acme Logistics",
            "--kind",
            "direct",
            "--region",
            "eu",
            "--owner",
            &approver,
            "--json",
        ],
    )
    .ok()
    .json();
    Cast {
        approver,
        approver_token,
        steward,
        owner,
        api: id(&api),
        partner: id(&partner),
    }
}

impl Cast {
    /// The steward requests an `orders:read` grant for Acme lasting `duration` and the
    /// approver approves it; returns the grant id.
    pub fn approved_grant(&self, url: &str, duration: &str) -> String {
        let grant = cli(
            url,
            Some(&self.steward),
            &[
                "grant",
                "request",
                "--partner",
                &self.partner,
                "--api",
                &self.api,
                "--use-case",
                "Shipment tracking",
                "--scope",
                "orders:read",
                "--ceiling",
                "confidential",
                "--region",
                "eu",
                "--for",
                duration,
                "--json",
            ],
        )
        .ok()
        .json();
        let grant = id(&grant);
        cli(
            url,
            Some(&self.approver_token),
            &[
                "grant",
                "approve",
                &grant,
                "--justification",
                "Contract ACM-2025-17",
            ],
        )
        .ok();
        grant
    }
}

/// A loopback port that was free a moment ago (for tests that must print fixed addresses).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
