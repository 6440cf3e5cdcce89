//! The HTTP side: connections that can be reset, fault injection, and the handler of every route.

mod admin;
mod conn;
mod jobs;
mod output;

pub(crate) use admin::*;
pub(crate) use conn::*;
use jobs::*;
pub(crate) use output::*;

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use falq_api::types::QueueStatusKind;
use futures_util::{StreamExt, stream};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

use crate::auth::check_auth;
use crate::catalog::{Catalog, OutputPlan, plan_output};
use crate::counters::CounterRoute;
use crate::fault::{FaultKind, FaultPlan, FaultRoute, default_error_type};
use crate::queue::{CancelResult, Core, Job, Outcome, Phase, SubmitExtras};
use crate::render::render_file;
use crate::route::{QueueCall, Route, app_path_matches, route};
use crate::source;
use crate::synth::{self, JobValues, MediaFile, Placed};
use crate::util::mix64;
use crate::validate::{self, detail_item};
use crate::{SimConfig, SimError, SimMode};
use falq_api::FileKind;

/// The body of every answer.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// State shared by the accept loop, the connections, the scheduler and the [`crate::Sim`] handle.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) catalog: Catalog,
    pub(crate) core: Mutex<Core>,
    pub(crate) media: Mutex<MediaCache>,
    /// Wakes the scheduler when a job is submitted or cancelled.
    pub(crate) wake: Notify,
    /// `http://127.0.0.1:PORT[/prefix]` (`https://` when serving TLS), or the configured public URL.
    pub(crate) base_url: String,
    /// How connections are accepted when the simulator serves HTTPS.
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Connections accepted so far.
    pub(crate) connections: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// The core, even if a panicking thread poisoned the lock (its state stays consistent:
    /// every change is made whole under the lock).
    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every counter: the core's, and the connections accepted.
    pub(crate) fn counters(&self) -> crate::Counters {
        let mut counters = self.core().counters();
        counters.connections = self.connections.load(std::sync::atomic::Ordering::Relaxed);
        counters
    }

    fn media(&self) -> MutexGuard<'_, MediaCache> {
        self.media.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The scheduler: runs what is due, sleeps until the next deadline or a wake-up.
