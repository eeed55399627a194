//! Per-key throttles on failures (governor's keyed GCRA limiters). A throttle is consulted
//! only after something failed — a bad secret, a bad token, an anonymous call — so a correct
//! credential is never refused because of anyone else's failures. Keys are real client
//! addresses (see `forwarded`) or claimed client ids; memory is bounded by pruning keys whose
//! state is back to fresh.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::RwLock;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys kept before idle ones are pruned.
const PRUNE_AT: usize = 10_000;

/// Counts failures per key; over its quota a key is told to slow down.
pub struct Throttle<K: Hash + Eq + Clone> {
    quota: Quota,
    limiter: RwLock<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// `per_minute` failures a minute per key, all of them usable at once (0 is taken as 1).
    pub fn per_minute(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            quota,
            limiter: RwLock::new(RateLimiter::keyed(quota)),
        }
    }

    /// Counts one failure for `key`: `None` while the key is within its quota, else the
    /// whole seconds (at least 1) until it may fail again.
    pub fn fail(&self, key: &K) -> Option<u64> {
        let limiter = self.limiter.read().unwrap_or_else(|p| p.into_inner());
        if limiter.len() > PRUNE_AT {
            limiter.retain_recent();
        }
        match limiter.check_key(key) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Some(wait.as_secs().max(1))
            }
        }
    }

    /// Forgets every key.
    pub fn clear(&self) {
        *self.limiter.write().unwrap_or_else(|p| p.into_inner()) = RateLimiter::keyed(self.quota);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_quota_is_slowed_and_others_are_not() {
        let t = Throttle::per_minute(3);
        for _ in 0..3 {
            assert_eq!(t.fail(&"a"), None);
        }
        assert!(t.fail(&"a").is_some_and(|s| s >= 1));
        assert_eq!(
            t.fail(&"b"),
            None,
            "one key's failures never count against another"
        );
        t.clear();
        assert_eq!(t.fail(&"a"), None);
    }
}
