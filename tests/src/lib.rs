//! Helpers of the test crate: fixtures and a capturing HTTP server on 127.0.0.1.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod conformance;
pub mod tls;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts `cmd` (standard output piped, errors dropped) and reads its first line,
/// `listening on X`, as `falq sim` and the TLS front print it: answers the process and X.
/// Panics with the line when it says anything else (the process did not start listening).
pub fn spawn_listening(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"));
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut first).expect("a first line");
    let at = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{program}: first line was {first:?}")).to_string();
    (child, at)
}

/// A client configuration for mock relays: the relay key, `mode`, 5 ms polls and a fast
/// retry policy (4 attempts, 5–20 ms apart), so rules are tested in milliseconds.
pub fn fast_config(base: &str, mode: falq::WaitMode) -> falq::Config {
    let mut c = falq::Config::new(base).expect("a base URL").with_key(falq::ApiKey::new("sk-relay-secret"));
    c.wait.mode = mode;
    c.wait.poll = falq::PollPolicy::fixed(std::time::Duration::from_millis(5));
    c.retry = falq::RetryPolicy {
        max_attempts: 4,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(20),
        jitter: 0.25,
        max_retry_after: std::time::Duration::from_secs(2),
    };
    c
}

/// The generated client's hooks for mock servers: no key, the same fast retry policy as
/// [`fast_config`] (a retried error costs milliseconds, not seconds).
pub fn fast_hooks() -> falq_api::Hooks {
    falq_api::Hooks::default().with_retry(fast_config("http://127.0.0.1", falq::WaitMode::Poll).retry)
}

/// A fixture file's text, from `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A relay's queue status of request `id` of `fal-ai/flux-1` in `state`, its URLs on `base`.
pub fn queue_status(base: &str, id: &str, state: &str) -> String {
    serde_json::json!({"status": state, "request_id": id,
        "response_url": format!("{base}/fal-ai/flux-1/requests/{id}"),
        "status_url": format!("{base}/fal-ai/flux-1/requests/{id}/status"),
        "cancel_url": format!("{base}/fal-ai/flux-1/requests/{id}/cancel"), "queue_position": 0})
    .to_string()
}

/// The seed's image result, its one image at `image_url`.
pub fn image_output(image_url: &str) -> String {
    let mut r = fixture_json("seeds/result-image.json");
    r["images"][0]["url"] = serde_json::json!(image_url);
    r.to_string()
}

/// A fixture parsed as JSON.
pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// One request the capture server received.
#[derive(Clone, Debug)]
pub struct Captured {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query.
    pub target: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Which of a paid job's calls a request to a mock relay is, told by its method and path
/// as falq sends them (`/files/...` is where the mock relays serve outputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The submit (a POST).
    Submit,
    /// A status call.
    Status,
    /// The status stream.
    Stream,
    /// A result call (any other GET).
    Result,
    /// An output's download.
    Media,
}

impl Captured {
    /// Which call this is.
    pub fn call(&self) -> Target {
        let t = self.target.as_str();
        if self.method == "POST" {
            Target::Submit
        } else if t.contains("/status/stream") {
            Target::Stream
        } else if t.contains("/status") {
            Target::Status
        } else if t.starts_with("/files/") {
            Target::Media
        } else {
            Target::Result
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What a mock media host serves as an image: a PNG's first bytes, so a download's check
/// of what a file claims to be passes (the rest is not a whole picture).
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR mock image bytes";

/// How the capture server answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The content type (JSON unless set).
    pub content_type: String,
    /// Close the connection without answering (a reset).
    pub reset: bool,
    /// Wait this long before answering.
    pub delay: std::time::Duration,
    /// After the body, keep the connection open this long before closing (a stalled
    /// or half-open server); with `no_length`, the client cannot tell the body is over.
    pub hold: std::time::Duration,
    /// Send no `content-length`: the body ends when the connection closes (as a stream).
    pub no_length: bool,
    /// Send only this many bytes of the body (with the full `content-length`), then
    /// close: an answer cut short by a reset.
    pub cut_at: Option<usize>,
    /// While holding, send this text at this interval (a stream's keep-alive comments, a
    /// trickled body).
    pub repeat: Option<(std::time::Duration, String)>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.into().into_bytes(),
            content_type: "application/json".into(),
            reset: false,
            delay: std::time::Duration::ZERO,
            hold: std::time::Duration::ZERO,
            no_length: false,
            cut_at: None,
            repeat: None,
        }
    }

    /// Any body with its content type.
    pub fn typed(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Self { content_type: content_type.into(), ..Self::json(status, body) }
    }

