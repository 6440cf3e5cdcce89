//! The real `falq` binary against the simulator: the happy path, each bad input with
//! its exit code, failures, timeouts, and interrupt and resume (kill -9 included).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const REDUX: &str = "fal-ai/flux-1/dev/redux";

mod common;
use common::*;

#[test]
fn the_quickstart_produces_real_images_offline() {
    let home = Scratch::new("quick");
    let (code, out, err) = run(falq(&home).args([
        "run",
        REDUX,
        "--sim",
        "--set",
        &format!("image_url={}", fixture_png()),
        "--set",
        "num_images=2",
        "--set",
        "output_format=png",
        "--set",
        "seed=196619188014358660",
        "--json",
        "--out",
        "imgs",
    ]));
    assert_eq!(code, 0, "stderr: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is only the JSON result ({e}): {out}"));
    assert_eq!(v["output"]["seed"].as_u64(), Some(196619188014358660), "the seed is exact: {out}");
    let files: Vec<PathBuf> = v["files"].as_array().unwrap().iter().map(|f| PathBuf::from(f.as_str().unwrap())).collect();
    assert_eq!(files.len(), 2);
    for f in &files {
        assert!(f.starts_with(home.path("imgs")), "{f:?} in --out");
        assert_eq!(f.extension().unwrap(), "png");
        assert!(is_image(f), "{f:?} is a real image");
    }
    let j = jobs(&home);
    assert_eq!(j.len(), 1);
    assert_eq!(j[0]["state"], "done");
    // Without --json, stdout holds the saved paths only; a second session never reuses
    // the first one's request id, so nothing is overwritten.
    let mut paths = Vec::new();
    for _ in 0..2 {
        let (code, out, _) =
            run(falq(&home).args(["run", REDUX, "--sim", "--wait", "poll", "--set", &format!("image_url={}", fixture_png())]));
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        assert!(is_image(Path::new(lines[0])), "{out}");
        paths.push(lines[0].to_string());
    }
    assert_ne!(paths[0], paths[1]);
    assert_eq!(jobs(&home).len(), 3);
}

#[test]
fn every_endpoint_runs_end_to_end_from_its_required_fields_alone() {
    let home = Scratch::new("every");
    let spec: Value = serde_json::from_str(falq_api::OPENAPI_JSON).unwrap();
    assert_eq!(falq_api::ENDPOINTS.len(), 11, "the relay's FLUX catalogue");
    for e in falq_api::ENDPOINTS {
        let required = spec["components"]["schemas"][e.input_schema]["required"].as_array().cloned().unwrap_or_default();
        let mut cmd = falq(&home);
        cmd.args(["run", e.id, "--sim", "--json", "--out", "every"]);
        for field in required.iter().filter_map(Value::as_str) {
            // A local file for a URL (sent as a data URL), text for anything else.
            let value = if field.ends_with("url") || field.ends_with("urls") { fixture_png() } else { "a cat".to_string() };
            cmd.args(["--set", &format!("{field}={value}")]);
        }
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, 0, "{}: {err}", e.id);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|x| panic!("{}: {x}: {out}", e.id));
        let files = v["files"].as_array().unwrap_or_else(|| panic!("{}: {out}", e.id));
        assert!(!files.is_empty() && files.iter().all(|f| is_image(Path::new(f.as_str().unwrap()))), "{}: {out}", e.id);
        assert!(v["output"]["images"].is_array(), "{}: a FluxImageOutput: {out}", e.id);
    }
    assert!(jobs(&home).iter().all(|j| j["state"] == "done"));
}

