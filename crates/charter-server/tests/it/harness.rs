//! Spawns a control plane per test on 127.0.0.1:0 with its own database and a manual clock.

use std::sync::Arc;

use charter_server::clock::ManualClock;
use charter_server::{Settings, Shared, app_state, bootstrap_admin, control_router};
use charter_store::Durability;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
/// The PostgreSQL server tests create their databases on.
pub fn postgres_base() -> String {
    std::env::var("CHARTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What the test upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: reqwest::header::HeaderMap,
}

pub struct TestApp {
    pub base: String,
    /// The gateway listener.
    pub gw: String,
    /// The upstream behind the gateway, and what it received.
    pub upstream: String,
    pub received: Arc<std::sync::Mutex<Vec<Received>>>,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: Shared,
    pub db_url: String,
    pub backend: Backend,
    pub pg_db: Option<String>,
    pub dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
    _gw_stop: tokio::sync::oneshot::Sender<()>,
}

/// A real upstream on loopback that records every request and answers with JSON.
async fn spawn_upstream() -> (String, Arc<std::sync::Mutex<Vec<Received>>>) {
    let received: Arc<std::sync::Mutex<Vec<Received>>> = Arc::default();
    let rec = received.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let rec = rec.clone();
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            rec.lock().unwrap().push(Received {
                method: req.method().to_string(),
                path_and_query: path.clone(),
                headers: req.headers().clone(),
            });
            axum::Json(serde_json::json!({ "upstream": "orders", "path": path }))
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

/// Runs a test body against both backends.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: $crate::harness::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::harness::run_test($crate::harness::Backend::Sqlite, run).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::harness::run_test($crate::harness::Backend::Postgres, run).await;
                }
            }
        )*
    };
}

/// Runs a test body on a fresh app of `backend`. The body runs as a task of its own, so a
/// PostgreSQL database is dropped whether the body passes or fails; a failure is re-raised
/// afterwards.
pub async fn run_test<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestApp) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(create_database().await),
    };
    let name = pg.as_ref().map(|(_, name)| name.clone());
    let outcome =
        tokio::spawn(async move { body(TestApp::spawn_on(backend, pg).await).await }).await;
    drop_database(name).await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("the test task did not finish: {e}"),
        }
    }
}

pub async fn create_database() -> (String, String) {
    use sqlx::Executor;
    let name = format!("charter_t_{}", hex_id());
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", postgres_base()))
        .await
        .expect("PostgreSQL at CHARTER_TEST_POSTGRES");
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await;
    (format!("{}/{name}", postgres_base()), name)
}

pub async fn drop_database(name: Option<String>) {
    use sqlx::Executor;
    let Some(name) = name else { return };
    if let Ok(admin) = sqlx::PgPool::connect(&format!("{}/postgres", postgres_base())).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
        admin.close().await;
    }
}

