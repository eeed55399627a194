//! Seen `jti`s of client assertions and DPoP proofs, each kept for as long as the JWT that
//! carried it would still be accepted, so a replay inside that window is refused.
//!
//! Memory is bounded. An entry is a 16-byte digest of (owner, `jti`) with its expiry and
//! owner tag — 32 bytes (33 with the hash table's control byte) whatever the `jti`'s length. A cache holds at most
//! [`ReplayLimits::capacity`] live entries, and at most [`ReplayLimits::per_owner`] for one
//! owner (a client id). Expired entries are dropped in batches (amortised O(1) per use, and
//! never a scan when nothing can have expired).
//!
//! Full means *refuse*, not *forget*: dropping a live `jti` early would make its JWT
//! replayable, so a new `jti` that does not fit is refused ([`FirstUse::Full`],
//! [`FirstUse::OwnerFull`]) until entries expire. The per-owner share keeps one client that
//! floods the token endpoint from locking the others out.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Size bounds of a [`ReplayCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Live entries in all.
    pub capacity: usize,
    /// Live entries of one owner; `None`: no per-owner share.
    pub per_owner: Option<usize>,
}

impl ReplayLimits {
    /// DPoP proofs (token endpoint and gateways): a proof is remembered for its maximum age
    /// (about 5 min), which at this bound allows ≈ 1,400 fresh proofs per second per node
    /// sustained. A table slot is 33 bytes, so ≈ 35 MiB at worst. Proofs carry their own
    /// key, so there is no owner to share by.
    pub const DPOP: ReplayLimits = ReplayLimits {
        capacity: 450_000,
        per_owner: None,
    };

    /// Client assertions at the token endpoint: remembered up to an hour (their `exp` plus the
    /// leeway). 200,000 in all (≈ 17 MiB at worst), 10,000 per client id — far above a
    /// client that reuses its tokens (one assertion per token, tokens live minutes), low
    /// enough that 20 clients are needed to fill the cache.
    pub const CLIENT_ASSERTIONS: ReplayLimits = ReplayLimits {
        capacity: 200_000,
        per_owner: Some(10_000),
    };
}

/// The answer of [`ReplayCache::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstUse {
    /// Not seen before (or seen, but long expired): now remembered.
    First,
    /// Seen before and still remembered: a replay.
    Replayed,
    /// Not seen, but the cache is full of live entries: refused, not remembered.
    Full,
    /// Not seen, but this owner already holds its share of live entries: refused.
    OwnerFull,
}

/// Below this many entries no batch of expired ones is dropped.
const MIN_PRUNE_LEN: usize = 1024;

pub struct ReplayCache {
    limits: ReplayLimits,
    inner: Mutex<Inner>,
}

struct Inner {
    seen: HashMap<[u8; 16], Entry>,
    /// Live entries per owner tag (only with a per-owner share).
    owners: HashMap<u64, usize>,
    /// No entry expires before this (unix seconds); `i64::MAX` when there is none.
    earliest: i64,
    /// Drop expired entries once `seen` is this long (twice what survived the last pass).
    prune_at: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Remembered while `until > now`.
    until: i64,
    /// Owner tag; 0 without a per-owner share.
    owner: u64,
}

impl Default for ReplayCache {
    /// A cache with [`ReplayLimits::DPOP`].
    fn default() -> Self {
        Self::new(ReplayLimits::DPOP)
    }
}

impl ReplayCache {
    pub fn new(limits: ReplayLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner {
                seen: HashMap::new(),
                owners: HashMap::new(),
                earliest: i64::MAX,
                prune_at: MIN_PRUNE_LEN,
            }),
        }
    }

    /// Records `key` as used until `until` (exclusive, unix seconds); false if it was
    /// already used, or if it cannot be remembered (full: refused rather than forgotten).
    pub fn first_use(&self, key: &str, until: i64, now: i64) -> bool {
        self.check("", key, until, now) == FirstUse::First
    }

    /// Records `owner`'s `jti` as used until `until` (exclusive, unix seconds): the first
    /// second at which the JWT carrying it is refused anyway. A `jti` is only ever compared
    /// within its owner's namespace.
    pub fn check(&self, owner: &str, jti: &str, until: i64, now: i64) -> FirstUse {
        let key = entry_key(owner, jti);
        let owner = match self.limits.per_owner {
            Some(_) => owner_tag(owner),
            None => 0,
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.seen.len() >= inner.prune_at.min(self.limits.capacity) {
            inner.prune(now);
        }
        match inner.seen.get(&key) {
            Some(e) if e.until > now => return FirstUse::Replayed,
            Some(_) => inner.remove(&key),
            None => {}
        }
        if until <= now {
            // Already past its window: nothing to remember, and nothing that could replay.
            return FirstUse::First;
        }
        let share = self.limits.per_owner;
        let owner_full = |inner: &Inner| {
            share.is_some_and(|s| inner.owners.get(&owner).copied().unwrap_or(0) >= s)
        };
        if inner.seen.len() >= self.limits.capacity || owner_full(&inner) {
            // Make room from whatever has expired before refusing (at most one pass per
            // second of `now`: after a pass nothing remembered expires before `now + 1`).
            inner.prune(now);
        }
        if inner.seen.len() >= self.limits.capacity {
            return FirstUse::Full;
        }
        if owner_full(&inner) {
            return FirstUse::OwnerFull;
        }
        if share.is_some() {
            *inner.owners.entry(owner).or_insert(0) += 1;
        }
        inner.seen.insert(key, Entry { until, owner });
        inner.earliest = inner.earliest.min(until);
        FirstUse::First
    }

    /// Seconds until the earliest remembered entry expires (at least 1): a `Retry-After`
    /// for a refusal because the cache was full.
    pub fn retry_after(&self, now: i64) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        u64::try_from(inner.earliest.saturating_sub(now))
            .unwrap_or(1)
            .clamp(1, 3600)
    }

    /// Live and not yet dropped entries (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Drops every expired entry — unless none can have expired yet.
    fn prune(&mut self, now: i64) {
        if now < self.earliest {
            return;
        }
        let mut earliest = i64::MAX;
        let owners = &mut self.owners;
        self.seen.retain(|_, e| {
            if e.until > now {
                earliest = earliest.min(e.until);
                true
            } else {
                release(owners, e.owner);
                false
            }
        });
        self.earliest = earliest;
        self.prune_at = self.seen.len().saturating_mul(2).max(MIN_PRUNE_LEN);
    }

    fn remove(&mut self, key: &[u8; 16]) {
        if let Some(e) = self.seen.remove(key) {
            release(&mut self.owners, e.owner);
        }
    }
}

