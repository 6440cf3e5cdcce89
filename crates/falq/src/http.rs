//! The transport: sends every call under one budget of attempts (the retry policy's; an
//! attempt is a send and the reading of its answer, a download's restart included), confines
//! the key to the base's origin, caps calls in flight and the bodies read.

use bytes::Bytes;
use reqwest::{Method, Url};

use crate::client::Reading;
use crate::config::{Config, HttpVersion};
use crate::error::Error;
use crate::retry::{Call, Outcome};
use crate::rewrite::same_origin;
use crate::send::{MAX_REDIRECTS, SendError, Sender, Tls};

/// Who a call is for, to put in errors.
#[derive(Clone, Debug)]
pub struct CallCtx<'a> {
    /// The endpoint id.
    pub endpoint: &'a str,
    /// The request id, once known.
    pub request_id: Option<&'a str>,
}

impl CallCtx<'_> {
    /// A protocol error of `call` for this endpoint and request.
    fn protocol(&self, call: Call, message: String) -> Error {
        Error::Protocol { endpoint: self.endpoint.to_string(), request_id: self.request_id.map(str::to_string), call, message }
    }
}

/// Makes a call's request, once per attempt; an error says why it cannot.
pub(crate) type MakeRequest<'a> = dyn Fn() -> Result<reqwest::Request, String> + Sync + 'a;

/// The HTTP side of a client: an API client that carries the key to the base's
/// origin only, and a media client that never carries it.
#[derive(Clone, Debug)]
pub struct Transport {
    pub(crate) config: Config,
    api: reqwest::Client,
    /// Who sends the API requests built on `api`.
    sender: Sender,
    /// The API's TLS configuration (the downloads' too, for an HTTPS base).
    tls: Tls,
    /// Built at the first download: a client that saves no file loads no root store.
    media: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    auth: Option<reqwest::header::HeaderValue>,
    in_flight: std::sync::Arc<Limiter>,
    /// Per origin of media: whether its protocol is known yet ([`Probe`]).
    media_probes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Probe>>>>,
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// What the body is to its call, as the transport told it while deciding whether to
    /// ask again ([`crate::client::reading`]): a result call's answer is judged once.
    pub reading: Reading,
}

/// What both HTTP clients share: the connect timeout, falq's user agent, and their TLS
/// configuration ([`crate::send::tls`]).
fn client_builder(config: &Config, tls: Tls) -> reqwest::ClientBuilder {
    let builder =
        reqwest::Client::builder().connect_timeout(config.timeouts.connect).user_agent(concat!("falq/", env!("CARGO_PKG_VERSION")));
    #[cfg(feature = "rustls")]
    let builder = builder.tls_backend_preconfigured(tls);
    #[cfg(not(feature = "rustls"))]
    let () = tls;
    builder
}

