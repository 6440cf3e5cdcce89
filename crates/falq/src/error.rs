//! The one error type of the crate: every variant carries what is known of the
//! endpoint and the request id, so a paid job is never lost to an error message.

use std::time::Duration;

use crate::retry::Call;

/// One field-level message of a failed job (fal's 422 `detail` list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where, dotted without the leading `body` (`num_images`, `image_size.width`).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The kind (`less_than_equal`, `missing`, ...).
    pub kind: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", if self.field.is_empty() { "input" } else { &self.field }, self.message)
    }
}

fn fields(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn req(request_id: &Option<String>) -> String {
    request_id.as_ref().map(|r| format!(" (request {r})")).unwrap_or_default()
}

/// What a failed submit means for the paid job: whether it may exist on the relay.
fn submit_fate(call: &Call, maybe: bool) -> &'static str {
    match (call, maybe) {
        (Call::Submit, true) => "; the job may have been queued (and paid): check the relay before submitting again",
        (Call::Submit, false) => "; nothing was queued",
        _ => "",
    }
}

/// Whether an HTTP status answered to a submit leaves open that the job was queued:
/// a gateway or server error may come after the relay accepted the work.
fn submit_may_exist(status: u16) -> bool {
    matches!(status, 500 | 502 | 504)
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (base URL, auth scheme, environment).
    #[error("configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The input breaks the endpoint's schema; nothing was sent.
    #[error("{endpoint}: invalid input, nothing was sent: {source}")]
    InvalidInput {
        /// The endpoint id.
        endpoint: String,
        /// Each field at fault, with what is wrong and what is allowed.
        source: falq_api::InputErrors,
    },
    /// An endpoint or request id that cannot be used in a URL.
    #[error("invalid {what} {value:?}: {why}")]
    InvalidId {
        /// `endpoint id` or `request id`.
        what: &'static str,
        /// The id given.
        value: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// The input could not be encoded as JSON; nothing was sent.
    #[error("{endpoint}: cannot encode the input, nothing was sent: {message}")]
    Encode {
        /// The endpoint id.
        endpoint: String,
        /// What serde said.
        message: String,
    },
    /// The job ran and failed: the result call answered an error (fal's 422 with field errors, ...).
    #[error("{endpoint}: the job failed (HTTP {status}){}: {}", req(request_id), if field_errors.is_empty() { message.clone() } else { fields(field_errors) })]
    JobFailed {
        /// The endpoint id.
        endpoint: String,
        /// The request id.
        request_id: Option<String>,
        /// The HTTP status of the result call.
        status: u16,
        /// The server's message.
        message: String,
        /// fal's field-level messages, when the detail is a list.
        field_errors: Vec<FieldError>,
    },
    /// The relay or fal's infrastructure failed (`error_type` such as `runner_scheduling_failure`).
    #[error("{endpoint}: infrastructure error {error_type} (HTTP {status}) from {call}{}: {message}{}", req(request_id), submit_fate(call, submit_may_exist(*status)))]
    Infrastructure {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when the job was accepted.
        request_id: Option<String>,
        /// Which call.
        call: Call,
        /// The HTTP status.
        status: u16,
        /// fal's `error_type` (body or `X-Fal-Error-Type` header).
        error_type: String,
        /// The server's message.
        message: String,
    },
    /// The server answered an HTTP error the protocol does not explain.
    #[error("{endpoint}: HTTP {status} from {call}{}: {message}{}", req(request_id), submit_fate(call, submit_may_exist(*status)))]
    Http {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when known.
        request_id: Option<String>,
        /// Which call.
        call: Call,
        /// The HTTP status.
        status: u16,
        /// The server's message, or the start of its body.
        message: String,
    },
    /// The network failed and the retry policy gave up.
    #[error("{endpoint}: {call} failed after {attempts} attempt(s){}: {message}{}", req(request_id), submit_fate(call, *maybe_submitted))]
    Network {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when known.
        request_id: Option<String>,
        /// Which call.
        call: Call,
        /// Attempts made.
        attempts: u32,
        /// What failed last.
        message: String,
        /// Whether a submit may have reached the server (then it was not retried, and
        /// the job may exist: check the relay before submitting again).
        maybe_submitted: bool,
    },
    /// The run's deadline passed.
    #[error("{endpoint}: no result within {after:?} (request {request_id}); {}", if *cancelled { "the job was cancelled" } else if *completed { "the job completed but its outputs were not all saved: fetch them with its request id (`falq resume`) before they expire" } else { "the job was left running: resume it with its request id" })]
    Timeout {
        /// The endpoint id.
        endpoint: String,
        /// The request id, to resume or inspect the job.
        request_id: String,
        /// The deadline.
        after: Duration,
        /// Whether the remote job was cancelled.
        cancelled: bool,
        /// Whether the job had completed (the deadline passed while fetching or saving its outputs).
        completed: bool,
    },
    /// An answer that is not what the protocol says (bad JSON, a missing field).
    #[error("{endpoint}: unexpected answer to {call}{}: {message}{}", req(request_id), submit_fate(call, true))]
    Protocol {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when known.
        request_id: Option<String>,
        /// Which call.
        call: Call,
        /// What was wrong.
        message: String,
    },
    /// The server redirected a call to another origin; the key is never sent there, so the call stopped.
    #[error("{endpoint}: {call} was redirected to another origin ({location}); not followed, so the key stays on the base URL")]
    ForeignRedirect {
        /// The endpoint id.
        endpoint: String,
        /// Which call.
        call: Call,
        /// Where the redirect pointed.
        location: String,
    },
    /// The relay no longer has the job (HTTP 404 on its status or result): its result
    /// expired, or it never existed there.
    #[error(
        "{endpoint}: the relay no longer has request {request_id} (HTTP 404 from {call}): its result expired or it never existed there"
    )]
    Expired {
        /// The endpoint id.
        endpoint: String,
        /// The request id.
        request_id: String,
        /// Which call answered 404.
        call: Call,
    },
    /// The relay said the job COMPLETED, but its result still answered "not ready" after
    /// the retry policy's attempts (a relay proxying a stale status, a result not
    /// replicated yet). The job was not cancelled; it stays pending.
    #[error(
        "{endpoint}: the relay says request {request_id} COMPLETED, but its result answered {answer} {attempts} times: the job stays pending (not cancelled); `falq resume` fetches it later"
    )]
    ResultWithheld {
        /// The endpoint id.
        endpoint: String,
        /// The request id.
        request_id: String,
        /// What the result call answered last (`HTTP 202 IN_PROGRESS`).
        answer: String,
        /// How many times it was asked.
        attempts: u32,
    },
    /// The result was asked for before the job completed.
    #[error("{endpoint}: request {request_id} has no result yet ({status}): wait for it, or `falq resume`")]
    NotReady {
        /// The endpoint id.
        endpoint: String,
        /// The request id.
        request_id: String,
        /// The state the relay reported (`IN_PROGRESS`, or the HTTP status).
        status: String,
    },
    /// Reading a local file or saving an output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The job completed, but its outputs could not all be saved (a download or a write
    /// failed): the job is paid for and its outputs wait on the relay until they expire.
    #[error(
        "{endpoint}: request {request_id} completed, but its outputs were not all saved: {source}; fetch them again with its request id (`falq resume`, `falq result`) before they expire"
    )]
    NotSaved {
        /// The endpoint id.
        endpoint: String,
        /// The request id, to fetch the outputs again.
        request_id: String,
        /// What failed: a [`Error::Download`] or an [`Error::Io`].
        source: Box<Error>,
    },
    /// Downloading an output failed.
    #[error("download of {url} failed: {message}")]
    Download {
        /// The media URL.
        url: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// The request id the error concerns, when a job was accepted.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::JobFailed { request_id, .. }
            | Self::Infrastructure { request_id, .. }
            | Self::Http { request_id, .. }
            | Self::Network { request_id, .. }
            | Self::Protocol { request_id, .. } => request_id.as_deref(),
            Self::Timeout { request_id, .. }
            | Self::Expired { request_id, .. }
            | Self::NotReady { request_id, .. }
            | Self::NotSaved { request_id, .. }
            | Self::ResultWithheld { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// Whether a failed submit may nevertheless have queued the job (it was sent and no
    /// clear refusal came back): then submitting again may pay twice.
    pub fn maybe_submitted(&self) -> bool {
        match self {
            Self::Network { call: Call::Submit, maybe_submitted, .. } => *maybe_submitted,
            Self::Http { call: Call::Submit, status, .. } | Self::Infrastructure { call: Call::Submit, status, .. } => {
                submit_may_exist(*status)
            }
            Self::Protocol { call: Call::Submit, .. } => true,
            _ => false,
        }
    }
}
