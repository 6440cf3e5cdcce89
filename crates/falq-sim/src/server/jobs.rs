//! The queue calls: submit (validated as fal validates), status, the status stream, cancel.

use super::*;

pub(super) async fn submit(shared: &Arc<Shared>, endpoint_id: &str, request: Request<Incoming>) -> Reply {
    let Some(model) = shared.catalog.endpoint(endpoint_id) else {
        return Reply::detail(StatusCode::NOT_FOUND, &format!("Endpoint '{endpoint_id}' not found"));
    };
    let base = request_base(shared, request.headers());
    let own_authority = host_of(request.headers()).map(str::to_string);
    let extras = match submit_extras(&request) {
        Ok(e) => e,
        Err(reply) => return reply,
    };
    let body = match read_body(request, shared.config.max_body_bytes).await {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let input = match parse_input(&body) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let input = match validate::validate(model.info, &input) {
        Ok(read) => read,
        Err(errors) => return Reply::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": errors })),
    };
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
        let (seq, id, position) = core.submit(model.info, base, plan, extras, Instant::now());
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
pub(super) fn job_url(shared: &Shared, job: &Job, suffix: &str) -> String {
    let origin: &str = match shared.config.mode {
        SimMode::Relay => &shared.config.relay_queue_url,
        SimMode::Direct => &job.base,
    };
    format!("{origin}/{}/requests/{}{suffix}", job.endpoint.app_id, job.id)
}

/// The status object of a job, as the status call, the stream and submit answer it.
/// What a submit asks for besides its input: `X-Fal-Queue-Priority`, `X-Fal-Request-Timeout`
/// (seconds) and the `fal_webhook` query; a value fal would refuse answers 422.
fn submit_extras(request: &Request<Incoming>) -> Result<SubmitExtras, Reply> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let refuse = |loc: &str, msg: String| {
        Reply::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "detail": [detail_item(&["header", loc], msg, "value_error")] }))
    };
    let low_priority = match header("x-fal-queue-priority") {
        None | Some("normal") => false,
        Some("low") => true,
        Some(other) => return Err(refuse("x-fal-queue-priority", format!("Input should be 'low' or 'normal', not {other:?}"))),
    };
    let start_timeout = match header("x-fal-request-timeout") {
        None => None,
        Some(t) => match t.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs > 0.0 => Some(std::time::Duration::from_secs_f64(secs.min(1e9))),
            _ => return Err(refuse("x-fal-request-timeout", format!("a start timeout is a positive number of seconds, not {t:?}"))),
        },
    };
    let webhook = request.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("fal_webhook="))).map(percent_decode);
    Ok(SubmitExtras { low_priority, start_timeout, webhook })
}

/// `%XX` escapes and `+` of a query value, decoded (bytes that are no UTF-8 are replaced).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn status_body(shared: &Shared, core: &Core, job: &Job, seq: u64, logs: bool) -> Map<String, Value> {
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
pub(super) fn lookup(core: &Core, app_path: &str, request_id: &str) -> Option<u64> {
    let seq = core.find(request_id)?;
    let job = core.job(seq)?;
    app_path_matches(app_path, job.endpoint.app_id, job.endpoint.id).then_some(seq)
}

pub(super) fn not_found() -> Reply {
    Reply::detail(StatusCode::NOT_FOUND, "Request not found")
}

pub(super) fn status(shared: &Shared, app_path: &str, request_id: &str, logs: bool) -> Reply {
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
pub(super) fn status_stream(shared: &Arc<Shared>, app_path: &str, request_id: &str, logs: bool, malformed: bool) -> Reply {
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
    let state = StreamState { shared: shared.clone(), seq, rx, logs, malformed, last: None, done: false, _open: Open::new(shared) };
    let events = stream::unfold(state, next_event);
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

/// Counts a status stream open from its start until it is dropped (ended, or the client left).
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: &Arc<Shared>) -> Open {
        let mut core = shared.core();
        let route = &mut core.routes.stream;
        route.open += 1;
        route.peak_open = route.peak_open.max(route.open);
        drop(core);
        Open(shared.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut core = self.0.core();
        core.routes.stream.open = core.routes.stream.open.saturating_sub(1);
    }
}

/// Where a status stream stands.
struct StreamState {
    shared: Arc<Shared>,
    seq: u64,
    rx: watch::Receiver<u64>,
    logs: bool,
    /// The next event is cut in half (a fault).
    malformed: bool,
    /// The state and log count last sent.
    last: Option<(QueueStatusKind, u32)>,
    done: bool,
    _open: Open,
}

/// The stream's next frame: the status when it changed since the last event, else a
/// `: keep-alive` after a quiet interval; none once `COMPLETED` was sent or the job is gone.
async fn next_event(mut st: StreamState) -> Option<(Result<Frame<Bytes>, std::convert::Infallible>, StreamState)> {
    if st.done {
        return None;
    }
    loop {
        let _ = st.rx.borrow_and_update();
        if let Some(frame) = changed_status(&mut st)? {
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
}

/// The job's status as an event when it changed since the last one sent (`Some(None)`:
/// unchanged); `None` when the job is gone.
fn changed_status(st: &mut StreamState) -> Option<Option<Bytes>> {
    let mut core = st.shared.core();
    let job = core.job(st.seq)?;
    let signature = (job.phase.kind(), if st.logs { job.steps_done } else { 0 });
    if st.last == Some(signature) {
        return Some(None);
    }
    let json = serde_json::to_string(&status_body(&st.shared, &core, job, st.seq, st.logs)).unwrap_or_default();
    let json = if st.malformed { String::from_utf8_lossy(&json.as_bytes()[..json.len() / 2]).into_owned() } else { json };
    let frame = Bytes::from(format!("data: {json}\n\n"));
    count_stream_bytes(&mut core, st.seq, frame.len());
    st.malformed = false;
    st.last = Some(signature);
    st.done = signature.0 == QueueStatusKind::Completed;
    Some(Some(frame))
}

pub(super) fn count_stream_bytes(core: &mut Core, seq: u64, len: usize) {
    core.routes.stream.bytes_sent += len as u64;
    if let Some(job) = core.job_mut(seq) {
        job.counters.bytes_sent += len as u64;
    }
}

pub(super) fn cancel(shared: &Shared, app_path: &str, request_id: &str) -> Reply {
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
