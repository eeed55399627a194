//! Keeping the live view current when other nodes write: the store's change feed
//! (PostgreSQL `LISTEN/NOTIFY`) applies each committed object as it lands, and a periodic
//! resynchronisation covers anything a dropped connection lost. A gateway whose view is
//! older than its bound refuses calls (`policy_stale`) instead of deciding on stale state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use charter_core::Clock;
use charter_store::Store;

use crate::live::Live;

const NEVER: u64 = u64::MAX;

/// How fresh the live view is.
pub struct FeedHealth {
    /// Only a node that shares its database with other writers depends on the feed.
    required: AtomicBool,
    started: Instant,
    last_ok_ms: AtomicU64,
    bound: Duration,
}

impl FeedHealth {
    pub fn new(bound: Duration) -> Self {
        Self {
            required: AtomicBool::new(false),
            started: Instant::now(),
            last_ok_ms: AtomicU64::new(NEVER),
            bound,
        }
    }

    /// Marks the view as depending on the feed (done by [`run`] for a shared database).
    pub fn require(&self) {
        self.required.store(true, Ordering::Relaxed);
    }

    fn ok(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ok_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether calls may be decided on the live view.
    pub fn fresh(&self) -> bool {
        if !self.required.load(Ordering::Relaxed) {
            return true;
        }
        let last = self.last_ok_ms.load(Ordering::Relaxed);
        if last == NEVER {
            return false;
        }
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(last) <= u64::try_from(self.bound.as_millis()).unwrap_or(u64::MAX)
    }

    /// Milliseconds since the view was last known current.
    pub fn age_ms(&self) -> u64 {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(self.last_ok_ms.load(Ordering::Relaxed))
    }
}

/// Follows the store's change feed until the process ends. Returns at once for an
/// embedded store (all writers are in this process and apply their own writes).
pub async fn run(
    store: Arc<dyn Store>,
    live: Arc<Live>,
    health: Arc<FeedHealth>,
    clock: Arc<dyn Clock>,
    resync_every: Duration,
) {
    loop {
        let mut feed = match store.change_feed().await {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(e) => {
                health.required.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "change feed unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        health.required.store(true, Ordering::Relaxed);
        if resync(store.as_ref(), &live, clock.as_ref()).await {
            health.ok();
        }
        let mut tick = tokio::time::interval(resync_every);
        tick.tick().await;
        loop {
            tokio::select! {
                changes = feed.next() => match changes {
                    Ok(items) => {
                        let mut all_ok = true;
                        for (kind, id) in items {
                            match store.get(kind, &id).await {
                                Ok(Some(doc)) => live.apply(&doc),
                                Ok(None) => {}
                                Err(e) => {
                                    all_ok = false;
                                    tracing::warn!(error = %e, "could not read a changed object");
                                }
                            }
                        }
                        if all_ok {
                            health.ok();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed lost; reconnecting");
                        break;
                    }
                },
                _ = tick.tick() => {
                    if resync(store.as_ref(), &live, clock.as_ref()).await {
                        health.ok();
                    }
                }
            }
        }
    }
}

async fn resync(store: &dyn Store, live: &Live, clock: &dyn Clock) -> bool {
    match live.reload(store).await {
        Ok(()) => {
            let now = clock.now().as_second();
            live.rebuild_keyset(Some(now));
            live.prune_revoked(now);
            metrics::counter!("charter_gateway_resyncs_total").increment(1);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "resynchronising the live view failed");
            false
        }
    }
}
