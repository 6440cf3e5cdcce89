//! falq against the simulator end to end: relay mode answers queue.fal.run URLs that must
//! be rewritten onto the base (there is no network to reach them), faults within the
//! retry policy are survived, and no job is ever submitted twice.

use std::time::Duration;

use falq::{ApiKey, Client, Config, EndpointMethods, RetryPolicy, WaitMode, endpoints, types};
use falq_sim::{Sim, SimConfig, SimMode, SimTiming};
use serde_json::json;

fn timing() -> SimTiming {
    SimTiming { queue_delay: Duration::from_millis(20), run_time: Duration::from_millis(80), workers: 8, ..SimTiming::default() }
}

async fn sim(mode: SimMode, faults: &str) -> Sim {
    Sim::spawn(SimConfig { mode, timing: timing(), faults: faults.parse().unwrap(), ..SimConfig::default() }).await.unwrap()
}

fn client(sim: &Sim, mode: WaitMode) -> Client {
    let mut c = Config::new(sim.base_url()).unwrap().with_key(ApiKey::new("relay-key"));
    if sim.mode() == SimMode::Direct {
        c.auth_scheme = falq::AuthScheme::Key;
    }
    c.wait.mode = mode;
    c.wait.poll = falq::PollPolicy::fixed(Duration::from_millis(10));
    c.retry = RetryPolicy { base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(50), ..RetryPolicy::default() };
    Client::new(c).unwrap()
}

fn redux_input() -> types::Flux1DevReduxInput {
    serde_json::from_value(
        json!({"image_url": "https://example.test/in.png", "image_size": "square", "num_images": 2, "output_format": "png"}),
    )
    .unwrap()
}

#[tokio::test]
async fn typed_runs_in_both_modes_and_both_wait_modes() {
    for sim_mode in [SimMode::Relay, SimMode::Direct] {
        let sim = sim(sim_mode, "").await;
        for wait in [WaitMode::Stream, WaitMode::Poll] {
            let c = client(&sim, wait);
            let out = c.flux_1_dev_redux(redux_input()).await.unwrap_or_else(|e| panic!("{sim_mode:?} {wait:?}: {e}"));
            assert_eq!(out.images.len(), 2);
            assert_eq!((out.images[0].width, out.images[0].height), (Some(512), Some(512)));
            let dir = std::env::temp_dir().join(format!("falq-e2e-{}-{sim_mode:?}-{wait:?}", std::process::id()));
            let saved = c.download("fal-ai/flux-1/dev/redux", &serde_json::to_value(&out).unwrap(), &dir, "job").await.unwrap();
            assert_eq!(saved.len(), 2);
            assert!(saved.iter().all(|f| f.content_type == "image/png" && std::fs::read(&f.path).unwrap().starts_with(b"\x89PNG")));
            std::fs::remove_dir_all(&dir).ok();
        }
        let counters = sim.counters();
        assert_eq!(counters.jobs.submitted, 2, "one submit per run");
        assert_eq!(counters.routes.stream.requests, 1, "the streaming run used the stream");
        assert!(counters.routes.status.requests >= 1, "the polling run polled");
    }
}

#[tokio::test]
async fn streaming_costs_three_requests_per_job() {
    let sim = sim(SimMode::Relay, "").await;
    let c = client(&sim, WaitMode::Stream);
    let input: types::FluxProKontextTextToImageInput = serde_json::from_value(json!({"prompt": "a lighthouse"})).unwrap();
    // The first job finds out that the relay streams (jobs submitted while nobody knows
    // poll meanwhile, as many times as the machine is slow); from then on every job streams.
    c.flux_pro_kontext_text_to_image(input.clone()).await.unwrap();
    let (before, connected) = (sim.counters().routes, sim.counters().connections);
    let jobs = 20;
    let runs = (0..jobs).map(|_| c.flux_pro_kontext_text_to_image(input.clone()));
    for r in futures_util::future::join_all(runs).await {
        r.unwrap();
    }
    let r = sim.counters().routes;
    let calls = |c: &falq_sim::PerRoute| c.submit.requests + c.status.requests + c.stream.requests + c.result.requests;
    let per_job = (calls(&r) - calls(&before)) as f64 / jobs as f64;
    assert_eq!(per_job, 3.0, "submit + stream + result");
    let opened = sim.counters().connections - connected;
    assert!(opened <= jobs, "{jobs} jobs at once opened {opened} connections");
}

