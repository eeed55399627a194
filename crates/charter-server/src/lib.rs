//! Charter's HTTP edge. Builds the control-plane router (admin API, health, metrics,
//! OpenAPI) over an [`AppState`], binds listeners (plain or TLS), bootstraps the first admin,
//! and runs until shut down.
//!
//! API boundary: this crate is the only one that knows the wire protocol of the admin API;
//! handlers convert input into `charter-core` types on their first lines.

pub mod auth;
pub mod chain_guard;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod keyring;
pub mod limits;
pub mod listen;
pub mod oauth;
pub mod pages;
pub mod repo;
pub mod routes;
pub mod scheduler;
pub mod services;
pub mod settings;
pub mod state;
pub mod usage;
pub mod wire;

use charter_evidence::action;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use charter_core::{Clock, Name, Principal, PrincipalId, Role};
use charter_store::{AuditWriter, Durability, Kind, Store, WriterConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::{Config, DurabilitySetting, NodeRole, OffboardingConfig};
use error::ApiError;
pub use state::{AppState, Settings, Shared};

/// A node whose live view has not been confirmed current for this long refuses calls.
pub const FEED_STALENESS_SECONDS: u64 = 30;
/// How often a node sharing its database resynchronises its live view.
pub const FEED_RESYNC_SECONDS: u64 = 10;

/// Request bodies above this are refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Charter admin API", description = "Partner access governance: APIs, partners, grants, approvals and the audit chain."),
    modifiers(&BearerAuth),
    // Named by `?format=` of the compliance report but not reachable from a body.
    components(schemas(routes::compliance::Format))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every evidence public key ever used (bundles and checkpoints verify against these).
async fn evidence_keys(
    axum::extract::State(state): axum::extract::State<Shared>,
) -> axum::response::Response {
    match state.keys.evidence() {
        Ok(e) => axum::Json(serde_json::json!({ "keys": e.published })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every app in a process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Shared state over an open store: starts the audit writer, loads the live view and the
/// signing keys (creating them on first start).
pub async fn app_state(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    master: charter_auth::keys::MasterKey,
) -> anyhow::Result<Shared> {
    let writer = AuditWriter::spawn(store.clone(), WriterConfig::default());
    let live = Arc::new(
        charter_gateway::Live::load(store.as_ref())
            .await
            .context("loading the live view")?,
    );
    let state = Arc::new(AppState {
        repo: repo::Repo::new(store, writer, live, clock),
        limits: limits::Limits::new(settings.auth_failures_per_minute),
        keys: keyring::KeyRing::new(master),
        verified: Arc::new(charter_gateway::VerifiedTokens::default()),
        replay: Arc::new(charter_gateway::ReplayCache::default()),
        assertions: charter_gateway::ReplayCache::new(
            charter_gateway::ReplayLimits::CLIENT_ASSERTIONS,
        ),
        feed: Arc::new(charter_gateway::feed::FeedHealth::new(
            std::time::Duration::from_secs(FEED_STALENESS_SECONDS),
        )),
        settings,
        metrics: metrics_handle(),
    });
    state
        .keys
        .load(&state.repo)
        .await
        .map_err(|e| anyhow::anyhow!("loading signing keys: {e}"))?;
    state
        .keys
        .load_evidence(&state.repo)
        .await
        .map_err(|e| anyhow::anyhow!("loading evidence keys: {e}"))?;
    Ok(state)
}

/// The master key: `CHARTER_MASTER_KEY` (base64) if set, else `data_dir/master.key`
/// (created with mode 0600 on first start).
pub fn master_key(
    data_dir: &Path,
    env: Option<&str>,
) -> anyhow::Result<charter_auth::keys::MasterKey> {
    use charter_auth::keys::MasterKey;
    if let Some(b64) = env {
        return MasterKey::from_base64(b64.trim())
            .map_err(|e| anyhow::anyhow!("CHARTER_MASTER_KEY: {e}"));
    }
    let path = data_dir.join("master.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return MasterKey::from_base64(text.trim())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let key = MasterKey::generate();
    write_secret_file(&path, key.to_base64().expose())?;
    Ok(key)
}

/// The control-plane router and its OpenAPI description.
pub fn control_router(state: Shared) -> Router {
    use routes::{
        apis, audit, credentials, evidence, grants, keys, offboarding, ops, partners, principals,
    };
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(principals::create, principals::list))
        .routes(routes!(principals::get))
        .routes(routes!(principals::rotate))
        .routes(routes!(principals::disable))
        .routes(routes!(apis::publish, apis::list))
        .routes(routes!(apis::get, apis::republish))
        .routes(routes!(partners::create, partners::list))
        .routes(routes!(partners::get, partners::patch))
        .routes(routes!(offboarding::offboard))
        .routes(routes!(evidence::for_grant))
        .routes(routes!(evidence::for_partner))
        .routes(routes!(evidence::usage_proof))
        .routes(routes!(routes::reviews::start, routes::reviews::list))
        .routes(routes!(routes::reviews::get))
        .routes(routes!(routes::reviews::attest))
        .routes(routes!(routes::findings::list))
        .routes(routes!(routes::compliance::report))
        .routes(routes!(grants::request, grants::list))
        .routes(routes!(grants::get))
        .routes(routes!(grants::decide))
        .routes(routes!(grants::suspend))
        .routes(routes!(grants::resume))
        .routes(routes!(grants::revoke))
        .routes(routes!(credentials::issue, credentials::list_for_grant))
        .routes(routes!(credentials::get))
        .routes(routes!(credentials::rotate))
        .routes(routes!(credentials::revoke))
        .routes(routes!(keys::rotate))
        .routes(routes!(keys::list))
        .routes(routes!(keys::rotate_evidence))
        .routes(routes!(audit::query))
        .routes(routes!(audit::verify))
        .routes(routes!(routes::export::export))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let spec = Arc::new(openapi);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(oauth::metadata),
        )
        .route(oauth::JWKS_PATH, axum::routing::get(oauth::jwks))
        .route(
            pages::STYLESHEET_PATH,
            axum::routing::get(pages::stylesheet),
        )
        .route(
            "/.well-known/charter-evidence-keys",
            axum::routing::get(evidence_keys),
        )
        .route(oauth::TOKEN_PATH, axum::routing::post(oauth::token))
        .route(
            oauth::INTROSPECT_PATH,
            axum::routing::post(oauth::introspect),
        )
        .route(oauth::REVOKE_PATH, axum::routing::post(oauth::revoke))
        .merge(console::router(
            state.settings.issuer.starts_with("https://"),
        ))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        // axum adds `Allow` (the route's methods) to what this answers.
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this method is not allowed on this route".into())
        })
        .layer(middleware::from_fn(count_requests))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The metrics listener's router: `/metrics` without a token, nothing else.
pub fn metrics_router(state: Shared) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(routes::ops::metrics_open))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

/// The enforcement gateway over this node's state: it shares the live view, the verified
/// token cache and the audit writer with the control plane. Its DPoP `htu` base is the bound
/// address; see [`gateway_with`] for a public URL and another anonymous-call quota.
pub fn gateway(
    state: &AppState,
    environment: &str,
    tls: bool,
) -> anyhow::Result<Arc<charter_gateway::Gateway>> {
    gateway_with(
        state,
        environment,
        tls,
        None,
        charter_gateway::ANONYMOUS_PER_MINUTE,
    )
}

/// [`gateway`] with a public URL (`gateway_public_url`) and a quota of calls without a valid
/// token per client address and minute.
pub fn gateway_with(
    state: &AppState,
    environment: &str,
    tls: bool,
    public_url: Option<String>,
    anonymous_per_minute: u32,
) -> anyhow::Result<Arc<charter_gateway::Gateway>> {
    let environment = charter_core::Environment::parse(environment)
        .map_err(|e| anyhow::anyhow!("--environment: {e}"))?;
    let id: [u8; 8] = rand::random();
    Ok(Arc::new(charter_gateway::Gateway {
        live: state.repo.live.clone(),
        verified: state.verified.clone(),
        replay: state.replay.clone(),
        writer: state.repo.writer.clone(),
        clock: state.repo.clock.clone(),
        config: charter_gateway::GatewayConfig {
            id: format!("gw_{}", hex::encode(id)),
            issuer: state.settings.issuer.clone(),
            environment,
            tls,
            public_url,
            anonymous_per_minute,
            upstream_timeout: std::time::Duration::from_secs(30),
        },
        upstream: charter_gateway::proxy::Upstream::new()?,
        feed: state.feed.clone(),
        anonymous: charter_gateway::pipeline::AnonymousThrottle::per_minute(anonymous_per_minute),
    }))
}

async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    // Unknown methods share one label: a caller must not mint metric series.
    let method = match charter_core::Method::parse(req.method().as_str()) {
        Some(_) => req.method().to_string(),
        None => "other".to_owned(),
    };
    let resp = next.run(req).await.into_response();
    metrics::counter!("charter_http_requests_total", "route" => route, "method" => method,
        "status" => resp.status().as_u16().to_string())
    .increment(1);
    resp
}

