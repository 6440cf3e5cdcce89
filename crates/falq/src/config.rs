//! Configuration: base URL, key, auth scheme, timeouts, wait and retry policies.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::error::Error;

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; surrounding white space (a newline from a key file) is removed.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_string())
    }

    /// The key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the key is sent: `Authorization: Bearer <key>` (relays) or `Authorization: Key <key>` (fal.ai).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`, what relays expect.
    Bearer,
    /// `Authorization: Key <key>`, what fal.ai itself expects.
    Key,
}

impl AuthScheme {
    /// The scheme a host expects: `Key` for fal's own hosts (`fal.run`, `fal.ai` and their
    /// subdomains), `Bearer` for every relay.
    pub fn for_host(host: &str) -> Self {
        let host = host.to_ascii_lowercase();
        let fal = ["fal.run", "fal.ai"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")));
        if fal { Self::Key } else { Self::Bearer }
    }

    /// The header value for a key.
    pub fn header_value(&self, key: &ApiKey) -> String {
        match self {
            Self::Bearer => format!("Bearer {}", key.expose()),
            Self::Key => format!("Key {}", key.expose()),
        }
    }
}

impl std::str::FromStr for AuthScheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bearer" => Ok(Self::Bearer),
            "key" => Ok(Self::Key),
            other => Err(Error::Config { message: format!("unknown auth scheme {other:?}: use Bearer (relays) or Key (fal.ai)") }),
        }
    }
}

/// Per-call time limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeouts {
    /// Time to connect to the server.
    pub connect: Duration,
    /// Time for one call (submit, status, result, cancel) to answer, and for a status
    /// stream's answer to begin (a relay that takes it and says nothing is polled instead);
    /// a stream's and a download's bodies have none, only the overall deadline and the
    /// idle limits below.
    pub request: Duration,
    /// Longest silence on a status stream (servers send a keep-alive comment every
    /// ~15 s): past it the stream is dropped and the job polled (a half-open connection).
    pub stream_idle: Duration,
    /// Longest a status stream may go without a status event (keep-alives only) before
    /// the job's status is asked for: COMPLETED ends the wait, another state than the
    /// stream's last leaves the stream for polling, the same keeps it.
    pub stream_quiet: Duration,
    /// Longest wait for the next bytes of a download (a stalled media server).
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            stream_idle: Duration::from_secs(45),
            stream_quiet: Duration::from_secs(60),
            read: Duration::from_secs(60),
        }
    }
}

/// How to wait for a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Poll the status URL with an adaptive interval.
    Poll,
    /// Follow `/status/stream` (server-sent events), polling when the relay has no stream.
    Stream,
}

pub use crate::poll::PollPolicy;

/// What to do while and after waiting.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitPolicy {
    /// Poll or stream.
    pub mode: WaitMode,
    /// The poll intervals (also used after a stream falls back).
    pub poll: PollPolicy,
    /// The overall deadline of a run, from submit to output; `None` waits forever.
    pub deadline: Option<Duration>,
    /// Whether a run that hits its deadline cancels the remote job.
    pub cancel_on_timeout: CancelOnTimeout,
    /// Whether status calls ask for log lines.
    pub logs: Logs,
}

/// Whether a timed-out run cancels the remote job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOnTimeout {
    /// Cancel it (the default: nobody waits for it any more).
    Cancel,
    /// Leave it running; its request id is in the error, to resume later.
    Leave,
}

/// Whether status calls ask for the run's log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logs {
    /// Ask (`?logs=1`).
    Include,
    /// Don't.
    Omit,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            mode: WaitMode::Stream,
            poll: PollPolicy::default(),
            deadline: Some(Duration::from_secs(600)),
            cancel_on_timeout: CancelOnTimeout::Cancel,
            logs: Logs::Include,
        }
    }
}

pub use falq_api::retry::RetryPolicy;

