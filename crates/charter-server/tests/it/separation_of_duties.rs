//! Owner changes cannot choose who approves: a grant's approvers are the partner's owners when
//! it was requested, only an admin changes owners (audited, before and after), and whoever
//! changed the owners after a request cannot approve it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, World};

fn approve() -> Value {
    json!({ "decision": "approve", "justification": "needed for deliveries", "ticket": "CHG-7" })
}

async fn patch(
    app: &crate::harness::TestApp,
    id: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.call(
        Method::PATCH,
        &format!("/v1/partners/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

both_backends! {
    async fn steward_who_requested_a_grant_cannot_change_the_owners(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.pending_grant(&app).await;
        // The requester tries to hand the approval to a principal of its choosing.
        let (s, v) = patch(&app, &w.direct, &w.steward.1, json!({ "owners": [w.bob.0] })).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["error"], "forbidden");
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["owners"], json!([w.alice.0]), "the owners are unchanged");
        // Regions stay a steward's call.
        let (s, p) = patch(&app, &w.direct, &w.steward.1, json!({ "regions": ["eu", "us"] })).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["regions"], json!(["eu", "us"]));
        // Bob, never an owner at request time, cannot approve.
        let (s, v) = app.post(&format!("/v1/grants/{grant}/approvals"), &w.bob.1, approve()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }

    async fn steward_approver_adding_itself_as_owner_cannot_approve(app: TestApp) {
        let w = World::new(&app).await;
        let mallory = app.principal("mallory", &["steward", "approver"]).await;
        let grant = w.pending_grant(&app).await;
        let (s, v) = patch(&app, &w.direct, &mallory.1, json!({ "owners": [w.alice.0, mallory.0] })).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "a steward cannot add itself as owner: {v}");
        let (s, v) = app.post(&format!("/v1/grants/{grant}/approvals"), &mallory.1, approve()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        // Even once an admin makes it an owner, the grant requested before stays out of reach.
        let (s, v) = patch(&app, &w.direct, ADMIN_TOKEN, json!({ "owners": [w.alice.0, mallory.0] })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = app.post(&format!("/v1/grants/{grant}/approvals"), &mallory.1, approve()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!((g["status"].as_str(), g["approvals"].as_array().map(Vec::len)), (Some("pending"), Some(0)));
    }

    async fn owners_changed_after_request_new_owner_cannot_approve_snapshot_owner_can(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.pending_grant(&app).await;
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["approvers"], json!([w.alice.0]), "snapshot of the owners at request time");

        let (s, p) = patch(&app, &w.direct, ADMIN_TOKEN, json!({ "owners": [w.bob.0] })).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["owners"], json!([w.bob.0]));
        // Audited with the owners before and after.
        let (_, page) = app
            .get(&format!("/v1/audit?target={}&action=partner.update", w.direct), ADMIN_TOKEN)
            .await;
        let rec = page["items"].as_array().unwrap().last().cloned().unwrap();
        assert_eq!(rec["record"]["details"]["owners_change"], json!({ "before": [w.alice.0], "after": [w.bob.0] }), "{rec}");

        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["approvers"], json!([w.alice.0]), "later owner changes leave the snapshot alone");
        let (s, v) = app.post(&format!("/v1/grants/{grant}/approvals"), &w.bob.1, approve()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the new owner cannot approve: {v}");
        let (s, g) = app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1, approve()).await;
        assert_eq!(s, StatusCode::OK, "the owner at request time can: {g}");
        assert_eq!(g["status"], "active");
        // A grant requested now has the new owners as approvers.
        let later = w.pending_grant(&app).await;
        let (_, g) = app.get(&format!("/v1/grants/{later}"), ADMIN_TOKEN).await;
        assert_eq!(g["approvers"], json!([w.bob.0]));
    }

    async fn admin_who_changed_owners_after_request_cannot_approve(app: TestApp) {
        let w = World::new(&app).await;
        // An admin who is also an approver owns the partner with alice.
        let root = app.principal("root-approver", &["admin", "approver"]).await;
        let (s, v) = patch(&app, &w.direct, ADMIN_TOKEN, json!({ "owners": [w.alice.0, root.0] })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let grant = w.pending_grant(&app).await;
        // It then reshapes the owner set after the request...
        let (s, v) = patch(&app, &w.direct, &root.1, json!({ "owners": [root.0, w.bob.0] })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // ...and cannot approve what was requested before its change.
        let (s, v) = app.post(&format!("/v1/grants/{grant}/approvals"), &root.1, approve()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["error_description"].as_str().unwrap().contains("changed the partner's owners"), "{v}");
        // A grant requested after its change is its to approve.
        app.clock.advance(jiff::SignedDuration::from_mins(1));
        let later = w.pending_grant(&app).await;
        let (s, g) = app.post(&format!("/v1/grants/{later}/approvals"), &root.1, approve()).await;
        assert_eq!(s, StatusCode::OK, "{g}");
    }
}
