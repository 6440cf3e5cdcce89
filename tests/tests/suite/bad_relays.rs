//! Every call of a paid job (submit, status, stream, result, the output's download)
//! against every way a relay answers badly (a page of HTML, an empty or cut body, JSON of
//! another shape, a reset, a server error, a 404, silence), once or for good: the job
//! ends, in the time its policy allows, with its output saved whole or with an error that
//! says what became of it: the request id once the relay gave one, whether a failed submit
//! may have queued it. A bad answer once costs nothing but the submit's (never sent twice).
//! No case leaves a file that is not the output the relay served.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use falq::{Client, WaitMode};
use serde_json::json;
use tests::{CaptureServer, Captured, PNG, Reply, Target};

const ID: &str = "0b5e1c2d-0000-4000-8000-00000000bad0";
const REDUX: &str = "fal-ai/flux-1/dev/redux";

/// The deadline of a job answered badly every time.
const DEADLINE: Duration = Duration::from_secs(4);
/// Past this, a job still running is hung: its deadline (or, answered badly once, its
/// retries) should have ended it long before.
const HUNG: Duration = Duration::from_secs(60);

const TARGETS: [Target; 5] = [Target::Submit, Target::Status, Target::Stream, Target::Result, Target::Media];

fn status(base: &str, state: &str) -> String {
    tests::queue_status(base, ID, state)
}

fn output(base: &str) -> String {
    tests::image_output(&format!("{base}/files/out.png"))
}

/// What a relay that behaves answers.
fn good(target: Target, base: &str) -> Reply {
    match target {
        Target::Submit => Reply::json(200, status(base, "IN_QUEUE")),
        Target::Status => Reply::json(200, status(base, "COMPLETED")),
        Target::Stream => Reply::sse(format!("data: {}\n\n", status(base, "COMPLETED"))),
        Target::Result => Reply::json(200, output(base)),
        Target::Media => Reply::bytes(200, "image/png", PNG),
    }
}

/// A bad answer made from what the good one would have been.
type Spoil = fn(Reply) -> Reply;

