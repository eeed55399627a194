//! Proof that holds against someone who can write the database (triggers dropped): audit
//! rows bound to their bodies, no evidence signed over a broken chain, and evidence keys
//! rotated by the API with the period each one signed in.

use charter_evidence::bundle;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World};

/// A grant approved and then revoked; returns the world, the grant and the seq of its
/// `grant.revoke` record.
async fn revoked_grant(app: &TestApp) -> (World, String, u64) {
    let w = World::new(app).await;
    let grant = w.active_grant(app).await;
    let (s, v) = app
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &w.steward.1,
            json!({ "reason": "contract ended" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, page) = app.get("/v1/audit?action=grant.revoke", &w.auditor.1).await;
    let seq = page["items"][0]["seq"]
        .as_u64()
        .expect("a grant.revoke record");
    (w, grant, seq)
}

async fn drop_append_only_guard(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            app.raw_sql(&[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
            ])
            .await;
        }
        Backend::Postgres => {
            app.raw_sql(&["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"])
                .await;
        }
    }
}

/// Asserts a 409 `chain_broken` reply naming `seq`.
fn assert_broken_at(status: StatusCode, reply: &Value, seq: u64) {
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert_eq!(reply["error"], "chain_broken", "{reply}");
    assert_eq!(reply["valid"], false, "{reply}");
    assert_eq!(reply["first_bad_record"], seq, "{reply}");
}

/// Both evidence routes and the HTML timeline answer 409 naming `seq`, never a bundle.
async fn assert_no_evidence(app: &TestApp, w: &World, grant: &str, seq: u64) {
    let (s, v) = app
        .get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1)
        .await;
    assert_broken_at(s, &v, seq);
    assert!(v.get("signature").is_none());
    let (s, v) = app
        .get(
            &format!("/v1/grants/{grant}/evidence?format=html"),
            &w.auditor.1,
        )
        .await;
    assert_broken_at(s, &v, seq);
    let (s, v) = app
        .get(&format!("/v1/partners/{}/evidence", w.direct), ADMIN_TOKEN)
        .await;
    assert_broken_at(s, &v, seq);
}

