//! Grant requests, approvals and the lifecycle state machine, over HTTP.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, World};

fn approve(justification: &str) -> serde_json::Value {
    json!({ "decision": "approve", "justification": justification, "ticket": "CHG-42" })
}

both_backends! {
    async fn request_and_approve(app: TestApp) {
        let w = World::new(&app).await;
        let (s, g) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.direct)).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let id = g["id"].as_str().unwrap();
        assert!(id.starts_with("grt_") && id.len() == 30);
        assert_eq!(g["status"], "pending");
        // Defaults from the contract.
        assert_eq!(g["token_ttl_seconds"], 600);
        assert_eq!(g["recertify_every_days"], 90);
        assert_eq!(g["environments"], json!(["production"]));
        assert_eq!(g["approvals_required"], 1);
        assert_eq!(g["requested_by"], w.steward.0.as_str());

        // An approver who does not own the partner cannot approve.
        let (_, carol) = app.principal("carol", &["approver"]).await;
        let (s, e) = app.post(&format!("/v1/grants/{id}/approvals"), &carol, approve("ok")).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");

        let (s, g) = app.post(&format!("/v1/grants/{id}/approvals"), &w.alice.1, approve("needed for deliveries")).await;
        assert_eq!(s, StatusCode::OK, "{g}");
        assert_eq!(g["status"], "active");
        assert_eq!(g["approvals"][0]["approver"], w.alice.0.as_str());
        assert_eq!(g["approvals"][0]["ticket"], "CHG-42");
        assert!(g["review_due_at"].is_string());

        // The approval is in the audit log with its justification.
        let (_, page) = app.get(&format!("/v1/audit?target={id}"), &w.auditor.1).await;
        let actions: Vec<_> = page["items"].as_array().unwrap().iter().map(|i| i["record"]["action"].as_str().unwrap().to_owned()).collect();
        assert_eq!(actions, ["grant.request", "grant.approve"]);
        let rec = &page["items"][1]["record"];
        assert_eq!(rec["actor"], w.alice.0.as_str());
        assert_eq!(rec["details"]["justification"], "needed for deliveries");
        assert_eq!(rec["details"]["changed"]["status"], json!(["pending", "active"]));

        // Deciding again on an active grant is an illegal transition.
        let (s, _) = app.post(&format!("/v1/grants/{id}/approvals"), &w.bob.1, approve("late")).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    async fn requester_never_approves(app: TestApp) {
        let w = World::new(&app).await;
        // A steward who is also an approver and owner of the partner.
        let (dual_id, dual) = app.principal("dual-hat", &["steward", "approver"]).await;
        let (s, _) = app.call(reqwest::Method::PATCH, &format!("/v1/partners/{}", w.direct), Some(ADMIN_TOKEN),
            Some(json!({ "owners": [w.alice.0, dual_id] }))).await;
        assert_eq!(s, StatusCode::OK);
        let (s, g) = app.post("/v1/grants", &dual, w.grant_body(&app, &w.direct)).await;
        assert_eq!(s, StatusCode::CREATED);
        let id = g["id"].as_str().unwrap();
        let (s, e) = app.post(&format!("/v1/grants/{id}/approvals"), &dual, approve("self-approval")).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        assert!(e["error_description"].as_str().unwrap().contains("requester"));
        let (_, g) = app.get(&format!("/v1/grants/{id}"), &w.auditor.1).await;
        assert_eq!(g["status"], "pending");
        assert_eq!(g["approvals"], json!([]));
    }

    async fn reseller_needs_distinct_owners(app: TestApp) {
        let w = World::new(&app).await;
        let mut body = w.grant_body(&app, &w.reseller);
        body["approvals_required"] = json!(1);
        let (s, e) = app.post("/v1/grants", &w.steward.1, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        body["approvals_required"] = json!(3);
        let (s, _) = app.post("/v1/grants", &w.steward.1, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "more approvals than owners");
        body.as_object_mut().unwrap().remove("approvals_required");
        let (s, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        assert_eq!(g["approvals_required"], 2);
        let id = g["id"].as_str().unwrap();

        let (s, g) = app.post(&format!("/v1/grants/{id}/approvals"), &w.alice.1, approve("one")).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("pending")));
        // The same owner twice counts once.
        let (s, _) = app.post(&format!("/v1/grants/{id}/approvals"), &w.alice.1, approve("again")).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, g) = app.post(&format!("/v1/grants/{id}/approvals"), &w.bob.1, approve("two")).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("active")));
    }

    async fn one_rejection_ends_the_request(app: TestApp) {
        let w = World::new(&app).await;
        let id = w.pending_grant(&app).await;
        let (s, g) = app.post(&format!("/v1/grants/{id}/approvals"), &w.alice.1,
            json!({ "decision": "reject", "justification": "no business need" })).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("rejected")));
        for path in ["suspend", "resume", "revoke"] {
            let (s, e) = app.post(&format!("/v1/grants/{id}/{path}"), &w.steward.1, json!({ "reason": "x" })).await;
            assert_eq!(s, StatusCode::CONFLICT, "{path}: {e}");
        }
    }

    async fn reach_is_checked_against_ceiling_and_regions(app: TestApp) {
        let w = World::new(&app).await;
        let before = app.audit_count().await;
        // orders:read reaches confidential data: an internal ceiling is refused.
        let mut body = w.grant_body(&app, &w.direct);
        body["data_class_ceiling"] = json!("internal");
        let (s, e) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e["error_description"].as_str().unwrap().contains("ceiling"), "{e}");
        // orders:export lives in us, outside the grant's regions.
        let mut body = w.grant_body(&app, &w.direct);
        body["scopes"] = json!(["orders:export"]);
        body["data_class_ceiling"] = json!("restricted");
        let (s, e) = app.post("/v1/grants", &w.steward.1, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        // Reaching us, outside the partner's processing regions (eu), needs a transfer basis.
        body["regions"] = json!(["us"]);
        let (s, e) = app.post("/v1/grants", &w.steward.1, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e["error_description"].as_str().unwrap().contains("transfer_basis"), "{e}");
        // An unknown scope.
        let mut bad = w.grant_body(&app, &w.direct);
        bad["scopes"] = json!(["orders:delete"]);
        assert_eq!(app.post("/v1/grants", &w.steward.1, bad).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.audit_count().await, before, "refused requests write nothing");

        body["transfer_basis"] = json!("SCC 2021/914 module 2");
        let (s, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        assert_eq!(g["transfer_basis"], "SCC 2021/914 module 2");
    }

    async fn limits_on_time_and_ttl(app: TestApp) {
        let w = World::new(&app).await;
        let post = |body: serde_json::Value| {
            let app = &app;
            let token = w.steward.1.clone();
            async move { app.post("/v1/grants", &token, body).await }
        };
        let mut body = w.grant_body(&app, &w.direct);
        body.as_object_mut().unwrap().remove("expires_at");
        assert_eq!(post(body).await.0, StatusCode::UNPROCESSABLE_ENTITY, "no permanent access");
        let mut body = w.grant_body(&app, &w.direct);
        body["expires_at"] = json!(app.in_days(366));
        assert_eq!(post(body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let mut body = w.grant_body(&app, &w.direct);
        body["expires_at"] = json!(app.in_days(-1));
        assert_eq!(post(body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let mut body = w.grant_body(&app, &w.direct);
        body["token_ttl_seconds"] = json!(3601);
        assert_eq!(post(body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let mut body = w.grant_body(&app, &w.direct);
        body["recertify_every_days"] = json!(366);
        assert_eq!(post(body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let mut body = w.grant_body(&app, &w.direct);
        body["time_window"] = json!({ "days": ["mon"], "start": "09:00", "end": "17:00", "timezone": "Nowhere/Atlantis" });
        assert_eq!(post(body).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let mut body = w.grant_body(&app, &w.direct);
        body["time_window"] = json!({ "days": ["mon", "fri"], "start": "22:00", "end": "06:00", "timezone": "Europe/Berlin" });
        body["token_ttl_seconds"] = json!(3600);
        let (s, g) = post(body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        assert_eq!(g["time_window"]["start"], "22:00");
    }

    async fn emergency_grant_is_active_at_once_and_short(app: TestApp) {
        let w = World::new(&app).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["emergency"] = json!({ "incident": "INC-123" });
        let (s, e) = app.post("/v1/grants", &w.steward.1, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "90 days is too long for break-glass: {e}");
        use charter_core::Clock;
        body["expires_at"] = json!((app.clock.now() + jiff::SignedDuration::from_hours(4)).to_string());
        let (s, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        assert_eq!(g["status"], "active");
        assert_eq!(g["emergency"]["incident"], "INC-123");
        let (_, page) = app.get(&format!("/v1/audit?target={}", g["id"].as_str().unwrap()), ADMIN_TOKEN).await;
        assert_eq!(page["items"][0]["record"]["action"], "grant.emergency_open");
    }

    async fn suspend_resume_revoke(app: TestApp) {
        let w = World::new(&app).await;
        let id = w.active_grant(&app).await;
        let url = |p: &str| format!("/v1/grants/{id}/{p}");
        let (s, e) = app.post(&url("resume"), &w.steward.1, json!({ "reason": "x" })).await;
        assert_eq!(s, StatusCode::CONFLICT, "resume of an active grant: {e}");
        let (s, g) = app.post(&url("suspend"), &w.steward.1, json!({ "reason": "partner under investigation" })).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("suspended")));
        assert_eq!(g["status_reason"], "partner under investigation");
        let (s, g) = app.post(&url("resume"), &w.steward.1, json!({ "reason": "cleared" })).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("active")));
        let epoch = g["epoch"].as_u64().unwrap();
        let (s, g) = app.post(&url("revoke"), &w.steward.1, json!({ "reason": "contract ended" })).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("revoked")));
        assert_eq!(g["epoch"].as_u64().unwrap(), epoch + 1, "revocation bumps the epoch");
        assert!(g["ended_at"].is_string());
        for p in ["suspend", "resume", "revoke"] {
            assert_eq!(app.post(&url(p), &w.steward.1, json!({ "reason": "x" })).await.0, StatusCode::CONFLICT);
        }
        // A reason is required.
        let other = w.active_grant(&app).await;
        let (s, _) = app.post(&format!("/v1/grants/{other}/suspend"), &w.steward.1, json!({})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn visibility_follows_ownership(app: TestApp) {
        let w = World::new(&app).await;
        let acme = w.active_grant(&app).await;
        let (s, g) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.reseller)).await;
        assert_eq!(s, StatusCode::CREATED);
        let globex = g["id"].as_str().unwrap().to_owned();
        // bob owns only the reseller.
        let (_, page) = app.get("/v1/grants", &w.bob.1).await;
        let ids: Vec<_> = page["items"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, vec![globex]);
        assert_eq!(app.get(&format!("/v1/grants/{acme}"), &w.bob.1).await.0, StatusCode::NOT_FOUND);
        // Another API owner sees neither grant (both are on orders-team's API).
        let (_, other_owner) = app.principal("billing-team", &["api_owner"]).await;
        let (_, page) = app.get("/v1/grants", &other_owner).await;
        assert_eq!(page["items"], json!([]));
        let (_, page) = app.get("/v1/grants", &w.owner.1).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        // Filters.
        let (_, page) = app.get(&format!("/v1/grants?partner={}&status=active", w.direct), &w.auditor.1).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["id"], acme.as_str());
    }

    async fn saas_connector_needs_a_recorded_data_exception(app: TestApp) {
        let w = World::new(&app).await;
        let (s, _) = app.post("/v1/partners", &w.steward.1, json!({ "name": "CRM Connector", "kind": "saas_connector", "regions": ["eu"] })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a SaaS connector needs an accountable owner");
        let (s, p) = app.post("/v1/partners", &w.steward.1, json!({ "name": "CRM Connector", "kind": "saas_connector", "regions": ["eu"], "owners": [w.bob.0] })).await;
        assert_eq!(s, StatusCode::CREATED);
        let saas = p["id"].as_str().unwrap().to_owned();
        // Internal data: an ordinary approval.
        let mut body = w.grant_body(&app, &saas);
        body["scopes"] = json!(["orders:list"]);
        body["data_class_ceiling"] = json!("internal");
        let (_, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(g["data_exception_required"], false);
        let (s, _) = app.post(&format!("/v1/grants/{}/approvals", g["id"].as_str().unwrap()), &w.bob.1, approve("ok")).await;
        assert_eq!(s, StatusCode::OK);
        // Confidential data: the approval must record the exception.
        let (_, g) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &saas)).await;
        assert_eq!(g["data_exception_required"], true);
        let id = g["id"].as_str().unwrap();
        let (s, e) = app.post(&format!("/v1/grants/{id}/approvals"), &w.bob.1, approve("ok")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (s, g) = app.post(&format!("/v1/grants/{id}/approvals"), &w.bob.1,
            json!({ "decision": "approve", "justification": "ok", "data_exception": "DPA 2026-14 covers order PII" })).await;
        assert_eq!((s, g["status"].as_str()), (StatusCode::OK, Some("active")));
        assert_eq!(g["approvals"][0]["data_exception"], "DPA 2026-14 covers order PII");
    }
}