/// Which HTTP the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2 where TLS negotiates it (ALPN), HTTP/1.1 otherwise.
    Negotiate,
    /// HTTP/2 from the first byte, also over plain `http://` (h2c): every call and status
    /// stream shares one connection. For servers known to speak it, such as `falq sim`.
    Http2PriorKnowledge,
}

/// Connection limits.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpPolicy {
    /// Which HTTP to speak.
    pub version: HttpVersion,
    /// Submit, status, result and cancel calls in flight at once, across all jobs of a
    /// client; more wait their turn. Bounds the connections (and memory) of HTTP/1.1 and
    /// spares the server a connection storm. Status streams are not counted here; they
    /// share `max_connections` with the calls.
    pub max_in_flight: usize,
    /// The largest JSON answer read (a result with `sync_mode` data URIs is the
    /// largest expected); a larger one is an error, not an out-of-memory.
    pub max_body: usize,
    /// The longest line of a status stream.
    pub max_sse_line: usize,
    /// Output files downloaded at once per result (each one an open file and connection).
    pub max_downloads: usize,
    /// The largest output file saved (a video of a few minutes fits); a longer body is
    /// stopped and refused, as is one longer than its announced size.
    pub max_download_bytes: u64,
    /// The most `max_in_flight` may grow to while every slot is taken and the relay
    /// neither pushes back nor suddenly slows down (it halves on 429 or 503, and never
    /// falls below a quarter of `max_in_flight`).
    pub max_in_flight_ceiling: usize,
    /// Calls in flight and open status streams together: the in-flight cap does not
    /// grow into what open streams hold. `None`: 288 over HTTP/1.1, where each is a
    /// connection (256 streams and the 32 calls `max_in_flight` starts at, or 256 calls
    /// when nothing streams; 10,000 jobs fit in 64 MB), and 100 over HTTP/2, the concurrent
    /// streams RFC 9113 recommends a server allow at the least (64 streams leave 36 calls).
    pub max_connections: Option<usize>,
    /// Status streams open at once; jobs beyond are polled (woken by their siblings'
    /// completions) and take a stream as one frees up. `None`: 256 over HTTP/1.1, where
    /// each stream is a connection of its own (about 25 KB of client memory each), and 64
    /// over HTTP/2, where streams and calls share the relay's concurrent streams on its
    /// one connection (servers allow 100 or more, as RFC 9113 recommends; a client may not
    /// open a second connection to get more, and a call past the allowance waits).
    pub max_streams: Option<usize>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            version: HttpVersion::Negotiate,
            max_in_flight: 32,
            max_body: 32 << 20,
            max_sse_line: 1 << 20,
            max_downloads: 4,
            max_download_bytes: 4 << 30,
            max_in_flight_ceiling: 256,
            max_streams: None,
            max_connections: None,
        }
    }
}

impl HttpPolicy {
    /// Calls and streams together (see `max_connections`), over HTTP/2 (`h2`) or not.
    pub fn connections(&self, h2: bool) -> usize {
        self.max_connections.unwrap_or(if h2 { 100 } else { 288 }).max(1)
    }

    /// The status streams a client opens at once (see `max_streams`), over HTTP/2 or not.
    pub fn streams(&self, h2: bool) -> usize {
        self.max_streams.unwrap_or(if h2 { 64 } else { 256 }).max(1)
    }
}

/// Everything a [`crate::Client`] needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The base URL, possibly with a path prefix (`https://relay.example/api`), no trailing `/`.
    pub base_url: Url,
    /// The key, sent only to the base URL's origin.
    pub key: Option<ApiKey>,
    /// How the key is sent.
    pub auth_scheme: AuthScheme,
    /// Per-call time limits.
    pub timeouts: Timeouts,
    /// How to wait.
    pub wait: WaitPolicy,
    /// How to retry.
    pub retry: RetryPolicy,
    /// HTTP version and connection limits.
    pub http: HttpPolicy,
}

