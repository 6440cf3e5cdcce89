//! Scale benchmark of the simulator: 10,000 concurrent jobs submitted, awaited and fetched over
//! HTTP on 127.0.0.1, plus status streams and media; prints figures, asserts nothing about time.
//!
//! `cargo bench -p falq-sim --bench sim_scale` (env `JOBS`, `CONCURRENCY`, `STREAMS` to vary).
//! The client runs in the same process and shares the machine's cores with the simulator,
//! so the figures are a floor of what the simulator alone can do.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use falq_sim::{Sim, SimConfig, SimMode, SimTiming};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

const ENDPOINT: &str = "fal-ai/flux-pro/kontext/text-to-image";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or("?".to_string(), |kb| format!("{:.1} MiB", kb / 1024.0))
    };
    format!("RSS {} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", ms(at(0.5)), ms(at(0.99)), ms(at(1.0)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn url(&self, returned: &str) -> String {
        returned.replace("https://queue.fal.run", &self.base)
    }

    async fn submit(&self, seed: usize) -> (Value, Duration) {
        let started = Instant::now();
        let body = self
            .http
            .post(format!("{}/{ENDPOINT}", self.base))
            .header("authorization", "Bearer bench")
            .json(&json!({ "prompt": "a lighthouse at dusk", "seed": seed }))
            .send()
            .await
            .expect("submit answered")
            .json::<Value>()
            .await
            .expect("submit body");
        (body, started.elapsed())
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(self.url(url)).header("authorization", "Bearer bench").send().await.expect("answered")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let jobs = env("JOBS", 10_000);
    let concurrency = env("CONCURRENCY", 256);
    let streams = env("STREAMS", 1_000);
    let config = SimConfig {
        mode: SimMode::Relay,
        timing: SimTiming {
            queue_delay: Duration::from_millis(200),
            run_time: Duration::from_millis(600),
            workers: jobs.max(streams),
            log_lines: 4,
            ..SimTiming::default()
        },
        ..SimConfig::default()
    };
    let sim = Sim::spawn(config).await.expect("the simulator starts");
    let client = &Client { http: reqwest::Client::new(), base: sim.base_url().to_string() };
    println!("falq-sim scale: {jobs} jobs, {concurrency} requests in flight, queue 200 ms + run 600 ms, 2 runtime threads");
    println!("start: {}", memory());

    // 1. Submit every job.
    let started = Instant::now();
    let submitted: Vec<(Value, Duration)> = stream::iter(0..jobs).map(|i| client.submit(i)).buffer_unordered(concurrency).collect().await;
    let submit_time = started.elapsed();
    println!(
        "submit: {jobs} in {:.2} s = {:.0} submits/s; latency {}",
        submit_time.as_secs_f64(),
        per_second(jobs, submit_time),
        percentiles(submitted.iter().map(|(_, d)| *d).collect())
    );
    println!("after submit: {}", memory());

    // 2. Poll every pending job, round after round, until all are completed; fetch each
    //    result as soon as its status reads COMPLETED.
    let mut pending: Vec<Value> = submitted.into_iter().map(|(v, _)| v).collect();
    let mut status_calls = 0usize;
    let mut lags = Vec::with_capacity(jobs);
    let mut result_bytes = 0usize;
    let poll_started = Instant::now();
    while !pending.is_empty() {
        // (the job, and when done: the result's size and when the client held it)
        let round: Vec<(Value, Option<(usize, Instant)>)> = stream::iter(pending.drain(..))
            .map(|job| async move {
                let status: Value = client.get(job["status_url"].as_str().unwrap()).await.json().await.expect("status body");
                if status["status"] != "COMPLETED" {
                    return (job, None);
                }
                let result = client.get(job["response_url"].as_str().unwrap()).await.bytes().await.expect("result body");
                let held = Instant::now();
                (job, Some((result.len(), held)))
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        status_calls += round.len();
        for (job, result) in round {
            match result {
                Some((len, held)) => {
                    result_bytes += len;
                    if let Some(at) = sim.completed_at(job["request_id"].as_str().unwrap()) {
                        lags.push(held.saturating_duration_since(at));
                    }
                }
                None => pending.push(job),
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let all_done = started.elapsed();
    println!(
        "poll: all {jobs} completed and fetched {:.2} s after the first submit ({:.2} s of polling); {status_calls} status calls = {:.0}/s; {:.1} MiB of results",
        all_done.as_secs_f64(),
        poll_started.elapsed().as_secs_f64(),
        per_second(status_calls, poll_started.elapsed()),
        result_bytes as f64 / 1_048_576.0
    );
    println!("poll: completion to output held (50 ms poll rounds): {}", percentiles(lags));
    println!("after poll: {}", memory());

    // 3. Status streams: one open stream per job; the lag from completion to the COMPLETED event.
    let submitted: Vec<Value> =
        stream::iter(0..streams).map(|i| async move { client.submit(i).await.0 }).buffer_unordered(concurrency).collect().await;
    let stream_started = Instant::now();
    let events: Vec<(String, Instant, usize)> = stream::iter(submitted)
        .map(|job| async move {
            let url = format!("{}/stream", job["status_url"].as_str().unwrap());
            let response = client.get(&url).await;
            let mut body = response.bytes_stream();
            let mut text = String::new();
            let mut completed_at = None;
            while let Some(chunk) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")));
                if completed_at.is_none() && text.contains("\"COMPLETED\"") {
                    completed_at = Some(Instant::now());
                }
            }
            let count = text.matches("data: ").count();
            (job["request_id"].as_str().unwrap().to_string(), completed_at.expect("a COMPLETED event"), count)
        })
        .buffer_unordered(streams)
        .collect()
        .await;
    let stream_lags: Vec<Duration> =
        events.iter().filter_map(|(id, seen, _)| sim.completed_at(id).map(|at| seen.saturating_duration_since(at))).collect();
    let event_count: usize = events.iter().map(|(_, _, n)| n).sum();
    println!(
        "stream: {streams} concurrent streams closed after COMPLETED within {:.2} s, {event_count} events; completion to event: {}",
        stream_started.elapsed().as_secs_f64(),
        percentiles(stream_lags)
    );

    // 4. Media: drawn on first download (1024x1024 JPEG here), cached after.
    let some: Vec<String> = events.iter().take(20).map(|(id, _, _)| id.clone()).collect();
    let mut urls = Vec::new();
    for id in &some {
        let output: Value = client.get(&format!("https://queue.fal.run/fal-ai/flux-pro/requests/{id}")).await.json().await.expect("output");
        urls.push(output["images"][0]["url"].as_str().unwrap().to_string());
    }
    let mut first = Vec::new();
    let mut again = Vec::new();
    let mut sizes = HashMap::new();
    for url in &urls {
        let t = Instant::now();
        let bytes = client.http.get(url).send().await.expect("media").bytes().await.expect("media body");
        first.push(t.elapsed());
        *sizes.entry(bytes.len() / 1024).or_insert(0) += 1;
        let t = Instant::now();
        client.http.get(url).send().await.expect("media").bytes().await.expect("media body");
        again.push(t.elapsed());
    }
    let mean_kib = sizes.iter().map(|(k, n)| k * n).sum::<usize>() / urls.len().max(1);
    println!("media: first download (draw + encode) {}; cached {}; ~{mean_kib} KiB each", percentiles(first), percentiles(again));

    let counters = sim.counters();
    println!(
        "end: {}; jobs kept {} (submitted {}, completed {}); bytes sent: submit {:.1} MiB, status {:.1} MiB, stream {:.1} MiB, result {:.1} MiB",
        memory(),
        counters.per_job.len(),
        counters.jobs.submitted,
        counters.jobs.completed,
        counters.routes.submit.bytes_sent as f64 / 1_048_576.0,
        counters.routes.status.bytes_sent as f64 / 1_048_576.0,
        counters.routes.stream.bytes_sent as f64 / 1_048_576.0,
        counters.routes.result.bytes_sent as f64 / 1_048_576.0,
    );
    sim.shutdown().await;
}
