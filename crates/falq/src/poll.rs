//! When to poll next: a pure policy from what is known of a job and its endpoint. The
//! one loop that sleeps is `RequestHandle::poll` in `client.rs`.
//!
//! Without knowledge the oldest waiting job of an endpoint polls at a fixed interval
//! (500 ms, as fal's own JavaScript client does), so it is never later and never costs
//! more; its younger siblings (the crowd) poll at a slower cadence (2 s: first 2 s after
//! the submit, then each at one of a few phases of a grid common to the client, so that
//! together they look often) until one of the endpoint's jobs completes: that first
//! service time wakes every sleeping sibling to plan by it, and a sibling's completion
//! wakes the jobs submitted before it.
//! A younger job that completes before any older one is seen up to 2 s after, not 500 ms
//! (set `PollPolicy::crowd` to the interval, or use `PollPolicy::fixed`, to poll every job
//! alike). With the endpoint's service time known (jobs seen in this process, or the
//! journal), it polls sparsely before the expected completion, just after it, and densely
//! around it; the queue position's drain rate keeps a queued job from being polled for
//! nothing; a server's `Retry-After` is honoured.

use std::time::Duration;

/// A crowd's next poll may come this share of its cadence early (1/8): a poll whose
/// answer came late still takes the next point of the grid rather than skipping one.
const CROWD_SLACK: u32 = 8;

/// What is known of an endpoint's service time (submit to completion).
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The expected service time.
    pub service: Duration,
    /// How far a job's service time strays from it (a standard deviation, floored).
    pub spread: Duration,
    /// When a job like the ones seen is done by: the end of the window every recent
    /// sighting shares (when the jobs look alike), else `service + spread`. Where a job
    /// behind an older sibling aims: a crowd woken together would each pay a call for an
    /// aim too early, while the job in front aims at `service + spread` and its late steps
    /// find the completion tightly, for all.
    pub done_by: Duration,
}

/// Where a job stood at its last answer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Seen {
    /// Nothing asked yet.
    #[default]
    Nothing,
    /// Queued at this 0-based position.
    Queued(i64),
    /// Running.
    Running,
}

/// One job's polling so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollState {
    /// Time since the job was submitted (or its wait began).
    pub elapsed: Duration,
    /// Time of the last poll, since submit.
    pub last_poll: Option<Duration>,
    /// Polls made so far.
    pub polls: u32,
    /// What the last answer said.
    pub seen: Seen,
    /// Queue positions drained per second, as this job has seen them move.
    pub queue_rate: Option<f64>,
    /// The server's `Retry-After` on its last answer.
    pub retry_after: Option<Duration>,
    /// An older job of the same endpoint waits too: while nothing is known of the
    /// endpoint, that one polls for the crowd.
    pub behind: bool,
    /// Where in the crowd's cadence this job's polls fall (`0.0..1.0`), on a grid common
    /// to the client's jobs: a crowd spreads its polls over a few phases, so that one of
    /// them looks soon after any moment (and the first completion is seen soon after it
    /// happens), and the client wakes at those moments only, however the jobs' submits
    /// were spread.
    pub phase: f64,
    /// How long after the client's grid began this job was submitted.
    pub since_epoch: Duration,
}

/// The first time since submit, not before `not_before`, that falls on `phase` of a grid
/// of `period` begun `since_epoch` before the submit (`not_before` itself when no clock
/// can say it).
pub fn on_grid(not_before: Duration, since_epoch: Duration, period: Duration, phase: f64) -> Duration {
    let (p, offset) = (period.as_secs_f64(), since_epoch.as_secs_f64());
    let phase = if phase.is_finite() { phase.clamp(0.0, 1.0) } else { 0.0 };
    if p <= 0.0 || !p.is_finite() {
        return not_before;
    }
    let slots = ((not_before.as_secs_f64() + offset) / p - phase).ceil();
    let at = (slots + phase) * p - offset;
    Duration::try_from_secs_f64(at).map_or(not_before, |t| t.max(not_before))
}

