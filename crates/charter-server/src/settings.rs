//! The settings a node enforces (from its configuration), shared by handlers and services.

/// Settings the admin API enforces.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This deployment's issuer URL (no trailing slash); every OAuth URL is under it.
    pub issuer: String,
    /// Default maximum age of a credential.
    pub credential_max_age_days: u32,
    /// Lifetime of a principal's bearer token.
    pub principal_token_days: i64,
    /// Failed admin authentications allowed per source address per minute.
    pub auth_failures_per_minute: u32,
    /// An offboarding with no live gateway to probe is `incomplete` unless this is `false`
    /// (`offboarding.require_gateway`).
    pub offboarding_require_gateway: bool,
    /// Where API upstreams may point (`services::upstreams`).
    pub upstreams: UpstreamPolicy,
}

/// Where API upstreams may point, besides the addresses always refused (link-local, cloud
/// metadata, Charter's own listeners). Empty `allow` allows every other address.
#[derive(Debug, Clone, Default)]
pub struct UpstreamPolicy {
    /// `upstream_allow`: if not empty, every address an upstream resolves to is in one of these.
    pub allow: Vec<ipnet::IpNet>,
    /// `upstream_deny`: no address an upstream resolves to is in one of these.
    pub deny: Vec<ipnet::IpNet>,
    /// This node's own listeners (bound addresses): never an upstream.
    pub own_listeners: Vec<std::net::SocketAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:7600".into(),
            credential_max_age_days: charter_core::credential::DEFAULT_MAX_AGE_DAYS,
            principal_token_days: 90,
            auth_failures_per_minute: 20,
            upstreams: UpstreamPolicy::default(),
            offboarding_require_gateway: true,
        }
    }
}