/// The ways of answering badly, by name.
fn bad_answers() -> Vec<(&'static str, Spoil)> {
    vec![
        ("a page of HTML", |_| Reply::typed(200, "text/html", "<html><body>502 Bad Gateway</body></html>")),
        ("an empty body", |good| Reply { body: vec![], ..good }),
        ("a body cut short", |good| {
            let n = good.body.len() / 2;
            good.cut_at(n)
        }),
        ("JSON of another shape", |good| Reply { body: b"[1, 2, 3]".to_vec(), ..good }),
        ("an empty object", |good| Reply { body: b"{}".to_vec(), ..good }),
        ("a reset", |_| Reply::reset()),
        ("HTTP 500 with HTML", |_| Reply::typed(500, "text/html", "<html>Internal Server Error</html>")),
        ("HTTP 502", |_| Reply::json(502, r#"{"detail": "upstream unavailable"}"#)),
        ("HTTP 404", |_| Reply::json(404, r#"{"detail": "Not Found"}"#)),
        ("silence", |good| good.after(Duration::from_secs(30))),
        ("a body compressed unasked (gzip)", |good| {
            let body = gzipped(&good.body);
            Reply { body, ..good }.header("content-encoding", "gzip")
        }),
        ("JSON after a byte-order mark", |good| Reply { body: [&b"\xEF\xBB\xBF"[..], &good.body].concat(), ..good }),
        ("a body in a coding falq cannot read (br)", |good| {
            let body = gzipped(&good.body);
            Reply { body, ..good }.header("content-encoding", "br")
        }),
    ]
}

/// `body` compressed as gzip.
fn gzipped(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body).unwrap();
    gz.finish().unwrap()
}

/// The client: the test suite's fast retries and short timeouts. A relay that answers
/// badly every time (silence included) is ended by the job's deadline; a relay that
/// answers badly once has no deadline to meet: its job must end saved on its own, however
/// slow a loaded machine makes the retries (the outer bound catches a hang either way).
fn client(base: &str, mode: WaitMode, once: bool) -> Client {
    let mut c = tests::fast_config(base, mode);
    c.wait.deadline = if once { None } else { Some(DEADLINE) };
    c.timeouts.stream_idle = Duration::from_millis(300);
    c.timeouts.request = Duration::from_secs(1);
    c.timeouts.read = Duration::from_secs(1);
    Client::new(c).unwrap()
}

/// One job against a relay that answers `target` with `bad` (the first time only, or
/// every time); the rest of the relay behaves. Answers what is wrong, if anything.
async fn case(target: Target, what: &str, bad: Spoil, once: bool, dir: std::path::PathBuf) -> Option<String> {
    let seen = Arc::new(AtomicUsize::new(0));
    let n = seen.clone();
    let server = CaptureServer::start_with_base(move |req: &Captured, base: &str| {
        let t = req.call();
        let good = good(t, base);
        if t == target && (!once || n.fetch_add(1, Ordering::SeqCst) == 0) { bad(good) } else { good }
    })
    .await;
    let label = format!("{target:?} answered {what} {}", if once { "once" } else { "every time" });
    // Status calls are made when polling; every other call is made when streaming too.
    let mode = if target == Target::Status { WaitMode::Poll } else { WaitMode::Stream };
    let client = client(&server.base_url, mode, once);
    let run = async {
        let handle = client.submit_json(REDUX, &json!({"image_url": "https://example.test/in.png"})).await?;
        handle.finish_to_dir(&dir, ID, |_| {}).await
    };
    let outcome = match tokio::time::timeout(HUNG, run).await {
        Err(_) => return Some(format!("{label}: still running after {HUNG:?} (a deadline of {DEADLINE:?} if answered badly every time)")),
        Ok(o) => o,
    };
    let mut wrong = Vec::new();
    match &outcome {
        Ok((value, files)) => {
            if value["images"][0]["url"] != json!(format!("{}/files/out.png", server.base_url)) {
                wrong.push(format!("a success with an output that is not the relay's: {value}"));
            }
            if files.is_empty() {
                wrong.push("a success with no file saved".into());
            }
        }
        Err(e) => {
            let text = e.to_string();
            // Once is bad luck, not a lost job: every call but the submit (never sent twice)
            // is asked again, and a 404 (the relay forgot the job or the file) is the only
            // answer that ends it.
            if once && target != Target::Submit && what != "HTTP 404" {
                wrong.push(format!("answered badly once, the job was not saved: {text}"));
            }
            if target == Target::Submit {
                let fate = text.contains("nothing was queued") || text.contains("may have been queued");
                if !fate {
                    wrong.push(format!("a failed submit that does not say whether the job may exist: {text}"));
                }
                if e.maybe_submitted() != text.contains("may have been queued") {
                    wrong.push(format!("maybe_submitted() is {} but the message says otherwise: {text}", e.maybe_submitted()));
                }
            } else if !text.contains(ID) {
                wrong.push(format!("an error that does not name the request: {text}"));
            }
        }
    }
    // Nothing but the whole output is left on disk.
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        if bytes != PNG {
            wrong.push(format!("{} left on disk, not the output ({} bytes)", entry.path().display(), bytes.len()));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    (!wrong.is_empty()).then(|| format!("{label}: {}", wrong.join("; ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_answered_badly_ends_the_job_saved_or_said() {
    let root = std::env::temp_dir().join(format!("falq-bad-relays-{}", std::process::id()));
    let mut cases = Vec::new();
    for target in TARGETS {
        for (i, (what, bad)) in bad_answers().into_iter().enumerate() {
            for once in [true, false] {
                let dir = root.join(format!("{target:?}-{i}-{once}"));
                cases.push(case(target, what, bad, once, dir));
            }
        }
    }
    let total = cases.len();
    let wrong: Vec<String> = futures_util::future::join_all(cases).await.into_iter().flatten().collect();
    let _ = std::fs::remove_dir_all(&root);
    assert!(wrong.is_empty(), "{} of {total} cases:\n{}", wrong.len(), wrong.join("\n"));
}
