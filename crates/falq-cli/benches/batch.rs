//! `falq batch` on a large file against a `falq sim` process of known capacity: the
//! wall time against the simulator's ideal (every worker busy from the first second to
//! the last: ceil(lines / workers) × run time), and the client's CPU and peak RSS.
//! Asserts nothing; prints figures.
//!
//! `cargo bench -p falq-cli --bench batch`. Knobs: FALQ_BATCH_LINES (10000),
//! FALQ_BATCH_WORKERS (64), FALQ_BATCH_RUN_MS (500), FALQ_BATCH_CONCURRENCY (unset:
//! falq's adaptive limit).
//!
//! The simulator runs as its own process (its CPU is not the client's). The client's CPU
//! and peak RSS are read from /proc while it runs (every 50 ms; the peak is VmHWM, which
//! the kernel keeps).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (CPU seconds, peak RSS in KiB) of a running process, from /proc.
fn usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches(" kB").trim().parse().ok()?;
    Some((ticks / 100.0, hwm))
}

fn main() {
    let lines: usize = env_or("FALQ_BATCH_LINES", 10_000);
    let workers: usize = env_or("FALQ_BATCH_WORKERS", 64);
    let run_ms: u64 = env_or("FALQ_BATCH_RUN_MS", 500);
    let concurrency: Option<usize> = std::env::var("FALQ_BATCH_CONCURRENCY").ok().and_then(|v| v.parse().ok());
    let falq = env!("CARGO_BIN_EXE_falq");
    let work = std::env::temp_dir().join(format!("falq-bench-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    let (mut sim, base) =
        tests::spawn_listening(Command::new(falq).args(["sim", "--addr", "127.0.0.1:0", "--queue-delay", "0s", "--seed", "1"]).args([
            "--workers",
            &workers.to_string(),
            "--run-time",
            &format!("{run_ms}ms"),
        ]));

    let mut text = String::with_capacity(lines * 80);
    for i in 0..lines {
        text.push_str(&format!("{{\"prompt\": \"a lighthouse, variation {i}\", \"image_size\": {{\"width\": 64, \"height\": 48}}}}\n"));
    }
    let file = work.join("lines.jsonl");
    std::fs::write(&file, text).unwrap();

    let mut cmd = Command::new(falq);
    cmd.args(["batch", "fal-ai/flux-1/schnell"]).arg(&file).args(["--base-url", &base, "--out"]).arg(work.join("out"));
    if let Some(c) = concurrency {
        cmd.args(["--concurrency", &c.to_string()]);
    }
    cmd.env("FAL_KEY", "bench").env("FALQ_HOME", work.join("home")).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("falq batch starts");
    let pid = child.id();
    let mut last = (0.0, 0);
    loop {
        if let Some(u) = usage(pid) {
            last = u;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = start.elapsed().as_secs_f64();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let _ = sim.kill();
    let _ = sim.wait();

    let manifest = std::fs::read_to_string(work.join("out/manifest.jsonl")).unwrap_or_default();
    let done = manifest.lines().filter(|l| l.contains("\"state\":\"done\"")).count();
    let files = std::fs::read_dir(work.join("out"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("line-")).count())
        .unwrap_or(0);
    let ideal = lines.div_ceil(workers) as f64 * run_ms as f64 / 1000.0;
    let (cpu, rss_kb) = last;
    println!(
        "falq batch: {lines} lines, simulator {workers} workers × {run_ms} ms (capacity {:.0} jobs/s)",
        workers as f64 * 1000.0 / run_ms as f64
    );
    println!("  exit {:?}; {done} lines done, {files} files saved", status.code());
    println!("  wall {wall:.1} s; ideal {ideal:.1} s; wall/ideal {:.3}", wall / ideal);
    println!("  client CPU {cpu:.1} s ({:.2} ms per line); peak RSS {:.1} MB", cpu * 1000.0 / lines as f64, rss_kb as f64 / 1024.0);
    if done != lines {
        println!("  (not every line completed; stderr follows)\n{err}");
    }
    let _ = std::fs::remove_dir_all(Path::new(&work));
}