/// Where the bootstrap admin token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Principals already exist.
    NotNeeded,
    /// Taken from `CHARTER_ADMIN_TOKEN`.
    FromEnvironment,
    /// Generated and written to this file (mode 0600).
    Written(std::path::PathBuf),
}

/// On first start (no principals yet) creates the bootstrap admin, with the token from
/// `env_token` or a generated one written to `data_dir/admin.token`.
pub async fn bootstrap_admin(
    state: &AppState,
    data_dir: &Path,
    env_token: Option<&str>,
) -> anyhow::Result<Bootstrap> {
    if state.repo.store.count(Kind::Principal).await? > 0 {
        return Ok(Bootstrap::NotNeeded);
    }
    let (token, outcome) = match env_token {
        Some(t) if t.len() >= 24 && t.bytes().all(|b| b.is_ascii_graphic()) => {
            (t.to_owned(), Bootstrap::FromEnvironment)
        }
        Some(_) => anyhow::bail!("CHARTER_ADMIN_TOKEN must be at least 24 printable characters"),
        None => {
            let token = auth::new_token();
            let path = data_dir.join("admin.token");
            write_secret_file(&path, &token)?;
            (token, Bootstrap::Written(path))
        }
    };
    let now = state.now();
    let (ms, rnd) = state.repo.id_seed();
    let principal = Principal {
        id: PrincipalId::generate(ms, rnd),
        name: Name::parse("bootstrap-admin")?,
        roles: vec![Role::Admin],
        created_at: now,
        token_expires_at: now
            + jiff::SignedDuration::from_hours(24 * state.settings.principal_token_days),
        disabled: false,
    };
    match state
        .repo
        .create(
            &principal,
            Some(auth::token_hash(&token)),
            "system",
            action::PRINCIPAL_BOOTSTRAP,
            Some("first start".into()),
        )
        .await
    {
        Ok(()) => Ok(outcome),
        // Another node bootstrapped the shared database first.
        Err(ApiError::Conflict(_)) => Ok(Bootstrap::NotNeeded),
        Err(e) => Err(anyhow::anyhow!("bootstrapping the admin principal: {e}")),
    }
}

fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

/// A started node.
pub struct Running {
    pub state: Shared,
    pub control_addr: Option<SocketAddr>,
    pub gateway_addr: Option<SocketAddr>,
    /// The metrics listener (`--metrics-listen`), if any.
    pub metrics_addr: Option<SocketAddr>,
    pub bootstrap: Bootstrap,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The change feed and the gateway heartbeat; stopped after the listeners drain.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits until every listener has drained after shutdown.
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        for t in self.background {
            t.abort();
        }
    }
}

/// Binds the listeners the role needs, then opens the store, bootstraps, and serves until
/// `shutdown` resolves. Binding comes first so that a busy address fails before anything is
/// created, and so that a port of 0 works: without `--issuer` the issuer is derived from the
/// control plane's *bound* address.
pub async fn start(
    config: &Config,
    clock: Arc<dyn Clock>,
    env_admin_token: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    config.check_transport()?;
    let serve_options = config.serve_options()?;
    let (upstream_allow, upstream_deny) = config.upstream_networks()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(listen::tls_acceptor(c, k)?),
        _ => None,
    };
    let control_listener = if matches!(config.role, NodeRole::All | NodeRole::Control) {
        Some(bind(config.listen, "the control plane", "--listen").await?)
    } else {
        None
    };
    let gateway_listener = if matches!(config.role, NodeRole::All | NodeRole::Gateway) {
        Some(bind(config.gateway_listen, "the gateway", "--gateway-listen").await?)
    } else {
        None
    };
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(bind(addr, "the metrics listener", "--metrics-listen").await?),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let control_addr = control_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let gateway_addr = gateway_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    // The URLs this node registers for offboarding probes: never a wildcard bind address.
    let control_url = control_addr
        .map(|a| config.advertised_url(config.advertise_url.as_deref(), a, "--advertise-url"))
        .transpose()?;
    let gateway_url = gateway_addr
        .map(|a| {
            config.advertised_url(
                config.gateway_advertise_url.as_deref(),
                a,
                "--gateway-advertise-url",
            )
        })
        .transpose()?;

    create_private_dir(&config.data_dir)?;
    let durability = match config.durability {
        DurabilitySetting::Process => Durability::Process,
        DurabilitySetting::Fsync => Durability::Fsync,
    };
    let store = charter_store::open(&config.database_url(), durability)
        .await
        .context("opening the database")?;
    // `http(s)://<listen>` unless `--issuer`: the address actually bound (port 0 resolved).
    let bound = Config {
        listen: control_addr.unwrap_or(config.listen),
        ..config.clone()
    };
    let settings = Settings {
        principal_token_days: config.principal_token_days,
        issuer: bound.issuer_url(),
        upstreams: settings::UpstreamPolicy {
            allow: upstream_allow,
            deny: upstream_deny,
            own_listeners: control_addr
                .into_iter()
                .chain(gateway_addr)
                .chain(metrics_addr)
                .collect(),
        },
        offboarding_require_gateway: config.offboarding.require_gateway,
        ..Settings::default()
    };
    let master = master_key(
        &config.data_dir,
        std::env::var("CHARTER_MASTER_KEY").ok().as_deref(),
    )?;
    let state = app_state(store, clock, settings, master).await?;
    let bootstrap = bootstrap_admin(&state, &config.data_dir, env_admin_token).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let mut tasks = Vec::new();
    let mut tasks_bg = Vec::new();
    if let (Some(listener), Some(url)) = (control_listener, control_url) {
        let id: [u8; 8] = rand::random();
        tasks_bg.push(tokio::spawn(charter_gateway::registry::run(
            state.repo.writer.clone(),
            state.repo.clock.clone(),
            charter_gateway::registry::NodeRecord {
                id: format!("cn_{}", hex::encode(id)),
                kind: charter_gateway::registry::NodeKind::Control,
                url,
                environment: config.environment.clone(),
                started_at: state.now(),
                heartbeat_at: state.now(),
            },
            std::time::Duration::from_secs(10),
        )));
        let app = control_router(state.clone());
        tasks.push(tokio::spawn(listen::serve_with(
            listener,
            app,
            tls.clone(),
            serve_options.clone(),
            stopped(),
        )));
    }
    if let Some(listener) = metrics_listener {
        tasks.push(tokio::spawn(listen::serve(
            listener,
            metrics_router(state.clone()),
            tls.clone(),
            stopped(),
        )));
    }
    if let (Some(listener), Some(url), Some(addr)) = (gateway_listener, gateway_url, gateway_addr) {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = config
            .gateway_public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let gw = gateway_with(
            &state,
            &config.environment,
            tls.is_some(),
            Some(public_url),
            config.gateway_anonymous_per_minute,
        )?;
        let record = charter_gateway::registry::NodeRecord {
            id: gw.config.id.clone(),
            kind: charter_gateway::registry::NodeKind::Gateway,
            url,
            environment: config.environment.clone(),
            started_at: state.now(),
            heartbeat_at: state.now(),
        };
        tasks_bg.push(tokio::spawn(charter_gateway::registry::run(
            state.repo.writer.clone(),
            state.repo.clock.clone(),
            record,
            std::time::Duration::from_secs(10),
        )));
        tasks.push(tokio::spawn(listen::serve_with(
            listener,
            charter_gateway::router(gw),
            tls,
            serve_options,
            stopped(),
        )));
    }
    tasks_bg.push(tokio::spawn(scheduler::run(
        state.clone(),
        std::time::Duration::from_secs(5),
    )));
    if matches!(config.role, NodeRole::All | NodeRole::Control) {
        let forward = checkpoints::Forwarder::new(
            config.checkpoints.sink_file.clone(),
            config.checkpoints.witness_url.as_deref(),
        )?;
        tasks_bg.push(tokio::spawn(checkpoints::run(
            state.clone(),
            config.checkpoint_path(),
            forward,
            std::time::Duration::from_secs(config.checkpoint_interval_seconds.max(1)),
        )));
    }
    tasks_bg.push(tokio::spawn(charter_gateway::feed::run(
        state.repo.store.clone(),
        state.repo.live.clone(),
        state.feed.clone(),
        state.repo.clock.clone(),
        std::time::Duration::from_secs(FEED_RESYNC_SECONDS),
    )));
    Ok(Running {
        state,
        control_addr,
        gateway_addr,
        metrics_addr,
        bootstrap,
        tasks,
        background: tasks_bg,
    })
}

/// Binds `addr` for `what`; a busy address is one clear sentence naming the flag.
async fn bind(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "{addr} is already in use (is another charter running?); stop it or pick another address with {flag}"
            )
        } else {
            anyhow::anyhow!("cannot bind {what} to {addr} ({flag}): {e}")
        }
    })
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
