//! Health, readiness, metrics, OpenAPI, and the TLS listener.

use std::sync::Arc;

use charter_server::clock::ManualClock;
use charter_server::{Config, NodeRole};
use reqwest::StatusCode;

use crate::both_backends;

both_backends! {
    async fn health_readiness_metrics_openapi(app: TestApp) {
        let (s, v) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
        let (s, v) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["store"], if app.backend == crate::harness::Backend::Sqlite { "sqlite" } else { "postgres" });
        let (s, text) = app.call(reqwest::Method::GET, "/metrics", Some(crate::harness::ADMIN_TOKEN), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(text.as_str().unwrap().contains("charter_http_requests_total"), "{text}");

        let (s, spec) = app.call(reqwest::Method::GET, "/openapi.json", None, None).await;
        assert_eq!(s, StatusCode::OK);
        let paths = spec["paths"].as_object().unwrap();
        for (path, method) in [
            ("/v1/principals", "post"), ("/v1/principals", "get"), ("/v1/principals/{id}", "get"),
            ("/v1/principals/{id}/rotate", "post"), ("/v1/principals/{id}/disable", "post"),
            ("/v1/apis", "post"), ("/v1/apis", "get"), ("/v1/apis/{id}", "get"), ("/v1/apis/{id}", "put"),
            ("/v1/partners", "post"), ("/v1/partners", "get"), ("/v1/partners/{id}", "get"), ("/v1/partners/{id}", "patch"),
            ("/v1/grants", "post"), ("/v1/grants", "get"), ("/v1/grants/{id}", "get"),
            ("/v1/grants/{id}/approvals", "post"), ("/v1/grants/{id}/suspend", "post"),
            ("/v1/grants/{id}/resume", "post"), ("/v1/grants/{id}/revoke", "post"),
            ("/v1/audit", "get"), ("/v1/audit/verify", "get"),
            ("/v1/grants/{id}/credentials", "post"), ("/v1/grants/{id}/credentials", "get"),
            ("/v1/credentials/{id}", "get"), ("/v1/credentials/{id}/rotate", "post"),
            ("/v1/credentials/{id}/revoke", "post"), ("/v1/keys/rotate", "post"), ("/v1/keys", "get"),
            ("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get"),
        ] {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "openapi lacks {method} {path}");
        }
        assert!(spec["components"]["schemas"].get("GrantRequest").is_some());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_serve_https() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let config = Config {
        listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        gateway_listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        data_dir: dir.path().join("data"),
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
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
    assert!(matches!(
        running.bootstrap,
        charter_server::Bootstrap::Written(_)
    ));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    for addr in [running.control_addr.unwrap(), running.gateway_addr.unwrap()] {
        let resp = client
            .get(format!("https://localhost:{}/healthz", addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Plain HTTP on a TLS listener gets nowhere.
    let plain = reqwest::get(format!(
        "http://127.0.0.1:{}/healthz",
        running.control_addr.unwrap().port()
    ))
    .await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);

    stop.send(()).unwrap();
    running.wait().await;
}

#[test]
fn plaintext_on_a_public_address_is_refused() {
    let mut config = Config {
        listen: "0.0.0.0:7600".parse().unwrap(),
        ..Config::default()
    };
    let err = config.check_transport().unwrap_err().to_string();
    assert!(err.contains("--insecure-http"), "{err}");
    config.insecure_http = true;
    assert!(config.check_transport().is_ok());
    let half = Config {
        tls_cert: Some("c.pem".into()),
        ..Config::default()
    };
    assert!(half.check_transport().is_err());
}