/// Rewrites record `from` (a new `reason`) and re-seals every later record onto it, head
/// included: a chain that verifies on its own.
async fn rewrite_consistently_from(app: &TestApp, from: u64) {
    let rows = app
        .state
        .repo
        .store
        .audit_query(&charter_store::AuditQuery {
            after: from - 1,
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let before = app
        .state
        .repo
        .store
        .audit_query(&charter_store::AuditQuery {
            after: from - 2,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut prev = before[0].hash.clone();
    let mut statements = Vec::new();
    for row in &rows {
        let mut rec: charter_evidence::AuditRecord = serde_json::from_str(&row.body).unwrap();
        if rec.seq == from {
            rec.reason = Some("nothing to see here".into());
        }
        rec.prev = prev;
        let body = rec.canonical().unwrap();
        let hash = charter_evidence::record_hash(&body);
        statements.push(format!(
            "UPDATE audit_log SET body = '{}', hash = '{hash}' WHERE seq = {}",
            body.replace('\'', "''"),
            rec.seq
        ));
        prev = hash;
    }
    let last = rows.last().unwrap().seq;
    statements.push(format!(
        "UPDATE audit_head SET hash = '{prev}' WHERE id = 1 AND seq = {last}"
    ));
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    app.raw_sql(&refs).await;
}

both_backends! {
    // The attack of the issue: the removal is moved to another target, so the grant's
    // bundle would say nothing of it; the chain still verifies over bodies and hashes.
    async fn an_edited_target_column_of_a_revoke_row_breaks_verify_and_refuses_evidence(app: TestApp) {
        let (w, grant, seq) = revoked_grant(&app).await;
        drop_append_only_guard(&app).await;
        app.raw_sql(&[&format!("UPDATE audit_log SET target = 'grt_00000000000000000000000000' WHERE seq = {seq}")]).await;
        // The evidence guard finds it on its own (first verification of this process)…
        assert_no_evidence(&app, &w, &grant, seq).await;
        // …and so does a full verification, naming the column.
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_broken_at(s, &v, seq);
        assert!(v["error_description"].as_str().unwrap().contains("column target"), "{v}");
    }

    async fn an_edited_action_column_breaks_verify(app: TestApp) {
        let (w, grant, seq) = revoked_grant(&app).await;
        drop_append_only_guard(&app).await;
        app.raw_sql(&[&format!("UPDATE audit_log SET action = 'grant.approve' WHERE seq = {seq}")]).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_broken_at(s, &v, seq);
        assert!(v["error_description"].as_str().unwrap().contains("column action"), "{v}");
        assert_no_evidence(&app, &w, &grant, seq).await;
    }

    async fn an_edited_actor_column_breaks_verify(app: TestApp) {
        let (w, _grant, seq) = revoked_grant(&app).await;
        drop_append_only_guard(&app).await;
        app.raw_sql(&[&format!("UPDATE audit_log SET actor = 'prn_00000000000000000000000000' WHERE seq = {}", seq - 1)]).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_broken_at(s, &v, seq - 1);
        assert!(v["error_description"].as_str().unwrap().contains("column actor"), "{v}");
    }

    // A removal's body edited after a bundle was already signed (the guard verified past
    // it): the cited event no longer hashes to its record, so no new bundle is signed.
    async fn an_edited_revoke_body_after_a_signed_bundle_refuses_evidence(app: TestApp) {
        let (w, grant, seq) = revoked_grant(&app).await;
        let (s, first) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{first}");
        drop_append_only_guard(&app).await;
        app.raw_sql(&[&format!("UPDATE audit_log SET body = REPLACE(body, 'contract ended', 'never revoked') WHERE seq = {seq}")]).await;
        assert_no_evidence(&app, &w, &grant, seq).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_broken_at(s, &v, seq);
    }

    // The guard's first verification starts from the newest signed checkpoint in the log; a
    // consistent rewrite behind it is a break at the checkpoint's record, not a reason to
    // start from genesis (where the rewritten chain would verify).
    async fn a_consistent_rewrite_behind_a_signed_checkpoint_refuses_evidence(app: TestApp) {
        let (w, grant, seq) = revoked_grant(&app).await;
        let sink = app.dir.path().join("checkpoints.jsonl");
        let cp = charter_server::checkpoints::checkpoint_now(&app.state, &sink).await.unwrap();
        assert!(cp.seq >= seq);
        drop_append_only_guard(&app).await;
        rewrite_consistently_from(&app, seq).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "the chain alone sees nothing: {v}");
        assert_no_evidence(&app, &w, &grant, cp.seq).await;
    }

    // A consistent rewrite behind the head the guard verified (every later hash
    // recomputed, the head row too): the chain alone still verifies, the guard does not.
    async fn a_consistent_rewrite_behind_the_verified_head_refuses_evidence(app: TestApp) {
        let (w, grant, seq) = revoked_grant(&app).await;
        // The head the guard verifies before this bundle (the bundle's own `evidence.issue`
        // record comes after it).
        let head = app.audit_count().await;
        let (s, _) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK);
        drop_append_only_guard(&app).await;
        rewrite_consistently_from(&app, seq).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "the chain alone sees nothing: {v}");
        assert_no_evidence(&app, &w, &grant, head).await;
    }
}

both_backends! {
    async fn evidence_keys_rotate_by_the_api_and_old_bundles_still_verify_pinned(app: TestApp) {
        let (w, grant, _) = revoked_grant(&app).await;
        let keys = |app: &TestApp| {
            let http = app.http.clone();
            let url = format!("{}/.well-known/charter-evidence-keys", app.base);
            async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let pinned_before = keys(&app).await;
        let first = &pinned_before["keys"][0];
        assert_eq!(first["not_after"], Value::Null, "{pinned_before}");
        assert_eq!(first["not_before"], "2026-11-30T10:00:00Z");
        let (s, old_bundle) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK);
        let pinned = bundle::parse_pinned_keys(&pinned_before).unwrap();
        bundle::verify_pinned(&old_bundle, &pinned).expect("pinned verification");
        let old_key = app.state.keys.evidence().unwrap();

        // Only an admin rotates; the rotation is audited and answers the new public key.
        let (s, _) = app.call(Method::POST, "/v1/evidence-keys/rotate", Some(&w.steward.1), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        app.clock.advance(jiff::SignedDuration::from_hours(1));
        let (s, rotated) = app.call(Method::POST, "/v1/evidence-keys/rotate", Some(ADMIN_TOKEN), None).await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        assert_eq!(rotated["key"]["not_before"], "2026-11-30T11:00:00Z");
        assert_eq!(rotated["key"]["not_after"], Value::Null);
        assert_eq!(rotated["key"]["kid"], rotated["active"]);
        assert!(rotated["key"].get("d").is_none(), "public key only");
        assert_eq!(rotated["retired"], json!([old_key.kid()]));
        let (_, audit) = app.get("/v1/audit?action=evidence_key.rotate", &w.auditor.1).await;
        assert_eq!(audit["items"][0]["record"]["target"], rotated["active"]);
        assert_ne!(audit["items"][0]["record"]["actor"], "system");

        // Every key stays published with its period; old bundles verify against the new
        // pinned set, and so do new ones.
        let pinned_after = keys(&app).await;
        let list = pinned_after["keys"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0]["kid"].as_str(), list[0]["not_after"].as_str()), (Some(old_key.kid()), Some("2026-11-30T11:00:00Z")));
        assert_eq!(list[1]["not_after"], Value::Null);
        let pinned_now = bundle::parse_pinned_keys(&pinned_after).unwrap();
        bundle::verify_pinned(&old_bundle, &pinned_now).expect("an old bundle after rotation");
        let (_, new_bundle) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        let summary = bundle::verify_pinned(&new_bundle, &pinned_now).expect("a new bundle");
        assert_eq!(summary.kid, rotated["active"].as_str().unwrap());
        // An auditor who has not pinned the new key yet is told so.
        let err = bundle::verify_pinned(&new_bundle, &pinned).unwrap_err().to_string();
        assert!(err.contains("not a pinned key"), "{err}");

        // The retired key signing after its period ended (a stolen or stale key): refused.
        let mut late = old_bundle.clone();
        late["generated_at"] = json!("2026-11-30T12:00:00Z");
        late["signature"] = json!(bundle::sign(&late, old_key.kid(), |m| old_key.sign(m)).unwrap());
        bundle::verify(&late).expect("signature-wise it verifies");
        let err = bundle::verify_pinned(&late, &pinned_now).unwrap_err().to_string();
        assert!(err.contains("outside its signing period"), "{err}");
    }
}
