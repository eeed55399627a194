//! Posture findings from real state: each kind produced by moving the clock, changing a
//! partner, calling through the gateway or leaving a review undone — with its fixed OWASP NHI
//! and NIST CSF mapping.

use charter_core::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};
use crate::reviews::{gw_call, wired_world};
use charter_server::services::findings::GUESSING_FAILURES;

async fn findings(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/v1/findings?kind={kind}"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["generated_at"].is_string());
    v["items"].as_array().unwrap().clone()
}

/// The finding of `kind` about subject `id`, if any.
async fn about(app: &TestApp, kind: &str, id: &str) -> Option<Value> {
    findings(app, ADMIN_TOKEN, kind)
        .await
        .into_iter()
        .find(|f| f["subject"]["id"] == id)
}

fn assert_mapping(f: &Value, kind: &str, severity: &str, nhi: &str, csf: &str) {
    assert_eq!(f["kind"], kind, "{f}");
    assert_eq!(f["severity"], severity, "{f}");
    assert_eq!(f["owasp_nhi"], nhi, "{f}");
    assert_eq!(f["csf"], csf, "{f}");
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

both_backends! {
    async fn owners_and_cross_border_access(app: TestApp) {
        let w = World::new(&app).await;
        let (s, orphan) = app.post("/v1/partners", &w.steward.1, json!({ "name": "Orphan", "kind": "direct", "regions": ["eu"], "owners": [] })).await;
        assert_eq!(s, StatusCode::CREATED, "{orphan}");
        let orphan = orphan["id"].as_str().unwrap().to_owned();
        let (billing_owner, billing_token) = app.principal("billing-team", &["api_owner"]).await;
        let (s, billing) = app.post("/v1/apis", &billing_token, crate::harness::orders_api("billing", "https://api.example.com/billing")).await;
        assert_eq!(s, StatusCode::CREATED, "{billing}");
        let billing = billing["id"].as_str().unwrap().to_owned();
        assert!(about(&app, "owner_missing", &billing).await.is_none());
        let (s, v) = app.post(&format!("/v1/principals/{billing_owner}/disable"), ADMIN_TOKEN, json!({ "reason": "team dissolved" })).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        let found = findings(&app, &w.auditor.1, "owner_missing").await;
        assert_eq!(found.len(), 2, "{found:?}");
        let p = found.iter().find(|f| f["subject"]["type"] == "partner").unwrap();
        assert_eq!(p["subject"]["id"], orphan.as_str());
        assert_mapping(p, "owner_missing", "high", "NHI1", "PR.AA-01");
        let a = found.iter().find(|f| f["subject"]["type"] == "api").unwrap();
        assert_eq!(a["subject"]["id"], billing.as_str());
        assert_eq!(a["evidence"]["owner_state"], "disabled");
        assert_mapping(a, "owner_missing", "high", "NHI1", "PR.AA-01");

        // The partner moves its processing out of the EU: the grant now crosses a border
        // without a recorded basis.
        let grant = w.active_grant(&app).await;
        assert!(about(&app, "transfer_without_basis", &grant).await.is_none());
        let (s, _) = app.call(reqwest::Method::PATCH, &format!("/v1/partners/{}", w.direct), Some(&w.steward.1), Some(json!({ "regions": ["us"] }))).await;
        assert_eq!(s, StatusCode::OK);
        let f = about(&app, "transfer_without_basis", &grant).await.unwrap();
        assert_mapping(&f, "transfer_without_basis", "critical", "NHI3", "PR.AA-05");
        assert_eq!(f["subject"], json!({ "type": "grant", "id": grant }));
        assert_eq!(f["evidence"]["regions_outside"], json!(["eu"]));
        assert_eq!(f["evidence"]["partner_regions"], json!(["us"]));

        // Who sees what: the partner's owner and the API's owner see the grant's finding,
        // another approver does not; findings are for readers only.
        for t in [&w.alice.1, &w.owner.1, &w.steward.1] {
            assert_eq!(findings(&app, t, "transfer_without_basis").await.len(), 1);
        }
        assert!(findings(&app, &w.bob.1, "transfer_without_basis").await.is_empty());
        let (_, gw) = app.principal("edge", &["gateway"]).await;
        let (s, _) = app.get("/v1/findings", &gw).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = app.get("/v1/findings?kind=bogus", ADMIN_TOKEN).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        // Unfiltered: critical first.
        let (_, all) = app.get("/v1/findings", ADMIN_TOKEN).await;
        assert_eq!(all["items"][0]["severity"], "critical");
        assert_eq!(all["next"], Value::Null);
    }

    async fn a_grant_over_time(app: TestApp) {
        let w = wired_world(&app).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["recertify_every_days"] = json!(30);
        let (_, g) = app.post("/v1/grants", &w.steward.1, body).await;
        let grant = g["id"].as_str().unwrap().to_owned();
        app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1, json!({ "decision": "approve", "justification": "ok" })).await;
        let (s, short) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "client_secret", "max_age_days": 10 })).await;
        assert_eq!(s, StatusCode::CREATED, "{short}");
        let long = w.client(&app, &grant).await;
        // Another active grant that never got a credential: nothing issued can be stale.
        let bare = w.active_grant(&app).await;
        assert!(about(&app, "credential_stale", &bare).await.is_none());

        let token = app.token_for(&long).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await.0, StatusCode::OK);
        let (_, all) = app.get("/v1/findings", ADMIN_TOKEN).await;
        let mine: Vec<_> = all["items"].as_array().unwrap().iter().filter(|f| f["subject"]["id"] == grant.as_str()).collect();
        assert!(mine.is_empty(), "a fresh, used grant has no findings: {mine:?}");

        // Day 11: the short-lived credential is past its maximum age.
        app.clock.advance(days(11));
        let f = about(&app, "credential_stale", short["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(f["subject"]["type"], "credential");
        assert_eq!(f["evidence"]["client_id"], short["client_id"]);
        assert_eq!(f["evidence"]["grant"], grant.as_str());

        // Day 29: one more call, with orders:read only.
        app.clock.advance(days(18));
        let token = app.token_for(&long).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await.0, StatusCode::OK);

        // Day 31: the review is overdue (the scheduler has not run) and orders:list went
        // unused for the whole 30-day review period; the grant itself is in use.
        app.clock.advance(days(2));
        let f = about(&app, "review_overdue", &grant).await.unwrap();
        assert_mapping(&f, "review_overdue", "high", "NHI5", "PR.AA-05");
        assert_eq!(f["evidence"]["status"], "active");
        let f = about(&app, "scope_unused", &grant).await.unwrap();
        assert_mapping(&f, "scope_unused", "medium", "NHI5", "PR.AA-05");
        assert_eq!(f["evidence"]["scopes"], json!(["orders:list"]));
        assert_eq!(f["evidence"]["period_days"], 30);
        assert!(about(&app, "grant_unused", &grant).await.is_none());
        // After the scheduler suspends it, it is still overdue.
        charter_server::scheduler::tick(&app.state).await.unwrap();
        let f = about(&app, "review_overdue", &grant).await.unwrap();
        assert_eq!(f["evidence"]["status"], "suspended");
        // Kept in review: no longer overdue.
        let (_, r) = app.post("/v1/reviews", &w.steward.1, json!({ "partner": w.direct })).await;
        let item = r["items"].as_array().unwrap().iter().find(|i| i["grant"] == grant.as_str()).unwrap();
        let (s, v) = app.post(&format!("/v1/reviews/{}/items/{}/attest", r["id"].as_str().unwrap(), item["id"].as_str().unwrap()),
            &w.alice.1, json!({ "decision": "keep", "justification": "needed" })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(about(&app, "review_overdue", &grant).await.is_none());

        // Day 60: no call in the last 30 days.
        app.clock.advance(days(29));
        let f = about(&app, "grant_unused", &grant).await.unwrap();
        assert_mapping(&f, "grant_unused", "medium", "NHI5", "PR.AA-05");
        assert_eq!(f["evidence"]["window_days"], 30);

        // Day 84: it ends within 7 days and no renewal is pending; a renewal request clears it.
        app.clock.advance(days(24));
        let f = about(&app, "grant_expiring", &grant).await.unwrap();
        assert_mapping(&f, "grant_expiring", "medium", "NHI7", "PR.AA-05");
        assert_eq!(f["evidence"]["expires_at"], g["expires_at"]);
        let (s, _) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.direct)).await;
        assert_eq!(s, StatusCode::CREATED);
        assert!(about(&app, "grant_expiring", &grant).await.is_none());
    }

    async fn a_grant_whose_credentials_all_ended(app: TestApp) {
        let w = World::new(&app).await;
        let bare = w.active_grant(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        assert!(findings(&app, ADMIN_TOKEN, "credential_stale").await.is_empty(), "a grant never given a credential is no finding");
        let (s, v) = app.post(&format!("/v1/credentials/{}/revoke", client.credential), &w.steward.1, json!({ "reason": "leaked" })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let f = about(&app, "credential_stale", &grant).await.unwrap();
        assert_mapping(&f, "credential_stale", "high", "NHI7", "PR.AA-01");
        assert_eq!(f["subject"], json!({ "type": "grant", "id": grant }));
        assert_eq!(f["evidence"]["active_credentials"], 0);
        assert_eq!(f["evidence"]["credentials"], 1);
        assert!(about(&app, "credential_stale", &bare).await.is_none());
        // A new credential clears it.
        w.client(&app, &grant).await;
        assert!(about(&app, "credential_stale", &grant).await.is_none());
    }

    async fn one_credential_from_several_networks(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let decision = |source: &str| {
            app.state.repo.record(&client.client_id, "access.decision", &grant, None, json!({
                "decision": "allow", "reason": null, "request_id": "req-1", "mode": "proxy",
                "gateway": "gw_test", "method": "GET", "path": "/orders/orders/1", "source": source,
                "client_id": client.client_id, "jti": "j1", "credential": client.credential,
                "partner": w.direct, "grant": grant, "use_case": "Delivery status sync", "api": w.api,
                "approvals": [w.alice.0],
                "operation": { "scope": "orders:read", "method": "GET", "path": "/orders/{id}", "data_class": "confidential", "region": "eu" },
            }))
        };
        let write = |records: Vec<charter_store::AuditRecord>| app.state.repo.write(charter_store::Unit { ops: vec![], audit: records });
        write(vec![decision("203.0.113.7"), decision("203.0.113.99")]).await.unwrap();
        assert!(about(&app, "credential_shared", &client.credential).await.is_none(), "one /24 is one network");
        write(vec![decision("198.51.100.4")]).await.unwrap();
        let f = about(&app, "credential_shared", &client.credential).await.unwrap();
        assert_mapping(&f, "credential_shared", "high", "NHI9", "PR.AA-01");
        assert_eq!(f["subject"]["type"], "credential");
        assert_eq!(f["evidence"]["client_id"], client.client_id.as_str());
        assert_eq!(f["evidence"]["networks"], json!(["198.51.100.0/24", "203.0.113.0/24"]));
        assert_eq!(f["evidence"]["grants"], json!([grant]));
        assert_eq!(findings(&app, &w.alice.1, "credential_shared").await.len(), 1);
        // Only the last 24 hours count.
        app.clock.advance(SignedDuration::from_hours(25));
        assert!(about(&app, "credential_shared", &client.credential).await.is_none());
    }

    async fn a_client_whose_secret_is_being_guessed(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let form = [("grant_type", "client_credentials")];
        let guess = |n: usize| {
            let client_id = client.client_id.clone();
            let app = &app;
            async move {
                for i in 0..n {
                    let wrong = format!("not-the-secret-{i}");
                    let (s, _, _) = app.token_request(&form, Some((&client_id, &wrong)), None).await;
                    assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS, "{s}");
                }
            }
        };
        guess(GUESSING_FAILURES as usize - 1).await;
        assert!(about(&app, "credential_guessing", &client.credential).await.is_none(), "below the bar");
        guess(1).await;
        let f = about(&app, "credential_guessing", &client.credential).await.unwrap();
        assert_mapping(&f, "credential_guessing", "high", "NHI2", "PR.AA-03");
        assert_eq!(f["subject"]["type"], "credential");
        assert_eq!(f["evidence"]["client_id"], client.client_id.as_str());
        assert_eq!(f["evidence"]["failures"], GUESSING_FAILURES);
        assert_eq!(f["evidence"]["grant"], grant.as_str());
        // The partner's owner sees it; the real client still gets its token.
        assert_eq!(findings(&app, &w.alice.1, "credential_guessing").await.len(), 1);
        let (s, body, _) = app.token_request(&form, Some((&client.client_id, &client.secret)), None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        // Guessing at an id no credential has is no partner's finding.
        for _ in 0..GUESSING_FAILURES {
            app.token_request(&form, Some(("chc_nobody", "x")), None).await;
        }
        assert_eq!(findings(&app, ADMIN_TOKEN, "credential_guessing").await.len(), 1);
        // Only the last hour counts.
        app.clock.advance(SignedDuration::from_mins(61));
        assert!(about(&app, "credential_guessing", &client.credential).await.is_none());
    }

    async fn break_glass_left_unreviewed(app: TestApp) {
        let w = World::new(&app).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["emergency"] = json!({ "incident": "INC-7" });
        body["expires_at"] = json!((app.clock.now() + SignedDuration::from_hours(4)).to_string());
        let (s, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let grant = g["id"].as_str().unwrap().to_owned();
        app.clock.advance(SignedDuration::from_hours(71));
        assert_eq!(charter_server::scheduler::tick(&app.state).await.unwrap().expired, vec![grant.clone()]);
        assert!(about(&app, "emergency_unreviewed", &grant).await.is_none());
        app.clock.advance(SignedDuration::from_hours(1));
        let f = about(&app, "emergency_unreviewed", &grant).await.unwrap();
        assert_mapping(&f, "emergency_unreviewed", "critical", "NHI5", "PR.AA-05");
        assert_eq!(f["evidence"]["incident"], "INC-7");
        assert_eq!(f["evidence"]["opened_by"], w.steward.0.as_str());
        assert_eq!(findings(&app, &w.alice.1, "emergency_unreviewed").await.len(), 1);

        // The late review still clears it.
        let (_, page) = app.get("/v1/reviews?kind=post_incident", &w.alice.1).await;
        let r = &page["items"][0];
        let (s, v) = app.post(&format!("/v1/reviews/{}/items/{}/attest", r["id"].as_str().unwrap(), r["items"][0]["id"].as_str().unwrap()),
            &w.alice.1, json!({ "decision": "revoke", "justification": "access was broader than the incident needed" })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(about(&app, "emergency_unreviewed", &grant).await.is_none());
    }

    async fn a_failed_offboarding(app: TestApp) {
        let w = wired_world(&app).await;
        let _grant = w.active_grant(&app).await;
        // A registered gateway that cannot be reached: removal there cannot be verified.
        use charter_gateway::registry::NodeKind;
        crate::offboarding::register(&app, NodeKind::Control, "cn_main", &app.base).await;
        crate::offboarding::register(&app, NodeKind::Gateway, "gw_gone", "http://127.0.0.1:9").await;
        let (s, rec) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "contract terminated" })).await;
        assert_eq!(s, StatusCode::OK, "{rec}");
        assert_eq!(rec["status"], "failed", "{rec}");
        let f = about(&app, "offboarding_failed", rec["id"].as_str().unwrap()).await.unwrap();
        assert_mapping(&f, "offboarding_failed", "critical", "NHI1", "PR.AA-05");
        assert_eq!(f["subject"]["type"], "offboarding");
        assert_eq!(f["evidence"]["partner"], w.direct.as_str());
        let failed = f["evidence"]["failed_checks"].as_array().unwrap();
        assert_eq!(f["evidence"]["status"], "failed");
        assert!(!failed.is_empty() && failed.iter().all(|c| c["name"].as_str().unwrap().starts_with("gateway_")), "{f}");
        assert!(failed.iter().any(|c| c["name"] == "gateway_denies"), "{f}");
    }
}
