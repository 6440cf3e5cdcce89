//! The per-request options of a submit, as fal's own clients offer them: a webhook, the
//! queue priority, a start deadline, a runner hint and how long results are kept.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// A job's place in the relay's queue (`X-Fal-Queue-Priority`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Behind normal jobs.
    Low,
    /// The default.
    Normal,
}

impl std::str::FromStr for Priority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "normal" => Ok(Self::Normal),
            other => Err(Error::Config { message: format!("unknown priority {other:?}: use low or normal") }),
        }
    }
}

/// What a submit may ask of the relay besides its input. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubmitOptions {
    /// A URL the relay POSTs the result to when the job ends (the `fal_webhook` query).
    pub webhook: Option<Url>,
    /// The job's queue priority (`X-Fal-Queue-Priority`).
    pub priority: Option<Priority>,
    /// If the job has not started within this time, the relay gives up on it
    /// (`X-Fal-Request-Timeout`, whole seconds, rounded up).
    pub start_timeout: Option<Duration>,
    /// A hint of which runner should take the job (`X-Fal-Runner-Hint`).
    pub runner_hint: Option<String>,
    /// How long the relay keeps the job's result and files
    /// (`X-Fal-Object-Lifecycle-Preference`, `{"expiration_duration_seconds": N}`).
    pub result_lifetime: Option<Duration>,
}

impl SubmitOptions {
    /// Checks the options and answers the values of the spec's submit parameters; an
    /// option that cannot be sent is an error before anything is sent.
    pub(crate) fn parameters(&self) -> Result<SubmitParameters, Error> {
        let bad = |what: &str, why: String| Error::Config { message: format!("{what}: {why}") };
        let request_timeout = match self.start_timeout {
            Some(t) if t.is_zero() => return Err(bad("start timeout", "must be more than zero".into())),
            // Whole seconds, rounded up: a start timeout is never shortened.
            Some(t) => Some(i64::try_from(t.as_secs() + u64::from(t.subsec_nanos() > 0)).unwrap_or(i64::MAX)),
            None => None,
        };
        let runner_hint = match &self.runner_hint {
            Some(hint) => {
                HeaderValue::from_str(hint.trim()).map_err(|_| bad("runner hint", format!("{hint:?} cannot be sent in a header")))?;
                Some(hint.trim().to_string())
            }
            None => None,
        };
        if let Some(w) = &self.webhook
            && !matches!(w.scheme(), "http" | "https")
        {
            return Err(bad("webhook", format!("{w} is not an http(s) URL")));
        }
        Ok(SubmitParameters {
            webhook: self.webhook.as_ref().map(|w| w.as_str().to_string()),
            priority: self.priority.map(|p| if p == Priority::Low { "low" } else { "normal" }),
            request_timeout,
            runner_hint,
            lifecycle: self.result_lifetime.map(|life| format!("{{\"expiration_duration_seconds\":{}}}", life.as_secs().max(1))),
        })
    }

    /// Checks the options and answers the headers they add (the `fal_webhook` query is the
    /// caller's); an option that cannot be sent is an error before anything is sent.
    pub fn headers(&self) -> Result<HeaderMap, Error> {
        let p = self.parameters()?;
        let mut h = HeaderMap::new();
        let mut put = |name: &'static str, value: Option<String>| {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        put("x-fal-queue-priority", p.priority.map(str::to_string));
        put("x-fal-request-timeout", p.request_timeout.map(|t| t.to_string()));
        put("x-fal-runner-hint", p.runner_hint);
        put("x-fal-object-lifecycle-preference", p.lifecycle);
        Ok(h)
    }
}

/// A submit's options as the values of the spec's `x-falq-submit-parameters`, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SubmitParameters {
    /// `fal_webhook`.
    pub webhook: Option<String>,
    /// `X-Fal-Queue-Priority`.
    pub priority: Option<&'static str>,
    /// `X-Fal-Request-Timeout`, whole seconds.
    pub request_timeout: Option<i64>,
    /// `X-Fal-Runner-Hint`.
    pub runner_hint: Option<String>,
    /// `X-Fal-Object-Lifecycle-Preference`.
    pub lifecycle: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_headers_or_errors() {
        let o = SubmitOptions {
            priority: Some(Priority::Low),
            start_timeout: Some(Duration::from_millis(1500)),
            runner_hint: Some("eu-1".into()),
            result_lifetime: Some(Duration::from_secs(3600)),
            ..SubmitOptions::default()
        };
        let h = o.headers().unwrap();
        assert_eq!(h["x-fal-queue-priority"], "low");
        assert_eq!(h["x-fal-request-timeout"], "2", "whole seconds, rounded up");
        assert_eq!(h["x-fal-runner-hint"], "eu-1");
        assert_eq!(h["x-fal-object-lifecycle-preference"], r#"{"expiration_duration_seconds":3600}"#);
        assert!(SubmitOptions::default().headers().unwrap().is_empty());
        assert!(SubmitOptions { runner_hint: Some("a\nb".into()), ..Default::default() }.headers().is_err());
        assert!(SubmitOptions { start_timeout: Some(Duration::ZERO), ..Default::default() }.headers().is_err());
        let ftp = Url::parse("ftp://x/y").unwrap();
        assert!(SubmitOptions { webhook: Some(ftp), ..Default::default() }.headers().is_err());
        assert_eq!("LOW".parse::<Priority>().unwrap(), Priority::Low);
        assert!("urgent".parse::<Priority>().is_err());
    }
}
