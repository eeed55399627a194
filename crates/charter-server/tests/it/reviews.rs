//! Recertification over HTTP: campaigns with usage evidence from real gateway calls,
//! keep / reduce / revoke attestations and their effect at the gateway, separation of
//! duties, and the post-incident review that break-glass opens.

use charter_core::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};

/// A world whose orders API proxies to the test upstream.
pub async fn wired_world(app: &TestApp) -> World {
    let w = World::new(app).await;
    let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
    api["upstream"] = json!(app.upstream);
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/apis/{}", w.api),
            Some(&w.owner.1),
            Some(api),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    w
}

/// A call through the gateway: status and `X-Charter-Reason`.
pub async fn gw_call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (StatusCode, String) {
    let resp = app
        .http
        .request(method, format!("{}{path}", app.gw))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let reason = resp
        .headers()
        .get("x-charter-reason")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status(), reason)
}

async fn start(app: &TestApp, w: &World, body: Value) -> Value {
    let (s, r) = app.post("/v1/reviews", &w.steward.1, body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r
}

fn attest_path(review: &Value, item: usize) -> String {
    format!(
        "/v1/reviews/{}/items/{}/attest",
        review["id"].as_str().unwrap(),
        review["items"][item]["id"].as_str().unwrap()
    )
}

both_backends! {
    async fn a_campaign_shows_usage_evidence(app: TestApp) {
        let w = wired_world(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let token = app.token_for(&client).await;
        for _ in 0..3 {
            assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/7", &token).await.0, StatusCode::OK);
        }
        // orders:write is not granted: a denial attributed to the grant.
        assert_eq!(gw_call(&app, reqwest::Method::POST, "/orders/orders", &token).await, (StatusCode::FORBIDDEN, "scope_not_granted".into()));
        let last_call = app.clock.now();
        app.clock.advance(SignedDuration::from_hours(5));

        // Only stewards start campaigns, over either a partner or an API.
        let (s, _) = app.post("/v1/reviews", &w.alice.1, json!({ "partner": w.direct })).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        for bad in [json!({}), json!({ "partner": w.direct, "api": w.api }), json!({ "partner": "prt_nope" }), json!({ "grant": grant })] {
            let (s, e) = app.post("/v1/reviews", &w.steward.1, bad).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        }
        let (s, e) = app.post("/v1/reviews", &w.steward.1, json!({ "partner": w.reseller })).await;
        assert_eq!(s, StatusCode::CONFLICT, "no active grant to review: {e}");

        let r = start(&app, &w, json!({ "partner": w.direct })).await;
        let id = r["id"].as_str().unwrap();
        assert!(id.starts_with("rev_") && id.len() == 30);
        assert_eq!((r["kind"].as_str(), r["status"].as_str()), (Some("recertification"), Some("open")));
        assert_eq!(r["subject"], json!({ "type": "partner", "id": w.direct }));
        assert_eq!(r["items"].as_array().unwrap().len(), 1);
        let item = &r["items"][0];
        assert_eq!(item["kind"], "recertification");
        assert_eq!(item["grant"], grant.as_str());
        assert_eq!(item["partner"], w.direct.as_str());
        assert_eq!(item["api"], w.api.as_str());
        assert_eq!(item["scopes"], json!(["orders:read", "orders:list"]));
        assert_eq!(item["data_class_ceiling"], "confidential");
        assert_eq!(item["regions"], json!(["eu"]));
        assert_eq!(item["transfer_basis"], Value::Null);
        assert_eq!(item["reviewers"], json!([w.alice.0]));
        assert_eq!(item["decision"], Value::Null);
        let e = &item["evidence"];
        assert_eq!(e["calls_by_scope"], json!({ "orders:read": 3, "orders:list": 0 }));
        assert_eq!(e["scopes_never_used"], json!(["orders:list"]));
        assert_eq!(e["denials"], 1);
        assert_eq!(e["period_days"], 90);
        assert_eq!(e["last_call_at"], last_call.to_string().as_str());

        // The same grant through an API campaign.
        let by_api = start(&app, &w, json!({ "api": w.api })).await;
        assert_eq!(by_api["subject"]["type"], "api");
        assert_eq!(by_api["items"][0]["grant"], grant.as_str());

        // Readers as for grants: the partner's owner and auditors see it, another approver not.
        for t in [&w.alice.1, &w.auditor.1, &w.owner.1] {
            let (s, got) = app.get(&format!("/v1/reviews/{id}"), t).await;
            assert_eq!(s, StatusCode::OK, "{got}");
            assert_eq!(got["items"][0]["evidence"]["calls_by_scope"]["orders:read"], 3);
        }
        let (s, _) = app.get(&format!("/v1/reviews/{id}"), &w.bob.1).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, page) = app.get("/v1/reviews", &w.bob.1).await;
        assert_eq!(page["items"], json!([]));
        let (_, page) = app.get("/v1/reviews?status=open", &w.alice.1).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let (s, _) = app.get("/v1/reviews/rev_bogus", ADMIN_TOKEN).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, audit) = app.get(&format!("/v1/audit?target={id}&action=review.start"), ADMIN_TOKEN).await;
        assert_eq!(audit["items"][0]["record"]["actor"], w.steward.0.as_str());
        let (_, spec) = app.call(reqwest::Method::GET, "/openapi.json", None, None).await;
        for (path, method) in [("/v1/reviews", "post"), ("/v1/reviews", "get"), ("/v1/reviews/{id}", "get"),
            ("/v1/reviews/{id}/items/{item}/attest", "post"), ("/v1/findings", "get")] {
            assert!(spec["paths"][path][method].is_object(), "openapi lacks {method} {path}");
        }
    }

    async fn reduce_stops_the_removed_scope_at_the_gateway(app: TestApp) {
        let w = wired_world(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let token = app.token_for(&client).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders", &token).await.0, StatusCode::OK);
        let r = start(&app, &w, json!({ "partner": w.direct })).await;
        let path = attest_path(&r, 0);
        for bad in [json!([]), json!(["orders:read", "orders:list"]), json!(["orders:write"])] {
            let (s, e) = app.post(&path, &w.alice.1, json!({ "decision": "reduce", "scopes": bad, "justification": "least privilege" })).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        }
        let (s, e) = app.post(&path, &w.alice.1, json!({ "decision": "reduce", "justification": "least privilege" })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "reduce needs scopes: {e}");

        let (s, r2) = app.post(&path, &w.alice.1, json!({ "decision": "reduce", "scopes": ["orders:read"], "justification": "listing is never used" })).await;
        assert_eq!(s, StatusCode::OK, "{r2}");
        assert_eq!(r2["status"], "completed");
        let d = &r2["items"][0]["decision"];
        assert_eq!((d["decision"].as_str(), d["by"].as_str()), (Some("reduce"), Some(w.alice.0.as_str())));
        assert_eq!(d["scopes"], json!(["orders:read"]));
        assert_eq!(d["justification"], "listing is never used");
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["scopes"], json!(["orders:read"]));
        assert_eq!((g["status"].as_str(), g["epoch"].as_u64()), (Some("active"), Some(2)));

        // The old token dies (epoch bump) for every scope.
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders", &token).await, (StatusCode::UNAUTHORIZED, "token_revoked".into()));
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await, (StatusCode::UNAUTHORIZED, "token_revoked".into()));
        // A fresh token carries only what is left and cannot ask for the removed scope.
        let (s, v, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&client.client_id, &client.secret)), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["scope"], "orders:read");
        let fresh = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &fresh).await.0, StatusCode::OK);
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders", &fresh).await, (StatusCode::FORBIDDEN, "scope_not_granted".into()));
        let (s, v, _) = app.token_request(&[("grant_type", "client_credentials"), ("scope", "orders:list")], Some((&client.client_id, &client.secret)), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));

        // One audited unit, on the grant's trail.
        let (_, page) = app.get(&format!("/v1/audit?target={grant}&action=review.attest"), &w.auditor.1).await;
        let rec = &page["items"][0]["record"];
        assert_eq!(rec["actor"], w.alice.0.as_str());
        assert_eq!(rec["details"]["decision"], "reduce");
        assert_eq!(rec["details"]["scopes"], json!(["orders:read"]));
        assert_eq!(rec["details"]["justification"], "listing is never used");
        assert_eq!(rec["details"]["review"], r["id"]);
        assert_eq!(rec["details"]["changed"]["epoch"], json!([1, 2]));
        // Decided once.
        let (s, _) = app.post(&path, &w.alice.1, json!({ "decision": "keep", "justification": "again" })).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, v) = app.get("/v1/audit/verify", ADMIN_TOKEN).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    async fn keep_resumes_an_overdue_suspended_grant(app: TestApp) {
        let w = wired_world(&app).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["recertify_every_days"] = json!(30);
        let (_, g) = app.post("/v1/grants", &w.steward.1, body).await;
        let grant = g["id"].as_str().unwrap().to_owned();
        app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1, json!({ "decision": "approve", "justification": "ok" })).await;
        let client = w.client(&app, &grant).await;
        // A second grant a steward suspended by hand is not up for recertification.
        let other = w.active_grant(&app).await;
        let (s, _) = app.post(&format!("/v1/grants/{other}/suspend"), &w.steward.1, json!({ "reason": "investigation" })).await;
        assert_eq!(s, StatusCode::OK);

        app.clock.advance(SignedDuration::from_hours(24 * 30));
        let report = charter_server::scheduler::tick(&app.state).await.unwrap();
        assert_eq!(report.suspended_overdue, vec![grant.clone()]);
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&client.client_id, &client.secret)), None).await;
        assert_ne!(s, StatusCode::OK, "no token while suspended");

        // Only a review brings it back, not a plain resume.
        let (s, e) = app.post(&format!("/v1/grants/{grant}/resume"), &w.steward.1, json!({ "reason": "please" })).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");

        let r = start(&app, &w, json!({ "partner": w.direct })).await;
        let items = r["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{r}");
        assert_eq!((items[0]["grant"].as_str(), items[0]["grant_status"].as_str()), (Some(grant.as_str()), Some("suspended")));
        let (s, r2) = app.post(&attest_path(&r, 0), &w.alice.1, json!({ "decision": "keep", "justification": "deliveries still run" })).await;
        assert_eq!(s, StatusCode::OK, "{r2}");
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!((g["status"].as_str(), g["status_reason"].as_str()), (Some("active"), Some("recertified")));
        assert_eq!(g["review_due_at"], (app.clock.now() + SignedDuration::from_hours(24 * 30)).to_string().as_str());
        assert_eq!(g["epoch"], 1);
        let token = app.token_for(&client).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await.0, StatusCode::OK);
        // Not overdue any more: the next tick leaves it alone.
        assert!(charter_server::scheduler::tick(&app.state).await.unwrap().suspended_overdue.is_empty());
        let (_, o) = app.get(&format!("/v1/grants/{other}"), ADMIN_TOKEN).await;
        assert_eq!(o["status"], "suspended");
    }

    async fn separation_of_duties_and_revoke(app: TestApp) {
        let w = wired_world(&app).await;
        // A steward who also approves and owns the partner requests the grant.
        let (dual_id, dual) = app.principal("dual-hat", &["steward", "approver"]).await;
        // (Owners are an admin's to change.)
        let (s, _) = app.call(reqwest::Method::PATCH, &format!("/v1/partners/{}", w.reseller), Some(ADMIN_TOKEN),
            Some(json!({ "owners": [w.alice.0, w.bob.0, dual_id] }))).await;
        assert_eq!(s, StatusCode::OK);
        let (s, g) = app.post("/v1/grants", &dual, w.grant_body(&app, &w.reseller)).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let grant = g["id"].as_str().unwrap().to_owned();
        for who in [&w.alice.1, &w.bob.1] {
            let (s, _) = app.post(&format!("/v1/grants/{grant}/approvals"), who, json!({ "decision": "approve", "justification": "ok" })).await;
            assert_eq!(s, StatusCode::OK);
        }
        let r = start(&app, &w, json!({ "partner": w.reseller })).await;
        // Every owner of a reseller sees the shared path.
        assert_eq!(r["items"][0]["reviewers"], json!([w.alice.0, w.bob.0, dual_id]));
        assert_eq!(r["items"][0]["requested_by"], dual_id.as_str());
        let path = attest_path(&r, 0);
        let keep = json!({ "decision": "keep", "justification": "fine" });
        let (s, e) = app.post(&path, &dual, keep.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the requester never attests: {e}");
        assert!(e["error_description"].as_str().unwrap().contains("requester"));
        // Neither do a non-owner approver, a steward, or an admin (no exemption).
        let (_, carol) = app.principal("carol", &["approver"]).await;
        for t in [carol.as_str(), w.steward.1.as_str(), ADMIN_TOKEN] {
            let (s, e) = app.post(&path, t, keep.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        }
        let (s, e) = app.post(&format!("/v1/reviews/{}/items/itm_9/attest", r["id"].as_str().unwrap()), &w.bob.1, keep.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
        let (s, e) = app.post(&path, &w.bob.1, json!({ "decision": "forget", "justification": "x" })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (_, still) = app.get(&format!("/v1/reviews/{}", r["id"].as_str().unwrap()), ADMIN_TOKEN).await;
        assert_eq!(still["items"][0]["decision"], Value::Null);

        let (s, r2) = app.post(&path, &w.bob.1, json!({ "decision": "revoke", "justification": "marketplace listing closed" })).await;
        assert_eq!(s, StatusCode::OK, "{r2}");
        assert_eq!(r2["items"][0]["decision"]["by"], w.bob.0.as_str());
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!((g["status"].as_str(), g["status_reason"].as_str()), (Some("revoked"), Some("marketplace listing closed")));
        let (s, _) = app.post(&path, &w.alice.1, keep).await;
        assert_eq!(s, StatusCode::CONFLICT, "an item is attested once");
    }

    async fn break_glass_opens_a_post_incident_review(app: TestApp) {
        let w = wired_world(&app).await;
        let (dual_id, dual) = app.principal("responder", &["steward", "approver"]).await;
        let (s, _) = app.call(reqwest::Method::PATCH, &format!("/v1/partners/{}", w.direct), Some(ADMIN_TOKEN),
            Some(json!({ "owners": [w.alice.0, dual_id] }))).await;
        assert_eq!(s, StatusCode::OK);
        let mut body = w.grant_body(&app, &w.direct);
        body["emergency"] = json!({ "incident": "INC-9" });
        body["expires_at"] = json!((app.clock.now() + SignedDuration::from_hours(2)).to_string());
        let opened = app.clock.now();
        let (s, g) = app.post("/v1/grants", &dual, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let grant = g["id"].as_str().unwrap().to_owned();

        let (_, page) = app.get("/v1/reviews?kind=post_incident", &w.auditor.1).await;
        let reviews = page["items"].as_array().unwrap();
        assert_eq!(reviews.len(), 1, "{page}");
        let r = &reviews[0];
        assert_eq!(r["kind"], "post_incident");
        assert_eq!(r["subject"], json!({ "type": "grant", "id": grant }));
        let item = &r["items"][0];
        assert_eq!((item["kind"].as_str(), item["grant"].as_str()), (Some("post_incident"), Some(grant.as_str())));
        assert_eq!(item["emergency"]["incident"], "INC-9");
        assert_eq!(item["due_at"], (opened + SignedDuration::from_hours(72)).to_string().as_str());
        // Opened in the same unit as the grant.
        let (_, a) = app.get(&format!("/v1/audit?target={grant}&action=grant.emergency_open"), ADMIN_TOKEN).await;
        let (_, b) = app.get(&format!("/v1/audit?target={}&action=review.open", r["id"].as_str().unwrap()), ADMIN_TOKEN).await;
        assert_eq!(b["items"][0]["seq"].as_u64().unwrap(), a["items"][0]["seq"].as_u64().unwrap() + 1);

        // Break-glass calls show up as evidence for the reviewer.
        let client = w.client(&app, &grant).await;
        let token = app.token_for(&client).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await.0, StatusCode::OK);
        app.clock.advance(SignedDuration::from_hours(3));
        charter_server::scheduler::tick(&app.state).await.unwrap();
        let (_, fresh) = app.get(&format!("/v1/reviews/{}", r["id"].as_str().unwrap()), &w.alice.1).await;
        assert_eq!(fresh["items"][0]["evidence"]["calls_by_scope"]["orders:read"], 1);

        let path = attest_path(r, 0);
        let (s, _) = app.post(&path, &dual, json!({ "decision": "keep", "justification": "I opened it" })).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the opener does not review their own break-glass");
        let (s, _) = app.post(&path, &w.alice.1, json!({ "decision": "reduce", "scopes": ["orders:read"], "justification": "x" })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, done) = app.post(&path, &w.alice.1, json!({ "decision": "keep", "justification": "outage INC-9 handled as planned" })).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "completed");
        assert_eq!(done["items"][0]["evidence"]["calls_by_scope"]["orders:read"], 1);
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["status"], "expired", "the grant ended by itself; the review only records the verdict");
    }
}
