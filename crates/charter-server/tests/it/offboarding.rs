//! Offboarding revokes everything and then verifies removal at the token endpoint, at
//! introspection and at every registered gateway; a gateway that kept an old view of the
//! grant makes the offboarding fail, visibly.

use std::sync::Arc;

use charter_core::Clock;
use charter_gateway::registry::GatewayRecord;
use charter_store::{Op, Unit, Versioned};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};

async fn register(app: &TestApp, id: &str, base: &str) {
    let now = app.clock.now();
    let rec = GatewayRecord {
        id: id.into(),
        check_url: format!("{base}/v1/authz/check"),
        environment: "production".into(),
        started_at: now,
        heartbeat_at: now,
    };
    app.state
        .repo
        .write(Unit {
            ops: vec![Op::Insert(Versioned::new_doc(&rec, None))],
            audit: vec![],
        })
        .await
        .unwrap();
}

/// A gateway with its own live view, loaded now and never updated: a broken revocation feed.
async fn stale_gateway(app: &TestApp) -> String {
    let live = Arc::new(
        charter_gateway::Live::load(app.state.repo.store.as_ref())
            .await
            .unwrap(),
    );
    let gw = Arc::new(charter_gateway::Gateway {
        live,
        verified: Arc::default(),
        replay: Arc::default(),
        writer: app.state.repo.writer.clone(),
        clock: app.state.repo.clock.clone(),
        config: charter_gateway::GatewayConfig {
            id: "gw_stale".into(),
            issuer: app.base.clone(),
            environment: charter_core::Environment::parse("production").unwrap(),
            tls: false,
            public_url: None,
            anonymous_per_minute: charter_gateway::ANONYMOUS_PER_MINUTE,
            upstream_timeout: std::time::Duration::from_secs(5),
        },
        upstream: charter_gateway::proxy::Upstream::new().unwrap(),
        feed: Arc::new(charter_gateway::feed::FeedHealth::new(
            std::time::Duration::from_secs(30),
        )),
        anonymous: charter_gateway::pipeline::AnonymousThrottle::per_minute(
            charter_gateway::ANONYMOUS_PER_MINUTE,
        ),
    });
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

async fn world_with_access(app: &TestApp) -> (World, String, crate::oauth::Client, String) {
    let w = World::new(app).await;
    let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
    api["upstream"] = json!(app.upstream);
    assert_eq!(
        app.call(
            reqwest::Method::PUT,
            &format!("/v1/apis/{}", w.api),
            Some(&w.owner.1),
            Some(api)
        )
        .await
        .0,
        StatusCode::OK
    );
    let grant = w.active_grant(app).await;
    let client = w.client(app, &grant).await;
    let token = app.token_for(&client).await;
    (w, grant, client, token)
}

fn checks_named<'a>(rec: &'a Value, name: &str) -> Vec<&'a Value> {
    rec["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

both_backends! {
    async fn offboarding_revokes_and_verifies(app: TestApp) {
        let (w, grant, client, token) = world_with_access(&app).await;
        let pending = w.pending_grant(&app).await;
        register(&app, "gw_main", &app.gw).await;
        assert_eq!(app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token).send().await.unwrap().status(), StatusCode::OK);

        let (s, rec) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "contract terminated" })).await;
        assert_eq!(s, StatusCode::OK, "{rec}");
        assert_eq!(rec["status"], "completed", "{rec}");
        assert!(rec["id"].as_str().unwrap().starts_with("off_"));
        for key in ["started_at", "finished_at"] {
            assert!(rec[key].is_string());
        }
        let revoked: Vec<_> = rec["revoked_grants"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(revoked.contains(&grant.as_str()) && revoked.contains(&pending.as_str()));
        let tok = checks_named(&rec, "token_endpoint_refuses");
        assert_eq!(tok.len(), 1);
        assert_eq!(tok[0]["target"], client.client_id.as_str());
        assert_eq!(checks_named(&rec, "introspection_inactive").len(), 2, "one canary per live grant");
        assert_eq!(checks_named(&rec, "gateway_denies").len(), 2);
        assert!(rec["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true && c["at"].is_string()));

        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarded");
        // Removal holds for real, not only in the record.
        let resp = app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&client.client_id, &client.secret)), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Canaries never leave Charter: no canary token in the audit log, only their jti.
        let (_, page) = app.get(&format!("/v1/audit?target={}&action=partner.offboard", w.direct), ADMIN_TOKEN).await;
        assert_eq!(page["items"][0]["record"]["details"]["status"], "completed");
        // An offboarded partner cannot be offboarded again, nor get grants.
        let (s, _) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "again" })).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.direct)).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    async fn a_gateway_that_kept_an_old_epoch_fails_the_offboarding(app: TestApp) {
        let (w, grant, _client, _token) = world_with_access(&app).await;
        register(&app, "gw_main", &app.gw).await;
        let stale = stale_gateway(&app).await;
        register(&app, "gw_stale", &stale).await;
        let (s, rec) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "contract terminated" })).await;
        assert_eq!(s, StatusCode::OK, "{rec}");
        assert_eq!(rec["status"], "failed");
        let failed: Vec<_> = rec["checks"].as_array().unwrap().iter().filter(|c| c["passed"] == false).collect();
        assert_eq!(failed.len(), 1, "{rec}");
        assert_eq!(failed[0]["name"], "gateway_denies");
        assert!(failed[0]["target"].as_str().unwrap().starts_with("gw_stale"));
        assert!(failed[0]["detail"].as_str().unwrap().starts_with("200"));
        // Not done: the partner stays in offboarding; the grant is revoked regardless.
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarding");
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["status"], "revoked");
    }
}
