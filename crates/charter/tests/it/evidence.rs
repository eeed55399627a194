//! `charter evidence verify` against a running `charter serve`, as an auditor uses it: a
//! bundle held to the auditor's checkpoints and to an earlier bundle, and one usage record
//! proved against the usage root the bundle commits (`docs/auditor.md`).

use serde_json::Value;

use crate::checkpoints::{ADMIN, Node, last_seq};
use crate::{cast, cli, cli_env, id, text};

async fn get(url: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_exported_bundle_holds_to_checkpoints_an_earlier_bundle_and_usage_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sink = data.join("checkpoints.jsonl");
    let mut node = Node::start(dir.path(), &data, "evidence").await;
    let url = node.url.clone();

    // A grant, a credential, and one access token: one usage record.
    let cast = cast(&url, ADMIN);
    let grant = cast.approved_grant(&url, "30d");
    let issued = cli(
        &url,
        Some(&cast.steward),
        &["credential", "issue", "--grant", &grant, "--json"],
    )
    .ok()
    .json();
    let secret = text(&issued, "client_secret");
    let client_id = text(&issued, "client_id");
    assert!(!id(&issued).is_empty());
    cli_env(
        &url,
        None,
        &[("CHARTER_CLIENT_SECRET", &secret)],
        &["token", "--client-id", &client_id],
    )
    .ok();

    // The auditor holds a checkpoint past all of it, and a first bundle.
    let head = cli(&url, Some(ADMIN), &["audit", "verify", "--json"])
        .ok()
        .json()["head"]["seq"]
        .as_u64()
        .unwrap();
    node.until("a checkpoint covers the history", || async {
        last_seq(&sink) >= head
    })
    .await;
    let held = dir.path().join("held.jsonl");
    std::fs::copy(&sink, &held).unwrap();
    let (first, second) = (
        dir.path().join("first.json"),
        dir.path().join("second.json"),
    );
    for file in [&first, &second] {
        cli(
            &url,
            Some(ADMIN),
            &[
                "evidence",
                "export",
                "--grant",
                &grant,
                "-o",
                file.to_str().unwrap(),
            ],
        )
        .ok();
    }
    let (first, second, held) = (
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        held.to_str().unwrap(),
    );

    // The second bundle agrees with the checkpoints and extends the first.
    let out = cli(
        &url,
        None,
        &[
            "evidence",
            "verify",
            second,
            "--checkpoint",
            held,
            "--previous",
            first,
        ],
    )
    .ok();
    assert!(out.stdout.starts_with("evidence valid: grant "), "{out:?}");
    assert!(
        out.stdout.contains("  checkpoints ") && out.stdout.contains(" agree ("),
        "{out:?}"
    );
    assert!(!out.stdout.contains("  checkpoints 0 agree"), "{out:?}");
    assert!(
        out.stdout.contains("  extends     the previous bundle"),
        "{out:?}"
    );
    // The first does not extend the second.
    let out = cli(
        &url,
        None,
        &["evidence", "verify", first, "--previous", second],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("this bundle does not extend it"),
        "{out:?}"
    );
    // A checkpoint file with a forged line is refused as a file (exit 1).
    let forged = dir.path().join("forged.jsonl");
    let text_held = std::fs::read_to_string(held).unwrap();
    let mut line: Value = serde_json::from_str(text_held.lines().last().unwrap()).unwrap();
    line["hash"] = Value::String("ab".repeat(32));
    std::fs::write(&forged, format!("{line}\n")).unwrap();
    let out = cli(
        &url,
        None,
        &[
            "evidence",
            "verify",
            second,
            "--checkpoint",
            forged.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("checkpoint signature"), "{out:?}");

    // One usage record, proved against the root the bundle commits.
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(second).unwrap()).unwrap();
    let usage = bundle["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "usage")
        .unwrap();
    assert_eq!(usage["facts"]["tokens_issued"], 1);
    let size = usage["facts"]["records"].as_u64().unwrap();
    let tokens = get(
        &url,
        &format!("/v1/audit?target={grant}&action=token.issue"),
    )
    .await;
    let seq = tokens["items"][0]["seq"].as_u64().unwrap();
    let proof = get(
        &url,
        &format!("/v1/grants/{grant}/usage/proof?seq={seq}&size={size}"),
    )
    .await;
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    let out = cli(
        &url,
        None,
        &[
            "evidence",
            "verify-usage",
            second,
            proof_file.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(
        out.stdout.starts_with("usage record valid: token.issue "),
        "{out:?}"
    );
    // The same record with another time, re-hashed: not the record the root commits.
    let mut forged = proof.clone();
    let body = proof["record"]["body"]
        .as_str()
        .unwrap()
        .replacen("\"at\":\"20", "\"at\":\"19", 1);
    forged["record"]["hash"] = Value::String(charter_evidence::record_hash(&body));
    forged["record"]["body"] = Value::String(body);
    std::fs::write(&proof_file, forged.to_string()).unwrap();
    let out = cli(
        &url,
        None,
        &[
            "evidence",
            "verify-usage",
            second,
            proof_file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("does not lead to the committed root"),
        "{out:?}"
    );

    node.stop().await;
}
