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
    // Whatever the catalogue holds: each endpoint, given only its required fields on the
    // command line, completes against the simulator and saves files of its output's kinds
    // (or prints its text), journaled done.
    let home = Scratch::new("every");
    let run_one = |e: &falq_api::EndpointInfo| {
        let minimal = falq_api::minimal_input(e);
        let mut cmd = falq(&home);
        cmd.args(["run", e.id, "--sim", "--json", "--out", "every"]);
        for field in e.fields.iter().filter(|f| f.required) {
            // A local file for a field that takes one (sent as a data URL), else the
            // smallest value its schema takes, as a user would type it.
            let value = match &minimal[field.name] {
                _ if field.takes_file => fixture_png(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            cmd.args(["--set", &format!("{}={value}", field.name)]);
        }
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, 0, "{}: {err}", e.id);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|x| panic!("{}: {x}: {out}", e.id));
        (e.check_output)(&v["output"]).unwrap_or_else(|x| panic!("{}: not its output type: {x}: {out}", e.id));
        let files: Vec<PathBuf> =
            v["files"].as_array().unwrap_or_else(|| panic!("{}: {out}", e.id)).iter().map(|f| PathBuf::from(f.as_str().unwrap())).collect();
        let saved: Vec<falq_api::FileKind> = files.iter().map(|f| kind_of(f)).collect();
        // Every kind the output has is saved, and nothing else.
        for slot in e.output_files {
            assert!(saved.contains(&slot.kind), "{}: no {} saved for {}: {files:?}", e.id, slot.kind, slot.pointer);
        }
        assert!(saved.iter().all(|k| e.output_files.iter().any(|s| s.kind == *k)), "{}: {saved:?} for {:?}", e.id, e.output_files);
        for f in &files {
            let ext = f.extension().and_then(|x| x.to_str()).unwrap_or("");
            let named = falq_api::content_type_of_name(&format!("x.{ext}")).and_then(falq_api::FileKind::from_content_type);
            assert_eq!(named, Some(kind_of(f)), "{}: {f:?} is named as what it is", e.id);
        }
        if e.output_files.is_empty() && !e.output_text.is_empty() {
            assert!(v["text"].as_object().is_some_and(|t| !t.is_empty()), "{}: a text output prints its text: {out}", e.id);
        }
    };
    std::thread::scope(|scope| {
        for chunk in falq_api::ENDPOINTS.chunks(falq_api::ENDPOINTS.len().div_ceil(4).max(1)) {
            scope.spawn(move || chunk.iter().for_each(|e| run_one(e)));
        }
    });
    let all = jobs(&home);
    assert_eq!(all.len(), falq_api::ENDPOINTS.len());
    assert!(all.iter().all(|j| j["state"] == "done"), "{all:?}");
}