impl Transport {
    /// Builds both HTTP clients from the configuration.
    pub fn new(config: Config) -> Result<Self, Error> {
        let base = config.base_url.clone();
        // Behind a proxy, reqwest sends (send.rs) and follows redirects as the direct sender
        // does: only within the base's origin, at most MAX_REDIRECTS; reqwest would drop the
        // Authorization header across hosts, but we do not go there at all.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() < MAX_REDIRECTS && same_origin(attempt.url(), &base) { attempt.follow() } else { attempt.stop() }
        });
        // The API client goes nowhere but the base's origin: over plain HTTP it never
        // speaks TLS, and loads no root store (the system's certificates, read from disk).
        let tls = crate::send::tls(config.base_url.scheme() == "https").map_err(|message| Error::Config { message })?;
        let mut api = client_builder(&config, tls.clone()).redirect(policy);
        if config.http.version == HttpVersion::Http2PriorKnowledge {
            api = api.http2_prior_knowledge();
        }
        let api = api.build().map_err(|e| Error::Config { message: format!("cannot build the HTTP client: {e}") })?;
        let sender = Sender::new(&config, &api, tls.clone()).map_err(|message| Error::Config { message })?;
        let auth = match &config.key {
            Some(key) => {
                let mut v = reqwest::header::HeaderValue::from_str(&config.auth_scheme.header_value(key))
                    .map_err(|_| Error::Config { message: "the key has characters a header cannot carry".into() })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let in_flight = std::sync::Arc::new(Limiter::new(&config.http, config.base_url.scheme() == "https"));
        Ok(Self { config, api, sender, tls, media: Default::default(), auth, in_flight, media_probes: Default::default() })
    }

    /// The HTTP client of downloads, built the first time one is asked for.
    fn media(&self) -> Result<&reqwest::Client, Error> {
        if let Some(client) = self.media.get() {
            return Ok(client);
        }
        // Media may be anywhere: the platform's authorities (the API's own, over HTTPS).
        let tls = match self.config.base_url.scheme() {
            "https" => self.tls.clone(),
            _ => crate::send::tls(true).map_err(|message| Error::Config { message })?,
        };
        let client = client_builder(&self.config, tls)
            // A stalled media server: no byte for this long ends the download.
            .read_timeout(self.config.timeouts.read)
            .build()
            .map_err(|e| Error::Config { message: format!("cannot build the HTTP client of downloads: {e}") })?;
        Ok(self.media.get_or_init(|| client))
    }

    /// Whether the protocol of `url`'s origin is known yet, for downloads: the media
    /// client's first burst, like the API's, learns it on one connection.
    fn media_probe(&self, url: &Url) -> std::sync::Arc<Probe> {
        let origin = url.origin().ascii_serialization();
        let Ok(mut all) = self.media_probes.lock() else { return std::sync::Arc::new(Probe::new(true)) };
        all.entry(origin).or_insert_with(|| std::sync::Arc::new(Probe::new(url.scheme() != "https"))).clone()
    }

    /// The HTTP client of API calls (generated operations are built on it).
    pub(crate) fn api_http(&self) -> &reqwest::Client {
        &self.api
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.config.base_url
    }

    /// Lets the runtime run what it has ready before a call that would hold a connection
    /// for long, over HTTP/1.1: a connection whose answer was just read goes back to the
    /// pool from tasks of its own (hyper's connection task, then hyper-util's return), and
    /// a call that finds the pool empty meanwhile opens another, or races a connect that
    /// then lies idle. A few rounds are what they take: 200 stream jobs against the
    /// simulator opened 241–283 connections without them, 227–239 after four rounds and 200
    /// after eight (the least there can be: one per open stream). Over HTTP/2 every call
    /// shares one connection, and there is nothing to wait for.
    pub(crate) async fn let_connections_return(&self) {
        const ROUNDS: usize = 8;
        if self.in_flight.h2.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        for _ in 0..ROUNDS {
            tokio::task::yield_now().await;
        }
    }

    /// The calls in flight allowed now (adapted to the relay's answers).
    pub fn in_flight_limit(&self) -> usize {
        self.in_flight.limit()
    }

    /// Sends a short call and reads its whole answer, at most `HttpPolicy::max_body` bytes,
    /// under one budget of attempts (the retry policy's): an attempt is a send and a read.
    /// An answer the policy would retry is asked again; after the last attempt it is
    /// answered as it is. A body cut short (a reset mid-answer) is asked again for every
    /// call but submit: a submit's answer lost that way may mean a queued job, so it is
    /// reported as one that may exist. A status or result success its caller cannot read
    /// ([`crate::client::reading`]) is asked again the same way. Runs in the caller's
    /// in-flight slot ([`Transport::in_slot`]).
    pub(crate) async fn exchange(&self, call: Call, outgoing: Outgoing<'_>, ctx: &CallCtx<'_>) -> Result<Answer, Error> {
        let outgoing = &outgoing;
        attempts(|n| self.exchange_once(call, outgoing, ctx, n)).await
    }

    /// Sends a call whose answer the caller reads as it arrives (a status stream), under
    /// the retry policy; answers the response, headers read, whatever its status.
    /// Such a call holds its connection for as long as it is read (a stream, the job's
    /// whole run): it takes one that is on its way back to the pool (the submit's, for a
    /// job's stream) rather than opening another.
    pub(crate) async fn open(&self, call: Call, outgoing: Outgoing<'_>, ctx: &CallCtx<'_>) -> Result<reqwest::Response, Error> {
        self.let_connections_return().await;
        let outgoing = &outgoing;
        attempts(|n| async move {
            match self.answered(call, outgoing, ctx, n, None).await {
                Ok(resp) => Attempt::Done(Ok(resp)),
                Err(attempt) => attempt,
            }
        })
        .await
    }

    /// Downloads a media URL (without the key) under one budget of attempts: `save`
    /// reads each attempt's answer (a success) and may ask for another ([`Saved::CutShort`],
    /// the download starts again from its first byte) until the budget is spent.
    pub(crate) async fn download<T, F>(&self, url: &Url, save: impl Fn(reqwest::Response, u32) -> F) -> Result<T, Error>
    where
        F: std::future::Future<Output = Saved<T>>,
    {
        let ctx = CallCtx { endpoint: "media", request_id: None };
        let outgoing = Outgoing::Url { method: Method::GET, url, body: None, headers: None };
        let probe = self.media_probe(url);
        let (ctx, outgoing, save, probe) = (&ctx, &outgoing, &save, &probe);
        attempts(|n| async move {
            let turn = probe.turn().await;
            let resp = match self.answered(Call::Download, outgoing, ctx, n, None).await {
                Ok(resp) => resp,
                Err(attempt) => return attempt,
            };
            probe.seen();
            drop(turn);
            if !resp.status().is_success() {
                let message = format!("HTTP {} (media links expire: download promptly)", resp.status());
                return Attempt::Done(Err(Error::Download { url: url.to_string(), message }));
            }
            match save(resp, n).await {
                Saved::Done(r) => Attempt::Done(r),
                Saved::CutShort(message) => match self.next_try(Call::Download, n, Outcome::Lost) {
                    Some(delay) => {
                        tracing::debug!(url = %url, attempts = n, %message, "download cut short or refused; starting again");
                        Attempt::Again(delay)
                    }
                    None => {
                        Attempt::Done(Err(Error::Download { url: url.to_string(), message: format!("{message} (after {n} attempts)") }))
                    }
                },
            }
        })
        .await
    }

    /// When the retry policy allows attempt `n + 1` of `call` after `outcome`: the delay.
    fn next_try(&self, call: Call, n: u32, outcome: Outcome) -> Option<std::time::Duration> {
        match crate::retry::decide(&self.config.retry, call, n, outcome, falq_api::jitter()) {
            crate::retry::Decision::RetryAfter(delay) => Some(delay),
            crate::retry::Decision::Stop => None,
        }
    }

    /// One attempt of a short call: a send and, unless the policy retries its answer, a read.
    async fn exchange_once(&self, call: Call, outgoing: &Outgoing<'_>, ctx: &CallCtx<'_>, n: u32) -> Attempt<Answer> {
        // The per-call time limit, over the send and the reading of the answer.
        let limit = self.config.timeouts.request;
        let deadline = tokio::time::Instant::now() + limit;
        let resp = match self.answered(call, outgoing, ctx, n, Some(deadline)).await {
            Ok(resp) => resp,
            Err(attempt) => return attempt,
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let read = tokio::time::timeout_at(deadline, read_capped(resp, self.config.http.max_body)).await;
        let read = read.unwrap_or_else(|_| Err(BodyError::Read(format!("no whole answer within {limit:?} (Timeouts::request)"))));
        let read = read.and_then(|body| as_meant(&headers, body, self.config.http.max_body, (200..300).contains(&status)));
        let reading = match &read {
            Ok(body) if matches!(call, Call::Status | Call::Result) && (200..300).contains(&status) => {
                crate::client::reading(call, ctx.endpoint, body)
            }
            _ => Reading::Readable,
        };
        match read {
            // A status or result success its caller cannot read (a proxy's glitch: a page,
            // `{}`, a body cut short under its own length) is asked for again like a
            // cut-short body; after the last attempt it goes to the caller, whose decode
            // says what it is.
            Ok(body) if reading.unreadable() => match self.next_try(call, n, Outcome::Lost) {
                Some(delay) => {
                    tracing::debug!(call = call.name(), attempts = n, "answer not of the call's shape; asking again");
                    Attempt::Again(delay)
                }
                None => Attempt::Done(Ok(Answer { status, headers, body, reading })),
            },
            Ok(body) => Attempt::Done(Ok(Answer { status, headers, body, reading })),
            Err(BodyError::TooLarge(max)) => Attempt::Done(Err(
                ctx.protocol(call, format!("HTTP {status} with a body over {max} bytes (HttpPolicy::max_body); not read"))
            )),
            // Cut short, or compressed in a coding falq cannot read (a proxy's glitch, maybe):
            // asked again; for good, it says what the relay sent.
            Err(e @ (BodyError::Read(_) | BodyError::Encoding(_))) => match self.next_try(call, n, Outcome::Lost) {
                Some(delay) => {
                    tracing::debug!(call = call.name(), attempts = n, error = %e, "answer not read whole; asking again");
                    Attempt::Again(delay)
                }
                None => Attempt::Done(Err(match e {
                    BodyError::Encoding(_) => ctx.protocol(call, format!("HTTP {status} with a body {e}")),
                    _ => Error::Network {
                        endpoint: ctx.endpoint.to_string(),
                        request_id: ctx.request_id.map(str::to_string),
                        call,
                        attempts: n,
                        message: format!("reading the answer: {e}"),
                        maybe_submitted: call == Call::Submit,
                    },
                })),
            },
        }
    }

    /// Attempt `n`'s send as the retry policy reads it: the response (for an API call, one
    /// that does not redirect off the base), or what the attempt came to (another after a
    /// delay the policy allows, or the call's error). A send not answered by `deadline` is
    /// lost.
    async fn answered<T>(
        &self,
        call: Call,
        outgoing: &Outgoing<'_>,
        ctx: &CallCtx<'_>,
        n: u32,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<reqwest::Response, Attempt<T>> {
        let sending = self.send_once(call, outgoing, ctx, n);
        let sent = match deadline {
            Some(at) => {
                tokio::time::timeout_at(at, sending).await.unwrap_or_else(|_| Ok(Err(SendError::TimedOut(self.config.timeouts.request))))
            }
            None => sending.await,
        };
        let sent = sent.map_err(|e| Attempt::Done(Err(e)))?;
        if let (Ok(resp), false) = (&sent, call == Call::Download) {
            self.in_flight.protocol_seen(resp.version() == reqwest::Version::HTTP_2);
        }
        let outcome = match &sent {
            Ok(resp) => falq_api::answered(resp),
            Err(e) if e.is_connect() => Outcome::NotSent,
            Err(_) => Outcome::Lost,
        };
        if let Some(delay) = self.next_try(call, n, outcome) {
            return Err(Attempt::Again(delay));
        }
        let resp = sent.map_err(|e| Attempt::Done(Err(self.network(ctx, call, n, &e, outcome))))?;
        if call == Call::Download {
            return Ok(resp);
        }
        self.not_redirected(ctx, call, resp).map_err(|e| Attempt::Done(Err(e)))
    }

    /// Attempt `n`'s send: the request made afresh (nothing is held for a retry while a
    /// call is out), the key confined to the base's origin, a call off it refused.
    async fn send_once(
        &self,
        call: Call,
        outgoing: &Outgoing<'_>,
        ctx: &CallCtx<'_>,
        n: u32,
    ) -> Result<Result<reqwest::Response, SendError>, Error> {
        let media = call == Call::Download;
        let client = if media { self.media()? } else { &self.api };
        let make = || -> Result<reqwest::Request, String> {
            let mut request = match outgoing {
                Outgoing::Built(make) => make()?,
                Outgoing::Url { method, url, body, headers } => {
                    let mut rb = client.request(method.clone(), (*url).clone());
                    if let Some(headers) = headers {
                        rb = rb.headers((*headers).clone());
                    }
                    if let Some(body) = body {
                        rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
                    }
                    rb.build().map_err(|e| e.to_string())?
                }
            };
            if let (false, Some(auth)) = (media, &self.auth) {
                request.headers_mut().insert(reqwest::header::AUTHORIZATION, auth.clone());
            }
            Ok(request)
        };
        let request = make().map_err(|e| ctx.protocol(call, format!("the request cannot be built: {e}")))?;
        if media {
            return Ok(client.execute(request).await.map_err(SendError::Reqwest));
        }
        if !same_origin(request.url(), &self.config.base_url) {
            return Err(ctx.protocol(call, format!("refusing to send the key to {}, which is not on the base URL", request.url())));
        }
        let sending = async {
            match self.sender.send(request, &|| make().ok()).await {
                Err(SendError::Unsendable(why)) => Err(ctx.protocol(call, format!("the request cannot be sent: {why}"))),
                sent => Ok(sent),
            }
        };
        if call != Call::Stream {
            return sending.await;
        }
        // A stream's body is long by nature, its answer's head is not: a relay that takes
        // the call and never answers it would hold the job to its deadline.
        let limit = self.config.timeouts.request;
        tokio::time::timeout(limit, sending).await.unwrap_or_else(|_| {
            Err(Error::Network {
                endpoint: ctx.endpoint.to_string(),
                request_id: ctx.request_id.map(str::to_string),
                call,
                attempts: n,
                message: format!("no answer within {limit:?} (Timeouts::request)"),
                maybe_submitted: false,
            })
        })
    }

    fn network(&self, ctx: &CallCtx<'_>, call: Call, attempts: u32, e: &SendError, outcome: Outcome) -> Error {
        Error::Network {
            endpoint: ctx.endpoint.to_string(),
            request_id: ctx.request_id.map(str::to_string),
            call,
            attempts,
            message: e.to_string(),
            maybe_submitted: call == Call::Submit && outcome == Outcome::Lost,
        }
    }

    /// The response, unless it is a redirect the sender did not follow: one off the base
    /// (the key goes nowhere else), or one hop too many within it.
    fn not_redirected(&self, ctx: &CallCtx<'_>, call: Call, resp: reqwest::Response) -> Result<reqwest::Response, Error> {
        if resp.status().is_redirection() {
            let location = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
            if crate::send::location_within(&resp, &self.config.base_url).is_some() {
                let message = format!(
                    "HTTP {} to {location} after {} redirects within the base URL; not followed further",
                    resp.status(),
                    MAX_REDIRECTS
                );
                return Err(ctx.protocol(call, message));
            }
            return Err(Error::ForeignRedirect { endpoint: ctx.endpoint.to_string(), call, location });
        }
        Ok(resp)
    }

    /// Runs the call `work` starts in one of the `max_in_flight` slots (the cap adapts to
    /// the status `status_of` reads from its answer). The work is started and boxed once
    /// the slot is taken: a call waiting for its turn holds a few words, not the state of
    /// sending and reading (10,000 jobs completing together queue 10,000 calls).
    pub(crate) async fn in_slot<T, F>(&self, work: impl FnOnce() -> F, status_of: impl FnOnce(&T) -> u16) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<T, Error>>,
    {
        let slot = self.in_flight.acquire().await;
        let turn = self.in_flight.protocol.turn().await;
        let answer = Box::pin(work()).await;
        drop(turn);
        self.in_flight.release(slot, answer.as_ref().ok().map(status_of));
        answer
    }

    /// Takes one of the status streams the relay's protocol allows (`HttpPolicy::max_streams`),
    /// counted against the budget of calls and streams until the guard is dropped; `None`
    /// when they are all open (the job polls).
    pub(crate) fn try_hold_stream(&self) -> Option<Held<'_>> {
        let limiter = &self.in_flight;
        let allowed = limiter.allowance().streams;
        limiter
            .others
            .fetch_update(std::sync::atomic::Ordering::AcqRel, std::sync::atomic::Ordering::Acquire, |n| (n < allowed).then_some(n + 1))
            .ok()?;
        Some(Held(&limiter.others))
    }
}

/// What a call sends: a request a generated operation built (made again for each attempt),
/// or one built here from a URL (a URL the relay gave that no operation can express, an
/// endpoint without a page, a media download).
pub(crate) enum Outgoing<'a> {
    /// Made by the caller, once per attempt.
    Built(&'a MakeRequest<'a>),
    /// `method` to `url`, with a JSON body and headers.
    Url { method: Method, url: &'a Url, body: Option<Bytes>, headers: Option<&'a reqwest::header::HeaderMap> },
}

