//! The retry policy as a pure function: what happened, which call, how many
//! attempts so far → retry after a delay, or stop. The one loop that sleeps follows it:
//! the generated client's hooks and the `falq` queue layer both run that loop.

use std::time::Duration;

/// Exponential backoff with jitter for retried calls.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// The delay before the first retry.
    pub base_delay: Duration,
    /// The largest delay between attempts.
    pub max_delay: Duration,
    /// Jitter as a fraction of the delay (0.25 is ±25 %).
    pub jitter: f64,
    /// The longest `Retry-After` honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// The calls of the protocol, which differ in what may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `POST {endpoint}`: paid; never blindly retried.
    Submit,
    /// `GET .../status`.
    Status,
    /// `GET .../status/stream`.
    Stream,
    /// `GET .../requests/{id}`.
    Result,
    /// `PUT .../cancel`.
    Cancel,
    /// `GET {media url}`.
    Download,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Call {
    /// Whether the call may be repeated without effect (all but submit).
    pub fn idempotent(self) -> bool {
        self != Self::Submit
    }

    /// The call's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Status => "status",
            Self::Stream => "status stream",
            Self::Result => "result",
            Self::Cancel => "cancel",
            Self::Download => "download",
        }
    }
}

/// What an attempt came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// The server answered with this status.
    Answered {
        /// The HTTP status.
        status: u16,
        /// Its `Retry-After`, when it gave one in seconds.
        retry_after: Option<Duration>,
        /// A 504 with `X-Fal-Request-Timeout-Type: user`: the caller's own deadline.
        user_timeout: bool,
    },
    /// The connection could not be made: the request cannot have reached the server.
    NotSent,
    /// The request was sent (or may have been) and no answer came: reset, timeout.
    Lost,
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Stop: hand the outcome to the caller.
    Stop,
}

/// Whether an outcome may be retried for a call, regardless of attempts left.
pub fn retryable(call: Call, outcome: Outcome) -> bool {
    match outcome {
        Outcome::NotSent => true,
        Outcome::Lost => call != Call::Submit,
        Outcome::Answered { status, user_timeout, .. } => match status {
            429 => true,
            // 503 means the server refused the work before accepting it.
            503 => true,
            502 => call != Call::Submit,
            504 => call != Call::Submit && !user_timeout,
            // A result, a status or a download is a GET: a 500 may pass. A failed job
            // answers its own error (422, or a `detail` body), never retried.
            500 => matches!(call, Call::Status | Call::Stream | Call::Result | Call::Download),
            _ => false,
        },
    }
}

/// The decision after `attempts` attempts (1 after the first). `jitter` is a sample
/// in [-1, 1] that the caller draws, so this stays a pure function.
pub fn decide(policy: &RetryPolicy, call: Call, attempts: u32, outcome: Outcome, jitter: f64) -> Decision {
    if attempts >= policy.max_attempts || !retryable(call, outcome) {
        return Decision::Stop;
    }
    if let Outcome::Answered { retry_after: Some(after), .. } = outcome {
        return if after <= policy.max_retry_after { Decision::RetryAfter(after) } else { Decision::Stop };
    }
    backoff(policy, attempts, jitter)
}

/// The policy's backoff after `attempts` attempts, whatever the outcome: the delay before
/// the next, or stop once the attempts are spent. Also what bounds asking again for a
/// result the relay said is COMPLETED but still answers "not ready".
pub fn backoff(policy: &RetryPolicy, attempts: u32, jitter: f64) -> Decision {
    if attempts >= policy.max_attempts {
        return Decision::Stop;
    }
    let exp = policy.base_delay.as_secs_f64() * 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
    let capped = exp.min(policy.max_delay.as_secs_f64());
    let jittered = capped * (1.0 + policy.jitter * jitter.clamp(-1.0, 1.0));
    Decision::RetryAfter(Duration::try_from_secs_f64(jittered.max(0.0)).unwrap_or(policy.max_delay))
}

/// `Retry-After` in seconds (an HTTP date is not honoured: the backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Outcome {
        Outcome::Answered { status, retry_after: None, user_timeout: false }
    }

    #[test]
    fn what_is_retried_per_call() {
        use Call::*;
        let table: &[(Call, Outcome, bool)] = &[
            (Submit, Outcome::NotSent, true),
            (Submit, Outcome::Lost, false),
            (Submit, answered(429), true),
            (Submit, answered(503), true),
            (Submit, answered(502), false),
            (Submit, answered(504), false),
            (Submit, answered(500), false),
            (Submit, answered(422), false),
            (Status, Outcome::Lost, true),
            (Status, answered(500), true),
            (Status, answered(502), true),
            (Status, answered(504), true),
            (Status, Outcome::Answered { status: 504, retry_after: None, user_timeout: true }, false),
            (Status, answered(404), false),
            (Result, answered(500), true),
            (Result, answered(503), true),
            (Result, answered(422), false),
            (Result, Outcome::Lost, true),
            (Cancel, answered(502), true),
            (Cancel, answered(400), false),
            (Download, Outcome::Lost, true),
        ];
        for (call, outcome, expected) in table {
            assert_eq!(retryable(*call, *outcome), *expected, "{call:?} {outcome:?}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(5),
        };
        let d = |attempts, j| decide(&p, Call::Status, attempts, answered(503), j);
        assert_eq!(d(1, 0.0), Decision::RetryAfter(Duration::from_millis(100)));
        assert_eq!(d(2, 0.0), Decision::RetryAfter(Duration::from_millis(200)));
        assert_eq!(d(3, 1.0), Decision::RetryAfter(Duration::from_millis(500)));
        assert_eq!(d(4, -1.0), Decision::RetryAfter(Duration::from_millis(600)));
        assert_eq!(d(9, 0.0), Decision::RetryAfter(Duration::from_millis(1000)));
        assert_eq!(d(10, 0.0), Decision::Stop, "attempts exhausted");
        // A cap no duration can exceed, with jitter on top: the cap, not a panic.
        let p = RetryPolicy { max_delay: Duration::MAX, base_delay: Duration::MAX, jitter: 1.0, ..p };
        assert_eq!(decide(&p, Call::Status, 3, answered(503), 1.0), Decision::RetryAfter(Duration::MAX));
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_bound() {
        let p = RetryPolicy { max_retry_after: Duration::from_secs(5), ..RetryPolicy::default() };
        let ra = |s| Outcome::Answered { status: 429, retry_after: Some(Duration::from_secs(s)), user_timeout: false };
        assert_eq!(decide(&p, Call::Submit, 1, ra(3), 0.9), Decision::RetryAfter(Duration::from_secs(3)));
        assert_eq!(decide(&p, Call::Submit, 1, ra(60), 0.0), Decision::Stop);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
