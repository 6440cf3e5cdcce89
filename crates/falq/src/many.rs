//! Many jobs at once: [`Client::run_many`] runs a list of inputs with a bounded number
//! of jobs in flight and answers each result with its input's index, as it completes.
//!
//! How many jobs are in flight is a [`JobLimit`]: fixed, or adaptive. The adaptive
//! limit keeps a small backlog of the caller's jobs queued at the relay (so its runners
//! never wait for the next submit) without flooding its queue: it grows by one each
//! time a job ends while fewer than [`JobLimit::backlog`] of the caller's jobs are still
//! queued there, and halves when the relay pushes back (the client's adaptive call
//! limit fell: a 429 or 503).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::stream::{BoxStream, FuturesUnordered, StreamExt};
use serde_json::Value;

use crate::client::Update;
use crate::options::SubmitOptions;
use crate::{Client, Endpoint, Error};

/// How many jobs may be in flight (submitted and not yet finished) at once.
#[derive(Clone, Debug, PartialEq)]
pub struct JobLimit {
    limit: usize,
    max: usize,
    adaptive: bool,
    /// The client's adaptive call limit when last seen (a fall means pushback).
    seen_call_limit: Option<usize>,
}

impl JobLimit {
    /// The adaptive limit's start.
    pub const START: usize = 8;
    /// The adaptive limit's ceiling, unless told otherwise.
    pub const MAX: usize = 256;

    /// Exactly `n` jobs at once (at least 1).
    pub fn fixed(n: usize) -> JobLimit {
        JobLimit { limit: n.max(1), max: n.max(1), adaptive: false, seen_call_limit: None }
    }

    /// Starts at [`JobLimit::START`] and adapts up to `max`.
    pub fn adaptive(max: usize) -> JobLimit {
        let max = max.max(1);
        JobLimit { limit: Self::START.min(max), max, adaptive: true, seen_call_limit: None }
    }

    /// The jobs allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many of the caller's jobs may wait in the relay's queue before the limit stops
    /// growing: enough that a runner finishing a job finds the next one there.
    pub fn backlog(&self) -> usize {
        (self.limit / 8).max(2)
    }

    /// A job ended while `queued` of the caller's jobs were still queued at the relay.
    pub fn on_job_end(&mut self, queued: usize) {
        if self.adaptive && queued < self.backlog() {
            self.limit = (self.limit + 1).min(self.max);
        }
    }

    /// The client's adaptive call limit now ([`Client::in_flight_limit`]): when it fell,
    /// the relay pushed back, and the job limit halves.
    pub fn observe_call_limit(&mut self, call_limit: usize) {
        if self.adaptive
            && let Some(seen) = self.seen_call_limit
            && call_limit < seen
        {
            self.limit = (self.limit / 2).max(1);
        }
        self.seen_call_limit = Some(call_limit);
    }
}

/// Counts the jobs queued at the relay, from their wait updates: a job counts from its
/// submit until an update says it left the queue (or it ended).
#[derive(Clone, Debug, Default)]
pub struct QueuedJobs(Arc<AtomicUsize>);

impl QueuedJobs {
    /// How many are queued now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// A job just submitted: counted until [`QueuedTicket::left`] or its drop.
    pub fn submitted(&self) -> QueuedTicket {
        self.0.fetch_add(1, Ordering::Relaxed);
        QueuedTicket { count: self.0.clone(), counted: true }
    }
}

/// One job's place in [`QueuedJobs`].
#[derive(Debug)]
pub struct QueuedTicket {
    count: Arc<AtomicUsize>,
    counted: bool,
}

impl QueuedTicket {
    /// Reads a wait update: once the job is no longer queued, it stops counting.
    pub fn update(&mut self, u: &Update) {
        if u.status != falq_api::types::QueueStatusKind::InQueue {
            self.left();
        }
    }

