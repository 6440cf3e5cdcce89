//! Fault injection over HTTP: statuses, resets, stalls, malformed bodies, failed jobs; set from
//! config, from the library and over the admin route.

use std::time::{Duration, Instant};

use falq_sim::{FaultPlan, SimConfig};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::*;

fn plan(text: &str) -> FaultPlan {
    text.parse().expect("a valid plan")
}

#[tokio::test]
async fn scheduled_429_hits_the_first_and_third_submit_with_retry_after() {
    let (sim, api) = start(SimConfig { faults: plan("submit:429=2s@1,3"), ..stuck_in_queue() }).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = api.post(TEXT, &small_text_input(1)).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "2");
            let body: Value = response.json().await.unwrap();
            assert!(body["detail"].is_string());
        }
    }
    assert_eq!(statuses, vec![429, 200, 429, 200]);
    assert_eq!(sim.counters().jobs.submitted, 2, "a 429 creates no job");
}

#[tokio::test]
async fn server_errors_carry_fal_bodies_and_the_error_type_header() {
    let (sim, api) = start(fast()).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let status_url = submitted["status_url"].as_str().unwrap();
    for (rule, code, error_type) in [
        ("status:500", 500, "internal_error"),
        ("status:502", 502, "runner_disconnected"),
        ("status:503", 503, "runner_scheduling_failure"),
        ("status:504", 504, "request_timeout"),
        ("status:503=runner_disconnected", 503, "runner_disconnected"),
    ] {
        sim.set_faults(plan(rule));
        let response = api.get(status_url).await;
        assert_eq!(response.status(), code, "{rule}");
        assert_eq!(response.headers()["x-fal-error-type"], error_type);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error_type"], error_type);
        assert!(body["detail"].is_string());
    }
    sim.set_faults(FaultPlan::none());
    assert_eq!(api.get(status_url).await.status().as_u16() / 100, 2);
}

#[tokio::test]
async fn rates_hit_some_requests_deterministically() {
    let run = async || {
        let (_sim, api) = start(SimConfig { faults: plan("status:503%30"), ..stuck_in_queue() }).await;
        let submitted = api.submit(TEXT, &small_text_input(1)).await;
        let mut hits = Vec::new();
        for _ in 0..40 {
            hits.push(api.get(submitted["status_url"].as_str().unwrap()).await.status() == 503);
        }
        hits
    };
    let a = run().await;
    assert_eq!(a, run().await, "the same seed hits the same requests");
    let n = a.iter().filter(|&&h| h).count();
    assert!(n > 0 && n < 40, "{n} of 40 at 30%");
}

#[tokio::test]
async fn resets_close_the_connection_without_an_answer() {
    let (sim, api) = start(SimConfig { faults: plan("submit:reset@1; media:reset@1"), ..fast() }).await;
    let error = api.http.post(format!("{}/{TEXT}", api.base)).header("authorization", &api.auth).json(&small_text_input(1)).send().await;
    assert!(error.is_err(), "the first submit gets no answer");
    let output = api.output(TEXT, &small_text_input(1)).await;
    let url = output["images"][0]["url"].as_str().unwrap();
    assert!(api.http.get(url).send().await.is_err(), "the first download gets no answer");
    assert_eq!(api.download(url).await.status(), 200);
    let counters = sim.counters();
    assert_eq!((counters.routes.submit.resets, counters.routes.media.resets), (1, 1));
    assert_eq!(counters.jobs.submitted, 1);
}

#[tokio::test]
async fn stalls_answer_normally_after_the_delay() {
    let (_sim, api) = start(SimConfig { faults: plan("status:stall=300ms@1"), ..stuck_in_queue() }).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let started = Instant::now();
    let response = api.get(submitted["status_url"].as_str().unwrap()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "IN_QUEUE");
}

#[tokio::test]
async fn malformed_answers_are_not_json_and_the_next_is_fine() {
    let (_sim, api) = start(SimConfig { faults: plan("status:malformed@1; media:malformed@1"), ..fast() }).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let text = api.get(submitted["status_url"].as_str().unwrap()).await.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let output = api.output(TEXT, &small_text_input(1)).await;
    let url = output["images"][0]["url"].as_str().unwrap();
    let cut = api.download(url).await.bytes().await;
    assert!(cut.is_err(), "the first download is cut short of its Content-Length");
    let whole = api.download(url).await.bytes().await.unwrap();
    assert!(image::load_from_memory(&whole).is_ok());
}