impl Config {
    /// A configuration for `base_url` with the auth scheme its host expects and default policies.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let base_url = parse_base_url(base_url)?;
        let auth_scheme = AuthScheme::for_host(base_url.host_str().unwrap_or(""));
        Ok(Self {
            base_url,
            key: None,
            auth_scheme,
            timeouts: Timeouts::default(),
            wait: WaitPolicy::default(),
            retry: RetryPolicy::default(),
            http: HttpPolicy::default(),
        })
    }

    /// Sets the key.
    pub fn with_key(mut self, key: ApiKey) -> Self {
        self.key = Some(key);
        self
    }

    /// From `FAL_BASE_URL` (required), `FAL_KEY` and `FAL_AUTH_SCHEME` (`Bearer` or `Key`).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let base = var("FAL_BASE_URL").filter(|s| !s.trim().is_empty()).ok_or_else(|| Error::Config {
            message:
                "FAL_BASE_URL is not set: set it to your relay's base URL (e.g. https://relay.example), or https://queue.fal.run for fal.ai"
                    .into(),
        })?;
        let mut config = Self::new(&base)?;
        config.key = var("FAL_KEY").filter(|k| !k.trim().is_empty()).map(ApiKey::new);
        if let Some(scheme) = var("FAL_AUTH_SCHEME").filter(|s| !s.trim().is_empty()) {
            config.auth_scheme = scheme.parse()?;
        }
        Ok(config)
    }
}

/// Parses and normalizes a base URL: http or https, a host, no query or fragment,
/// no trailing `/`.
pub fn parse_base_url(text: &str) -> Result<Url, Error> {
    let bad = |why: &str| Error::Config { message: format!("base URL {text:?} {why}") };
    let mut url = Url::parse(text.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials; set FAL_KEY instead"));
    }
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_scheme_from_host() {
        for (host, scheme) in [
            ("queue.fal.run", AuthScheme::Key),
            ("fal.run", AuthScheme::Key),
            ("api.fal.ai", AuthScheme::Key),
            ("relay.example", AuthScheme::Bearer),
            ("notfal.run", AuthScheme::Bearer),
            ("127.0.0.1", AuthScheme::Bearer),
        ] {
            assert_eq!(AuthScheme::for_host(host), scheme, "{host}");
        }
    }

    #[test]
    fn base_urls_are_normalized_or_refused() {
        assert_eq!(parse_base_url("https://relay.example/api/").unwrap().as_str(), "https://relay.example/api");
        assert_eq!(parse_base_url("http://127.0.0.1:8080").unwrap().as_str(), "http://127.0.0.1:8080/");
        for (bad, why) in [
            ("ftp://x", "http"),
            ("relay.example", "not a URL"),
            ("https://r.example/?a=1", "query"),
            ("https://u:p@r.example", "credentials"),
        ] {
            let e = parse_base_url(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn from_vars_reads_the_three_variables() {
        let c = Config::from_vars(|n| match n {
            "FAL_BASE_URL" => Some("https://relay.example/v1".into()),
            "FAL_KEY" => Some("sk-secret\n".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.auth_scheme, AuthScheme::Bearer);
        assert_eq!(c.key.as_ref().map(ApiKey::expose), Some("sk-secret"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-secret"), "the key leaked into Debug: {shown}");
        let c = Config::from_vars(|n| match n {
            "FAL_BASE_URL" => Some("https://queue.fal.run".into()),
            "FAL_AUTH_SCHEME" => Some("bearer".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.auth_scheme, AuthScheme::Bearer, "overridable");
        let e = Config::from_vars(|_| None).unwrap_err().to_string();
        assert!(e.contains("FAL_BASE_URL is not set"), "{e}");
        let e = Config::from_vars(|n| {
            (n == "FAL_BASE_URL").then(|| "https://r.example".into()).or((n == "FAL_AUTH_SCHEME").then(|| "basic".into()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("unknown auth scheme"), "{e}");
    }
}
