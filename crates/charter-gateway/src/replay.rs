//! Seen `jti`s of client assertions and DPoP proofs, kept until they would expire anyway, so
//! a replayed one is refused.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct ReplayCache(Mutex<HashMap<String, i64>>);

impl ReplayCache {
    /// Records `key` as used until `until` (unix seconds); false if it was already used.
    pub fn first_use(&self, key: &str, until: i64, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.retain(|_, exp| *exp > now);
        }
        match seen.get(key) {
            Some(exp) if *exp > now => false,
            _ => {
                seen.insert(key.to_owned(), until);
                true
            }
        }
    }
}