#[test]
fn endpoints_and_endpoint_help() {
    let home = Scratch::new("help");
    let (code, out, _) = run(falq(&home).arg("endpoints"));
    assert_eq!(code, 0);
    for id in [
        REDUX,
        "fal-ai/flux-1/schnell/redux",
        "fal-ai/flux-pro/kontext",
        "fal-ai/flux-pro/kontext/max",
        "fal-ai/flux-pro/kontext/multi",
        "fal-ai/flux-pro/kontext/text-to-image",
    ] {
        assert!(out.lines().any(|l| l.starts_with(&format!("{id} "))), "{id} missing:\n{out}");
    }
    let (code, out, _) = run(falq(&home).args(["run", "fal-ai/flux-pro/kontext/max", "--help"]));
    assert_eq!(code, 0);
    for fragment in [
        "prompt (string), required",
        "aspect_ratio (21:9 | 16:9",
        "safety_tolerance (1 | 2 | 3 | 4 | 5 | 6), default 2",
        "num_images (integer), default 1, range 1..=4",
    ] {
        assert!(out.contains(fragment), "{fragment:?} missing:\n{out}");
    }
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let home = Scratch::new("bad");
    let img = format!("image_url={}", fixture_png());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "fal-ai/flux-1/dev/redx", "--sim"], "did you mean fal-ai/flux-1/dev/redux"),
        (vec!["run", REDUX, "--sim", "--set", &img, "--set", "colour=red"], "unknown field \"colour\"; valid fields: image_url"),
        (vec!["run", REDUX, "--sim", "--set", &img, "--set", "num_images=two"], "num_images: \"two\" is not an integer"),
        (vec!["run", REDUX, "--sim", "--set", &img, "--set", "num_images=5"], "num_images: 5 is greater than the maximum of 4"),
        (vec!["run", REDUX, "--sim", "--set", &img, "--set", "output_format=gif"], "allowed: jpeg | png"),
        (vec!["run", REDUX, "--sim"], "missing required field(s) image_url"),
        (vec!["run", REDUX, "--set", &img], "no relay configured: set FAL_BASE_URL"),
        (vec!["run", REDUX, "--sim", "--set", &img, "--timeout", "soon"], "not a duration"),
        (vec!["run", REDUX, "--sim", "--input", "{not json"], "--input is not valid JSON"),
        (vec!["status", REDUX, "../../etc", "--base-url", "http://127.0.0.1:9"], "invalid request id"),
        (vec!["sim", "--fault", "nonsense"], "--fault"),
    ];
    for (args, expected) in cases {
        let (code, out, err) = run(falq(&home).args(&args));
        assert_eq!(code, 2, "{args:?} → exit {code}, stderr {err}");
        assert!(err.contains(expected), "{args:?}: {expected:?} not in stderr:\n{err}");
        assert!(out.is_empty(), "{args:?}: stdout must stay empty, got {out}");
    }
    assert!(jobs(&home).is_empty(), "nothing was submitted");
}

#[test]
fn failures_have_distinct_exit_codes() {
    let home = Scratch::new("codes");
    let img = format!("image_url={}", fixture_png());
    // A job that fails at the result call.
    let sim = SimProcess::start(&home, &["--fault", "result:422%100", "--queue-delay", "0s", "--run-time", "50ms"]);
    let (code, _, err) = run(falq(&home).args(["run", REDUX, "--base-url", &sim.base_url, "--set", &img]).env("FAL_KEY", "k"));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("the job failed (HTTP 422)"), "{err}");
    // A deadline.
    let slow = SimProcess::start(&home, &["--run-time", "30s"]);
    let (code, _, err) =
        run(falq(&home).args(["run", REDUX, "--base-url", &slow.base_url, "--set", &img, "--timeout", "300ms"]).env("FAL_KEY", "k"));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("the job was cancelled"), "{err}");
    // Nothing listening: the retries give up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (code, _, err) = run(falq(&home).args(["run", REDUX, "--base-url", &dead, "--set", &img]).env("FAL_KEY", "k"));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("submit failed after"), "{err}");
}

