//! What a client learns while it waits, shared by all its jobs: each endpoint's service
//! times, which jobs wait on each endpoint (the oldest polls for the crowd while nothing
//! is known), which polling jobs to wake when a sibling completes or a service time
//! changes their plan, whether the relay offers status streams.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// When the grid the crowds poll on began.
    epoch: Instant,
}

/// The least gain in a crowd's done-by time worth waking its sleepers for.
pub(crate) const REPLAN_GAIN: Duration = Duration::from_millis(20);

/// How many moments of its cadence a crowd's polls are spread over.
pub(crate) const PHASES: usize = 8;

/// Where a job stands among its endpoint's waiting jobs: when it was submitted, and a
/// number that tells apart jobs submitted at the same instant.
type Place = (Instant, u64);

/// What is known of `endpoint`, entered when nothing is yet (its id is copied only then,
/// not for every call of a known endpoint). Always `Some`: the borrow checker does not let
/// one branch return a lookup's borrow while the other inserts, and the second lookup's
/// `Option` is passed on rather than unwrapped.
fn of<'a>(all: &'a mut HashMap<String, EndpointKnowledge>, endpoint: &str) -> Option<&'a mut EndpointKnowledge> {
    if !all.contains_key(endpoint) {
        all.insert(endpoint.to_string(), EndpointKnowledge::default());
    }
    all.get_mut(endpoint)
}

#[derive(Debug, Default)]
struct EndpointKnowledge {
    stats: ServiceStats,
    /// Jobs waiting for completion (from the start of their wait to its end).
    waiting: BTreeSet<Place>,
    /// Polling jobs asleep, and how each is told to wake.
    waiters: BTreeMap<Place, Arc<Wake>>,
}

/// How a sleeping job is woken, and why.
#[derive(Debug, Default)]
struct Wake {
    notify: Notify,
    /// A sibling submitted no earlier than this job completed (else: a service time that
    /// changes its plan is known, and the job should plan again).
    sibling_done: AtomicBool,
}

/// Why a sleeping job was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A sibling submitted no earlier completed: this job most likely has too.
    SiblingDone,
    /// The endpoint's service time became known, or the time a job like it is done by
    /// came well earlier: plan the next poll by it.
    Estimate,
}

/// A job's place among the waiting jobs of its endpoint, for the whole of its wait;
/// leaves it when dropped.
pub(crate) struct Waiting<'a> {
    knowledge: &'a Knowledge,
    endpoint: &'a str,
    place: Place,
}

impl Waiting<'_> {
    /// Whether an older sibling of this job waits too (it polls for the crowd while
    /// nothing is known of the endpoint).
    pub(crate) fn behind(&self) -> bool {
        let Ok(all) = self.knowledge.endpoints.lock() else { return false };
        all.get(self.endpoint).and_then(|e| e.waiting.first()).is_some_and(|first| *first < self.place)
    }

    /// How long after the client's grid began (its knowledge was made) this job was
    /// submitted.
    pub(crate) fn since_epoch(&self) -> Duration {
        self.place.0.saturating_duration_since(self.knowledge.epoch)
    }

    /// A poll state that has seen nothing yet, at this job's place on the client's grid.
    pub(crate) fn poll_state(&self) -> crate::poll::PollState {
        crate::poll::PollState { phase: self.phase(), since_epoch: self.since_epoch(), ..Default::default() }
    }

    /// Where in the crowd's cadence this job polls, one of [`PHASES`] steps in `[0, 1)`:
    /// the jobs of a client, in the order they began to wait, take the fractional parts of
    /// the multiples of the golden ratio, which spread evenly however many there are. A
    /// few steps, not one per job: each is a moment the client wakes (a crowd of 200 at
    /// 200 moments took twice the CPU of 8), and 8 looks per cadence see the first
    /// completion within an eighth of it.
    pub(crate) fn phase(&self) -> f64 {
        let spread = ((self.place.1 + 1) as f64 * 0.618_033_988_749_895).fract();
        (spread * PHASES as f64).floor() / PHASES as f64
    }

    /// Joins the sleepers of the endpoint until the returned guard is dropped.
    pub(crate) fn sleep(&self) -> Sleeper<'_> {
        let wake = Arc::new(Wake::default());
        // The endpoint's entry was made when the job began to wait.
        if let Ok(mut all) = self.knowledge.endpoints.lock()
            && let Some(e) = all.get_mut(self.endpoint)
        {
            e.waiters.insert(self.place, wake.clone());
        }
        Sleeper { waiting: self, wake }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut all) = self.knowledge.endpoints.lock()
            && let Some(e) = all.get_mut(self.endpoint)
        {
            e.waiting.remove(&self.place);
        }
    }
}

