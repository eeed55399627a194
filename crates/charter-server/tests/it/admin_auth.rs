//! Principals and their tokens: issue, use, rotate, disable, expire; failed authentication
//! is audited and rate-limited.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp};

both_backends! {
    async fn token_lifecycle(app: TestApp) {
        let (id, token) = app.principal("auditor-1", &["auditor"]).await;
        assert!(token.starts_with("chp_") && token.len() > 40);
        let (s, me) = app.get(&format!("/v1/principals/{id}"), &token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["roles"], json!(["auditor"]));
        assert!(me.get("token").is_none(), "a read never shows a token");

        // Rotation: the old token stops at once, the new one works.
        let (s, rotated) = app.post(&format!("/v1/principals/{id}/rotate"), &token, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        let new_token = rotated["token"].as_str().unwrap().to_owned();
        assert_ne!(new_token, token);
        assert_eq!(app.get("/v1/grants", &token).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/v1/grants", &new_token).await.0, StatusCode::OK);

        // Tokens expire (default 90 days), by the injected clock.
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 91));
        let (s, body) = app.get("/v1/grants", &new_token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
    }

    async fn disabled_principal_is_refused(app: TestApp) {
        let (id, token) = app.principal("steward-1", &["steward"]).await;
        assert_eq!(app.get("/v1/grants", &token).await.0, StatusCode::OK);
        let (s, p) = app.post(&format!("/v1/principals/{id}/disable"), ADMIN_TOKEN, json!({ "reason": "left the company" })).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["disabled"], true);
        assert_eq!(app.get("/v1/grants", &token).await.0, StatusCode::UNAUTHORIZED);
        // Disabling twice is a conflict; nobody disables themselves.
        let (s, _) = app.post(&format!("/v1/principals/{id}/disable"), ADMIN_TOKEN, json!({ "reason": "again" })).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (_, admins) = app.get("/v1/principals", ADMIN_TOKEN).await;
        let admin_id = admins["items"][0]["id"].as_str().unwrap().to_owned();
        let (s, _) = app.post(&format!("/v1/principals/{admin_id}/disable"), ADMIN_TOKEN, json!({ "reason": "oops" })).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    async fn bad_tokens_from_an_address_never_lock_out_a_good_token(app: TestApp) {
        let before = app.audit_count().await;
        let (s, body) = app.get("/v1/grants", "chp_not-a-real-token").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(!body.to_string().contains("chp_not-a-real-token"), "the token is never echoed");
        let (s, _) = app.call(Method::GET, "/v1/grants", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(app.audit_count().await, before + 2);
        let (_, page) = app.get("/v1/audit?action=auth.failed", ADMIN_TOKEN).await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["record"]["details"]["source"], "127.0.0.1");
        assert!(!page.to_string().contains("chp_not-a-real-token"), "the token is never audited");

        // 20 failures a minute per address are answered 401 and audited; past them the bad
        // tokens are answered 429 with Retry-After and summarised by one record a minute…
        let mut unauthorized = 2;
        let throttled = loop {
            let resp = app.http.get(format!("{}/v1/grants", app.base)).bearer_auth("chp_wrong").send().await.unwrap();
            if resp.status() != StatusCode::UNAUTHORIZED || unauthorized > 60 {
                break resp;
            }
            unauthorized += 1;
        };
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(throttled.headers().get("retry-after").is_some());
        assert!(unauthorized >= 20, "{unauthorized}");
        for _ in 0..5 {
            assert_eq!(app.get("/v1/grants", "chp_wrong").await.0, StatusCode::TOO_MANY_REQUESTS);
        }
        // …while a correct token from the same address is never refused.
        for _ in 0..3 {
            assert_eq!(app.get("/v1/grants", ADMIN_TOKEN).await.0, StatusCode::OK);
        }
        let (_, page) = app.get_as_system("/v1/audit?action=auth.rate_limited").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let (_, page) = app.get_as_system("/v1/audit?action=auth.failed").await;
        assert_eq!(page["items"].as_array().unwrap().len(), unauthorized, "past the quota, failures are summarised, not recorded one by one");
    }
}

impl TestApp {
    /// Reads through the store directly (the caller's address is rate-limited).
    async fn get_as_system(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let action = path.split("action=").nth(1).unwrap_or_default().to_owned();
        let rows = self
            .state
            .repo
            .store
            .audit_query(&charter_store::AuditQuery {
                action: Some(action),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let items: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({ "seq": r.seq }))
            .collect();
        (StatusCode::OK, serde_json::json!({ "items": items }))
    }
}