/// What a saved file is, by its first bytes.
fn kind_of(path: &Path) -> falq_api::FileKind {
    let bytes = std::fs::read(path).unwrap_or_default();
    falq_api::sniff(&bytes).and_then(falq_api::FileKind::from_content_type).unwrap_or(falq_api::FileKind::Other)
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
        (vec!["run", REDUX, "--sim", "--input", r#"{"num_images": 1, "num_images": 4}"#], "the key \"num_images\" is given twice"),
        (vec!["status", REDUX, "../../etc", "--base-url", "http://127.0.0.1:9"], "invalid request id"),
        (vec!["sim", "--fault", "nonsense"], "--fault"),
        (vec!["run", REDUX, "--set", &img, "--base-url", "http://127.0.0.1:9", "--key-file", "no/such/key"], "--key-file no/such/key"),
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
    // A relay that refuses bodies as large as a local image makes: a usage error naming
    // the file and its size, and what to do; nothing was queued.
    let small = SimProcess::start(&home, &["--max-body-bytes", "4000"]);
    let (code, _, err) = run(falq(&home).args(["run", REDUX, "--base-url", &small.base_url, "--set", &img]).env("FAL_KEY", "k"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 413") && err.contains("input.png (16.6 KB)") && err.contains("Give a URL"), "{err}");
    assert!(err.contains("nothing was queued"), "{err}");
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
        // Counted before the run starts: on a loaded machine the run may journal its submit
        // before a `falq jobs` started after it has read the journal.
        let before = jobs(&home).len();
        let child = cmd.spawn().unwrap();
        let journal = home.path("home/journal.jsonl");
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

#[test]
fn an_endpoint_without_a_page_runs_untyped_against_a_relay() {
    // A relay sells more than the pages say: falq calls any endpoint id, as fal's clients
    // do, sends the input as given and saves every file of the output as what it is.
    let home = Scratch::new("untyped");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let file = serde_json::json!({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}});
    let speech = falq_sim::extra_endpoint(
        "acme/speech/v2",
        serde_json::json!({"type": "object", "required": ["audio"], "properties": {"audio": file, "transcript": {"type": "string"}}}),
    );
    let config = falq_sim::SimConfig {
        api_key: Some("relay-key".into()),
        extra_endpoints: vec![speech],
        timing: falq_sim::SimTiming { queue_delay: Duration::from_millis(20), run_time: Duration::from_millis(60), ..Default::default() },
        ..Default::default()
    };
    let sim = runtime.block_on(falq_sim::Sim::spawn(config)).unwrap();
    let relay = |cmd: &mut Command| {
        cmd.env("FAL_BASE_URL", sim.base_url()).env("FAL_KEY", "relay-key");
    };
    let mut cmd = falq(&home);
    relay(&mut cmd);
    cmd.args(["run", "acme/speech/v2", "--set", "prompt=hello there", "--set", "voice=7", "--set", "style={\"calm\":true}", "--json"]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("acme/speech/v2 has no page in specs/: it runs untyped"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let files: Vec<PathBuf> = v["files"].as_array().unwrap().iter().map(|f| PathBuf::from(f.as_str().unwrap())).collect();
    assert_eq!(files.len(), 1, "{out}");
    assert_eq!(files[0].extension().unwrap(), "wav");
    assert_eq!(kind_of(&files[0]), falq_api::FileKind::Audio, "a real WAV");
    assert_eq!(v["output"]["transcript"].as_str().map(|t| t.contains("hello there")), Some(true), "{out}");
    let j = jobs(&home);
    assert_eq!((j.len(), j[0]["state"].as_str(), j[0]["endpoint"].as_str()), (1, Some("done"), Some("acme/speech/v2")));
    // A batch of it: every line journaled, saved and shown like any other.
    std::fs::write(home.path("lines.jsonl"), "{\"prompt\": \"one\"}\n{\"prompt\": \"two\", \"speed\": 1.5}\n").unwrap();
    let mut cmd = falq(&home);
    relay(&mut cmd);
    cmd.args(["batch", "acme/speech/v2", "lines.jsonl", "--out", "speech"]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read_to_string(home.path("speech").join("manifest.jsonl")).unwrap();
    let lines: Vec<Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["state"], "done", "{l}");
        let file = home.path("speech").join(l["files"][0].as_str().unwrap());
        assert_eq!(kind_of(&file), falq_api::FileKind::Audio, "{l}");
    }
    let sheet = std::fs::read_to_string(home.path("speech").join("index.html")).unwrap();
    assert!(sheet.contains("<audio src=\"line-0001-0.wav\""), "{sheet}");
    // An id a typo away from the catalogue's is asked about before anything is paid for.
    let (code, _, err) = run(falq(&home).args(["run", "fal-ai/flux-1/dev/redx", "--sim"]));
    assert_eq!(code, 2);
    assert!(err.contains("did you mean fal-ai/flux-1/dev/redux") && err.contains("--untyped"), "{err}");
    drop(sim);
}

#[test]
fn every_api_call_of_run_batch_and_cancel_is_a_generated_operation() {
    // One road: each request `falq run` (a local file in its input), `falq batch` and
    // `falq cancel` make to the relay's API is built by a generated operation of falq-api
    // (which marks it with its `api-version` header) and sent by the client's transport.
    let home = Scratch::new("one-road");
    let sim = SimProcess::start(&home, &["--mode", "direct", "--queue-delay", "0s", "--run-time", "20ms"]);
    let base = ["--base-url", sim.base_url.as_str()];
    let with_file = falq_api::ENDPOINTS.iter().find(|e| e.fields.iter().any(|f| f.takes_file && f.required));
    let endpoint = with_file.copied().unwrap_or(falq_api::ENDPOINTS[0]);
    let mut input = falq_api::minimal_input(endpoint);
    let files: Vec<&str> =
        endpoint.fields.iter().filter(|f| f.takes_file && input.get(f.name).is_some_and(Value::is_string)).map(|f| f.name).collect();
    for name in files {
        input[name] = Value::String(fixture_png());
    }
    let (code, _, err) = run(falq(&home)
        .args(["run", endpoint.id, "--input", &input.to_string(), "--out", "run"])
        .args(base)
        .env("FAL_KEY", "k")
        .env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!(code, 0, "{err}");
    let lines: String = (0..3).map(|_| format!("{}\n", falq_api::minimal_input(endpoint))).collect();
    std::fs::write(home.path("in.jsonl"), lines).unwrap();
    let (code, _, err) =
        run(falq(&home).args(["batch", endpoint.id, "in.jsonl"]).args(base).env("FAL_KEY", "k").env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!(code, 0, "{err}");
    let minimal = falq_api::minimal_input(endpoint).to_string();
    let (code, id, err) = run(falq(&home)
        .args(["run", endpoint.id, "--no-wait", "--input", &minimal])
        .args(base)
        .env("FAL_KEY", "k")
        .env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        run(falq(&home).args(["cancel", endpoint.id, id.trim()]).args(base).env("FAL_KEY", "k").env("FAL_AUTH_SCHEME", "Key"));
    assert_eq!(code, 0, "{err}");
    let routes = &sim.counters()["routes"];
    assert_eq!(routes["submit"]["requests"], 5, "{routes}");
    assert!(routes["result"]["requests"].as_u64() >= Some(4) && routes["cancel"]["requests"] == 1, "{routes}");
    for route in ["submit", "status", "stream", "result", "cancel"] {
        assert_eq!(routes[route]["marked"], routes[route]["requests"], "{route}: every call a generated operation: {routes}");
    }
}