/// The simulator on a runtime and a thread of its own, as a relay is to its clients: its
/// answers reach the client's runtime through sockets alone, in their own time.
fn sim_apart(config: SimConfig) -> (std::sync::Arc<Sim>, tokio::sync::oneshot::Sender<()>) {
    let (started, sim) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let _ = started.send(std::sync::Arc::new(Sim::spawn(config).await.unwrap()));
            let _ = stopped.await;
        });
    });
    (sim.recv().unwrap(), stop)
}

#[tokio::test]
async fn a_job_s_calls_share_its_connection() {
    // Over HTTP/1.1 a job's three calls share a connection: its stream takes the one its
    // submit's answer came on, once that is back in the pool, and its result the stream's.
    // Jobs at once need one each (a stream holds its connection), and no more.
    let (sim, _stop) = sim_apart(SimConfig { mode: SimMode::Relay, timing: timing(), ..SimConfig::default() });
    let c = client(&sim, WaitMode::Stream);
    let input: types::FluxProKontextTextToImageInput = serde_json::from_value(json!({"prompt": "a lighthouse"})).unwrap();
    // The first job finds out that the relay streams; its connection stays in the pool.
    c.flux_pro_kontext_text_to_image(input.clone()).await.unwrap();
    assert_eq!(sim.counters().connections, 1, "one job, one connection");
    let jobs = 50;
    let runs = (0..jobs).map(|_| c.flux_pro_kontext_text_to_image(input.clone()));
    for r in futures_util::future::join_all(runs).await {
        r.unwrap();
    }
    let r = sim.counters();
    assert_eq!(r.routes.stream.requests, jobs + 1, "every job streamed");
    assert!(r.connections <= jobs, "{jobs} jobs at once opened {} connections", r.connections);
}

#[tokio::test]
async fn faults_within_the_retry_policy_are_survived_without_a_second_submit() {
    let sim = sim(SimMode::Relay, "submit:429=0s@1; submit:503@2; status:503%30; status:reset@2; result:502@1; stream:reset@1").await;
    for wait in [WaitMode::Poll, WaitMode::Stream] {
        let c = client(&sim, wait);
        let handle = c.submit::<endpoints::Flux1DevRedux>(&redux_input()).await.unwrap_or_else(|e| panic!("{wait:?}: {e}"));
        let out: types::FluxImageOutput = handle.finish(|_| {}).await.unwrap_or_else(|e| panic!("{wait:?}: {e}"));
        assert_eq!(out.images.len(), 2);
        let job = &sim.counters().per_job[&handle.request_id];
        assert_eq!(job.submits, 1, "{wait:?}: never submitted twice");
    }
    let c = sim.counters();
    assert_eq!(c.jobs.submitted, 2, "two accepted jobs for two runs, despite the refused submits");
    assert!(c.routes.submit.faults_injected >= 2 && c.routes.status.faults_injected >= 1, "the faults fired: {:?}", c.routes);
}