/// What one attempt of a call came to.
enum Attempt<T> {
    /// The call's answer, or why it has none.
    Done(Result<T, Error>),
    /// Another attempt, after this delay (the retry policy allows it).
    Again(std::time::Duration),
}

/// What saving one download attempt came to.
pub(crate) enum Saved<T> {
    /// Saved, or failed for good.
    Done(Result<T, Error>),
    /// Broke off mid-body, or refused as it arrived (not what it claims, longer than
    /// announced): worth starting again while the budget lasts.
    CutShort(String),
}

/// The one budget of a call's attempts: runs `attempt` with its number (1, 2, ...) until it
/// is done, sleeping between attempts as it says.
async fn attempts<T, F>(mut attempt: impl FnMut(u32) -> F) -> Result<T, Error>
where
    F: std::future::Future<Output = Attempt<T>>,
{
    let mut n = 0u32;
    loop {
        n += 1;
        match attempt(n).await {
            Attempt::Done(answer) => return answer,
            Attempt::Again(delay) => tokio::time::sleep(delay).await,
        }
    }
}

/// The cap on calls in flight, adapted to the relay (additive increase, multiplicative
/// decrease): while every slot is taken, the relay does not push back and its answers do
/// not suddenly slow down (over 4× the recent fastest), the cap grows by one per answer
/// up to the ceiling, as more calls in flight may buy throughput (a relay slow per call;
/// even a busy one, whose server batches its work); a 429 or 503 halves it. Calls in
/// flight and open status streams share a budget (over HTTP/1.1 each is a connection of
/// about 25 KB of client memory; over HTTP/2 a stream of the one connection, within the
/// relay's allowance of concurrent streams), and the cap neither grows into what the
/// streams hold nor keeps what they took since.
#[derive(Debug)]
pub(crate) struct Limiter {
    sem: tokio::sync::Semaphore,
    state: std::sync::Mutex<LimiterState>,
    /// Open status streams, counted by [`Held`]: outside the cap, within the budget.
    others: std::sync::atomic::AtomicUsize,
    /// Whether the relay speaks HTTP/2 (known up front with prior knowledge; otherwise
    /// seen on its answers, as ALPN decided): the allowance follows.
    h2: std::sync::atomic::AtomicBool,
    /// Over HTTP/1.1, and over HTTP/2.
    allowances: [Allowance; 2],
    /// Whether an answer has told the relay's protocol ([`Probe`]).
    protocol: Probe,
}

