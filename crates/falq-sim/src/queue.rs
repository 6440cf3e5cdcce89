//! The jobs and their scheduler: two FIFO queues (normal and low priority, as
//! `X-Fal-Queue-Priority` asks), a fixed number of workers and one timer heap, all behind
//! one mutex and driven by one task that sleeps until the next deadline.
//!
//! Invariant: `fifo` and `fifo_low` hold exactly the `IN_QUEUE` jobs, each in submit order
//! (ascending seq); a worker takes the front of `fifo` first, so a job's queue position is
//! its index in `fifo`, or `fifo`'s length plus its index in `fifo_low`. Invariant: `busy`
//! counts the `IN_PROGRESS` jobs. A job with a start deadline (`X-Fal-Request-Timeout`)
//! still queued when it passes completes as timed out, without running.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use falq_api::EndpointInfo;
use falq_api::types::{LogEntry, LogLevel, QueueStatusKind, ValidationErrorItem};
use serde_json::Number;
use tokio::sync::watch;

use crate::SimTiming;
use crate::catalog::OutputPlan;
use crate::counters::{Counters, JobCounters, JobTotals, PerRoute};
use crate::fault::FaultEngine;
use crate::util::{default_job_seed, hash_bytes, iso8601, mix64, request_id};
use crate::validate::detail_item;

/// What became of a completed job.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Success,
    Cancelled,
    /// Its result answers 422 with this item.
    Failed(ValidationErrorItem),
    /// It did not start before its start deadline: its result answers 504, the caller's
    /// own timeout.
    TimedOut,
}

/// What a submit asked for besides its input.
#[derive(Clone, Debug, Default)]
pub(crate) struct SubmitExtras {
    /// `X-Fal-Queue-Priority: low`: queued behind every normal job.
    pub(crate) low_priority: bool,
    /// `X-Fal-Request-Timeout`: the longest wait in the queue.
    pub(crate) start_timeout: Option<Duration>,
    /// `fal_webhook`: where the result is POSTed once the job completes.
    pub(crate) webhook: Option<String>,
}

/// Where a job stands.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    Queued { ready_at: Instant },
    Running,
    Completed { at: Instant, outcome: Outcome, inference_time: f64 },
}

impl Phase {
    pub(crate) fn kind(&self) -> QueueStatusKind {
        match self {
            Phase::Queued { .. } => QueueStatusKind::InQueue,
            Phase::Running => QueueStatusKind::InProgress,
            Phase::Completed { .. } => QueueStatusKind::Completed,
        }
    }
}

/// One submitted request.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) endpoint: &'static EndpointInfo,
    /// The simulator's base URL as this job's client reached it (media and direct URLs).
    pub(crate) base: Arc<str>,
    pub(crate) plan: Result<OutputPlan, Box<ValidationErrorItem>>,
    /// The seed the output reports: the input's, or one drawn from the simulator's seed.
    pub(crate) seed: Number,
    /// The seed of the pictures: the output seed mixed with the prompt.
    pub(crate) image_seed: u64,
    pub(crate) phase: Phase,
    pub(crate) started: Option<(Instant, SystemTime)>,
    pub(crate) steps_done: u32,
    pub(crate) cancel_requested: bool,
    /// Where its result is POSTed when it completes.
    pub(crate) webhook: Option<String>,
    /// Bumped on every change a status stream shows; dropped with the job.
    pub(crate) watch: watch::Sender<u64>,
    pub(crate) counters: JobCounters,
}

impl Job {
    /// The log lines emitted so far, `step k/N`, timestamped when they were due.
    pub(crate) fn logs(&self, timing: &SimTiming) -> Vec<LogEntry> {
        let Some((_, wall)) = self.started else {
            return Vec::new();
        };
        (1..=self.steps_done)
            .map(|k| LogEntry {
                message: format!("step {k}/{}", timing.log_lines),
                level: Some(LogLevel::Info),
                source: Some("user".to_string()),
                timestamp: Some(iso8601(wall.checked_add(step_offset(timing.run_time, k - 1, timing.log_lines)).unwrap_or(wall))),
            })
            .collect()
    }

