//! falq against fal's own clients, side by side, in one run: `@fal-ai/client` 1.10.1
//! (JavaScript) and `fal-client` 1.0.3 (Python), installed from the registries, and falq,
//! each driving the same number of jobs against a fresh `falq sim` of the same settings.
//! Prints requests and connections per job (as the simulator counted them), client CPU
//! per job, peak RSS and the delay between the simulator completing a job and the client
//! holding its result (p50, p99), per client, and falq's ratios to each. Asserts nothing.
//!
//! `cargo bench -p falq-cli --bench side_by_side`. Knobs: FALQ_SBS_JOBS (200),
//! FALQ_SBS_SERVICE (service times in seconds, "2,4,8"), FALQ_SBS_SLOW_JOBS (1000; 0
//! skips the slow-relay round), FALQ_SBS_CLIENTS ("falq,fal-js,fal-client"), FALQ_SBS_DEBUG
//! (each round's requests per route, and its first errors, on stderr), FALQ_SBS_ROUNDS (1:
//! every client runs each scenario this many times, the order rotating per round; a row
//! prints each figure's median, CPU with its range, and a ratio is the median of the
//! rounds' ratios, with their range: loopback runs on two shared cores vary by a quarter
//! from run to run), FALQ_SBS_HTTPS (1: two more scenarios, stream and no stream at the
//! middle service time, against a simulator serving HTTPS with ALPN offering h2, as real
//! relays do; every client trusts the bench's own authority; 0 skips them), FALQ_SBS_H2=1 (falq
//! speaks HTTP/2 to the simulator, as it would to an HTTPS relay offering it; the peers
//! stay on HTTP/1.1), FALQ_SBS_MT=1 (falq's driver on tokio's multi-threaded runtime, as
//! `#[tokio::main]` gives, instead of the current-thread one the `falq` CLI runs on and
//! fal-js's and fal-client's event loops have).
//!
//! Fairness: every client runs alone against its own simulator process; the order of the
//! clients rotates per scenario. fal-client only speaks https: over plain HTTP it reaches
//! the simulator through `bench/peers/tls_proxy.py` (a separate process, whose CPU is not
//! counted; it adds well under a millisecond per call on loopback), and so pays TLS where
//! the others do not; in the HTTPS scenarios every client reaches the simulator directly.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use falq::{ApiKey, Client, Config, Logs, WaitMode};
use serde_json::Value;

const ENDPOINT: &str = "fal-ai/flux-pro/kontext/text-to-image";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peers_dir() -> PathBuf {
    root().join("target/peers")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process that prints `listening on X` first; answers it and X.
fn start_listening(cmd: &mut Command) -> (Proc, String) {
    let (child, at) = tests::spawn_listening(cmd);
    (Proc(child), at)
}

fn run_ok(cmd: &mut Command, what: &str) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed");
}

/// Installs the two peers from the registries (once).
fn install_peers() {
    let dir = peers_dir();
    if !dir.join("js/node_modules/@fal-ai/client").exists() {
        std::fs::create_dir_all(dir.join("js")).unwrap();
        run_ok(
            Command::new("npm").args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(dir.join("js")).arg("@fal-ai/client@1.10.1"),
            "npm install @fal-ai/client@1.10.1",
        );
    }
    if !dir.join("py/bin/python").exists() {
        run_ok(Command::new("python3").args(["-m", "venv"]).arg(dir.join("py")), "python3 -m venv");
        run_ok(Command::new(dir.join("py/bin/pip")).args(["install", "--quiet", "fal-client==1.0.3"]), "pip install fal-client==1.0.3");
    }
}

struct Scenario {
    name: String,
    jobs: usize,
    service: Duration,
    stream: bool,
    /// The simulator serves HTTPS (ALPN offering h2), as real relays do; every client
    /// trusts the bench's own authority and reaches it directly.
    tls: bool,
    /// Every call of the relay takes this long (a slow relay).
    stall: Option<Duration>,
}

fn start_sim(s: &Scenario, public_url: Option<&str>) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_falq"));
    cmd.args(["sim", "--addr", "127.0.0.1:0", "--mode", "direct", "--queue-delay", "0s", "--result-ttl", "600s"]).args([
        "--run-time",
        &format!("{}ms", s.service.as_millis()),
        "--workers",
        &s.jobs.to_string(),
    ]);
    if let Some(u) = public_url {
        cmd.args(["--public-url", u]);
    }
    if s.tls {
        cmd.arg("--tls-cert").arg(&authority().cert).arg("--tls-key").arg(&authority().key);
    }
    if !s.stream {
        cmd.args(["--fault", "stream:404"]);
    }
    if let Some(d) = s.stall {
        cmd.args(["--fault", &format!("any:stall={}ms", d.as_millis())]);
    }
    start_listening(&mut cmd)
}