/// A polling job asleep among its endpoint's sleepers; leaves them when dropped.
pub(crate) struct Sleeper<'a> {
    waiting: &'a Waiting<'a>,
    wake: Arc<Wake>,
}

impl Sleeper<'_> {
    /// Resolves when a sibling submitted no earlier than this job completes, or when a
    /// service time that changes its plan is known; says which.
    pub(crate) async fn woken(&self) -> Woken {
        self.wake.notify.notified().await;
        if self.wake.sibling_done.load(Ordering::Acquire) { Woken::SiblingDone } else { Woken::Estimate }
    }
}

impl Drop for Sleeper<'_> {
    fn drop(&mut self) {
        let w = self.waiting;
        if let Ok(mut all) = w.knowledge.endpoints.lock()
            && let Some(e) = all.get_mut(w.endpoint)
        {
            e.waiters.remove(&w.place);
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
            epoch: Instant::now(),
        }
    }

    /// What is known of an endpoint's service time.
    pub(crate) fn estimate(&self, endpoint: &str) -> Option<Estimate> {
        self.endpoints.lock().ok()?.get(endpoint)?.stats.estimate()
    }

    /// Records a completion seen between `low` and `high` after submit.
    pub(crate) fn record(&self, endpoint: &str, low: Duration, high: Duration) {
        if let Ok(mut all) = self.endpoints.lock()
            && let Some(e) = of(&mut all, endpoint)
        {
            e.stats.record(low, high);
        }
    }

    /// A job of `endpoint` submitted at `submitted` completed (seen between `low` and
    /// `high` after its submit): its time is recorded, and every polling sibling
    /// submitted no later is woken to look now (a queue serves jobs in order). When it is
    /// the endpoint's first known service time, or it brings the time a job like it is
    /// done by ([`crate::poll::Estimate::done_by`]) earlier by more than 5 % (and
    /// [`REPLAN_GAIN`]), every other sleeper is woken to plan by it: a crowd aimed at a
    /// wide first sighting's end (or a journal's upper bound) is not left to wait for it.
    /// (A sibling submitted just after may have been taken just before: it is not woken
    /// to look, it aims at its own completion.)
    pub(crate) fn completed(&self, endpoint: &str, submitted: Instant, low: Duration, high: Duration) {
        let Ok(mut all) = self.endpoints.lock() else { return };
        let Some(e) = of(&mut all, endpoint) else { return };
        let before = e.stats.estimate();
        e.stats.record(low, high);
        let replan = match (before, e.stats.estimate()) {
            (None, _) => true,
            (Some(b), Some(a)) => a.done_by.saturating_add(REPLAN_GAIN.max(b.done_by / 20)) < b.done_by,
            (Some(_), None) => false,
        };
        let bound = (submitted, u64::MAX);
        let later = if replan { BTreeMap::new() } else { e.waiters.split_off(&bound) };
        let woken = std::mem::replace(&mut e.waiters, later);
        drop(all);
        for (place, wake) in woken {
            wake.sibling_done.store(place < bound, Ordering::Release);
            wake.notify.notify_one();
        }
    }

    /// Enters a job of `endpoint` submitted at `submitted` among its waiting jobs, for
    /// the whole of its wait.
    pub(crate) fn waiting<'a>(&'a self, endpoint: &'a str, submitted: Instant) -> Waiting<'a> {
        let place = (submitted, self.next_waiter.fetch_add(1, Ordering::Relaxed));
        if let Ok(mut all) = self.endpoints.lock()
            && let Some(e) = of(&mut all, endpoint)
        {
            e.waiting.insert(place);
        }
        Waiting { knowledge: self, endpoint, place }
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
        k.record("e", Duration::from_millis(900), Duration::from_millis(1000));
        let (early, late, other) = (k.waiting("e", t0), k.waiting("e", t0 + Duration::from_secs(5)), k.waiting("other", t0));
        let (early_sleeps, late_sleeps, other_sleeps) = (early.sleep(), late.sleep(), other.sleep());
        k.completed("e", t0 + Duration::from_millis(1), Duration::from_millis(900), Duration::from_millis(1000));
        let woken = tokio::time::timeout(Duration::from_millis(100), early_sleeps.woken()).await;
        assert_eq!(woken, Ok(Woken::SiblingDone), "the earlier sibling is woken");
        assert!(tokio::time::timeout(Duration::from_millis(50), late_sleeps.woken()).await.is_err(), "a later one sleeps on");
        assert!(tokio::time::timeout(Duration::from_millis(50), other_sleeps.woken()).await.is_err(), "another endpoint's sleeps on");
        drop((early_sleeps, late_sleeps, other_sleeps));
        assert!(k.endpoints.lock().unwrap()["e"].waiters.is_empty(), "a dropped sleeper leaves");
        drop((early, late, other));
        assert!(k.endpoints.lock().unwrap()["e"].waiting.is_empty(), "a job whose wait ended leaves");
    }

    #[test]
    fn a_crowd_s_phases_spread_over_a_few_steps_however_many_wait() {
        for n in [1usize, 2, 3, PHASES - 1, PHASES, 10, 200, 10_000] {
            let k = Knowledge::new();
            let t0 = Instant::now();
            let crowd: Vec<Waiting<'_>> = (0..n).map(|_| k.waiting("e", t0)).collect();
            let phases: Vec<f64> = crowd.iter().map(Waiting::phase).collect();
            assert!(phases.iter().all(|p| (0.0..1.0).contains(p)), "{phases:?}");
            let mut steps: Vec<u64> = phases.iter().map(|p| (p * PHASES as f64).round() as u64).collect();
            steps.sort();
            steps.dedup();
            assert_eq!(steps.len(), n.min(PHASES), "{n} jobs take as many steps as they can, at most {PHASES}: {phases:?}");
        }
    }

    #[tokio::test]
    async fn the_oldest_waits_in_front_and_the_first_service_time_wakes_every_sleeper() {
        let k = Knowledge::new();
        let t0 = Instant::now();
        let (old, young, other) =
            (k.waiting("e", t0), k.waiting("e", t0 + Duration::from_secs(1)), k.waiting("other", t0 + Duration::from_secs(2)));
        assert!(!old.behind() && young.behind(), "the oldest job of an endpoint polls for the crowd");
        assert!(!other.behind(), "another endpoint's jobs have their own crowd");
        let (young_sleeps, other_sleeps) = (young.sleep(), other.sleep());
        // The old job completes first: nothing was known, so the younger sibling plans again.
        k.completed("e", t0, Duration::from_millis(900), Duration::from_millis(1000));
        drop(old);
        let woken = tokio::time::timeout(Duration::from_millis(100), young_sleeps.woken()).await;
        assert_eq!(woken, Ok(Woken::Estimate), "told the first service time");
        assert!(!young.behind(), "once the older job's wait ends, the next one is in front");
        assert!(tokio::time::timeout(Duration::from_millis(50), other_sleeps.woken()).await.is_err(), "another endpoint's sleeps on");
        // Known from then on: a later completion wakes only the siblings submitted before it,
        drop(young_sleeps);
        let again = young.sleep();
        k.completed("e", t0, Duration::from_millis(900), Duration::from_millis(1000));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), again.woken()).await.is_err(),
            "an older job's completion wakes no younger one"
        );
        // unless it brings the time such a job is done by well earlier: all plan by it.
        k.completed("e", t0, Duration::from_millis(900), Duration::from_millis(920));
        assert_eq!(k.estimate("e").map(|e| e.done_by), Some(Duration::from_millis(920)), "the window all sightings share ends sooner");
        let woken = tokio::time::timeout(Duration::from_millis(100), again.woken()).await;
        assert_eq!(woken, Ok(Woken::Estimate), "told to plan again");
    }
}
