//! What a client learns while it waits, shared by all its jobs: each endpoint's service
//! times, which polling jobs to wake when a sibling completes, whether the relay offers
//! status streams, and how many streams may be open.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use crate::poll::{Estimate, ServiceStats};

/// The knowledge of one client (one relay).
#[derive(Debug)]
pub(crate) struct Knowledge {
    endpoints: Mutex<HashMap<String, EndpointKnowledge>>,
    no_stream: AtomicBool,
    /// Status streams that may be open at once.
    pub(crate) streams: Semaphore,
    next_waiter: AtomicU64,
}

#[derive(Debug, Default)]
struct EndpointKnowledge {
    stats: ServiceStats,
    /// Polling jobs asleep, by when they were submitted.
    waiters: BTreeMap<(Instant, u64), Arc<Notify>>,
}

/// A polling job's place among the sleepers of its endpoint; leaves it when dropped.
pub(crate) struct Waiter<'a> {
    knowledge: &'a Knowledge,
    endpoint: String,
    key: (Instant, u64),
    notify: Arc<Notify>,
}

impl Waiter<'_> {
    /// Resolves when a sibling submitted no earlier than this job completes.
    pub(crate) async fn woken(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Ok(mut all) = self.knowledge.endpoints.lock()
            && let Some(e) = all.get_mut(&self.endpoint)
        {
            e.waiters.remove(&self.key);
        }
    }
}

impl Knowledge {
    pub(crate) fn new(max_streams: usize) -> Self {
        Self {
            endpoints: Mutex::new(HashMap::new()),
            no_stream: AtomicBool::new(false),
            streams: Semaphore::new(max_streams.min(Semaphore::MAX_PERMITS)),
            next_waiter: AtomicU64::new(0),
        }
    }

    /// What is known of an endpoint's service time.
    pub(crate) fn estimate(&self, endpoint: &str) -> Option<Estimate> {
        self.endpoints.lock().ok()?.get(endpoint)?.stats.estimate()
    }

    /// Records a completion seen between `low` and `high` after submit.
    pub(crate) fn record(&self, endpoint: &str, low: Duration, high: Duration) {
        if let Ok(mut all) = self.endpoints.lock() {
            all.entry(endpoint.to_string()).or_default().stats.record(low, high);
        }
    }

    /// A job of `endpoint` submitted at `submitted` completed (seen between `low` and
    /// `high` after its submit): its time is recorded, and every polling sibling
    /// submitted no later (give or take the estimate's spread) is woken to look now.
    pub(crate) fn completed(&self, endpoint: &str, submitted: Instant, low: Duration, high: Duration) {
        let Ok(mut all) = self.endpoints.lock() else { return };
        let e = all.entry(endpoint.to_string()).or_default();
        e.stats.record(low, high);
        let tolerance = e
            .stats
            .estimate()
            .map_or(Duration::from_millis(10), |est| est.spread.clamp(Duration::from_millis(10), Duration::from_millis(100)));
        let bound = (submitted + tolerance, u64::MAX);
        let later = e.waiters.split_off(&bound);
        let woken = std::mem::replace(&mut e.waiters, later);
        drop(all);
        for n in woken.into_values() {
            n.notify_one();
        }
    }

    /// Joins the sleepers of `endpoint` for a job submitted at `submitted`.
    pub(crate) fn sleep_among(&self, endpoint: &str, submitted: Instant) -> Waiter<'_> {
        let key = (submitted, self.next_waiter.fetch_add(1, Ordering::Relaxed));
        let notify = Arc::new(Notify::new());
        if let Ok(mut all) = self.endpoints.lock() {
            all.entry(endpoint.to_string()).or_default().waiters.insert(key, notify.clone());
        }
        Waiter { knowledge: self, endpoint: endpoint.to_string(), key, notify }
    }

    /// Whether the relay showed it has no status stream.
    pub(crate) fn streams_unsupported(&self) -> bool {
        self.no_stream.load(Ordering::Relaxed)
    }

    /// Remembers that the relay has no status stream: every later wait polls.
    pub(crate) fn no_streams_here(&self) {
        self.no_stream.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_completion_wakes_the_siblings_submitted_before_it_only() {
        let k = Knowledge::new(4);
        let t0 = Instant::now();
        let early = k.sleep_among("e", t0);
        let late = k.sleep_among("e", t0 + Duration::from_secs(5));
        let other = k.sleep_among("other", t0);
        k.completed("e", t0 + Duration::from_millis(1), Duration::from_millis(900), Duration::from_millis(1000));
        tokio::time::timeout(Duration::from_millis(100), early.woken()).await.expect("the earlier sibling is woken");
        assert!(tokio::time::timeout(Duration::from_millis(50), late.woken()).await.is_err(), "a later one sleeps on");
        assert!(tokio::time::timeout(Duration::from_millis(50), other.woken()).await.is_err(), "another endpoint's sleeps on");
        assert!(k.estimate("e").is_some());
        drop(late);
        assert!(k.endpoints.lock().unwrap()["e"].waiters.is_empty(), "a dropped waiter leaves");
    }
}
