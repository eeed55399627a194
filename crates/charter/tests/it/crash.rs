//! Crash durability of the gateway's audit: under load through the gateway, `kill -9` the
//! server; after a restart on the same data directory the audit chain verifies, and every
//! request the upstream received has an `access.decision` record with `decision: allow`
//! and the same request id (the decision record is durable before anything is forwarded).
//! Outcome records of calls in flight at the kill may be missing; that is allowed.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{announced, charter};

const ADMIN: &str = "crash-test-admin-token-0123456789abcdef";
/// Concurrent callers through the gateway.
const CALLERS: usize = 16;
/// Successful calls before the kill.
const BEFORE_KILL: usize = 400;

/// A `charter serve` child on fresh loopback ports over `data`.
struct Node {
    child: Child,
    control: String,
    gateway: String,
    log: std::path::PathBuf,
}

impl Node {
    /// Starts on loopback port 0, with `issuer` if given (else the bound control address).
    async fn start(data: &Path, log: std::path::PathBuf, issuer: Option<&str>) -> Self {
        let mut cmd = charter();
        cmd.args(["serve", "--data-dir"]).arg(data).args([
            "--listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
        ]);
        if let Some(issuer) = issuer {
            cmd.args(["--issuer", issuer]);
        }
        let mut child = cmd
            .env("CHARTER_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let (control, gateway) = announced(&mut child, &log).await;
        let mut node = Self {
            child,
            control,
            gateway,
            log,
        };
        node.wait_healthy().await;
        node
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/healthz` on both listeners until they answer (start-up wait, not an assertion).
    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for base in [self.control.clone(), self.gateway.clone()] {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("charter serve exited early ({status}):\n{}", self.log());
                }
                let ok = http
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "charter serve did not come up:\n{}",
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An upstream on loopback that records the `x-request-id` of every request it receives.
async fn recording_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let rec = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let rec = rec.clone();
        async move {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            rec.lock().unwrap().push(id);
            axum::Json(json!({ "upstream": "orders", "path": req.uri().path() }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let (s, v) = send(http.post(&url).bearer_auth(token).json(&body)).await;
    assert!(s.is_success(), "POST {url}: {s} {v}");
    v
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// A grant's hard end, from the wall clock: the child process runs on the system clock.
#[allow(clippy::disallowed_methods)]
fn in_30_days() -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string()
}

/// Seeds principals, the orders API (upstream: `upstream`), a partner, an approved grant
/// and a client-secret credential; returns an access token.
async fn seed(http: &reqwest::Client, base: &str, upstream: &str) -> String {
    let principal = |name: &'static str, role: &'static str| async move {
        let v = post(
            http,
            format!("{base}/v1/principals"),
            ADMIN,
            json!({ "name": name, "roles": [role] }),
        )
        .await;
        (text(&v, "id"), text(&v, "token"))
    };
    let owner = principal("orders-team", "api_owner").await;
    let steward = principal("partner-office", "steward").await;
    let approver = principal("alice", "approver").await;
    let api = post(
        http,
        format!("{base}/v1/apis"),
        &owner.1,
        json!({
            "name": "orders",
            "audience": "https://api.example.com/orders",
            "upstream": upstream,
            "owner": owner.0,
            "operations": [
                { "scope": "orders:read", "method": "GET", "path": "/orders/{id}", "data_class": "internal", "region": "eu" }
            ]
        }),
    )
    .await;
    let partner = post(
        http,
        format!("{base}/v1/partners"),
        &steward.1,
        json!({ "name": "Acme", "kind": "direct", "regions": ["eu"], "owners": [approver.0] }),
    )
    .await;
    let grant = post(
        http,
        format!("{base}/v1/grants"),
        &steward.1,
        json!({
            "partner": text(&partner, "id"),
            "api": text(&api, "id"),
            "use_case": "Delivery status sync",
            "scopes": ["orders:read"],
            "data_class_ceiling": "internal",
            "regions": ["eu"],
            "expires_at": in_30_days(),
        }),
    )
    .await;
    let grant = text(&grant, "id");
    let approved = post(
        http,
        format!("{base}/v1/grants/{grant}/approvals"),
        &approver.1,
        json!({ "decision": "approve", "justification": "needed for deliveries", "ticket": "CHG-1" }),
    )
    .await;
    assert_eq!(approved["status"], "active", "{approved}");
    let cred = post(
        http,
        format!("{base}/v1/grants/{grant}/credentials"),
        &steward.1,
        json!({ "kind": "client_secret" }),
    )
    .await;
    let (s, v) = send(
        http.post(format!("{base}/oauth/token"))
            .basic_auth(text(&cred, "client_id"), Some(text(&cred, "client_secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "token: {v}");
    text(&v, "access_token")
}

/// What the callers saw before and around the kill.
#[derive(Default)]
struct Load {
    ok: AtomicUsize,
    stop: AtomicBool,
    /// `x-request-id` of every 200 answer.
    answered: Mutex<Vec<String>>,
}

/// One caller: GETs through the gateway until told to stop or the gateway is gone.
async fn caller(
    http: reqwest::Client,
    gateway: String,
    token: String,
    load: Arc<Load>,
    reached: Arc<tokio::sync::Notify>,
    n: usize,
) {
    let mut i = n;
    while !load.stop.load(Ordering::SeqCst) {
        i += CALLERS;
        let resp = http
            .get(format!("{gateway}/orders/orders/{i}"))
            .bearer_auth(&token)
            .send()
            .await;
        let Ok(resp) = resp else {
            // After the kill: connection refused or reset. Before it: a real failure, which
            // the count of successes (never reached) would show.
            if load.stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        };
        if resp.status() == StatusCode::OK {
            let id = resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            if resp.bytes().await.is_err() {
                continue;
            }
            load.answered.lock().unwrap().push(id);
            if load.ok.fetch_add(1, Ordering::SeqCst) + 1 == BEFORE_KILL {
                reached.notify_one();
            }
        }
    }
}

/// `access.decision` records with `decision: allow`: their request ids.
async fn allowed_request_ids(http: &reqwest::Client, base: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut after = "0".to_owned();
    loop {
        let (s, page) = send(
            http.get(format!(
                "{base}/v1/audit?action=access.decision&limit=500&after={after}"
            ))
            .bearer_auth(ADMIN),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            let d = &item["record"]["details"];
            if d["decision"] == "allow" {
                ids.insert(text(d, "request_id"));
            }
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_decision_record_of_a_forwarded_call() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (upstream, seen) = recording_upstream().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let mut node = Node::start(&data, dir.path().join("server-1.log"), None).await;
    let token = seed(&http, &node.control, &upstream).await;

    let load = Arc::new(Load::default());
    let reached = Arc::new(tokio::sync::Notify::new());
    let callers: Vec<_> = (0..CALLERS)
        .map(|n| {
            tokio::spawn(caller(
                http.clone(),
                node.gateway.clone(),
                token.clone(),
                load.clone(),
                reached.clone(),
                n,
            ))
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(120), reached.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "only {} successful calls through the gateway:\n{}",
                load.ok.load(Ordering::SeqCst),
                node.log()
            )
        });
    // SIGKILL while the callers keep going: calls are in flight at every stage.
    node.child.kill().unwrap();
    load.stop.store(true, Ordering::SeqCst);
    let status = node.child.wait().unwrap();
    assert!(!status.success(), "{status}");
    for c in callers {
        c.await.unwrap();
    }
    let answered: Vec<String> = load.answered.lock().unwrap().clone();
    let received: Vec<String> = seen.lock().unwrap().clone();
    assert!(answered.len() >= BEFORE_KILL);
    assert!(!received.is_empty(), "the upstream received nothing");
    let received_set: HashSet<&String> = received.iter().collect();
    assert_eq!(received_set.len(), received.len(), "request ids are unique");
    assert!(
        received.iter().all(|id| id.len() == 32),
        "every forwarded call carries X-Request-Id"
    );
    for id in &answered {
        assert!(
            received_set.contains(id),
            "answered 200 with {id}, which the upstream never received"
        );
    }

    // Restart on the same data directory, on new ports but with the first node's issuer
    // (its bound control address): tokens issued before the crash carry that issuer.
    let issuer = node.control.clone();
    drop(node);
    let node = Node::start(&data, dir.path().join("server-2.log"), Some(&issuer)).await;
    let (s, v) = send(
        http.get(format!("{}/v1/audit/verify", node.control))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");

    let allowed = allowed_request_ids(&http, &node.control).await;
    let missing: Vec<&String> = received
        .iter()
        .filter(|id| !allowed.contains(*id))
        .collect();
    eprintln!(
        "crash: {} answered 200 before the kill, upstream received {}, {} allow records after restart",
        answered.len(),
        received.len(),
        allowed.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} calls the upstream received have no allow record, e.g. {:?}",
        missing.len(),
        received.len(),
        &missing[..missing.len().min(5)]
    );

    // The restarted node still enforces with the token issued before the crash, and audits it.
    let resp = http
        .get(format!("{}/orders/orders/1", node.gateway))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let reason = resp.headers().get("x-charter-reason").cloned();
    assert_eq!(resp.status(), StatusCode::OK, "after restart: {reason:?}");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(seen.lock().unwrap().contains(&id));
    assert!(
        allowed_request_ids(&http, &node.control)
            .await
            .contains(&id)
    );
    let (s, v) = send(
        http.get(format!("{}/v1/audit/verify", node.control))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "{v}");
}