pub(crate) async fn schedule(shared: Arc<Shared>) {
    loop {
        let (next, webhooks) = {
            let mut core = shared.core();
            (core.pump(Instant::now()), core.take_webhooks())
        };
        for seq in webhooks {
            tokio::spawn(deliver_webhook(shared.clone(), seq));
        }
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    _ = shared.wake.notified() => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// An answer before it is counted and sent.
struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: ReplyBody,
    /// The job whose counters the bytes go to.
    job: Option<u64>,
}

enum ReplyBody {
    Full(Bytes),
    /// Part of a body whose `Content-Length` announces more: sent as a stream, so hyper
    /// trusts the header and closes the connection when the part runs out.
    Truncated(Bytes),
    /// A stream that counts its own bytes.
    Stream(Body),
}

impl Reply {
    fn json(status: StatusCode, value: &Value) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Reply {
            status,
            headers: vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body: ReplyBody::Full(Bytes::from(body)),
            job: None,
        }
    }

    fn detail(status: StatusCode, detail: &str) -> Reply {
        Reply::json(status, &json!({ "detail": detail }))
    }

    fn header(mut self, name: HeaderName, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    fn for_job(mut self, seq: u64) -> Reply {
        self.job = Some(seq);
        self
    }

    /// The same answer with its body cut in half: never valid JSON. With `announce_whole`
    /// (media), the `Content-Length` still announces the whole file, so the client sees the
    /// connection close mid-body, like an interrupted download.
    fn malformed(mut self, announce_whole: bool) -> Reply {
        if let ReplyBody::Full(b) = &self.body {
            let cut = b.slice(..b.len() / 2);
            if announce_whole {
                let whole = b.len().to_string();
                self = self.header(header::CONTENT_LENGTH, &whole);
            }
            self.body = match (announce_whole, cut.is_empty()) {
                (true, _) => ReplyBody::Truncated(cut),
                (false, true) => ReplyBody::Full(Bytes::from_static(b"{")),
                (false, false) => ReplyBody::Full(cut),
            };
        }
        self
    }
}

/// Serves one request: routing, counting, faults, auth, the handler.
pub(crate) async fn handle(shared: Arc<Shared>, control: Arc<ConnControl>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let routed = match strip_prefix(&path, &shared.config.path_prefix) {
        Some(rest) => route(request.method(), rest, |p| shared.catalog.endpoint(p).is_some()),
        None => Route::NotFound,
    };
    let counter = counter_route(&routed);
    let fault = {
        let mut core = shared.core();
        let job = routed_request_id(&routed).and_then(|id| core.find(id));
        if let Some(j) = job.and_then(|seq| core.job_mut(seq)) {
            j.counters.count_request(counter);
        }
        core.routes.get_mut(counter).requests += 1;
        if request.headers().contains_key("api-version") {
            core.routes.get_mut(counter).marked += 1;
        }
        let fault = fault_route(&routed).and_then(|r| core.faults.on_request(r));
        if fault.is_some() {
            core.routes.get_mut(counter).faults_injected += 1;
        }
        fault.map(|f| (f, job))
    };
    let mut malformed = false;
    if let Some((fault, job)) = fault {
        match fault {
            FaultKind::Reset => {
                shared.core().routes.get_mut(counter).resets += 1;
                control.reset();
                return std::future::pending().await;
            }
            FaultKind::Stall(d) => tokio::time::sleep(d).await,
            FaultKind::Malformed => malformed = true,
            FaultKind::Status { code, retry_after, error_type } => {
                let mut reply = fault_reply(code, retry_after, error_type.as_deref());
                reply.job = job;
                return finish(&shared, counter, reply);
            }
        }
    }
    let reply = dispatch(&shared, routed, request, malformed).await;
    let reply = if malformed { reply.malformed(counter == CounterRoute::Media) } else { reply };
    finish(&shared, counter, reply)
}

async fn dispatch(shared: &Arc<Shared>, routed: Route, request: Request<Incoming>, malformed: bool) -> Reply {
    let authorized = || {
        let header = request.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        check_auth(shared.config.mode, shared.config.api_key.as_deref(), header)
            .map_err(|failure| Reply::detail(StatusCode::UNAUTHORIZED, &failure.detail(shared.config.mode)))
    };
    match routed {
        Route::Submit(endpoint) => match authorized() {
            Ok(()) => submit(shared, &endpoint, request).await,
            Err(reply) => reply,
        },
        Route::Queue { app_path, request_id, call } => {
            if let Err(reply) = authorized() {
                return reply;
            }
            let logs = wants_logs(request.uri().query());
            match call {
                QueueCall::Status => status(shared, &app_path, &request_id, logs),
                QueueCall::Stream => status_stream(shared, &app_path, &request_id, logs, malformed),
                QueueCall::Result => result(shared, &app_path, &request_id).await,
                QueueCall::Cancel => cancel(shared, &app_path, &request_id),
            }
        }
        Route::Media(name) => media(shared, &name).await,
        Route::AdminCounters => {
            let mut counters = serde_json::to_value(shared.counters()).unwrap_or_default();
            if query_flag(request.uri().query(), "per_job") == Some(false)
                && let Some(o) = counters.as_object_mut()
            {
                o.remove("per_job");
            }
            Reply::json(StatusCode::OK, &counters)
        }
        Route::AdminFaults => admin_faults(shared, request).await,
        Route::MethodNotAllowed => Reply::detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        Route::UnknownEndpoint(id) => Reply::detail(StatusCode::NOT_FOUND, &format!("Endpoint '{id}' not found")),
        Route::NotFound => Reply::detail(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// Counts the answer's bytes and status, and builds the response.
fn finish(shared: &Shared, counter: CounterRoute, reply: Reply) -> Response<Body> {
    let (len, body) = match reply.body {
        ReplyBody::Full(bytes) => (bytes.len() as u64, Full::new(bytes).boxed_unsync()),
        ReplyBody::Truncated(part) => {
            let len = part.len() as u64;
            // The part, then a pause (hyper flushes it), then the end: short of the
            // announced length, so hyper closes the connection mid-body.
            let frames = stream::iter([Ok(Frame::data(part))]).chain(stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok(Frame::data(Bytes::new()))
            }));
            (len, StreamBody::new(frames).boxed_unsync())
        }
        ReplyBody::Stream(body) => (0, body),
    };
    {
        let mut core = shared.core();
        let route = core.routes.get_mut(counter);
        route.bytes_sent += len;
        *route.responses.entry(reply.status.as_u16()).or_default() += 1;
        if let Some(job) = reply.job.and_then(|seq| core.job_mut(seq)) {
            job.counters.bytes_sent += len;
        }
    }
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        headers.append(name, value);
    }
    response
}

fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn counter_route(routed: &Route) -> CounterRoute {
    match routed {
        Route::Submit(_) => CounterRoute::Submit,
        Route::Queue { call: QueueCall::Status, .. } => CounterRoute::Status,
        Route::Queue { call: QueueCall::Stream, .. } => CounterRoute::Stream,
        Route::Queue { call: QueueCall::Result, .. } => CounterRoute::Result,
        Route::Queue { call: QueueCall::Cancel, .. } => CounterRoute::Cancel,
        Route::Media(_) => CounterRoute::Media,
        Route::AdminCounters | Route::AdminFaults => CounterRoute::Admin,
        Route::MethodNotAllowed | Route::UnknownEndpoint(_) | Route::NotFound => CounterRoute::Other,
    }
}

fn fault_route(routed: &Route) -> Option<FaultRoute> {
    Some(match counter_route(routed) {
        CounterRoute::Submit => FaultRoute::Submit,
        CounterRoute::Status => FaultRoute::Status,
        CounterRoute::Stream => FaultRoute::Stream,
        CounterRoute::Result => FaultRoute::Result,
        CounterRoute::Cancel => FaultRoute::Cancel,
        CounterRoute::Media => FaultRoute::Media,
        CounterRoute::Admin | CounterRoute::Other => return None,
    })
}

fn routed_request_id(routed: &Route) -> Option<&str> {
    match routed {
        Route::Queue { request_id, .. } => Some(request_id),
        Route::Media(name) => parse_media_name(name).map(|(id, _, _)| id),
        _ => None,
    }
}

/// The fal-like answer of an injected status.
fn fault_reply(code: u16, retry_after: Option<std::time::Duration>, error_type: Option<&str>) -> Reply {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error_type = error_type.or_else(|| default_error_type(code));
    let detail = match code {
        422 => {
            let item = detail_item(&["body"], "Simulated validation error (fault injection)", "value_error");
            return Reply::json(status, &json!({ "detail": [item] }));
        }
        429 => "Too many requests: rate limit exceeded (fault injection)".to_string(),
        500 => "Internal server error (fault injection)".to_string(),
        502 => "The runner disconnected (fault injection)".to_string(),
        503 => "No runner could be scheduled (fault injection)".to_string(),
        504 => "Request timed out (fault injection)".to_string(),
        _ => format!("{} (fault injection)", status.canonical_reason().unwrap_or("Error")),
    };
    let mut body = Map::new();
    body.insert("detail".into(), json!(detail));
    if let Some(t) = error_type {
        body.insert("error_type".into(), json!(t));
    }
    let mut reply = Reply::json(status, &Value::Object(body));
    if code == 429 {
        let secs = retry_after.map_or(1, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        reply = reply.header(header::RETRY_AFTER, &secs.to_string());
    }
    if let Some(t) = error_type {
        reply = reply.header(HeaderName::from_static("x-fal-error-type"), t);
    }
    reply
}

/// `logs=1` (or `true`) in a query string.
fn wants_logs(query: Option<&str>) -> bool {
    query_flag(query, "logs").unwrap_or(false)
}

fn query_flag(query: Option<&str>, name: &str) -> Option<bool> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, "1"))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| matches!(v, "1" | "true" | "yes"))
}

