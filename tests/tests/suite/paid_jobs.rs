//! Paid jobs against relays that answer badly (mock servers on 127.0.0.1): each test
//! names what a user would lose if the rule broke. The CLI's side (the journal, exit
//! codes, resume) is in `crates/falq-cli/tests/paid_jobs.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use falq::{Client, Config, Error, WaitMode};
use serde_json::{Value, json};
use tests::{CaptureServer, Captured, Reply, Target};

const ID: &str = "0b5e1c2d-0000-4000-8000-00000000f00d";
const REDUX: &str = "fal-ai/flux-1/dev/redux";

fn config(base: &str, mode: WaitMode) -> Config {
    let mut c = tests::fast_config(base, mode);
    c.wait.deadline = Some(Duration::from_secs(20));
    c.timeouts.stream_idle = Duration::from_millis(300);
    c
}

fn status(base: &str, state: &str) -> String {
    tests::queue_status(base, ID, state)
}

use tests::image_output as output;

use tests::PNG;

/// A relay: submit queues, status completes at once, the stream 404s, and `result`
/// answers the n-th result call (0-based) as the closure says.
async fn relay(result: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> (CaptureServer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| match req.call() {
        Target::Submit => Reply::json(200, status(base, "IN_QUEUE")),
        Target::Stream => Reply::json(404, r#"{"detail":"Not Found"}"#),
        Target::Status => Reply::json(200, status(base, "COMPLETED")),
        Target::Media => Reply::bytes(200, "image/png", PNG),
        Target::Result if req.target == format!("/fal-ai/flux-1/requests/{ID}") => result(n.fetch_add(1, Ordering::SeqCst), base),
        Target::Result => Reply::json(404, r#"{"detail":"no route"}"#),
    })
    .await;
    (server, calls)
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("falq-paid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn run_to_dir(server: &CaptureServer, mode: WaitMode, dir: &std::path::Path) -> Result<(Value, Vec<falq::SavedFile>), Error> {
    let client = Client::new(config(&server.base_url, mode)).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
    handle.finish_to_dir(dir, ID, |_| {}).await
}

#[tokio::test]
async fn a_result_answered_202_with_a_status_is_asked_again_not_taken_as_the_output() {
    // Lost otherwise: the job is marked done with no image saved.
    let (server, calls) = relay(|n, base| {
        if n == 0 { Reply::json(202, status(base, "IN_PROGRESS")) } else { Reply::json(200, output(&format!("{base}/files/a.png"))) }
    })
    .await;
    let dir = scratch("202");
    let (_, files) = run_to_dir(&server, WaitMode::Poll, &dir).await.expect("the output, once ready");
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0].path).unwrap(), PNG, "the image itself is saved");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_result_that_is_not_the_output_type_is_never_a_success() {
    // Lost otherwise: an NSFW refusal, a bare seed or `null` counted as a finished job.
    for (body, failed) in [(r#"{"detail": "generation failed: NSFW"}"#, true), (r#"{"seed": 1}"#, false), ("null", false)] {
        let (server, _) = relay(move |_, _| Reply::json(200, body)).await;
        let dir = scratch("nottype");
        let err = run_to_dir(&server, WaitMode::Poll, &dir).await.expect_err(body);
        if failed {
            assert!(matches!(&err, Error::JobFailed { status: 200, message, .. } if message.contains("NSFW")), "{body}: {err}");
        } else {
            assert!(matches!(&err, Error::Protocol { .. }), "{body}: {err}");
            assert!(err.to_string().contains("is not FluxImageOutput") && err.to_string().contains(ID), "{body}: {err}");
        }
        assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing saved");
    }
}

#[tokio::test]
async fn a_server_error_on_the_result_is_retried_and_is_no_job_failure() {
    // Lost otherwise: a paid job journaled `failed` for good because a proxy hiccuped.
    let (server, calls) = relay(|n, base| match n {
        0 => Reply::typed(502, "text/html", "<html><body>Bad Gateway</body></html>"),
        1 => Reply::json(500, r#"{"detail":"upstream"}"#),
        _ => Reply::json(200, output(&format!("{base}/files/a.png"))),
    })
    .await;
    let dir = scratch("5xx");
    run_to_dir(&server, WaitMode::Poll, &dir).await.expect("retried to the output");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let (server, _) = relay(|_, _| Reply::typed(500, "text/html", "<html>oops</html>")).await;
    let err = run_to_dir(&server, WaitMode::Poll, &dir).await.expect_err("still failing");
    assert!(matches!(err, Error::Http { status: 500, .. }), "a 5xx says nothing of the job: {err}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn an_answer_cut_short_is_fetched_again() {
    // Lost otherwise: a reset in the middle of the result body ends the run.
    let (server, calls) = relay(|n, base| {
        let r = Reply::json(200, output(&format!("{base}/files/a.png")));
        if n == 0 { r.cut_at(40) } else { r }
    })
    .await;
    let dir = scratch("cut");
    run_to_dir(&server, WaitMode::Poll, &dir).await.expect("asked again");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_job_the_relay_forgot_is_expired() {
    // Lost otherwise: a job pending forever that nobody can ever fetch.
    let server = CaptureServer::start(|req| {
        if req.method == "POST" { (200, status("http://x", "IN_QUEUE")) } else { (404, r#"{"detail":"Request not found"}"#.into()) }
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let handle = client.handle(REDUX, ID).unwrap();
    let err = handle.finish_to_dir(&scratch("gone"), ID, |_| {}).await.expect_err("gone");
    assert!(matches!(&err, Error::Expired { request_id, .. } if request_id == ID), "{err}");
}

#[tokio::test]
async fn a_silent_status_stream_falls_back_to_polling() {
    // Lost otherwise: `falq run` hangs forever on a half-open connection.
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        if req.method == "POST" {
            Reply::json(200, status(base, "IN_QUEUE"))
        } else if req.target.contains("/status/stream") {
            let event = format!("data: {}\n\n", status(base, "IN_PROGRESS"));
            Reply::sse(event).then_hold(Duration::from_secs(30))
        } else if req.target.contains("/status") {
            Reply::json(200, status(base, "COMPLETED"))
        } else if req.target.starts_with("/files/") {
            Reply::bytes(200, "image/png", PNG)
        } else {
            Reply::json(200, output(&format!("{base}/files/a.png")))
        }
    })
    .await;
    let started = Instant::now();
    let dir = scratch("silent");
    run_to_dir(&server, WaitMode::Stream, &dir).await.expect("completed by polling");
    assert!(started.elapsed() < Duration::from_secs(10), "fell back after the idle limit, not the hold");
    assert_eq!(server.count("GET", &format!("/fal-ai/flux-1/requests/{ID}/status?")), 1, "one poll after the stream went silent");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_result_withheld_after_completed_ends_pending_within_the_retry_policy_and_is_never_cancelled() {
    // Lost otherwise: a run that waits for ever on a relay proxying a stale status (its
    // status says COMPLETED, its result 202 IN_PROGRESS), then cancels a completed job.
    let (server, calls) = relay(|_, base| Reply::json(202, status(base, "IN_PROGRESS"))).await;
    let mut c = config(&server.base_url, WaitMode::Poll);
    c.retry.max_attempts = 4;
    c.wait.deadline = None;
    let client = Client::new(c).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
    let err = handle.finish_to_dir(&scratch("withheld"), ID, |_| {}).await.expect_err("withheld");
    assert!(matches!(&err, Error::ResultWithheld { request_id, attempts: 4, .. } if request_id == ID), "{err}");
    assert!(err.to_string().contains("stays pending (not cancelled)"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 4, "the retry policy's attempts, then no more");
    assert_eq!(server.count("PUT", "/"), 0, "never a cancel");
    // With a deadline that passes first: a timeout, and still no cancel of a completed job.
    let mut c = config(&server.base_url, WaitMode::Poll);
    c.retry.max_attempts = 1000;
    c.wait.deadline = Some(Duration::from_millis(300));
    c.wait.cancel_on_timeout = falq::CancelOnTimeout::Cancel;
    let client = Client::new(c).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
    let err = handle.finish_to_dir(&scratch("withheld2"), ID, |_| {}).await.expect_err("timeout");
    assert!(matches!(&err, Error::Timeout { cancelled: false, completed: true, .. }), "{err}");
    assert_eq!(server.count("PUT", "/"), 0, "a job the relay called completed is never cancelled");
}

#[tokio::test]
async fn a_download_longer_than_announced_or_not_what_it_claims_is_refused_and_never_kept() {
    // Lost otherwise: a body without end written to disk, or garbage kept under an image's name.
    for (name, served, announced_size, says) in [
        ("long", [PNG, &[7u8; 4096][..]].concat(), Some(64), "longer than 64 bytes, the output's file_size"),
        ("zeros", vec![0u8; 1 << 20], None, "announced as image/png but its first bytes are not (00 00"),
        ("video", b"\0\0\0\x18ftypisom\0\0\0\0 a video".to_vec(), None, "announced as image (image/png) but its first bytes are video/mp4"),
    ] {
        let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
            let t = req.target.as_str();
            if req.method == "POST" {
                Reply::json(200, status(base, "IN_QUEUE"))
            } else if t.contains("/status/stream") {
                Reply::json(404, r#"{"detail":"Not Found"}"#)
            } else if t.contains("/status") {
                Reply::json(200, status(base, "COMPLETED"))
            } else if t.starts_with("/files/") {
                Reply::bytes(200, "image/png", served.clone())
            } else {
                let mut out: Value = serde_json::from_str(&output(&format!("{base}/files/a.png"))).unwrap();
                out["images"][0]["file_size"] = announced_size.map_or(Value::Null, |n: u64| json!(n));
                Reply::json(200, out.to_string())
            }
        })
        .await;
        let dir = scratch(&format!("refused-{name}"));
        let mut c = config(&server.base_url, WaitMode::Poll);
        c.retry.max_attempts = 2;
        let client = Client::new(c).unwrap();
        let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
        let err = handle.finish_to_dir(&dir, ID, |_| {}).await.expect_err(name);
        // The job completed: the error names it, around what the download came to.
        let Error::NotSaved { request_id, source, .. } = &err else { panic!("{name}: {err}") };
        assert_eq!(request_id, ID, "{name}");
        assert!(
            matches!(&**source, Error::Download { url, message } if url.ends_with("/files/a.png") && message.contains(says)),
            "{name}: {err}"
        );
        let left: Vec<_> = std::fs::read_dir(&dir).map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "{name}: nothing kept: {left:?}");
    }
}

#[tokio::test]
async fn a_status_stream_of_keep_alives_alone_is_checked_with_a_status_poll() {
    // Lost otherwise: a run that waits for ever on a stream that keeps the connection
    // alive but stopped telling the status, while the job completed long ago.
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        if req.method == "POST" {
            Reply::json(200, status(base, "IN_QUEUE"))
        } else if req.target.contains("/status/stream") {
            let first = format!("data: {}\n\n", status(base, "IN_PROGRESS"));
            Reply::sse(first).then_hold(Duration::from_secs(60)).repeating(Duration::from_millis(20), ": keep-alive\n\n")
        } else if req.target.contains("/status") {
            Reply::json(200, status(base, "COMPLETED"))
        } else if req.target.starts_with("/files/") {
            Reply::bytes(200, "image/png", PNG)
        } else {
            Reply::json(200, output(&format!("{base}/files/a.png")))
        }
    })
    .await;
    let mut c = config(&server.base_url, WaitMode::Stream);
    c.timeouts.stream_idle = Duration::from_secs(30);
    c.timeouts.stream_quiet = Duration::from_millis(200);
    let client = Client::new(c).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
    let (_, files) = handle.finish_to_dir(&scratch("keepalive"), ID, |_| {}).await.expect("completed");
    assert_eq!(files.len(), 1);
    assert_eq!(server.count("GET", &format!("/fal-ai/flux-1/requests/{ID}/status/stream")), 1);
    assert!(server.count("GET", &format!("/fal-ai/flux-1/requests/{ID}/status?")) >= 1, "the status was asked");
}

#[tokio::test]
async fn an_endless_stream_line_or_an_oversized_result_is_refused_not_buffered() {
    // Lost otherwise: memory without limit (a stream line with no newline, a 100 MB result).
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        if req.method == "POST" {
            Reply::json(200, status(base, "IN_QUEUE"))
        } else if req.target.contains("/status/stream") {
            Reply::sse(format!("data: {}", "x".repeat(3 << 20))).then_hold(Duration::from_secs(30))
        } else if req.target.contains("/status") {
            Reply::json(200, status(base, "COMPLETED"))
        } else {
            Reply::json(200, format!("[{}]", vec!["{}"; 600_000].join(",")))
        }
    })
    .await;
    let mut c = config(&server.base_url, WaitMode::Stream);
    c.http.max_body = 1 << 20;
    c.timeouts.stream_idle = Duration::from_secs(20);
    let client = Client::new(c).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "u"})).await.unwrap();
    let started = Instant::now();
    let err = handle.finish_to_dir(&scratch("big"), ID, |_| {}).await.expect_err("too large");
    assert!(started.elapsed() < Duration::from_secs(10), "the long line ended the stream at once");
    assert!(err.to_string().contains("body over 1048576 bytes"), "{err}");
}