impl PollState {
    /// Takes in one poll's answer about a job not completed, asked `asked` after its
    /// submit: `queued` is its queue position (`None`: running). `first` keeps the first
    /// position seen, from which the queue's drain rate is measured.
    pub fn saw(&mut self, queued: Option<i64>, asked: Duration, first: &mut Option<(Duration, i64)>) {
        self.polls += 1;
        match queued {
            Some(p) => {
                match first {
                    Some(f) => self.queue_rate = drain_rate(*f, (asked, p)).or(self.queue_rate),
                    None => *first = Some((asked, p)),
                }
                self.seen = Seen::Queued(p);
            }
            None => self.seen = Seen::Running,
        }
        self.last_poll = Some(asked);
    }
}

/// The knobs of the policy.
#[derive(Clone, Debug, PartialEq)]
pub struct PollPolicy {
    /// The interval when nothing is known (and the slowest cadence near or after the
    /// expected completion): 500 ms, fal-js's fixed interval.
    pub interval: Duration,
    /// The longest sleep between two polls, whatever is known.
    pub max: Duration,
    /// The least spread assumed around an estimate.
    pub min_spread: Duration,
    /// The interval of a job behind an older sibling while nothing is known of their
    /// endpoint (kept between `interval` and `max`).
    pub crowd: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            max: Duration::from_secs(2),
            min_spread: Duration::from_millis(10),
            crowd: Duration::from_secs(2),
        }
    }
}

impl PollPolicy {
    /// A fixed interval for every job (the policy with nothing known, no crowd, and no
    /// estimate ever used).
    pub fn fixed(interval: Duration) -> Self {
        Self { interval, max: interval, min_spread: Duration::from_millis(10), crowd: interval }
    }

    /// The time (since submit) of the next poll: never before now, never more than `max`
    /// (or the interval, if larger) from now, whatever the policy's knobs and the estimate
    /// (saturating arithmetic: a journal's times or a caller's knobs may be anything).
    pub fn next_poll(&self, estimate: Option<&Estimate>, st: &PollState) -> Duration {
        let base = self.interval.max(Duration::from_millis(1));
        let max = self.max.max(base);
        let t = st.elapsed;
        let after_last = |gap: Duration| st.last_poll.map_or(gap, |l| l.saturating_add(gap));
        let mut next = match (estimate, st.seen) {
            // Queued behind others: it cannot complete before it starts.
            (_, Seen::Queued(p)) if p > 0 => {
                let wait = st.queue_rate.filter(|r| *r > 0.0).map_or(base, |r| Duration::from_secs_f64((p as f64 / r * 0.8).min(60.0)));
                after_last(wait.clamp(base, max))
            }
            (None, _) if st.behind => {
                let crowd = self.crowd.clamp(base, max);
                // The first poll a cadence after the submit (as spread as the submits
                // were); the next ones a cadence apart (within the slack), each on the
                // job's phase of the client's grid.
                match st.last_poll {
                    None => crowd,
                    Some(l) => on_grid(l.saturating_add(crowd - crowd / CROWD_SLACK), st.since_epoch, crowd, st.phase),
                }
            }
            (None, _) => after_last(base),
            (Some(e), _) => {
                let s = e.spread.max(self.min_spread);
                let target = if st.behind { e.done_by } else { e.service.saturating_add(s) };
                // fal-js would poll ceil(service / 500 ms) times: keep two of as many for
                // the expected completion, and spend the rest (if any) before it, sparsely,
                // in case this job is quicker than usual.
                let budget = (e.service.as_secs_f64() / base.as_secs_f64()).ceil() as u32;
                // A job behind an older sibling spends none: the one in front does, and
                // a younger sibling's completion wakes it.
                let early_left = if st.behind { 0 } else { budget.saturating_sub(2).saturating_sub(st.polls) };
                match st.last_poll {
                    Some(l) if l >= target => {
                        // Late: widening steps (3s, 5s, ...) up to the base interval (a
                        // spread wider than it: the base interval).
                        let past = l.saturating_sub(e.service);
                        l.saturating_add(past.saturating_add(s.saturating_mul(2)).clamp(s.min(base), base))
                    }
                    last => {
                        let from = last.unwrap_or(Duration::ZERO);
                        let early = from.saturating_add((e.service / 6).clamp(base, max));
                        if early_left > 0 && early.saturating_add(s.saturating_mul(2)) < e.service { early } else { target }
                    }
                }
            }
        };
        if let Some(after) = st.retry_after {
            next = next.max(after_last(after));
        }
        next.max(t).min(t.saturating_add(max))
    }
}