fn hex_id() -> String {
    let b: [u8; 8] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl TestApp {
    /// An app on a fresh database; the caller drops a PostgreSQL one (`pg_db`) when done
    /// (prefer [`run_test`], which does so even when the test fails).
    pub async fn spawn(backend: Backend) -> Self {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_database().await),
        };
        Self::spawn_on(backend, pg).await
    }

    /// An app on `pg` (URL and name of a created database) for PostgreSQL, or on a SQLite
    /// file in its own directory.
    async fn spawn_on(backend: Backend, pg: Option<(String, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db_url, pg_db) = match (backend, pg) {
            (Backend::Sqlite, _) => (
                format!("sqlite://{}", dir.path().join("charter.db").display()),
                None,
            ),
            (Backend::Postgres, Some((url, name))) => (url, Some(name)),
            (Backend::Postgres, None) => unreachable!("a PostgreSQL app has a database"),
        };
        let store = charter_store::open(&db_url, Durability::Process)
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new("2026-11-30T10:00:00Z".parse().unwrap()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gw_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw_addr = gw_listener.local_addr().unwrap();
        let settings = Settings {
            issuer: format!("http://{addr}"),
            upstreams: charter_server::settings::UpstreamPolicy {
                own_listeners: vec![addr, gw_addr],
                ..Default::default()
            },
            ..Settings::default()
        };
        let master = charter_server::master_key(dir.path(), None).unwrap();
        let state = app_state(store, clock.clone(), settings, master)
            .await
            .unwrap();
        bootstrap_admin(&state, dir.path(), Some(ADMIN_TOKEN))
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(charter_server::listen::serve(
            listener,
            control_router(state.clone()),
            None,
            async {
                let _ = stopped.await;
            },
        ));
        let gw = charter_server::gateway(&state, "production", false).unwrap();
        let (gw_stop, gw_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(charter_server::listen::serve(
            gw_listener,
            charter_gateway::router(gw),
            None,
            async {
                let _ = gw_stopped.await;
            },
        ));
        let (upstream, received) = spawn_upstream().await;
        Self {
            base: format!("http://{addr}"),
            gw: format!("http://{gw_addr}"),
            upstream,
            received,
            _gw_stop: gw_stop,
            http: reqwest::Client::new(),
            clock,
            state,
            db_url,
            backend,
            pg_db,
            dir,
            _stop: stop,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates a principal with these roles; returns (id, token).
    pub async fn principal(&self, name: &str, roles: &[&str]) -> (String, String) {
        let (s, v) = self
            .post(
                "/v1/principals",
                ADMIN_TOKEN,
                json!({ "name": name, "roles": roles }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    pub fn in_days(&self, days: i64) -> String {
        use charter_core::Clock;
        (self.clock.now() + jiff::SignedDuration::from_hours(24 * days)).to_string()
    }

    pub async fn audit_count(&self) -> u64 {
        self.state.repo.store.audit_head().await.unwrap().seq
    }

    pub async fn raw_sql(&self, statements: &[&str]) {
        use sqlx::Executor;
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.db_url).await.unwrap();
                for s in statements {
                    pool.execute(sqlx::AssertSqlSafe(s.to_string()))
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.db_url).await.unwrap();
                for s in statements {
                    pool.execute(sqlx::AssertSqlSafe(s.to_string()))
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
        }
    }
}

/// A small world: an API owner with one API, a steward, two approvers owning a direct and a
/// reseller partner.
pub struct World {
    pub owner: (String, String),
    pub steward: (String, String),
    pub alice: (String, String),
    pub bob: (String, String),
    pub auditor: (String, String),
    pub api: String,
    pub direct: String,
    pub reseller: String,
}

pub fn orders_api(name: &str, audience: &str) -> Value {
    json!({
        "name": name,
        "audience": audience,
        "upstream": "http://127.0.0.1:9/",
        "operations": [
            { "scope": "orders:read", "method": "GET", "path": "/orders/{id}", "data_class": "confidential", "region": "eu" },
            { "scope": "orders:list", "method": "GET", "path": "/orders", "data_class": "internal", "region": "eu" },
            { "scope": "orders:write", "method": "POST", "path": "/orders", "data_class": "confidential", "region": "eu" },
            { "scope": "orders:export", "method": "GET", "path": "/orders/export", "data_class": "restricted", "region": "us" }
        ]
    })
}

impl World {
    pub async fn new(app: &TestApp) -> Self {
        let owner = app.principal("orders-team", &["api_owner"]).await;
        let steward = app.principal("partner-office", &["steward"]).await;
        let alice = app.principal("alice", &["approver"]).await;
        let bob = app.principal("bob", &["approver"]).await;
        let auditor = app.principal("audit-team", &["auditor"]).await;
        let (s, api) = app
            .post(
                "/v1/apis",
                &owner.1,
                orders_api("orders", "https://api.example.com/orders"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{api}");
        let (s, direct) = app
            .post(
                "/v1/partners",
                &steward.1,
                json!({ "name": "Acme", "kind": "direct", "regions": ["eu"], "owners": [alice.0] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{direct}");
        let (s, reseller) = app
            .post(
                "/v1/partners",
                &steward.1,
                json!({ "name": "Globex", "kind": "reseller", "regions": ["eu"], "owners": [alice.0, bob.0] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{reseller}");
        Self {
            owner,
            steward,
            alice,
            bob,
            auditor,
            api: api["id"].as_str().unwrap().to_owned(),
            direct: direct["id"].as_str().unwrap().to_owned(),
            reseller: reseller["id"].as_str().unwrap().to_owned(),
        }
    }

    pub fn grant_body(&self, app: &TestApp, partner: &str) -> Value {
        json!({
            "partner": partner,
            "api": self.api,
            "use_case": "Delivery status sync",
            "scopes": ["orders:read", "orders:list"],
            "data_class_ceiling": "confidential",
            "regions": ["eu"],
            "expires_at": app.in_days(90),
        })
    }

    /// Requests a grant for the direct partner; returns its id.
    pub async fn pending_grant(&self, app: &TestApp) -> String {
        let (s, g) = app
            .post(
                "/v1/grants",
                &self.steward.1,
                self.grant_body(app, &self.direct),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        assert_eq!(g["status"], "pending");
        g["id"].as_str().unwrap().to_owned()
    }

    pub async fn active_grant(&self, app: &TestApp) -> String {
        let id = self.pending_grant(app).await;
        let (s, g) = app
            .post(&format!("/v1/grants/{id}/approvals"), &self.alice.1, json!({ "decision": "approve", "justification": "needed for deliveries", "ticket": "CHG-1" }))
            .await;
        assert_eq!(s, StatusCode::OK, "{g}");
        assert_eq!(g["status"], "active");
        id
    }
}

/// A failing test body still drops its PostgreSQL database, and its failure is re-raised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_still_drops_its_database() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let failed = tokio::spawn(run_test(Backend::Postgres, |app: TestApp| async move {
        let _ = tx.send(app.pg_db.clone().unwrap());
        panic!("deliberate failure");
    }))
    .await
    .unwrap_err();
    assert_eq!(
        failed.into_panic().downcast_ref::<&str>().copied(),
        Some("deliberate failure")
    );
    let name = rx.await.unwrap();
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", postgres_base()))
        .await
        .unwrap();
    let left: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&admin)
        .await
        .unwrap();
    admin.close().await;
    assert_eq!(left, None, "{name} was left behind");
}