/// Whether an answer has told an origin's protocol (known up front but over HTTPS, where
/// ALPN decides it at the first connection): until then one call goes at a time, and the
/// others wait for its answer. With HTTP/2, one connection then carries every call;
/// without the wait, each call of a first burst opened a connection and a TLS session of
/// its own (32 for 200 jobs) before the first answer said that one would do.
#[derive(Debug)]
pub(crate) struct Probe {
    known: std::sync::atomic::AtomicBool,
    /// The turn of the one call that may go.
    turn: tokio::sync::Semaphore,
    /// Wakes the waiters once the protocol is known.
    learned: tokio::sync::Notify,
}

impl Probe {
    fn new(known: bool) -> Self {
        Self { known: std::sync::atomic::AtomicBool::new(known), turn: tokio::sync::Semaphore::new(1), learned: tokio::sync::Notify::new() }
    }

    /// An answer came: the protocol is known, and the calls waiting for it go.
    fn seen(&self) {
        if !self.known.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.learned.notify_waiters();
        }
    }

    /// `None` once the protocol is known; until then, the turn of the one call that may
    /// go (held while it waits for its answer; a call that ends without one hands it on).
    async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        use std::sync::atomic::Ordering;
        // Every call asks: once known, without taking the waiters' lock.
        if self.known.load(Ordering::Acquire) {
            return None;
        }
        let learned = self.learned.notified();
        tokio::pin!(learned);
        learned.as_mut().enable();
        if self.known.load(Ordering::Acquire) {
            return None;
        }
        tokio::select! {
            turn = self.turn.acquire() => turn.ok().filter(|_| !self.known.load(Ordering::Acquire)),
            () = learned => None,
        }
    }
}

