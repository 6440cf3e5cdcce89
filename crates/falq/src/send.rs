//! Sending one API request: straight through hyper's pooled client, or through reqwest's
//! when a proxy stands between falq and the relay.
//!
//! reqwest builds every request (the generated operations are built on its client) and
//! wraps every response (they read its `Response`); between the two, its `execute` adds
//! layers falq does not use: a redirect layer that parses each request's URL again (and
//! each response's), a retry layer, a proxy match per request, a copy of the headers. Those
//! were a fifth of a job's instructions. The direct sender keeps what falq relies on:
//! pooled keep-alive connections (HTTP/1.1, HTTP/2 by ALPN or prior knowledge), TLS with
//! the platform's verifier, the connect timeout, TCP keep-alive as reqwest sets it, its
//! `User-Agent` and `Accept`, and redirects followed within the base's origin only (at
//! most [`MAX_REDIRECTS`]); the transport puts the time limit around the whole attempt.
//! A proxy set in the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus
//! `NO_PROXY`) that covers the base URL sends everything through reqwest, which speaks to
//! proxies.

use std::time::Duration;

use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::header::{ACCEPT, HOST, HeaderValue, LOCATION, USER_AGENT};
use reqwest::{Method, StatusCode, Url};

use crate::config::{Config, HttpVersion};
use crate::rewrite::same_origin;

/// Redirects followed within the base's origin, at most.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// How long an idle connection stays in the pool (reqwest's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// TCP keep-alive, as reqwest sets it: a dead peer under an idle or silent connection is
/// found in about a minute, not the system's two hours.
const KEEPALIVE: Duration = Duration::from_secs(15);

#[cfg(feature = "rustls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "rustls"))]
type Connector = HttpConnector;

/// The TLS configuration a client is built with ([`tls`]); nothing without TLS.
#[cfg(feature = "rustls")]
pub(crate) type Tls = rustls::ClientConfig;
#[cfg(not(feature = "rustls"))]
pub(crate) type Tls = ();

/// Who sends a client's API requests.
#[derive(Clone, Debug)]
pub(crate) enum Sender {
    /// hyper's pooled client, for a base no proxy covers.
    Direct(Box<Direct>),
    /// reqwest's client (the one requests are built on), for a base behind a proxy.
    Proxied(reqwest::Client),
}

/// hyper's pooled client and the headers every request carries.
#[derive(Clone, Debug)]
pub(crate) struct Direct {
    pool: Pool<Connector, reqwest::Body>,
    user_agent: HeaderValue,
    base: Url,
    /// The `Host` of every request, when every connection speaks HTTP/1.1 (a plain-HTTP
    /// base without prior knowledge of HTTP/2): written once here rather than by hyper's
    /// pool for each request. Every request goes to the base's origin (the transport
    /// refuses any other, and redirects are followed within it), so it has this `Host`.
    /// Over TLS, where ALPN may choose HTTP/2 (which names the host otherwise), the pool
    /// writes it.
    host: Option<HeaderValue>,
}

/// Why a request has no answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// From hyper's client.
    Hyper(hyper_util::client::legacy::Error),
    /// From reqwest's client.
    Reqwest(reqwest::Error),
    /// No answer within the call's time limit.
    TimedOut(Duration),
    /// The request cannot be sent as it is (a URL hyper cannot take).
    Unsendable(String),
}

impl SendError {
    /// Whether the request cannot have reached the relay (no connection was made).
    pub(crate) fn is_connect(&self) -> bool {
        match self {
            SendError::Hyper(e) => e.is_connect(),
            SendError::Reqwest(e) => e.is_connect(),
            SendError::TimedOut(_) => false,
            SendError::Unsendable(_) => true,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Hyper(e) => f.write_str(&crate::http::error_chain(e)),
            SendError::Reqwest(e) => f.write_str(&crate::http::error_chain(e)),
            SendError::TimedOut(limit) => write!(f, "no answer within {limit:?} (Timeouts::request)"),
            SendError::Unsendable(why) => f.write_str(why),
        }
    }
}

impl Sender {
    /// The sender of API requests to `config`'s base; `api` is the client requests are
    /// built on, `tls` the API's TLS configuration.
    pub(crate) fn new(config: &Config, api: &reqwest::Client, tls: Tls) -> Result<Sender, String> {
        if behind_proxy(&config.base_url) {
            return Ok(Sender::Proxied(api.clone()));
        }
        Ok(Sender::Direct(Box::new(Direct::new(config, tls)?)))
    }

    /// Sends `request`, following redirects within the base's origin (a redirect off it is
    /// answered as it is, for the transport to refuse); `again` makes the request afresh,
    /// to send it again where a redirect leads.
    pub(crate) async fn send(
        &self,
        request: reqwest::Request,
        again: &(dyn Fn() -> Option<reqwest::Request> + Sync),
    ) -> Result<reqwest::Response, SendError> {
        match self {
            Sender::Direct(direct) => direct.send(request, again).await,
            Sender::Proxied(client) => client.execute(request).await.map_err(SendError::Reqwest),
        }
    }
}

/// Whether the environment's proxy settings cover `base`.
fn behind_proxy(base: &Url) -> bool {
    let Ok(uri) = base.as_str().parse::<http::Uri>() else { return false };
    hyper_util::client::proxy::matcher::Matcher::from_system().intercept(&uri).is_some()
}