    fn bump(&self) {
        self.watch.send_modify(|v| *v += 1);
    }
}

/// When log line `k` (0-based) of `n` is due after the start of a run of length `run`.
pub(crate) fn step_offset(run: Duration, k: u32, n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    run.checked_mul(k).map_or(run, |d| d / n)
}

/// The next event of a run that has emitted `steps_done` of `n` lines: (when, is it the finish).
pub(crate) fn next_tick(started: Instant, run: Duration, n: u32, steps_done: u32) -> (Instant, bool) {
    if steps_done < n { (later(started, step_offset(run, steps_done, n)), false) } else { (later(started, run), true) }
}

/// `now + d`, saturating about a century ahead.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now + d.min(Duration::from_secs(3_000_000_000))
}

/// What a cancel call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CancelResult {
    Requested,
    AlreadyCompleted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// The next step (or the finish) of a run.
    Tick,
    /// The end of a completed job's TTL.
    Expire,
    /// A queued job's start deadline.
    StartDeadline,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    order: u64,
    seq: u64,
    kind: TimerKind,
}

/// Everything behind the simulator's one mutex.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) timing: SimTiming,
    seed: u64,
    jobs: HashMap<u64, Job>,
    ids: HashMap<String, u64>,
    next_seq: u64,
    fifo: VecDeque<u64>,
    fifo_low: VecDeque<u64>,
    busy: usize,
    /// Completed jobs whose webhook is still to be POSTed.
    webhooks: Vec<u64>,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_order: u64,
    last_base: Arc<str>,
    pub(crate) faults: FaultEngine,
    pub(crate) routes: PerRoute,
    pub(crate) totals: JobTotals,
}

impl Core {
    pub(crate) fn new(timing: SimTiming, seed: u64, faults: FaultEngine) -> Core {
        Core {
            timing,
            seed,
            jobs: HashMap::new(),
            ids: HashMap::new(),
            next_seq: 0,
            fifo: VecDeque::new(),
            fifo_low: VecDeque::new(),
            busy: 0,
            webhooks: Vec::new(),
            timers: BinaryHeap::new(),
            timer_order: 0,
            last_base: Arc::from(""),
            faults,
            routes: PerRoute::default(),
            totals: JobTotals::default(),
        }
    }

    /// Shares one allocation among the jobs of the same base URL.
    pub(crate) fn intern_base(&mut self, base: &str) -> Arc<str> {
        if &*self.last_base != base {
            self.last_base = Arc::from(base);
        }
        self.last_base.clone()
    }

    /// Queues a new job; answers its seq, id and queue position.
    pub(crate) fn submit(
        &mut self,
        endpoint: &'static EndpointInfo,
        base: Arc<str>,
        plan: Result<OutputPlan, Box<ValidationErrorItem>>,
        extras: SubmitExtras,
        now: Instant,
    ) -> (u64, String, usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut id = request_id(self.seed, seq);
        while self.ids.contains_key(&id) {
            id = request_id(self.seed ^ mix64(seq), id.len() as u64 ^ seq);
        }
        let seed = match &plan {
            Ok(OutputPlan { seed: Some(n), .. }) => n.clone(),
            _ => Number::from(default_job_seed(self.seed, seq)),
        };
        let seed_bits = seed.as_u64().or_else(|| seed.as_i64().map(|i| i as u64)).unwrap_or(0);
        let prompt = plan.as_ref().ok().and_then(|p| p.prompt.as_deref()).unwrap_or("");
        let image_seed = mix64(seed_bits ^ hash_bytes(0, prompt.as_bytes()));
        let counters = JobCounters { endpoint: endpoint.id.to_string(), submits: 1, ..JobCounters::default() };
        let job = Job {
            id: id.clone(),
            endpoint,
            base,
            plan,
            seed,
            image_seed,
            phase: Phase::Queued { ready_at: later(now, self.timing.queue_delay) },
            started: None,
            steps_done: 0,
            cancel_requested: false,
            webhook: extras.webhook,
            watch: watch::channel(0).0,
            counters,
        };
        self.jobs.insert(seq, job);
        self.ids.insert(id.clone(), seq);
        if extras.low_priority {
            self.fifo_low.push_back(seq);
        } else {
            self.fifo.push_back(seq);
        }
        if let Some(t) = extras.start_timeout {
            self.push_timer(later(now, t), seq, TimerKind::StartDeadline);
        }
        self.totals.submitted += 1;
        self.totals.in_queue += 1;
        (seq, id, self.queue_position(seq).unwrap_or(0))
    }

