//! The client: submit, wait (poll or stream), result and cancel, typed per endpoint.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use falq_api::types::{CancelStatus, FalError, QueueStatus, QueueStatusKind};
use falq_api::{Endpoint, Validate};
use futures_util::StreamExt;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{CancelOnTimeout, Config, Logs, WaitMode};
use crate::error::{Error, FieldError};
use crate::files::{SavedFile, download_outputs};
use crate::http::{Answer, CallCtx, Outgoing, Transport};
use crate::knowledge::{Knowledge, Probe, Waiting, Woken};
use crate::options::SubmitOptions;
use crate::poll::{PollState, Seen};
use crate::retry::Call;
use crate::rewrite::{QueuePath, endpoint_url, onto_base, queue_path, queue_url, validate_endpoint_id, validate_request_id};
use crate::road::{self, Road};
use crate::sse::SseParser;

/// A client of one relay (or of fal.ai): cheap to clone, shareable across tasks. Its
/// jobs share what it learns while waiting (service times, whether the relay streams).
#[derive(Clone, Debug)]
pub struct Client {
    transport: Arc<Transport>,
    knowledge: Arc<Knowledge>,
    /// The generated client at the base URL, sending through `transport` (built once).
    api: Arc<falq_api::Client>,
}

/// What changed while waiting: the state, the queue position, new log lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    /// The state.
    pub status: QueueStatusKind,
    /// The 0-based queue position, while queued.
    pub queue_position: Option<i64>,
    /// Log lines not reported before.
    pub new_logs: Vec<falq_api::types::LogEntry>,
    /// Time since waiting began.
    pub elapsed: Duration,
}

impl Client {
    /// A client for a configuration.
    pub fn new(config: Config) -> Result<Self, Error> {
        let knowledge = Arc::new(Knowledge::new());
        let transport = Arc::new(Transport::new(config)?);
        let api = Arc::new(Road::client(&transport, transport.base().as_str().trim_end_matches('/')));
        Ok(Self { transport, knowledge, api })
    }

    /// Teaches the client a past service time of an endpoint (submit to completion, at
    /// most `upper`), such as the journal's: polling then aims at the expected completion.
    pub fn learn_service_time(&self, endpoint_id: &str, upper: Duration) {
        self.knowledge.record(endpoint_id.trim_matches('/'), upper.mul_f64(0.8), upper);
    }

    /// The calls in flight the client allows now (it adapts to the relay's answers).
    pub fn in_flight_limit(&self) -> usize {
        self.transport.in_flight_limit()
    }

    /// A client from `FAL_BASE_URL`, `FAL_KEY` and `FAL_AUTH_SCHEME`.
    pub fn from_env() -> Result<Self, Error> {
        Self::new(Config::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.transport.config
    }

    /// Submits a typed input to `E` after checking its bounds; answers the job's handle.
    pub async fn submit<E: Endpoint>(&self, input: &E::Input) -> Result<RequestHandle, Error> {
        self.submit_with::<E>(input, &SubmitOptions::default()).await
    }

    /// Submits a JSON input to any endpoint id; it is checked against the endpoint's
    /// schema first when the endpoint is in the catalogue.
    pub async fn submit_json(&self, endpoint_id: &str, input: &Value) -> Result<RequestHandle, Error> {
        self.submit_json_with(endpoint_id, input, &SubmitOptions::default()).await
    }

    /// [`Client::submit`] with per-request options (webhook, priority, start timeout, ...).
    pub async fn submit_with<E: Endpoint>(&self, input: &E::Input, options: &SubmitOptions) -> Result<RequestHandle, Error> {
        let info = E::info();
        input.validate().map_err(|source| Error::InvalidInput { endpoint: info.id.to_string(), source })?;
        let submitted = self.submit_operation(info, road::Input::Typed(input), &[], options).await;
        submitted.unwrap_or_else(|| Err(self.refused(info.id, "the endpoint has no submit operation for this input type")))
    }

    /// [`Client::submit_json`] with per-request options (webhook, priority, start timeout, ...).
    pub async fn submit_json_with(&self, endpoint_id: &str, input: &Value, options: &SubmitOptions) -> Result<RequestHandle, Error> {
        self.submit_json_with_files(endpoint_id, input, &[], options).await
    }

    /// [`Client::submit_json_with`] for an input that sends local files as data URLs: each
    /// [`LocalFile`]'s placeholder in `input` becomes the file, encoded once straight into
    /// the request body (a large image costs its encoded size once).
    ///
    /// An endpoint of the catalogue is called through its generated submit operation when
    /// its input type holds `input` as it is (otherwise, as for an endpoint without a page,
    /// `input` is sent as it is, through the same transport).
    pub async fn submit_json_with_files(
        &self,
        endpoint_id: &str,
        input: &Value,
        files: &[crate::files::LocalFile],
        options: &SubmitOptions,
    ) -> Result<RequestHandle, Error> {
        let endpoint_id = endpoint_id.trim_matches('/');
        validate_endpoint_id(endpoint_id)?;
        if let Some(info) = falq_api::endpoint(endpoint_id) {
            falq_api::validate_input(info, input).map_err(|source| Error::InvalidInput { endpoint: endpoint_id.to_string(), source })?;
            if let Some(submitted) = self.submit_operation(info, road::Input::Json(input), files, options).await {
                return submitted;
            }
        }
        let body = crate::files::body_with_files(input, files)?;
        self.submit_bytes(endpoint_id, body, options).await
    }

    /// Sends an input, checked already, through its endpoint's generated submit operation,
    /// in one of the in-flight slots (taken first; the operation is built and boxed only
    /// then); `None` when the operation cannot carry it (see [`road::submit`]).
    async fn submit_operation(
        &self,
        info: &'static falq_api::EndpointInfo,
        input: road::Input<'_>,
        files: &[crate::files::LocalFile],
        options: &SubmitOptions,
    ) -> Option<Result<RequestHandle, Error>> {
        let params = match options.parameters() {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let prepared = road::prepare(info.operation_id, input)?;
        // The slot first; the operation is built and boxed only once it is taken (10,000
        // submits waiting for their turn hold their inputs, not 10,000 requests).
        let call = || async {
            let Some(sending) = road::submit(&self.api, info.operation_id, &prepared, &params) else {
                return Err(self.refused(info.id, "the endpoint has no submit operation for this input"));
            };
            let mut scope = road::Scope::new(info.id, None);
            scope.files = files.to_vec();
            let (sent, kept) = road::run(scope, sending).await;
            match kept {
                Some(Ok(answer)) => Ok((answer, sent.ok().map(|v| v.into_inner()))),
                Some(Err(e)) => Err(e),
                None => Err(self.refused(info.id, &sent.err().map(|e| e.to_string()).unwrap_or_default())),
            }
        };
        let answer = self.transport.in_slot(call, |(a, _)| a.status).await;
        Some(answer.and_then(|(answer, status)| self.accepted(info.id, answer, status)))
    }

    fn refused(&self, endpoint: &str, why: &str) -> Error {
        Error::Protocol {
            endpoint: endpoint.to_string(),
            request_id: None,
            call: Call::Submit,
            message: format!("the generated submit operation refused the request; nothing was sent: {why}"),
        }
    }

    /// An input sent as it is, by the transport (no operation exists for it).
    async fn submit_bytes(&self, endpoint_id: &str, body: Bytes, options: &SubmitOptions) -> Result<RequestHandle, Error> {
        let headers = options.headers()?;
        let mut url = endpoint_url(self.transport.base(), endpoint_id);
        if let Some(hook) = &options.webhook {
            url.query_pairs_mut().append_pair("fal_webhook", hook.as_str());
        }
        let ctx = CallCtx { endpoint: endpoint_id, request_id: None };
        let outgoing = Outgoing::Url { method: Method::POST, url: &url, body: Some(body), headers: Some(&headers) };
        let answer = self.transport.in_slot(|| self.transport.exchange(Call::Submit, outgoing, &ctx), |a| a.status).await?;
        self.accepted(endpoint_id, answer, None)
    }

    /// The handle a submit's answer gives, or the error it means (one that says whether the
    /// job may exist).
    fn accepted(&self, endpoint_id: &str, answer: Answer, decoded: Option<QueueStatus>) -> Result<RequestHandle, Error> {
        // The job's clock starts when the relay's answer arrives: the nearest known point to
        // when it queued the job (a submit may first wait for a slot of the in-flight cap),
        // so jobs of a burst are ordered as the relay queued them.
        let sent = Instant::now();
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(endpoint_id, None, Call::Submit, &answer));
        }
        let status: QueueStatus = match decoded {
            Some(status) => status,
            None => decode(&answer, endpoint_id, None, Call::Submit)?,
        };
        let request_id = status.request_id.clone().ok_or_else(|| Error::Protocol {
            endpoint: endpoint_id.into(),
            request_id: None,
            call: Call::Submit,
            message: "the answer has no request_id".into(),
        })?;
        // The relay took the job: a request id falq cannot use still names a job that may
        // exist (and may be paid for), so the error says so.
        validate_request_id(&request_id).map_err(|e| Error::Protocol {
            endpoint: endpoint_id.into(),
            request_id: None,
            call: Call::Submit,
            message: format!("the relay accepted the job but answered a request id falq cannot follow ({e})"),
        })?;
        let mut handle = self.handle_from(endpoint_id, &request_id, Some(&status));
        handle.submitted_at = Some(sent);
        Ok(handle)
    }

