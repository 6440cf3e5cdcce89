//! Counters: per route, per job and in total, as a serializable snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the simulator has served so far: [`crate::Sim::counters`] and `GET /_sim/counters`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Per route.
    pub routes: PerRoute,
    /// Jobs, by what became of them.
    pub jobs: JobTotals,
    /// Per job still kept (dropped with the job when its result expires), by request id.
    pub per_job: BTreeMap<String, JobCounters>,
    /// TCP connections accepted (a client that reuses its connections opens few; one per
    /// call is the most).
    #[serde(default)]
    pub connections: u64,
}

/// One [`RouteCounters`] per route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerRoute {
    /// `POST /{endpoint_id}`.
    pub submit: RouteCounters,
    /// `GET .../status`.
    pub status: RouteCounters,
    /// `GET .../status/stream`.
    pub stream: RouteCounters,
    /// `GET .../requests/{id}`.
    pub result: RouteCounters,
    /// `PUT .../cancel`.
    pub cancel: RouteCounters,
    /// `GET /media/{name}`.
    pub media: RouteCounters,
    /// `/_sim/...`.
    pub admin: RouteCounters,
    /// Unknown paths and methods.
    pub other: RouteCounters,
}

/// The traffic of one route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteCounters {
    /// Requests received.
    pub requests: u64,
    /// Body bytes sent (headers not counted; SSE bytes as they are sent).
    pub bytes_sent: u64,
    /// Faults injected (all kinds, resets and stalls included).
    pub faults_injected: u64,
    /// Connections closed without an answer.
    pub resets: u64,
    /// Answers by HTTP status.
    pub responses: BTreeMap<u16, u64>,
    /// Answers open now (status streams: from their opening to their end or the client's
    /// leaving; other routes are answered at once and count none).
    #[serde(default)]
    pub open: u64,
    /// The most answers that were open at once.
    #[serde(default)]
    pub peak_open: u64,
    /// Requests carrying the `api-version` header every operation of the generated
    /// `falq-api` client sends (and nothing built by hand does): how a test tells that a
    /// client's calls went through the generated operations.
    #[serde(default)]
    pub marked: u64,
}

/// Jobs by state and outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTotals {
    /// Accepted submits.
    pub submitted: u64,
    /// Now `IN_QUEUE`.
    pub in_queue: u64,
    /// Now `IN_PROGRESS`.
    pub in_progress: u64,
    /// Ended `COMPLETED`, whatever the outcome.
    pub completed: u64,
    /// Of those, ended with an output.
    pub succeeded: u64,
    /// Of those, ended with an error at the result (a 422: injected or a bad input image).
    pub failed: u64,
    /// Of those, cancelled.
    pub cancelled: u64,
    /// Dropped after their result TTL.
    pub expired: u64,
}

/// The traffic about one job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounters {
    /// Its endpoint id.
    pub endpoint: String,
    /// `IN_QUEUE`, `IN_PROGRESS` or `COMPLETED`.
    pub status: String,
    /// Submits that created it (1).
    pub submits: u64,
    /// Status calls.
    pub status_requests: u64,
    /// Status streams opened.
    pub stream_requests: u64,
    /// Result calls.
    pub result_requests: u64,
    /// Cancel calls.
    pub cancel_requests: u64,
    /// Media downloads.
    pub media_requests: u64,
    /// Body bytes sent about it (all routes).
    pub bytes_sent: u64,
    /// When it completed, in microseconds since the Unix epoch (comparable across
    /// processes on one machine, for delay measurements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_unix_us: Option<u64>,
}

/// The counter slot of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CounterRoute {
    Submit,
    Status,
    Stream,
    Result,
    Cancel,
    Media,
    Admin,
    Other,
}

impl PerRoute {
    pub(crate) fn get_mut(&mut self, route: CounterRoute) -> &mut RouteCounters {
        match route {
            CounterRoute::Submit => &mut self.submit,
            CounterRoute::Status => &mut self.status,
            CounterRoute::Stream => &mut self.stream,
            CounterRoute::Result => &mut self.result,
            CounterRoute::Cancel => &mut self.cancel,
            CounterRoute::Media => &mut self.media,
            CounterRoute::Admin => &mut self.admin,
            CounterRoute::Other => &mut self.other,
        }
    }
}

impl JobCounters {
    pub(crate) fn count_request(&mut self, route: CounterRoute) {
        match route {
            CounterRoute::Submit => self.submits += 1,
            CounterRoute::Status => self.status_requests += 1,
            CounterRoute::Stream => self.stream_requests += 1,
            CounterRoute::Result => self.result_requests += 1,
            CounterRoute::Cancel => self.cancel_requests += 1,
            CounterRoute::Media => self.media_requests += 1,
            CounterRoute::Admin | CounterRoute::Other => {}
        }
    }
}
