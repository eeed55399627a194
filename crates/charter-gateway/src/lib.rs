//! Charter's enforcement point. Every partner call is decided by the one decision function
//! in `charter-core`, attributed (partner, grant, use case, approvals, credential, `jti`),
//! and its decision record is durable before anything reaches the upstream.
//!
//! Phases of a call (`pipeline`): authenticate the token (signature once per token, then
//! cached) → normalise the path and match the operation (compiled router) → decide → audit
//! the decision (awaited: group commit) → answer (check mode) or forward (proxy mode) →
//! append the outcome record (not awaited).
//!
//! Architecture invariants: no upstream call before its decision record is durable; if the
//! audit store cannot take the record, the call is refused (`audit_unavailable`, 503);
//! default deny.

pub mod feed;
pub mod forwarded;
pub mod live;
pub mod pipeline;
pub mod proxy;
pub mod registry;
pub mod replay;
pub mod routing;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use charter_core::{Clock, Environment};
use charter_store::AuditWriter;

pub use live::Live;
pub use replay::{FirstUse, ReplayCache, ReplayLimits};
pub use tokens::VerifiedTokens;

/// How this gateway enforces.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// This gateway's id in the registry and in audit records.
    pub id: String,
    /// The issuer tokens must name.
    pub issuer: String,
    /// The environment calls are made in.
    pub environment: Environment,
    /// Whether the listener is TLS (for the DPoP `htu` and `X-Forwarded-Proto`).
    pub tls: bool,
    /// The URL partners call this gateway at (the DPoP `htu` base); default: the bound address.
    pub public_url: Option<String>,
    /// Calls without a valid token allowed per client address per minute.
    pub anonymous_per_minute: u32,
    /// How long to wait for an upstream's response head.
    pub upstream_timeout: Duration,
}

pub struct Gateway {
    pub live: Arc<Live>,
    pub verified: Arc<VerifiedTokens>,
    pub replay: Arc<ReplayCache>,
    pub writer: AuditWriter,
    pub clock: Arc<dyn Clock>,
    pub config: GatewayConfig,
    pub upstream: proxy::Upstream,
    /// Freshness of the live view (fails closed when stale).
    pub feed: Arc<feed::FeedHealth>,
    /// Anonymous and invalid-token calls per client address.
    pub anonymous: pipeline::AnonymousThrottle,
}

/// Calls without a valid token allowed per client address per minute, by default.
pub const ANONYMOUS_PER_MINUTE: u32 = 600;

/// The gateway listener's routes: check mode, liveness, and proxy mode for everything else.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/v1/authz/check", any(pipeline::check))
        .route("/v1/authz/check/{*rest}", any(pipeline::check))
        .fallback(pipeline::proxy)
        .with_state(gw)
}