#[tokio::test]
async fn a_malformed_stream_cuts_its_first_event_only() {
    let (_sim, api) = start(SimConfig { faults: plan("stream:malformed@1"), ..stuck_in_queue() }).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let text = api.stream_cancelled_after(&submitted, "\n\n").await;
    let data: Vec<&str> = text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).collect();
    assert_eq!(data.len(), 2, "{text}");
    assert!(serde_json::from_str::<Value>(data[0]).is_err(), "the first event is cut");
    assert_eq!(serde_json::from_str::<Value>(data[1]).unwrap()["status"], "COMPLETED");
}

#[tokio::test]
async fn result_422_fails_jobs_which_still_end_completed() {
    let (_sim, api) = start(SimConfig { faults: plan("result:422@2"), ..fast() }).await;
    let (_, first) = api.run(TEXT, &small_text_input(1)).await;
    assert_eq!(first.status(), 200);
    let (submitted, second) = api.run(TEXT, &small_text_input(2)).await;
    assert_eq!(second.status(), 422);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));
    assert!(body["detail"][0]["msg"].is_string());
    // The failure is the job's: every result call answers it, and its status is COMPLETED.
    assert_eq!(api.get(submitted["response_url"].as_str().unwrap()).await.status(), 422);
    assert_eq!(api.get(submitted["status_url"].as_str().unwrap()).await.status(), 200);
    let (_, third) = api.run(TEXT, &small_text_input(3)).await;
    assert_eq!(third.status(), 200);
}

#[tokio::test]
async fn every_route_takes_faults() {
    let (sim, api) = start(fast()).await;
    let (submitted, _) = api.run(TEXT, &small_text_input(1)).await;
    let output: Value = api.get(submitted["response_url"].as_str().unwrap()).await.json().await.unwrap();
    let status_url = submitted["status_url"].as_str().unwrap();
    sim.set_faults(plan("stream:504@1; result:500@1; cancel:502@1; media:503@1"));
    assert_eq!(api.get(&format!("{status_url}/stream")).await.status(), 504);
    assert_eq!(api.get(submitted["response_url"].as_str().unwrap()).await.status(), 500);
    assert_eq!(api.put(submitted["cancel_url"].as_str().unwrap()).await.status(), 502);
    assert_eq!(api.download(output["images"][0]["url"].as_str().unwrap()).await.status(), 503);
    assert_eq!(sim.counters().routes.media.faults_injected, 1);
}

#[tokio::test]
async fn the_admin_route_reads_sets_and_clears_faults() {
    let (sim, api) = start(stuck_in_queue()).await;
    let admin = format!("{}/_sim/faults", api.base);
    let set: Value = api.http.post(&admin).json(&json!(["submit:503@1", "status:429%100"])).send().await.unwrap().json().await.unwrap();
    assert_eq!(set, json!({ "rules": ["submit:503@1", "status:429%100"], "spec": "submit:503@1; status:429%100" }));
    assert_eq!(sim.faults().to_string(), "submit:503@1; status:429%100");
    assert_eq!(api.post(TEXT, &small_text_input(1)).await.status(), 503);
    let plain = api.http.post(&admin).body("submit:429@1").send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(api.post(TEXT, &small_text_input(1)).await.status(), 429);
    let bad = api.http.post(&admin).json(&json!(["submit:nope"])).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("submit:nope"));
    let cleared: Value = api.http.delete(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(cleared["rules"], json!([]));
    assert_eq!(api.post(TEXT, &small_text_input(1)).await.status(), 200);
    let read: Value = api.http.get(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["spec"], "");
}

#[tokio::test]
async fn a_stream_reset_closes_without_an_answer() {
    let (_sim, api) = start(SimConfig { faults: plan("stream:reset@1"), ..stuck_in_queue() }).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let url = api.local(&format!("{}/stream", submitted["status_url"].as_str().unwrap()));
    assert!(api.http.get(&url).header("authorization", &api.auth).send().await.is_err());
    let response = api.get(&url).await;
    assert_eq!(response.status(), 200);
    let first = response.bytes_stream().next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
}
