//! `charter demo` — the README's first command — starts, seeds its whole world through the
//! admin API, and the credential it prints really gets a token that the gateway honours.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::{charter, wait_exit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_seeds_its_world_and_its_credential_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = charter()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--upstream-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Read the "what to try next" block until the demo says it is running.
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.contains("Press Ctrl-C");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    let text = lines.join("\n");
    assert!(
        text.contains("Press Ctrl-C"),
        "the demo did not come up:\n{text}"
    );
    let export = lines
        .iter()
        .find(|l| l.contains("export CLIENT_ID="))
        .expect("a demo client credential");
    let field = |name: &str| {
        export
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let (client_id, secret) = (field("CLIENT_ID"), field("CLIENT_SECRET"));
    // Where it listens, as it says (the ports were 0).
    let url = |label: &str| {
        lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|rest| rest.trim().to_owned())
            .filter(|u| u.starts_with("http://127.0.0.1:") && !u.ends_with(":0"))
            .unwrap_or_else(|| panic!("no {label} address in:\n{text}"))
    };
    let (control, gateway) = (url("control plane "), url("gateway "));

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{control}/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: serde_json::Value = resp.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    // Acme's grant reaches orders through the gateway to the demo upstream.
    let resp = http
        .get(format!("{gateway}/orders/orders/1001"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_exit(&mut child, std::time::Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
}
