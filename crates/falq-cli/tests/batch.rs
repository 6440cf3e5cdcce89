//! `falq batch` end to end, the real binary against a `falq sim` process: bad lines are
//! found before anything is sent, a batch killed half way (`kill -9`) and run again
//! gives every output exactly once and never sends a line twice, `falq resume` finishes
//! batches, and the manifest and the contact sheet say what happened to every line.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};

mod common;
use common::*;

const SCHNELL: &str = "fal-ai/flux-1/schnell";

/// `n` valid lines (small images, so the simulator draws fast) and one invalid line, 4th.
fn write_lines(home: &Scratch, name: &str, n: usize) -> usize {
    let mut text = String::new();
    let mut lines = 0;
    for i in 0..n {
        if i == 3 {
            text.push_str("{\"prompt\": \"too many\", \"num_images\": 99}\n");
            lines += 1;
        }
        text.push_str(&json!({"prompt": format!("a lighthouse #{i}"), "image_size": {"width": 64, "height": 48}}).to_string());
        text.push('\n');
        lines += 1;
    }
    std::fs::write(home.path(name), text).unwrap();
    lines
}

fn manifest(home: &Scratch, out: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(home.path(out).join("manifest.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn images_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpeg") || n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    names.sort();
    names
}

#[test]
fn bad_lines_are_reported_by_number_and_strict_stops_before_sending() {
    let home = Scratch::new("batch-strict");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "10ms"]);
    write_lines(&home, "in.jsonl", 5);
    let (code, _, err) = run(falq(&home).args(["batch", SCHNELL, "in.jsonl", "--base-url", &sim.base_url, "--strict"]).env("FAL_KEY", "k"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 4: num_images: 99 is greater than the maximum of 4"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert_eq!(sim.counters()["routes"]["submit"]["requests"], 0);
    // Without --strict the bad line is skipped, the others run, and the exit code says a line failed.
    let (code, _, err) = run(falq(&home).args(["batch", SCHNELL, "in.jsonl", "--base-url", &sim.base_url]).env("FAL_KEY", "k"));
    assert_eq!(code, 3, "{err}");
    let m = manifest(&home, "out/in");
    assert_eq!(m.len(), 6);
    assert_eq!(m[3]["state"], "invalid");
    assert_eq!(m.iter().filter(|r| r["state"] == "done").count(), 5);
    assert_eq!(sim.counters()["jobs"]["submitted"], 5);
}

#[test]
fn a_batch_killed_half_way_finishes_with_every_output_exactly_once() {
    let home = Scratch::new("batch-kill");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "150ms", "--workers", "3"]);
    let lines = write_lines(&home, "in.jsonl", 30);
    let batch = |home: &Scratch| {
        let mut c = falq(home);
        c.args(["batch", SCHNELL, "in.jsonl", "--base-url", &sim.base_url, "--out", "outs", "--concurrency", "4"]).env("FAL_KEY", "k");
        c
    };
    let mut child = batch(&home).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let journal = home.path("home/journal.jsonl");
    wait_for("a third of the batch", || std::fs::read_to_string(&journal).is_ok_and(|t| t.matches("\"event\":\"done\"").count() >= 10));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let done_before = std::fs::read_to_string(&journal).unwrap().matches("\"event\":\"done\"").count();
    assert!(done_before < lines - 1, "killed half way, not at the end ({done_before} done)");
    let (code, _, err) = run(&mut batch(&home));
    assert_eq!(code, 3, "one invalid line: {err}");
    let m = manifest(&home, "outs");
    assert_eq!(m.len(), lines, "a manifest line per input line");
    let done: Vec<&Value> = m.iter().filter(|r| r["state"] == "done").collect();
    let maybe = m.iter().filter(|r| r["state"] == "maybe-submitted").count();
    // A kill between sending a line and journaling its answer leaves it maybe-submitted:
    // reported, never sent again. Every other valid line is done.
    assert_eq!(done.len() + maybe, lines - 1, "{m:?}");
    assert!(maybe <= 4, "at most the lines in flight at the kill");
    // Every done line has exactly its own file, named by its line, and nothing else is there.
    let expected: BTreeSet<String> = done.iter().map(|r| r["files"][0].as_str().unwrap().to_string()).collect();
    for r in &done {
        let line = r["line"].as_u64().unwrap();
        assert_eq!(r["files"].as_array().unwrap().len(), 1);
        assert!(r["files"][0].as_str().unwrap().starts_with(&format!("line-{line:04}-0.")), "{r}");
        assert!(r["seed"].is_i64() || r["seed"].is_u64(), "{r}");
    }
    assert_eq!(images_in(&home.path("outs")).into_iter().collect::<BTreeSet<_>>(), expected, "every output exactly once");
    // Never sent twice: the simulator saw one submit per job, at most one job per line.
    let counters = sim.counters();
    let submitted = counters["jobs"]["submitted"].as_u64().unwrap() as usize;
    assert!(submitted >= done.len() && submitted <= done.len() + maybe, "{submitted} jobs for {} done lines: {counters}", done.len());
    let ids: BTreeSet<&str> = done.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), done.len(), "a request id per line");
    // Once finished, the same command again sends nothing.
    let (code, _, err) = run(&mut batch(&home));
    assert_eq!(code, 3, "{err}");
    assert_eq!(sim.counters()["jobs"]["submitted"].as_u64().unwrap() as usize, submitted, "nothing sent again: {err}");
    let html = std::fs::read_to_string(home.path("outs/index.html")).unwrap();
    assert_eq!(html.matches("<img ").count(), done.len(), "the contact sheet shows every output");
    assert!(!html.contains("http-equiv=\"refresh\""), "a finished sheet stays still");
}

