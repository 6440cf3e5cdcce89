//! falq-runtime: the hand-written runtime under the generated `falq-api` client.
//!
//! The generated crate's `Client` (progenitor) runs every operation through the hooks
//! of this crate, which its `lib.rs` only forwards to ([`pre`], [`post`], [`exec`]):
//! - the key goes to the base URL's origin and nowhere else ([`same_origin`]);
//! - an endpoint's input is checked against its schema before it is sent, unless the
//!   caller checked it already ([`Hooks::inputs_checked`]);
//! - the request is sent in the project's one retry loop ([`send_retrying`]), or handed to
//!   the [`Executor`] a queue layer plugs in ([`Hooks::with_executor`]): the `falq` crate's
//!   transport, whose every call is a generated operation.
//!
//! Nothing here knows an endpoint: the generated crate passes its catalogue in.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use falq_core::{EndpointInfo, retry, validate_input};
use progenitor_client::{Error, OperationInfo};

/// What every call of the generated client carries: the `Authorization` value (sent only
/// to the base URL's origin), the retry policy, whether inputs are checked, and who sends
/// the requests.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    authorization: Option<reqwest::header::HeaderValue>,
    /// How calls are retried (the submit of a paid job only when it cannot have arrived).
    pub retry: retry::RetryPolicy,
    executor: Option<Arc<dyn Executor>>,
    /// The caller checked every input against its endpoint's schema (one check per submit).
    inputs_checked: bool,
    /// The base URL as last parsed (its text and the URL): parsed once, not per call.
    base: Arc<std::sync::OnceLock<(String, reqwest::Url)>>,
}

/// Sends the requests the generated operations build, in place of [`send_retrying`]: how
/// a queue layer (the `falq` crate) runs the typed operations over its own transport
/// (its cap on calls in flight, its reading of answers, its errors). The request has
/// passed [`Hooks`]' checks (its origin, an endpoint's input) when it gets here.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Sends `request`, the operation's `call`, and answers the response, or why none came.
    fn execute(&self, request: reqwest::Request, call: retry::Call) -> BoxFuture<'_, Result<reqwest::Response, NoAnswer>>;
}

/// A boxed future that can be sent between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an [`Executor`] has no response: the operation answers
/// `progenitor_client::Error::Custom` with it.
#[derive(Clone, Debug)]
pub struct NoAnswer(pub String);

impl Hooks {
    /// Sends `Authorization: {scheme} {key}` (`Bearer` for relays, `Key` for fal.ai itself)
    /// with every call; the value is marked sensitive (never logged).
    pub fn with_key(mut self, scheme: &str, key: &str) -> Result<Hooks, String> {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("{scheme} {}", key.trim()))
            .map_err(|_| "the key cannot be sent in a header".to_string())?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// With this retry policy.
    pub fn with_retry(mut self, retry: retry::RetryPolicy) -> Hooks {
        self.retry = retry;
        self
    }

    /// Sends every call through `executor` (the retry policy is then the executor's).
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Hooks {
        self.executor = Some(executor);
        self
    }

    /// Inputs are checked by the caller, against the same schema, before the operation is
    /// built (the `falq` crate does, to answer each field's error): the hooks do not check
    /// them again.
    pub fn inputs_checked(mut self) -> Hooks {
        self.inputs_checked = true;
        self
    }
}

/// Whether two URLs share scheme, host and port (default ports filled in): where the key
/// may go.
pub fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && match (a.host_str(), b.host_str()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            (x, y) => x == y,
        }
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The call an operation is, for the retry policy: an endpoint's submit unless it is one of
/// the queue's calls (so an unknown operation is never retried blindly).
pub fn call_of(operation_id: &str) -> retry::Call {
    match operation_id {
        "queue_status" => retry::Call::Status,
        "queue_status_stream" => retry::Call::Stream,
        "queue_result" => retry::Call::Result,
        "queue_cancel" => retry::Call::Cancel,
        _ => retry::Call::Submit,
    }
}

/// Why [`send_retrying`] gave up without an answer.
#[derive(Debug)]
pub struct SendFailure {
    /// The last attempt's error.
    pub error: reqwest::Error,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// What the last attempt came to (`NotSent`: the request cannot have arrived).
    pub outcome: retry::Outcome,
}

/// What one attempt's answer says to the retry policy.
pub fn outcome_of(sent: &reqwest::Result<reqwest::Response>) -> retry::Outcome {
    match sent {
        Ok(resp) => answered(resp),
        Err(e) if e.is_connect() => retry::Outcome::NotSent,
        Err(_) => retry::Outcome::Lost,
    }
}

/// What a response says to the retry policy: its status, `Retry-After`, and whether a
/// 504 is the caller's own time limit (fal's `x-fal-request-timeout-type: user`).
pub fn answered(resp: &reqwest::Response) -> retry::Outcome {
    retry::Outcome::Answered {
        status: resp.status().as_u16(),
        retry_after: resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry::parse_retry_after),
        user_timeout: resp.headers().get("x-fal-request-timeout-type").and_then(|v| v.to_str().ok()) == Some("user"),
    }
}

/// A jitter in `-1.0..=1.0` for [`retry::decide`] (asked of every attempt: from a
/// generator seeded once per thread, not a system call each time).
pub fn jitter() -> f64 {
    use rand::{Rng, SeedableRng};
    thread_local! {
        static RNG: std::cell::RefCell<rand::rngs::SmallRng> = std::cell::RefCell::new(rand::rngs::SmallRng::from_os_rng());
    }
    RNG.with_borrow_mut(|rng| rng.random_range(-1.0..=1.0))
}