#[derive(Default)]
struct Figures {
    held: Vec<(String, u64)>,
    user_s: f64,
    sys_s: f64,
    max_rss_kb: u64,
    errors: usize,
}

/// Runs a driver under `bench/peers/rusage.py` (its CPU time to the microsecond, from the
/// kernel's accounting of the child; GNU time prints it in 10 ms steps, a fifth of falq's
/// whole CPU per job at 200 jobs); its stdout holds one JSON line per job held.
fn measure(cmd: Command) -> Figures {
    let mut timed = Command::new("python3");
    timed.arg(root().join("bench/peers/rusage.py")).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        timed.current_dir(d);
    }
    let mut child = timed.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the driver starts");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    let mut f = Figures::default();
    for line in out.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line)
            && let (Some(id), Some(at)) = (v["request_id"].as_str(), v["held_unix_us"].as_u64())
        {
            f.held.push((id.to_string(), at));
        }
    }
    for line in err.lines() {
        if let Some(rest) = line.strip_prefix("__time ") {
            let p: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if p.len() == 3 {
                (f.user_s, f.sys_s, f.max_rss_kb) = (p[0], p[1], p[2] as u64);
            }
        } else if !line.trim().is_empty() {
            f.errors += 1;
            if f.errors <= 3 && std::env::var_os("FALQ_SBS_DEBUG").is_some() {
                eprintln!("  driver: {line}");
            }
        }
    }
    f
}

/// The median of several rounds' figures.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// ` (min–max)` of several rounds' figures, or nothing for one round.
fn range(v: &[f64], digits: usize) -> String {
    if v.len() < 2 {
        return String::new();
    }
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    format!(" ({lo:.digits$}–{hi:.digits$})")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() { f64::NAN } else { sorted[((sorted.len() - 1) as f64 * p).round() as usize] }
}

struct Row {
    client: &'static str,
    requests_per_job: f64,
    connections_per_job: f64,
    cpu_ms_per_job: f64,
    rss_mb: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: usize,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// The bench's certificate authority, and the certificate it signed for 127.0.0.1: the
/// HTTPS simulator's, and fal-client's TLS front's.
fn authority() -> &'static tests::tls::TestAuthority {
    static A: std::sync::OnceLock<tests::tls::TestAuthority> = std::sync::OnceLock::new();
    A.get_or_init(|| tests::tls::TestAuthority::new("side-by-side"))
}