    /// Removes a job from whichever queue holds it.
    fn dequeue(&mut self, seq: u64) {
        if let Ok(i) = self.fifo.binary_search(&seq) {
            self.fifo.remove(i);
        } else if let Ok(i) = self.fifo_low.binary_search(&seq) {
            self.fifo_low.remove(i);
        }
    }

    /// The completed jobs whose webhook is due, taken.
    pub(crate) fn take_webhooks(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.webhooks)
    }

    pub(crate) fn find(&self, request_id: &str) -> Option<u64> {
        self.ids.get(request_id).copied()
    }

    pub(crate) fn job(&self, seq: u64) -> Option<&Job> {
        self.jobs.get(&seq)
    }

    pub(crate) fn job_mut(&mut self, seq: u64) -> Option<&mut Job> {
        self.jobs.get_mut(&seq)
    }

    /// The 0-based place of a queued job: behind every normal job when its priority is low.
    pub(crate) fn queue_position(&self, seq: u64) -> Option<usize> {
        self.fifo.binary_search(&seq).ok().or_else(|| self.fifo_low.binary_search(&seq).ok().map(|i| self.fifo.len() + i))
    }

    /// Cancels a job that is not completed: a queued one completes at once, a running one
    /// at the scheduler's next turn (after the cancel call answered).
    pub(crate) fn cancel(&mut self, seq: u64, now: Instant) -> Option<CancelResult> {
        let job = self.jobs.get_mut(&seq)?;
        match job.phase {
            Phase::Completed { .. } => Some(CancelResult::AlreadyCompleted),
            Phase::Running => {
                // The runner gets the signal and stops at the scheduler's next turn.
                job.cancel_requested = true;
                self.push_timer(now, seq, TimerKind::Tick);
                Some(CancelResult::Requested)
            }
            Phase::Queued { .. } => {
                self.dequeue(seq);
                self.complete(seq, now, Outcome::Cancelled);
                Some(CancelResult::Requested)
            }
        }
    }

    /// Runs everything due at `now`; answers when to run again (`None`: only when woken).
    pub(crate) fn pump(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            match timer.kind {
                TimerKind::Tick => self.advance(timer.seq, now),
                TimerKind::Expire => self.expire(timer.seq),
                TimerKind::StartDeadline => {
                    if matches!(self.jobs.get(&timer.seq).map(|j| &j.phase), Some(Phase::Queued { .. })) {
                        self.dequeue(timer.seq);
                        self.complete(timer.seq, now, Outcome::TimedOut);
                    }
                }
            }
        }
        let mut next_start = None;
        while self.busy < self.timing.workers {
            let low = self.fifo.is_empty();
            let Some(&seq) = (if low { self.fifo_low.front() } else { self.fifo.front() }) else { break };
            let queue = if low { &mut self.fifo_low } else { &mut self.fifo };
            match self.jobs.get(&seq).map(|j| &j.phase) {
                Some(Phase::Queued { ready_at }) if *ready_at > now => {
                    next_start = Some(*ready_at);
                    break;
                }
                Some(Phase::Queued { .. }) => {
                    queue.pop_front();
                    self.start(seq, now);
                }
                _ => {
                    queue.pop_front();
                }
            }
        }
        let next_timer = self.timers.peek().map(|Reverse(t)| t.at);
        match (next_timer, next_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn start(&mut self, seq: u64, now: Instant) {
        let Some(job) = self.jobs.get_mut(&seq) else {
            return;
        };
        job.phase = Phase::Running;
        job.started = Some((now, SystemTime::now()));
        job.bump();
        self.busy += 1;
        self.totals.in_queue -= 1;
        self.totals.in_progress += 1;
        self.advance(seq, now);
    }

    /// Emits the steps of a run that are due, finishes it when due, else sets its next timer.
    fn advance(&mut self, seq: u64, now: Instant) {
        loop {
            let Some(job) = self.jobs.get_mut(&seq) else {
                return;
            };
            if job.phase != Phase::Running {
                return;
            }
            if job.cancel_requested {
                self.complete(seq, now, Outcome::Cancelled);
                return;
            }
            let Some((started, _)) = job.started else {
                return;
            };
            let (at, finish) = next_tick(started, self.timing.run_time, self.timing.log_lines, job.steps_done);
            if at > now {
                self.push_timer(at, seq, TimerKind::Tick);
                return;
            }
            if !finish {
                job.steps_done += 1;
                job.bump();
                continue;
            }
            let planned = job.plan.as_ref().err().map(|item| (**item).clone());
            let injected = self.faults.on_job_completed();
            let outcome = match planned {
                Some(item) => Outcome::Failed(item),
                None if injected => {
                    Outcome::Failed(detail_item(&["body"], "Simulated failure of the run (fault injection)", "value_error"))
                }
                None => Outcome::Success,
            };
            self.complete(seq, now, outcome);
            return;
        }
    }

    fn complete(&mut self, seq: u64, now: Instant, outcome: Outcome) {
        let Some(job) = self.jobs.get_mut(&seq) else {
            return;
        };
        match job.phase {
            Phase::Completed { .. } => return,
            Phase::Running => {
                self.busy -= 1;
                self.totals.in_progress -= 1;
            }
            Phase::Queued { .. } => self.totals.in_queue -= 1,
        }
        let inference_time = job.started.map_or(0.0, |(at, _)| now.saturating_duration_since(at).as_secs_f64());
        self.totals.completed += 1;
        match outcome {
            Outcome::Success => self.totals.succeeded += 1,
            Outcome::Cancelled => self.totals.cancelled += 1,
            Outcome::Failed(_) | Outcome::TimedOut => self.totals.failed += 1,
        }
        if job.webhook.is_some() {
            self.webhooks.push(seq);
        }
        job.phase = Phase::Completed { at: now, outcome, inference_time };
        job.counters.completed_unix_us =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_micros() as u64);
        job.bump();
        let expire_at = later(now, self.timing.result_ttl);
        self.push_timer(expire_at, seq, TimerKind::Expire);
    }

    fn expire(&mut self, seq: u64) {
        if let Some(job) = self.jobs.remove(&seq) {
            self.ids.remove(&job.id);
            self.totals.expired += 1;
        }
    }

    fn push_timer(&mut self, at: Instant, seq: u64, kind: TimerKind) {
        self.timer_order += 1;
        self.timers.push(Reverse(Timer { at, order: self.timer_order, seq, kind }));
    }

    /// A snapshot of every counter.
    pub(crate) fn counters(&self) -> Counters {
        let per_job = self
            .jobs
            .values()
            .map(|job| {
                let mut c = job.counters.clone();
                c.status = job.phase.kind().to_string();
                (job.id.clone(), c)
            })
            .collect();
        Counters { routes: self.routes.clone(), jobs: self.totals.clone(), per_job, connections: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultPlan;

    fn core(queue_ms: u64, run_ms: u64, workers: usize, ttl_ms: u64) -> Core {
        let timing = SimTiming {
            queue_delay: Duration::from_millis(queue_ms),
            run_time: Duration::from_millis(run_ms),
            workers,
            result_ttl: Duration::from_millis(ttl_ms),
            log_lines: 4,
            keep_alive: Duration::from_secs(15),
        };
        Core::new(timing, 1, FaultEngine::new(FaultPlan::none(), 1))
    }

    fn submit(core: &mut Core, now: Instant) -> u64 {
        submit_with(core, now, SubmitExtras::default())
    }

    fn submit_with(core: &mut Core, now: Instant, extras: SubmitExtras) -> u64 {
        let endpoint = falq_api::ENDPOINTS[0];
        let plan = Err(Box::new(detail_item(&["body"], "no plan in unit tests", "value_error")));
        core.submit(endpoint, Arc::from("http://x"), plan, extras, now).0
    }

    #[test]
    fn low_priority_jobs_wait_behind_every_normal_one() {
        let t0 = Instant::now();
        let mut c = core(0, 100, 1, 60_000);
        let low = SubmitExtras { low_priority: true, ..SubmitExtras::default() };
        let a = submit(&mut c, t0);
        let b = submit_with(&mut c, t0, low.clone());
        let d = submit(&mut c, t0);
        let e = submit_with(&mut c, t0, low);
        assert_eq!([a, b, d, e].map(|s| c.queue_position(s)), [Some(0), Some(2), Some(1), Some(3)]);
        c.pump(t0);
        assert_eq!(kinds(&c, &[a, b, d, e]), [P, Q, Q, Q]);
        assert_eq!([b, d, e].map(|s| c.queue_position(s)), [Some(1), Some(0), Some(2)]);
        c.pump(t0 + Duration::from_millis(100));
        assert_eq!(kinds(&c, &[a, b, d, e]), [C, Q, P, Q], "the later normal job runs before the earlier low one");
        c.pump(t0 + Duration::from_millis(200));
        assert_eq!(kinds(&c, &[b, d, e]), [P, C, Q]);
        assert_eq!(c.queue_position(e), Some(0));
        // Cancelling a low job takes it out of its queue.
        assert_eq!(c.cancel(e, t0 + Duration::from_millis(210)), Some(CancelResult::Requested));
        assert_eq!(c.queue_position(e), None);
    }

    #[test]
    fn a_job_past_its_start_deadline_completes_without_running_and_its_webhook_is_due() {
        let t0 = Instant::now();
        let mut c = core(0, 1000, 1, 60_000);
        let a = submit(&mut c, t0);
        let extras = SubmitExtras {
            start_timeout: Some(Duration::from_millis(300)),
            webhook: Some("http://127.0.0.1:9/h".into()),
            ..SubmitExtras::default()
        };
        let b = submit_with(&mut c, t0, extras.clone());
        let d = submit_with(&mut c, t0, SubmitExtras { start_timeout: Some(Duration::from_secs(5)), ..SubmitExtras::default() });
        c.pump(t0);
        c.pump(t0 + Duration::from_millis(299));
        assert_eq!(kinds(&c, &[a, b, d]), [P, Q, Q]);
        c.pump(t0 + Duration::from_millis(300));
        assert_eq!(kinds(&c, &[a, b, d]), [P, C, Q]);
        assert!(matches!(c.job(b).map(|j| &j.phase), Some(Phase::Completed { outcome: Outcome::TimedOut, .. })));
        assert_eq!(c.queue_position(d), Some(0), "the timed-out job left the queue");
        assert_eq!(c.take_webhooks(), vec![b]);
        assert!(c.take_webhooks().is_empty(), "taken once");
        c.pump(t0 + Duration::from_millis(1000));
        assert_eq!(kinds(&c, &[a, d]), [C, P], "a job that started in time runs to the end");
    }

    fn kinds(core: &Core, seqs: &[u64]) -> Vec<Option<QueueStatusKind>> {
        seqs.iter().map(|&s| core.job(s).map(|j| j.phase.kind())).collect()
    }

    const Q: Option<QueueStatusKind> = Some(QueueStatusKind::InQueue);
    const P: Option<QueueStatusKind> = Some(QueueStatusKind::InProgress);
    const C: Option<QueueStatusKind> = Some(QueueStatusKind::Completed);

    #[test]
    fn ticks_table() {
        let t0 = Instant::now();
        let run = Duration::from_millis(800);
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(next_tick(t0, run, 4, 0), (ms(0), false));
        assert_eq!(next_tick(t0, run, 4, 1), (ms(200), false));
        assert_eq!(next_tick(t0, run, 4, 3), (ms(600), false));
        assert_eq!(next_tick(t0, run, 4, 4), (ms(800), true));
        assert_eq!(next_tick(t0, run, 0, 0), (ms(800), true));
        assert_eq!(step_offset(Duration::MAX, 3, 4), Duration::MAX);
    }

    #[test]
    fn jobs_queue_run_complete_and_expire_on_the_clock() {
        let mut core = core(100, 400, 1, 1000);
        let t0 = Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        let (a, b) = (submit(&mut core, t0), submit(&mut core, t0));
        assert_eq!((core.queue_position(a), core.queue_position(b)), (Some(0), Some(1)));
        assert_eq!(core.pump(t0), Some(ms(100)));
        assert_eq!(kinds(&core, &[a, b]), vec![Q, Q]);
        assert_eq!(core.pump(ms(100)), Some(ms(200)));
        assert_eq!(kinds(&core, &[a, b]), vec![P, Q]);
        assert_eq!(core.job(a).unwrap().steps_done, 1);
        assert_eq!(core.queue_position(b), Some(0));
        assert_eq!(core.pump(ms(450)), Some(ms(500)));
        assert_eq!(core.job(a).unwrap().steps_done, 4);
        assert_eq!(core.job(a).unwrap().logs(&core.timing).last().unwrap().message, "step 4/4");
        core.pump(ms(500));
        assert_eq!(kinds(&core, &[a, b]), vec![C, P]);
        assert_eq!(core.totals.failed, 1);
        core.pump(ms(900));
        assert_eq!(kinds(&core, &[a, b]), vec![C, C]);
        core.pump(ms(1500));
        assert_eq!(kinds(&core, &[a, b]), vec![None, C]);
        assert_eq!(core.find(&request_id(1, a)), None);
        core.pump(ms(1900));
        assert_eq!(kinds(&core, &[a, b]), vec![None, None]);
        assert_eq!(core.totals.expired, 2);
        assert!(core.jobs.is_empty() && core.ids.is_empty() && core.timers.is_empty());
    }

    #[test]
    fn cancel_table() {
        let mut core = core(0, 400, 1, 1000);
        let t0 = Instant::now();
        let (a, b, c) = (submit(&mut core, t0), submit(&mut core, t0), submit(&mut core, t0));
        core.pump(t0);
        assert_eq!(kinds(&core, &[a, b, c]), vec![P, Q, Q]);
        assert_eq!(core.cancel(b, t0), Some(CancelResult::Requested));
        assert_eq!(kinds(&core, &[a, b, c]), vec![P, C, Q]);
        assert_eq!(core.queue_position(c), Some(0));
        assert_eq!(core.cancel(a, t0), Some(CancelResult::Requested));
        assert_eq!(kinds(&core, &[a]), vec![P]);
        core.pump(t0);
        assert_eq!(kinds(&core, &[a, c]), vec![C, P]);
        assert!(matches!(core.job(a).unwrap().phase, Phase::Completed { outcome: Outcome::Cancelled, .. }));
        assert_eq!(core.cancel(a, t0), Some(CancelResult::AlreadyCompleted));
        assert_eq!(core.cancel(999, t0), None);
        assert_eq!((core.totals.cancelled, core.totals.in_progress, core.totals.in_queue), (2, 1, 0));
    }

    #[test]
    fn workers_bound_the_jobs_in_progress() {
        let mut core = core(0, 1000, 3, 1000);
        let t0 = Instant::now();
        let seqs: Vec<u64> = (0..10).map(|_| submit(&mut core, t0)).collect();
        core.pump(t0);
        assert_eq!(core.totals.in_progress, 3);
        assert_eq!(core.queue_position(seqs[9]), Some(6));
        core.pump(t0 + Duration::from_millis(1000));
        assert_eq!((core.totals.completed, core.totals.in_progress), (3, 3));
    }
}
