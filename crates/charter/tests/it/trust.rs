//! Proof that holds, through the binary: `charter evidence verify --keys` against pinned
//! evidence keys (a bundle re-signed under the real kid passes only unauthenticated),
//! `charter evidence rotate-key`, and checkpoints pushed to a witness outside the data
//! directory that catches a consistent rewrite of the chain which the chain alone misses.

use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sqlx::Executor as _;

use crate::checkpoints::{ADMIN, Node, last_seq};
use crate::{Server, cast, cli};

async fn save_keys(url: &str, file: &Path) {
    let keys = reqwest::get(format!("{url}/.well-known/charter-evidence-keys"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(file, keys).unwrap();
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Re-signs `bundle` with `key` under `kid`, the bundle's copy of that kid's key replaced
/// (or added) so that the bundle verifies with the keys it brings.
fn re_sign(mut bundle: Value, key: &Ed25519KeyPair, kid: &str) -> Value {
    let x = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
    let keys = bundle["keys"].as_array_mut().unwrap();
    match keys.iter_mut().find(|k| k["kid"] == kid) {
        Some(k) => k["x"] = json!(x),
        None => keys.push(json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" })),
    }
    bundle.as_object_mut().unwrap().remove("signature");
    let sig =
        charter_evidence::bundle::sign(&bundle, kid, |m| key.sign(m).as_ref().to_vec()).unwrap();
    bundle["signature"] = json!(sig);
    bundle
}

#[tokio::test]
async fn a_bundle_re_signed_under_the_real_kid_passes_only_unauthenticated() {
    let server = Server::start().await;
    let (url, admin) = (server.control.clone(), server.admin_token());
    let crew = cast(&url, &admin);
    let grant = crew.approved_grant(&url, "30d");
    cli(
        &url,
        Some(&crew.steward),
        &["grant", "revoke", &grant, "--reason", "contract ended"],
    )
    .ok();
    let dir = server.dir.path();
    let (bundle_file, keys_file) = (dir.join("bundle.json"), dir.join("keys.json"));
    cli(
        &url,
        Some(&admin),
        &[
            "evidence",
            "export",
            "--grant",
            &grant,
            "-o",
            path(&bundle_file),
        ],
    )
    .ok();
    save_keys(&url, &keys_file).await;
    let verify = |bundle: &Path, keys: Option<&Path>| {
        let mut args = vec!["evidence", "verify", path(bundle)];
        if let Some(k) = keys {
            args.extend(["--keys", path(k)]);
        }
        cli(&url, None, &args)
    };

    // The genuine bundle: authenticated with the pinned keys, plainly not without them.
    let out = verify(&bundle_file, Some(&keys_file)).ok();
    assert!(
        out.stdout.contains("  signer      authenticated: evk_"),
        "{out:?}"
    );
    let out = verify(&bundle_file, None).ok();
    assert!(
        out.stdout
            .contains("signer      NOT AUTHENTICATED — no --keys given"),
        "{out:?}"
    );

    // The removal deleted, re-signed by another Ed25519 key under the real kid: the bundle's
    // sub-chains give that away even without pinned keys.
    let genuine: Value = serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
    let kid = genuine["keys"][0]["kid"].as_str().unwrap().to_owned();
    let mut removed = genuine.clone();
    removed["statements"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["kind"] != "removed");
    assert_ne!(
        removed["statements"], genuine["statements"],
        "there was a removal"
    );
    // What the sub-chains cannot catch is a change to what only people read: the removal's
    // sentence rewritten to say the access was never removed.
    let mut cut = genuine.clone();
    for st in cut["statements"].as_array_mut().unwrap() {
        if st["kind"] == "removed" {
            st["text"] = Value::String("The access was never removed.".into());
        }
    }
    let rogue = Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap();
    let removed_file = dir.join("removed.json");
    std::fs::write(&removed_file, re_sign(removed, &rogue, &kid).to_string()).unwrap();
    let out = verify(&removed_file, None);
    assert_eq!(out.code, Some(2), "a removed event is caught: {out:?}");
    let forged_file = dir.join("forged.json");
    std::fs::write(&forged_file, re_sign(cut.clone(), &rogue, &kid).to_string()).unwrap();
    let out = verify(&forged_file, None).ok();
    assert!(
        out.stdout.starts_with("evidence valid: ") && out.stdout.contains("NOT AUTHENTICATED"),
        "signature-wise it passes, and says it is unauthenticated: {out:?}"
    );
    let out = verify(&forged_file, Some(&keys_file));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        format!("evidence INVALID: signature: does not verify with the pinned key {kid:?}")
    );
    // Signed by a key of its own kid that it brings along: named as not pinned.
    let own_file = dir.join("own-kid.json");
    std::fs::write(&own_file, re_sign(cut, &rogue, "evk_rogue").to_string()).unwrap();
    let out = verify(&own_file, Some(&keys_file));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("signature: signed by \"evk_rogue\", which is not a pinned key"),
        "{out:?}"
    );

    // Rotation by the CLI: the old bundle verifies against the keys published after it;
    // a new bundle needs the new key pinned.
    let out = cli(&url, Some(&admin), &["evidence", "rotate-key"]).ok();
    assert!(
        out.stdout.starts_with("evidence key rotated: evk_"),
        "{out:?}"
    );
    assert!(out.stdout.contains(&format!("retired: {kid}")), "{out:?}");
    let keys_after = dir.join("keys-after.json");
    save_keys(&url, &keys_after).await;
    verify(&bundle_file, Some(&keys_after)).ok();
    let newer = dir.join("newer.json");
    cli(
        &url,
        Some(&admin),
        &["evidence", "export", "--grant", &grant, "-o", path(&newer)],
    )
    .ok();
    verify(&newer, Some(&keys_after)).ok();
    let out = verify(&newer, Some(&keys_file));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("which is not a pinned key"), "{out:?}");
    // Rotation is an admin's act.
    let out = cli(&url, Some(&crew.steward), &["evidence", "rotate-key"]);
    assert_eq!(out.code, Some(1), "{out:?}");
}

/// A witness on loopback: keeps every checkpoint line POSTed to it.
async fn witness() -> (String, Arc<Mutex<Vec<String>>>) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = lines.clone();
    let app = axum::Router::new().route(
        "/checkpoints",
        axum::routing::post(move |body: String| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/checkpoints"), lines)
}

fn write_lines(file: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(file, text).unwrap();
}

/// Rewrites record `from` and re-seals every later record and the head onto it.
async fn rewrite_consistently(db: &Path, from: u64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    pool.execute("DROP TRIGGER audit_log_no_update")
        .await
        .unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, body FROM audit_log WHERE seq >= $1 ORDER BY seq")
            .bind(i64::try_from(from).unwrap())
            .fetch_all(&pool)
            .await
            .unwrap();
    let (mut prev,): (String,) = sqlx::query_as("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(i64::try_from(from).unwrap() - 1)
        .fetch_one(&pool)
        .await
        .unwrap();
    for (seq, body) in rows {
        let mut rec: charter_evidence::AuditRecord = serde_json::from_str(&body).unwrap();
        if rec.seq == from {
            rec.reason = Some("rewritten".into());
        }
        rec.prev = prev;
        let body = rec.canonical().unwrap();
        let hash = charter_evidence::record_hash(&body);
        sqlx::query("UPDATE audit_log SET body = $1, hash = $2 WHERE seq = $3")
            .bind(&body)
            .bind(&hash)
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&hash)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
    }
    pool.close().await;
}

#[tokio::test]
async fn a_witness_outside_the_data_dir_catches_a_consistent_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let sink_file = outside.join("checkpoints.jsonl");
    let (witness_url, received) = witness().await;
    let more = format!(
        "[checkpoints]\nsink_file = {:?}\nwitness_url = {witness_url:?}\n",
        path(&sink_file)
    );
    let mut node = Node::start_with(dir.path(), &data, "first", &more).await;
    let url = node.url.clone();
    for i in 0..4 {
        cli(
            &url,
            Some(ADMIN),
            &[
                "principal",
                "add",
                "--name",
                &format!("ops-{i}"),
                "--role",
                "auditor",
            ],
        )
        .ok();
    }
    let head = cli(&url, Some(ADMIN), &["audit", "verify", "--json"])
        .ok()
        .json()["head"]["seq"]
        .as_u64()
        .unwrap();
    let witnessed = || {
        received
            .lock()
            .unwrap()
            .last()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["seq"].as_u64())
            .unwrap_or(0)
    };
    node.until(
        "the witness and the sink file hold a checkpoint of the history",
        || async { witnessed() >= head && last_seq(&sink_file) >= head },
    )
    .await;

    // The auditor's copies: the witness's lines and the pinned keys.
    let keys = dir.path().join("keys.json");
    save_keys(&url, &keys).await;
    let held = dir.path().join("witness.jsonl");
    write_lines(&held, &received.lock().unwrap());
    for copy in [&held, &sink_file] {
        let out = cli(
            &url,
            Some(ADMIN),
            &[
                "audit",
                "verify",
                "--checkpoint",
                path(copy),
                "--keys",
                path(&keys),
            ],
        )
        .ok();
        assert!(out.stdout.starts_with("audit chain intact: "), "{out:?}");
    }
    let cp_seq = last_seq(&held);

    // Database and data directory rewritten consistently from record 3: every hash after
    // it recomputed, the data directory's own checkpoint file replaced too.
    node.stop().await;
    rewrite_consistently(&data.join("charter.db"), 3).await;
    std::fs::remove_file(data.join("checkpoints.jsonl")).unwrap();
    let node = Node::start_with(dir.path(), &data, "second", &more).await;
    let url = node.url.clone();
    let plain = cli(&url, Some(ADMIN), &["audit", "verify"]).ok();
    assert!(
        plain.stdout.starts_with("audit chain intact: "),
        "the chain alone still verifies: {plain:?}"
    );
    let out = cli(
        &url,
        Some(ADMIN),
        &[
            "audit",
            "verify",
            "--checkpoint",
            path(&held),
            "--keys",
            path(&keys),
        ],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!("audit chain BROKEN: record {cp_seq} was rewritten: hash differs from checkpoint")
    );

    // A row bound to its body: `audit verify` names an edited target column.
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("charter.db").display()))
            .await
            .unwrap();
    pool.execute("UPDATE audit_log SET target = 'prn_00000000000000000000000000' WHERE seq = 2")
        .await
        .unwrap();
    pool.close().await;
    let out = cli(&url, Some(ADMIN), &["audit", "verify"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        "audit chain BROKEN at record 2: stored column target differs from the record's body"
    );
    node.stop().await;
}