fn run_client(client: &'static str, s: &Scenario) -> Row {
    // fal-client only speaks https: over plain HTTP it goes through a TLS front, and follows
    // the URLs the server answers, which must then be the front's.
    let front = (client == "fal-client" && !s.tls).then(free_port);
    let (_sim, base) = start_sim(s, front.map(|p| format!("https://127.0.0.1:{p}")).as_deref());
    let jobs = s.jobs.to_string();
    let mut _proxy = None;
    let mut cmd = match client {
        "falq" => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.env("FALQ_SBS_DRIVER", format!("{base} {jobs}"));
            c
        }
        "fal-js" => {
            let mut c = Command::new("node");
            c.arg(root().join("bench/peers/fal_js.mjs")).args([
                base.as_str(),
                ENDPOINT,
                jobs.as_str(),
                if s.stream { "streaming" } else { "polling" },
            ]);
            c.env("NODE_EXTRA_CA_CERTS", &authority().ca);
            c
        }
        _ => {
            let host = match front {
                Some(port) => {
                    let (proxy, port) = start_listening(
                        Command::new(peers_dir().join("py/bin/python"))
                            .arg(root().join("bench/peers/tls_proxy.py"))
                            .arg(&authority().cert)
                            .arg(&authority().key)
                            .arg(base.trim_start_matches("http://"))
                            .arg(port.to_string()),
                    );
                    _proxy = Some(proxy);
                    format!("127.0.0.1:{port}")
                }
                None => base.trim_start_matches("https://").to_string(),
            };
            let mut c = Command::new(peers_dir().join("py/bin/python"));
            c.arg(root().join("bench/peers/fal_py_driver.py")).args([ENDPOINT, &jobs]);
            c.env("FAL_KEY", "bench-key").env("FAL_QUEUE_RUN_HOST", host);
            c
        }
    };
    // Every client trusts the bench's authority (rustls' platform verifier and Python read
    // SSL_CERT_FILE; Node adds NODE_EXTRA_CA_CERTS).
    cmd.env("SSL_CERT_FILE", &authority().ca);
    // fal-js resolves `@fal-ai/client` from the script's own directory: link it there.
    let link = root().join("bench/peers/node_modules");
    if client == "fal-js" && !link.exists() {
        let _ = std::os::unix::fs::symlink(peers_dir().join("js/node_modules"), &link);
    }
    let f = measure(cmd);
    let counters: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let ca = reqwest::Certificate::from_pem(&std::fs::read(&authority().ca).ok()?).ok()?;
            let http = reqwest::Client::builder().tls_certs_only([ca]).build().ok()?;
            http.get(format!("{base}/_sim/counters")).send().await.ok()?.json().await.ok()
        })
        .unwrap_or(Value::Null);
    let routes = &counters["routes"];
    if std::env::var_os("FALQ_SBS_DEBUG").is_some() {
        let per_route: Vec<String> = ["submit", "status", "stream", "result", "cancel"]
            .iter()
            .map(|r| format!("{r} {}", routes[r]["requests"].as_u64().unwrap_or(0)))
            .collect();
        eprintln!("{client}, {}: {}", s.name, per_route.join(", "));
    }
    let requests: u64 =
        ["submit", "status", "stream", "result", "cancel"].iter().map(|r| routes[r]["requests"].as_u64().unwrap_or(0)).sum();
    let mut delays: Vec<f64> = f
        .held
        .iter()
        .filter_map(|(id, at)| counters["per_job"][id]["completed_unix_us"].as_u64().map(|c| (*at as f64 - c as f64) / 1000.0))
        .collect();
    delays.sort_by(|a, b| a.total_cmp(b));
    let n = s.jobs as f64;
    Row {
        client,
        requests_per_job: requests as f64 / n,
        // The bench's own call for the counters is one of them.
        connections_per_job: counters["connections"].as_u64().unwrap_or(0).saturating_sub(1) as f64 / n,
        cpu_ms_per_job: (f.user_s + f.sys_s) * 1000.0 / n,
        rss_mb: f.max_rss_kb as f64 / 1024.0,
        p50_ms: percentile(&delays, 0.5),
        p99_ms: percentile(&delays, 0.99),
        failed: s.jobs - f.held.len(),
    }
}

/// The falq driver (on one thread, as the `falq` CLI runs; FALQ_SBS_MT=1 for two): the
/// same jobs through the falq library, waiting as it does by default
/// (stream, remembering a relay without one), the result fetched as JSON: `finish`, the
/// one call that does what `fal.subscribe` does (wait, then fetch the result).
async fn falq_driver(base: &str, jobs: usize) {
    let mut config = Config::new(base).unwrap().with_key(ApiKey::new("bench-key"));
    config.auth_scheme = falq::AuthScheme::Key;
    config.wait.mode = WaitMode::Stream;
    config.wait.logs = Logs::Omit;
    config.wait.deadline = Some(Duration::from_secs(600));
    if std::env::var("FALQ_SBS_H2").is_ok_and(|v| v == "1") {
        config.http.version = falq::HttpVersion::Http2PriorKnowledge;
    }
    let client = Client::new(config).unwrap();
    let input = serde_json::json!({"prompt": "a lighthouse at dusk"});
    let tasks: Vec<_> = (0..jobs)
        .map(|_| {
            let client = client.clone();
            let input = input.clone();
            tokio::spawn(async move {
                let handle = client.submit_json(ENDPOINT, &input).await?;
                let out: Value = handle.finish(|_| {}).await?;
                let held = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
                drop(out);
                Ok::<_, falq::Error>((handle.request_id.clone(), held))
            })
        })
        .collect();
    for t in tasks {
        match t.await {
            Ok(Ok((id, held))) => println!("{}", serde_json::json!({"request_id": id, "held_unix_us": held})),
            Ok(Err(e)) => eprintln!("{e}"),
            Err(e) => eprintln!("{e}"),
        }
    }
}

