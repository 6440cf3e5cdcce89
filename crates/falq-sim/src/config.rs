//! The simulator's configuration: mode, key, URLs, timing, faults and seed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{FaultPlan, SimError};

/// Which deployment of the queue protocol the simulator imitates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimMode {
    /// A relay (Key4U and others): `Authorization: Bearer <key>`, and the URLs in answers
    /// point at `https://queue.fal.run/...` (clients must rewrite them to the base).
    #[default]
    Relay,
    /// fal itself: `Authorization: Key <key>`, and the URLs in answers point at the
    /// simulator's own base URL.
    Direct,
}

impl SimMode {
    /// The `Authorization` scheme this mode accepts: `Bearer` or `Key`.
    pub fn auth_scheme(self) -> &'static str {
        match self {
            SimMode::Relay => "Bearer",
            SimMode::Direct => "Key",
        }
    }

    /// `relay` or `direct`.
    pub fn as_str(self) -> &'static str {
        match self {
            SimMode::Relay => "relay",
            SimMode::Direct => "direct",
        }
    }
}

impl fmt::Display for SimMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SimMode {
    type Err = SimError;

    /// Reads `relay` or `direct` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "relay" => Ok(SimMode::Relay),
            "direct" => Ok(SimMode::Direct),
            other => Err(SimError::Config(format!("unknown mode {other:?}: expected relay or direct"))),
        }
    }
}

/// How long things take and how many run at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTiming {
    /// The least time a job stays `IN_QUEUE` (it may wait longer for a free worker).
    pub queue_delay: Duration,
    /// How long a job stays `IN_PROGRESS` once a worker takes it.
    pub run_time: Duration,
    /// How many jobs run at once; the others wait in a FIFO queue (at least 1).
    pub workers: usize,
    /// How long a completed job's result (and its media) is kept; afterwards every call
    /// about it answers 404 and the job is dropped from memory.
    pub result_ttl: Duration,
    /// How many `step k/N` log lines a run emits, evenly spread over `run_time`.
    pub log_lines: u32,
    /// The interval of `: keep-alive` comments on a status stream.
    pub keep_alive: Duration,
}

