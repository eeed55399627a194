//! Offboarding revokes everything and then proves removal over HTTP at every registered node:
//! canaries accepted before revocation and refused for the revocation after it, at the token
//! endpoint and introspection of every control node and at every gateway. Each attack here
//! is one the old verification let through: a 403 counted as proof, a retry that verified
//! nothing, a deployment with nothing to probe.

use std::sync::Arc;

use charter_core::Clock;
use charter_gateway::registry::{NodeKind, NodeRecord};
use charter_store::{Op, Unit, Versioned};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};

/// Registers a node as `charter serve` does (heartbeat now).
pub async fn register(app: &TestApp, kind: NodeKind, id: &str, url: &str) {
    let now = app.clock.now();
    let rec = NodeRecord {
        id: id.into(),
        kind,
        url: url.into(),
        environment: "production".into(),
        started_at: now,
        heartbeat_at: now,
    };
    let doc = Versioned::new_doc(&rec, None);
    let existing = app
        .state
        .repo
        .store
        .get(charter_store::Kind::Gateway, id)
        .await
        .unwrap();
    let op = match existing {
        Some(old) => {
            let old: Versioned<NodeRecord> = Versioned::from_doc(&old).unwrap();
            Op::Update(old.next_doc(&rec))
        }
        None => Op::Insert(doc),
    };
    app.state
        .repo
        .write(Unit {
            ops: vec![op],
            audit: vec![],
        })
        .await
        .unwrap();
}

/// The app's own control plane and gateway, registered at their listeners.
pub async fn register_app(app: &TestApp) {
    register(app, NodeKind::Control, "cn_main", &app.base).await;
    register(app, NodeKind::Gateway, "gw_main", &app.gw).await;
}

