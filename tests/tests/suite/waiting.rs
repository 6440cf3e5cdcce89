//! Waiting, against the simulator: a relay without streams is polled from its first 404
//! on, a completion wakes the polling siblings submitted before it, known service times
//! make polling both sooner and cheaper, streams are bounded, and the in-flight cap grows
//! on a relay that is slow per call and shrinks on 429.

use std::time::{Duration, Instant};

use falq::{ApiKey, Client, Config, Logs, PollPolicy, RequestHandle, WaitMode, endpoints, types};
use falq_sim::{Sim, SimConfig, SimMode, SimTiming};

/// A direct-mode simulator: jobs run `run_ms` once started, 64 at once, none queued first.
fn sim_config(run_ms: u64, faults: &str) -> SimConfig {
    let timing = SimTiming { queue_delay: Duration::ZERO, run_time: Duration::from_millis(run_ms), workers: 64, ..SimTiming::default() };
    SimConfig { mode: SimMode::Direct, timing, faults: faults.parse().unwrap(), ..SimConfig::default() }
}

async fn sim(run_ms: u64, faults: &str) -> Sim {
    Sim::spawn(sim_config(run_ms, faults)).await.unwrap()
}

fn client(sim: &Sim, mode: WaitMode, poll: PollPolicy, adjust: impl FnOnce(&mut Config)) -> Client {
    let mut c = Config::new(sim.base_url()).unwrap().with_key(ApiKey::new("k"));
    c.auth_scheme = falq::AuthScheme::Key;
    c.wait.mode = mode;
    c.wait.poll = poll;
    c.wait.logs = Logs::Omit;
    adjust(&mut c);
    Client::new(c).unwrap()
}

fn input() -> types::FluxProKontextTextToImageInput {
    serde_json::from_value(serde_json::json!({"prompt": "a lighthouse"})).unwrap()
}

/// Submits `n` jobs at once.
async fn submit_at_once(c: &Client, n: usize) -> Vec<RequestHandle> {
    let one = input();
    let all = futures_util::future::join_all((0..n).map(|_| c.submit::<endpoints::FluxProKontextTextToImage>(&one))).await;
    all.into_iter().map(Result::unwrap).collect()
}

/// Waits for every job, each of which must complete.
async fn wait_all(handles: &[RequestHandle]) {
    for r in futures_util::future::join_all(handles.iter().map(|h| h.wait(|_| {}))).await {
        r.unwrap();
    }
}

/// Submits, waits, and answers the request id and how long after the simulator completed
/// the job its completion was seen.
async fn run_one(c: &Client, sim: &Sim) -> (String, Duration) {
    let h = c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap();
    h.wait(|_| {}).await.unwrap();
    let seen = Instant::now();
    let done = sim.completed_at(&h.request_id).expect("completed in the simulator");
    (h.request_id.clone(), seen.saturating_duration_since(done))
}

#[tokio::test]
async fn one_404_on_the_stream_and_the_relay_is_polled_from_then_on() {
    // Lost otherwise: a wasted request (and its latency) on every job of a relay without streams.
    let sim = sim(50, "stream:404").await;
    let c = client(&sim, WaitMode::Stream, PollPolicy::fixed(Duration::from_millis(20)), |_| {});
    // Twenty jobs at once: one finds out, the others wait for its verdict.
    wait_all(&submit_at_once(&c, 20).await).await;
    for _ in 0..3 {
        run_one(&c, &sim).await;
    }
    let counters = sim.counters();
    assert_eq!(counters.routes.stream.requests, 1, "asked once");
    assert!(counters.routes.status.requests >= 3);
}

#[tokio::test]
async fn a_completion_wakes_the_siblings_submitted_before_it() {
    // Lost otherwise: jobs that completed together seen up to a whole poll interval apart.
    let sim = sim(300, "").await;
    // One stream slot: the first job streams, the others poll every 3 s (nothing known).
    let c = client(&sim, WaitMode::Stream, PollPolicy::fixed(Duration::from_secs(20)), |c| c.http.max_streams = Some(1));
    let handles = submit_at_once(&c, 4).await;
    let started = Instant::now();
    wait_all(&handles).await;
    // Jobs of 300 ms: woken, they end in well under the 20 s their next poll would take.
    assert!(started.elapsed() < Duration::from_secs(10), "the streamed completion woke the pollers: {:?}", started.elapsed());
    assert_eq!(sim.counters().routes.stream.requests, 1, "streams are bounded");
}