/// What a protocol allows: calls and streams together, and streams.
#[derive(Debug)]
struct Allowance {
    budget: usize,
    streams: usize,
}

/// The adaptive part of the [`Limiter`]: a pure rule, fed each answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LimiterState {
    limit: usize,
    floor: usize,
    ceiling: usize,
    /// Permits to retire as they come back, after a decrease.
    debt: usize,
    /// The recent fastest success (forgotten a little with each answer, and with time
    /// while not saturated), and when it was last updated.
    best: Option<(std::time::Duration, std::time::Instant)>,
}

/// What the limiter does with an answer's permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Return it.
    Keep,
    /// Return it and add one (the cap grew).
    Grow,
    /// Retire it (the cap is paying a decrease).
    Retire,
}

impl LimiterState {
    /// An answer slower than this many times the recent fastest: the relay slowed down.
    const TOLERANCE: u32 = 4;
    /// How much the recent fastest is forgotten with each answer (it doubles in about 45).
    const DRIFT: f64 = 1.0 / 64.0;
    /// While not saturated, the recent fastest also doubles in this much time (a relay
    /// that slowed down for good while little was asked of it re-baselines).
    const FORGET: std::time::Duration = std::time::Duration::from_secs(10);

    /// Starts at `start` calls and grows to `ceiling`.
    pub(crate) fn new(start: usize, ceiling: usize) -> Self {
        let start = start.max(1);
        Self { limit: start, floor: (start / 4).max(1), ceiling: ceiling.max(start), debt: 0, best: None }
    }

    /// An answer of `status` (`None`: no answer) came `latency` after its slot was
    /// taken, at `now`; `saturated` when every slot was taken with it; `room` what the
    /// budget of calls and streams leaves the calls now (`usize::MAX`: no budget).
    pub(crate) fn answer(
        &mut self,
        latency: std::time::Duration,
        saturated: bool,
        status: Option<u16>,
        room: usize,
        now: std::time::Instant,
    ) -> Verdict {
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let best = match self.best {
            Some((best, at)) => {
                let age = if saturated { 0.0 } else { now.saturating_duration_since(at).as_secs_f64() / Self::FORGET.as_secs_f64() };
                // Saturating: after a long idle the old speed is simply forgotten.
                let forgotten = best.as_secs_f64() * (1.0 + Self::DRIFT) * 2f64.powf(age);
                std::time::Duration::try_from_secs_f64(forgotten).unwrap_or(std::time::Duration::MAX)
            }
            None => std::time::Duration::MAX,
        };
        // Only successes tell the relay's speed (a refusal may come sooner).
        let best = if ok { best.min(latency) } else { best };
        self.best = (best < std::time::Duration::MAX).then_some((best, now));
        let mut verdict = Verdict::Keep;
        match status {
            Some(429 | 503) => {
                let new = (self.limit / 2).max(self.floor);
                self.debt += self.limit - new;
                self.limit = new;
            }
            Some(s)
                if s < 500
                    && saturated
                    && self.debt == 0
                    && latency <= best.saturating_mul(Self::TOLERANCE)
                    && self.limit < self.ceiling.min(room) =>
            {
                self.limit += 1;
                verdict = Verdict::Grow;
            }
            _ => {}
        }
        if verdict == Verdict::Keep && self.debt > 0 {
            self.debt -= 1;
            verdict = Verdict::Retire;
        } else if verdict == Verdict::Keep && self.limit > room.max(self.floor) {
            // Streams opened since the cap grew: give them back their share, one per answer.
            self.limit -= 1;
            verdict = Verdict::Retire;
        }
        verdict
    }
}