/// An endpoint's service times as this client has seen them: each completion is
/// known to lie between the last poll that did not see it and the one that did.
#[derive(Clone, Debug, Default)]
pub struct ServiceStats {
    /// (midpoint, half-width) of recent completions, oldest first.
    samples: std::collections::VecDeque<(f64, f64)>,
    /// The estimate of these samples, worked out as each is recorded (it is asked for far
    /// more often: before every aimed poll, twice per completion).
    current: Option<Estimate>,
}

impl ServiceStats {
    /// How many completions are kept.
    pub const WINDOW: usize = 32;

    /// Records a completion seen between `low` and `high` (since submit).
    pub fn record(&mut self, low: Duration, high: Duration) {
        let (lo, hi) = (low.as_secs_f64(), high.as_secs_f64().max(low.as_secs_f64()));
        if self.samples.len() == Self::WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(((lo + hi) / 2.0, (hi - lo) / 2.0));
        self.current = self.worked_out();
    }

    /// The estimate: a mean of the midpoints weighted by how tightly each was seen, and
    /// a spread from their (weighted) scatter. A wide first sighting makes the first
    /// aimed poll early or late; the late steps of the policy then find the completion
    /// within a few tight polls, and that tight sighting outweighs the wide one.
    /// `done_by` is the end of the window all recent sightings share, when they share one
    /// (the jobs look alike: any of them is done by then), else `service + spread`; the
    /// service time is never after it (kept inside a shared window). `None` before any
    /// completion.
    pub fn estimate(&self) -> Option<Estimate> {
        self.current.clone()
    }

    /// [`ServiceStats::estimate`] worked out from the samples.
    fn worked_out(&self) -> Option<Estimate> {
        if self.samples.is_empty() {
            return None;
        }
        let weight = |half: f64| 1.0 / half.max(0.005);
        let total: f64 = self.samples.iter().map(|(_, h)| weight(*h)).sum();
        let mean = self.samples.iter().map(|(m, h)| m * weight(*h)).sum::<f64>() / total;
        let var = self.samples.iter().map(|(m, h)| weight(*h) * (m - mean).powi(2)).sum::<f64>() / total;
        let shared_from = self.samples.iter().map(|(m, h)| m - h).fold(f64::MIN, f64::max);
        let shared_to = self.samples.iter().map(|(m, h)| m + h).fold(f64::MAX, f64::min);
        // Saturating: times read from a journal are whatever it says.
        let secs = |v: f64| Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::MAX);
        let (service, spread) = (secs(mean), secs(var.sqrt()));
        if shared_from <= shared_to {
            // Every sighting holds the window they share, and so does the service time of
            // jobs that look alike: a mean of midpoints outside it (a tight sighting at its
            // start, others that end just after it) gives way to its nearest point. Never
            // after `done_by`, so a job aimed there is aimed at or after the service time
            // (and asks for its result, not its status).
            let (from, to) = (secs(shared_from), secs(shared_to));
            return Some(Estimate { service: service.clamp(from, to), spread, done_by: to });
        }
        Some(Estimate { service, spread, done_by: service.saturating_add(spread) })
    }
}

/// `from + d`, or a year from now when no clock can say it (a policy of endless sleeps).
pub(crate) fn instant_after(from: std::time::Instant, d: Duration) -> std::time::Instant {
    from.checked_add(d).unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(365 * 86_400))
}