#[tokio::test]
async fn malformed_bodies_and_stalled_answers_are_asked_for_again() {
    // Every route answers once with its body cut in half (a media file under its whole
    // Content-Length), and a status answer stalls past the call timeout: the client asks
    // again, and the job completes with its files whole.
    let sim =
        sim(SimMode::Relay, "status:malformed@2; stream:malformed@1; result:malformed@1; media:malformed@1,2; status:stall=2s@3").await;
    for wait in [WaitMode::Poll, WaitMode::Stream] {
        let mut c = client(&sim, wait);
        let mut config = c.config().clone();
        config.timeouts.request = Duration::from_millis(300);
        c = Client::new(config).unwrap();
        let handle = c.submit::<endpoints::Flux1DevRedux>(&redux_input()).await.unwrap_or_else(|e| panic!("{wait:?}: {e}"));
        let dir = std::env::temp_dir().join(format!("falq-e2e-malformed-{}-{wait:?}", std::process::id()));
        let (out, saved) = handle.finish_to_dir(&dir, "job", |_| {}).await.unwrap_or_else(|e| panic!("{wait:?}: {e}"));
        let out: types::FluxImageOutput = serde_json::from_value(out).unwrap();
        assert_eq!(out.images.len(), 2);
        assert_eq!(saved.len(), 2);
        for f in &saved {
            let bytes = std::fs::read(&f.path).unwrap();
            assert!(image::load_from_memory(&bytes).is_ok(), "{wait:?}: {} is a whole image", f.path.display());
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    let r = sim.counters().routes;
    assert!(r.status.faults_injected >= 2 && r.result.faults_injected >= 1 && r.media.faults_injected >= 2, "the faults fired: {r:?}");
}

#[tokio::test]
async fn a_job_that_fails_surfaces_fal_field_errors() {
    let sim = sim(SimMode::Relay, "").await;
    let c = client(&sim, WaitMode::Stream);
    // A data URL that is no image: the job is accepted, then fails at the result call.
    let input: types::Flux1DevReduxInput = serde_json::from_value(json!({"image_url": "data:image/png;base64,bm90IGFuIGltYWdl"})).unwrap();
    match c.flux_1_dev_redux(input).await.unwrap_err() {
        falq::Error::JobFailed { status, field_errors, request_id, .. } => {
            assert_eq!(status, 422);
            assert!(request_id.is_some());
            assert_eq!(field_errors[0].field, "image_url", "{field_errors:?}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn http2_prior_knowledge_carries_many_streams() {
    let sim = sim(SimMode::Direct, "").await;
    let mut config = Config::new(sim.base_url()).unwrap().with_key(ApiKey::new("k"));
    config.auth_scheme = falq::AuthScheme::Key;
    config.http.version = falq::HttpVersion::Http2PriorKnowledge;
    config.http.max_in_flight = 4;
    let c = Client::new(config).unwrap();
    let input: types::FluxProKontextTextToImageInput = serde_json::from_value(json!({"prompt": "a lighthouse"})).unwrap();
    let jobs = 60;
    let runs = (0..jobs).map(|_| c.flux_pro_kontext_text_to_image(input.clone()));
    for r in futures_util::future::join_all(runs).await {
        assert_eq!(r.unwrap().images.len(), 1);
    }
    let r = sim.counters().routes;
    assert_eq!(
        (r.submit.requests, r.stream.requests, r.result.requests, r.status.requests),
        (jobs, jobs, jobs, 0),
        "every job streamed over HTTP/2"
    );
    assert_eq!(sim.counters().connections, 1, "on one connection");
}

#[tokio::test]
async fn sync_mode_data_uris_are_decoded_into_files() {
    let sim = sim(SimMode::Relay, "").await;
    let c = client(&sim, WaitMode::Stream);
    let input: types::FluxProKontextTextToImageInput =
        serde_json::from_value(json!({"prompt": "a lighthouse", "sync_mode": true, "num_images": 2, "output_format": "png"})).unwrap();
    let out = c.flux_pro_kontext_text_to_image(input).await.unwrap();
    assert!(out.images.iter().all(|i| i.url.starts_with("data:image/png;base64,")), "sync mode answers data URIs");
    let dir = std::env::temp_dir().join(format!("falq-e2e-sync-{}", std::process::id()));
    let saved = c.download("fal-ai/flux-1/dev/redux", &serde_json::to_value(&out).unwrap(), &dir, "sync").await.unwrap();
    assert_eq!(saved.len(), 2);
    for f in &saved {
        assert_eq!((f.content_type.as_str(), f.source.as_str()), ("image/png", "data:"));
        assert!(std::fs::read(&f.path).unwrap().starts_with(b"\x89PNG"), "{:?}", f.path);
    }
    assert_eq!(sim.counters().routes.media.requests, 0, "nothing was downloaded over HTTP");
    std::fs::remove_dir_all(&dir).ok();
}

fn options_client(sim: &Sim) -> Client {
    let mut c = Config::new(sim.base_url()).unwrap().with_key(ApiKey::new("k"));
    c.wait.mode = WaitMode::Stream;
    Client::new(c).unwrap()
}

fn text_input(prompt: &str) -> types::FluxProKontextTextToImageInput {
    serde_json::from_value(json!({ "prompt": prompt })).unwrap()
}

#[tokio::test]
async fn the_simulator_posts_fals_webhook_payload() {
    let hook = tests::CaptureServer::start(|_| (200, "{}".to_string())).await;
    let sim = sim(SimMode::Relay, "").await;
    let c = options_client(&sim);
    let options = falq::SubmitOptions { webhook: Some(format!("{}/hook?job=1", hook.base_url).parse().unwrap()), ..Default::default() };
    let handle = c.submit_with::<endpoints::FluxProKontextTextToImage>(&text_input("a kite"), &options).await.unwrap();
    let out: types::FluxImageOutput = handle.finish(|_| {}).await.unwrap();
    let mut waited = 0;
    while hook.received().is_empty() && waited < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    let posts = hook.received();
    assert_eq!(posts.len(), 1, "one webhook per job");
    assert_eq!((posts[0].method.as_str(), posts[0].target.as_str()), ("POST", "/hook?job=1"));
    let body: serde_json::Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(body["request_id"], handle.request_id.as_str());
    assert_eq!(body["gateway_request_id"], handle.request_id.as_str());
    assert_eq!((body["status"].as_str(), &body["error"]), (Some("OK"), &serde_json::Value::Null));
    assert_eq!(body["payload"]["images"][0]["url"], out.images[0].url.as_str(), "the payload is the result");
}

#[tokio::test]
async fn the_simulator_honours_priority_and_start_timeout() {
    let timing = SimTiming { queue_delay: Duration::ZERO, run_time: Duration::from_millis(400), workers: 1, ..SimTiming::default() };
    let sim = Sim::spawn(SimConfig { timing, ..SimConfig::default() }).await.unwrap();
    let c = options_client(&sim);
    let submit = |prompt: &'static str, options: falq::SubmitOptions| {
        let c = c.clone();
        async move { c.submit_with::<endpoints::FluxProKontextTextToImage>(&text_input(prompt), &options).await.unwrap() }
    };
    let low = falq::SubmitOptions { priority: Some(falq::Priority::Low), ..Default::default() };
    let running = submit("first", Default::default()).await;
    // The one worker takes it before the others are queued.
    for _ in 0..200 {
        if running.status(falq::Logs::Omit).await.unwrap().status == types::QueueStatusKind::InProgress {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let low_job = submit("low", low).await;
    let normal = submit("normal", Default::default()).await;
    // Behind every normal job: the later normal job is ahead of it in the queue.
    let position = |h: &falq::RequestHandle| {
        let h = h.clone();
        async move { h.status(falq::Logs::Omit).await.unwrap().queue_position }
    };
    assert_eq!((position(&normal).await, position(&low_job).await), (Some(0), Some(1)));
    // Low priority too, so three 400 ms runs on the one worker come first: it cannot start within 1 s.
    let impatient =
        falq::SubmitOptions { start_timeout: Some(Duration::from_secs(1)), priority: Some(falq::Priority::Low), ..Default::default() };
    let timed = submit("impatient", impatient).await;
    let (a, b, d) = tokio::join!(
        running.finish::<types::FluxImageOutput>(|_| {}),
        low_job.finish::<types::FluxImageOutput>(|_| {}),
        normal.finish::<types::FluxImageOutput>(|_| {})
    );
    a.unwrap();
    b.unwrap();
    d.unwrap();
    let per_job = sim.counters().per_job;
    let done_at = |h: &falq::RequestHandle| per_job[&h.request_id].completed_unix_us.unwrap();
    assert!(done_at(&normal) < done_at(&low_job), "the normal job ran first");
    match timed.finish::<types::FluxImageOutput>(|_| {}).await.unwrap_err() {
        falq::Error::JobFailed { status: 504, message, .. } => assert!(message.contains("start timeout"), "{message}"),
        other => panic!("a missed start deadline is a failed job, not retried: {other}"),
    }
}

#[tokio::test]
async fn a_result_asked_for_as_json_is_the_relay_s_json_whatever_type_asks() {
    let sim = sim(SimMode::Relay, "").await;
    let c = client(&sim, WaitMode::Poll);
    let handle = c.submit_json("fal-ai/flux-pro/kontext/text-to-image", &json!({"prompt": "a lighthouse"})).await.unwrap();
    let as_value: serde_json::Value = handle.finish(|_| {}).await.unwrap();
    assert_eq!(handle.result_json().await.unwrap(), as_value);
    let as_map: serde_json::Map<String, serde_json::Value> = handle.result().await.unwrap();
    assert_eq!(serde_json::Value::Object(as_map), as_value);
    let typed: endpoints::FluxProKontextTextToImageOutput = handle.result().await.unwrap();
    assert_eq!(typed.images.len(), as_value["images"].as_array().unwrap().len());
}
