//! The HTTP side: connections that can be reset, fault injection, and the handler of every route.

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
use crate::queue::{CancelResult, Core, Job, Outcome, Phase};
use crate::render::{ImageFormat, render_file};
use crate::route::{QueueCall, Route, app_path_matches, route};
use crate::source;
use crate::util::mix64;
use crate::validate::detail_item;
use crate::{SimConfig, SimError, SimMode};

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
    /// `http://127.0.0.1:PORT[/prefix]`, or the configured public URL.
    pub(crate) base_url: String,
}

impl Shared {
    /// The core, even if a panicking thread poisoned the lock (its state stays consistent:
    /// every change is made whole under the lock).
    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn media(&self) -> MutexGuard<'_, MediaCache> {
        self.media.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The scheduler: runs what is due, sleeps until the next deadline or a wake-up.
pub(crate) async fn schedule(shared: Arc<Shared>) {
    loop {
        let next = shared.core().pump(Instant::now());
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

/// Lets a handler close its connection without answering.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    reset: AtomicBool,
    pub(crate) notify: Notify,
}

impl ConnControl {
    fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// A TCP stream that, when its connection was reset by a fault, is closed with `SO_LINGER`
/// 0, so the client sees a reset rather than a clean end.
pub(crate) struct ResettableStream {
    pub(crate) stream: TcpStream,
    pub(crate) control: Arc<ConnControl>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Encoded media kept for repeated downloads, oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct MediaCache {
    files: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
    capacity: usize,
}

impl MediaCache {
    pub(crate) fn new(capacity: usize) -> MediaCache {
        MediaCache { capacity, ..MediaCache::default() }
    }

    fn get(&self, name: &str) -> Option<Bytes> {
        self.files.get(name).cloned()
    }

    fn insert(&mut self, name: String, file: Bytes) {
        if file.len() > self.capacity || self.files.contains_key(&name) {
            return;
        }
        while self.bytes + file.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(f) = self.files.remove(&old) {
                self.bytes -= f.len();
            }
        }
        self.bytes += file.len();
        self.order.push_back(name.clone());
        self.files.insert(name, file);
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
            let mut counters = serde_json::to_value(shared.core().counters()).unwrap_or_default();
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
/// `http://` + `Host` + prefix, else the bound address.
fn request_base(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(url) = &shared.config.public_url {
        return url.clone();
    }
    match host_of(headers) {
        Some(host) => format!("http://{host}{}", shared.config.path_prefix),
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

async fn submit(shared: &Arc<Shared>, endpoint_id: &str, request: Request<Incoming>) -> Reply {
    let Some(model) = shared.catalog.endpoint(endpoint_id) else {
        return Reply::detail(StatusCode::NOT_FOUND, &format!("Endpoint '{endpoint_id}' not found"));
    };
    let base = request_base(shared, request.headers());
    let own_authority = host_of(request.headers()).map(str::to_string);
    let body = match read_body(request, shared.config.max_body_bytes).await {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let input = match parse_input(&body) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let errors = shared.catalog.validator.validate(model.info.input_schema, &input);
    if !errors.is_empty() {
        return Reply::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": errors }));
    }
    let source = match model.image_url(&input) {
        Some(url) => source::load(url, own_authority.as_deref()).await.map(|t| Some(Arc::new(t))),
        None => Ok(None),
    };
    let image_field = if input.get("image_url").is_some() { "image_url" } else { "image_urls" };
    let plan = match source {
        Ok(source) => plan_output(model, &input, source, shared.config.max_image_pixels),
        Err(e) => Err(Box::new(detail_item(&["body", image_field], e.message, e.kind))),
    };
    let (seq, body) = {
        let mut core = shared.core();
        let base = core.intern_base(&base);
        let (seq, id, position) = core.submit(model.info, base, plan, Instant::now());
        let Some(job) = core.job(seq) else {
            return Reply::detail(StatusCode::INTERNAL_SERVER_ERROR, "lost the job");
        };
        let mut body = status_body(shared, &core, job, seq, false);
        // The submit answer: relays add `logs: null, metrics: {}`, fal itself neither.
        if shared.config.mode == SimMode::Relay {
            body.insert("metrics".into(), json!({}));
        } else {
            body.shift_remove("logs");
        }
        body.insert("queue_position".into(), json!(position));
        (seq, (id, body))
    };
    shared.wake.notify_one();
    let (id, body) = body;
    Reply::json(StatusCode::OK, &Value::Object(body)).header(HeaderName::from_static("x-fal-request-id"), &id).for_job(seq)
}

/// The queue URLs of a job: on `https://queue.fal.run` in relay mode, on the simulator in direct mode.
fn job_url(shared: &Shared, job: &Job, suffix: &str) -> String {
    let origin: &str = match shared.config.mode {
        SimMode::Relay => &shared.config.relay_queue_url,
        SimMode::Direct => &job.base,
    };
    format!("{origin}/{}/requests/{}{suffix}", job.endpoint.app_id, job.id)
}

/// The status object of a job, as the status call, the stream and submit answer it.
fn status_body(shared: &Shared, core: &Core, job: &Job, seq: u64, logs: bool) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("status".into(), json!(job.phase.kind()));
    body.insert("request_id".into(), json!(job.id));
    body.insert("response_url".into(), json!(job_url(shared, job, "")));
    body.insert("status_url".into(), json!(job_url(shared, job, "/status")));
    body.insert("cancel_url".into(), json!(job_url(shared, job, "/cancel")));
    // Like fal, every status answer carries `logs`: the lines when asked for (logs=1),
    // `null` otherwise (fal-client 1.0.3 reads the key unconditionally).
    let lines = match &job.phase {
        Phase::Queued { .. } => {
            body.insert("queue_position".into(), json!(core.queue_position(seq).unwrap_or(0)));
            json!([])
        }
        Phase::Running => json!(job.logs(&core.timing)),
        Phase::Completed { inference_time, .. } => {
            body.insert("metrics".into(), json!({ "inference_time": inference_time }));
            json!(job.logs(&core.timing))
        }
    };
    body.insert("logs".into(), if logs { lines } else { Value::Null });
    body
}

/// The job a queue path names, if it exists and the path's app matches it.
fn lookup(core: &Core, app_path: &str, request_id: &str) -> Option<u64> {
    let seq = core.find(request_id)?;
    let job = core.job(seq)?;
    app_path_matches(app_path, job.endpoint.app_id, job.endpoint.id).then_some(seq)
}

fn not_found() -> Reply {
    Reply::detail(StatusCode::NOT_FOUND, "Request not found")
}

fn status(shared: &Shared, app_path: &str, request_id: &str, logs: bool) -> Reply {
    let core = shared.core();
    let Some(seq) = lookup(&core, app_path, request_id) else {
        return not_found();
    };
    let Some(job) = core.job(seq) else {
        return not_found();
    };
    let code = if job.phase.kind() == QueueStatusKind::Completed { StatusCode::OK } else { StatusCode::ACCEPTED };
    Reply::json(code, &Value::Object(status_body(shared, &core, job, seq, logs))).for_job(seq)
}

/// Server-sent status events: one now, one per change (a new state, or a new log line
/// when `logs`), a `: keep-alive` comment after each quiet interval, closed after `COMPLETED`.
fn status_stream(shared: &Arc<Shared>, app_path: &str, request_id: &str, logs: bool, malformed: bool) -> Reply {
    let (seq, rx) = {
        let core = shared.core();
        let Some(seq) = lookup(&core, app_path, request_id) else {
            return not_found();
        };
        let Some(job) = core.job(seq) else {
            return not_found();
        };
        (seq, job.watch.subscribe())
    };
    struct State {
        shared: Arc<Shared>,
        seq: u64,
        rx: watch::Receiver<u64>,
        logs: bool,
        malformed: bool,
        last: Option<(QueueStatusKind, u32)>,
        done: bool,
    }
    let state = State { shared: shared.clone(), seq, rx, logs, malformed, last: None, done: false };
    let events = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let _ = st.rx.borrow_and_update();
            let event = {
                let mut core = st.shared.core();
                let job = core.job(st.seq)?;
                let signature = (job.phase.kind(), if st.logs { job.steps_done } else { 0 });
                if st.last == Some(signature) {
                    None
                } else {
                    let json = serde_json::to_string(&status_body(&st.shared, &core, job, st.seq, st.logs)).unwrap_or_default();
                    let json = if st.malformed { String::from_utf8_lossy(&json.as_bytes()[..json.len() / 2]).into_owned() } else { json };
                    let frame = Bytes::from(format!("data: {json}\n\n"));
                    count_stream_bytes(&mut core, st.seq, frame.len());
                    st.malformed = false;
                    st.last = Some(signature);
                    st.done = signature.0 == QueueStatusKind::Completed;
                    Some(frame)
                }
            };
            if let Some(frame) = event {
                return Some((Ok(Frame::data(frame)), st));
            }
            let keep_alive = st.shared.config.timing.keep_alive;
            match tokio::time::timeout(keep_alive, st.rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => {
                    let frame = Bytes::from_static(b": keep-alive\n\n");
                    count_stream_bytes(&mut st.shared.core(), st.seq, frame.len());
                    return Some((Ok(Frame::data(frame)), st));
                }
            }
        }
    });
    Reply {
        status: StatusCode::OK,
        headers: vec![
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body: ReplyBody::Stream(StreamBody::new(events).boxed_unsync()),
        job: Some(seq),
    }
}

fn count_stream_bytes(core: &mut Core, seq: u64, len: usize) {
    core.routes.stream.bytes_sent += len as u64;
    if let Some(job) = core.job_mut(seq) {
        job.counters.bytes_sent += len as u64;
    }
}

/// What a result call needs, copied out of the lock.
enum ResultState {
    Pending,
    Cancelled,
    Failed(Value),
    Done { job: JobOutput, inference_time: f64 },
}

/// The parts of a completed job its output is drawn from.
#[derive(Clone)]
struct JobOutput {
    id: String,
    base: Arc<str>,
    plan: OutputPlan,
    seed: serde_json::Number,
    image_seed: u64,
}

async fn result(shared: &Arc<Shared>, app_path: &str, request_id: &str) -> Reply {
    let (seq, state) = {
        let core = shared.core();
        let Some(seq) = lookup(&core, app_path, request_id) else {
            return not_found();
        };
        let Some(job) = core.job(seq) else {
            return not_found();
        };
        let state = match (&job.phase, &job.plan) {
            (Phase::Completed { outcome: Outcome::Cancelled, .. }, _) => ResultState::Cancelled,
            (Phase::Completed { outcome: Outcome::Failed(item), .. }, _) => ResultState::Failed(json!({ "detail": [item] })),
            (Phase::Completed { outcome: Outcome::Success, inference_time, .. }, Ok(plan)) => ResultState::Done {
                job: JobOutput {
                    id: job.id.clone(),
                    base: job.base.clone(),
                    plan: plan.clone(),
                    seed: job.seed.clone(),
                    image_seed: job.image_seed,
                },
                inference_time: *inference_time,
            },
            _ => ResultState::Pending,
        };
        (seq, state)
    };
    let reply = match state {
        ResultState::Pending => Reply::detail(StatusCode::BAD_REQUEST, "Request is still in progress"),
        ResultState::Cancelled => {
            Reply::json(StatusCode::BAD_REQUEST, &json!({ "detail": "Request was cancelled", "error_type": "request_cancelled" }))
        }
        ResultState::Failed(body) => Reply::json(StatusCode::UNPROCESSABLE_ENTITY, &body),
        // Like fal, a result names its request in `x-fal-request-id` (fal-js reads it).
        ResultState::Done { job, inference_time } => match output_json(shared, &job, inference_time).await {
            Ok(output) => Reply::json(StatusCode::OK, &output).header(HeaderName::from_static("x-fal-request-id"), &job.id),
            Err(e) => Reply::json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "detail": e.to_string(), "error_type": "internal_error" })),
        },
    };
    reply.for_job(seq)
}

/// The output a completed job answers, FluxImageOutput-shaped; in sync mode the images are
/// drawn now and inlined as data URIs.
/// The video every video job produces (see `assets/README.md`).
const SAMPLE_VIDEO: &[u8] = include_bytes!("../assets/sample.mp4");

/// The output of a video endpoint: `{video: File, seed}` (relay doc 002).
fn video_output_json(job: &JobOutput) -> Value {
    let name = format!("{}-0.mp4", job.id);
    let url = if job.plan.sync_mode {
        format!("data:video/mp4;base64,{}", base64::engine::general_purpose::STANDARD.encode(SAMPLE_VIDEO))
    } else {
        format!("{}/media/{name}", job.base)
    };
    json!({
        "video": { "url": url, "content_type": "video/mp4", "file_name": name, "file_size": SAMPLE_VIDEO.len() },
        "seed": job.seed,
    })
}

async fn output_json(shared: &Shared, job: &JobOutput, inference_time: f64) -> Result<Value, SimError> {
    if job.plan.video {
        return Ok(video_output_json(job));
    }
    let plan = &job.plan;
    let format = plan.format;
    let mut images = Vec::with_capacity(plan.num_images as usize);
    for index in 0..plan.num_images {
        let name = media_name(&job.id, index, format);
        let mut image = Map::new();
        if plan.sync_mode {
            let file = media_bytes(shared, &name, job, index).await?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&file);
            image.insert("url".into(), json!(format!("data:{};base64,{encoded}", format.content_type())));
            image.insert("file_size".into(), json!(file.len()));
        } else {
            image.insert("url".into(), json!(format!("{}/media/{name}", job.base)));
        }
        image.insert("width".into(), json!(plan.width));
        image.insert("height".into(), json!(plan.height));
        image.insert("content_type".into(), json!(format.content_type()));
        image.insert("file_name".into(), json!(name));
        images.push(Value::Object(image));
    }
    Ok(json!({
        "images": images,
        "timings": { "inference": inference_time },
        "seed": job.seed,
        "has_nsfw_concepts": vec![false; plan.num_images as usize],
        "prompt": plan.prompt.clone().unwrap_or_default(),
    }))
}

fn media_name(request_id: &str, index: u32, format: ImageFormat) -> String {
    format!("{request_id}-{index}.{}", format.extension())
}

/// `{request_id}-{index}.{ext}` split into its parts.
fn parse_media_name(name: &str) -> Option<(&str, u32, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (id, index) = stem.rsplit_once('-')?;
    Some((id, index.parse().ok()?, ext))
}

/// The encoded bytes of one image, from the cache or drawn now (off the async threads).
async fn media_bytes(shared: &Shared, name: &str, job: &JobOutput, index: u32) -> Result<Bytes, SimError> {
    if job.plan.video {
        return Ok(Bytes::from_static(SAMPLE_VIDEO));
    }
    if let Some(file) = shared.media().get(name) {
        return Ok(file);
    }
    let plan = job.plan.clone();
    let seed = mix64(job.image_seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let file = tokio::task::spawn_blocking(move || render_file(plan.width, plan.height, seed, plan.source.as_deref(), plan.format))
        .await
        .map_err(|e| SimError::Image(e.to_string()))??;
    let file = Bytes::from(file);
    shared.media().insert(name.to_string(), file.clone());
    Ok(file)
}

async fn media(shared: &Arc<Shared>, name: &str) -> Reply {
    let not_found = || Reply::detail(StatusCode::NOT_FOUND, "Not Found");
    let Some((id, index, ext)) = parse_media_name(name) else {
        return not_found();
    };
    let found = {
        let core = shared.core();
        core.find(id).and_then(|seq| {
            let job = core.job(seq)?;
            match (&job.phase, &job.plan) {
                (Phase::Completed { outcome: Outcome::Success, .. }, Ok(plan))
                    if (plan.video && index == 0 && ext == "mp4")
                        || (!plan.video && index < plan.num_images && plan.format.extension() == ext) =>
                {
                    Some((
                        seq,
                        JobOutput {
                            id: job.id.clone(),
                            base: job.base.clone(),
                            plan: plan.clone(),
                            seed: job.seed.clone(),
                            image_seed: job.image_seed,
                        },
                    ))
                }
                _ => None,
            }
        })
    };
    let Some((seq, job)) = found else {
        return not_found();
    };
    match media_bytes(shared, name, &job, index).await {
        Ok(file) => Reply {
            status: StatusCode::OK,
            headers: vec![
                (header::CONTENT_TYPE, HeaderValue::from_static(if job.plan.video { "video/mp4" } else { job.plan.format.content_type() })),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            ],
            body: ReplyBody::Full(file),
            job: Some(seq),
        },
        Err(e) => Reply::json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "detail": e.to_string() })),
    }
}

