//! The audit chain: every change is recorded, and hand edits to the database (edit, delete,
//! reorder) are detected and located.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World};

/// Builds some history: about a dozen records.
async fn history(app: &TestApp) -> World {
    let w = World::new(app).await;
    let id = w.active_grant(app).await;
    let (s, _) = app
        .post(
            &format!("/v1/grants/{id}/suspend"),
            &w.steward.1,
            json!({ "reason": "review" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    w
}

pub async fn drop_append_only_guard(app: &TestApp) {
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

async fn verify(app: &TestApp) -> (StatusCode, serde_json::Value) {
    app.get("/v1/audit/verify", ADMIN_TOKEN).await
}

both_backends! {
    async fn every_change_is_chained(app: TestApp) {
        let w = history(&app).await;
        let (s, v) = verify(&app).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["valid"], true);
        let n = v["records"].as_u64().unwrap();
        assert!(n >= 12, "{v}");
        assert_eq!(v["head"]["seq"], n);
        let (_, page) = app.get("/v1/audit?limit=500", &w.auditor.1).await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len() as u64, n);
        let mut prev = charter_evidence::GENESIS_HASH.to_owned();
        for item in items {
            let rec = &item["record"];
            assert_eq!(rec["prev"], prev.as_str());
            for field in ["at", "actor", "action", "target"] {
                assert!(rec[field].is_string(), "{field} in {rec}");
            }
            prev = item["hash"].as_str().unwrap().to_owned();
        }
        assert_eq!(v["head"]["hash"], prev.as_str());
        let actions: Vec<_> = items.iter().map(|i| i["record"]["action"].as_str().unwrap()).collect();
        for a in ["principal.bootstrap", "principal.create", "api.publish", "partner.create", "grant.request", "grant.approve", "grant.suspend"] {
            assert!(actions.contains(&a), "{a} missing from {actions:?}");
        }
        // Newest first for `audit tail`.
        let (_, tail) = app.get("/v1/audit?order=desc&limit=1", &w.auditor.1).await;
        assert_eq!(tail["items"][0]["record"]["action"], "grant.suspend");
    }

    async fn the_log_is_append_only(app: TestApp) {
        history(&app).await;
        // Without dropping the guard, the database itself refuses edits.
        let result = match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
                sqlx::query("UPDATE audit_log SET actor = 'x' WHERE seq = 2").execute(&pool).await.map(|_| ())
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
                sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(&pool).await.map(|_| ())
            }
        };
        assert!(result.is_err());
        assert_eq!(verify(&app).await.0, StatusCode::OK);
    }

    async fn an_edited_record_is_detected(app: TestApp) {
        history(&app).await;
        drop_append_only_guard(&app).await;
        app.raw_sql(&["UPDATE audit_log SET body = REPLACE(body, 'partner-office', 'someone-else') WHERE seq = 5"]).await;
        let (s, v) = verify(&app).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["valid"], false);
        assert_eq!(v["error"], "chain_broken");
        assert_eq!(v["first_bad_record"], 5);
    }

    async fn an_edit_with_a_recomputed_hash_is_detected_at_the_next_record(app: TestApp) {
        history(&app).await;
        drop_append_only_guard(&app).await;
        // Rewrite record 4 properly (canonical body, matching hash): its successor no longer links.
        let rows = app.state.repo.store.audit_query(&charter_store::AuditQuery { after: 3, limit: 1, ..Default::default() }).await.unwrap();
        let mut rec: charter_evidence::AuditRecord = serde_json::from_str(&rows[0].body).unwrap();
        rec.reason = Some("forged".into());
        let body = rec.canonical().unwrap();
        let hash = charter_evidence::record_hash(&body);
        let sql = format!("UPDATE audit_log SET body = '{}', hash = '{hash}' WHERE seq = 4", body.replace('\'', "''"));
        app.raw_sql(&[&sql]).await;
        let (s, v) = verify(&app).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["first_bad_record"], 5);
    }

    async fn a_deleted_record_is_detected(app: TestApp) {
        history(&app).await;
        drop_append_only_guard(&app).await;
        app.raw_sql(&["DELETE FROM audit_log WHERE seq = 5"]).await;
        let (s, v) = verify(&app).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["first_bad_record"], 5);
    }

    async fn reordered_records_are_detected(app: TestApp) {
        history(&app).await;
        drop_append_only_guard(&app).await;
        app.raw_sql(&[
            "UPDATE audit_log SET seq = -1 WHERE seq = 6",
            "UPDATE audit_log SET seq = 6 WHERE seq = 7",
            "UPDATE audit_log SET seq = 7 WHERE seq = -1",
        ]).await;
        let (s, v) = verify(&app).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["first_bad_record"], 6);
    }
}