#[tokio::test]
async fn thousands_of_output_files_are_downloaded_a_few_at_a_time() {
    // Lost otherwise: a result with 3,000 images opens 3,000 files and connections at once.
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        if req.target.starts_with("/files/") {
            Reply::bytes(200, "image/png", PNG).after(Duration::from_millis(20))
        } else {
            let images: Vec<Value> = (0..60).map(|i| json!({"url": format!("{base}/files/{i}.png")})).collect();
            Reply::json(200, json!({"images": images, "seed": 1}).to_string())
        }
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let dir = scratch("many");
    let files = client
        .download(
            REDUX,
            &serde_json::from_str(&{
                let images: Vec<Value> = (0..60).map(|i| json!({"url": format!("{}/files/{i}.png", server.base_url)})).collect();
                json!({"images": images}).to_string()
            })
            .unwrap(),
            &dir,
            ID,
        )
        .await
        .unwrap();
    assert_eq!(files.len(), 60);
    assert!(server.max_concurrency() <= falq::HttpPolicy::default().max_downloads, "{} at once", server.max_concurrency());
    assert_eq!(
        files.iter().map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>()[59],
        format!("{ID}-59.png"),
        "in order"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_stalled_download_ends_at_the_deadline_and_says_the_job_completed() {
    // Lost otherwise: `--timeout 5s` still running at 90 s; or the job cancelled after it was paid and done.
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        if req.method == "POST" {
            Reply::json(200, status(base, "IN_QUEUE"))
        } else if req.target.contains("/status") {
            Reply::json(200, status(base, "COMPLETED"))
        } else if req.target.starts_with("/files/") {
            Reply::typed(200, "image/png", "\u{89}PNG").then_hold(Duration::from_secs(60))
        } else {
            Reply::json(200, output(&format!("{base}/files/a.png")))
        }
    })
    .await;
    let mut c = config(&server.base_url, WaitMode::Poll);
    c.wait.deadline = Some(Duration::from_secs(1));
    let client = Client::new(c).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "u"})).await.unwrap();
    let started = Instant::now();
    let err = handle.finish_to_dir(&scratch("stall"), ID, |_| {}).await.expect_err("deadline");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, Error::Timeout { completed: true, cancelled: false, .. }), "{err}");
    assert_eq!(server.count("PUT", "/"), 0, "a completed job is never cancelled");
    assert!(err.to_string().contains("completed but its outputs were not all saved"), "{err}");
}

