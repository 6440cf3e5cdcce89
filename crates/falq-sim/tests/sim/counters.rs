//! Counters per route and per job, from the library and over the admin route.

use falq_sim::Counters;
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn counters_count_requests_bytes_and_jobs() {
    let (sim, api) = start(fast()).await;
    let (submitted, result) = api.run(TEXT, &small_text_input(1)).await;
    let output: Value = result.json().await.unwrap();
    let image = api.download(output["images"][0]["url"].as_str().unwrap()).await.bytes().await.unwrap();
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(api.post("fal-ai/unknown", &small_text_input(1)).await.status(), 404);

    let counters = sim.counters();
    assert_eq!(counters.routes.submit.requests, 1);
    assert_eq!(counters.routes.submit.responses.get(&200), Some(&1));
    assert!(counters.routes.status.requests >= 1);
    assert_eq!(counters.routes.result.requests, 1);
    assert_eq!(counters.routes.media.requests, 1);
    assert_eq!(counters.routes.media.bytes_sent, image.len() as u64);
    assert_eq!(counters.routes.other.responses.get(&404), Some(&1));
    assert_eq!((counters.jobs.submitted, counters.jobs.completed, counters.jobs.succeeded), (1, 1, 1));
    assert_eq!((counters.jobs.in_queue, counters.jobs.in_progress), (0, 0));
    let job = &counters.per_job[id];
    assert_eq!(job.endpoint, TEXT);
    assert_eq!(job.status, "COMPLETED");
    assert_eq!((job.submits, job.result_requests, job.media_requests), (1, 1, 1));
    assert_eq!(job.status_requests, counters.routes.status.requests);
    let route_bytes = counters.routes.submit.bytes_sent
        + counters.routes.status.bytes_sent
        + counters.routes.result.bytes_sent
        + counters.routes.media.bytes_sent;
    assert_eq!(job.bytes_sent, route_bytes);

    // The admin route answers the same snapshot (plus itself), and can leave out the jobs.
    let over_http: Counters = api.http.get(format!("{}/_sim/counters", api.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http.per_job, counters.per_job);
    assert_eq!(over_http.routes.submit, counters.routes.submit);
    assert_eq!(over_http.routes.admin.requests, 1);
    let light: Value = api.http.get(format!("{}/_sim/counters?per_job=0", api.base)).send().await.unwrap().json().await.unwrap();
    assert!(light.get("per_job").is_none());
    assert_eq!(light["jobs"]["submitted"], 1);
}

#[tokio::test]
async fn streams_count_their_bytes_as_they_send_them() {
    let (sim, api) = start(fast()).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let text = api.get(&format!("{}/stream", submitted["status_url"].as_str().unwrap())).await.text().await.unwrap();
    let counters = sim.counters();
    assert_eq!(counters.routes.stream.requests, 1);
    assert_eq!(counters.routes.stream.bytes_sent, text.len() as u64);
    assert_eq!(counters.per_job[submitted["request_id"].as_str().unwrap()].stream_requests, 1);
}
