//! Offboarding through real `charter serve` processes: what a node registers for the probes
//! (never a wildcard bind address), a deployment with no gateway to probe, and several
//! control nodes on one PostgreSQL database, each probed over HTTP.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Cast, cast, charter, cli, free_port, wait_exit};

const ADMIN: &str = "offboarding-test-admin-token-0123456789";

/// A `charter serve` process; killed when dropped.
struct Node {
    child: Child,
    log: std::path::PathBuf,
    /// The control plane's announced URL, if it runs one.
    control: Option<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `charter serve ARGS` with its data in `dir` and waits until every listener it
/// runs has announced itself and the control plane (if any) answers.
async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)], control: bool) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("server.log");
    let child = charter()
        .args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("CHARTER_ADMIN_TOKEN", ADMIN)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut node = Node {
        child,
        log,
        control: None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    loop {
        let text = std::fs::read_to_string(&node.log).unwrap_or_default();
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("charter: control plane listening on "))
            .map(str::to_owned);
        let gateway_up = text.contains("charter: gateway listening on ");
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!("charter serve exited early ({status}):\n{text}");
        }
        if control && let Some(url) = url {
            let ok = http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                node.control = Some(url);
                return node;
            }
        } else if !control && gateway_up {
            return node;
        }
        assert!(
            Instant::now() < deadline,
            "charter serve did not come up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cast with an approved grant and a credential; returns it and the grant.
fn world(url: &str) -> (Cast, String) {
    let c = cast(url, ADMIN);
    let grant = c.approved_grant(url, "30d");
    cli(
        url,
        Some(&c.steward),
        &["credential", "issue", "--grant", &grant, "--json"],
    )
    .ok();
    (c, grant)
}

/// `partner offboard --json`: the exit code and the record.
fn offboard(url: &str, c: &Cast) -> (Option<i32>, Value, String) {
    let out = cli(
        url,
        Some(&c.steward),
        &[
            "partner",
            "offboard",
            &c.partner,
            "--reason",
            "Contract ended",
            "--json",
        ],
    );
    let rec = out.json();
    (out.code, rec, out.stderr)
}

fn targets<'a>(rec: &'a Value, name: &str) -> Vec<&'a str> {
    rec["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .map(|c| c["target"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_gateway_bound_to_a_wildcard_never_registers_it() {
    let dir = tempfile::tempdir().unwrap();
    // Without an advertised URL the node refuses to start, naming the flag, before it
    // creates anything.
    let mut child = charter()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "0.0.0.0:0",
            "--insecure-http",
            "--data-dir",
        ])
        .arg(dir.path().join("refused"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).await;
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("--gateway-advertise-url") && stderr.contains("wildcard"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("refused").exists(),
        "created the data dir anyway"
    );

    // With one, the advertised URL is what offboarding probes.
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let advertised = format!("http://127.0.0.1:{port}");
    let node = start(
        &dir.path().join("node"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--gateway-listen",
            &bind,
            "--gateway-advertise-url",
            &advertised,
            "--insecure-http",
        ],
        &[],
        true,
    )
    .await;
    let url = node.control.clone().unwrap();
    let (c, _) = world(&url);
    let (code, rec, stderr) = offboard(&url, &c);
    assert_eq!(code, Some(0), "{rec}\n{stderr}");
    assert_eq!(rec["status"], "completed", "{rec}");
    let probed = targets(&rec, "gateway_denies");
    assert_eq!(probed.len(), 1, "{rec}");
    assert!(
        probed[0].contains(&format!(" {advertised}/v1/authz/check ")),
        "{rec}"
    );
    assert!(!rec.to_string().contains("0.0.0.0"), "{rec}");
}

