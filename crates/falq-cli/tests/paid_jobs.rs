//! The real `falq` binary against relays that answer badly (mock servers on 127.0.0.1):
//! the journal says what the relay said, nothing is checked too late, resume never cancels
//! and never stops at a bad entry. Each test names what a user would lose.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tests::{CaptureServer, Captured, Reply};

const ID: &str = "5f0c1c2d-0000-4000-8000-0000000000aa";
const REDUX: &str = "fal-ai/flux-1/dev/redux";

mod common;
use common::Scratch;

/// `falq` against `base` with a key, its own FALQ_HOME and working directory.
fn falq(home: &Scratch, base: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_falq"));
    c.env("FAL_BASE_URL", base)
        .env("FAL_KEY", "sk-test")
        .env_remove("FAL_AUTH_SCHEME")
        .env("FALQ_HOME", home.path("home"))
        .current_dir(&home.0);
    c.stdin(Stdio::null());
    c
}

async fn run(mut cmd: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("falq runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn jobs(home: &Scratch, base: &str) -> (Vec<Value>, String) {
    let mut c = falq(home, base);
    c.args(["jobs", "--json"]);
    let (code, out, err) = run(c).await;
    assert_eq!(code, 0, "{err}");
    (out.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), err)
}

fn status(base: &str, state: &str, id: &str) -> String {
    json!({"status": state, "request_id": id,
        "response_url": format!("{base}/fal-ai/flux-1/requests/{id}"),
        "status_url": format!("{base}/fal-ai/flux-1/requests/{id}/status"),
        "cancel_url": format!("{base}/fal-ai/flux-1/requests/{id}/cancel"), "queue_position": 0})
    .to_string()
}

/// A relay whose status completes at once (no stream) and whose result, cancel and
/// submit answers are the closures'.
async fn relay(
    submit: impl Fn(&str) -> Reply + Send + Sync + 'static,
    result: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    cancel: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> CaptureServer {
    CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        let t = req.target.as_str();
        let id = t.split("/requests/").nth(1).and_then(|r| r.split(['/', '?']).next()).unwrap_or(ID).to_string();
        if req.method == "POST" {
            submit(base)
        } else if req.method == "PUT" {
            cancel(base)
        } else if t.contains("/status/stream") {
            Reply::json(404, r#"{"detail":"Not Found"}"#)
        } else if t.contains("/status") {
            Reply::json(200, status(base, "COMPLETED", &id))
        } else if t.starts_with("/files/") {
            Reply::bytes(200, "image/png", tests::PNG)
        } else {
            result(base, &id)
        }
    })
    .await
}

fn queued(base: &str) -> Reply {
    Reply::json(200, status(base, "IN_QUEUE", ID))
}

fn good_output(base: &str) -> Reply {
    Reply::json(200, json!({"images": [{"url": format!("{base}/files/out.png"), "content_type": "image/png"}], "seed": 7}).to_string())
}

