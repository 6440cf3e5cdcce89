//! The one error type of the crate: every variant carries what is known of the
//! endpoint and the request id, so a paid job is never lost to an error message.

use std::time::Duration;

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

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (base URL, auth scheme, environment).
    #[error("configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The input breaks a bound of the spec; nothing was sent.
    #[error("{endpoint}: invalid input, nothing was sent: {source}")]
    InvalidInput {
        /// The endpoint id.
        endpoint: String,
        /// The field, value and allowed range.
        source: falq_api::BoundError,
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
    #[error("{endpoint}: infrastructure error {error_type} (HTTP {status}){}: {message}", req(request_id))]
    Infrastructure {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when the job was accepted.
        request_id: Option<String>,
        /// The HTTP status.
        status: u16,
        /// fal's `error_type` (body or `X-Fal-Error-Type` header).
        error_type: String,
        /// The server's message.
        message: String,
    },
    /// The server answered an HTTP error the protocol does not explain.
    #[error("{endpoint}: HTTP {status} from {call}{}: {message}", req(request_id))]
    Http {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when known.
        request_id: Option<String>,
        /// Which call (`submit`, `status`, `result`, `cancel`).
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's message, or the start of its body.
        message: String,
    },
    /// The network failed and the retry policy gave up.
    #[error("{endpoint}: {call} failed after {attempts} attempt(s){}: {message}", req(request_id))]
    Network {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when known.
        request_id: Option<String>,
        /// Which call.
        call: &'static str,
        /// Attempts made.
        attempts: u32,
        /// What failed last.
        message: String,
        /// Whether a submit may have reached the server (then it was not retried, and
        /// the job may exist: check the relay before submitting again).
        maybe_submitted: bool,
    },
    /// The run's deadline passed.
    #[error("{endpoint}: no result within {after:?} (request {request_id}); {}", if *cancelled { "the job was cancelled" } else { "the job was left running: resume it with its request id" })]
    Timeout {
        /// The endpoint id.
        endpoint: String,
        /// The request id, to resume or inspect the job.
        request_id: String,
        /// The deadline.
        after: Duration,
        /// Whether the remote job was cancelled.
        cancelled: bool,
    },
    /// An answer that is not what the protocol says (bad JSON, a missing field).
    #[error("{endpoint}: unexpected answer to {call}{}: {message}", req(request_id))]
    Protocol {
        /// The endpoint id.
        endpoint: String,
        /// The request id, when known.
        request_id: Option<String>,
        /// Which call.
        call: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The server redirected a call to another origin; the key is never sent there, so the call stopped.
    #[error("{endpoint}: {call} was redirected to another origin ({location}); not followed, so the key stays on the base URL")]
    ForeignRedirect {
        /// The endpoint id.
        endpoint: String,
        /// Which call.
        call: &'static str,
        /// Where the redirect pointed.
        location: String,
    },
    /// Reading a local file or saving an output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
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
            Self::Timeout { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}