    /// The handle of a job submitted elsewhere, from its endpoint id and request id alone.
    pub fn handle(&self, endpoint_id: &str, request_id: &str) -> Result<RequestHandle, Error> {
        let endpoint_id = endpoint_id.trim_matches('/');
        validate_endpoint_id(endpoint_id)?;
        validate_request_id(request_id)?;
        Ok(self.handle_from(endpoint_id, request_id, None))
    }

    fn handle_from(&self, endpoint_id: &str, request_id: &str, status: Option<&QueueStatus>) -> RequestHandle {
        let base = self.transport.base();
        let app_id = falq_api::endpoint(endpoint_id).map_or_else(|| falq_api::app_id_of(endpoint_id), |e| e.app_id.to_string());
        let returned = [
            (status.and_then(|s| s.status_url.as_deref()), "/status"),
            (status.and_then(|s| s.response_url.as_deref()), ""),
            (status.and_then(|s| s.cancel_url.as_deref()), "/cancel"),
        ];
        // A relay almost always answers the very URLs the app-id rule names on the base
        // (or none): those are the operations' path, taken without parsing a URL.
        let named = QueuePath::of_app(base, &app_id, request_id)
            .filter(|path| returned.iter().all(|(url, suffix)| url.is_none_or(|u| path.is_url(u.trim(), suffix))));
        // Otherwise prefer the URLs the server returned (mapped onto the base); rebuild any
        // that are missing or do not name this request.
        let routes = named.map(Routes::Ops).unwrap_or_else(|| {
            let [status_url, response_url, cancel_url] = returned.map(|(returned, suffix)| {
                returned
                    .and_then(|u| onto_base(base, u))
                    .filter(|u| u.path().contains(&format!("/requests/{request_id}")))
                    .unwrap_or_else(|| queue_url(base, &app_id, request_id, suffix))
            });
            Routes::of(status_url, response_url, cancel_url)
        });
        RequestHandle {
            client: self.clone(),
            endpoint_id: endpoint_id.to_string(),
            request_id: request_id.to_string(),
            routes,
            submitted_at: None,
            billed: std::sync::OnceLock::new(),
        }
    }

    /// Runs `E` to completion: submit, wait, result; on the deadline the job is
    /// cancelled (per policy) and the error carries its request id.
    pub async fn run_with<E: Endpoint>(&self, input: &E::Input, on_update: impl FnMut(&Update) + Send) -> Result<E::Output, Error> {
        let handle = self.submit::<E>(input).await?;
        handle.finish(on_update).await
    }

    /// Downloads every output file of `endpoint_id`'s result into `dir`, named `{stem}-{n}`,
    /// each checked to be what it claims as it arrives.
    pub async fn download(&self, endpoint_id: &str, result: &Value, dir: &Path, stem: &str) -> Result<Vec<SavedFile>, Error> {
        download_outputs(&self.transport, endpoint_id, result, dir, stem).await
    }
}

impl falq_api::EndpointMethods for Client {
    type Error = Error;

    async fn run<E: Endpoint>(&self, input: E::Input) -> Result<E::Output, Error> {
        self.run_with::<E>(&input, |_| {}).await
    }
}

/// A submitted job: where to ask for its status and result, and how to cancel it.
#[derive(Clone, Debug)]
pub struct RequestHandle {
    client: Client,
    /// The endpoint id.
    pub endpoint_id: String,
    /// The request id.
    pub request_id: String,
    /// Where its status, result and cancel calls go, parsed once.
    routes: Routes,
    /// When this client submitted it (unknown for a job submitted elsewhere).
    submitted_at: Option<Instant>,
    /// What the relay billed for it (`x-fal-billable-units` on its result), once known.
    billed: std::sync::OnceLock<f64>,
}

/// Where a job's queue calls go: the spec's operations at one queue path, as a relay's
/// URLs (mapped onto the base) almost always say, or each call's own way.
#[derive(Clone, Debug)]
enum Routes {
    /// Status, result and cancel are the operations at this path.
    Ops(QueuePath),
    /// Status, result and cancel, each its own way.
    Each(Box<[Route; 3]>),
}

/// How one queue call goes.
#[derive(Clone, Debug)]
enum Route {
    /// The generated operation at this path.
    Op(QueuePath),
    /// This URL as the relay gave it (mapped onto the base): the operations cannot express
    /// it (a query, another shape).
    Url(Url),
}

/// The suffix of a queue call's URL after `/requests/{id}`.
fn suffix_of(call: Call) -> &'static str {
    match call {
        Call::Status => "/status",
        Call::Cancel => "/cancel",
        _ => "",
    }
}

impl Routes {
    /// The routes of the status, result and cancel URLs, parsed once.
    fn of(status: Url, result: Url, cancel: Url) -> Routes {
        let route = |url: Url, call: Call| queue_path(&url, suffix_of(call)).map_or(Route::Url(url), Route::Op);
        match [route(status, Call::Status), route(result, Call::Result), route(cancel, Call::Cancel)] {
            [Route::Op(a), Route::Op(b), Route::Op(c)] if a == b && b == c => Routes::Ops(a),
            each => Routes::Each(Box::new(each)),
        }
    }

