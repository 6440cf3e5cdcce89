//! Cost, end to end against a `falq sim` process: a price table the user keeps, what a
//! batch or a run would cost (`--dry-run`, nothing sent), a cap never passed however many
//! jobs are in flight (`--max-cost`), the same command with a higher cap sending only the
//! rest, and the spend accounted in the manifest, the summary and `falq jobs`, with the
//! units the relay billed (`x-fal-billable-units`).

use serde_json::{Value, json};

mod common;
use common::*;

const DEV: &str = "fal-ai/flux-1/dev";

fn prices(home: &Scratch) -> String {
    let path = home.path("prices.toml");
    std::fs::write(&path, format!("currency = \"USD\"\n\n[\"{DEV}\"]\nper_unit = 0.025\nunit = \"num_images\"\n")).unwrap();
    path.display().to_string()
}

/// `n` lines asking `images` small images each.
fn lines(home: &Scratch, name: &str, n: usize, images: u64) {
    let text: String = (0..n)
        .map(|i| {
            json!({"prompt": format!("a kite #{i}"), "num_images": images, "image_size": {"width": 64, "height": 48}}).to_string() + "\n"
        })
        .collect();
    std::fs::write(home.path(name), text).unwrap();
}

fn manifest(home: &Scratch, out: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(home.path(out).join("manifest.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn submitted(sim: &SimProcess) -> u64 {
    sim.counters()["jobs"]["submitted"].as_u64().unwrap()
}

#[test]
fn a_batch_is_priced_before_capped_while_and_accounted_after() {
    let home = Scratch::new("cost-batch");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "20ms"]);
    let table = prices(&home);
    lines(&home, "in.jsonl", 20, 2);
    let batch = |extra: &[&str]| {
        let mut c = falq(&home);
        c.args(["batch", DEV, "in.jsonl", "--base-url", &sim.base_url, "--out", "outs", "--prices", &table])
            .args(extra)
            .env("FAL_KEY", "k");
        run(&mut c)
    };
    // Before: what it would cost; nothing sent, nothing written.
    let (code, out, err) = batch(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("to send: 20 job(s)"), "{out}");
    assert!(out.contains("fal-ai/flux-1/dev: 20 job(s), 40 num_images, 1.00 USD"), "{out}");
    assert_eq!(submitted(&sim), 0);
    assert!(!home.path("outs").exists(), "a dry run writes nothing");
    let (code, out, _) = batch(&["--dry-run", "--max-cost", "0.50"]);
    assert_eq!(code, 6);
    assert!(out.contains("10 of the 20 job(s) would be sent") && out.contains("--max-cost 1.00 would send them all"), "{out}");
    assert_eq!(submitted(&sim), 0);
    // While: the cap stops it at exactly 10 lines, and says what would finish them.
    let (code, _, err) = batch(&["--max-cost", "0.50"]);
    assert_eq!(code, 6, "{err}");
    assert_eq!(submitted(&sim), 10, "{err}");
    assert!(err.contains("the cost cap stopped it: 10 line(s) not sent"), "{err}");
    assert!(err.contains("--max-cost 1.00 would finish them"), "{err}");
    let m = manifest(&home, "outs");
    assert_eq!(m.iter().filter(|r| r["state"] == "done").count(), 10);
    assert_eq!(m.iter().filter(|r| r["state"] == "queued").count(), 10);
    // The same command with a higher cap sends only the rest, none twice.
    let (code, _, err) = batch(&["--max-cost", "1.00"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(submitted(&sim), 20, "the other 10 only: {err}");
    assert!(err.contains("total: 1.00 USD"), "{err}");
    // After: the manifest accounts for 1.00, and the units the relay billed.
    let m = manifest(&home, "outs");
    assert!(m.iter().all(|r| r["state"] == "done"), "{m:?}");
    let total: f64 = m.iter().map(|r| r["cost"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    assert!(m.iter().all(|r| r["billed_units"] == 2.0 && r["units"] == 2.0 && r["unit"] == "num_images"), "{m:?}");
    let ids: std::collections::BTreeSet<&str> = m.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 20);
    // `falq jobs` shows each job's cost and the spend per endpoint and in all.
    let (code, out, err) = run(falq(&home).args(["jobs"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("fal-ai/flux-1/dev: 20 job(s), 40 num_images, 1.00 (billed: 40 units)"), "{out}");
    let listed = jobs(&home);
    assert!((listed.iter().map(|j| j["cost"].as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-9, "{listed:?}");
    // Once finished, a higher cap sends nothing.
    let (code, _, err) = batch(&["--max-cost", "5"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(submitted(&sim), 20);
}

#[test]
fn a_cap_is_never_passed_with_64_jobs_in_flight() {
    let home = Scratch::new("cost-inflight");
    // Jobs run long enough that 64 are in flight together.
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "1500ms", "--workers", "64"]);
    let table = prices(&home);
    lines(&home, "in.jsonl", 150, 1);
    // 0.025 a line: 2.00 allows exactly 80.
    let (code, _, err) = run(falq(&home)
        .args(["batch", DEV, "in.jsonl", "--base-url", &sim.base_url, "--prices", &table, "--concurrency", "64", "--max-cost", "2.00"])
        .env("FAL_KEY", "k"));
    assert_eq!(code, 6, "{err}");
    let counters = sim.counters();
    assert_eq!(counters["jobs"]["submitted"], 80, "{counters}");
    let m = manifest(&home, "out/in");
    let spent: f64 = m.iter().filter_map(|r| r["cost"].as_f64()).sum();
    assert!(spent <= 2.0 + 1e-9, "{spent}");
    assert!(err.contains("70 line(s) not sent") && err.contains("--max-cost 3.75 would finish them"), "{err}");
    // Many were in flight at once: sent before the first one was done.
    let journal = std::fs::read_to_string(home.path("home/journal.jsonl")).unwrap();
    let entries: Vec<Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let at = |event: &str| entries.iter().filter(|e| e["event"] == event).map(|e| e["at"].as_u64().unwrap()).collect::<Vec<_>>();
    let first_done = at("done").into_iter().min().unwrap();
    let in_flight = at("submitted").into_iter().filter(|t| *t < first_done).count();
    assert!(in_flight >= 16, "{in_flight} in flight together");
}

#[test]
fn a_run_is_priced_refused_over_its_cap_and_reports_what_it_cost() {
    let home = Scratch::new("cost-run");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "10ms"]);
    let table = prices(&home);
    let run_dev = |extra: &[&str]| {
        let mut c = falq(&home);
        c.args(["run", DEV, "--set", "prompt=a kite", "--set", "num_images=3", "--set", "image_size={\"width\":64,\"height\":48}"])
            .args(["--base-url", &sim.base_url, "--prices", &table])
            .args(extra)
            .env("FAL_KEY", "k");
        run(&mut c)
    };
    let (code, out, err) = run_dev(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dry run: nothing was sent") && out.contains("cost: 3 num_images × 0.025 = 0.075 USD"), "{out}");
    assert!(out.contains("\"num_images\": 3"), "what would be sent: {out}");
    let (code, _, err) = run_dev(&["--max-cost", "0.07"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("above --max-cost 0.07 USD") && err.contains("nothing was sent"), "{err}");
    assert_eq!(submitted(&sim), 0);
    assert!(jobs(&home).is_empty(), "nothing journaled");
    let (code, out, err) = run_dev(&["--max-cost", "0.075", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cost"]["estimated"], 0.075);
    assert_eq!(v["cost"]["billed_units"], 3.0);
    assert_eq!(submitted(&sim), 1);
    let listed = jobs(&home);
    assert_eq!((listed[0]["cost"].clone(), listed[0]["billed_units"].clone()), (json!(0.075), json!(3.0)));
    // An unpriced endpoint cannot be capped; one with a price never needs a table to run.
    let (code, _, err) = run(falq(&home)
        .args(["run", "fal-ai/flux-1/schnell", "--set", "prompt=a", "--base-url", &sim.base_url, "--prices", &table, "--max-cost", "1"])
        .env("FAL_KEY", "k"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fal-ai/flux-1/schnell is unpriced") && err.contains("nothing was sent"), "{err}");
    assert_eq!(submitted(&sim), 1);
}

#[test]
fn a_malformed_price_table_is_refused_with_its_line_before_anything_is_sent() {
    let home = Scratch::new("cost-bad-table");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "10ms"]);
    std::fs::create_dir_all(home.path("home")).unwrap();
    // The default table, in FALQ_HOME.
    std::fs::write(home.path("home/prices.toml"), format!("[\"{DEV}\"]\nper_unit = 0.025\nunit = \"images\"\n")).unwrap();
    lines(&home, "in.jsonl", 2, 1);
    let (code, _, err) = run(falq(&home).args(["batch", DEV, "in.jsonl", "--base-url", &sim.base_url]).env("FAL_KEY", "k"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("prices.toml:1: fal-ai/flux-1/dev: unit \"images\" is no field of its input"), "{err}");
    let (code, _, err) =
        run(falq(&home).args(["run", DEV, "--set", "prompt=a", "--max-cost", "1,5", "--base-url", &sim.base_url]).env("FAL_KEY", "k"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"1,5\" is not an amount"), "{err}");
    assert_eq!(submitted(&sim), 0);
}