/// An open status stream, counted against the budget of calls and streams while it
/// lives ([`Transport::try_hold_stream`]).
pub(crate) struct Held<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A taken slot: when, and whether every slot was taken with it.
struct Slot<'a> {
    permit: Option<tokio::sync::SemaphorePermit<'a>>,
    started: std::time::Instant,
    saturated: bool,
}

impl Limiter {
    fn new(http: &crate::config::HttpPolicy, tls: bool) -> Self {
        let state = LimiterState::new(http.max_in_flight, http.max_in_flight_ceiling);
        // Streams leave the calls their floor of the budget, whatever is configured.
        let allowance = |h2| {
            let budget = http.connections(h2);
            Allowance { budget, streams: http.streams(h2).min(budget.saturating_sub(state.floor).max(1)) }
        };
        Self {
            allowances: [allowance(false), allowance(true)],
            sem: tokio::sync::Semaphore::new(state.limit),
            state: std::sync::Mutex::new(state),
            others: std::sync::atomic::AtomicUsize::new(0),
            h2: std::sync::atomic::AtomicBool::new(http.version == HttpVersion::Http2PriorKnowledge),
            protocol: Probe::new(!tls || http.version == HttpVersion::Http2PriorKnowledge),
        }
    }

    /// An answer came over HTTP/2 or not: the allowance follows, and calls waiting to
    /// learn the protocol go.
    fn protocol_seen(&self, h2: bool) {
        if h2 {
            self.h2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.protocol.seen();
    }

    /// What the relay's protocol allows.
    fn allowance(&self) -> &Allowance {
        &self.allowances[usize::from(self.h2.load(std::sync::atomic::Ordering::Relaxed))]
    }

    fn limit(&self) -> usize {
        self.state.lock().map(|s| s.limit).unwrap_or(0)
    }

    async fn acquire(&self) -> Slot<'_> {
        let permit = self.sem.acquire().await.ok();
        Slot { permit, started: std::time::Instant::now(), saturated: self.sem.available_permits() == 0 }
    }

    fn release(&self, mut slot: Slot<'_>, status: Option<u16>) {
        let now = std::time::Instant::now();
        let Ok(mut st) = self.state.lock() else { return };
        let room = self.allowance().budget.saturating_sub(self.others.load(std::sync::atomic::Ordering::Relaxed));
        match st.answer(now.saturating_duration_since(slot.started), slot.saturated, status, room, now) {
            Verdict::Keep => {}
            Verdict::Grow => self.sem.add_permits(1),
            Verdict::Retire => {
                if let Some(p) = slot.permit.take() {
                    p.forget();
                }
            }
        }
    }
}

enum BodyError {
    TooLarge(usize),
    Read(String),
    /// Compressed in a coding falq cannot read (it asks for none).
    Encoding(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "over {max} bytes"),
            BodyError::Read(why) => f.write_str(why),
            BodyError::Encoding(coding) => {
                write!(f, "compressed as `{coding}` (Content-Encoding), which falq did not ask for and cannot read")
            }
        }
    }
}

/// `body` as the relay meant it: decompressed ([`decompressed`]), and without the UTF-8
/// byte-order mark some servers put before JSON (which JSON parsers may ignore, RFC 8259,
/// and serde_json does not). A submit's answer read as it came would lose the request id
/// of a job that was queued, and paid. An answer that is no `success` says what it is by
/// its status: a body that cannot be decompressed is kept as it came, for the error to show.
fn as_meant(headers: &reqwest::header::HeaderMap, body: Bytes, max: usize, success: bool) -> Result<Bytes, BodyError> {
    let body = match decompressed(headers, &body, max) {
        Ok(Some(plain)) => plain,
        Ok(None) => body,
        Err(BodyError::Encoding(_) | BodyError::Read(_)) if !success => return Ok(body),
        Err(e) => return Err(e),
    };
    Ok(if body.starts_with(BOM) { body.slice(BOM.len()..) } else { body })
}

/// The UTF-8 byte-order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The codings `headers` say their body is in (`Content-Encoding`), in the order they were
/// applied, `identity` left out.
pub(crate) fn codings(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    let Some(value) = headers.get(reqwest::header::CONTENT_ENCODING) else { return Vec::new() };
    let value = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
    value.split(',').map(str::trim).filter(|c| !c.is_empty() && *c != "identity").map(str::to_string).collect()
}

/// `body` decompressed; `None` when it is in no coding. falq asks for no compression, but
/// a proxy in front of a relay may compress anyway: a body in `gzip` or `deflate` (as
/// `Content-Encoding` lists them, in the order they were applied) is decompressed, within
/// `max` bytes. Another coding is refused by name; a broken one is an answer cut short.
fn decompressed(headers: &reqwest::header::HeaderMap, body: &Bytes, max: usize) -> Result<Option<Bytes>, BodyError> {
    let mut plain: Option<Bytes> = None;
    for coding in codings(headers).iter().rev() {
        let input = plain.as_ref().unwrap_or(body);
        if input.is_empty() {
            break;
        }
        plain = Some(match coding.as_str() {
            "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(&input[..]), coding, max)?,
            // HTTP's `deflate` is zlib's format; some servers send the raw stream.
            "deflate" => match inflate(flate2::read::ZlibDecoder::new(&input[..]), coding, max) {
                Err(BodyError::Read(_)) => inflate(flate2::read::DeflateDecoder::new(&input[..]), coding, max)?,
                zlib => zlib?,
            },
            other => return Err(BodyError::Encoding(other.to_string())),
        });
    }
    Ok(plain)
}

/// What `decoder` gives, refused past `max` bytes.
fn inflate(decoder: impl std::io::Read, coding: &str, max: usize) -> Result<Bytes, BodyError> {
    use std::io::Read;
    let mut out = Vec::new();
    decoder.take(max as u64 + 1).read_to_end(&mut out).map_err(|e| BodyError::Read(format!("its {coding} coding is broken: {e}")))?;
    if out.len() > max {
        return Err(BodyError::TooLarge(max));
    }
    Ok(out.into())
}