#[tokio::test]
async fn a_control_only_deployment_is_incomplete_unless_it_declares_no_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(
        &dir.path().join("a"),
        &["--role", "control", "--listen", "127.0.0.1:0"],
        &[],
        true,
    )
    .await;
    let url = node.control.clone().unwrap();
    let (c, _) = world(&url);
    let (code, rec, stderr) = offboard(&url, &c);
    assert_eq!(code, Some(3), "{rec}");
    assert_eq!(rec["status"], "incomplete", "{rec}");
    assert!(
        rec["incomplete_reason"]
            .as_str()
            .unwrap()
            .contains("no live gateway"),
        "{rec}"
    );
    assert!(stderr.contains("offboarding INCOMPLETE"), "{stderr}");
    // Everything reachable was still probed over HTTP and refused the partner.
    assert_eq!(targets(&rec, "token_endpoint_refuses").len(), 1, "{rec}");
    assert!(
        targets(&rec, "introspection_inactive")[0].contains(&format!(" {url}/oauth/introspect ")),
        "{rec}"
    );

    // A deployment that declares it runs no gateway completes on its control plane.
    let node = start(
        &dir.path().join("b"),
        &[
            "--role",
            "control",
            "--listen",
            "127.0.0.1:0",
            "--offboarding-require-gateway",
            "false",
        ],
        &[],
        true,
    )
    .await;
    let url = node.control.clone().unwrap();
    let (c, _) = world(&url);
    let (code, rec, _) = offboard(&url, &c);
    assert_eq!(code, Some(0), "{rec}");
    assert_eq!(rec["status"], "completed", "{rec}");
    assert!(targets(&rec, "gateway_denies").is_empty());
}

/// A fresh PostgreSQL database; dropped by [`drop_database`].
fn create_database() -> (String, String) {
    let base = std::env::var("CHARTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    // A unique name from a fresh temporary directory's random suffix.
    let tmp = tempfile::tempdir().unwrap();
    let suffix: String = tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = format!("charter_cli_off_{}_{suffix}", std::process::id());
    let ok = Command::new("psql")
        .args([&base, "-q", "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .unwrap();
    assert!(ok.success(), "could not create {name}");
    (format!("{}/{name}", base.trim_end_matches('/')), name)
}

fn drop_database(name: &str) {
    let base = std::env::var("CHARTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let _ = Command::new("psql")
        .args([
            &base,
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .status();
}

#[tokio::test]
async fn two_control_nodes_on_one_postgres_are_both_probed() {
    let (db, name) = create_database();
    let dir = tempfile::tempdir().unwrap();
    // Nodes of one deployment share the master key.
    let key = "Y2hhcnRlciBvZmZib2FyZGluZyB0ZXN0IGtleSAzMmI=";
    let env = [
        ("CHARTER_MASTER_KEY", key),
        ("CHARTER_DATABASE", db.as_str()),
    ];
    // ...and one issuer: a token minted at one node is judged by the others.
    const ISSUER: &str = "http://charter.internal";
    let a = start(
        &dir.path().join("a"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
            "--issuer",
            ISSUER,
        ],
        &env,
        true,
    )
    .await;
    let b = start(
        &dir.path().join("b"),
        &[
            "--role",
            "control",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            ISSUER,
        ],
        &env,
        true,
    )
    .await;
    let (url_a, url_b) = (a.control.clone().unwrap(), b.control.clone().unwrap());
    let (c, _) = world(&url_a);
    let (code, rec, stderr) = offboard(&url_a, &c);
    let log_b = std::fs::read_to_string(&b.log).unwrap_or_default();
    drop(a);
    drop(b);
    drop_database(&name);
    assert_eq!(code, Some(0), "{rec}\n{stderr}\n{log_b}");
    assert_eq!(rec["status"], "completed", "{rec}");
    for check in [
        "token_endpoint_refuses",
        "introspection_inactive",
        "introspection_accepts",
    ] {
        let t = targets(&rec, check);
        assert_eq!(t.len(), 2, "{check}: {rec}");
        for url in [&url_a, &url_b] {
            assert!(
                t.iter().any(|t| t.contains(&format!(" {url}/oauth/"))),
                "{check} at {url}: {rec}"
            );
        }
    }
    assert_eq!(targets(&rec, "gateway_denies").len(), 1, "{rec}");
}