impl Default for SimTiming {
    /// A demo finishes in about a second: 200 ms queued, 600 ms running, 4 workers,
    /// results kept an hour (like fal), 4 log lines, keep-alive every 15 s.
    fn default() -> Self {
        SimTiming {
            queue_delay: Duration::from_millis(200),
            run_time: Duration::from_millis(600),
            workers: 4,
            result_ttl: Duration::from_secs(3600),
            log_lines: 4,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// Everything the simulator can be told at start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Relay or direct: the auth scheme and the URLs in answers.
    pub mode: SimMode,
    /// The one key accepted; `None` accepts any non-empty key.
    pub api_key: Option<String>,
    /// The base URL clients reach the simulator at, for media URLs and, in direct mode,
    /// queue URLs. `None`: `http://` plus the request's `Host` header and the path prefix.
    pub public_url: Option<String>,
    /// A path prefix every route lives under (`/fal`), as some relays have; empty for none.
    pub path_prefix: String,
    /// The origin relay-mode answers point at (`https://queue.fal.run`).
    pub relay_queue_url: String,
    /// Queue delay, run time, workers, result TTL, log lines, keep-alive.
    pub timing: SimTiming,
    /// The faults injected from the start (see [`crate::FaultRule`] for the syntax).
    pub faults: FaultPlan,
    /// The seed of everything random: request ids, default job seeds, fault rates.
    pub seed: u64,
    /// The largest request body accepted (413 beyond), data URLs included.
    pub max_body_bytes: usize,
    /// The largest image (width × height) a job may ask for; larger jobs fail with a 422 result.
    pub max_image_pixels: u64,
    /// The bytes of encoded media kept in memory for repeated downloads.
    pub media_cache_bytes: usize,
    /// The concurrent streams one HTTP/2 connection allows (`SETTINGS_MAX_CONCURRENT_STREAMS`),
    /// as a relay's server or CDN sets it (100 to 256 is common); `None`: no limit.
    pub h2_max_streams: Option<u32>,
    /// Endpoints served besides the catalogue's (`falq_api::ENDPOINTS`), as a relay that
    /// sells more than the pages in `specs/` say: each answered from its own schemas.
    pub extra_endpoints: Vec<&'static falq_api::EndpointInfo>,
    /// Serve HTTPS, as every real relay does: with this certificate chain and key (PEM),
    /// HTTP/2 and HTTP/1.1 offered by ALPN. `None`: plain HTTP (and h2c).
    pub tls: Option<SimTls>,
}

/// The certificate a simulator serving HTTPS presents.
#[derive(Clone)]
pub struct SimTls {
    /// The certificate chain, PEM, the simulator's own first.
    pub cert_pem: Vec<u8>,
    /// Its private key, PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTls { .. }")
    }
}

impl SimTls {
    /// The TLS configuration of the server: the chain and key, ALPN offering h2 then http/1.1.
    pub(crate) fn server_config(&self) -> Result<std::sync::Arc<tokio_rustls::rustls::ServerConfig>, SimError> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, e: &dyn std::fmt::Display| SimError::Config(format!("the TLS {what}: {e}"));
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&self.cert_pem).collect::<Result<_, _>>().map_err(|e| bad("certificate", &e))?;
        if chain.is_empty() {
            return Err(SimError::Config("the TLS certificate file holds no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| bad("key", &e))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("protocol versions", &e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| bad("certificate and key", &e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(std::sync::Arc::new(config))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            mode: SimMode::Relay,
            api_key: None,
            public_url: None,
            path_prefix: String::new(),
            relay_queue_url: "https://queue.fal.run".to_string(),
            timing: SimTiming::default(),
            faults: FaultPlan::default(),
            seed: 0x00fa_1c51,
            max_body_bytes: 64 << 20,
            max_image_pixels: 4096 * 4096,
            media_cache_bytes: 64 << 20,
            h2_max_streams: None,
            extra_endpoints: Vec::new(),
            tls: None,
        }
    }
}

impl SimConfig {
    /// `https` when the simulator serves TLS, else `http`: the scheme of its URLs.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Checks the values and normalizes the prefix and URLs.
    pub(crate) fn normalized(mut self) -> Result<SimConfig, SimError> {
        if self.timing.workers == 0 {
            return Err(SimError::Config("workers must be at least 1".into()));
        }
        if self.timing.keep_alive.is_zero() {
            return Err(SimError::Config("keep_alive must be longer than zero".into()));
        }
        self.path_prefix = normalize_prefix(&self.path_prefix);
        self.relay_queue_url = self.relay_queue_url.trim_end_matches('/').to_string();
        self.public_url = self.public_url.map(|u| u.trim_end_matches('/').to_string());
        Ok(self)
    }
}

/// `""` or `/a/b`: one leading slash, no trailing slash, no empty segments.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    prefix.split('/').filter(|s| !s.is_empty()).map(|s| format!("/{s}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_table() {
        for (given, expected) in [("", ""), ("/", ""), ("fal", "/fal"), ("/fal/", "/fal"), ("//a//b/", "/a/b")] {
            assert_eq!(normalize_prefix(given), expected, "{given:?}");
        }
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("relay".parse::<SimMode>().unwrap(), SimMode::Relay);
        assert_eq!(" Direct ".parse::<SimMode>().unwrap(), SimMode::Direct);
        assert!("fal".parse::<SimMode>().is_err());
        assert_eq!(SimMode::Direct.to_string(), "direct");
        assert_eq!(SimMode::Relay.auth_scheme(), "Bearer");
        assert_eq!(SimMode::Direct.auth_scheme(), "Key");
    }

    #[test]
    fn zero_workers_is_refused() {
        let config = SimConfig { timing: SimTiming { workers: 0, ..SimTiming::default() }, ..SimConfig::default() };
        assert!(matches!(config.normalized(), Err(SimError::Config(_))));
    }
}
