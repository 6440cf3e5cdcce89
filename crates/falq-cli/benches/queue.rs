//! The queue layer under load: 1,000 and 10,000 concurrent jobs of a fixed service time
//! against `falq sim` (its own process), in both wait modes. Prints figures; asserts nothing.
//!
//! `cargo bench -p falq-cli --bench queue`. Knobs: FALQ_BENCH_SIZES=1000 (a quick run),
//! FALQ_BENCH_IN_FLIGHT=N (the client's `max_in_flight`), FALQ_BENCH_CEILING=N (its
//! `max_in_flight_ceiling`), FALQ_BENCH_STREAMS=N (its `max_streams`),
//! FALQ_BENCH_CONNECTIONS=N (its `max_connections`), FALQ_BENCH_DEBUG=1 (on stderr: the
//! simulator's route counters, each failure, and the peaks of open descriptors and of RSS
//! and when they came; with FALQ_BENCH_SERIES=1, both every 100 ms), FALQ_BENCH_SIZES_OF=1
//! (the sizes of the handle's futures).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use falq::{ApiKey, Client, Config, Logs, WaitMode, endpoints, types};
use serde_json::Value;

const SERVICE_TIME: Duration = Duration::from_secs(1);

struct Sim {
    child: Child,
    base_url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(workers: usize) -> Sim {
    let (child, base_url) = tests::spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_falq")).args(["sim", "--addr", "127.0.0.1:0", "--mode", "direct", "--queue-delay", "0s"]).args([
            "--run-time",
            &format!("{}ms", SERVICE_TIME.as_millis()),
            "--workers",
            &workers.to_string(),
            "--result-ttl",
            "600s",
        ]),
    );
    Sim { child, base_url }
}

fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Samples this process's open descriptors (its connections, mostly) and resident size
/// every 20 ms until told to stop, then prints the peaks and when they came (stderr).
fn sample_in_background(started: Instant) -> Arc<std::sync::atomic::AtomicBool> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let told = stop.clone();
    std::thread::spawn(move || {
        let (mut fds, mut fds_at, mut rss, mut rss_at, mut fds_at_rss) = (0, 0, 0, 0, 0);
        let series = std::env::var_os("FALQ_BENCH_SERIES").is_some();
        let mut printed = None;
        while !told.load(std::sync::atomic::Ordering::Relaxed) {
            let n = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
            let r = status_kb("VmRSS:");
            let at = started.elapsed().as_millis();
            if n > fds {
                (fds, fds_at) = (n, at);
            }
            if r > rss {
                (rss, rss_at, fds_at_rss) = (r, at, n);
            }
            if series && printed.is_none_or(|p| at >= p + 100) {
                printed = Some(at);
                eprintln!(
                    "{at:>5} ms {:>6.1} MB {n:>4} fds anon {} file {}",
                    r as f64 / 1024.0,
                    status_kb("RssAnon:"),
                    status_kb("RssFile:")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "peak descriptors {fds} at {fds_at} ms; peak RSS {:.1} MB at {rss_at} ms with {fds_at_rss} descriptors",
            rss as f64 / 1024.0
        );
    });
    stop
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn one_round(jobs: usize, mode: WaitMode, http: falq::HttpVersion) -> String {
    let sim = start_sim(jobs);
    let mut config = Config::new(&sim.base_url).unwrap().with_key(ApiKey::new("bench"));
    config.auth_scheme = falq::AuthScheme::Key;
    config.wait.mode = mode;
    config.wait.deadline = Some(Duration::from_secs(300));
    config.wait.logs = Logs::Omit;
    config.http.version = http;
    if let Some(n) = std::env::var("FALQ_BENCH_IN_FLIGHT").ok().and_then(|n| n.parse().ok()) {
        config.http.max_in_flight = n;
    }
    if let Some(n) = std::env::var("FALQ_BENCH_CEILING").ok().and_then(|n| n.parse().ok()) {
        config.http.max_in_flight_ceiling = n;
    }
    if let Some(n) = std::env::var("FALQ_BENCH_STREAMS").ok().and_then(|n| n.parse().ok()) {
        config.http.max_streams = Some(n);
    }
    if let Some(n) = std::env::var("FALQ_BENCH_CONNECTIONS").ok().and_then(|n| n.parse().ok()) {
        config.http.max_connections = Some(n);
    }
    let client = Client::new(config).unwrap();
    let input: types::FluxProKontextTextToImageInput =
        serde_json::from_value(serde_json::json!({"prompt": "a lighthouse at dusk"})).unwrap();
    let input = Arc::new(input);
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let sampler = std::env::var_os("FALQ_BENCH_DEBUG").map(|_| sample_in_background(started));
    if std::env::var_os("FALQ_BENCH_SIZES_OF").is_some() {
        let h = client.handle("fal-ai/flux-pro/kontext/text-to-image", "x").unwrap();
        eprintln!(
            "finish future: {} B, wait future: {} B, submit future: {} B, status: {} B, result: {} B, cancel: {} B",
            std::mem::size_of_val(&h.finish::<Value>(|_| {})),
            std::mem::size_of_val(&h.wait(|_| {})),
            std::mem::size_of_val(&client.submit::<endpoints::FluxProKontextTextToImage>(&input)),
            std::mem::size_of_val(&h.status(Logs::Omit)),
            std::mem::size_of_val(&h.result_json()),
            std::mem::size_of_val(&h.cancel()),
        );
    }
    let tasks: Vec<_> = (0..jobs)
        .map(|_| {
            let client = client.clone();
            let input = input.clone();
            tokio::spawn(async move {
                let handle = client.submit::<endpoints::FluxProKontextTextToImage>(&input).await?;
                let out: Value = handle.finish(|_| {}).await?;
                let held = unix_us();
                drop(out);
                Ok::<_, falq::Error>((handle.request_id.clone(), held))
            })
        })
        .collect();
    let mut held = Vec::with_capacity(jobs);
    let mut failures = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(x)) => held.push(x),
            Ok(Err(e)) => {
                if std::env::var_os("FALQ_BENCH_DEBUG").is_some() {
                    eprintln!("failed: {e}");
                }
                failures += 1
            }
            Err(_) => failures += 1,
        }
    }
    let wall = started.elapsed();
    let cpu = cpu_seconds() - cpu0;
    // The client's peak, before the benchmark's own bookkeeping (the simulator's per-job
    // counters, parsed below) adds to it.
    let peak_kb = status_kb("VmHWM:");
    if let Some(sampler) = sampler {
        sampler.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let counters: Value = reqwest::get(format!("{}/_sim/counters", sim.base_url)).await.unwrap().json().await.unwrap();
    let routes = &counters["routes"];
    if std::env::var_os("FALQ_BENCH_DEBUG").is_some() {
        eprintln!("{}", serde_json::to_string(routes).unwrap());
    }
    let requests: u64 =
        ["submit", "status", "stream", "result", "cancel"].iter().map(|r| routes[r]["requests"].as_u64().unwrap_or(0)).sum();
    let mut delays: Vec<f64> = held
        .iter()
        .filter_map(|(id, at)| counters["per_job"][id]["completed_unix_us"].as_u64().map(|c| (*at as f64 - c as f64) / 1000.0))
        .collect();
    delays.sort_by(|a, b| a.total_cmp(b));
    format!(
        "| {jobs:>6} | {:<6} | {:<8} | {:>7.2} s | {:>5.2} | {:>7.1} µs | {:>6.1} MB | {:>7.2} ms | {:>7.2} ms | {failures} |",
        if mode == WaitMode::Stream { "stream" } else { "poll" },
        if http == falq::HttpVersion::Http2PriorKnowledge { "HTTP/2" } else { "HTTP/1.1" },
        wall.as_secs_f64(),
        requests as f64 / jobs as f64,
        cpu / jobs as f64 * 1e6,
        peak_kb as f64 / 1024.0,
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
    )
}

fn main() {
    // Each round runs in a process of its own, so its peak RSS is its own.
    if let Ok(round) = std::env::var("FALQ_BENCH_ROUND") {
        let parts: Vec<&str> = round.split(':').collect();
        let mode = if parts[1] == "stream" { WaitMode::Stream } else { WaitMode::Poll };
        let http = if parts[2] == "h2" { falq::HttpVersion::Http2PriorKnowledge } else { falq::HttpVersion::Negotiate };
        // One thread, as the `falq` CLI runs its client commands.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        println!("{}", rt.block_on(one_round(parts[0].parse().expect("a job count"), mode, http)));
        return;
    }
    let sizes: Vec<usize> = std::env::var("FALQ_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10_000]);
    println!("falq queue benchmark: fixed service time {} ms, falq sim in its own process on loopback", SERVICE_TIME.as_millis());
    println!("| jobs | wait | HTTP | wall | requests/job | client CPU/job | peak RSS (client) | delay p50 | delay p99 | failed |");
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let me = std::env::current_exe().expect("this benchmark's path");
    for &jobs in &sizes {
        for mode in ["stream", "poll"] {
            for http in ["h1", "h2"] {
                let out = Command::new(&me)
                    .env("FALQ_BENCH_ROUND", format!("{jobs}:{mode}:{http}"))
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("a round runs");
                print!("{}", String::from_utf8_lossy(&out.stdout));
            }
        }
    }
    println!("delay: from the simulator completing a job to the caller holding its output (wall clocks of two processes on one machine).");
}