#[test]
fn a_killed_run_loses_nothing_and_resume_never_submits_again() {
    let home = Scratch::new("kill");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "1500ms"]);
    let mut run_child = falq(&home)
        .args(["run", REDUX, "--base-url", &sim.base_url, "--set", &format!("image_url={}", fixture_png()), "--out", "outs"])
        .env("FAL_KEY", "k")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = home.path("home/journal.jsonl");
    wait_for("the journal entry", || std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"submitted\"")));
    run_child.kill().unwrap(); // SIGKILL: no chance to clean up
    run_child.wait().unwrap();
    let j = jobs(&home);
    assert_eq!(j.len(), 1);
    assert_eq!(j[0]["state"], "pending");
    let (code, out, err) = run(falq(&home).args(["resume"]).env("FAL_KEY", "k"));
    assert_eq!(code, 0, "{err}");
    let saved: Vec<&str> = out.lines().collect();
    assert_eq!(saved.len(), 1, "{out}");
    assert!(Path::new(saved[0]).starts_with(home.path("outs")), "saved into the run's own --out: {out}");
    assert!(is_image(Path::new(saved[0])));
    assert_eq!(jobs(&home)[0]["state"], "done");
    let counters = sim.counters();
    assert_eq!(counters["routes"]["submit"]["requests"], 1, "resume waited; it did not submit again: {counters}");
    assert_eq!(counters["jobs"]["submitted"], 1, "{counters}");
    let (code, _, err) = run(falq(&home).args(["resume"]).env("FAL_KEY", "k"));
    assert_eq!((code, err.trim()), (0, "no pending jobs"));
}

fn interrupt(child: &Child) {
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn ctrl_c_stops_waiting_and_says_how_to_resume_or_cancels() {
    let home = Scratch::new("int");
    let sim = SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", "20s"]);
    for cancel in [false, true] {
        let mut cmd = falq(&home);
        cmd.args(["run", REDUX, "--base-url", &sim.base_url, "--set", &format!("image_url={}", fixture_png())])
            .env("FAL_KEY", "k")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if cancel {
            cmd.arg("--cancel-on-interrupt");
        }
        let child = cmd.spawn().unwrap();
        let journal = home.path("home/journal.jsonl");
        let before = jobs(&home).len();
        wait_for("the journal entry", || std::fs::read_to_string(&journal).is_ok_and(|t| t.matches("\"submitted\"").count() > before));
        std::thread::sleep(Duration::from_millis(200));
        interrupt(&child);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{err}");
        let last = jobs(&home).pop().unwrap();
        let id = last["request_id"].as_str().unwrap().to_string();
        assert!(err.contains(&id), "the request id is printed: {err}");
        if cancel {
            assert_eq!(last["state"], "cancelled");
            assert!(err.contains("cancelled"), "{err}");
        } else {
            assert_eq!(last["state"], "pending");
            assert!(err.contains("falq resume"), "{err}");
        }
    }
}

#[test]
fn no_wait_then_status_and_result_by_id() {
    let home = Scratch::new("nowait");
    let sim = SimProcess::start(&home, &["--mode", "direct", "--queue-delay", "0s", "--run-time", "100ms"]);
    let base = ["--base-url", sim.base_url.as_str()];
    let (code, out, err) = run(falq(&home)
        .args(["run", "fal-ai/flux-pro/kontext/text-to-image", "--no-wait", "--set", "prompt=a cat", "--set", "aspect_ratio=16:9"])
        .args(base)
        .env("FAL_KEY", "k")
        .env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    assert!(!id.is_empty());
    wait_for("completion", || {
        let (_, out, _) = run(falq(&home)
            .args(["status", "fal-ai/flux-pro/kontext/text-to-image", &id])
            .args(base)
            .env("FAL_KEY", "k")
            .env("FAL_AUTH_SCHEME", "Key"));
        out.contains("COMPLETED")
    });
    let (code, out, err) = run(falq(&home)
        .args(["result", "fal-ai/flux-pro/kontext/text-to-image", &id, "--out", "r"])
        .args(base)
        .env("FAL_KEY", "k")
        .env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["output"]["images"][0]["width"].as_i64().map(|w| w > v["output"]["images"][0]["height"].as_i64().unwrap()),
        Some(true),
        "16:9 is wider than tall: {out}"
    );
    assert!(is_image(Path::new(v["files"][0].as_str().unwrap())));
    let (code, out, _) = run(falq(&home)
        .args(["cancel", "fal-ai/flux-pro/kontext/text-to-image", &id])
        .args(base)
        .env("FAL_KEY", "k")
        .env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!((code, out.trim()), (0, "\"ALREADY_COMPLETED\""));
}
