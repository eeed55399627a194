//! Several nodes on one PostgreSQL database: a gateway node learns of changes made by a
//! control-plane node through the change feed, and a gateway whose view is stale refuses.

use std::sync::Arc;
use std::time::Duration;

use charter_server::clock::ManualClock;
use charter_server::{Settings, app_state};
use charter_store::Durability;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::TcpListener;

use crate::harness::{Backend, TestApp, World, drop_database};

/// A second node (its own state, live view and gateway listener) on the first node's
/// database, following the change feed.
async fn second_gateway(app: &TestApp, stale: bool) -> String {
    let store = charter_store::open(&app.db_url, Durability::Process)
        .await
        .unwrap();
    let clock = app.clock.clone() as Arc<ManualClock>;
    let settings = Settings {
        issuer: app.base.clone(),
        ..Settings::default()
    };
    // Nodes share the master key (CHARTER_MASTER_KEY in production).
    let master = charter_server::master_key(app.dir.path(), None).unwrap();
    let state = app_state(store.clone(), clock.clone(), settings, master)
        .await
        .unwrap();
    let mut gw = charter_server::gateway(&state, "production", false).unwrap();
    if stale {
        let health = Arc::new(charter_gateway::feed::FeedHealth::new(Duration::ZERO));
        health.require();
        Arc::get_mut(&mut gw).unwrap().feed = health;
    } else {
        tokio::spawn(charter_gateway::feed::run(
            store,
            state.repo.live.clone(),
            state.feed.clone(),
            clock,
            Duration::from_secs(10),
        ));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(charter_server::listen::serve(
        listener,
        charter_gateway::router(gw),
        None,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

async fn call(app: &TestApp, gw: &str, token: &str) -> (StatusCode, String) {
    let resp = app
        .http
        .get(format!("{gw}/orders/orders/1"))
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

/// Polls until the other node's answer changes (the feed is asynchronous); gives up after
/// a generous bound so a broken feed fails the test instead of hanging it.
async fn eventually(
    app: &TestApp,
    gw: &str,
    token: &str,
    want: StatusCode,
) -> (StatusCode, String) {
    let mut last = (StatusCode::IM_A_TEAPOT, String::new());
    for _ in 0..500 {
        last = call(app, gw, token).await;
        if last.0 == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_follows_the_change_feed() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let db = app.pg_db.clone();
    // The second node starts before anything exists: everything it learns comes by the feed.
    let gw2 = second_gateway(&app, false).await;
    let w = World::new(&app).await;
    let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
    api["upstream"] = json!(app.upstream);
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/apis/{}", w.api),
            Some(&w.owner.1),
            Some(api),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let grant = w.active_grant(&app).await;
    let client = w.client(&app, &grant).await;
    let token = app.token_for(&client).await;
    assert_eq!(
        eventually(&app, &gw2, &token, StatusCode::OK).await.0,
        StatusCode::OK
    );

    let (s, _) = app
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &w.steward.1,
            json!({ "reason": "ended" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (status, reason) = eventually(&app, &gw2, &token, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        (status, reason.as_str()),
        (StatusCode::UNAUTHORIZED, "grant_revoked")
    );
    drop_database(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_a_stale_view_fails_closed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
    api["upstream"] = json!(app.upstream);
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/apis/{}", w.api),
            Some(&w.owner.1),
            Some(api),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let grant = w.active_grant(&app).await;
    let client = w.client(&app, &grant).await;
    let token = app.token_for(&client).await;
    assert_eq!(call(&app, &app.gw, &token).await.0, StatusCode::OK);
    let stale = second_gateway(&app, true).await;
    assert_eq!(
        call(&app, &stale, &token).await,
        (StatusCode::SERVICE_UNAVAILABLE, "policy_stale".to_owned())
    );
}
