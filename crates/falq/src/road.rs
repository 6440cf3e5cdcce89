//! The one road of every call to a relay's API: a generated operation of `falq-api` builds
//! the request (path, method, query, headers, body, and its `api-version` mark), and the
//! client's transport sends it (the in-flight cap, the retry policy, the reading of the
//! answer). One generated client per [`crate::Client`], built once; what a call needs
//! besides its request (who it is for, the local files its body names, where its answer
//! goes) rides with it in a task-local [`Scope`].
//!
//! The only calls off this road: an endpoint without a page (run untyped, no operation
//! exists for it) and an input its endpoint's type cannot hold as it is (a field the struct
//! has no place for); both go through the same transport.

use std::sync::{Arc, Mutex};

use falq_api::Endpoint;
use falq_api::types::{FalError, QueueStatus};
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::error::Error;
use crate::files::LocalFile;
use crate::http::{Answer, CallCtx, Outgoing, Transport};
use crate::options::SubmitParameters;
use crate::retry::Call;

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// What a call carries besides its request.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    /// The endpoint id, for errors.
    pub endpoint: String,
    /// The request id, once known, for errors.
    pub request_id: Option<String>,
    /// Local files whose placeholders the body holds: spliced in as `data:` URLs as it is sent.
    pub files: Vec<LocalFile>,
    /// The answer the transport read (or why none came), for the caller.
    kept: Mutex<Option<Result<Answer, Error>>>,
}

impl Scope {
    pub(crate) fn new(endpoint: &str, request_id: Option<&str>) -> Scope {
        Scope { endpoint: endpoint.to_string(), request_id: request_id.map(str::to_string), ..Scope::default() }
    }

    fn keep(&self, answer: Result<Answer, Error>) {
        if let Ok(mut slot) = self.kept.lock() {
            *slot = Some(answer);
        }
    }

    fn take(&self) -> Option<Result<Answer, Error>> {
        self.kept.lock().ok().and_then(|mut a| a.take())
    }
}

/// Runs a generated operation's `send` within `scope`: answers what the operation returned
/// and what the transport kept (`None`: the operation refused the request before sending).
/// Neither an `async fn` nor an `async` block: either would hold the operation's future
/// twice, as what it was given and as what it awaits (3 KB each for a queue call), and
/// every caller's state with it.
pub(crate) fn run<T>(scope: Scope, op: impl Future<Output = T>) -> impl Future<Output = (T, Option<Result<Answer, Error>>)> {
    use futures_util::FutureExt;
    let scope = Arc::new(scope);
    SCOPE.scope(scope.clone(), op).map(move |out| (out, scope.take()))
}

/// The executor of the generated client: the client's transport.
#[derive(Debug)]
pub(crate) struct Road {
    transport: Arc<Transport>,
}

impl Road {
    /// The generated client at `base` whose every call goes through `transport`. Inputs
    /// are checked once, by the caller, before the operation is built.
    pub(crate) fn client(transport: &Arc<Transport>, base: &str) -> falq_api::Client {
        let road = Arc::new(Road { transport: transport.clone() });
        let hooks = falq_api::Hooks::default().inputs_checked().with_executor(road);
        falq_api::client_for(base, transport.api_http().clone(), hooks)
    }
}

impl falq_api::Executor for Road {
    fn execute(&self, mut request: reqwest::Request, call: Call) -> BoxFuture<'_, Result<reqwest::Response, falq_api::NoAnswer>> {
        Box::pin(async move {
            let Ok(scope) = SCOPE.try_with(Arc::clone) else {
                return Err(falq_api::NoAnswer("a falq operation was sent outside its call".into()));
            };
            let ctx = CallCtx { endpoint: &scope.endpoint, request_id: scope.request_id.as_deref() };
            if !scope.files.is_empty() {
                let text = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default();
                match crate::files::splice_files(text, &scope.files) {
                    Ok(body) => *request.body_mut() = Some(body.into()),
                    Err(e) => {
                        let why = falq_api::NoAnswer(e.to_string());
                        scope.keep(Err(e));
                        return Err(why);
                    }
                }
            }
            let again = || request.try_clone().ok_or_else(|| "its body cannot be copied".to_string());
            if call == Call::Stream {
                // A stream is read by the caller, event by event, and takes no slot.
                return match self.transport.open(call, Outgoing::Built(&again), &ctx).await {
                    Ok(response) => Ok(response),
                    Err(e) => {
                        let why = falq_api::NoAnswer(e.to_string());
                        scope.keep(Err(e));
                        Err(why)
                    }
                };
            }
            // In the slot the caller took.
            let answer = self.transport.exchange(call, Outgoing::Built(&again), &ctx).await;
            let response = match &answer {
                // What the operation decodes: the status and the body. The headers stay in the
                // kept answer, where its caller reads them, and are not copied (the operation's
                // value has none).
                Ok(a) => {
                    use reqwest::ResponseBuilderExt;
                    // The request's URL, so that reqwest does not parse a stand-in one.
                    let mut response = http::Response::builder().url(request.url().clone()).body(a.body.clone()).unwrap_or_default();
                    *response.status_mut() = http::StatusCode::from_u16(a.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
                    Ok(reqwest::Response::from(response))
                }
                Err(e) => Err(falq_api::NoAnswer(e.to_string())),
            };
            scope.keep(answer);
            response
        })
    }
}

