//! Everything the simulator answers validates against the normalized spec's response
//! schemas: submits (accepted, refused), each status, stream events, results (done,
//! in progress, failed, cancelled, unknown), cancels, and the errors of injected faults.
//! So the simulator and the spec cannot drift apart.

use std::time::Duration;

use falq_sim::{Sim, SimConfig, SimMode, SimTiming};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tests::conformance::{validate_response, validate_result, validate_status_event};

struct Answer {
    status: u16,
    body: Value,
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, key: Option<&str>, body: Option<&Value>) -> Answer {
    let mut rb = http.request(method, url);
    if let Some(k) = key {
        rb = rb.header("authorization", format!("Key {k}"));
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let resp = rb.send().await.expect("the simulator answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("HTTP {status} from {url} is not JSON ({e}): {text}"));
    Answer { status, body }
}

fn check(what: &str, result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{what}: the simulator drifted from the spec: {e}");
    }
}

async fn sim(timing: SimTiming, faults: &str) -> Sim {
    let config = SimConfig { mode: SimMode::Direct, timing, faults: faults.parse().unwrap(), ..SimConfig::default() };
    Sim::spawn(config).await.unwrap()
}

fn slow() -> SimTiming {
    SimTiming { queue_delay: Duration::from_millis(300), run_time: Duration::from_millis(300), workers: 1, ..SimTiming::default() }
}

async fn wait_completed(http: &reqwest::Client, status_url: &str) -> Answer {
    for _ in 0..400 {
        let a = call(http, reqwest::Method::GET, &format!("{status_url}?logs=1"), Some("k"), None).await;
        if a.body["status"] == "COMPLETED" {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the job never completed");
}

#[tokio::test]
async fn every_endpoint_and_every_state_answers_as_the_spec_says() {
    let sim = sim(slow(), "").await;
    let http = reqwest::Client::new();
    // Every endpoint of the catalogue, from its required fields alone (the spec's minimal sample).
    let spec = tests::conformance::Spec::current();
    let inputs: Vec<(String, String, serde_json::Value)> = falq_api::ENDPOINTS
        .iter()
        .map(|e| {
            let op = spec.operation(e.operation_id).expect("an operation per endpoint");
            let body = op.request_body.clone().expect("a body schema");
            (
                e.operation_id.to_string(),
                e.id.to_string(),
                tests::conformance::samples::sample(spec, &body, tests::conformance::samples::Fill::Minimal, "body"),
            )
        })
        .collect();
    let base = sim.base_url().to_string();
    for (op, id, input) in &inputs {
        let op = op.as_str();
        let submit = call(&http, reqwest::Method::POST, &format!("{base}/{id}"), Some("k"), Some(input)).await;
        check(&format!("{op} submit {}", submit.status), validate_response(op, submit.status, &submit.body));
        assert_eq!(submit.status, 200);
        let status_url = submit.body["status_url"].as_str().unwrap().to_string();
        let response_url = submit.body["response_url"].as_str().unwrap().to_string();
        let queued = call(&http, reqwest::Method::GET, &status_url, Some("k"), None).await;
        check(&format!("{op} status {}", queued.status), validate_response("queue_status", queued.status, &queued.body));
        let early = call(&http, reqwest::Method::GET, &response_url, Some("k"), None).await;
        check(&format!("{op} early result {}", early.status), validate_result(op, early.status, &early.body));
        assert_eq!(early.status, 400, "in progress");
        let done = wait_completed(&http, &status_url).await;
        check(&format!("{op} completed status"), validate_response("queue_status", done.status, &done.body));
        let result = call(&http, reqwest::Method::GET, &response_url, Some("k"), None).await;
        assert_eq!(result.status, 200, "{}", result.body);
        check(&format!("{op} result"), validate_result(op, result.status, &result.body));
        let again = call(&http, reqwest::Method::PUT, submit.body["cancel_url"].as_str().unwrap(), Some("k"), None).await;
        check(&format!("{op} cancel after completion"), validate_response("queue_cancel", again.status, &again.body));
        assert_eq!(again.body["status"], "ALREADY_COMPLETED");
    }
    // Refused and unknown.
    let bad =
        call(&http, reqwest::Method::POST, &format!("{base}/fal-ai/flux-1/dev/redux"), Some("k"), Some(&json!({"num_images": 9}))).await;
    assert_eq!(bad.status, 422);
    check("422 submit", validate_response("flux_1_dev_redux", 422, &bad.body));
    let nokey =
        call(&http, reqwest::Method::POST, &format!("{base}/fal-ai/flux-1/dev/redux"), None, Some(&json!({"image_url": "u"}))).await;
    assert_eq!(nokey.status, 401);
    check("401 submit", validate_response("flux_1_dev_redux", 401, &nokey.body));
    let nokey = call(&http, reqwest::Method::GET, &format!("{base}/fal-ai/flux-1/requests/r1/status"), None, None).await;
    check("401 status", validate_response("queue_status", nokey.status, &nokey.body));
    let unknown = call(&http, reqwest::Method::GET, &format!("{base}/fal-ai/flux-1/requests/nope/status"), Some("k"), None).await;
    check("404 status", validate_response("queue_status", unknown.status, &unknown.body));
    let unknown = call(&http, reqwest::Method::GET, &format!("{base}/fal-ai/flux-1/requests/nope"), Some("k"), None).await;
    check("404 result", validate_result("flux_1_dev_redux", unknown.status, &unknown.body));
    let unknown = call(&http, reqwest::Method::PUT, &format!("{base}/fal-ai/flux-1/requests/nope/cancel"), Some("k"), None).await;
    assert_eq!(unknown.status, 404);
    check("404 cancel", validate_response("queue_cancel", unknown.status, &unknown.body));
}

#[tokio::test]
async fn cancelled_and_failed_jobs_and_injected_faults_answer_as_the_spec_says() {
    let sim = sim(slow(), "result:422@1; status:503@1; status:429@2; submit:502@2").await;
    let http = reqwest::Client::new();
    let base = sim.base_url().to_string();
    let input = json!({"image_url": "https://example.test/a.png"});
    // The first job to complete fails at its result call.
    let first = call(&http, reqwest::Method::POST, &format!("{base}/fal-ai/flux-1/dev/redux"), Some("k"), Some(&input)).await;
    let status_url = first.body["status_url"].as_str().unwrap().to_string();
    for expected in [503, 429] {
        let faulted = call(&http, reqwest::Method::GET, &status_url, Some("k"), None).await;
        assert_eq!(faulted.status, expected, "{}", faulted.body);
        check(&format!("{expected} status fault"), validate_response("queue_status", faulted.status, &faulted.body));
    }
    let refused = call(&http, reqwest::Method::POST, &format!("{base}/fal-ai/flux-1/dev/redux"), Some("k"), Some(&input)).await;
    assert_eq!(refused.status, 502);
    check("502 submit fault", validate_response("flux_1_dev_redux", 502, &refused.body));
    wait_completed(&http, &status_url).await;
    let failed = call(&http, reqwest::Method::GET, first.body["response_url"].as_str().unwrap(), Some("k"), None).await;
    assert_eq!(failed.status, 422);
    check("failed job result", validate_result("flux_1_dev_redux", failed.status, &failed.body));
    // A cancelled job.
    let second = call(&http, reqwest::Method::POST, &format!("{base}/fal-ai/flux-1/dev/redux"), Some("k"), Some(&input)).await;
    let cancel = call(&http, reqwest::Method::PUT, second.body["cancel_url"].as_str().unwrap(), Some("k"), None).await;
    assert_eq!(cancel.status, 202);
    check("202 cancel", validate_response("queue_cancel", cancel.status, &cancel.body));
    wait_completed(&http, second.body["status_url"].as_str().unwrap()).await;
    let cancelled = call(&http, reqwest::Method::GET, second.body["response_url"].as_str().unwrap(), Some("k"), None).await;
    check("cancelled result", validate_result("flux_1_dev_redux", cancelled.status, &cancelled.body));
}

#[tokio::test]
async fn every_stream_event_is_a_queue_status() {
    let sim = sim(
        SimTiming { queue_delay: Duration::from_millis(50), run_time: Duration::from_millis(200), workers: 1, ..SimTiming::default() },
        "",
    )
    .await;
    let http = reqwest::Client::new();
    let base = sim.base_url().to_string();
    let submit = call(
        &http,
        reqwest::Method::POST,
        &format!("{base}/fal-ai/flux-1/schnell/redux"),
        Some("k"),
        Some(&json!({"image_url": "https://example.test/a.png"})),
    )
    .await;
    let url = format!("{}/stream?logs=1", submit.body["status_url"].as_str().unwrap());
    let resp = http.get(&url).header("authorization", "Key k").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"].to_str().unwrap().split(';').next(), Some("text/event-stream"));
    let mut text = String::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| serde_json::from_str(d.trim()).unwrap()).collect();
    assert!(events.len() >= 3, "queued, running, completed at least: {text}");
    for (i, e) in events.iter().enumerate() {
        check(&format!("event {i}"), validate_status_event(e));
    }
    assert_eq!(events.last().unwrap()["status"], "COMPLETED", "the stream closes after COMPLETED");
}