    fn route(&self, call: Call) -> RouteRef<'_> {
        let each = match self {
            Routes::Ops(path) => return RouteRef::Op(path),
            Routes::Each(each) => each,
        };
        match &each[match call {
            Call::Status | Call::Stream => 0,
            Call::Cancel => 2,
            _ => 1,
        }] {
            Route::Op(path) => RouteRef::Op(path),
            Route::Url(url) => RouteRef::Url(url),
        }
    }

    fn url(&self, call: Call) -> Url {
        match self.route(call) {
            RouteRef::Url(url) => url.clone(),
            RouteRef::Op(p) => {
                let text = p.url_text(suffix_of(call));
                // A base URL and safe segments (a path read from a URL, or the app-id rule's on
                // the base): it parses.
                Url::parse(&text).unwrap_or_else(|_| Url::parse("http://invalid.invalid/").expect("a URL"))
            }
        }
    }
}

/// A call's route, borrowed.
enum RouteRef<'a> {
    Op(&'a QueuePath),
    Url(&'a Url),
}

impl RequestHandle {
    /// The status URL, on the base.
    pub fn status_url(&self) -> Url {
        self.routes.url(Call::Status)
    }

    /// The result URL, on the base.
    pub fn response_url(&self) -> Url {
        self.routes.url(Call::Result)
    }

    /// The cancel URL, on the base.
    pub fn cancel_url(&self) -> Url {
        self.routes.url(Call::Cancel)
    }

    fn ctx(&self) -> CallCtx<'_> {
        CallCtx { endpoint: &self.endpoint_id, request_id: Some(&self.request_id) }
    }

    /// Sends a status (with its log lines when `logs`), result or cancel call through its
    /// generated operation: progenitor builds the request from the spec (path, method,
    /// query, headers) and runs its hooks' checks, and this client's transport sends it and
    /// reads the answer whole, which is what comes back (falq tells its answers apart on
    /// their bytes), with what the operation decoded. A URL the relay gave that is not of
    /// the operation's shape ([`queue_path`]) is called as it is.
    ///
    /// The in-flight slot is taken first and the call built and boxed only then: a call
    /// waiting for its turn (10,000 of them when a crowd completes) holds a few words.
    async fn queue_call(&self, call: Call, logs: bool) -> Result<(Answer, Option<Decoded>), Error> {
        self.client.transport.in_slot(|| self.queue_call_in_turn(call, logs), |(a, _)| a.status).await
    }

    /// [`RequestHandle::queue_call`] once its in-flight slot is taken.
    async fn queue_call_in_turn(&self, call: Call, logs: bool) -> Result<(Answer, Option<Decoded>), Error> {
        let url = match self.routes.route(call) {
            RouteRef::Op(path) => return self.send_operation(call, path, logs).await,
            RouteRef::Url(url) => url,
        };
        let method = if call == Call::Cancel { Method::PUT } else { Method::GET };
        let mut url = url.clone();
        if logs {
            url.query_pairs_mut().append_pair("logs", "1");
        }
        let outgoing = Outgoing::Url { method, url: &url, body: None, headers: None };
        // Boxed, as the operation's own sending is behind the executor's box: the state of
        // the transport's call is not part of every queue call's (3.4 KB, not 2.2).
        let answer = Box::pin(self.client.transport.exchange(call, outgoing, &self.ctx())).await?;
        Ok((answer, None))
    }

    /// The generated client for a queue call at `path`: the client's own when the path's
    /// prefix (everything before `{owner}`) is the base URL, as it is unless a relay
    /// answers URLs under another prefix of its origin.
    fn operation_client(&self, path: &QueuePath) -> std::borrow::Cow<'_, falq_api::Client> {
        let client = &self.client;
        if path.prefix == client.transport.base().as_str().trim_end_matches('/') {
            std::borrow::Cow::Borrowed(&*client.api)
        } else {
            std::borrow::Cow::Owned(Road::client(&client.transport, &path.prefix))
        }
    }

    fn scope(&self) -> road::Scope {
        road::Scope::new(&self.endpoint_id, Some(&self.request_id))
    }

    /// A queue call through its generated operation, in the slot taken already.
    async fn send_operation(&self, call: Call, path: &QueuePath, logs: bool) -> Result<(Answer, Option<Decoded>), Error> {
        let api = self.operation_client(path);
        // What the operation decoded, when it could; the transport kept the bytes for the rest.
        let (owner, app, id) = (&path.owner, &path.app, &path.request_id);
        let (decoded, kept) = match call {
            Call::Status => {
                let op = api.queue_status().owner(owner).app(app).request_id(id);
                let op = if logs { op.logs(1) } else { op };
                road::run(self.scope(), async { op.send().await.ok().map(|v| Decoded::Status(v.into_inner())) }).await
            }
            Call::Cancel => {
                let op = api.queue_cancel().owner(owner).app(app).request_id(id);
                let sending = async {
                    match op.send().await {
                        Ok(v) => Some(Decoded::Cancel(v.into_inner())),
                        Err(progenitor_client::Error::ErrorResponse(v)) => Some(Decoded::Cancel(v.into_inner())),
                        Err(_) => None,
                    }
                };
                road::run(self.scope(), sending).await
            }
            _ => {
                let op = api.queue_result().owner(owner).app(app).request_id(id);
                road::run(self.scope(), async { op.send().await.ok().map(|v| Decoded::Output(Value::Object(v.into_inner().0))) }).await
            }
        };
        // Nothing reached the transport: the operation refused the request before sending.
        let refused = || self.err(call, "the generated operation refused the request; nothing was sent");
        kept.unwrap_or_else(|| Err(refused())).map(|a| (a, decoded))
    }

    fn err(&self, call: Call, message: impl Into<String>) -> Error {
        Error::Protocol { endpoint: self.endpoint_id.clone(), request_id: Some(self.request_id.clone()), call, message: message.into() }
    }

    /// The job's status, with its log lines when `logs` says so.
    pub async fn status(&self, logs: Logs) -> Result<QueueStatus, Error> {
        self.status_answer(logs).await.map(|(s, _)| s)
    }

    /// The status and the server's `Retry-After`, if it gave one.
    async fn status_answer(&self, logs: Logs) -> Result<(QueueStatus, Option<Duration>), Error> {
        let (answer, decoded) = self.queue_call(Call::Status, logs == Logs::Include).await?;
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(&self.endpoint_id, Some(&self.request_id), Call::Status, &answer));
        }
        let retry_after =
            answer.headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(crate::retry::parse_retry_after);
        let status = match decoded {
            Some(Decoded::Status(status)) => status,
            _ => decode(&answer, &self.endpoint_id, Some(&self.request_id), Call::Status)?,
        };
        Ok((status, retry_after))
    }

    /// Waits until the job completes (per the client's wait policy, without its deadline).
    /// Streams when the policy says so, the relay has shown it can, and a stream slot is
    /// free (`HttpPolicy::max_streams`); polls otherwise, taking a stream slot as soon as
    /// one frees up.
    pub async fn wait(&self, mut on_update: impl FnMut(&Update) + Send) -> Result<QueueStatus, Error> {
        match self.wait_for(&mut on_update, false).await? {
            Waited::Status(status) => Ok(*status),
            // Not asked for: a status is always what comes back without `fetch`.
            Waited::Output(_) => self.status(Logs::Omit).await,
        }
    }

    /// Waits for completion; with `fetch`, a poller that has most likely completed (woken
    /// by a sibling's completion, or at its endpoint's expected completion) asks for the
    /// result itself rather than the status first (one call instead of two), and answers
    /// it when it is ready.
    async fn wait_for(&self, on_update: &mut (impl FnMut(&Update) + Send), fetch: bool) -> Result<Waited, Error> {
        let mut seen = Progress { started: Instant::now(), logs_seen: 0, last: None };
        let want_stream = self.client.config().wait.mode == WaitMode::Stream;
        self.poll(&mut seen, on_update, want_stream, fetch).await
    }

    /// Follows the status stream while holding one of the client's stream slots; `None`
    /// when this job should poll (no slot free, or the relay has no stream).
    async fn stream_in_slot(
        &self,
        seen: &mut Progress,
        on_update: &mut (impl FnMut(&Update) + Send),
    ) -> Option<Result<Option<QueueStatus>, Error>> {
        let knowledge = &self.client.knowledge;
        if knowledge.streams_unsupported() {
            return None;
        }
        let _stream = self.client.transport.try_hold_stream()?;
        match knowledge.may_stream(self.client.config().wait.poll.interval).await {
            Probe::Poll => None,
            Probe::Stream => Some(self.stream(seen, on_update, false).await),
            Probe::FindOut => Some(self.stream(seen, on_update, true).await),
        }
    }

    /// Polls as the pure policy of `poll.rs` says, sleeping until its next time or until a
    /// sibling submitted no later than this job completes, whichever comes first.
    async fn poll(
        &self,
        seen: &mut Progress,
        on_update: &mut (impl FnMut(&Update) + Send),
        mut want_stream: bool,
        fetch: bool,
    ) -> Result<Waited, Error> {
        let policy = self.client.config().wait.clone();
        let knowledge = &self.client.knowledge;
        // A job submitted elsewhere has no known submit time: it polls without estimates.
        let learn = self.submitted_at.is_some();
        let origin = self.submitted_at.unwrap_or_else(Instant::now);
        let waiting = learn.then(|| knowledge.waiting(&self.endpoint_id, origin));
        let mut st = PollState { elapsed: origin.elapsed(), ..waiting.as_ref().map_or_else(PollState::default, Waiting::poll_state) };
        let mut first_position: Option<(Duration, i64)> = None;
        let mut missed_aim = false;
        // Woken to plan again (no call made since): the stream is not tried again either.
        let mut replanning = false;
        loop {
            if want_stream
                && !std::mem::take(&mut replanning)
                && let Some(streamed) = Box::pin(self.stream_in_slot(seen, on_update)).await
            {
                match streamed? {
                    Some(done) => return Ok(Waited::Status(Box::new(done))),
                    None => {
                        tracing::debug!(request_id = %self.request_id, "no status stream to the end; polling");
                        want_stream = false;
                    }
                }
            }
            st.elapsed = origin.elapsed();
            let estimate = if learn { knowledge.estimate(&self.endpoint_id) } else { None };
            st.behind = waiting.as_ref().is_some_and(|w| w.behind());
            let at = policy.poll.next_poll(estimate.as_ref(), &st);
            let woken = if at > st.elapsed { sleep_until(origin, at, waiting.as_ref()).await } else { None };
            // A service time that changes the plan (the first, or a done-by well earlier).
            if woken == Some(Woken::Estimate) {
                replanning = true;
                continue;
            }
            let woken = woken == Some(Woken::SiblingDone);
            let asked = origin.elapsed();
            // Ask for the result itself when the job has most likely completed: a sibling
            // submitted after it completed (it was woken), or this poll is at or after the
            // endpoint's expected completion (a poll aimed there, unless the job was seen
            // queued, or such a poll missed once already). One call instead of a status
            // and then a result.
            let aimed = !missed_aim && !matches!(st.seen, Seen::Queued(_)) && estimate.as_ref().is_some_and(|e| at >= e.service);
            if fetch && (woken || aimed) {
                match Box::pin(self.fetch_result()).await {
                    Ok(Fetched::Ready(output)) => return Ok(self.fetched(origin, st.last_poll, seen, on_update, output)),
                    // Not done yet at the aimed time: this job is slower than its endpoint's
                    // estimate, and is polled by its status from now on (where it stands).
                    Ok(Fetched::NotReady(_)) if !woken => {
                        missed_aim = true;
                        st.polls += 1;
                        st.last_poll = Some(asked);
                        continue;
                    }
                    // Not done yet when woken, or a 404 (some relays answer it before
                    // completion; or the relay forgot the job): the status says where it
                    // stands, and an aimed job is polled by its status from now on.
                    Ok(Fetched::NotReady(_)) | Err(Error::Expired { .. }) => missed_aim |= aimed,
                    Err(e) => return Err(e),
                }
            }
            // Boxed: a waiting job's state stays small; the call's state lives only while it runs.
            let (status, retry_after) = Box::pin(self.status_answer(policy.logs)).await?;
            seen.report(&status, on_update);
            st.retry_after = retry_after;
            if status.status == QueueStatusKind::Completed {
                if learn {
                    knowledge.completed(&self.endpoint_id, origin, st.last_poll.unwrap_or_default(), origin.elapsed());
                }
                return Ok(Waited::Status(Box::new(status)));
            }
            let queued = (status.status == QueueStatusKind::InQueue).then(|| status.queue_position.unwrap_or(0));
            st.saw(queued, asked, &mut first_position);
        }
    }

    /// The output fetched where the job had most likely completed: the endpoint learns
    /// its service time (seen between the last poll and now), the caller its completion.
    fn fetched(
        &self,
        origin: Instant,
        last_poll: Option<Duration>,
        seen: &Progress,
        on_update: &mut (impl FnMut(&Update) + Send),
        output: Value,
    ) -> Waited {
        self.client.knowledge.completed(&self.endpoint_id, origin, last_poll.unwrap_or_default(), origin.elapsed());
        on_update(&Update { status: QueueStatusKind::Completed, queue_position: None, new_logs: vec![], elapsed: seen.started.elapsed() });
        Waited::Output(output)
    }

    /// Opens the status stream (its log lines too when the policy asks for them) through
    /// the generated operation, whose body progenitor leaves unread, or at the returned
    /// status URL as it is when the operation cannot express it. Answers its events, or
    /// the answer as it came when it is no stream.
    async fn open_stream(&self) -> Result<Opened, Error> {
        let include = self.client.config().wait.logs == Logs::Include;
        let path = match self.routes.route(Call::Stream) {
            RouteRef::Op(path) => path,
            RouteRef::Url(url) => {
                let mut url = url.clone();
                url.set_path(&format!("{}/stream", url.path().trim_end_matches('/')));
                if include {
                    url.query_pairs_mut().append_pair("logs", "1");
                }
                let outgoing = Outgoing::Url { method: Method::GET, url: &url, body: None, headers: None };
                // Boxed for the same reason as a queue call's (see `queue_call_in_turn`).
                let resp = Box::pin(self.client.transport.open(Call::Stream, outgoing, &self.ctx())).await?;
                return Ok(Opened::of(resp.status().as_u16(), resp.headers())(Box::pin(resp.bytes_stream())));
            }
        };
        let api = self.operation_client(path);
        let op = api.queue_status_stream().owner(&path.owner).app(&path.app).request_id(&path.request_id);
        let op = if include { op.logs(1) } else { op };
        let (sent, kept) = road::run(self.scope(), op.send()).await;
        match sent {
            Ok(v) => Ok(Opened::of(v.status().as_u16(), v.headers())(v.into_inner().into_inner())),
            // Any status but 200 (the one the spec declares) comes back as it is.
            Err(progenitor_client::Error::UnexpectedResponse(resp)) => {
                Ok(Opened::of(resp.status().as_u16(), resp.headers())(Box::pin(resp.bytes_stream())))
            }
            Err(other) => Err(match kept {
                Some(Err(kept)) => kept,
                _ if matches!(other, progenitor_client::Error::InvalidRequest(_)) => {
                    self.err(Call::Stream, "the generated operation refused the request; nothing was sent")
                }
                _ => self.err(Call::Stream, other.to_string()),
            }),
        }
    }

    /// Follows the status stream. `Ok(None)` when the relay offers none (fall back to
    /// polling); a stream that ends before COMPLETED also falls back.
    /// With `finding_out`, tells the client's knowledge as soon as the answer shows whether
    /// the relay streams (or that it could not tell).
    async fn stream(
        &self,
        seen: &mut Progress,
        on_update: &mut (impl FnMut(&Update) + Send),
        finding_out: bool,
    ) -> Result<Option<QueueStatus>, Error> {
        let verdict = |v: Option<bool>| {
            if finding_out {
                self.client.knowledge.stream_verdict(v);
            }
        };
        // Boxed: the opening's state (the operation's) is gone once the stream is open, and
        // a stream lasts the whole job.
        let opening = Box::pin(self.open_stream());
        let body = match opening.await {
            Ok(Opened::Events(body)) => body,
            Ok(Opened::NoStream { status, headers, body }) => {
                // The relay has no stream (or not as SSE): every later wait of this client polls.
                let success = (200..300).contains(&status);
                verdict((matches!(status, 404 | 405 | 501) || success).then_some(false));
                if matches!(status, 401 | 403) {
                    return Err(self.refused_stream(status, headers, body).await);
                }
                return Ok(None);
            }
            Err(Error::Network { .. }) => {
                verdict(None);
                return Ok(None);
            }
            Err(e) => {
                verdict(None);
                return Err(e);
            }
        };
        verdict(Some(true));
        self.follow(body, seen, on_update).await
    }

    /// The error of a stream refused for its key (401, 403): its body, read within the
    /// stream's idle time and 64 KiB, says why.
    async fn refused_stream(&self, status: u16, headers: reqwest::header::HeaderMap, mut body: ByteStream) -> Error {
        let mut bytes = Vec::new();
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(self.client.config().timeouts.stream_idle, body.next()).await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > 64 << 10 {
                break;
            }
        }
        let answer = Answer { status, headers, body: Bytes::from(bytes), reading: Reading::Readable };
        answer_error(&self.endpoint_id, Some(&self.request_id), Call::Stream, &answer)
    }

    /// Follows an open status stream to COMPLETED; `Ok(None)` when it ends, goes silent,
    /// or says something that is no status before (the job polls).
    async fn follow(
        &self,
        mut body: ByteStream,
        seen: &mut Progress,
        on_update: &mut (impl FnMut(&Update) + Send),
    ) -> Result<Option<QueueStatus>, Error> {
        let mut parser = SseParser::with_limit(self.client.config().http.max_sse_line);
        let idle = self.client.config().timeouts.stream_idle;
        let quiet = self.client.config().timeouts.stream_quiet;
        let mut last_event = Instant::now();
        let mut last_kind: Option<QueueStatusKind> = None;
        loop {
            // Keep-alives only for too long (a relay whose stream stopped telling the
            // status): the status itself says whether the job moved on.
            let until_quiet = quiet.saturating_sub(last_event.elapsed());
            if until_quiet.is_zero() {
                let (status, _) = Box::pin(self.status_answer(self.client.config().wait.logs)).await?;
                seen.report(&status, on_update);
                if status.status == QueueStatusKind::Completed {
                    return Ok(Some(self.streamed_to_completion(status, quiet, body).await));
                }
                if last_kind.is_some_and(|k| k != status.status) {
                    tracing::debug!(request_id = %self.request_id, "the status stream fell behind the status; polling");
                    tokio::spawn(drain(body));
                    return Ok(None);
                }
                last_kind = Some(status.status);
                last_event = Instant::now();
                continue;
            }
            // A half-open connection sends nothing, not even keep-alives: poll instead.
            let wait = idle.min(until_quiet);
            let chunk = match tokio::time::timeout(wait, body.next()).await {
                Err(_) if wait < idle => continue,
                Err(_) => {
                    tracing::debug!(request_id = %self.request_id, ?idle, "the status stream went silent; polling");
                    return Ok(None);
                }
                Ok(None) | Ok(Some(Err(_))) => return Ok(None),
                Ok(Some(Ok(chunk))) => chunk,
            };
            let Ok(events) = parser.feed(&chunk) else {
                tracing::debug!(request_id = %self.request_id, "a status event over the line limit; polling");
                return Ok(None);
            };
            for data in events {
                let Ok(status) = serde_json::from_str::<QueueStatus>(&data) else {
                    tracing::debug!(request_id = %self.request_id, event = %snippet(data.as_bytes()), "a status event that is no QueueStatus; polling");
                    return Ok(None);
                };
                seen.report(&status, on_update);
                last_event = Instant::now();
                last_kind = Some(status.status);
                if status.status == QueueStatusKind::Completed {
                    return Ok(Some(self.streamed_to_completion(status, Duration::from_millis(5), body).await));
                }
            }
        }
    }

    /// A stream's job completed, seen within `lag` of its completion: the client learns
    /// its service time, and the rest of the stream is read.
    async fn streamed_to_completion(&self, status: QueueStatus, lag: Duration, mut body: ByteStream) -> QueueStatus {
        if let Some(origin) = self.submitted_at {
            let t = origin.elapsed();
            self.client.knowledge.completed(&self.endpoint_id, origin, t.saturating_sub(lag), t);
        }
        // The server ends the stream after COMPLETED: read that end here, briefly, so that
        // the result call takes the stream's connection; a stream still open is read in the
        // background.
        match tokio::time::timeout(STREAM_END, body.next()).await {
            Ok(None) => self.client.transport.let_connections_return().await,
            _ => {
                tokio::spawn(drain(body));
            }
        }
        status
    }

    /// The job's result as JSON, checked against the endpoint's output type (for an
    /// endpoint of the catalogue; any other must answer a JSON object). A failed job
    /// answers [`Error::JobFailed`] with fal's field errors, one not finished
    /// [`Error::NotReady`], one the relay forgot [`Error::Expired`].
    pub async fn result_json(&self) -> Result<Value, Error> {
        match self.fetch_result().await? {
            Fetched::Ready(v) => Ok(v),
            Fetched::NotReady(status) => {
                Err(Error::NotReady { endpoint: self.endpoint_id.clone(), request_id: self.request_id.clone(), status })
            }
        }
    }

    /// One result call, told apart: the output, or "not finished yet" (a 202 or 400, or a
    /// status body where the output should be, as some relays answer).
    async fn fetch_result(&self) -> Result<Fetched, Error> {
        let (answer, decoded) = self.queue_call(Call::Result, false).await?;
        if matches!(answer.status, 202 | 400) {
            let status = serde_json::from_slice::<QueueStatus>(&answer.body)
                .map(|s| s.status.to_string())
                .unwrap_or_else(|_| format!("HTTP {}", answer.status));
            return Ok(Fetched::NotReady(status));
        }
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(&self.endpoint_id, Some(&self.request_id), Call::Result, &answer));
        }
        // The transport told the answer apart as it read it; it is not judged again.
        let shape = match &answer.reading {
            Reading::Result(shape) => shape.clone(),
            Reading::Readable | Reading::Unreadable => result_reading(&self.endpoint_id, &answer.body),
        };
        match shape {
            ResultShape::Output => {
                let value: Value = match decoded {
                    Some(Decoded::Output(value)) => value,
                    _ => decode(&answer, &self.endpoint_id, Some(&self.request_id), Call::Result)?,
                };
                if let Some(units) = billable_units(&answer.headers) {
                    let _ = self.billed.set(units);
                }
                Ok(Fetched::Ready(value))
            }
            ResultShape::Failure => {
                let as_failure =
                    Answer { status: 422, headers: answer.headers.clone(), body: answer.body.clone(), reading: Reading::Readable };
                let mut e = answer_error(&self.endpoint_id, Some(&self.request_id), Call::Result, &as_failure);
                if let Error::JobFailed { status, .. } = &mut e {
                    *status = answer.status;
                }
                Err(e)
            }
            ResultShape::Unfinished(status) => Ok(Fetched::NotReady(status)),
            ResultShape::Other(why) => {
                let wanted = falq_api::endpoint(&self.endpoint_id).map_or("a JSON object", |e| e.output_schema);
                Err(self.err(
                    Call::Result,
                    format!("HTTP {} with a body that is not {wanted}: {why}: {}", answer.status, snippet(&answer.body)),
                ))
            }
        }
    }

    /// The units the relay billed for the job, as its result said in fal's
    /// `x-fal-billable-units` header; `None` until the result was fetched, or when the
    /// relay does not say.
    pub fn billable_units(&self) -> Option<f64> {
        self.billed.get().copied()
    }

    /// The job's result as `T` (the endpoint's output type).
    pub async fn result<T: DeserializeOwned + 'static>(&self) -> Result<T, Error> {
        let value = self.result_json().await?;
        self.typed_output(value)
    }

    /// A result as the output type `T`; asked for as JSON (`T` is `Value`), the value itself,
    /// not a copy rebuilt map by map (a tenth of a stream job's instructions at 1,000 jobs).
    fn typed_output<T: DeserializeOwned + 'static>(&self, value: Value) -> Result<T, Error> {
        let mut slot = Some(value);
        if let Some(as_is) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<T>>() {
            return as_is.take().ok_or_else(|| self.err(Call::Result, "no result"));
        }
        let value = slot.unwrap_or_default();
        serde_json::from_value(value).map_err(|e| self.err(Call::Result, format!("the result does not match the output type: {e}")))
    }

    /// Waits, then fetches the result; a result not ready yet (the relay's status ran
    /// ahead of it) is asked for again after the poll interval.
    /// Once the relay has said COMPLETED the job is done there (`completed` is set: a
    /// deadline never cancels it); a result still "not ready" is asked for again on the
    /// retry policy's backoff, at most its attempts, then [`Error::ResultWithheld`] (the job
    /// stays pending): nothing waits without a bound.
    async fn wait_and_fetch(&self, on_update: &mut (impl FnMut(&Update) + Send), completed: &AtomicBool) -> Result<Value, Error> {
        let interval = self.client.config().wait.poll.interval;
        let retry = &self.client.config().retry;
        if let Waited::Output(v) = Box::pin(self.wait_for(&mut *on_update, true)).await? {
            completed.store(true, Ordering::SeqCst);
            return Ok(v);
        }
        completed.store(true, Ordering::SeqCst);
        let mut withheld = 0u32;
        loop {
            match Box::pin(self.fetch_result()).await? {
                Fetched::Ready(v) => return Ok(v),
                Fetched::NotReady(status) => {
                    withheld += 1;
                    tracing::debug!(request_id = %self.request_id, %status, withheld, "COMPLETED, but the result is not ready");
                    match crate::retry::backoff(retry, withheld, falq_api::jitter()) {
                        crate::retry::Decision::RetryAfter(d) => tokio::time::sleep(d.max(interval)).await,
                        crate::retry::Decision::Stop => {
                            return Err(Error::ResultWithheld {
                                endpoint: self.endpoint_id.clone(),
                                request_id: self.request_id.clone(),
                                answer: status,
                                attempts: withheld,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Asks the server to cancel the job.
    pub async fn cancel(&self) -> Result<CancelStatus, Error> {
        let (answer, decoded) = self.queue_call(Call::Cancel, false).await?;
        let cancel = match decoded {
            Some(Decoded::Cancel(c)) => Some(c),
            _ => serde_json::from_slice::<falq_api::types::CancelResponse>(&answer.body).ok(),
        };
        if let Some(v) = cancel
            && matches!(answer.status, 200..=299 | 400 | 404)
        {
            return Ok(v.status);
        }
        Err(answer_error(&self.endpoint_id, Some(&self.request_id), Call::Cancel, &answer))
    }

    /// Waits (within the client's deadline) and fetches the typed result; on the
    /// deadline, cancels per policy and answers [`Error::Timeout`] with the request id.
    pub async fn finish<T: DeserializeOwned + 'static>(&self, mut on_update: impl FnMut(&Update) + Send) -> Result<T, Error> {
        let done = AtomicBool::new(false);
        let value = self.within_deadline(&done, Box::pin(self.wait_and_fetch(&mut on_update, &done))).await?;
        self.typed_output(value)
    }

    /// Waits, fetches the result and saves every output file into `dir` (as
    /// `{stem}-{n}.{ext}`), all within the client's deadline: a run is over only once
    /// its outputs are on disk. On the deadline the job is cancelled per policy unless
    /// it had completed (then only its saving was cut short: resume it).
    pub async fn finish_to_dir(
        &self,
        dir: &Path,
        stem: &str,
        mut on_update: impl FnMut(&Update) + Send,
    ) -> Result<(Value, Vec<SavedFile>), Error> {
        let done = AtomicBool::new(false);
        let work = async {
            let value = self.wait_and_fetch(&mut on_update, &done).await?;
            let files = self.save_outputs(&value, dir, stem).await?;
            Ok((value, files))
        };
        self.within_deadline(&done, Box::pin(work)).await
    }

    /// Downloads every output file of this job's `result` into `dir`, named `{stem}-{n}`,
    /// each checked to be what it claims as it arrives (see [`Client::download`]). A
    /// failure is [`Error::NotSaved`]: it names the job, which completed, and says how to
    /// fetch its outputs again.
    pub async fn save_outputs(&self, result: &Value, dir: &Path, stem: &str) -> Result<Vec<SavedFile>, Error> {
        Box::pin(download_outputs(&self.client.transport, &self.endpoint_id, result, dir, stem)).await.map_err(|e| Error::NotSaved {
            endpoint: self.endpoint_id.clone(),
            request_id: self.request_id.clone(),
            source: Box::new(e),
        })
    }

    /// Runs `work` within the client's deadline; `completed` is set by `work` once the
    /// job's result is in hand (then a timeout does not cancel it).
    async fn within_deadline<T>(
        &self,
        completed: &AtomicBool,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let policy = &self.client.config().wait;
        let Some(deadline) = policy.deadline else { return work.await };
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r,
            Err(_) => {
                let completed = completed.load(Ordering::SeqCst);
                let cancelled = !completed
                    && policy.cancel_on_timeout == CancelOnTimeout::Cancel
                    && matches!(
                        tokio::time::timeout(Duration::from_secs(10), Box::pin(self.cancel())).await,
                        Ok(Ok(CancelStatus::CancellationRequested))
                    );
                Err(Error::Timeout {
                    endpoint: self.endpoint_id.clone(),
                    request_id: self.request_id.clone(),
                    after: deadline,
                    cancelled,
                    completed,
                })
            }
        }
    }
}

/// fal's `x-fal-billable-units`: a number of units, 0 or more.
fn billable_units(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    let units: f64 = headers.get("x-fal-billable-units")?.to_str().ok()?.trim().parse().ok()?;
    (units.is_finite() && units >= 0.0).then_some(units)
}

/// A response body as it arrives.
type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// What opening a status stream answered.
enum Opened {
    /// A success of type `text/event-stream`: its events.
    Events(ByteStream),
    /// Any other answer, as it came.
    NoStream { status: u16, headers: reqwest::header::HeaderMap, body: ByteStream },
}

impl Opened {
    /// What an answer of `status` with `headers` is, once given its body: its headers are
    /// copied only when it is no stream (the caller reads them then). Read before the body
    /// is taken from the response that holds the headers.
    fn of(status: u16, headers: &reqwest::header::HeaderMap) -> impl FnOnce(ByteStream) -> Opened + use<> {
        // Media types are compared without case or parameters (`Text/Event-Stream; charset=utf-8`).
        let sse = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| falq_api::canonical_type(t) == "text/event-stream");
        let no_stream = (!sse || !(200..300).contains(&status)).then(|| headers.clone());
        move |body| match no_stream {
            None => Opened::Events(body),
            Some(headers) => Opened::NoStream { status, headers, body },
        }
    }
}

/// What a generated operation decoded from its answer.
enum Decoded {
    Status(QueueStatus),
    Output(Value),
    Cancel(falq_api::types::CancelResponse),
}

/// What one result call found.
/// What waiting came to.
enum Waited {
    /// The job completed (its status; boxed, so a waiting job's state does not keep room
    /// for one).
    Status(Box<QueueStatus>),
    /// The job completed and its output was fetched already.
    Output(Value),
}

enum Fetched {
    /// The output.
    Ready(Value),
    /// Not finished yet: the state the relay gave.
    NotReady(String),
}

struct Progress {
    started: Instant,
    logs_seen: usize,
    last: Option<(QueueStatusKind, Option<i64>)>,
}

impl Progress {
    fn report(&mut self, status: &QueueStatus, on_update: &mut (impl FnMut(&Update) + Send)) {
        let logs = status.logs.as_deref().unwrap_or(&[]);
        let new_logs: Vec<_> = logs.iter().skip(self.logs_seen).cloned().collect();
        self.logs_seen = self.logs_seen.max(logs.len());
        let key = (status.status, status.queue_position);
        if self.last == Some(key) && new_logs.is_empty() {
            return;
        }
        self.last = Some(key);
        on_update(&Update { status: status.status, queue_position: status.queue_position, new_logs, elapsed: self.started.elapsed() });
    }
}

/// What a result call's successful answer is ([`result_reading`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResultShape {
    /// The endpoint's output.
    Output,
    /// A failure told in fal's `detail` shape.
    Failure,
    /// A status of a job not finished (some relays answer one where the output should be).
    Unfinished(String),
    /// None of these: why it is not the output.
    Other(String),
}

/// What `body`, a result call's successful answer, is. The endpoint's output is told from
/// the text itself, without a `Value` (the answer nearly every result call gets); anything
/// else is read as a value, to tell a failure or an unfinished status from a glitch. Text
/// that decodes as the output type is a value that does too, so the verdict is the text's.
pub(crate) fn result_reading(endpoint_id: &str, body: &[u8]) -> ResultShape {
    let endpoint = falq_api::endpoint(endpoint_id);
    if endpoint.is_some_and(|e| (e.check_output_json)(body).is_ok()) {
        return ResultShape::Output;
    }
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(e) => return ResultShape::Other(format!("not JSON ({e})")),
    };
    let verdict = match endpoint {
        Some(e) => (e.check_output)(&value),
        None if value.is_object() => Ok(()),
        None => Err("the result is not a JSON object".to_string()),
    };
    let Err(why) = verdict else { return ResultShape::Output };
    if value.get("detail").is_some() {
        return ResultShape::Failure;
    }
    match serde_json::from_value::<QueueStatus>(value) {
        Ok(status) if status.status != QueueStatusKind::Completed => ResultShape::Unfinished(status.status.to_string()),
        _ => ResultShape::Other(why),
    }
}

/// What a successful answer's body is to its caller ([`reading`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Not what the call answers: a proxy's glitch (`{}`, an envelope of its own).
    Unreadable,
    /// What the call answers.
    Readable,
    /// A result call's answer, told apart once: the transport asks again for one that is
    /// none of what a result call answers, and the caller takes the verdict with the answer.
    Result(ResultShape),
}

impl Reading {
    /// Whether the transport asks again (within the call's budget) for another answer.
    pub(crate) fn unreadable(&self) -> bool {
        matches!(self, Reading::Unreadable | Reading::Result(ResultShape::Other(_)))
    }
}

/// What a successful answer to `call` is to its caller: readable when it is a status for a
/// status call, for a result call an output, a failure or an unfinished status (for any
/// other call, JSON). The transport asks again, within the call's budget of attempts, for
/// an answer that is not: a proxy's glitch is not the job's end.
pub(crate) fn reading(call: Call, endpoint_id: &str, body: &[u8]) -> Reading {
    let readable = |yes: bool| if yes { Reading::Readable } else { Reading::Unreadable };
    match call {
        Call::Status => readable(serde_json::from_slice::<QueueStatus>(body).is_ok()),
        Call::Result => Reading::Result(result_reading(endpoint_id, body)),
        _ => readable(serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()),
    }
}

/// How long a stream that told COMPLETED is waited on to end before the result call:
/// servers end it at once, and one that does not delays the result by this much at most.
const STREAM_END: Duration = Duration::from_millis(2);

/// Reads what is left of a status stream in the background, for two seconds at most: the
/// server closes it after COMPLETED, which is better than resetting it (HTTP/2 servers and
/// clients count resets).
async fn drain(mut body: ByteStream) {
    let rest = async { while body.next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), rest).await;
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if body.len() > 200 { format!("{text}…") } else { text }
}

