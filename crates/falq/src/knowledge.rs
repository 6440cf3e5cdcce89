//! What a client learns while it waits, shared by all its jobs: each endpoint's service
//! times, which polling jobs to wake when a sibling completes, whether the relay offers
//! status streams.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::poll::{Estimate, ServiceStats};

/// The knowledge of one client (one relay).
#[derive(Debug)]
pub(crate) struct Knowledge {
    endpoints: Mutex<HashMap<String, EndpointKnowledge>>,
    /// Whether the relay streams: unknown until one job has tried.
    stream_support: tokio::sync::watch::Sender<Support>,
    /// A job is finding out whether the relay streams.
    probing: AtomicBool,

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
    pub(crate) fn new() -> Self {
        Self {
            endpoints: Mutex::new(HashMap::new()),
            stream_support: tokio::sync::watch::Sender::new(Support::Unknown),
            probing: AtomicBool::new(false),
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

    /// Whether this job may open a status stream: yes once the relay has shown it
    /// streams; no once it has shown it does not; while unknown, one job finds out and
    /// the others wait for its verdict (up to `patience`, then poll meanwhile), so a
    /// thousand jobs do not all ask a relay without streams.
    pub(crate) async fn may_stream(&self, patience: Duration) -> Probe {
        let mut verdicts = self.stream_support.subscribe();
        let deadline: tokio::time::Instant = crate::poll::instant_after(Instant::now(), patience).into();
        loop {
            match *verdicts.borrow_and_update() {
                Support::Yes => return Probe::Stream,
                Support::No => return Probe::Poll,
                Support::Unknown => {}
            }
            if self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Probe::FindOut;
            }
            match tokio::time::timeout_at(deadline, verdicts.changed()).await {
                Ok(Ok(())) => {}
                _ => return Probe::Poll,
            }
        }
    }

    /// What the job that found out saw: `Some(true)` the relay streams, `Some(false)` it has
    /// no stream, `None` it could not tell (a network error): another job may try.
    pub(crate) fn stream_verdict(&self, verdict: Option<bool>) {
        if let Some(yes) = verdict {
            self.stream_support.send_replace(if yes { Support::Yes } else { Support::No });
        }
        self.probing.store(false, Ordering::Release);
    }

    /// Whether the relay showed it has no status stream.
    pub(crate) fn streams_unsupported(&self) -> bool {
        *self.stream_support.borrow() == Support::No
    }
}

/// Whether a relay offers status streams, as far as a client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Support {
    Unknown,
    Yes,
    No,
}

/// What a job should do about streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Stream: the relay does.
    Stream,
    /// Try the stream, and report what the relay said ([`Knowledge::stream_verdict`]).
    FindOut,
    /// Poll (for now).
    Poll,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_job_finds_out_whether_the_relay_streams_and_the_others_wait_for_it() {
        let k = Arc::new(Knowledge::new());
        assert_eq!(k.may_stream(Duration::from_millis(10)).await, Probe::FindOut);
        assert_eq!(k.may_stream(Duration::from_millis(10)).await, Probe::Poll, "while one finds out, the others poll");
        let waiting = tokio::spawn({
            let k = k.clone();
            async move { k.may_stream(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        k.stream_verdict(Some(false));
        assert_eq!(waiting.await.unwrap(), Probe::Poll, "told at once");
        assert!(k.streams_unsupported());
        let k = Knowledge::new();
        assert_eq!(k.may_stream(Duration::ZERO).await, Probe::FindOut);
        k.stream_verdict(None);
        assert_eq!(k.may_stream(Duration::ZERO).await, Probe::FindOut, "a network error lets another job try");
        k.stream_verdict(Some(true));
        assert_eq!(k.may_stream(Duration::ZERO).await, Probe::Stream);
    }

    #[tokio::test]
    async fn a_completion_wakes_the_siblings_submitted_before_it_only() {
        let k = Knowledge::new();
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