#[test]
fn resume_finishes_a_batch_and_standard_input_and_csv_work() {
    let home = Scratch::new("batch-resume");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "300ms", "--workers", "2"]);
    let csv = "prompt,seed\n\"a fox, at dusk\",1\na whale,2\n\"two\nlines\",3\na tree,\na cat,5\na dog,6\n";
    let mut child = falq(&home)
        .args(["batch", SCHNELL, "-", "--base-url", &sim.base_url, "--out", "sheet", "--set", "num_images=2", "--concurrency", "2"])
        .env("FAL_KEY", "k")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(csv.as_bytes()).unwrap();
    }
    let journal = home.path("home/journal.jsonl");
    wait_for("the first line sent", || std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"event\":\"submitted\"")));
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, _, err) = run(falq(&home).args(["resume"]).env("FAL_KEY", "k"));
    let m = manifest(&home, "sheet");
    assert_eq!(m.iter().map(|r| r["line"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3, 4, 6, 7, 8], "CSV records by their first line");
    let states: BTreeSet<&str> = m.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert!(states.iter().all(|s| *s == "done" || *s == "maybe-submitted"), "{states:?}: {err}");
    assert_eq!(code, if states.contains("maybe-submitted") { 3 } else { 0 }, "{err}");
    let first = m.iter().find(|r| r["line"] == 2 && r["state"] == "done");
    if let Some(first) = first {
        assert_eq!(first["files"].as_array().unwrap().len(), 2, "--set num_images=2 reached every line");
        assert_eq!(first["seed"], 1);
    }
    assert!(home.path("sheet/input.csv").is_file(), "standard input is kept for resume");
    // A line killed between its intent and its request id stays maybe-submitted (reported,
    // exit 3) until settled; nothing else is left.
    let (code, _, err) = run(falq(&home).args(["resume"]).env("FAL_KEY", "k"));
    assert_eq!(code, if states.contains("maybe-submitted") { 3 } else { 0 }, "{err}");
    assert!(err.contains("no pending jobs") && !err.contains("finishing the batch"), "a finished batch is not run again: {err}");
}

#[test]
fn the_simulator_runs_a_batch_offline() {
    let home = Scratch::new("batch-sim");
    let lines = write_lines(&home, "in.jsonl", 4);
    let (code, _, err) = run(falq(&home).args(["batch", SCHNELL, "in.jsonl", "--sim", "--wait", "poll"]));
    assert_eq!(code, 3, "{err}");
    let m = manifest(&home, "out/in");
    assert_eq!(m.len(), lines);
    assert_eq!(images_in(&home.path("out/in")).len(), lines - 1);
    assert!(err.contains(&format!("{} done, 0 failed, 1 invalid", lines - 1)), "{err}");
}

#[test]
fn ctrl_c_stops_a_batch_that_the_same_command_then_finishes() {
    let home = Scratch::new("batch-int");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "1500ms", "--workers", "2"]);
    let lines = write_lines(&home, "in.jsonl", 6);
    let batch = |home: &Scratch| {
        let mut c = falq(home);
        c.args(["batch", SCHNELL, "in.jsonl", "--base-url", &sim.base_url, "--concurrency", "2"]).env("FAL_KEY", "k");
        c
    };
    let child = batch(&home).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let journal = home.path("home/journal.jsonl");
    wait_for("a line sent", || std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"event\":\"submitted\"")));
    let ok = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    let m = manifest(&home, "out/in");
    assert!(m.iter().any(|r| r["state"] == "pending"), "interrupted lines stay pending: {m:?}");
    let (code, _, err) = run(&mut batch(&home));
    assert_eq!(code, 3, "one invalid line: {err}");
    let m = manifest(&home, "out/in");
    assert_eq!(m.iter().filter(|r| r["state"] == "done").count(), lines - 1, "{m:?}");
    assert_eq!(sim.counters()["jobs"]["submitted"].as_u64().unwrap() as usize, lines - 1, "no line sent twice");
}