fn cancel(shared: &Shared, app_path: &str, request_id: &str) -> Reply {
    let result = {
        let mut core = shared.core();
        lookup(&core, app_path, request_id).and_then(|seq| core.cancel(seq, Instant::now()).map(|r| (seq, r)))
    };
    shared.wake.notify_one();
    match result {
        Some((seq, CancelResult::Requested)) => {
            Reply::json(StatusCode::ACCEPTED, &json!({ "status": "CANCELLATION_REQUESTED" })).for_job(seq)
        }
        Some((seq, CancelResult::AlreadyCompleted)) => {
            Reply::json(StatusCode::BAD_REQUEST, &json!({ "status": "ALREADY_COMPLETED" })).for_job(seq)
        }
        None => Reply::json(StatusCode::NOT_FOUND, &json!({ "status": "NOT_FOUND" })),
    }
}

/// `GET` the plan; `POST`/`PUT` a new one (a JSON array of rule strings, a JSON string of
/// rules, or the rules as plain text); `DELETE` to clear. Answers the plan now installed.
async fn admin_faults(shared: &Shared, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let plan = if method == hyper::Method::GET {
        None
    } else if method == hyper::Method::DELETE {
        Some(FaultPlan::none())
    } else {
        let body = match read_body(request, 1 << 20).await {
            Ok(b) => b,
            Err(reply) => return reply,
        };
        match parse_fault_body(&body) {
            Ok(plan) => Some(plan),
            Err(e) => return Reply::detail(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    };
    let mut core = shared.core();
    if let Some(plan) = plan {
        core.faults.replace(plan);
    }
    let plan = core.faults.plan();
    Reply::json(StatusCode::OK, &json!({ "rules": plan, "spec": plan.to_string() }))
}

/// A fault plan sent to the admin route: `["submit:429@1"]`, `"submit:429@1; status:503%20"`,
/// `{"rules": [...]}` or plain text.
pub(crate) fn parse_fault_body(body: &[u8]) -> Result<FaultPlan, SimError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(text)) => text.parse(),
        Ok(Value::Object(mut o)) => match o.remove("rules") {
            Some(Value::String(text)) => text.parse(),
            Some(Value::Array(rules)) => rules_of(rules),
            _ => Err(SimError::FaultSyntax { rule: String::new(), reason: "expected {\"rules\": [...]}".into() }),
        },
        Ok(Value::Array(rules)) => rules_of(rules),
        Ok(other) => Err(SimError::FaultSyntax { rule: other.to_string(), reason: "expected an array of rules".into() }),
        Err(_) => String::from_utf8_lossy(body).parse(),
    }
}