/// An input to submit: typed, or JSON checked against its endpoint's schema already.
pub(crate) enum Input<'a> {
    Typed(&'a (dyn std::any::Any + Send + Sync)),
    Json(&'a Value),
}

/// What a submit operation answers.
pub(crate) type Submitted = Result<progenitor_client::ResponseValue<QueueStatus>, progenitor_client::Error<FalError>>;

/// Whether `typed` (an input read into its endpoint's type and written back) says what
/// `json` says: the same fields (a `null` is an unset field), numbers equal as numbers.
fn same_input(typed: &Value, json: &Value) -> bool {
    match (typed, json) {
        (Value::Object(a), Value::Object(b)) => {
            let set = |m: &serde_json::Map<String, Value>| m.iter().filter(|(_, v)| !v.is_null()).count();
            set(a) == set(b) && b.iter().filter(|(_, v)| !v.is_null()).all(|(k, v)| a.get(k).is_some_and(|t| same_input(t, v)))
        }
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(t, v)| same_input(t, v)),
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        _ => typed == json,
    }
}

/// `json` as `T`, when `T` holds it as it is.
pub(crate) fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(json: &Value) -> Option<T> {
    let t: T = serde_json::from_value(json.clone()).ok()?;
    let back = serde_json::to_value(&t).ok()?;
    same_input(&back, json).then_some(t)
}

/// An input made ready for its endpoint's submit operation ([`prepare`]): the caller's typed
/// input, or JSON read into the endpoint's type. Kept while the submit waits for its
/// in-flight slot; the operation itself is built only once the slot is taken.
pub(crate) enum Prepared<'a> {
    Typed(&'a (dyn std::any::Any + Send + Sync)),
    Owned(Box<dyn std::any::Any + Send + Sync>),
}

impl Prepared<'_> {
    fn get(&self) -> &(dyn std::any::Any + Send + Sync) {
        match self {
            Prepared::Typed(any) => *any,
            Prepared::Owned(boxed) => boxed.as_ref(),
        }
    }
}

/// The generated submit operations, one arm per endpoint, from the catalogue's
/// `for_each_endpoint!`, so a new page needs no edit here:
/// - [`prepare`]: `input` made ready for the operation `operation_id`; `None` when no
///   endpoint of the catalogue has that operation, or the input is not of its type
///   (typed) or not held by it as it is (JSON);
/// - [`submit`]: starts sending a prepared input through the operation, with `params`.
macro_rules! submit_operations {
    ($($marker:ident => $method:ident),* $(,)?) => {
        pub(crate) fn prepare<'a>(operation_id: &str, input: Input<'a>) -> Option<Prepared<'a>> {
            $(
                if operation_id == stringify!($method) {
                    type In = <falq_api::endpoints::$marker as Endpoint>::Input;
                    return match input {
                        Input::Typed(any) => any.is::<In>().then_some(Prepared::Typed(any)),
                        Input::Json(json) => typed::<In>(json).map(|t| Prepared::Owned(Box::new(t))),
                    };
                }
            )*
            None
        }

        pub(crate) fn submit<'a>(
            api: &'a falq_api::Client,
            operation_id: &str,
            input: &Prepared<'_>,
            params: &SubmitParameters,
        ) -> Option<BoxFuture<'a, Submitted>> {
            $(
                if operation_id == stringify!($method) {
                    type In = <falq_api::endpoints::$marker as Endpoint>::Input;
                    let input: In = input.get().downcast_ref::<In>()?.clone();
                    let mut op = api.$method().body(input);
                    if let Some(v) = &params.webhook {
                        op = op.fal_webhook(v.clone());
                    }
                    if let Some(v) = params.priority {
                        op = op.x_fal_queue_priority(v.to_string());
                    }
                    if let Some(v) = params.request_timeout {
                        op = op.x_fal_request_timeout(v);
                    }
                    if let Some(v) = &params.runner_hint {
                        op = op.x_fal_runner_hint(v.clone());
                    }
                    if let Some(v) = &params.lifecycle {
                        op = op.x_fal_object_lifecycle_preference(v.clone());
                    }
                    return Some(Box::pin(op.send()));
                }
            )*
            None
        }
    };
}
falq_api::for_each_endpoint!(submit_operations);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A call's state is boxed and copied per call: the scope around an operation must not
    /// hold the operation's future twice (an `async` wrapper keeps what it was handed and
    /// what it awaits).
    #[test]
    fn running_an_operation_in_its_scope_holds_it_once() {
        let op = async {
            let held = [1u8; 4096];
            std::future::ready(()).await;
            held.iter().map(|b| usize::from(*b)).sum::<usize>()
        };
        let alone = std::mem::size_of_val(&op);
        assert!(alone >= 4096, "the operation holds its 4 KB across the await: {alone}");
        let scoped = run(Scope::default(), op);
        let size = std::mem::size_of_val(&scoped);
        assert!(size < alone + 256, "{size} bytes around an operation of {alone}");
    }

    #[test]
    fn an_input_is_held_by_its_type_only_as_it_is() {
        let t = json!({"prompt": "p", "n": 2.0, "size": {"w": 1}});
        assert!(same_input(&t, &json!({"prompt": "p", "n": 2, "size": {"w": 1}, "seed": null})), "2 is 2.0; null is unset");
        assert!(!same_input(&t, &json!({"prompt": "p", "n": 2, "size": {"w": 1}, "num-images": 3})), "a field with no place");
        assert!(!same_input(&t, &json!({"prompt": "p", "n": 3, "size": {"w": 1}})));
        assert!(!same_input(&t, &json!({"prompt": "p", "n": 2, "size": {"w": 1, "h": 2}})), "nested too");
        assert!(!same_input(&json!([1, 2]), &json!([1])));
    }
}