fn release(owners: &mut HashMap<u64, usize>, owner: u64) {
    if let Some(held) = owners.get_mut(&owner) {
        *held = held.saturating_sub(1);
        if *held == 0 {
            owners.remove(&owner);
        }
    }
}

/// SHA-256 of the length-prefixed owner and the `jti`, truncated to 128 bits.
fn entry_key(owner: &str, jti: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update((owner.len() as u64).to_be_bytes())
        .chain_update(owner.as_bytes())
        .chain_update(jti.as_bytes())
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// A 64-bit tag of the owner (never 0, which means "no owner").
fn owner_tag(owner: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"charter-replay-owner\0")
        .chain_update(owner.as_bytes())
        .finalize();
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(tag).max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn small(capacity: usize, per_owner: Option<usize>) -> ReplayCache {
        ReplayCache::new(ReplayLimits {
            capacity,
            per_owner,
        })
    }

    #[test]
    fn remembered_until_the_end_of_its_window_exclusive() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("dpop:a", NOW + 10, NOW));
        assert!(!cache.first_use("dpop:a", NOW + 10, NOW));
        assert!(!cache.first_use("dpop:a", NOW + 10, NOW + 9));
        // At `until` the JWT is refused anyway; the key may be used again.
        assert!(cache.first_use("dpop:a", NOW + 20, NOW + 10));
        assert!(!cache.first_use("dpop:a", NOW + 20, NOW + 11));
    }

    #[test]
    fn jtis_are_namespaced_by_owner() {
        let cache = ReplayCache::new(ReplayLimits::CLIENT_ASSERTIONS);
        assert_eq!(cache.check("cli_a", "j1", NOW + 60, NOW), FirstUse::First);
        assert_eq!(cache.check("cli_b", "j1", NOW + 60, NOW), FirstUse::First);
        assert_eq!(
            cache.check("cli_a", "j1", NOW + 60, NOW),
            FirstUse::Replayed
        );
        // Length-prefixed: ("ab", "c") and ("a", "bc") are different entries.
        assert_eq!(cache.check("ab", "c", NOW + 60, NOW), FirstUse::First);
        assert_eq!(cache.check("a", "bc", NOW + 60, NOW), FirstUse::First);
    }

    #[test]
    fn a_full_cache_refuses_instead_of_forgetting() {
        let cache = small(3, None);
        for j in ["a", "b", "c"] {
            assert!(cache.first_use(j, NOW + 100, NOW));
        }
        assert_eq!(cache.check("", "d", NOW + 100, NOW), FirstUse::Full);
        // Nothing was evicted: every remembered jti is still a replay.
        for j in ["a", "b", "c"] {
            assert_eq!(cache.check("", j, NOW + 100, NOW + 50), FirstUse::Replayed);
        }
        assert_eq!(cache.retry_after(NOW + 50), 50);
        // Once they expire there is room again.
        assert_eq!(cache.check("", "d", NOW + 200, NOW + 100), FirstUse::First);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn one_owner_cannot_take_everything() {
        let cache = small(10, Some(2));
        assert_eq!(cache.check("greedy", "1", NOW + 100, NOW), FirstUse::First);
        assert_eq!(cache.check("greedy", "2", NOW + 100, NOW), FirstUse::First);
        assert_eq!(
            cache.check("greedy", "3", NOW + 100, NOW),
            FirstUse::OwnerFull
        );
        assert_eq!(
            cache.check("greedy", "1", NOW + 100, NOW),
            FirstUse::Replayed
        );
        assert_eq!(cache.check("polite", "1", NOW + 100, NOW), FirstUse::First);
        // Shares come back as entries expire (through a prune or a reused key).
        assert_eq!(
            cache.check("greedy", "1", NOW + 300, NOW + 100),
            FirstUse::First
        );
        assert_eq!(
            cache.check("greedy", "3", NOW + 300, NOW + 100),
            FirstUse::First
        );
    }

    #[test]
    fn expired_entries_are_dropped_in_batches() {
        let cache = ReplayCache::default();
        for i in 0..5_000 {
            assert!(cache.first_use(&format!("old-{i}"), NOW + 10, NOW));
        }
        assert!(cache.len() >= 5_000);
        // Later uses drop the expired ones; the live view stays small.
        for i in 0..5_000 {
            assert!(cache.first_use(&format!("new-{i}"), NOW + 1_000, NOW + 100));
        }
        assert!(cache.len() < 8_000, "{}", cache.len());
        // A never-expiring flood is bounded by the capacity, not by memory.
        let bounded = small(100, None);
        let refused = (0..1_000)
            .filter(|i| !bounded.first_use(&i.to_string(), NOW + 10, NOW))
            .count();
        assert_eq!((bounded.len(), refused), (100, 900));
    }

    #[test]
    fn an_already_expired_window_is_not_stored() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("x", NOW, NOW));
        assert!(cache.is_empty());
    }
}