#[tokio::test]
async fn a_policy_of_endless_sleeps_is_taken_at_its_word_without_overflowing_a_clock() {
    // Lost otherwise: a panic (an instant past what a clock can say) for a caller whose
    // poll interval is `Duration::MAX`, in the stream's probe and in the poller's sleep.
    let sim = sim(200, "").await;
    let endless = PollPolicy { interval: Duration::MAX, max: Duration::MAX, min_spread: Duration::ZERO, crowd: Duration::MAX };
    let c = client(&sim, WaitMode::Stream, endless, |c| c.http.max_streams = Some(1));
    // Two jobs submitted first poll (the one stream slot is taken by the last one) and
    // sleep "forever"; the last one's streamed completion wakes them.
    let mut handles = Vec::new();
    for _ in 0..3 {
        handles.push(c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap());
    }
    handles.reverse();
    let all = futures_util::future::join_all(handles.iter().map(|h| h.wait(|_| {})));
    let done = tokio::time::timeout(Duration::from_secs(20), all).await.expect("woken, not asleep for good");
    assert!(done.iter().all(|r| r.as_ref().is_ok_and(|s| s.status == falq::types::QueueStatusKind::Completed)), "{done:?}");
    assert_eq!(sim.counters().routes.stream.requests, 1);
}

#[tokio::test]
async fn known_service_times_make_polling_sooner_and_cheaper_than_a_fixed_interval() {
    // Lost otherwise: polling that detects up to 500 ms late and pays for it in requests.
    let sim = sim(1300, "stream:404").await;
    let c = client(&sim, WaitMode::Poll, PollPolicy::default(), |_| {});
    let (_, cold) = run_one(&c, &sim).await;
    let before = sim.counters().routes.status.requests;
    let mut delays = Vec::new();
    for _ in 0..3 {
        delays.push(run_one(&c, &sim).await.1);
    }
    let polls_per_job = (sim.counters().routes.status.requests - before) as f64 / 3.0;
    // fal-js polls every 500 ms: 3 polls for 1.3 s, and sees it 200 ms late (250 ms on
    // average, 500 at worst). Known service times poll no more, and see it sooner: every
    // job before a fixed interval's worst, and most of them before its average.
    assert!(polls_per_job <= 3.0, "{polls_per_job} polls per job");
    delays.sort();
    assert!(
        delays[2] < Duration::from_millis(500) && delays[1] < Duration::from_millis(250),
        "seen soon after completion: {delays:?} (cold: {cold:?})"
    );
}

#[tokio::test]
async fn a_crowd_lets_its_oldest_job_poll_until_one_of_them_completes() {
    // Lost otherwise: jobs submitted together each polled at the interval until the first
    // of them completes: requests (client CPU, a relay's rate limit) spent to learn what
    // one job's polls tell them all.
    let policy = PollPolicy::default();
    let service = policy.interval * 3 + policy.interval / 5;
    let sim = sim(service.as_millis() as u64, "stream:404").await;
    // The jobs behind the oldest would poll after 10 minutes: any poll of theirs before
    // the first completion would be this test's failure, however slow the machine.
    let crowd = PollPolicy { crowd: Duration::from_secs(600), max: Duration::from_secs(600), ..policy };
    let c = client(&sim, WaitMode::Poll, crowd, |_| {});
    let n = 12;
    let handles = submit_at_once(&c, n).await;
    let finished = futures_util::future::join_all(handles.iter().map(|h| h.finish::<serde_json::Value>(|_| {})));
    let watch = async {
        until(&sim, "a job completes", |c| c.per_job.values().any(|j| j.status == "COMPLETED")).await;
        sim.counters().routes.status.requests
    };
    let (outputs, polls) = tokio::time::timeout(Duration::from_secs(120), futures_util::future::join(finished, watch))
        .await
        .expect("every job of the crowd is seen to complete, not left asleep");
    for out in &outputs {
        assert!(out.is_ok(), "{out:?}");
    }
    // Until then only the oldest polled, at the interval: no more polls than its service
    // time holds (a loaded machine polls later, so fewer). At the interval, every job
    // would have polled that many times.
    let most = service.as_millis().div_ceil(policy.interval.as_millis()) as u64;
    assert!(polls <= most, "{polls} status polls before the first completion; the oldest alone polls at most {most}");
    let counters = sim.counters();
    for h in &handles {
        let job = &counters.per_job[&h.request_id];
        assert!(job.result_requests <= 2, "{}: {} result calls (at most one aim too early)", h.request_id, job.result_requests);
    }
}

/// Submits and finishes one job (its result fetched): its request id, and how long after
/// the simulator completed it the caller held its output.
async fn finish_one(c: &Client, sim: &Sim) -> (String, Duration) {
    let h = c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap();
    let _: serde_json::Value = h.finish(|_| {}).await.unwrap();
    let held = Instant::now();
    (h.request_id.clone(), held.saturating_duration_since(sim.completed_at(&h.request_id).expect("completed in the simulator")))
}

