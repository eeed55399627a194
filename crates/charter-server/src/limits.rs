//! Failed-authentication limits: per source address for the admin API, per client id and per
//! address for the OAuth endpoints. Counted in one-minute windows; once a key trips its limit
//! it is refused (429 with `Retry-After`) until the window passes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Counts failed authentications per key (a source address, a client id) in one-minute
/// windows.
pub struct FailureLimiter<K = IpAddr> {
    per_minute: u32,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl<K: std::hash::Hash + Eq> FailureLimiter<K> {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait if the address is over its limit.
    pub fn blocked(&self, key: K) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = windows.get(&key)?;
        let elapsed = start.elapsed();
        (elapsed < WINDOW && *count >= self.per_minute).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    /// Forgets every address's failures.
    pub fn clear(&self) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Records a failure; returns whether this one tripped the limit.
    pub fn fail(&self, key: K) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 == self.per_minute
    }
}

/// Every failure limit a node keeps.
pub struct Limits {
    /// Failed admin-API bearer tokens per source address.
    pub admin_addresses: FailureLimiter<IpAddr>,
    /// Failed client authentications per claimed client id.
    pub oauth_clients: FailureLimiter<String>,
    /// Failed client authentications per source address.
    pub oauth_addresses: FailureLimiter<IpAddr>,
}

impl Limits {
    pub fn new(admin_failures_per_minute: u32) -> Self {
        Self {
            admin_addresses: FailureLimiter::new(admin_failures_per_minute),
            oauth_clients: FailureLimiter::new(10),
            oauth_addresses: FailureLimiter::new(50),
        }
    }
}
