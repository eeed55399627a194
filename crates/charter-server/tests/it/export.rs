//! The SIEM export (OCSF and raw JSON lines) over HTTP, and signed checkpoints of the chain
//! head: written outside the database, verifiable with the published evidence keys, and
//! catching a log truncated or consistently rewritten behind them — which the chain alone
//! cannot.

use charter_evidence::checkpoint::{
    ChainView, Checkpoint, CheckpointError, last_checkpoint, parse_keys, verify,
};
use charter_evidence::{AuditRecord, ChainHead};
use charter_server::checkpoints::{checkpoint_if_moved, checkpoint_now};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World};
use crate::reviews::{gw_call, wired_world};

/// Every kind of record the export maps: lifecycle changes, an issued and a refused token,
/// an allowed and a denied gateway call.
async fn traffic(app: &TestApp) -> (World, crate::oauth::Client) {
    let w = wired_world(app).await;
    let grant = w.active_grant(app).await;
    let client = w.client(app, &grant).await;
    let token = app.token_for(&client).await;
    let (s, _) = gw_call(app, Method::GET, "/orders/orders/42", &token).await;
    assert_eq!(s, StatusCode::OK);
    let (s, reason) = gw_call(app, Method::POST, "/orders/orders", &token).await;
    assert!(s.is_client_error() && !reason.is_empty(), "{s} {reason}");
    let (s, _, _) = app
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&client.client_id, "wrong-secret")),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    (w, client)
}

/// `GET /v1/audit/export`: status, headers and the parsed lines.
async fn export(
    app: &TestApp,
    token: &str,
    query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<Value>) {
    let resp = app
        .http
        .get(format!("{}/v1/audit/export?{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let lines = if status == StatusCode::OK {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    (status, headers, lines)
}

fn find<'a>(events: &'a [Value], action: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    events
        .iter()
        .find(|e| e["unmapped"]["action"] == action && pred(e))
        .unwrap_or_else(|| panic!("no {action} event"))
}

async fn drop_append_only_guard(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            app.raw_sql(&[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
            ])
            .await
        }
        Backend::Postgres => {
            app.raw_sql(&["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"])
                .await
        }
    }
}