#[tokio::test]
async fn a_poll_at_the_expected_completion_asks_for_the_result_itself() {
    // Lost otherwise: a status call that says COMPLETED, then the result call, for every
    // job whose completion the endpoint's known service time predicted.
    let sim = sim(1300, "stream:404").await;
    let c = client(&sim, WaitMode::Poll, PollPolicy::default(), |_| {});
    // The first job's completion is seen within a poll interval; the second's, aimed at
    // that estimate, within a few milliseconds: the estimate is tight from then on.
    finish_one(&c, &sim).await;
    finish_one(&c, &sim).await;
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(finish_one(&c, &sim).await);
    }
    let counters = sim.counters();
    let mut aimed = 0;
    for (id, delay) in &jobs {
        let job = &counters.per_job[id];
        // A job the relay ran later than its estimate (a loaded machine) costs one missed
        // aim, then is polled by its status: two result calls at most, never more.
        assert!((1..=2).contains(&job.result_requests), "{id}: {} result calls", job.result_requests);
        if job.result_requests == 1 {
            aimed += 1;
            // fal-js: three status polls for 1.3 s, then the result; here one early poll at
            // most besides, and the output held sooner than a 500 ms poll would see it.
            assert!(job.status_requests <= 3, "{id}: {} status calls", job.status_requests);
            assert!(*delay < Duration::from_millis(500), "{id}: held {delay:?} after completion");
        }
    }
    assert!(aimed >= 1, "no aimed poll fetched its result directly: {jobs:?}");

    // A job slower than its endpoint's estimate: the aimed result call is not ready (400),
    // and the job is polled by its status from then on, to its output.
    sim.set_faults("result:400@1".parse().unwrap());
    let (id, _) = finish_one(&c, &sim).await;
    let job = &sim.counters().per_job[&id];
    assert_eq!(job.result_requests, 2, "the missed aim, then the result once COMPLETED");
    assert!(job.status_requests >= 1, "its status said COMPLETED");
}

#[tokio::test]
async fn a_relay_answering_404_before_completion_has_its_late_jobs_polled_by_status() {
    // Lost otherwise: two calls a poll (a result's 404, then the status) for every job
    // slower than its endpoint's estimate, on relays that answer 404 before completion.
    let mut config = sim_config(1300, "stream:404");
    config.timing.workers = 1;
    let sim = Sim::spawn(config).await.unwrap();
    let c = client(&sim, WaitMode::Poll, PollPolicy::default(), |_| {});
    finish_one(&c, &sim).await;
    finish_one(&c, &sim).await;
    // One worker: this job waits 1.3 s behind another, twice its endpoint's service time.
    let blocker = c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap();
    sim.set_faults("result:404@1".parse().unwrap());
    let h = c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap();
    let _: serde_json::Value = h.finish(|_| {}).await.unwrap();
    let job = &sim.counters().per_job[&h.request_id];
    assert_eq!(job.result_requests, 2, "the aimed call's 404, then the result once COMPLETED");
    let _: serde_json::Value = blocker.finish(|_| {}).await.unwrap();
}

