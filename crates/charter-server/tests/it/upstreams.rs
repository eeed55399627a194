//! SSRF through an API's upstream: cloud metadata and link-local addresses in every spelling,
//! Charter's own listeners and userinfo are refused (422) when an API is published or
//! republished; loopback and private addresses stay allowed.

use serde_json::json;

use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World, orders_api};
use reqwest::StatusCode;

async fn publish(app: &TestApp, token: &str, upstream: &str) -> (StatusCode, serde_json::Value) {
    let mut api = orders_api("billing", "https://api.example.com/billing");
    api["upstream"] = json!(upstream);
    app.post("/v1/apis", token, api).await
}

fn assert_refused(s: StatusCode, v: &serde_json::Value, upstream: &str) {
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{upstream}: {v}");
    assert_eq!(v["error"], "validation_failed", "{upstream}: {v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("upstream"),
        "{upstream}: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_link_local_upstreams_are_refused_in_every_spelling() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let apis = app
        .state
        .repo
        .store
        .count(charter_store::Kind::Api)
        .await
        .unwrap();
    for upstream in [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://169.254.169.254./",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::169.254.169.254]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./computeMetadata/v1/",
        "http://0.0.0.0:9/",
        "http://0/",
        "https://169.254.169.254:443/",
    ] {
        let (s, v) = publish(&app, &w.owner.1, upstream).await;
        assert_refused(s, &v, upstream);
    }
    assert_eq!(
        app.state
            .repo
            .store
            .count(charter_store::Kind::Api)
            .await
            .unwrap(),
        apis,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_pointing_at_charters_own_listeners_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let control = app.base.rsplit(':').next().unwrap().to_owned();
    let gateway = app.gw.rsplit(':').next().unwrap().to_owned();
    for upstream in [
        app.base.clone(),
        format!("{}/v1/principals", app.base),
        app.gw.clone(),
        format!("http://localhost:{control}/"),
        format!("http://[::ffff:127.0.0.1]:{gateway}/"),
        format!("http://127.0.0.1.:{gateway}/"),
    ] {
        let (s, v) = publish(&app, &w.owner.1, &upstream).await;
        assert_refused(s, &v, &upstream);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_userinfo_is_refused_and_never_echoed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let before = app.audit_count().await;
    for upstream in [
        "http://svc:hunter2-secret@10.0.0.8/",
        "http://hunter2-secret@10.0.0.8/",
        "https://svc:hunter2-secret@orders.internal.example/",
    ] {
        let (s, v) = publish(&app, &w.owner.1, upstream).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(
            !v.to_string().contains("hunter2"),
            "the secret is echoed: {v}"
        );
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("userinfo"),
            "{v}"
        );
    }
    assert_eq!(
        app.audit_count().await,
        before,
        "nothing written, so nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_onto_a_metadata_address_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    let (_, before) = app.get(&format!("/v1/apis/{}", w.api), ADMIN_TOKEN).await;
    let mut api = orders_api("orders", "https://api.example.com/orders");
    api["upstream"] = json!("http://[::ffff:169.254.169.254]/");
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            &format!("/v1/apis/{}", w.api),
            Some(&w.owner.1),
            Some(api),
        )
        .await;
    assert_refused(s, &v, "republish");
    let (_, after) = app.get(&format!("/v1/apis/{}", w.api), ADMIN_TOKEN).await;
    assert_eq!(before["upstream"], after["upstream"]);
    assert_eq!(before["revision"], after["revision"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_and_private_upstreams_stay_allowed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let w = World::new(&app).await;
    for (i, upstream) in [
        "http://10.20.30.40:8080/orders",
        "https://192.168.1.10",
        "http://127.0.0.1:9/",
        "http://[::1]:8081/",
    ]
    .into_iter()
    .enumerate()
    {
        let mut api = orders_api(
            &format!("internal-{i}"),
            &format!("https://api.example.com/internal-{i}"),
        );
        api["upstream"] = json!(upstream);
        let (s, v) = app.post("/v1/apis", &w.owner.1, api).await;
        assert_eq!(s, StatusCode::CREATED, "{upstream}: {v}");
        assert_eq!(v["upstream"], upstream);
    }
}
