//! Attacks on the edge, replayed through the real listeners: calls the gateway must not
//! forward as they came (method overrides, path forms an upstream reads as another path,
//! forged forwarding headers, DPoP proofs for a forged Host), check mode without its method,
//! audit flooding (giant methods, anonymous floods), and slow clients holding connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use charter_server::listen::{ServeOptions, serve_with};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::harness::{ADMIN_TOKEN, Backend, TestApp, run_test};

/// Sends raw bytes and reads the whole answer (the request asks the server to close).
async fn raw(addr: &str, request: &[u8]) -> String {
    let addr = addr.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://")
}

async fn decisions(app: &TestApp) -> Vec<serde_json::Value> {
    records(app, "access.decision").await
}

async fn records(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    app.state
        .repo
        .store
        .audit_query(&charter_store::AuditQuery {
            action: Some(action.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

/// A second gateway listener over the app's state, with its own settings.
async fn gateway_with(
    app: &TestApp,
    public_url: Option<String>,
    anonymous_per_minute: u32,
    options: ServeOptions,
) -> String {
    let gw = charter_server::gateway_with(
        &app.state,
        "production",
        false,
        public_url,
        anonymous_per_minute,
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_with(
        listener,
        charter_gateway::router(gw),
        None,
        options,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

fn sqlite<F, Fut>(body: F) -> impl std::future::Future<Output = ()>
where
    F: FnOnce(TestApp) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    run_test(Backend::Sqlite, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_forms_an_upstream_reads_as_another_path_are_refused_in_both_modes() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        let gw = host_of(&app.gw).to_owned();
        let before = decisions(&app).await.len();
        for path in [
            "/orders/orders/export;x=1",
            "/orders/orders/export.",
            "/orders/orders/42%00",
            "/orders/orders/42%252f..%252fexport",
            "/orders/orders/42%3Bx=1",
            "/orders/orders/42%0d%0aX-Injected:%201",
        ] {
            let proxied = raw(&gw, format!("GET {path} HTTP/1.1\r\nHost: {gw}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", s.token).as_bytes()).await;
            assert_eq!(status_of(&proxied), 400, "proxy {path}: {proxied}");
            let checked = raw(&gw, format!("GET /v1/authz/check HTTP/1.1\r\nHost: {gw}\r\nAuthorization: Bearer {}\r\nX-Original-Method: GET\r\nX-Original-URI: {path}\r\nConnection: close\r\n\r\n", s.token).as_bytes()).await;
            assert_eq!(status_of(&checked), 400, "check {path}: {checked}");
        }
        assert_eq!(app.upstream_hits(), 0, "nothing reached the upstream");
        assert_eq!(decisions(&app).await.len(), before, "refused as malformed, before any decision");
        // The plain form still works.
        assert_eq!(app.through(reqwest::Method::GET, "/orders/orders/42", Some(&s.token)).await.0, StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_override_headers_never_reach_the_upstream() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        let overrides = [
            ("X-HTTP-Method-Override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("X-Method-Override", "DELETE"),
            ("X-Original-URL", "/orders/export"),
            ("X-Rewrite-URL", "/orders/export"),
        ];
        for (name, value) in overrides {
            let resp = app
                .http
                .get(format!("{}/orders/orders/42", app.gw))
                .bearer_auth(&s.token)
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{name}");
            let got = app.received.lock().unwrap().last().cloned().unwrap();
            assert_eq!(got.method, "GET");
            assert_eq!(got.path_and_query, "/orders/42");
            assert!(
                got.headers.get(name).is_none(),
                "{name} reached the upstream"
            );
        }
        assert_eq!(app.upstream_hits(), overrides.len());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_override_query_is_refused() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        for query in [
            "_method=DELETE",
            "x=1&_method=DELETE",
            "%5Fmethod=DELETE",
            "_METHOD=delete",
        ] {
            let (st, h, _) = app
                .through(
                    reqwest::Method::GET,
                    &format!("/orders/orders/42?{query}"),
                    Some(&s.token),
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(h["x-charter-reason"], "method_override");
            let resp = app
                .http
                .get(format!("{}/v1/authz/check", app.gw))
                .bearer_auth(&s.token)
                .header("X-Original-Method", "GET")
                .header("X-Original-URI", format!("/orders/orders/42?{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "check {query}");
        }
        assert_eq!(app.upstream_hits(), 0);
        // A parameter that merely contains the word is not an override.
        assert_eq!(
            app.through(
                reqwest::Method::GET,
                "/orders/orders/42?sort_method=asc",
                Some(&s.token)
            )
            .await
            .0,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forwarding_headers_are_replaced_with_what_the_gateway_saw() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        let forged = |req: reqwest::RequestBuilder| {
            req.header("X-Forwarded-For", "6.6.6.6")
                .header("X-Forwarded-Host", "evil.example")
                .header("X-Forwarded-Proto", "https")
                .header("Forwarded", "for=6.6.6.6;host=evil.example")
                .header("X-Real-IP", "6.6.6.6")
        };
        let resp = forged(
            app.http
                .get(format!("{}/orders/orders/42", app.gw))
                .bearer_auth(&s.token),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let got = app.received.lock().unwrap().last().cloned().unwrap();
        let gw_host = host_of(&app.gw).to_owned();
        assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(got.headers["x-forwarded-host"], gw_host.as_str());
        assert_eq!(got.headers["x-forwarded-proto"], "http");
        assert_eq!(
            got.headers["forwarded"],
            format!("for=127.0.0.1;proto=http;host=\"{gw_host}\"").as_str()
        );
        assert!(got.headers.get("x-real-ip").is_none());
        let last = decisions(&app).await.pop().unwrap();
        assert_eq!(
            last["details"]["source"], "127.0.0.1",
            "the forged address is not the source"
        );

        // Behind a configured trusted proxy the chain is extended and its client believed.
        let options = ServeOptions {
            trusted_proxies: Arc::new(
                charter_gateway::forwarded::TrustedProxies::parse(&["127.0.0.0/8"]).unwrap(),
            ),
            ..ServeOptions::default()
        };
        let trusted_gw = gateway_with(&app, None, 600, options).await;
        let resp = forged(
            app.http
                .get(format!("{trusted_gw}/orders/orders/42"))
                .bearer_auth(&s.token),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let got = app.received.lock().unwrap().last().cloned().unwrap();
        assert_eq!(got.headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
        assert_eq!(got.headers["x-forwarded-host"], "evil.example");
        let last = decisions(&app).await.pop().unwrap();
        assert_eq!(last["details"]["source"], "6.6.6.6");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_mode_without_the_original_method_is_refused_not_decided_as_get() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        let before = decisions(&app).await.len();
        let resp = app
            .http
            .post(format!("{}/v1/authz/check", app.gw))
            .bearer_auth(&s.token)
            .header("X-Original-URI", "/orders/orders/42")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()["x-charter-reason"],
            "original_method_missing"
        );
        assert!(resp.headers().get("x-charter-grant").is_none());
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(decisions(&app).await.len(), before);
        // An unknown original method is no better.
        let resp = app
            .http
            .get(format!("{}/v1/authz/check", app.gw))
            .bearer_auth(&s.token)
            .header("X-Original-Method", "BREW")
            .header("X-Original-URI", "/orders/orders/42")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_for_a_forged_host_is_refused() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        let key = charter_auth::SigningKey::generate("dpop".into()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let jwk = json!({ "kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"] });
        let grant = app.approved_grant(&s.w, |b| b["require_dpop"] = json!(true)).await;
        let c = s.w.client(&app, &grant).await;
        let proof = crate::oauth::jws(&key, &json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }),
            &json!({ "htm": "POST", "htu": format!("{}/oauth/token", app.base), "iat": app.now_s(), "jti": "t-1" }));
        let (st, v, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), Some(&proof)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let bound = v["access_token"].as_str().unwrap().to_owned();
        let ath = charter_auth::dpop::access_token_hash(&bound);
        let call_proof = |htu: &str, jti: &str| crate::oauth::jws(&key, &json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }),
            &json!({ "htm": "GET", "htu": htu, "iat": app.now_s(), "jti": jti, "ath": ath }));
        // A proof for another host, with the Host header forged to match it.
        let gw = host_of(&app.gw).to_owned();
        let forged = call_proof("http://evil.example/orders/orders/1", "c-1");
        let resp = raw(&gw, format!("GET /orders/orders/1 HTTP/1.1\r\nHost: evil.example\r\nAuthorization: DPoP {bound}\r\nDPoP: {forged}\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(status_of(&resp), 403, "{resp}");
        assert!(resp.to_ascii_lowercase().contains("x-charter-reason: dpop_invalid"), "{resp}");
        // A proof for the gateway's own URL passes whatever Host says.
        let genuine = call_proof(&format!("{}/orders/orders/1", app.gw), "c-2");
        let resp = raw(&gw, format!("GET /orders/orders/1 HTTP/1.1\r\nHost: evil.example\r\nAuthorization: DPoP {bound}\r\nDPoP: {genuine}\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(status_of(&resp), 200, "{resp}");
        // With a configured public URL, proofs name that URL.
        let public = "https://gateway.example.com".to_owned();
        let gw2 = gateway_with(&app, Some(public.clone()), 600, ServeOptions::default()).await;
        let for_public = call_proof(&format!("{public}/orders/orders/1"), "c-3");
        let resp = app.http.get(format!("{gw2}/orders/orders/1")).header("Authorization", format!("DPoP {bound}")).header("DPoP", for_public).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let for_bound = call_proof(&format!("{gw2}/orders/orders/1"), "c-4");
        let resp = app.http.get(format!("{gw2}/orders/orders/1")).header("Authorization", format!("DPoP {bound}")).header("DPoP", for_bound).send().await.unwrap();
        assert_eq!(resp.headers()["x-charter-reason"], "dpop_invalid");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_giant_method_is_refused_before_anything_is_recorded_at_length() {
    sqlite(|app| async move {
        let before = app.audit_count().await;
        let method = "A".repeat(8000);
        for (target, path) in [(host_of(&app.gw).to_owned(), "/orders/orders/42"), (host_of(&app.base).to_owned(), "/v1/grants")] {
            let resp = raw(&target, format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer chp_wrong\r\nConnection: close\r\n\r\n").as_bytes()).await;
            let status = status_of(&resp);
            assert!(status == 405 || status == 400, "{target}: {resp}");
        }
        assert_eq!(app.audit_count().await, before, "no record for a call in an unknown method");
        // The control plane's request metric does not take the method as a label either.
        let (_, text) = app.call(reqwest::Method::GET, "/metrics", Some(ADMIN_TOKEN), None).await;
        assert!(!text.to_string().contains(&method[..100]), "the method became a metric label");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_is_throttled_while_a_valid_token_still_passes() {
    sqlite(|app| async move {
        let s = app.setup(|_| {}).await;
        let gw = gateway_with(&app, None, 5, ServeOptions::default()).await;
        let anonymous = || app.http.get(format!("{gw}/orders/orders/42")).send();
        let before = decisions(&app).await.len();
        let mut unauthorized = 0;
        loop {
            let resp = anonymous().await.unwrap();
            if resp.status() != StatusCode::UNAUTHORIZED || unauthorized > 30 {
                assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
                break;
            }
            unauthorized += 1;
        }
        assert!(unauthorized >= 5, "{unauthorized}");
        for _ in 0..20 {
            let resp = anonymous().await.unwrap();
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(resp.headers()["x-charter-reason"], "rate_limited");
            assert!(resp.headers().get("retry-after").is_some());
        }
        // Invalid tokens count the same way.
        let resp = app
            .http
            .get(format!("{gw}/orders/orders/42"))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        // A valid token from the same address is never throttled.
        for _ in 0..3 {
            let resp = app
                .http
                .get(format!("{gw}/orders/orders/42"))
                .bearer_auth(&s.token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        assert_eq!(
            decisions(&app).await.len(),
            before + unauthorized + 3,
            "dropped calls are not recorded one by one"
        );
        let summaries: Vec<_> = records(&app, "auth.rate_limited")
            .await
            .into_iter()
            .filter(|r| r["details"]["endpoint"] == "gateway")
            .collect();
        assert_eq!(summaries.len(), 1, "one summary per address and minute");
        assert_eq!(summaries[0]["details"]["source"], "127.0.0.1");
    })
    .await;
}

/// Connects from `source` (a loopback address of its own) and sends half a request.
async fn half_request(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(to).await.unwrap();
    let _ = s
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await;
    s
}

/// Whether the server closed the socket (EOF or reset) within a generous bound.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_neither_hold_the_listener_nor_outlive_the_header_timeout() {
    sqlite(|app| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = ServeOptions {
            max_connections: 64,
            max_connections_per_address: 8,
            header_read_timeout: Duration::from_secs(1),
            ..ServeOptions::default()
        };
        tokio::spawn(serve_with(
            listener,
            charter_server::control_router(app.state.clone()),
            None,
            options,
            std::future::pending(),
        ));
        // More half-open sockets from one address than the whole listener takes.
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(half_request("127.0.0.2", addr).await);
        }
        // A well-behaved client from another address is served all the same.
        let resp = app
            .http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // Every half-open socket is closed by the server: past the per-address cap at once,
        // the others when the header timeout runs out.
        for s in &mut held {
            assert!(
                closed_by_server(s).await,
                "a half-sent request was held open"
            );
        }
        let resp = app
            .http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_cut_off() {
    sqlite(|app| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = ServeOptions {
            body_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(2),
            ..ServeOptions::default()
        };
        tokio::spawn(serve_with(listener, charter_server::control_router(app.state.clone()), None, options, std::future::pending()));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("POST /v1/principals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\":").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "the connection was held past the body timeout");
        let text = String::from_utf8_lossy(&out);
        let status = status_of(&text);
        assert!(status == 0 || (400..500).contains(&status), "{text}");
    })
    .await;
}