/// Waits until the simulator's counters say `what` (events, not time); a guard of a
/// minute stops a test that would otherwise hang.
async fn until(sim: &Sim, what: &str, cond: impl Fn(&falq_sim::Counters) -> bool) {
    let guard = Instant::now();
    while !cond(&sim.counters()) {
        assert!(guard.elapsed() < Duration::from_secs(60), "never {what}: {:?}", sim.counters().routes);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Cancels every job (their waits then end): jobs of these tests run until told.
async fn cancel_all(handles: &[RequestHandle]) {
    for h in handles {
        h.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn open_streams_and_calls_in_flight_share_the_connection_budget() {
    // Lost otherwise: over HTTP/1.1, a connection per stream plus a grown cap's worth of
    // calls, past the memory 10,000 jobs are meant to fit in. The jobs run until cancelled,
    // so what is checked happens while they wait, however slow the machine.
    let sim = sim(3_600_000, "").await;
    let c = client(&sim, WaitMode::Stream, PollPolicy::fixed(Duration::from_millis(5)), |c| {
        c.http.max_in_flight = 4;
        c.http.max_streams = Some(6);
        c.http.max_connections = Some(8);
    });
    let handles = submit_at_once(&c, 40).await;
    // Six jobs stream, the others poll every 5 ms: every call slot is taken, all along.
    let waits = futures_util::future::join_all(handles.iter().map(|h| h.wait(|_| {})));
    let watch = async {
        until(&sim, "six streams open", |k| k.routes.stream.open == 6).await;
        // The cap may have grown during the submits, before any stream opened, and gives
        // back one permit per answer: once twenty answers came with six streams open, it
        // holds the two calls the budget leaves, answer after answer.
        let from = sim.counters().routes.status.requests;
        until(&sim, "twenty status answers", |k| k.routes.status.requests >= from + 20).await;
        let from = sim.counters().routes.status.requests;
        let mut most = 0;
        while sim.counters().routes.status.requests < from + 40 {
            most = most.max(c.in_flight_limit());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cancel_all(&handles).await;
        most
    };
    let (done, most) = tokio::join!(waits, watch);
    assert!(done.iter().all(Result::is_ok));
    assert!(most <= 2, "8 connections, 6 of them streams: at most 2 calls in flight, saw {most}");
    assert_eq!(sim.counters().routes.stream.peak_open, 6, "never more streams than allowed");
    // Without streams the calls take the budget, and no more.
    let c = client(&sim, WaitMode::Poll, PollPolicy::fixed(Duration::from_millis(5)), |c| {
        c.http.max_in_flight = 4;
        c.http.max_connections = Some(8);
    });
    let handles = submit_at_once(&c, 40).await;
    let waits = futures_util::future::join_all(handles.iter().map(|h| h.wait(|_| {})));
    let watch = async {
        let guard = Instant::now();
        let mut most = 0;
        while c.in_flight_limit() < 8 {
            assert!(guard.elapsed() < Duration::from_secs(60), "the cap never grew to the budget: {}", c.in_flight_limit());
            most = most.max(c.in_flight_limit());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let from = sim.counters().routes.status.requests;
        while sim.counters().routes.status.requests < from + 40 {
            most = most.max(c.in_flight_limit());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cancel_all(&handles).await;
        most
    };
    let (done, most) = tokio::join!(waits, watch);
    assert!(done.iter().all(Result::is_ok));
    assert_eq!(most, 8, "grown to the budget, never past it");
    // A budget smaller than the streams allowed: the streams leave the calls their floor.
    let sim = Sim::spawn(sim_config(1000, "")).await.unwrap();
    let c = client(&sim, WaitMode::Stream, PollPolicy::default(), |c| {
        c.http.max_in_flight = 4;
        c.http.max_connections = Some(4);
    });
    wait_all(&submit_at_once(&c, 10).await).await;
    let streams = sim.counters().routes.stream;
    assert!((1..=3).contains(&streams.peak_open), "4 connections, 1 kept for calls: {} streams open at once", streams.peak_open);
}

#[tokio::test]
async fn over_http2_streams_leave_room_for_calls_within_the_relays_concurrent_streams() {
    // Lost otherwise: a client may not open a second HTTP/2 connection, so status
    // streams that fill a relay's allowance of concurrent streams (100 here, as many
    // servers set it) hold every call, a submit included, until jobs complete.
    let mut config = sim_config(5000, "");
    config.timing.workers = 1000;
    config.h2_max_streams = Some(100);
    let sim = Sim::spawn(config).await.unwrap();
    let c = client(&sim, WaitMode::Stream, PollPolicy::default(), |c| c.http.version = falq::HttpVersion::Http2PriorKnowledge);
    let handles = submit_at_once(&c, 150).await;
    let waits = futures_util::future::join_all(handles.iter().map(|h| h.wait(|_| {})));
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let asked = Instant::now();
        let h = c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap();
        (h, asked.elapsed())
    };
    let (done, (late, took)) = tokio::join!(waits, meanwhile);
    assert!(done.iter().all(Result::is_ok));
    assert!(took < Duration::from_millis(2500), "a submit waited {took:?} behind status streams (jobs take 5 s)");
    assert!(sim.counters().routes.stream.requests < 150, "not every job streams over one connection");
    let _: serde_json::Value = late.finish(|_| {}).await.unwrap();
}

#[tokio::test]
async fn the_in_flight_cap_grows_on_a_slow_relay_and_halves_on_429() {
    // Lost otherwise: a cap that turns a relay's per-call latency into queueing delay.
    let sim = sim(100, "stream:404;status:stall=40ms").await;
    let c = client(&sim, WaitMode::Poll, PollPolicy::fixed(Duration::from_millis(10)), |c| c.http.max_in_flight = 4);
    wait_all(&submit_at_once(&c, 40).await).await;
    let grown = c.in_flight_limit();
    assert!(grown > 8, "the cap grew while the relay kept up: {grown}");
    sim.set_faults("status:429=0s".parse().unwrap());
    let h = c.submit::<endpoints::FluxProKontextTextToImage>(&input()).await.unwrap();
    let _ = h.status(Logs::Omit).await;
    assert!(c.in_flight_limit() < grown, "429 shrinks it: {} from {grown}", c.in_flight_limit());
}