/// What an auditor does with a checkpoint: check its signature with the published evidence
/// keys, then judge it against what the server says of its chain (the same functions
/// `charter audit verify --checkpoint` calls).
async fn verify_checkpoint(
    app: &TestApp,
    token: &str,
    cp: &Checkpoint,
) -> Result<ChainHead, CheckpointError> {
    let (s, keys) = app
        .call(
            Method::GET,
            "/.well-known/charter-evidence-keys",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (status, verified) = app.get("/v1/audit/verify", token).await;
    let page = app
        .get(&format!("/v1/audit?after={}&limit=1", cp.seq - 1), token)
        .await
        .1;
    let view = ChainView::from_replies(status.as_u16(), &verified, Some(&page)).unwrap();
    verify(cp, &parse_keys(&keys).unwrap(), &view)
}

fn sink(app: &TestApp) -> std::path::PathBuf {
    app.dir.path().join("checkpoints.jsonl")
}

/// A few more records (names made unique by `tag`).
async fn more_history(app: &TestApp, w: &World, tag: &str) {
    for i in 1..=3 {
        app.principal(&format!("ops-{tag}-{i}"), &["auditor"]).await;
    }
    let (s, v) = app
        .post(
            "/v1/partners",
            &w.steward.1,
            json!({ "name": format!("Initech-{tag}"), "kind": "direct", "regions": ["eu"], "owners": [w.alice.0] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

both_backends! {
    async fn jsonl_export_is_the_chain_in_order(app: TestApp) {
        let (w, _) = traffic(&app).await;
        let n = app.audit_count().await;
        let (s, h, lines) = export(&app, &w.auditor.1, "format=jsonl").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["content-type"], "application/x-ndjson");
        assert!(h.get("x-charter-next").is_none(), "everything fit in one page");
        assert_eq!(lines.len() as u64, n);
        let mut prev = charter_evidence::GENESIS_HASH.to_owned();
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line["seq"], i as u64 + 1);
            let rec: AuditRecord = serde_json::from_value(line["record"].clone()).unwrap();
            assert_eq!(rec.prev, prev);
            assert_eq!(charter_evidence::record_hash(&rec.canonical().unwrap()), line["hash"].as_str().unwrap());
            prev = line["hash"].as_str().unwrap().to_owned();
        }

        // Paging: a full page names the next `after`.
        let (s, h, page) = export(&app, &w.auditor.1, "format=jsonl&after=3&limit=4").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page.iter().map(|l| l["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert_eq!(h["x-charter-next"], "7");
        assert_eq!(h["link"], "</v1/audit/export?format=jsonl&after=7&limit=4>; rel=\"next\"");
        let (_, h, tail) = export(&app, &w.auditor.1, &format!("format=jsonl&after={}", n - 2)).await;
        assert_eq!(tail.len(), 2);
        assert!(h.get("link").is_none());

        // Who may export, and what is refused.
        assert_eq!(export(&app, &w.steward.1, "format=jsonl&limit=1").await.0, StatusCode::OK);
        assert_eq!(export(&app, ADMIN_TOKEN, "limit=1").await.0, StatusCode::OK);
        assert_eq!(export(&app, &w.alice.1, "format=jsonl").await.0, StatusCode::FORBIDDEN);
        assert_eq!(export(&app, &w.owner.1, "format=ocsf").await.0, StatusCode::FORBIDDEN);
        for bad in ["format=csv", "limit=0", "limit=10001", "after=-1", "colour=red"] {
            assert_eq!(export(&app, &w.auditor.1, bad).await.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        assert_eq!(export(&app, "not-a-token", "format=ocsf").await.0, StatusCode::UNAUTHORIZED);
    }

    async fn ocsf_export_maps_classes_and_attribution(app: TestApp) {
        let (w, client) = traffic(&app).await;
        let (_, _, raw) = export(&app, &w.auditor.1, "format=jsonl").await;
        let (s, _, events) = export(&app, &w.auditor.1, "format=ocsf").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(events.len(), raw.len());
        for (ev, line) in events.iter().zip(&raw) {
            assert_eq!(ev["metadata"]["version"], "1.1.0");
            assert_eq!(ev["metadata"]["product"]["name"], "Charter");
            assert_eq!(ev["metadata"]["uid"], line["hash"]);
            assert_eq!(ev["metadata"]["sequence"], line["seq"]);
            assert_eq!(ev["unmapped"]["prev"], line["record"]["prev"]);
            let class = ev["class_uid"].as_u64().unwrap();
            assert_eq!(ev["type_uid"].as_u64().unwrap(), class * 100 + ev["activity_id"].as_u64().unwrap());
            let at: jiff::Timestamp = line["record"]["at"].as_str().unwrap().parse().unwrap();
            assert_eq!(ev["time"].as_i64().unwrap(), at.as_millisecond());
            assert!(ev["severity_id"].is_u64());
            let action = line["record"]["action"].as_str().unwrap();
            let expected = match action {
                "access.decision" | "access.outcome" => 6003,
                "token.issue" | "token.refused" => 3002,
                a if ["principal.", "grant.", "credential.", "partner.", "api.", "key.", "evidence_key."].iter().any(|p| a.starts_with(p)) => 3001,
                _ => 0,
            };
            assert_eq!(class, expected, "{action}");
        }

        // API Activity: an allowed read with everything that attributes it.
        let allow = find(&events, "access.decision", |e| e["status"] == "Success");
        assert_eq!((allow["class_uid"].as_u64(), allow["category_uid"].as_u64()), (Some(6003), Some(6)));
        assert_eq!((allow["activity_id"].as_u64(), allow["type_uid"].as_u64()), (Some(2), Some(600302)));
        assert_eq!(allow["http_request"]["http_method"], "GET");
        assert_eq!(allow["http_request"]["url"]["path"], "/orders/orders/42");
        assert_eq!(allow["api"]["operation"], "GET /orders/{id}");
        assert_eq!(allow["actor"]["user"]["uid"], client.client_id.as_str());
        assert!(allow["src_endpoint"]["ip"].is_string());
        let request_id = allow["api"]["request"]["uid"].as_str().unwrap();
        assert!(!request_id.is_empty());
        assert_eq!(allow["metadata"]["correlation_uid"], request_id);
        let u = &allow["unmapped"];
        assert_eq!(u["partner"], w.direct.as_str());
        assert_eq!(u["grant"], client.grant.as_str());
        assert_eq!(u["use_case"], "Delivery status sync");
        assert_eq!(u["approvals"], json!([w.alice.0]));
        assert_eq!(u["credential"], client.credential.as_str());
        assert_eq!(u["api"], w.api.as_str());
        assert!(u["jti"].is_string());
        // The outcome of the same call, joined by its request id.
        let outcome = find(&events, "access.outcome", |e| e["metadata"]["correlation_uid"] == request_id);
        assert_eq!(outcome["class_uid"], 6003);
        assert_eq!(outcome["http_response"]["code"], 200);

        // A denied write.
        let deny = find(&events, "access.decision", |e| e["status"] == "Failure");
        assert_eq!((deny["activity_id"].as_u64(), deny["status_id"].as_u64()), (Some(1), Some(2)));
        assert!(!deny["status_detail"].as_str().unwrap().is_empty());
        assert_eq!(deny["unmapped"]["grant"], client.grant.as_str());

        // Authentication: the token issued, and the one refused.
        let issued = find(&events, "token.issue", |_| true);
        assert_eq!((issued["class_uid"].as_u64(), issued["category_uid"].as_u64()), (Some(3002), Some(3)));
        assert_eq!((issued["activity_id"].as_u64(), issued["status"].as_str()), (Some(1), Some("Success")));
        assert_eq!(issued["user"]["uid"], client.client_id.as_str());
        assert_eq!(issued["auth_protocol_id"], 6);
        assert_eq!(issued["unmapped"]["grant_type"], "client_credentials");
        assert_eq!(issued["unmapped"]["partner"], w.direct.as_str());
        assert_eq!(issued["unmapped"]["approvals"], json!([w.alice.0]));
        let refused = find(&events, "token.refused", |_| true);
        assert_eq!((refused["status"].as_str(), refused["status_id"].as_u64()), (Some("Failure"), Some(2)));
        assert_eq!(refused["user"]["uid"], client.client_id.as_str());
        assert!(refused["status_detail"].is_string());

        // Account Change: the approval attaches the grant, with who approved it.
        let approve = find(&events, "grant.approve", |_| true);
        assert_eq!((approve["class_uid"].as_u64(), approve["activity_id"].as_u64()), (Some(3001), Some(7)));
        assert_eq!(approve["activity_name"], "grant.approve");
        assert_eq!(approve["type_uid"], 300107);
        assert_eq!(approve["actor"]["user"]["uid"], w.alice.0.as_str());
        assert_eq!(approve["user"]["uid"], client.grant.as_str());
        assert_eq!(approve["unmapped"]["partner"], w.direct.as_str());
        assert_eq!(approve["unmapped"]["approvals"], json!([w.alice.0]));
        let issue = find(&events, "credential.issue", |_| true);
        assert_eq!((issue["activity_id"].as_u64(), issue["unmapped"]["credential"].as_str()), (Some(1), Some(client.credential.as_str())));
        let created = find(&events, "principal.create", |_| true);
        assert_eq!((created["activity_id"].as_u64(), created["user"]["type"].as_str()), (Some(1), Some("User")));
    }

    async fn a_checkpoint_is_signed_outside_the_database_and_announced(app: TestApp) {
        let w = World::new(&app).await;
        let head = app.state.repo.store.audit_head().await.unwrap();
        let cp = checkpoint_now(&app.state, &sink(&app)).await.unwrap();
        assert_eq!((cp.seq, cp.hash.as_str()), (head.seq, head.hash.as_str()));
        assert_eq!(cp.at, "2026-11-30T10:00:00Z");
        assert_eq!(cp.kid, app.state.keys.evidence().unwrap().kid());
        let text = std::fs::read_to_string(sink(&app)).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert_eq!(last_checkpoint(&text).unwrap(), Some(cp.clone()));
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line.as_object().unwrap().keys().collect::<Vec<_>>(), ["at", "hash", "kid", "seq", "signature"]);
        assert_eq!(verify_checkpoint(&app, &w.auditor.1, &cp).await.unwrap().seq, cp.seq + 1);

        // The announcement is the record right after the checkpointed head, and the OCSF
        // export carries the signed line.
        let (_, page) = app.get(&format!("/v1/audit?after={}", cp.seq), &w.auditor.1).await;
        let rec = &page["items"][0]["record"];
        assert_eq!(rec["action"], "audit.checkpoint");
        assert_eq!(rec["details"]["seq"], cp.seq);
        assert_eq!(rec["details"]["hash"], cp.hash.as_str());
        assert_eq!(rec["details"]["kid"], cp.kid.as_str());
        let (_, _, events) = export(&app, &w.auditor.1, &format!("format=ocsf&after={}", cp.seq)).await;
        assert_eq!(events[0]["class_uid"], 0);
        let carried: Checkpoint = serde_json::from_value(events[0]["unmapped"]["checkpoint"].clone()).unwrap();
        assert_eq!(carried, cp);

        // The background task's rule: nothing new but the announcement, nothing to write.
        assert_eq!(checkpoint_if_moved(&app.state, &sink(&app)).await.unwrap(), None);
        more_history(&app, &w, "a").await;
        let next = checkpoint_if_moved(&app.state, &sink(&app)).await.unwrap().unwrap();
        assert!(next.seq > cp.seq + 1);
        assert_eq!(std::fs::read_to_string(sink(&app)).unwrap().lines().count(), 2);

        // After the evidence key rotates, old checkpoints still verify (its public key stays
        // published) and new ones are signed by the new key.
        app.state.keys.rotate_evidence(&app.state.repo, "test").await.unwrap();
        verify_checkpoint(&app, &w.auditor.1, &cp).await.unwrap();
        let third = checkpoint_now(&app.state, &sink(&app)).await.unwrap();
        assert_ne!(third.kid, cp.kid);
        verify_checkpoint(&app, &w.auditor.1, &third).await.unwrap();

        // A forged line does not verify.
        let mut forged = third.clone();
        forged.seq += 1;
        assert!(matches!(verify_checkpoint(&app, &w.auditor.1, &forged).await, Err(CheckpointError::Signature(_))));
    }

    async fn a_log_truncated_behind_a_checkpoint_is_detected(app: TestApp) {
        let w = World::new(&app).await;
        more_history(&app, &w, "a").await;
        let cp = checkpoint_now(&app.state, &sink(&app)).await.unwrap();
        more_history(&app, &w, "b").await;
        // Cut the log back to before the checkpoint, and move the head with it: the chain
        // that is left is valid.
        let keep = cp.seq - 3;
        let rows = app.state.repo.store.audit_query(&charter_store::AuditQuery { after: keep - 1, limit: 1, ..Default::default() }).await.unwrap();
        drop_append_only_guard(&app).await;
        app.raw_sql(&[
            &format!("DELETE FROM audit_log WHERE seq > {keep}"),
            &format!("UPDATE audit_head SET seq = {keep}, hash = '{}' WHERE id = 1", rows[0].hash),
        ]).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["records"], keep);

        let err = verify_checkpoint(&app, &w.auditor.1, &cp).await.unwrap_err();
        assert_eq!(err, CheckpointError::Truncated { head: keep, checkpoint: cp.seq });
        assert_eq!(err.to_string(), format!("truncated: head {keep} is behind checkpoint {}", cp.seq));
        // The server refuses to sign a head that does not extend its last checkpoint.
        let refused = checkpoint_now(&app.state, &sink(&app)).await.unwrap_err().to_string();
        assert!(refused.contains("truncated"), "{refused}");
        assert!(checkpoint_if_moved(&app.state, &sink(&app)).await.is_err());
        // Even once the log has grown past the checkpoint again.
        grow_past(&app, cp.seq).await;
        let err = verify_checkpoint(&app, &w.auditor.1, &cp).await.unwrap_err();
        assert_eq!(err, CheckpointError::Rewritten { seq: cp.seq });
        assert!(checkpoint_now(&app.state, &sink(&app)).await.is_err());
    }

    async fn a_record_edited_after_the_last_checkpoint_stops_the_next_one(app: TestApp) {
        let w = World::new(&app).await;
        more_history(&app, &w, "a").await;
        let cp = checkpoint_now(&app.state, &sink(&app)).await.unwrap();
        more_history(&app, &w, "b").await;
        // A record after the checkpoint is edited (its hash left alone): the walk from the
        // checkpoint finds it, as the walk from the first record behind /v1/audit/verify does.
        let bad = cp.seq + 2;
        let rows = app.state.repo.store.audit_query(&charter_store::AuditQuery { after: bad - 1, limit: 1, ..Default::default() }).await.unwrap();
        let mut rec: AuditRecord = serde_json::from_str(&rows[0].body).unwrap();
        rec.reason = Some("edited".into());
        drop_append_only_guard(&app).await;
        app.raw_sql(&[&format!("UPDATE audit_log SET body = '{}' WHERE seq = {bad}", rec.canonical().unwrap().replace('\'', "''"))]).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_eq!((s, v["first_bad_record"].as_u64()), (StatusCode::CONFLICT, Some(bad)), "{v}");
        let refused = checkpoint_now(&app.state, &sink(&app)).await.unwrap_err().to_string();
        assert!(refused.contains(&format!("the audit chain is broken: audit chain broken at record {bad}")), "{refused}");
        assert_eq!(last_checkpoint(&std::fs::read_to_string(sink(&app)).unwrap()).unwrap(), Some(cp));
    }

    async fn a_log_rewritten_consistently_behind_a_checkpoint_is_detected(app: TestApp) {
        let w = World::new(&app).await;
        more_history(&app, &w, "a").await;
        let cp = checkpoint_now(&app.state, &sink(&app)).await.unwrap();
        more_history(&app, &w, "b").await;
        // Rewrite a record before the checkpoint and recompute every later hash and link.
        let from = cp.seq - 2;
        let rows = app.state.repo.store.audit_query(&charter_store::AuditQuery { after: from - 1, limit: 1000, ..Default::default() }).await.unwrap();
        let mut prev = app.state.repo.store.audit_query(&charter_store::AuditQuery { after: from - 2, limit: 1, ..Default::default() }).await.unwrap()[0].hash.clone();
        let mut sql = Vec::new();
        for row in &rows {
            let mut rec: AuditRecord = serde_json::from_str(&row.body).unwrap();
            if row.seq == from {
                rec.reason = Some("nothing to see here".into());
            }
            rec.prev = prev;
            let body = rec.canonical().unwrap();
            prev = charter_evidence::record_hash(&body);
            sql.push(format!("UPDATE audit_log SET body = '{}', hash = '{prev}' WHERE seq = {}", body.replace('\'', "''"), row.seq));
        }
        sql.push(format!("UPDATE audit_head SET hash = '{prev}' WHERE id = 1"));
        drop_append_only_guard(&app).await;
        app.raw_sql(&sql.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let (s, v) = app.get("/v1/audit/verify", &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "the chain alone does not notice: {v}");

        let err = verify_checkpoint(&app, &w.auditor.1, &cp).await.unwrap_err();
        assert_eq!(err.to_string(), format!("record {} was rewritten: hash differs from checkpoint", cp.seq));
        let refused = checkpoint_now(&app.state, &sink(&app)).await.unwrap_err().to_string();
        assert!(refused.contains("rewritten"), "{refused}");
    }
}

/// Appends records until the head is past `seq`.
async fn grow_past(app: &TestApp, seq: u64) {
    let mut i = 0;
    while app.audit_count().await <= seq {
        i += 1;
        app.principal(&format!("filler-{i}"), &["auditor"]).await;
    }
}
