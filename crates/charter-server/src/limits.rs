//! Failed-authentication throttles (governor, through `charter_gateway::throttle`). They are
//! consulted only after a credential failed: a correct credential is always checked and always
//! succeeds, whoever failed before it. Within its quota a failure is answered 401 and audited;
//! past it the failure is answered 429 with `Retry-After`, counted, and summarised by one
//! `auth.rate_limited` record per key and minute instead of one record each.
//!
//! Keys are the real client address (the TCP peer, or the client a trusted proxy names) and,
//! on the OAuth endpoints, the claimed client id.

use std::net::IpAddr;

use charter_gateway::throttle::Throttle;

/// Failed client authentications allowed per claimed client id per minute.
pub const CLIENT_FAILURES_PER_MINUTE: u32 = 10;
/// Failed client authentications allowed per address per minute.
pub const OAUTH_ADDRESS_FAILURES_PER_MINUTE: u32 = 50;

/// Every failure throttle a node keeps.
pub struct Limits {
    /// Failed admin-API bearer tokens per client address.
    pub admin_addresses: Throttle<IpAddr>,
    /// Failed client authentications per claimed client id.
    pub oauth_clients: Throttle<String>,
    /// Failed client authentications per client address.
    pub oauth_addresses: Throttle<IpAddr>,
    /// One summarising `auth.rate_limited` record per throttled key and minute.
    pub summaries: Throttle<String>,
}

impl Limits {
    pub fn new(admin_failures_per_minute: u32) -> Self {
        Self {
            admin_addresses: Throttle::per_minute(admin_failures_per_minute),
            oauth_clients: Throttle::per_minute(CLIENT_FAILURES_PER_MINUTE),
            oauth_addresses: Throttle::per_minute(OAUTH_ADDRESS_FAILURES_PER_MINUTE),
            summaries: Throttle::per_minute(1),
        }
    }

    /// Whether a summary record for `key` is due (at most one a minute per key).
    pub fn summary_due(&self, key: String) -> bool {
        self.summaries.fail(&key).is_none()
    }
}