fn rules_of(rules: Vec<Value>) -> Result<FaultPlan, SimError> {
    rules
        .into_iter()
        .map(|rule| match rule {
            Value::String(text) => text.parse(),
            other => Err(SimError::FaultSyntax { rule: other.to_string(), reason: "expected a rule string".into() }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_endpoint_answers_a_video_file() {
        // What the catalogue says of an output decides: `/video` is a video endpoint's.
        let mut info = falq_api::ENDPOINTS[0];
        assert!(!crate::catalog::answers_video(info), "FLUX answers images");
        let video = falq_api::EndpointInfo { output_files: &["/video"], ..clone_info(info) };
        info = Box::leak(Box::new(video));
        assert!(crate::catalog::answers_video(info));
        let plan = OutputPlan {
            width: 64,
            height: 64,
            format: ImageFormat::Jpeg,
            num_images: 1,
            seed: None,
            sync_mode: false,
            prompt: None,
            source: None,
            video: true,
        };
        let job = JobOutput { id: "r1".into(), base: "http://sim".into(), plan, seed: 7.into(), image_seed: 1 };
        let out = video_output_json(&job);
        assert_eq!(out["video"]["url"], "http://sim/media/r1-0.mp4");
        assert_eq!(out["video"]["content_type"], "video/mp4");
        let typed: falq_api::types::VideoOutput = serde_json::from_value(out).expect("a VideoOutput");
        assert_eq!(typed.seed, Some(7));
        assert_eq!(&SAMPLE_VIDEO[4..8], b"ftyp", "a real MP4");
    }

    fn clone_info(i: &falq_api::EndpointInfo) -> falq_api::EndpointInfo {
        falq_api::EndpointInfo {
            id: i.id,
            app_id: i.app_id,
            operation_id: i.operation_id,
            summary: i.summary,
            description: i.description,
            input_schema: i.input_schema,
            output_schema: "VideoOutput",
            bounds: i.bounds,
            check_output: i.check_output,
            fields: i.fields,
            input_json_schema: i.input_json_schema,
            output_json_schema: i.output_json_schema,
            output_files: i.output_files,
        }
    }

    #[test]
    fn media_names_table() {
        assert_eq!(parse_media_name("ab-cd-1.png"), Some(("ab-cd", 1, "png")));
        assert_eq!(media_name("ab-cd", 3, ImageFormat::Jpeg), "ab-cd-3.jpeg");
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
