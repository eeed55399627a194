//! Contract edges: every error is JSON (413 on text bodies included), a disallowed method is
//! 405 with `Allow`, the role check comes before the body, `/metrics` needs a principal (or
//! its own listener), and names refuse bidirectional controls.

use std::sync::Arc;

use charter_server::clock::ManualClock;
use charter_server::{Config, NodeRole};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World};

/// Sends `body` as `content_type` and returns the status, the `Allow` header and the body,
/// which must be JSON.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{status} body is not JSON: {text:.200}"));
    (status, allow, v)
}

fn oversized() -> Vec<u8> {
    vec![b'a'; 1024 * 1024 + 100]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_text_plain_bodies_get_a_json_413() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let (_, gateway) = app.principal("edge", &["gateway"]).await;
    let (s, _, v) = send(
        &app,
        Method::POST,
        "/oauth/introspect",
        Some(&gateway),
        "text/plain",
        vec![b'a'; 100 * 1024],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(
        v["error"], "invalid_request",
        "an OAuth endpoint answers with an RFC 6749 code"
    );

    let path = format!("/v1/principals/{}/rotate", w.auditor.0);
    let (s, _, v) = send(
        &app,
        Method::POST,
        &path,
        Some(ADMIN_TOKEN),
        "text/plain",
        oversized(),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
        "{v}"
    );

    let grant = w.active_grant(&app).await;
    let (s, c) = app
        .post(
            &format!("/v1/grants/{grant}/credentials"),
            &w.steward.1,
            json!({ "kind": "client_secret" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let path = format!("/v1/credentials/{}/rotate", c["id"].as_str().unwrap());
    let (s, _, v) = send(
        &app,
        Method::POST,
        &path,
        Some(&w.steward.1),
        "text/plain",
        oversized(),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
        "{v}"
    );
    // A small text body on the rotation routes is judged as JSON: malformed, 400 in JSON.
    let (s, _, v) = send(
        &app,
        Method::POST,
        &path,
        Some(&w.steward.1),
        "text/plain",
        b"rotate please".to_vec(),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_request")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_method_is_405_with_allow_and_a_json_body() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (method, path, allowed) in [
        (Method::DELETE, "/v1/grants", &["GET", "POST"][..]),
        (
            Method::PUT,
            "/v1/partners/prt_00000000000000000000000000",
            &["GET", "PATCH"][..],
        ),
        (
            Method::GET,
            "/v1/grants/grt_00000000000000000000000000/approvals",
            &["POST"][..],
        ),
        (Method::POST, "/healthz", &["GET"][..]),
        (Method::GET, "/oauth/token", &["POST"][..]),
        (Method::DELETE, "/openapi.json", &["GET"][..]),
    ] {
        let (s, allow, v) = send(
            &app,
            method.clone(),
            path,
            Some(ADMIN_TOKEN),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {v}");
        assert_eq!(v["error"], "method_not_allowed", "{v}");
        let allow = allow.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
        let listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        for m in allowed {
            assert!(
                listed.contains(m),
                "{method} {path}: Allow {allow:?} lacks {m}"
            );
        }
        assert!(
            !listed.contains(&method.as_str()),
            "{method} {path}: Allow {allow:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_posting_a_bad_body_gets_403_not_a_body_error() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let grant = w.pending_grant(&app).await;
    let before = app.audit_count().await;
    let routes = [
        (Method::POST, "/v1/principals".to_owned()),
        (Method::POST, "/v1/apis".to_owned()),
        (Method::PUT, format!("/v1/apis/{}", w.api)),
        (Method::POST, "/v1/partners".to_owned()),
        (Method::PATCH, format!("/v1/partners/{}", w.direct)),
        (Method::POST, "/v1/grants".to_owned()),
        (Method::POST, format!("/v1/grants/{grant}/approvals")),
        (Method::POST, format!("/v1/grants/{grant}/suspend")),
        (Method::POST, format!("/v1/grants/{grant}/credentials")),
        (Method::POST, format!("/v1/partners/{}/offboard", w.direct)),
        (Method::POST, "/v1/reviews".to_owned()),
    ];
    let bodies: [(&str, Vec<u8>); 4] = [
        ("application/json", b"{\"name\": ".to_vec()),
        ("application/json", b"{\"colour\": \"red\"}".to_vec()),
        ("text/plain", b"hello".to_vec()),
        ("application/json", oversized()),
    ];
    for (method, path) in &routes {
        for (ct, body) in &bodies {
            let (s, _, v) = send(
                &app,
                method.clone(),
                path,
                Some(&w.auditor.1),
                ct,
                body.clone(),
            )
            .await;
            assert_eq!(
                s,
                StatusCode::FORBIDDEN,
                "{method} {path} with a bad {ct} body: {v}"
            );
            assert_eq!(v["error"], "forbidden");
        }
    }
    assert_eq!(app.audit_count().await, before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_principal_token() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, v) = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "unauthorized");
    let (s, v) = app
        .call(Method::GET, "/metrics", Some("chp_not-a-token"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (_, gateway) = app.principal("edge", &["gateway"]).await;
    let (s, text) = app
        .call(Method::GET, "/metrics", Some(&gateway), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        text.as_str()
            .unwrap()
            .contains("charter_http_requests_total"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listener_serves_metrics_without_a_token_and_nothing_else() {
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: port(),
        gateway_listen: port(),
        metrics_listen: Some(port()),
        data_dir: dir.path().join("data"),
        role: NodeRole::All,
        ..Config::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let clock = Arc::new(ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap()));
    let running = charter_server::start(&config, clock, None, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let metrics = running.metrics_addr.unwrap();
    let control = running.control_addr.unwrap();
    let resp = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("# TYPE"));
    let resp = reqwest::get(format!("http://{metrics}/v1/principals"))
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "the metrics listener serves nothing else"
    );
    let resp = reqwest::get(format!("http://{control}/metrics"))
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the control plane still wants a token"
    );
    stop.send(()).unwrap();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_controls_in_names_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    for c in [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}',
    ] {
        let name = format!("Acme {c}dleifxe");
        let (s, v) = app
            .post(
                "/v1/partners",
                &w.steward.1,
                json!({ "name": name, "kind": "direct", "regions": ["eu"] }),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "partner {c:?}: {v}"
        );
        let (s, v) = app
            .post(
                "/v1/principals",
                ADMIN_TOKEN,
                json!({ "name": name, "roles": ["auditor"] }),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "principal {c:?}: {v}");
        let mut grant = w.grant_body(&app, &w.direct);
        grant["use_case"] = json!(name);
        let (s, v) = app.post("/v1/grants", &w.steward.1, grant).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "use case {c:?}: {v}");
    }
    // Other non-ASCII names stay fine.
    let (s, v) = app
        .post(
            "/v1/partners",
            &w.steward.1,
            json!({ "name": "Ölwerke Zürich", "kind": "direct", "regions": ["eu"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}