fn main() {
    if let Ok(args) = std::env::var("FALQ_SBS_DRIVER") {
        let parts: Vec<&str> = args.split_whitespace().collect();
        let rt = if std::env::var("FALQ_SBS_MT").is_ok_and(|v| v == "1") {
            tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
        };
        rt.block_on(falq_driver(parts[0], parts[1].parse().unwrap()));
        return;
    }
    install_peers();
    let jobs: usize = std::env::var("FALQ_SBS_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let slow_jobs: usize = std::env::var("FALQ_SBS_SLOW_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let services: Vec<f64> =
        std::env::var("FALQ_SBS_SERVICE").unwrap_or_else(|_| "2,4,8".into()).split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let clients: Vec<&'static str> = {
        let wanted = std::env::var("FALQ_SBS_CLIENTS").unwrap_or_else(|_| "falq,fal-js,fal-client".into());
        ["falq", "fal-js", "fal-client"].into_iter().filter(|c| wanted.split(',').any(|w| w.trim() == *c)).collect()
    };
    let https = std::env::var("FALQ_SBS_HTTPS").map_or(true, |v| v != "0");
    let mut scenarios = Vec::new();
    for stream in [false, true] {
        for &s in &services {
            scenarios.push(Scenario {
                name: format!("{jobs} jobs, {s} s, {}", if stream { "stream" } else { "no stream" }),
                jobs,
                service: Duration::from_secs_f64(s),
                stream,
                tls: false,
                stall: None,
            });
        }
    }
    // Over HTTPS, as real relays serve: at the middle service time.
    if let (true, Some(&s)) = (https, services.get(services.len() / 2)) {
        for stream in [false, true] {
            scenarios.push(Scenario {
                name: format!("{jobs} jobs, {s} s, {}, HTTPS", if stream { "stream" } else { "no stream" }),
                jobs,
                service: Duration::from_secs_f64(s),
                stream,
                tls: true,
                stall: None,
            });
        }
    }
    if slow_jobs > 0 {
        scenarios.push(Scenario {
            name: format!("{slow_jobs} jobs, 4 s, no stream, slow relay (40 ms a call)"),
            jobs: slow_jobs,
            service: Duration::from_secs(4),
            stream: false,
            tls: false,
            stall: Some(Duration::from_millis(40)),
        });
    }
    let rounds: usize = std::env::var("FALQ_SBS_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    println!(
        "falq side by side with fal's own clients: each client alone against its own `falq sim` (loopback, 2 cores shared), {rounds} round(s)"
    );
    println!("| scenario | client | requests/job | connections/job | CPU/job | peak RSS | detect p50 | detect p99 | failed |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        // rounds[r][c]: client c's row of round r (in `clients` order).
        let mut by_round: Vec<Vec<Row>> = Vec::new();
        for r in 0..rounds {
            let mut order = clients.clone();
            order.rotate_left((i + r) % clients.len().max(1));
            let mut rows: Vec<Row> = order.iter().map(|c| run_client(c, s)).collect();
            rows.sort_by_key(|row| clients.iter().position(|c| *c == row.client));
            by_round.push(rows);
        }
        for (c, client) in clients.iter().enumerate() {
            let of = |f: fn(&Row) -> f64| median(by_round.iter().map(|rows| f(&rows[c])).collect());
            let cpu: Vec<f64> = by_round.iter().map(|rows| rows[c].cpu_ms_per_job).collect();
            let failed: usize = by_round.iter().map(|rows| rows[c].failed).sum();
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.3} ms{} | {:.1} MB | {:.0} ms | {:.0} ms | {} |",
                s.name,
                client,
                of(|r| r.requests_per_job),
                of(|r| r.connections_per_job),
                median(cpu.clone()),
                range(&cpu, 3),
                of(|r| r.rss_mb),
                of(|r| r.p50_ms),
                of(|r| r.p99_ms),
                failed
            );
        }
        let Some(f) = clients.iter().position(|c| *c == "falq") else { continue };
        for (p, peer) in clients.iter().enumerate().filter(|(p, _)| *p != f) {
            let ratio = |m: fn(&Row) -> f64| -> Vec<f64> { by_round.iter().map(|rows| m(&rows[f]) / m(&rows[p])).collect() };
            let cpu = ratio(|r| r.cpu_ms_per_job);
            ratios.push(format!(
                "| {} | {} | {:.2} | {:.2} | {:.3}{} | {:.2} | {:.2} | {:.2} |",
                s.name,
                peer,
                median(ratio(|r| r.requests_per_job)),
                median(ratio(|r| r.connections_per_job)),
                median(cpu.clone()),
                range(&cpu, 3),
                median(ratio(|r| r.rss_mb)),
                median(ratio(|r| r.p50_ms)),
                median(ratio(|r| r.p99_ms))
            ));
        }
    }
    println!("\nfalq ÷ peer (below 1: falq uses less, or sees completion sooner)");
    println!("| scenario | peer | requests/job | connections/job | CPU/job | peak RSS | detect p50 | detect p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for r in ratios {
        println!("{r}");
    }
}