impl Direct {
    fn new(config: &Config, tls: Tls) -> Result<Direct, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeouts.connect));
        http.set_keepalive(Some(KEEPALIVE));
        http.set_keepalive_interval(Some(KEEPALIVE));
        http.set_keepalive_retries(Some(3));
        let mut pool = Pool::builder(TokioExecutor::new());
        pool.pool_timer(TokioTimer::new()).timer(TokioTimer::new()).pool_idle_timeout(POOL_IDLE);
        if config.http.version == HttpVersion::Http2PriorKnowledge {
            pool.http2_only(true);
        }
        let user_agent = HeaderValue::from_static(concat!("falq/", env!("CARGO_PKG_VERSION")));
        let base = &config.base_url;
        let host = (base.scheme() == "http" && config.http.version != HttpVersion::Http2PriorKnowledge)
            .then(|| base.host_str().map(|h| base.port().map_or_else(|| h.to_string(), |p| format!("{h}:{p}"))))
            .flatten()
            .and_then(|h| HeaderValue::from_str(&h).ok());
        Ok(Direct { pool: pool.build(connector(http, config, tls)?), user_agent, base: base.clone(), host })
    }

    async fn send(
        &self,
        mut request: reqwest::Request,
        remake: &(dyn Fn() -> Option<reqwest::Request> + Sync),
    ) -> Result<reqwest::Response, SendError> {
        // Where each hop goes, and whether an earlier hop turned the request into a GET.
        let mut hops = 0;
        let mut as_get = false;
        loop {
            let post = request.method() == Method::POST;
            let response = self.send_one(request).await?;
            let Some(location) = redirect_target(&response, &self.base).filter(|_| hops < MAX_REDIRECTS) else {
                return Ok(response);
            };
            let Some(mut again) = remake() else { return Ok(response) };
            // As browsers and reqwest do: a 303, and a 301 or 302 of a POST, ask again with a
            // GET and no body; a 307 or 308 asks the same again.
            let status = response.status();
            as_get |= status == StatusCode::SEE_OTHER || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND) && post);
            if as_get {
                *again.method_mut() = Method::GET;
                *again.body_mut() = None;
                again.headers_mut().remove(reqwest::header::CONTENT_TYPE);
                again.headers_mut().remove(reqwest::header::CONTENT_LENGTH);
            }
            *again.url_mut() = location;
            request = again;
            hops += 1;
        }
    }

    /// One request, its answer as reqwest's `Response` (its URL the request's).
    async fn send_one(&self, request: reqwest::Request) -> Result<reqwest::Response, SendError> {
        let url = request.url().clone();
        let mut request: http::Request<reqwest::Body> =
            request.try_into().map_err(|e: reqwest::Error| SendError::Unsendable(crate::http::error_chain(&e)))?;
        let headers = request.headers_mut();
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.user_agent.clone());
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        if let Some(host) = &self.host {
            headers.entry(HOST).or_insert_with(|| host.clone());
        }
        let (parts, body) = self.pool.request(request).await.map_err(SendError::Hyper)?.into_parts();
        use reqwest::ResponseBuilderExt;
        let mut response =
            http::Response::builder().url(url).body(reqwest::Body::wrap(body)).map_err(|e| SendError::Unsendable(e.to_string()))?;
        *response.status_mut() = parts.status;
        *response.version_mut() = parts.version;
        *response.headers_mut() = parts.headers;
        Ok(reqwest::Response::from(response))
    }
}

/// Where a redirect of `response` leads, if it is one falq follows: a `Location` within
/// the base's origin.
fn redirect_target(response: &reqwest::Response, base: &Url) -> Option<Url> {
    if !matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        return None;
    }
    location_within(response, base)
}

/// The `Location` of `response` (read against the URL it answers), if it is within the
/// base's origin.
pub(crate) fn location_within(response: &reqwest::Response, base: &Url) -> Option<Url> {
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let target = response.url().join(location).ok()?;
    same_origin(&target, base).then_some(target)
}

/// The TLS configuration of falq's clients: ring's cryptography, and the platform's
/// verifier with its authorities (`SSL_CERT_FILE` adds one on Linux) or, for a client that
/// never speaks TLS (the API client of a plain-HTTP base), no authority at all, so no root
/// store is read from disk. ALPN offers HTTP/2, then HTTP/1.1.
#[cfg(feature = "rustls")]
pub(crate) fn tls(platform_roots: bool) -> Result<Tls, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let mut config = if platform_roots {
        use rustls_platform_verifier::BuilderVerifierExt;
        builder.with_platform_verifier().map_err(|e| format!("cannot load the platform's certificate verifier: {e}"))?.with_no_client_auth()
    } else {
        builder.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(feature = "rustls")]
fn connector(mut http: HttpConnector, config: &Config, mut tls: Tls) -> Result<Connector, String> {
    http.enforce_http(false);
    // The builder sets ALPN itself (and refuses a configuration that has it already).
    tls.alpn_protocols.clear();
    // ALPN offers HTTP/2 and HTTP/1.1, or HTTP/2 alone when the relay is known to speak it.
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    Ok(if config.http.version == HttpVersion::Http2PriorKnowledge {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_all_versions().wrap_connector(http)
    })
}

/// No TLS without the `rustls` feature.
#[cfg(not(feature = "rustls"))]
pub(crate) fn tls(_platform_roots: bool) -> Result<Tls, String> {
    Ok(())
}

#[cfg(not(feature = "rustls"))]
fn connector(http: HttpConnector, _config: &Config, _tls: Tls) -> Result<Connector, String> {
    Ok(http)
}