fn decode<T: DeserializeOwned>(answer: &Answer, endpoint: &str, request_id: Option<&str>, call: Call) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|e| Error::Protocol {
        endpoint: endpoint.to_string(),
        request_id: request_id.map(str::to_string),
        call,
        message: format!("HTTP {} with a body that is not the expected JSON ({e}): {}", answer.status, snippet(&answer.body)),
    })
}

/// The error an unsuccessful answer means: a failed job (result call), an
/// infrastructure error (`error_type`), or a plain HTTP error.
fn answer_error(endpoint: &str, request_id: Option<&str>, call: Call, answer: &Answer) -> Error {
    let body: Option<FalError> = serde_json::from_slice(&answer.body).ok();
    let (message, field_errors) = match body.as_ref().and_then(|b| b.detail.as_ref()) {
        Some(falq_api::types::ErrorDetail::String(s)) => (s.clone(), vec![]),
        Some(falq_api::types::ErrorDetail::Array(items)) => {
            let fields: Vec<FieldError> = items
                .iter()
                .map(|i| FieldError {
                    field: i
                        .loc
                        .iter()
                        .map(|p| match p {
                            falq_api::types::LocationPart::String(s) => s.clone(),
                            falq_api::types::LocationPart::Integer(n) => n.to_string(),
                        })
                        .skip_while(|p| p == "body")
                        .collect::<Vec<_>>()
                        .join("."),
                    message: i.msg.clone(),
                    kind: i.type_.clone(),
                })
                .collect();
            (fields.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "), fields)
        }
        None => (snippet(&answer.body), vec![]),
    };
    let error_type = body
        .as_ref()
        .and_then(|b| b.error_type.clone())
        .or_else(|| answer.headers.get("x-fal-error-type").and_then(|v| v.to_str().ok()).map(str::to_string));
    let (endpoint, request_id) = (endpoint.to_string(), request_id.map(str::to_string));
    // A job that did not start within the caller's own start timeout ended for good.
    let user_timeout = answer.headers.get("x-fal-request-timeout-type").and_then(|v| v.to_str().ok()) == Some("user");
    if call == Call::Result && answer.status == 504 && user_timeout {
        let message = format!("it did not start within its start timeout (X-Fal-Request-Timeout): {message}");
        return Error::JobFailed { endpoint, request_id, status: 504, message, field_errors: vec![] };
    }
    if let Some(error_type) = error_type {
        return Error::Infrastructure { endpoint, request_id, call, status: answer.status, error_type, message };
    }
    if let (Some(id), 404, Call::Status | Call::Result | Call::Stream) = (&request_id, answer.status, call) {
        return Error::Expired { endpoint, request_id: id.clone(), call };
    }
    // A failed job answers its error on the result call: 422 with fal's field errors, or
    // another client error. A server error (5xx, an HTML page) says nothing of the job.
    if call == Call::Result && (400..500).contains(&answer.status) && !matches!(answer.status, 400 | 401 | 403 | 404 | 408 | 429) {
        return Error::JobFailed { endpoint, request_id, status: answer.status, message, field_errors };
    }
    if call == Call::Submit && answer.status == 422 {
        // The relay validated the input itself: same shape as a failed job, nothing queued.
        return Error::JobFailed { endpoint, request_id, status: answer.status, message, field_errors };
    }
    Error::Http { endpoint, request_id, call, status: answer.status, message }
}

/// Sleeps until `at` after `origin`, or until the job is woken among its endpoint's
/// sleepers (a job submitted elsewhere is not among them); says why it was woken.
async fn sleep_until(origin: Instant, at: Duration, waiting: Option<&Waiting<'_>>) -> Option<Woken> {
    let sleep = tokio::time::sleep_until(crate::poll::instant_after(origin, at).into());
    let Some(waiting) = waiting else {
        sleep.await;
        return None;
    };
    let sleeper = waiting.sleep();
    tokio::select! {
        _ = sleep => None,
        why = sleeper.woken() => Some(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each endpoint's output as its own schema describes it, fullest first.
    fn outputs(e: &falq_api::EndpointInfo) -> Vec<Value> {
        let root: Value = serde_json::from_str(e.output_json_schema).unwrap();
        [falq_api::Fill::Maximal, falq_api::Fill::Minimal].map(|fill| falq_api::sample(&root, fill, "")).to_vec()
    }

    #[test]
    fn a_result_is_told_apart_once_and_the_transport_asks_again_only_for_what_no_result_is() {
        assert!(!falq_api::ENDPOINTS.is_empty());
        for e in falq_api::ENDPOINTS {
            let told = |body: &str| reading(Call::Result, e.id, body.as_bytes());
            for output in outputs(e) {
                let text = output.to_string();
                assert_eq!(told(&text), Reading::Result(ResultShape::Output), "{}: {text}", e.id);
                assert!(!told(&text).unreadable());
            }
            // What the endpoint's output type would take is its output, whatever else it
            // looks like (an output type of optional fields takes any object).
            let or_output = |body: &str, shape: ResultShape| {
                if (e.check_output_json)(body.as_bytes()).is_ok() { ResultShape::Output } else { shape }
            };
            let failure = r#"{"detail": "generation failed: NSFW"}"#;
            assert_eq!(told(failure), Reading::Result(or_output(failure, ResultShape::Failure)), "{}", e.id);
            let unfinished = r#"{"status": "IN_PROGRESS", "request_id": "r"}"#;
            let expected = or_output(unfinished, ResultShape::Unfinished("IN_PROGRESS".into()));
            assert_eq!(told(unfinished), Reading::Result(expected), "{}", e.id);
            assert!(!told(failure).unreadable() && !told(unfinished).unreadable(), "the job's own answers are not asked for again");
            // A glitch of a proxy: asked for again, and the verdict says why.
            for glitch in ["<html>Bad Gateway</html>", "null", "[1]"] {
                let r = told(glitch);
                assert!(r.unreadable(), "{}: {glitch}: {r:?}", e.id);
                assert!(matches!(&r, Reading::Result(ResultShape::Other(why)) if !why.is_empty()), "{r:?}");
            }
        }
        // An endpoint without a page: any JSON object is its output.
        assert_eq!(reading(Call::Result, "someone/unpaged", br#"{"a": 1}"#), Reading::Result(ResultShape::Output));
        assert!(reading(Call::Result, "someone/unpaged", b"[1]").unreadable());
        // The other calls: a status call's answer must be a status; any other call's, JSON.
        assert_eq!(reading(Call::Status, "x/y", br#"{"status": "IN_QUEUE"}"#), Reading::Readable);
        assert_eq!(reading(Call::Status, "x/y", b"{}"), Reading::Unreadable);
        assert_eq!(reading(Call::Submit, "x/y", b"{}"), Reading::Readable);
        assert_eq!(reading(Call::Submit, "x/y", b"<html>"), Reading::Unreadable);
    }
}