    /// The job left the queue.
    pub fn left(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for QueuedTicket {
    fn drop(&mut self) {
        self.left();
    }
}

/// One result of [`Client::run_many`]: the input's index and what its job came to.
#[derive(Debug)]
pub struct Finished<T> {
    /// The index of the input in the list given.
    pub index: usize,
    /// The request id, once the relay accepted the job.
    pub request_id: Option<String>,
    /// Its output, or what went wrong (the error says what happened to the job).
    pub result: Result<T, Error>,
}

impl Client {
    /// Runs every input on `E`, at most `limit` jobs in flight, and answers each result
    /// as it completes with its input's index. Inputs are submitted in order; a failed
    /// job does not stop the others.
    pub fn run_many<'a, E: Endpoint + 'a>(
        &'a self,
        inputs: impl IntoIterator<Item = E::Input, IntoIter: Send> + 'a,
        limit: JobLimit,
    ) -> BoxStream<'a, Finished<E::Output>> {
        let info = E::info();
        let jobs = inputs.into_iter().map(|input| serde_json::to_value(&input));
        self.run_many_inner(info.id, jobs, limit, SubmitOptions::default())
            .map(|f| Finished {
                index: f.index,
                request_id: f.request_id,
                result: f.result.and_then(|v| {
                    serde_json::from_value::<E::Output>(v).map_err(|e| Error::Protocol {
                        endpoint: info.id.to_string(),
                        request_id: None,
                        call: crate::Call::Result,
                        message: format!("the output is not a {}: {e}", info.output_schema),
                    })
                }),
            })
            .boxed()
    }

    /// [`Client::run_many`] with JSON inputs and outputs, for an endpoint id and the
    /// same request options for every job.
    pub fn run_many_json<'a>(
        &'a self,
        endpoint_id: &'a str,
        inputs: impl IntoIterator<Item = Value, IntoIter: Send> + 'a,
        limit: JobLimit,
        options: SubmitOptions,
    ) -> BoxStream<'a, Finished<Value>> {
        self.run_many_inner(endpoint_id, inputs.into_iter().map(Ok), limit, options)
    }

    fn run_many_inner<'a>(
        &'a self,
        endpoint_id: &'a str,
        inputs: impl Iterator<Item = Result<Value, serde_json::Error>> + Send + 'a,
        limit: JobLimit,
        options: SubmitOptions,
    ) -> BoxStream<'a, Finished<Value>> {
        let queued = QueuedJobs::default();
        let options = Arc::new(options);
        let state = (inputs.enumerate(), FuturesUnordered::new(), limit);
        futures_util::stream::unfold(state, move |(mut inputs, mut running, mut limit)| {
            let queued = queued.clone();
            let options = options.clone();
            async move {
                while running.len() < limit.limit() {
                    let Some((index, input)) = inputs.next() else { break };
                    let queued = queued.clone();
                    let options = options.clone();
                    running.push(async move {
                        let input = match input {
                            Ok(v) => v,
                            Err(e) => {
                                let result = Err(Error::Encode { endpoint: endpoint_id.to_string(), message: e.to_string() });
                                return Finished { index, request_id: None, result };
                            }
                        };
                        let handle = match self.submit_json_with(endpoint_id, &input, &options).await {
                            Ok(h) => h,
                            Err(e) => return Finished { index, request_id: None, result: Err(e) },
                        };
                        let mut ticket = queued.submitted();
                        let result = handle.finish::<Value>(|u| ticket.update(u)).await;
                        Finished { index, request_id: Some(handle.request_id.clone()), result }
                    });
                }
                let done = running.next().await?;
                limit.on_job_end(queued.get());
                limit.observe_call_limit(self.in_flight_limit());
                Some((done, (inputs, running, limit)))
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_limits_never_move() {
        let mut l = JobLimit::fixed(5);
        l.on_job_end(0);
        l.observe_call_limit(32);
        l.observe_call_limit(1);
        assert_eq!(l.limit(), 5);
        assert_eq!(JobLimit::fixed(0).limit(), 1);
    }

    #[test]
    fn adaptive_limit_table() {
        // (queued at the relay when a job ends, call limit seen) -> limit after.
        let mut l = JobLimit::adaptive(12);
        let mut seen = vec![];
        for (queued, call_limit) in
            [(0, 32), (0, 32), (1, 33), (2, 34), (5, 34), (0, 17), (0, 17), (0, 30), (0, 30), (0, 30), (0, 30), (0, 30)]
        {
            l.on_job_end(queued);
            l.observe_call_limit(call_limit);
            seen.push(l.limit());
        }
        // Grows while the backlog is short, holds while 2+ jobs wait, halves on pushback,
        // stops at its ceiling.
        assert_eq!(seen, vec![9, 10, 11, 11, 11, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(JobLimit::adaptive(3).limit(), 3);
    }

    #[test]
    fn backlog_grows_with_the_limit() {
        assert_eq!(JobLimit::adaptive(256).backlog(), 2);
        let mut l = JobLimit::adaptive(256);
        for _ in 0..100 {
            l.on_job_end(0);
        }
        assert_eq!(l.limit(), 108);
        assert_eq!(l.backlog(), 13);
    }

    #[test]
    fn queued_tickets_count_until_the_job_leaves_the_queue() {
        let q = QueuedJobs::default();
        let mut a = q.submitted();
        let b = q.submitted();
        assert_eq!(q.get(), 2);
        let update = |status| Update { status, queue_position: None, new_logs: vec![], elapsed: Default::default() };
        a.update(&update(falq_api::types::QueueStatusKind::InQueue));
        assert_eq!(q.get(), 2);
        a.update(&update(falq_api::types::QueueStatusKind::InProgress));
        a.update(&update(falq_api::types::QueueStatusKind::Completed));
        assert_eq!(q.get(), 1, "counted once");
        drop(b);
        drop(a);
        assert_eq!(q.get(), 0);
    }
}