/// The one retry loop of the generated client: sends the request `attempt` makes (called
/// once per attempt, so nothing is kept for a retry while a call is in flight) and retries
/// as [`retry::decide`] says, sleeping between attempts. Answers the last response (one
/// still retryable after the last attempt included) or why no answer came. When `again`
/// cannot make the request again (`None`: a body that cannot be copied), the last outcome
/// stands. (The `falq` crate's transport runs the same policy over an attempt that also
/// reads the answer whole: one budget for sending and reading.)
pub async fn send_retrying(
    http: &reqwest::Client,
    policy: &retry::RetryPolicy,
    call: retry::Call,
    first: reqwest::Request,
    mut again: impl FnMut() -> Option<reqwest::Request>,
) -> Result<reqwest::Response, SendFailure> {
    let mut attempts = 0u32;
    let mut request = first;
    loop {
        attempts += 1;
        let sent = http.execute(request).await;
        let outcome = outcome_of(&sent);
        let next = match retry::decide(policy, call, attempts, outcome, jitter()) {
            retry::Decision::RetryAfter(delay) => again().map(|r| (delay, r)),
            retry::Decision::Stop => None,
        };
        match (next, sent) {
            (Some((delay, next)), _) => {
                tokio::time::sleep(delay).await;
                request = next;
            }
            (None, Ok(resp)) => return Ok(resp),
            (None, Err(error)) => return Err(SendFailure { error, attempts, outcome }),
        }
    }
}

/// The generated client's `pre` hook: the call must go to the base URL's origin (the key
/// goes nowhere else), an endpoint's input (the operation's, found by id in `endpoints`)
/// must pass its schema unless the caller checked it, and then the key is added.
pub async fn pre<E>(
    hooks: &Hooks,
    baseurl: &str,
    endpoints: &'static [&'static EndpointInfo],
    request: &mut reqwest::Request,
    info: &OperationInfo,
) -> Result<(), Error<E>> {
    let refuse = |why: String| Error::InvalidRequest(why);
    let base = match hooks.base.get() {
        Some((text, url)) if text == baseurl => std::borrow::Cow::Borrowed(url),
        _ => {
            let url = reqwest::Url::parse(baseurl).map_err(|e| refuse(format!("the base URL {baseurl:?} is not a URL: {e}")))?;
            let _ = hooks.base.set((baseurl.to_string(), url.clone()));
            std::borrow::Cow::Owned(url)
        }
    };
    if !same_origin(request.url(), &base) {
        return Err(refuse(format!("refusing to send {} to {}: not on the base URL {base}", info.operation_id, request.url())));
    }
    if !hooks.inputs_checked
        && let Some(endpoint) = endpoints.iter().copied().find(|e| e.operation_id == info.operation_id)
        && let Some(bytes) = request.body().and_then(reqwest::Body::as_bytes)
    {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| refuse(format!("{}: the input is not JSON: {e}", endpoint.id)))?;
        validate_input(endpoint, &json).map_err(|e| refuse(format!("{}: invalid input, nothing was sent: {e}", endpoint.id)))?;
    }
    if let Some(auth) = &hooks.authorization {
        request.headers_mut().insert(reqwest::header::AUTHORIZATION, auth.clone());
    }
    Ok(())
}

/// The generated client's `post` hook: an executor's missing answer becomes the
/// operation's error.
pub async fn post<E>(result: &reqwest::Result<reqwest::Response>) -> Result<(), Error<E>> {
    match result.as_ref().ok().and_then(|r| r.extensions().get::<NoAnswer>()) {
        Some(NoAnswer(why)) => Err(Error::Custom(why.clone())),
        None => Ok(()),
    }
}

/// The generated client's `exec` hook: sends in the one retry loop, as the operation's
/// call allows, or through the executor of the hooks.
pub async fn exec(
    hooks: &Hooks,
    http: &reqwest::Client,
    request: reqwest::Request,
    info: &OperationInfo,
) -> reqwest::Result<reqwest::Response> {
    let call = call_of(info.operation_id);
    if let Some(executor) = &hooks.executor {
        return Ok(match executor.execute(request, call).await {
            Ok(response) => response,
            // No response to hand on: an empty one carrying why, which `post` turns into
            // the operation's error before anything reads it.
            Err(why) => {
                let mut none = reqwest::Response::from(http::Response::new(Vec::<u8>::new()));
                none.extensions_mut().insert(why);
                none
            }
        });
    }
    // Boxed: the loop's state (and the copy of the request kept for its retries) would
    // otherwise be part of every operation's future, an executor's calls included.
    let retrying = Box::pin(async move {
        let spare = request.try_clone();
        let again = || spare.as_ref().and_then(reqwest::Request::try_clone);
        send_retrying(http, &hooks.retry, call, request, again).await
    });
    retrying.await.map_err(|f| f.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn an_origin_is_scheme_host_and_port_with_hosts_compared_without_case() {
        let base = url("https://Relay.example/v1");
        assert!(same_origin(&url("https://relay.EXAMPLE:443/fal-ai/x"), &base), "default port, host in any case");
        assert!(!same_origin(&url("http://relay.example/fal-ai/x"), &base), "another scheme");
        assert!(!same_origin(&url("https://relay.example:8443/"), &base), "another port");
        assert!(!same_origin(&url("https://queue.fal.run/fal-ai/x"), &base), "another host");
        assert!(!same_origin(&url("https://relay.example.evil/"), &base), "a longer host");
        assert!(!same_origin(&url("data:text/plain,x"), &base), "no host");
        assert!(same_origin(&url("data:text/plain,x"), &url("data:text/plain,y")), "hostless URLs of one scheme");
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_varies() {
        let draws: Vec<f64> = (0..1000).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (-1.0..=1.0).contains(j)), "{draws:?}");
        assert!(draws.iter().any(|j| *j < -0.5) && draws.iter().any(|j| *j > 0.5), "spread over its range");
    }
}