/// Reads a body whole, refusing one over `max` bytes (by its length or as it arrives).
async fn read_capped(resp: reqwest::Response, max: usize) -> Result<Bytes, BodyError> {
    use futures_util::StreamExt;
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let mut out = bytes::BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(error_chain(&e)))?;
        if out.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// An error and its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn gzip(body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    fn encoded(codings: &str) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::CONTENT_ENCODING, codings.parse().unwrap());
        h
    }

    fn read(codings: Option<&str>, body: Vec<u8>, max: usize) -> Result<Vec<u8>, String> {
        let headers = codings.map(encoded).unwrap_or_default();
        let body = Bytes::from(body);
        decompressed(&headers, &body, max).map(|b| b.unwrap_or(body).to_vec()).map_err(|e| match e {
            BodyError::TooLarge(n) => format!("too large {n}"),
            BodyError::Read(why) => format!("read: {why}"),
            BodyError::Encoding(c) => format!("coding {c}"),
        })
    }

    #[test]
    fn a_compressed_body_is_read_as_its_codings_say_within_the_limit() {
        let json = br#"{"status":"IN_QUEUE","request_id":"r"}"#.to_vec();
        assert_eq!(read(None, json.clone(), 64), Ok(json.clone()), "no coding: as it is");
        for c in ["gzip", "x-gzip", "GZIP", " gzip ", "identity, gzip", "gzip, identity"] {
            assert_eq!(read(Some(c), gzip(&json), 64), Ok(json.clone()), "{c}");
        }
        // Codings are listed in the order they were applied: undone last first.
        assert_eq!(read(Some("gzip, gzip"), gzip(&gzip(&json)), 64), Ok(json.clone()));
        assert_eq!(read(Some("gzip"), vec![], 64), Ok(vec![]), "an empty body has nothing to inflate");
        assert_eq!(read(Some("gzip"), gzip(&json), json.len()), Ok(json.clone()), "the limit is the inflated size");
        assert_eq!(read(Some("gzip"), gzip(&json), json.len() - 1), Err(format!("too large {}", json.len() - 1)));
        assert_eq!(read(Some("br"), gzip(&json), 64), Err("coding br".into()));
        assert_eq!(read(Some("gzip, zstd"), gzip(&json), 64), Err("coding zstd".into()), "the last applied is undone first");
        let cut = gzip(&json)[..10].to_vec();
        assert!(read(Some("gzip"), cut, 64).is_err_and(|e| e.starts_with("read: its gzip coding is broken")));
        assert!(read(Some("gzip"), json.clone(), 64).is_err_and(|e| e.starts_with("read:")), "not gzip at all");
    }

    #[test]
    fn a_byte_order_mark_before_an_answer_is_dropped_once_compressed_or_not() {
        let json = br#"{"status":"IN_QUEUE"}"#.to_vec();
        let marked = [BOM, &json].concat();
        let meant = |codings: Option<&str>, body: Vec<u8>| {
            let headers = codings.map(encoded).unwrap_or_default();
            as_meant(&headers, Bytes::from(body), 64, true).ok().map(|b| b.to_vec())
        };
        assert_eq!(meant(None, marked.clone()), Some(json.clone()));
        assert_eq!(meant(Some("gzip"), gzip(&marked)), Some(json.clone()), "a mark inside the compression");
        assert_eq!(meant(None, [BOM, &marked].concat()), Some(marked.clone()), "one mark only");
        assert_eq!(meant(None, BOM[..2].to_vec()), Some(BOM[..2].to_vec()), "half a mark is the body's");
        assert_eq!(meant(None, json.clone()), Some(json));
    }

    /// Whether `f` is still waiting after the runtime ran everything else it could.
    async fn waits<F: std::future::Future>(f: &mut std::pin::Pin<&mut F>) -> bool {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        futures_util::FutureExt::now_or_never(f.as_mut()).is_none()
    }

    #[tokio::test]
    async fn until_the_protocol_is_known_one_call_goes_at_a_time() {
        // Known up front (plain HTTP, prior knowledge): nobody waits.
        assert!(Probe::new(true).turn().await.is_none());
        // Unknown: the first call goes; the second waits until an answer tells the protocol.
        let probe = Probe::new(false);
        let first = probe.turn().await;
        assert!(first.is_some(), "the first call goes");
        let second = probe.turn();
        tokio::pin!(second);
        assert!(waits(&mut second).await, "the second waits for the first's answer");
        probe.seen();
        assert!(second.await.is_none(), "once known, it goes without a turn");
        drop(first);
        assert!(probe.turn().await.is_none(), "and so does every call after");
        // A first call that ends without an answer hands its turn on.
        let probe = Probe::new(false);
        let first = probe.turn().await;
        let second = probe.turn();
        tokio::pin!(second);
        assert!(waits(&mut second).await);
        drop(first);
        assert!(second.await.is_some(), "the next call takes the turn");
    }

    /// The room of calls when nothing bounds calls and streams together.
    const NO_BUDGET: usize = usize::MAX;

    /// Feeds `state` saturated answers for `span` of simulated time from `t0`, with
    /// `room` left to the calls by the budget, each answer taking what `latency` says
    /// for the cap of the moment, at the rate `limit / latency` the calls in flight come
    /// back at. Answers the time reached.
    fn load(state: &mut LimiterState, t0: Instant, span: Duration, room: usize, latency: impl Fn(usize) -> Duration) -> Instant {
        let mut now = t0;
        while now < t0 + span {
            let l = latency(state.limit);
            now += l / state.limit as u32;
            state.answer(l, true, Some(200), room, now);
        }
        now
    }

    #[test]
    fn the_cap_grows_while_the_relay_keeps_answering_up_to_its_ceiling() {
        let t0 = Instant::now();
        // 40 ms a call however many are in flight (±1 ms): more calls buy throughput.
        let mut slow = LimiterState::new(32, 256);
        load(&mut slow, t0, Duration::from_secs(10), NO_BUDGET, |n| Duration::from_micros(40_000 + (n as u64 % 3) * 500));
        assert_eq!(slow.limit, 256, "grows to the ceiling");
        // A busy relay whose answers slow down gradually as calls are added: no pushback,
        // so it grows (more in flight may still buy throughput, as batching servers do).
        let mut busy = LimiterState::new(32, 256);
        load(&mut busy, t0, Duration::from_secs(10), NO_BUDGET, |n| Duration::from_micros(1000).max(Duration::from_micros(100 * n as u64)));
        assert_eq!(busy.limit, 256);
    }

    #[test]
    fn a_sudden_slowdown_holds_the_cap_until_it_is_the_norm() {
        let t0 = Instant::now();
        let mut s = LimiterState::new(8, 64);
        let ms = Duration::from_millis;
        for _ in 0..10 {
            s.answer(ms(10), true, Some(200), NO_BUDGET, t0);
        }
        let before = s.limit;
        assert_eq!(s.answer(ms(50), true, Some(200), NO_BUDGET, t0), Verdict::Keep, "5× the recent fastest");
        assert_eq!(s.limit, before);
        let grew = (0..200).filter(|_| s.answer(ms(50), true, Some(200), NO_BUDGET, t0) == Verdict::Grow).count();
        assert!(grew > 0, "after a hundred-odd answers at 50 ms, 50 ms is the relay's speed");
    }

    #[test]
    fn calls_and_streams_share_the_connection_budget() {
        let t0 = Instant::now();
        let latency = |_| Duration::from_millis(5);
        // 256 streams open of 320 connections: the calls grow to 64, not to the ceiling.
        let mut s = LimiterState::new(32, 256);
        load(&mut s, t0, Duration::from_secs(5), 320 - 256, latency);
        assert_eq!(s.limit, 64);
        // Nothing streams: the calls take the budget, up to the ceiling.
        let mut s = LimiterState::new(32, 256);
        let t = load(&mut s, t0, Duration::from_secs(5), 320, latency);
        assert_eq!(s.limit, 256);
        // Then 200 streams open: the cap gives back their share, one permit per answer.
        let retired = (0..300).filter(|_| s.answer(latency(0), true, Some(200), 320 - 200, t) == Verdict::Retire).count();
        assert_eq!((s.limit, retired), (120, 136));
        // Never below its floor, whatever the streams hold.
        let mut s = LimiterState::new(32, 256);
        for _ in 0..100 {
            s.answer(latency(0), true, Some(200), 0, t0);
        }
        assert_eq!(s.limit, 8);
    }

    #[test]
    fn a_relay_that_slowed_down_for_good_is_re_baselined() {
        let t0 = Instant::now();
        let mut s = LimiterState::new(8, 64);
        s.answer(Duration::from_millis(1), false, Some(200), NO_BUDGET, t0);
        let slower = Duration::from_millis(50);
        assert_eq!(s.answer(slower, true, Some(200), NO_BUDGET, t0), Verdict::Keep, "50× the fastest");
        // Little asked of it for a minute: forgotten with time.
        let mut now = t0;
        for _ in 0..6 {
            now += Duration::from_secs(10);
            s.answer(slower, false, Some(200), NO_BUDGET, now);
        }
        assert_eq!(s.answer(slower, true, Some(200), NO_BUDGET, now), Verdict::Grow, "a minute later, 50 ms is the relay's speed");
        // A day idle: the old speed is forgotten (and nothing overflows).
        let mut s = LimiterState::new(8, 64);
        s.answer(Duration::from_millis(1), false, Some(200), NO_BUDGET, t0);
        let later = t0 + Duration::from_secs(86_400);
        s.answer(slower, false, Some(200), NO_BUDGET, later);
        assert_eq!(s.answer(slower, true, Some(200), NO_BUDGET, later), Verdict::Grow);
        // Errors do not set the speed: a quick refusal is no baseline.
        let mut s = LimiterState::new(8, 64);
        s.answer(Duration::from_micros(10), false, Some(404), NO_BUDGET, t0);
        s.answer(slower, false, Some(200), NO_BUDGET, t0);
        assert_eq!(s.answer(slower, true, Some(200), NO_BUDGET, t0), Verdict::Grow);
    }

    #[test]
    fn a_429_or_503_halves_the_cap_down_to_a_quarter_and_its_permits_retire() {
        let t0 = Instant::now();
        let mut s = LimiterState::new(32, 256);
        let ms = Duration::from_millis(5);
        assert_eq!(s.answer(ms, true, Some(429), NO_BUDGET, t0), Verdict::Retire);
        assert_eq!(s.limit, 16);
        for _ in 0..15 {
            assert_eq!(
                s.answer(ms, true, Some(200), NO_BUDGET, t0),
                Verdict::Retire,
                "the 16 permits over the cap retire as they come back"
            );
        }
        assert_eq!(s.answer(ms, true, Some(200), NO_BUDGET, t0), Verdict::Grow, "then it grows again");
        for _ in 0..10 {
            s.answer(ms, true, Some(503), NO_BUDGET, t0);
        }
        assert_eq!(s.limit, 8, "never below a quarter of the start");
        assert_eq!(s.answer(ms, false, Some(200), NO_BUDGET, t0), Verdict::Keep, "each answer paid one permit of the debt: it is paid");
    }
}
