//! Each class of bad input gets a JSON error with the right status, writes nothing and
//! echoes no secret.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}")),
    )
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

both_backends! {
    async fn each_class_of_bad_input(app: TestApp) {
        let w = World::new(&app).await;
        let before_audit = app.audit_count().await;
        let before_partners = app.state.repo.store.count(charter_store::Kind::Partner).await.unwrap();
        let json_ct = Some("application/json");

        let (s, b) = raw(&app, Method::POST, "/v1/partners", &w.steward.1, json_ct, b"{\"name\": \"x\",".to_vec()).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "malformed_request");

        let (s, b) = raw(&app, Method::POST, "/v1/partners", &w.steward.1, None, b"{}".to_vec()).await;
        assert_error(s, &b, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

        let (s, b) = app.post("/v1/partners", &w.steward.1, json!({ "name": "X", "kind": "direct", "regions": ["eu"], "colour": "red" })).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(b["error_description"].as_str().unwrap().contains("colour"), "{b}");

        let (s, b) = app.post("/v1/partners", &w.steward.1, json!({ "name": 42, "kind": "direct", "regions": ["eu"] })).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

        let (s, b) = app.post("/v1/partners", &w.steward.1, json!({ "name": "X", "kind": "franchise", "regions": ["eu"] })).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

        let (s, b) = app.post("/v1/partners", &w.steward.1, json!({ "name": "n".repeat(257), "kind": "direct", "regions": ["eu"] })).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

        let (s, b) = app.post("/v1/partners", &w.steward.1, json!({ "name": "Acme", "kind": "direct", "regions": ["eu"] })).await;
        assert_error(s, &b, StatusCode::CONFLICT, "conflict");

        let big = format!("{{\"name\": \"{}\"}}", "a".repeat(1024 * 1024 + 10));
        let (s, b) = raw(&app, Method::POST, "/v1/partners", &w.steward.1, json_ct, big.into_bytes()).await;
        assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

        for path in ["/v1/grants/grt_00000000000000000000000000", "/v1/grants/nonsense", "/v1/partners/grt_00000000000000000000000000", "/v1/apis/api_", "/v1/principals/%00"] {
            let (s, b) = app.get(path, ADMIN_TOKEN).await;
            assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
        }
        let (s, b) = app.post("/v1/grants/grt_00000000000000000000000000/approvals", &w.alice.1,
            json!({ "decision": "approve", "justification": "x" })).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
        let (s, b) = app.get("/v1/nothing-here", ADMIN_TOKEN).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");

        // A grant naming a partner that does not exist.
        let mut body = w.grant_body(&app, "prt_00000000000000000000000000");
        let (s, b) = app.post("/v1/grants", &w.steward.1, body.clone()).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        body["partner"] = json!("not-an-id");
        let (s, b) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

        let (s, b) = app.get("/v1/grants?limit=ten", &w.steward.1).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

        assert_eq!(app.audit_count().await, before_audit, "nothing was written");
        assert_eq!(app.state.repo.store.count(charter_store::Kind::Partner).await.unwrap(), before_partners);
    }

    async fn secrets_are_not_echoed(app: TestApp) {
        // A principal's token appears once, in the create reply, and nowhere after.
        let (id, token) = app.principal("someone", &["auditor"]).await;
        let (_, list) = app.get("/v1/principals", ADMIN_TOKEN).await;
        assert!(!list.to_string().contains(&token));
        let (_, audit) = app.get("/v1/audit?limit=500", ADMIN_TOKEN).await;
        assert!(!audit.to_string().contains(&token), "tokens never reach the audit log");
        let hash = charter_server::auth::token_hash(&token);
        assert!(!audit.to_string().contains(&hash));
        let (_, me) = app.get(&format!("/v1/principals/{id}"), &token).await;
        assert!(!me.to_string().contains(&hash));
        // A bad token in a request is not echoed back.
        let (_, b) = app.get("/v1/grants", "chp_secret-looking-value").await;
        assert!(!b.to_string().contains("secret-looking-value"));
    }
}