/// The base URL this request reached the simulator at: the configured public URL, else
/// the scheme + `Host` + prefix, else the bound address.
fn request_base(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(url) = &shared.config.public_url {
        return url.clone();
    }
    match host_of(headers) {
        Some(host) => format!("{}://{host}{}", shared.config.scheme(), shared.config.path_prefix),
        None => shared.base_url.clone(),
    }
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    ok.then_some(host)
}

/// Reads a body of at most `limit` bytes.
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, Reply> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(Reply::detail(StatusCode::PAYLOAD_TOO_LARGE, &format!("Request body larger than {limit} bytes")))
        }
        Err(e) => Err(Reply::detail(StatusCode::BAD_REQUEST, &format!("The request body could not be read: {e}"))),
    }
}

/// Parses a submit body as fal does: 422 for an empty or non-JSON body.
fn parse_input(body: &[u8]) -> Result<Value, Reply> {
    let unprocessable = |loc: Value, msg: String, kind: &str| {
        Reply::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": [{ "loc": loc, "msg": msg, "type": kind }] }))
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(unprocessable(json!(["body"]), "Field required".into(), "missing"));
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        let offset: usize =
            text.split('\n').take(e.line().saturating_sub(1)).map(|l| l.len() + 1).sum::<usize>() + e.column().saturating_sub(1);
        unprocessable(json!(["body", offset]), format!("JSON decode error: {e}"), "json_invalid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_names_table() {
        assert_eq!(parse_media_name("ab-cd-1.png"), Some(("ab-cd", 1, "png")));
        assert_eq!(media_name("ab-cd", 3, "jpeg"), "ab-cd-3.jpeg");
        assert_eq!(parse_media_name("abcd.png"), None);
        assert_eq!(parse_media_name("ab-x.png"), None);
        assert_eq!(parse_media_name("ab-1"), None);
    }

    #[test]
    fn query_flags_table() {
        assert!(wants_logs(Some("logs=1")));
        assert!(wants_logs(Some("a=b&logs=true")));
        assert!(wants_logs(Some("logs")));
        assert!(!wants_logs(Some("logs=0")));
        assert!(!wants_logs(Some("catalogs=1")));
        assert!(!wants_logs(None));
        assert_eq!(query_flag(Some("per_job=0"), "per_job"), Some(false));
    }

    #[test]
    fn prefixes_strip_on_segment_boundaries() {
        assert_eq!(strip_prefix("/fal/x", "/fal"), Some("/x"));
        assert_eq!(strip_prefix("/fal", "/fal"), Some(""));
        assert_eq!(strip_prefix("/falx/y", "/fal"), None);
        assert_eq!(strip_prefix("/x", ""), Some("/x"));
    }

    #[test]
    fn fault_bodies_table() {
        let rules = |body: &str| parse_fault_body(body.as_bytes()).map(|p| p.to_string()).map_err(|_| ());
        assert_eq!(rules(r#"["submit:429@1","status:503%20"]"#), Ok("submit:429@1; status:503%20".into()));
        assert_eq!(rules(r#""submit:429@1 status:503%20""#), Ok("submit:429@1; status:503%20".into()));
        assert_eq!(rules(r#"{"rules":["media:reset"]}"#), Ok("media:reset".into()));
        assert_eq!(rules("result:422%100"), Ok("result:422%100".into()));
        assert_eq!(rules("[]"), Ok(String::new()));
        assert_eq!(rules(r#"["submit:999"]"#), Err(()));
        assert_eq!(rules("42"), Err(()));
    }

    #[test]
    fn fault_replies_carry_fal_bodies_and_headers() {
        let body = |r: &Reply| match &r.body {
            ReplyBody::Full(b) => serde_json::from_slice::<Value>(b).unwrap(),
            ReplyBody::Truncated(_) | ReplyBody::Stream(_) => Value::Null,
        };
        let header = |r: &Reply, name: &str| r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.to_str().unwrap().to_string());
        let r = fault_reply(503, None, None);
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(&r)["error_type"], "runner_scheduling_failure");
        assert_eq!(header(&r, "x-fal-error-type").as_deref(), Some("runner_scheduling_failure"));
        let r = fault_reply(429, Some(std::time::Duration::from_millis(2500)), None);
        assert_eq!(header(&r, "retry-after").as_deref(), Some("3"));
        assert_eq!(header(&fault_reply(429, None, None), "retry-after").as_deref(), Some("1"));
        assert_eq!(body(&fault_reply(422, None, None))["detail"][0]["loc"], json!(["body"]));
        assert_eq!(body(&fault_reply(502, None, Some("custom")))["error_type"], "custom");
        assert_eq!(body(&fault_reply(404, None, None))["error_type"], Value::Null);
        let cut = Reply::json(StatusCode::OK, &json!({ "status": "IN_QUEUE" })).malformed(false);
        assert!(matches!(&cut.body, ReplyBody::Full(b) if serde_json::from_slice::<Value>(b).is_err()));
    }

    #[test]
    fn bodies_parse_like_fal() {
        let status = |body: &str| parse_input(body.as_bytes()).err().map(|r| r.status);
        assert_eq!(status("{}"), None);
        assert_eq!(status("  "), Some(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(status("{\"a\":"), Some(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(status("[1]"), None);
    }
}