    /// Any bytes with their content type (an image, a video).
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self { content_type: content_type.into(), body: body.into(), ..Self::json(status, "") }
    }

    /// Sends the body as a stream (no length), then keeps the connection open for `hold`.
    pub fn then_hold(mut self, hold: std::time::Duration) -> Self {
        self.no_length = true;
        self.hold = hold;
        self
    }

    /// While holding, sends `text` every `every` (keep-alive comments, a trickle).
    pub fn repeating(mut self, every: std::time::Duration, text: &str) -> Self {
        self.repeat = Some((every, text.into()));
        self
    }

    /// Sends only the first `n` bytes of the body, then closes.
    pub fn cut_at(mut self, n: usize) -> Self {
        self.cut_at = Some(n);
        self
    }

    /// A server-sent events answer (the events already formatted).
    pub fn sse(body: impl Into<String>) -> Self {
        Self { content_type: "text/event-stream".into(), ..Self::json(200, body) }
    }

    /// No answer: the connection is closed.
    pub fn reset() -> Self {
        Self { reset: true, ..Self::json(0, "") }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers after a delay.
    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<(u16, String)> for Reply {
    fn from((status, body): (u16, String)) -> Self {
        Self::json(status, body)
    }
}

/// What the capture server answers.
pub type Responder = Arc<dyn Fn(&Captured) -> Reply + Send + Sync>;

/// A server on 127.0.0.1 that records every request and answers with a responder.
pub struct CaptureServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Every request so far.
    pub requests: Arc<Mutex<Vec<Captured>>>,
    /// Requests being answered now, and the most there ever were at once.
    pub concurrency: Arc<Mutex<(usize, usize)>>,
}

impl CaptureServer {
    /// Starts a server answering every request with `respond` (a `(status, json)` pair).
    pub async fn start(respond: impl Fn(&Captured) -> (u16, String) + Send + Sync + 'static) -> Self {
        Self::start_with(move |req| Reply::from(respond(req))).await
    }

    /// Starts a server whose responder is also told the server's own base URL (to answer
    /// URLs that point back at it).
    pub async fn start_with_base(respond: impl Fn(&Captured, &str) -> Reply + Send + Sync + 'static) -> Self {
        let base = Arc::new(std::sync::OnceLock::<String>::new());
        let known = base.clone();
        let server = Self::start_with(move |req| respond(req, known.get().map_or("", String::as_str))).await;
        base.set(server.base_url.clone()).expect("set once");
        server
    }

    /// Starts a server answering every request with a full [`Reply`].
    pub async fn start_with(respond: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let concurrency = Arc::new(Mutex::new((0usize, 0usize)));
        let respond: Responder = Arc::new(respond);
        let seen = requests.clone();
        let busy = concurrency.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let respond = respond.clone();
                let busy = busy.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut stream).await else { return };
                    let reply = respond(&req);
                    seen.lock().expect("lock").push(req);
                    {
                        let mut b = busy.lock().expect("lock");
                        b.0 += 1;
                        b.1 = b.1.max(b.0);
                    }
                    let _done = Decrement(busy);
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    if reply.reset {
                        // A zero linger makes the close a TCP reset; it cannot block.
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                        drop(stream);
                        return;
                    }
                    let extra: String = reply.headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
                    let length = if reply.no_length { String::new() } else { format!("content-length: {}\r\n", reply.body.len()) };
                    let head = format!(
                        "HTTP/1.1 {} X\r\ncontent-type: {}\r\n{length}{extra}connection: close\r\n\r\n",
                        reply.status, reply.content_type
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let body = reply.body.as_slice();
                    let _ = stream.write_all(&body[..reply.cut_at.unwrap_or(body.len()).min(body.len())]).await;
                    let _ = stream.flush().await;
                    if reply.cut_at.is_some() {
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                        return;
                    }
                    if !reply.hold.is_zero() {
                        match &reply.repeat {
                            Some((every, text)) => {
                                let until = tokio::time::Instant::now() + reply.hold;
                                while tokio::time::Instant::now() < until {
                                    tokio::time::sleep(*every).await;
                                    if stream.write_all(text.as_bytes()).await.is_err() || stream.flush().await.is_err() {
                                        break;
                                    }
                                }
                            }
                            None => tokio::time::sleep(reply.hold).await,
                        }
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { base_url, requests, concurrency }
    }

    /// The most requests that were ever being answered at once.
    pub fn max_concurrency(&self) -> usize {
        self.concurrency.lock().expect("lock").1
    }

    /// How many requests so far had this method and a target starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.received().iter().filter(|r| r.method == method && r.target.starts_with(prefix)).count()
    }

    /// A copy of the requests received so far.
    pub fn received(&self) -> Vec<Captured> {
        self.requests.lock().expect("lock").clone()
    }
}

struct Decrement(Arc<Mutex<(usize, usize)>>);

impl Drop for Decrement {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.lock() {
            b.0 -= 1;
        }
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))).collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured { method, target, headers, body })
}
