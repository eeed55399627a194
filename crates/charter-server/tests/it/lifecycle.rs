//! The lifecycle scheduler, driven by the injected clock: grants stop at the second they
//! expire, overdue recertification suspends (fail closed), break-glass ends on time.

use charter_core::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, World};

both_backends! {
    async fn a_grant_stops_at_the_second_it_expires(app: TestApp) {
        let w = World::new(&app).await;
        let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
        api["upstream"] = json!(app.upstream);
        assert_eq!(app.call(reqwest::Method::PUT, &format!("/v1/apis/{}", w.api), Some(&w.owner.1), Some(api)).await.0, StatusCode::OK);
        let mut body = w.grant_body(&app, &w.direct);
        let expires = app.clock.now() + SignedDuration::from_hours(24);
        body["expires_at"] = json!(expires.to_string());
        let (_, g) = app.post("/v1/grants", &w.steward.1, body).await;
        let grant = g["id"].as_str().unwrap().to_owned();
        app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1, json!({ "decision": "approve", "justification": "ok" })).await;
        let client = w.client(&app, &grant).await;
        app.clock.set(expires - SignedDuration::from_secs(300));
        let token = app.token_for(&client).await;
        let call = || app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token).send();
        app.clock.set(expires - SignedDuration::from_secs(1));
        assert_eq!(call().await.unwrap().status(), StatusCode::OK);
        app.clock.set(expires);
        let resp = call().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no access at expires_at, even before the scheduler runs");
        assert_eq!(resp.headers()["x-charter-reason"], "grant_inactive");
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&client.client_id, &client.secret)), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let report = charter_server::scheduler::tick(&app.state).await.unwrap();
        assert_eq!(report.expired, vec![grant.clone()]);
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["status"], "expired");
        let (_, page) = app.get(&format!("/v1/audit?target={grant}&action=grant.expire"), ADMIN_TOKEN).await;
        assert_eq!(page["items"][0]["record"]["actor"], "system");
        // A second tick changes nothing.
        assert_eq!(charter_server::scheduler::tick(&app.state).await.unwrap(), Default::default());
    }

    async fn overdue_recertification_suspends(app: TestApp) {
        let w = World::new(&app).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["recertify_every_days"] = json!(30);
        let (_, g) = app.post("/v1/grants", &w.steward.1, body).await;
        let grant = g["id"].as_str().unwrap().to_owned();
        app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1, json!({ "decision": "approve", "justification": "ok" })).await;
        app.clock.advance(SignedDuration::from_hours(24 * 30 - 1));
        assert!(charter_server::scheduler::tick(&app.state).await.unwrap().suspended_overdue.is_empty());
        app.clock.advance(SignedDuration::from_hours(1));
        let report = charter_server::scheduler::tick(&app.state).await.unwrap();
        assert_eq!(report.suspended_overdue, vec![grant.clone()]);
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!((g["status"].as_str(), g["status_reason"].as_str()), (Some("suspended"), Some("recertification overdue")));
    }

    async fn break_glass_ends_on_time(app: TestApp) {
        let w = World::new(&app).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["emergency"] = json!({ "incident": "INC-7" });
        body["expires_at"] = json!((app.clock.now() + SignedDuration::from_hours(2)).to_string());
        let (s, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED);
        let grant = g["id"].as_str().unwrap().to_owned();
        app.clock.advance(SignedDuration::from_hours(2));
        let report = charter_server::scheduler::tick(&app.state).await.unwrap();
        assert_eq!(report.expired, vec![grant.clone()]);
        let (_, page) = app.get(&format!("/v1/audit?target={grant}&action=grant.emergency_end"), ADMIN_TOKEN).await;
        assert_eq!(page["items"][0]["record"]["details"]["emergency"], "INC-7");
    }

    async fn credentials_expire_at_max_age(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let (s, c) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "client_secret", "max_age_days": 10 })).await;
        assert_eq!(s, StatusCode::CREATED);
        let id = c["id"].as_str().unwrap().to_owned();
        app.clock.advance(SignedDuration::from_hours(24 * 10));
        let report = charter_server::scheduler::tick(&app.state).await.unwrap();
        assert_eq!(report.credentials_expired, vec![id.clone()]);
        let (_, cred) = app.get(&format!("/v1/credentials/{id}"), ADMIN_TOKEN).await;
        assert_eq!(cred["status"], "expired");
        let (_, page) = app.get(&format!("/v1/audit?target={id}&action=credential.expire"), ADMIN_TOKEN).await;
        assert_eq!(page["items"][0]["record"]["actor"], "system");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_node_leads_the_scheduler() {
    let app = crate::harness::TestApp::spawn(crate::harness::Backend::Postgres).await;
    let db = app.pg_db.clone();
    let other = charter_store::open(&app.db_url, charter_store::Durability::Process)
        .await
        .unwrap();
    let mut first = app
        .state
        .repo
        .store
        .try_lead()
        .await
        .unwrap()
        .expect("the first node leads");
    assert!(
        other.try_lead().await.unwrap().is_none(),
        "a second node does not"
    );
    assert!(first.alive().await);
    drop(first);
    // The lock goes with the leader's connection; the other node can take over.
    let mut taken = None;
    for _ in 0..100 {
        taken = other.try_lead().await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(taken.is_some());
    drop(taken);
    crate::harness::drop_database(db).await;
}
