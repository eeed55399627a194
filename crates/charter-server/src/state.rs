//! What every handler shares: the repository (store, writer, live view, clock), the key ring,
//! the failure limits and the settings. Workflows live in `services`; this module only
//! holds them together.

use std::sync::Arc;

use jiff::Timestamp;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::keyring::KeyRing;
use crate::limits::Limits;
use crate::repo::Repo;
use crate::services::issuance::Tokens;
pub use crate::settings::Settings;

pub struct AppState {
    pub repo: Repo,
    /// Tokens whose signature was verified once (shared with the in-process gateway).
    pub verified: Arc<charter_gateway::VerifiedTokens>,
    /// Used `jti`s of DPoP proofs (shared with the in-process gateway).
    pub replay: Arc<charter_gateway::ReplayCache>,
    /// Used client-assertion `jti`s per client id, each until its assertion's `exp` plus the
    /// leeway (bounded: when full it refuses, never forgets; see `charter_gateway::replay`).
    pub assertions: charter_gateway::ReplayCache,
    /// Freshness of the live view when other nodes share the database.
    pub feed: Arc<charter_gateway::feed::FeedHealth>,
    pub keys: KeyRing,
    /// Failed-authentication limits (admin API and OAuth endpoints).
    pub limits: Limits,
    pub settings: Settings,
    pub metrics: PrometheusHandle,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn now(&self) -> Timestamp {
        self.repo.now()
    }

    /// Token issuance and token checks over this node's keys and caches.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens {
            repo: &self.repo,
            keys: &self.keys,
            assertions: &self.assertions,
            dpop_replay: &self.replay,
            verified: &self.verified,
            issuer: &self.settings.issuer,
        }
    }
}