/// The rate at which a queue position drains, from two sightings.
pub fn drain_rate(earlier: (Duration, i64), later: (Duration, i64)) -> Option<f64> {
    let dt = later.0.checked_sub(earlier.0)?.as_secs_f64();
    let moved = earlier.1 - later.1;
    (dt > 0.0 && moved > 0).then(|| moved as f64 / dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn st(elapsed: u64, last: Option<u64>, seen: Seen) -> PollState {
        PollState { elapsed: ms(elapsed), last_poll: last.map(ms), polls: 0, seen, ..PollState::default() }
    }

    /// The polls a job of service time `actual` gets from `policy` with `estimate`,
    /// until one sees it complete: (their times, the detection delay).
    fn simulate(policy: &PollPolicy, estimate: Option<&Estimate>, actual: u64) -> (Vec<u64>, u64) {
        let mut s = st(0, None, Seen::Nothing);
        let mut polls = Vec::new();
        loop {
            let at = policy.next_poll(estimate, &s).as_millis() as u64;
            polls.push(at);
            if at >= actual {
                return (polls, at - actual);
            }
            s = PollState { polls: polls.len() as u32, ..st(at, Some(at), Seen::Running) };
        }
    }

    /// fal-js: a poll every 500 ms (one at the very moment of completion sees it).
    fn fal_js(actual: u64) -> (usize, u64) {
        let polls = actual.div_ceil(500).max(1);
        (polls as usize, polls * 500 - actual)
    }

    #[test]
    fn with_nothing_known_it_polls_like_fal_js() {
        let p = PollPolicy::default();
        for actual in [300, 1000, 2400, 8000] {
            let (polls, delay) = simulate(&p, None, actual);
            let (js_polls, js_delay) = fal_js(actual);
            assert_eq!((polls.len(), delay), (js_polls, js_delay), "service {actual} ms");
        }
    }

    #[test]
    fn with_nothing_known_a_job_behind_an_older_sibling_polls_at_the_crowd_cadence() {
        let p = PollPolicy::default();
        let behind = |elapsed: u64, last: Option<u64>| PollState { behind: true, ..st(elapsed, last, Seen::Running) };
        // On the client's grid (phase 0, a job submitted as it began): at 2 s, 4 s, ...
        assert_eq!(p.next_poll(None, &behind(0, None)), p.crowd);
        assert_eq!(p.next_poll(None, &behind(2100, Some(2000))), ms(2000) + p.crowd);
        assert_eq!(p.next_poll(None, &behind(2100, Some(2080))), ms(2000) + p.crowd, "a poll asked late stays on the grid");
        let first = |phase: f64, since_epoch: u64| p.next_poll(None, &PollState { phase, since_epoch: ms(since_epoch), ..behind(0, None) });
        // The first poll a cadence after the submit, whatever the phase; the next ones on the
        // job's moment of the cadence, where a job submitted later joins the same moments.
        assert_eq!((first(0.25, 0), first(0.5, 300), first(f64::NAN, 1800)), (p.crowd, p.crowd, p.crowd));
        let next = |phase: f64, since_epoch: u64| {
            p.next_poll(None, &PollState { phase, since_epoch: ms(since_epoch), ..behind(2000, Some(2000)) })
        };
        assert_eq!((next(0.0, 0), next(0.5, 1000), next(0.125, 250)), (ms(4000), ms(4000), ms(4000)), "on the grid: a cadence on");
        assert_eq!((next(0.875, 0), next(0.5, 1200)), (ms(3750), ms(3800)), "a moment within the slack of a cadence is taken");
        assert_eq!(next(0.25, 0), ms(4000), "a moment further than the cadence is not waited for");
        assert_eq!((next(-3.0, 0), next(f64::NAN, 0), next(7.0, 0)), (ms(4000), ms(4000), ms(4000)), "out-of-range phases");
        assert_eq!(p.next_poll(None, &st(2100, Some(2000), Seen::Running)), ms(2500), "the oldest polls at the interval");
        let e = Estimate { service: ms(4000), spread: ms(20), done_by: ms(4300) };
        assert_eq!(p.next_poll(Some(&e), &behind(2400, Some(2000))), ms(4300), "a job behind aims where its siblings were done by");
        assert_eq!(p.next_poll(Some(&e), &behind(4400, Some(2000))), ms(4400), "and past it, polls now");
        let front = st(2100, Some(2000), Seen::Running);
        assert!(p.next_poll(Some(&e), &front) < ms(4020), "the job in front may poll early, then aims at service + spread");
        let queued = PollState { queue_rate: Some(2.0), behind: true, ..st(1000, Some(1000), Seen::Queued(10)) };
        assert_eq!(p.next_poll(None, &queued), ms(3000), "a queued job is paced by its queue");
        let fixed = PollPolicy::fixed(ms(500));
        assert_eq!(fixed.next_poll(None, &behind(2100, Some(2000))), ms(2500), "a fixed interval has no crowd");
    }

    #[test]
    fn with_an_estimate_it_detects_sooner_and_never_polls_more_than_fal_js() {
        let p = PollPolicy::default();
        // service time (ms) → (the estimate's error, ms)
        for service in [1000u64, 2000, 2500, 3500, 4000, 5000, 8000, 10_000] {
            for error in [-30i64, 0, 30] {
                let e = Estimate {
                    service: ms((service as i64 + error) as u64),
                    spread: ms(20),
                    done_by: ms((service as i64 + error) as u64 + 20),
                };
                let (polls, delay) = simulate(&p, Some(&e), service);
                let (js_polls, js_delay) = fal_js(service);
                assert!(polls.len() <= js_polls, "service {service}, error {error}: {} polls {polls:?} > fal-js {js_polls}", polls.len());
                assert!(delay <= js_delay.max(60), "service {service}, error {error}: delay {delay} ms (fal-js {js_delay})");
                assert!(delay <= 80, "service {service}, error {error}: delay {delay} ms, polls {polls:?}");
            }
        }
    }

    #[test]
    fn a_job_much_slower_than_estimated_falls_back_to_the_base_interval() {
        let p = PollPolicy::default();
        let e = Estimate { service: ms(1000), spread: ms(10), done_by: ms(1010) };
        let (polls, delay) = simulate(&p, Some(&e), 6000);
        assert!(delay <= 500, "never later than fal-js's cadence: {delay}");
        let gaps: Vec<u64> = polls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().rev().take(3).all(|g| *g == 500), "the tail is the base interval: {gaps:?}");
    }

    #[test]
    fn a_queued_job_is_polled_by_its_drain_rate_and_retry_after_is_honoured() {
        let p = PollPolicy::default();
        let queued = PollState { queue_rate: Some(2.0), ..st(1000, Some(1000), Seen::Queued(10)) };
        assert_eq!(p.next_poll(None, &queued), ms(3000), "10 places at 2/s, 80 %, capped at max");
        let queued = PollState { queue_rate: Some(20.0), ..st(1000, Some(1000), Seen::Queued(5)) };
        assert_eq!(p.next_poll(None, &queued), ms(1500), "at least the base interval");
        let told = PollState { retry_after: Some(ms(1500)), ..st(1000, Some(1000), Seen::Running) };
        assert_eq!(p.next_poll(None, &told), ms(2500));
        assert_eq!(drain_rate((ms(0), 10), (ms(2000), 6)), Some(2.0));
        assert_eq!(drain_rate((ms(0), 10), (ms(2000), 10)), None);
    }

    #[test]
    fn any_knobs_and_estimate_give_a_time_between_now_and_the_longest_sleep() {
        let huge = Duration::MAX;
        let policies = [
            PollPolicy::default(),
            PollPolicy { interval: ms(5000), max: ms(2000), min_spread: ms(10), crowd: ms(3000) },
            PollPolicy { interval: Duration::ZERO, max: Duration::ZERO, min_spread: Duration::ZERO, crowd: Duration::ZERO },
            PollPolicy { interval: huge, max: huge, min_spread: huge, crowd: huge },
            PollPolicy { crowd: huge, ..PollPolicy::default() },
        ];
        let estimates = [
            None,
            Some(Estimate { service: ms(2000), spread: ms(1500), done_by: ms(3500) }),
            Some(Estimate { service: huge, spread: huge, done_by: huge }),
            Some(Estimate { service: Duration::ZERO, spread: Duration::ZERO, done_by: Duration::ZERO }),
        ];
        let states = [
            st(0, None, Seen::Nothing),
            st(3000, Some(2900), Seen::Running),
            PollState { queue_rate: Some(1e-300), ..st(1000, Some(900), Seen::Queued(i64::MAX)) },
            PollState { retry_after: Some(huge), ..st(1000, Some(900), Seen::Running) },
            st(u64::MAX, Some(u64::MAX), Seen::Running),
            PollState { behind: true, ..st(1000, Some(900), Seen::Running) },
            PollState { behind: true, phase: f64::NAN, ..st(u64::MAX, None, Seen::Nothing) },
            PollState { behind: true, phase: f64::INFINITY, since_epoch: Duration::MAX, ..st(0, None, Seen::Nothing) },
            PollState { behind: true, phase: 0.9, since_epoch: ms(123_456), ..st(1000, Some(900), Seen::Running) },
        ];
        for p in &policies {
            for e in &estimates {
                for s in &states {
                    let at = p.next_poll(e.as_ref(), s);
                    let longest = p.max.max(p.interval).max(ms(1));
                    assert!(at >= s.elapsed && at <= s.elapsed.saturating_add(longest), "{p:?} {e:?} {s:?}: {at:?}");
                }
            }
        }
    }

    /// A job behind an older sibling aims at `done_by`, and asks for its result there only
    /// if that is at or after the service time: the estimate keeps `service <= done_by`.
    #[test]
    fn a_job_aimed_where_all_sightings_meet_is_aimed_at_or_after_the_service_time() {
        let us = Duration::from_micros;
        // A crowd's first three sightings (the queue bench, 10,000 jobs, one run in five
        // before the fix): a tight one at the start of the window all three share, two that
        // end just after it. The mean of their midpoints lies after the window's end, and
        // every job behind aimed there polled its status first (3 calls a job, not 2).
        let mut s = ServiceStats::default();
        s.record(us(995_268), us(1_000_268));
        s.record(us(1_000_049), us(1_005_049));
        s.record(us(1_000_001), us(1_005_001));
        let e = s.estimate().unwrap();
        assert!(e.service <= e.done_by && e.done_by == us(1_000_268), "{e:?}");
        assert!(e.service >= us(1_000_049), "within the shared window: {e:?}");
        let behind = PollState { elapsed: ms(400), behind: true, ..PollState::default() };
        let at = PollPolicy::default().next_poll(Some(&e), &behind);
        assert!(at >= e.service, "{at:?} {e:?}");
        // Any sightings, overlapping or not.
        let mut x = 7u64;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
        for _ in 0..2000 {
            let mut s = ServiceStats::default();
            for _ in 0..=next() % 6 {
                let lo = 900_000 + next() % 200_000;
                s.record(us(lo), us(lo + next() % 20_000));
            }
            let e = s.estimate().unwrap();
            assert!(e.service <= e.done_by, "{e:?}");
        }
    }

    #[test]
    fn stats_trust_tight_sightings_over_wide_ones() {
        let mut s = ServiceStats::default();
        assert_eq!(s.estimate(), None);
        s.record(ms(1500), ms(2000)); // a cold poll: somewhere in half a second
        s.record(ms(1995), ms(2003)); // a woken sibling: within 8 ms
        let e = s.estimate().unwrap();
        assert!((e.service.as_millis() as i64 - 2000).abs() < 30, "{e:?}");
        for _ in 0..ServiceStats::WINDOW {
            s.record(ms(4000), ms(4010));
        }
        assert!((s.estimate().unwrap().service.as_millis() as i64 - 4005).abs() < 5, "old samples leave the window");
        // Times from a journal are whatever it says: the largest gives an estimate, not a panic.
        let mut s = ServiceStats::default();
        s.record(Duration::MAX, Duration::MAX);
        s.record(Duration::ZERO, Duration::MAX);
        assert!(s.estimate().is_some());
    }
}