/// A gateway with its own live view, loaded now and never updated (a broken revocation
/// feed), enforcing `environment`.
async fn stale_gateway(app: &TestApp, environment: &str) -> String {
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
            environment: charter_core::Environment::parse(environment).unwrap(),
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
    serve_gateway(gw, TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// Serves a gateway on `listener`; returns its base URL.
fn serve_gateway(gw: Arc<charter_gateway::Gateway>, listener: TcpListener) -> String {
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

fn removal_checks(rec: &Value) -> usize {
    [
        "token_endpoint_refuses",
        "introspection_inactive",
        "gateway_denies",
    ]
    .iter()
    .map(|n| checks_named(rec, n).len())
    .sum()
}

async fn offboard(app: &TestApp, w: &World) -> Value {
    let (s, rec) = app
        .post(
            &format!("/v1/partners/{}/offboard", w.direct),
            &w.steward.1,
            json!({ "reason": "contract terminated" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    rec
}

both_backends! {
    async fn offboarding_proves_removal_at_every_node_over_http(app: TestApp) {
        let (w, grant, client, token) = world_with_access(&app).await;
        let pending = w.pending_grant(&app).await;
        register_app(&app).await;
        assert_eq!(app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token).send().await.unwrap().status(), StatusCode::OK);

        let rec = offboard(&app, &w).await;
        assert_eq!(rec["status"], "completed", "{rec}");
        assert_eq!(rec["incomplete_reason"], Value::Null);
        assert!(rec["id"].as_str().unwrap().starts_with("off_"));
        let revoked: Vec<_> = rec["revoked_grants"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(revoked.contains(&grant.as_str()) && revoked.contains(&pending.as_str()));
        // One canary, for the grant that could hold access (a pending grant accepts no token).
        assert_eq!(rec["canaries"].as_array().unwrap().len(), 1, "{rec}");
        assert_eq!(rec["canaries"][0]["grant"], grant.as_str());
        let jti = rec["canaries"][0]["jti"].as_str().unwrap();
        // Shown accepted before revocation, at the node's HTTP endpoints.
        let accepted = checks_named(&rec, "introspection_accepts");
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0]["target"], format!("cn_main {}/oauth/introspect {jti}", app.base));
        let accepted = checks_named(&rec, "gateway_accepts");
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0]["target"], format!("gw_main {}/v1/authz/check {jti}", app.gw));
        assert!(accepted[0]["detail"].as_str().unwrap().ends_with(": 200"), "{rec}");
        // Refused for the revocation after it.
        let tok = checks_named(&rec, "token_endpoint_refuses");
        assert_eq!(tok.len(), 1);
        assert_eq!(tok[0]["target"], format!("cn_main {}/oauth/token {}", app.base, client.client_id));
        assert_eq!(checks_named(&rec, "introspection_inactive").len(), 1);
        let denied = checks_named(&rec, "gateway_denies");
        assert_eq!(denied.len(), 1);
        assert!(denied[0]["detail"].as_str().unwrap().contains("401 grant_revoked"), "{rec}");
        assert!(rec["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true && c["at"].is_string()), "{rec}");

        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarded");
        // Removal holds for real, not only in the record.
        let resp = app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let (s, body, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&client.client_id, &client.secret)), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error_description"], "the client's credential is revoked");
        // The principal the introspection probes used is disabled, and no canary token is in
        // the audit log (only its jti).
        let (_, principals) = app.get("/v1/principals?limit=100", ADMIN_TOKEN).await;
        let prober: Vec<_> = principals["items"].as_array().unwrap().iter().filter(|p| p["name"].as_str().unwrap().starts_with("offboarding-probe")).collect();
        assert_eq!(prober.len(), 1, "{principals}");
        assert_eq!(prober[0]["disabled"], true);
        let (_, page) = app.get(&format!("/v1/audit?target={}&action=partner.offboard", w.direct), ADMIN_TOKEN).await;
        let logged = page["items"][0]["record"]["details"].to_string();
        assert!(logged.contains("\"completed\"") && logged.contains(jti));
        assert!(!logged.contains("eyJ"), "a signed token in the audit log: {logged}");
        // An offboarded partner cannot be offboarded again, nor get grants.
        let (s, _) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "again" })).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.direct)).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    async fn a_gateway_that_kept_an_old_epoch_fails_the_offboarding(app: TestApp) {
        let (w, grant, _client, _token) = world_with_access(&app).await;
        register_app(&app).await;
        let stale = stale_gateway(&app, "production").await;
        register(&app, NodeKind::Gateway, "gw_stale", &stale).await;
        let rec = offboard(&app, &w).await;
        assert_eq!(rec["status"], "failed", "{rec}");
        let failed: Vec<_> = rec["checks"].as_array().unwrap().iter().filter(|c| c["passed"] == false).collect();
        assert_eq!(failed.len(), 1, "{rec}");
        assert_eq!(failed[0]["name"], "gateway_denies");
        assert!(failed[0]["target"].as_str().unwrap().starts_with("gw_stale "));
        assert!(failed[0]["detail"].as_str().unwrap().contains(": 200"), "{rec}");
        // Not done: the partner stays in offboarding; the grant is revoked regardless.
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarding");
        let (_, g) = app.get(&format!("/v1/grants/{grant}"), ADMIN_TOKEN).await;
        assert_eq!(g["status"], "revoked");
    }

    async fn a_403_from_a_gateway_in_another_environment_is_not_proof(app: TestApp) {
        let (w, _grant, _client, _token) = world_with_access(&app).await;
        register_app(&app).await;
        // A staging gateway that never learns of the revocation: it refuses the production
        // grant's canary on policy (403 environment_mismatch) before and after — the token
        // itself stays accepted there.
        let staging = stale_gateway(&app, "staging").await;
        register(&app, NodeKind::Gateway, "gw_staging", &staging).await;
        let rec = offboard(&app, &w).await;
        assert_ne!(rec["status"], "completed", "{rec}");
        assert_eq!(rec["status"], "failed", "{rec}");
        let staging_checks: Vec<_> = rec["checks"].as_array().unwrap().iter().filter(|c| c["target"].as_str().unwrap().starts_with("gw_staging ")).collect();
        assert_eq!(staging_checks.len(), 2, "{rec}");
        // Before revocation a policy 403 shows the token was accepted...
        assert_eq!(staging_checks[0]["name"], "gateway_accepts");
        assert_eq!(staging_checks[0]["passed"], true, "{rec}");
        assert!(staging_checks[0]["detail"].as_str().unwrap().contains("403 environment_mismatch"));
        // ...and after it the same 403 is no refusal for the revocation.
        assert_eq!(staging_checks[1]["name"], "gateway_denies");
        assert_eq!(staging_checks[1]["passed"], false, "{rec}");
        assert!(staging_checks[1]["detail"].as_str().unwrap().contains("403 environment_mismatch"), "{rec}");
    }

    async fn a_staging_gateway_that_applied_the_revocation_counts(app: TestApp) {
        let (w, _grant, _client, _token) = world_with_access(&app).await;
        register(&app, NodeKind::Control, "cn_main", &app.base).await;
        // A real staging gateway on the node's live view: 403 before, 401 grant_revoked after.
        let gw = charter_server::gateway(&app.state, "staging", false).unwrap();
        let url = serve_gateway(gw, TcpListener::bind("127.0.0.1:0").await.unwrap());
        register(&app, NodeKind::Gateway, "gw_staging", &url).await;
        let rec = offboard(&app, &w).await;
        assert_eq!(rec["status"], "completed", "{rec}");
        assert!(checks_named(&rec, "gateway_accepts")[0]["detail"].as_str().unwrap().contains("403 environment_mismatch"));
        assert!(checks_named(&rec, "gateway_denies")[0]["detail"].as_str().unwrap().contains("401 grant_revoked"));
    }

    async fn a_retry_after_an_unreachable_gateway_reprobes_everything(app: TestApp) {
        let (w, _grant, _client, _token) = world_with_access(&app).await;
        register_app(&app).await;
        // A registered gateway that does not answer (its port is closed).
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let flaky = format!("http://127.0.0.1:{port}");
        register(&app, NodeKind::Gateway, "gw_flaky", &flaky).await;
        let first = offboard(&app, &w).await;
        assert_eq!(first["status"], "failed", "{first}");
        let failed: Vec<_> = first["checks"].as_array().unwrap().iter().filter(|c| c["passed"] == false).map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(failed, ["gateway_accepts", "gateway_denies"], "{first}");
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarding");
        let jti = first["canaries"][0]["jti"].as_str().unwrap();

        // The gateway comes back on the same address; the retry re-probes every node with
        // the first attempt's canary (every grant is revoked by now: no new canary).
        let gw = charter_server::gateway(&app.state, "production", false).unwrap();
        serve_gateway(gw, TcpListener::bind(("127.0.0.1", port)).await.unwrap());
        register(&app, NodeKind::Gateway, "gw_flaky", &flaky).await;
        let retry = offboard(&app, &w).await;
        assert_eq!(retry["status"], "completed", "{retry}");
        assert_eq!(retry["canaries"].as_array().unwrap().len(), 1);
        assert_eq!(retry["canaries"][0]["jti"], jti, "the sealed canary is the same");
        assert!(removal_checks(&retry) >= removal_checks(&first), "{retry}");
        let denied: Vec<_> = checks_named(&retry, "gateway_denies");
        assert_eq!(denied.len(), 2, "both gateways re-probed: {retry}");
        assert!(denied.iter().all(|c| c["detail"].as_str().unwrap().contains("401 grant_revoked")), "{retry}");
        assert_eq!(checks_named(&retry, "token_endpoint_refuses").len(), 1);
        assert_eq!(checks_named(&retry, "introspection_inactive").len(), 1);
        // The acceptance shown before revocation is carried as it was recorded.
        let carried = checks_named(&retry, "introspection_accepts");
        assert_eq!(carried.len(), 1);
        assert_eq!(carried[0], checks_named(&first, "introspection_accepts")[0]);
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarded");
    }

    async fn a_retry_that_reaches_fewer_nodes_never_completes(app: TestApp) {
        let (w, _grant, _client, _token) = world_with_access(&app).await;
        register_app(&app).await;
        register(&app, NodeKind::Gateway, "gw_gone", "http://127.0.0.1:9").await;
        let first = offboard(&app, &w).await;
        assert_eq!(first["status"], "failed", "{first}");
        // The unreachable gateway stops sending heartbeats; the others go on.
        app.clock.advance(jiff::SignedDuration::from_mins(5));
        register_app(&app).await;
        let retry = offboard(&app, &w).await;
        assert!(retry["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{retry}");
        assert_eq!(retry["status"], "incomplete", "{retry}");
        assert!(retry["incomplete_reason"].as_str().unwrap().contains("fewer than"), "{retry}");
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarding");
    }

    async fn nothing_to_probe_at_the_enforcement_layer_is_incomplete(app: TestApp) {
        let (w, _grant, _client, _token) = world_with_access(&app).await;
        // Only the control plane is registered: no gateway could be probed.
        register(&app, NodeKind::Control, "cn_main", &app.base).await;
        let rec = offboard(&app, &w).await;
        assert_eq!(rec["status"], "incomplete", "{rec}");
        assert!(rec["incomplete_reason"].as_str().unwrap().contains("no live gateway"), "{rec}");
        assert!(checks_named(&rec, "gateway_denies").is_empty());
        // A finding says so, naming the status.
        let (_, found) = app.get("/v1/findings?kind=offboarding_failed", ADMIN_TOKEN).await;
        let f = &found["items"][0];
        assert_eq!(f["evidence"]["status"], "incomplete", "{found}");
        assert!(f["evidence"]["incomplete_reason"].as_str().unwrap().contains("no live gateway"));
        let (_, p) = app.get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN).await;
        assert_eq!(p["status"], "offboarding");
    }

    async fn a_revoked_credential_is_refused_as_credential_revoked(app: TestApp) {
        let (w, grant, a, token_a) = world_with_access(&app).await;
        let b = w.client(&app, &grant).await;
        let token_b = app.token_for(&b).await;
        let (s, v) = app.post(&format!("/v1/credentials/{}/revoke", a.credential), &w.steward.1, json!({ "reason": "key leaked" })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let reason = |resp: &reqwest::Response| resp.headers().get("x-charter-reason").unwrap().to_str().unwrap().to_owned();
        // The revoked credential's own token says why; the grant's other token died with the
        // epoch bump and stays token_revoked.
        let resp = app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token_a).send().await.unwrap();
        assert_eq!((resp.status(), reason(&resp).as_str()), (StatusCode::UNAUTHORIZED, "credential_revoked"));
        assert!(resp.headers().get("www-authenticate").unwrap().to_str().unwrap().contains("invalid_token"));
        let resp = app.http.get(format!("{}/orders/orders/1", app.gw)).bearer_auth(&token_b).send().await.unwrap();
        assert_eq!((resp.status(), reason(&resp).as_str()), (StatusCode::UNAUTHORIZED, "token_revoked"));
        // The token endpoint refuses the revoked client as revoked, whatever the secret,
        // and says nothing of the kind for an unknown client.
        for secret in [a.secret.as_str(), "wrong"] {
            let (s, body, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&a.client_id, secret)), None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED);
            assert_eq!(body, json!({ "error": "invalid_client", "error_description": "the client's credential is revoked" }));
        }
        let (s, body, _) = app.token_request(&[("grant_type", "client_credentials")], Some(("no-such-client", "x")), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error_description"], "client authentication failed");
    }
}