fn redux(home: &Scratch, base: &str) -> Command {
    let mut c = falq(home, base);
    c.args(["run", REDUX, "--wait", "poll", "--set", "image_url=https://example.test/in.png", "--out", "imgs"]);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn local_problems_are_found_before_the_paid_submit() {
    // Lost otherwise: a paid job whose output has nowhere to go, or that nobody recorded.
    let server = relay(queued, |b, _| good_output(b), |_| Reply::json(202, r#"{"status":"CANCELLATION_REQUESTED"}"#)).await;
    let home = Scratch::new("paid-local");
    std::fs::write(home.path("a-file"), "x").unwrap();
    let mut out_is_file = redux(&home, &server.base_url);
    out_is_file.args(["--out", "a-file"]);
    let mut home_is_file = redux(&home, &server.base_url);
    home_is_file.env("FALQ_HOME", home.path("a-file"));
    let mut no_key = redux(&home, &server.base_url);
    no_key.env_remove("FAL_KEY");
    let mut huge_timeout = redux(&home, &server.base_url);
    huge_timeout.args(["--timeout", "99999999999999999999999s"]);
    for (cmd, says) in [(out_is_file, "--out"), (home_is_file, "journal"), (no_key, "no key"), (huge_timeout, "too long")] {
        let (code, _, err) = run(cmd).await;
        assert_eq!(code, 2, "{says}: {err}");
        assert!(err.contains(says), "{says}: {err}");
    }
    assert!(server.received().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_is_not_what_it_claims_is_never_kept_and_the_job_stays_pending() {
    // Lost otherwise: megabytes of zero bytes saved as an "image" no viewer opens, the job
    // journaled done and never fetched again.
    let zeros = vec![0u8; 8 << 20];
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        let t = req.target.as_str();
        if req.method == "POST" {
            queued(base)
        } else if t.contains("/status/stream") {
            Reply::json(404, r#"{"detail":"Not Found"}"#)
        } else if t.contains("/status") {
            Reply::json(200, status(base, "COMPLETED", ID))
        } else if t.starts_with("/files/") {
            Reply::bytes(200, "image/png", zeros.clone())
        } else {
            good_output(base)
        }
    })
    .await;
    let home = Scratch::new("paid-garbage");
    let (code, _, err) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("/files/out.png") && err.contains("refused: announced as image/png"), "names the URL and what is wrong: {err}");
    assert!(err.contains("still pending"), "{err}");
    let (j, _) = jobs(&home, &server.base_url).await;
    assert_eq!(j[0]["state"], "pending");
    let saved: Vec<_> =
        std::fs::read_dir(home.path("imgs")).map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(saved.is_empty(), "nothing kept under any name: {saved:?}");
    // Retried like any failed download, within the retry policy.
    let downloads = server.count("GET", "/files/");
    assert!((2..=5).contains(&downloads), "{downloads} downloads");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_saved_output_is_done_and_only_a_failed_job_is_failed() {
    // Lost otherwise: `falq run` exits 0 with nothing saved and the job journaled done for good.
    type Case = (&'static str, i32, &'static str);
    let cases: [Case; 4] = [
        (r#"{"seed": 1}"#, 4, "pending"),
        ("null", 4, "pending"),
        (r#"{"detail": "generation failed: NSFW"}"#, 3, "failed"),
        ("good", 0, "done"),
    ];
    for (body, code, state) in cases {
        let server =
            relay(queued, move |b, _| if body == "good" { good_output(b) } else { Reply::json(200, body) }, |_| Reply::json(404, "{}"))
                .await;
        let home = Scratch::new("paid-states");
        let (got, out, err) = run(redux(&home, &server.base_url)).await;
        assert_eq!(got, code, "{body}: {err}");
        let (j, _) = jobs(&home, &server.base_url).await;
        assert_eq!(j[0]["state"], state, "{body}");
        if state == "pending" {
            assert!(err.contains(ID) && err.contains("falq resume"), "the error says where the paid job stands: {err}");
        }
        if state == "done" {
            assert!(Path::new(out.trim()).is_file(), "{out}");
        } else {
            assert!(std::fs::read_dir(home.path("imgs")).map(|d| d.count()).unwrap_or(0) == 0, "{body}: nothing saved");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_the_relay_forgot_is_journaled_expired_and_not_resumed() {
    // Lost otherwise: a job pending forever, retried by every resume.
    let server =
        relay(queued, |_, _| Reply::json(404, r#"{"detail":"Request not found"}"#), |_| Reply::json(404, r#"{"status":"NOT_FOUND"}"#))
            .await;
    let home = Scratch::new("paid-expired");
    let (code, _, err) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no longer has request"), "{err}");
    let (j, _) = jobs(&home, &server.base_url).await;
    assert_eq!(j[0]["state"], "expired");
    let mut resume = falq(&home, &server.base_url);
    resume.arg("resume");
    let (code, _, err) = run(resume).await;
    assert_eq!((code, err.trim()), (0, "no pending jobs"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_journals_only_what_the_relay_said() {
    // Lost otherwise: a completed, paid job marked cancelled and never fetched.
    for (answer, code, state) in [
        (r#"{"status":"ALREADY_COMPLETED"}"#, 400, "pending"),
        (r#"{"status":"NOT_FOUND"}"#, 404, "expired"),
        (r#"{"status":"CANCELLATION_REQUESTED"}"#, 202, "cancelled"),
    ] {
        let server = relay(queued, |b, _| good_output(b), move |_| Reply::json(code, answer)).await;
        let home = Scratch::new("paid-cancel");
        let mut submit = redux(&home, &server.base_url);
        submit.arg("--no-wait");
        let (c, _, err) = run(submit).await;
        assert_eq!(c, 0, "{err}");
        let mut cancel = falq(&home, &server.base_url);
        cancel.args(["cancel", REDUX, ID]);
        let (c, out, err) = run(cancel).await;
        assert_eq!(c, 0, "{err}");
        assert!(out.contains(answer.split('"').nth(3).unwrap()), "{out}");
        let (j, _) = jobs(&home, &server.base_url).await;
        assert_eq!(j[0]["state"], state, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_never_cancels_goes_past_bad_entries_and_finishes_the_rest() {
    // Lost otherwise: long jobs cancelled by resume, and valid jobs never resumed after one bad line.
    let server = relay(queued, |b, _| good_output(b), |_| Reply::json(202, r#"{"status":"CANCELLATION_REQUESTED"}"#)).await;
    let home = Scratch::new("paid-resume");
    std::fs::create_dir_all(home.path("home")).unwrap();
    let entry = |id: &str, base: &str| {
        json!({"event": "submitted", "endpoint": REDUX, "request_id": id, "base_url": base, "out": home.path("imgs"), "at": 1}).to_string()
    };
    let mut journal = Vec::new();
    journal.extend(entry("../../admin", &server.base_url).into_bytes());
    journal.push(b'\n');
    journal.extend(b"{\"event\":\"submitted\",\"out\":\"/tmp/\xe7\xbb\n");
    journal.extend(entry("job-one", "not a url").into_bytes());
    journal.push(b'\n');
    for id in ["job-two", "job-three"] {
        journal.extend(entry(id, &server.base_url).into_bytes());
        journal.push(b'\n');
    }
    std::fs::write(home.path("home/journal.jsonl"), journal).unwrap();
    let (j, err) = jobs(&home, &server.base_url).await;
    assert_eq!(j.len(), 4, "every readable job is listed");
    assert!(err.contains("skipped 1 unreadable"), "{err}");
    // The configured base would replace the journal's: resume with none configured.
    let mut resume = falq(&home, &server.base_url);
    resume.env_remove("FAL_BASE_URL").arg("resume");
    let (code, out, err) = run(resume).await;
    assert_eq!(code, 2, "a bad entry is reported in the exit code: {err}");
    assert!(err.contains("\"../../admin\"") && err.contains("\"job-one\""), "both bad entries are named: {err}");
    assert_eq!(out.lines().count(), 2, "both valid jobs saved their output: {out}");
    let (j, _) = jobs(&home, &server.base_url).await;
    let states: Vec<&str> = j.iter().map(|j| j["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["pending", "pending", "done", "done"]);
    assert_eq!(server.count("PUT", "/"), 0, "resume never cancels");
    assert_eq!(server.count("POST", "/"), 0, "resume never submits");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_submit_whose_answer_never_came_is_listed_as_maybe_submitted() {
    // Lost otherwise: a paid job nobody knows about after a crash, or a second payment.
    let server = relay(|b| queued(b).after(Duration::from_secs(20)), |b, _| good_output(b), |_| Reply::json(404, "{}")).await;
    let home = Scratch::new("paid-intent");
    let mut cmd = redux(&home, &server.base_url);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let journal = home.path("home/journal.jsonl");
    for _ in 0..200 {
        if std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"intent\"")) && !server.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    child.kill().unwrap(); // SIGKILL: the answer is never read.
    child.wait().unwrap();
    let (j, err) = jobs(&home, &server.base_url).await;
    assert_eq!(j.len(), 1);
    assert_eq!(j[0]["state"], "maybe-submitted");
    assert!(err.contains("may have been submitted") && err.contains("falq settle ID --request-id"), "{err}");
    // A gateway error after sending: the same; a refusal: no job at all.
    let server = relay(|_| Reply::json(502, r#"{"detail":"bad gateway"}"#), |b, _| good_output(b), |_| Reply::json(404, "{}")).await;
    let (code, _, err) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("may have been queued"), "{err}");
    let server = relay(
        |_| Reply::json(422, r#"{"detail":[{"loc":["body","image_url"],"msg":"bad","type":"value_error"}]}"#),
        |b, _| good_output(b),
        |_| Reply::json(404, "{}"),
    )
    .await;
    let (code, _, _) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 3);
    let (j, _) = jobs(&home, &server.base_url).await;
    assert_eq!(
        j.iter().map(|j| j["state"].as_str().unwrap()).collect::<Vec<_>>(),
        ["maybe-submitted", "maybe-submitted"],
        "a refused submit is no job"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_options_reach_the_relay_and_bad_ones_are_refused_before_sending() {
    // Lost otherwise: a webhook, priority or start deadline the user paid attention to, silently dropped.
    let server = relay(queued, |b, _| good_output(b), |_| Reply::json(404, "{}")).await;
    let home = Scratch::new("paid-options");
    let mut cmd = redux(&home, &server.base_url);
    cmd.args(["--webhook", "http://127.0.0.1:9/hook?x=1", "--priority", "low", "--start-timeout", "90s"]);
    cmd.args(["--runner-hint", "eu-1", "--result-lifetime", "1h"]);
    let (code, _, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    let submit = server.received().into_iter().find(|r| r.method == "POST").expect("a submit");
    assert!(submit.target.contains("fal_webhook=http%3A%2F%2F127.0.0.1%3A9%2Fhook%3Fx%3D1"), "{}", submit.target);
    assert_eq!(submit.header("x-fal-queue-priority"), Some("low"));
    assert_eq!(submit.header("x-fal-request-timeout"), Some("90"));
    assert_eq!(submit.header("x-fal-runner-hint"), Some("eu-1"));
    assert_eq!(submit.header("x-fal-object-lifecycle-preference"), Some(r#"{"expiration_duration_seconds":3600}"#));
    let before = server.received().len();
    for bad in [["--webhook", "not a url"], ["--webhook", "ftp://x/hook"], ["--priority", "urgent"], ["--start-timeout", "0s"]] {
        let mut cmd = redux(&home, &server.base_url);
        cmd.args(bad);
        let (code, _, err) = run(cmd).await;
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    assert_eq!(server.received().len(), before, "nothing was sent");
    // The same options on a batch reach every line's submit.
    std::fs::write(home.path("lines.jsonl"), "{\"image_url\": \"https://example.test/a.png\"}\n").unwrap();
    let mut cmd = falq(&home, &server.base_url);
    cmd.args(["batch", REDUX, "lines.jsonl", "--wait", "poll", "--webhook", "http://127.0.0.1:9/b", "--priority", "low"]);
    cmd.args(["--start-timeout", "2m", "--runner-hint", "eu-2", "--result-lifetime", "30m"]);
    let (code, _, err) = run(cmd).await;
    assert_eq!(code, 0, "{err}");
    let submit = server.received().into_iter().skip(before).find(|r| r.method == "POST").expect("a batch submit");
    assert!(submit.target.contains("fal_webhook=http%3A%2F%2F127.0.0.1%3A9%2Fb"), "{}", submit.target);
    assert_eq!(submit.header("x-fal-queue-priority"), Some("low"));
    assert_eq!(submit.header("x-fal-request-timeout"), Some("120"));
    assert_eq!(submit.header("x-fal-runner-hint"), Some("eu-2"));
    assert_eq!(submit.header("x-fal-object-lifecycle-preference"), Some(r#"{"expiration_duration_seconds":1800}"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_of_unknown_fate_is_reported_until_settled_and_then_saved_by_resume() {
    // Lost otherwise: a paid job whose submit answer was lost stays "maybe submitted" for
    // good, resume says "no pending jobs" and exits 0, and only editing the journal helps.
    let server = relay(|_| Reply::json(502, r#"{"detail":"bad gateway"}"#), |b, _| good_output(b), |_| Reply::json(404, "{}")).await;
    let home = Scratch::new("paid-settle");
    let (code, _, _) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 4);
    let (j, _) = jobs(&home, &server.base_url).await;
    let local = j[0]["id"].as_str().unwrap().to_string();
    assert!(local.starts_with("local-") && j[0]["state"] == "maybe-submitted", "{j:?}");
    // resume reports it, by its local id, and exits 3 while it is left.
    let mut resume = falq(&home, &server.base_url);
    resume.arg("resume");
    let (code, _, err) = run(resume).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("maybe-submitted {local}")) && err.contains(&format!("falq settle {local} --request-id")), "{err}");
    // Usage: an unknown id, no way given, a bad request id.
    for (args, says) in [
        (vec!["settle", "local-nope", "--forget"], "no job \"local-nope\""),
        (vec!["settle", &local], "required"),
        (vec!["settle", &local, "--request-id", "../x"], "--request-id"),
    ] {
        let mut c = falq(&home, &server.base_url);
        c.args(&args);
        let (code, _, err) = run(c).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Found in the relay's history: attached, then resume waits for it and saves its outputs.
    let mut settle = falq(&home, &server.base_url);
    settle.args(["settle", &local, "--request-id", ID]);
    let (code, _, err) = run(settle).await;
    assert_eq!(code, 0, "{err}");
    let (j, _) = jobs(&home, &server.base_url).await;
    assert_eq!((j[0]["state"].as_str(), j[0]["request_id"].as_str()), (Some("pending"), Some(ID)));
    let mut resume = falq(&home, &server.base_url);
    resume.arg("resume");
    let (code, out, err) = run(resume).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imgs") && out.trim().ends_with(".png"), "saved where it was started to: {out}");
    assert_eq!(jobs(&home, &server.base_url).await.0[0]["state"], "done");
    assert_eq!(server.count("POST", "/"), 1, "settling never submits");
    // Not of unknown fate any more: nothing to settle.
    let mut again = falq(&home, &server.base_url);
    again.args(["settle", &local, "--forget"]);
    let (code, _, err) = run(again).await;
    assert_eq!(code, 2);
    assert!(err.contains("is done, not of unknown fate"), "{err}");
    // Another lost submit, forgotten: resume has nothing left to report.
    let (code, _, _) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 4);
    let (j, _) = jobs(&home, &server.base_url).await;
    let second = j.iter().find(|j| j["state"] == "maybe-submitted").unwrap()["id"].as_str().unwrap().to_string();
    let mut forget = falq(&home, &server.base_url);
    forget.args(["settle", &second, "--forget"]);
    assert_eq!(run(forget).await.0, 0);
    let mut resume = falq(&home, &server.base_url);
    resume.arg("resume");
    let (code, _, err) = run(resume).await;
    assert_eq!(code, 0, "{err}");
    let states: Vec<String> = jobs(&home, &server.base_url).await.0.iter().map(|j| j["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, ["done", "forgotten"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_line_of_unknown_fate_is_settled_by_its_id_and_its_manifest_follows() {
    // Lost otherwise: a batch that can never finish, one line stuck "maybe submitted".
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        let t = req.target.as_str();
        let id = t.split("/requests/").nth(1).and_then(|r| r.split(['/', '?']).next()).unwrap_or(ID).to_string();
        if req.method == "POST" && String::from_utf8_lossy(&req.body).contains("lost") {
            Reply::json(502, r#"{"detail":"bad gateway"}"#)
        } else if req.method == "POST" {
            Reply::json(200, status(base, "IN_QUEUE", &format!("{}-{}", &ID[..30], req.body.len() % 10)))
        } else if t.contains("/status/stream") {
            Reply::json(404, r#"{"detail":"Not Found"}"#)
        } else if t.contains("/status") {
            Reply::json(200, status(base, "COMPLETED", &id))
        } else if t.starts_with("/files/") {
            Reply::bytes(200, "image/png", tests::PNG)
        } else {
            good_output(base)
        }
    })
    .await;
    let home = Scratch::new("paid-settle-batch");
    std::fs::write(
        home.path("in.jsonl"),
        "{\"image_url\": \"https://example.test/a.png\"}\n{\"image_url\": \"https://example.test/lost.png\"}\n",
    )
    .unwrap();
    let mut batch = falq(&home, &server.base_url);
    batch.args(["batch", REDUX, "in.jsonl", "--out", "b", "--wait", "poll"]);
    let (code, _, err) = run(batch).await;
    assert_eq!(code, 3, "{err}");
    let (j, _) = jobs(&home, &server.base_url).await;
    let lost = j.iter().find(|j| j["state"] == "maybe-submitted").unwrap()["id"].as_str().unwrap().to_string();
    assert!(err.contains(&format!("falq settle {lost} --request-id")), "the batch names the line's id: {err}");
    let mut settle = falq(&home, &server.base_url);
    settle.args(["settle", &lost, "--request-id", ID]);
    assert_eq!(run(settle).await.0, 0);
    let mut resume = falq(&home, &server.base_url);
    resume.arg("resume");
    let (code, _, err) = run(resume).await;
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read_to_string(home.path("b").join("manifest.jsonl")).unwrap();
    let lines: Vec<Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().all(|l| l["state"] == "done"), "{manifest}");
    assert_eq!(lines[1]["request_id"], ID);
    assert_eq!(server.count("POST", "/"), 2, "no line sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_job_whose_result_never_comes_exits_pending_and_is_never_cancelled() {
    // Lost otherwise: `falq run` (no --timeout) waits for ever on a relay whose status
    // says COMPLETED while its result answers 202 IN_PROGRESS.
    let server = relay(queued, |b, id| Reply::json(202, status(b, "IN_PROGRESS", id)), |_| Reply::json(202, "{}")).await;
    let home = Scratch::new("paid-withheld");
    let started = std::time::Instant::now();
    let (code, _, err) = run(redux(&home, &server.base_url)).await;
    assert_eq!(code, 4, "{err}");
    assert!(started.elapsed() < Duration::from_secs(120), "bounded by the retry policy: {:?}", started.elapsed());
    assert!(err.contains("COMPLETED, but its result answered IN_PROGRESS 5 times") && err.contains("not cancelled"), "{err}");
    assert_eq!(jobs(&home, &server.base_url).await.0[0]["state"], "pending");
    assert_eq!(server.count("PUT", "/"), 0, "never a cancel");
}
