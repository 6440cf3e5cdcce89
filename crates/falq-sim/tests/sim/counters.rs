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

#[tokio::test]
async fn open_status_streams_are_counted_while_open_with_their_peak() {
    // Jobs that run until cancelled: the streams stay open as long as the test says.
    let (sim, api) = start(stuck_in_progress()).await;
    let mut jobs = Vec::new();
    for n in 0..3 {
        jobs.push(api.submit(TEXT, &small_text_input(n)).await);
    }
    let readers: Vec<_> = jobs
        .iter()
        .map(|job| {
            let request =
                api.http.get(api.local(&format!("{}/stream", job["status_url"].as_str().unwrap()))).header("authorization", &api.auth);
            tokio::spawn(async move { request.send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    let until = async |what: &str, cond: &dyn Fn(&Counters) -> bool| {
        for _ in 0..3000 {
            if cond(&sim.counters()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("never {what}: {:?}", sim.counters().routes.stream);
    };
    until("three streams open", &|c| c.routes.stream.open == 3).await;
    assert_eq!(sim.counters().routes.stream.peak_open, 3);
    for job in &jobs {
        api.put(job["cancel_url"].as_str().unwrap()).await;
    }
    for r in readers {
        assert!(r.await.unwrap().contains("COMPLETED"), "a cancelled job's stream ends COMPLETED");
    }
    until("every stream closed", &|c| c.routes.stream.open == 0).await;
    let counters = sim.counters();
    assert_eq!(counters.routes.stream.peak_open, 3, "the peak stays");
    assert_eq!(counters.routes.status.peak_open, 0, "a status call is answered at once");
}

#[tokio::test]
async fn connections_are_counted_as_accepted_whatever_they_carry() {
    let (sim, api) = start(fast()).await;
    assert_eq!(sim.counters().connections, 0);
    // Connections that each carry one call (however many a client's pool would reuse),
    // and one that carries nothing before it closes.
    for n in 1..=3u64 {
        let one_call = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let status = one_call.get(format!("{}/_sim/counters", api.base)).send().await.unwrap().status();
        assert_eq!(status, 200);
        assert_eq!(sim.counters().connections, n);
    }
    drop(tokio::net::TcpStream::connect(sim.local_addr()).await.unwrap());
    let mut counted = 0;
    for _ in 0..3000 {
        counted = sim.counters().connections;
        if counted == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(counted, 4, "a connection that carried nothing is one too");
    // A client that keeps its connection open reuses it: many calls, one connection more.
    let keeps = reqwest::Client::new();
    for _ in 0..5 {
        keeps.get(format!("{}/_sim/counters", api.base)).send().await.unwrap().bytes().await.unwrap();
    }
    assert_eq!(sim.counters().connections, 5);
    let over_http: Counters = keeps.get(format!("{}/_sim/counters", api.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http.connections, 5);
}
