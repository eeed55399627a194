//! `charter serve` as a process: start-up, the bootstrap token file, both listeners,
//! SIGTERM, and the refusal to serve plaintext on a non-loopback address.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::{Server, charter, wait_exit};

#[tokio::test]
async fn serve_bootstraps_answers_on_both_listeners_and_stops_on_sigterm() {
    let mut server = Server::start().await;

    let token_file = server.data_dir().join("admin.token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin.token mode is {mode:o}");
    let token = server.admin_token();
    assert!(token.len() >= 24);

    {
        let http = reqwest::Client::new();
        for base in [&server.control, &server.gateway] {
            assert!(
                !base.ends_with(":0"),
                "announced the requested port: {base}"
            );
            let resp = http.get(format!("{base}/healthz")).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{base}/healthz");
        }
        // Started with --listen 127.0.0.1:0 and no --issuer: the issuer is the bound address.
        let meta: serde_json::Value = http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                server.control
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["issuer"], server.control.as_str(), "{meta}");
        assert_eq!(
            meta["token_endpoint"],
            format!("{}/oauth/token", server.control),
            "{meta}"
        );
    }

    let log = server.log();
    assert!(
        log.contains(&format!("control plane listening on {}", server.control)),
        "{log}"
    );
    assert!(
        log.contains(&format!("gateway listening on {}", server.gateway)),
        "{log}"
    );
    assert!(log.contains("database: sqlite"), "{log}");
    assert!(
        log.contains(&format!(
            "admin token written to {} (mode 0600); rotate it after first use",
            token_file.display()
        )),
        "{log}"
    );
    assert!(!log.contains(&token), "the log shows the admin token");

    let status = server.terminate().await;
    assert!(status.success(), "exit status {status}: {}", server.log());
}

#[tokio::test]
async fn serve_refuses_plaintext_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = charter()
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--gateway-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).await;
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("--insecure-http"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "created the data dir anyway"
    );
}