#[tokio::test]
async fn a_submit_that_may_have_queued_the_job_says_so() {
    // Lost otherwise: the user submits again and pays twice, or believes nothing happened.
    for reply in [Reply::json(502, r#"{"detail":"bad gateway"}"#), Reply::json(504, r#"{"detail":"Request timed out"}"#), Reply::reset()] {
        let server = CaptureServer::start_with(move |_| reply.clone()).await;
        let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
        let err = client.submit_json(REDUX, &json!({"image_url": "u"})).await.expect_err("no answer");
        assert!(err.maybe_submitted(), "{err}");
        assert!(err.to_string().contains("may have been queued"), "{err}");
        assert_eq!(server.count("POST", "/"), 1, "never sent twice");
    }
    let server =
        CaptureServer::start(|_| (422, r#"{"detail":[{"loc":["body","image_url"],"msg":"bad","type":"value_error"}]}"#.into())).await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let err = client.submit_json(REDUX, &json!({"image_url": "u"})).await.expect_err("refused");
    assert!(!err.maybe_submitted(), "a 422 queued nothing: {err}");
}

/// `body` compressed as `coding`: gzip, HTTP's deflate (zlib's format), or the raw deflate
/// stream some servers send as `deflate`.
fn compressed(coding: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let level = flate2::Compression::default();
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "zlib" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        _ => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
    }
}

#[tokio::test]
async fn answers_compressed_unasked_are_read_and_the_job_is_saved() {
    // Lost otherwise: a proxy before the relay gzips its answers, and the submit's answer,
    // unread, loses the request id of a job that was queued and paid.
    for (coding, header) in [("gzip", "gzip"), ("zlib", "deflate"), ("raw", "deflate")] {
        let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
            let plain = match req.call() {
                Target::Submit => status(base, "IN_QUEUE"),
                Target::Stream => return Reply::json(404, r#"{"detail":"Not Found"}"#),
                Target::Status => status(base, "COMPLETED"),
                Target::Result => output(&format!("{base}/files/a.png")),
                Target::Media => return Reply::bytes(200, "image/png", PNG),
            };
            Reply::bytes(200, "application/json", compressed(coding, plain.as_bytes())).header("content-encoding", header)
        })
        .await;
        let dir = scratch(&format!("compressed-{coding}"));
        let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
        let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.expect(coding);
        assert_eq!(handle.request_id, ID, "{coding}: the submit's answer read");
        let (value, files) = handle.finish_to_dir(&dir, ID, |_| {}).await.expect(coding);
        assert_eq!(value["images"][0]["url"], json!(format!("{}/files/a.png", server.base_url)), "{coding}");
        assert_eq!(std::fs::read(&files[0].path).unwrap(), PNG, "{coding}: the image itself is saved");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[tokio::test]
async fn an_answer_in_a_coding_falq_cannot_read_is_named_and_a_bomb_is_refused() {
    // Lost otherwise: garbage shown as the relay's answer, or a small answer that inflates
    // past every memory limit.
    let max = 1 << 20;
    let bomb = compressed("gzip", &vec![b' '; 4 * max]);
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| match req.call() {
        Target::Submit => Reply::json(200, status(base, "IN_QUEUE")),
        Target::Status => Reply::bytes(200, "application/json", b"\x1b\x00".to_vec()).header("content-encoding", "br"),
        Target::Result => Reply::bytes(200, "application/json", bomb.clone()).header("content-encoding", "gzip"),
        _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
    })
    .await;
    let mut c = config(&server.base_url, WaitMode::Poll);
    c.http.max_body = max;
    let handle = Client::new(c).unwrap().submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
    let err = handle.status(falq::Logs::Omit).await.expect_err("br is not read");
    let text = err.to_string();
    assert!(matches!(err, Error::Protocol { .. }) && text.contains("`br`") && text.contains(ID), "{text}");
    let err = handle.result_json().await.expect_err("a bomb is not inflated");
    let text = err.to_string();
    assert!(text.contains("HttpPolicy::max_body") && text.contains(ID), "{text}");
}

#[tokio::test]
async fn answers_after_a_byte_order_mark_and_a_stream_typed_in_capitals_are_read_as_they_mean() {
    // Lost otherwise: a relay that writes a BOM before its JSON (some frameworks do) has
    // its submit's answer unread, and the request id of a queued, paid job with it.
    const BOM: &str = "\u{feff}";
    let server = CaptureServer::start_with_base(|req: &Captured, base: &str| match req.call() {
        Target::Submit => Reply::json(200, format!("{BOM}{}", status(base, "IN_QUEUE"))),
        Target::Status => Reply::json(200, format!("{BOM}{}", status(base, "COMPLETED"))),
        Target::Stream => Reply {
            content_type: "Text/Event-Stream; charset=UTF-8".into(),
            ..Reply::sse(format!("{BOM}data: {}\n\n", status(base, "COMPLETED")))
        },
        Target::Result => Reply::json(200, format!("{BOM}{}", output(&format!("{base}/files/a.png")))),
        Target::Media => Reply::bytes(200, "image/png", PNG),
    })
    .await;
    for mode in [WaitMode::Poll, WaitMode::Stream] {
        let before = server.requests.lock().unwrap().len();
        let dir = scratch(&format!("bom-{mode:?}"));
        let client = Client::new(config(&server.base_url, mode)).unwrap();
        let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.expect("submitted");
        assert_eq!(handle.request_id, ID, "the submit's answer read");
        let (value, files) = handle.finish_to_dir(&dir, ID, |_| {}).await.expect("saved");
        assert_eq!(value["images"][0]["url"], json!(format!("{}/files/a.png", server.base_url)));
        assert_eq!(std::fs::read(&files[0].path).unwrap(), PNG);
        let calls: Vec<Target> = server.requests.lock().unwrap()[before..].iter().map(Captured::call).collect();
        if mode == WaitMode::Stream {
            assert!(calls.contains(&Target::Stream) && !calls.contains(&Target::Status), "the stream followed, no poll: {calls:?}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}

#[tokio::test]
async fn an_output_file_sent_compressed_unasked_is_never_saved_as_its_compressed_bytes() {
    // Lost otherwise: a file of text (nothing in its first bytes to check) saved as gzip.
    let text = b"a transcript, as the relay's media server keeps it\n".repeat(8);
    let gz = compressed("gzip", &text);
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| match req.call() {
        Target::Media => Reply::bytes(200, "text/plain", gz.clone()).header("content-encoding", "gzip"),
        Target::Result => {
            let mut out: Value = serde_json::from_str(&output(&format!("{base}/files/a.txt"))).unwrap();
            out["images"][0]["content_type"] = json!("text/plain");
            Reply::json(200, out.to_string())
        }
        Target::Submit => Reply::json(200, status(base, "IN_QUEUE")),
        Target::Status => Reply::json(200, status(base, "COMPLETED")),
        Target::Stream => Reply::json(404, r#"{"detail":"Not Found"}"#),
    })
    .await;
    let dir = scratch("compressed-file");
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.unwrap();
    let err = handle.finish_to_dir(&dir, ID, |_| {}).await.expect_err("not saved");
    let text = err.to_string();
    assert!(matches!(err, Error::NotSaved { .. }) && text.contains("`gzip`") && text.contains(ID), "{text}");
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing saved");
}

#[tokio::test]
async fn a_refusal_in_a_coding_falq_cannot_read_is_still_told_by_its_status() {
    // Lost otherwise: a submit refused (422, nothing queued) reported as one that may have
    // queued a paid job, because its body came in a coding falq cannot read.
    for (coding, body) in [("br", b"\x1b\x00\x00".to_vec()), ("gzip", b"not gzip".to_vec())] {
        let server = CaptureServer::start_with_base(move |req: &Captured, _: &str| match req.call() {
            Target::Submit => Reply::bytes(422, "application/json", body.clone()).header("content-encoding", coding),
            _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
        })
        .await;
        let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
        let err = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await.expect_err(coding);
        assert!(matches!(err, Error::JobFailed { status: 422, .. }) && !err.maybe_submitted(), "{coding}: {err}");
    }
}
