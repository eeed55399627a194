//! `charter demo` — the README's first command — starts, seeds its whole world through the
//! admin API, and the credential it prints really gets a token that the gateway honours;
//! the commands it suggests run as printed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::{BIN, Reaped, charter, free_port, wait_exit};

/// The commands of the closing block under the line starting with `header`: its lines
/// indented by exactly two spaces (deeper lines say what to expect).
fn commands(lines: &[String], header: &str) -> Vec<String> {
    lines
        .iter()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_seeds_its_world_and_its_credential_works() {
    let (control, gateway, upstream) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut reaped = Reaped(
        charter()
            .args([
                "demo",
                "--listen",
                &format!("127.0.0.1:{control}"),
                "--gateway-listen",
                &format!("127.0.0.1:{gateway}"),
            ])
            .args([
                "--upstream-listen",
                &format!("127.0.0.1:{upstream}"),
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let child = &mut reaped.0;
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

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://127.0.0.1:{control}/oauth/token"))
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
        .get(format!("http://127.0.0.1:{gateway}/orders/orders/1001"))
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

    // Every token file is there, owner-only.
    for name in [
        "admin",
        "orders-team",
        "partner-office",
        "alice",
        "audit-team",
    ] {
        let file = data.join(format!("{name}.token"));
        let meta = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
    }
    assert!(
        text.contains(&format!("http://127.0.0.1:{upstream}")),
        "{text}"
    );

    // The suggested commands, verbatim, in a shell that finds `charter` on its PATH.
    let mut script = commands(&lines, "Try next");
    let calls = commands(&lines, "Call the orders API");
    assert!(script.len() >= 4 && calls.len() >= 5, "{text}");
    script.extend(calls);
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-ec", &script.join("\n")])
            .env_clear()
            .env("PATH", path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("audit chain intact"), "{out}");
    // The allowed call reached the upstream; the denied one says why.
    assert!(out.contains("\"tracking\":\"ACM-7731-0042\""), "{out}");
    assert!(
        out.contains(r#"{"error":"access_denied","reason":"scope_not_granted"}"#),
        "{out}"
    );
    let tail: Vec<&str> = out.lines().rev().take(5).collect();
    assert!(
        tail.iter()
            .any(|l| l.contains("access.decision") && l.ends_with("scope_not_granted")),
        "{out}"
    );
    assert!(tail.iter().any(|l| l.contains("token.issue")), "{out}");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_exit(child, std::time::Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
}
