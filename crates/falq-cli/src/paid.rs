//! The journal protocol of a paid job, in one place, for `run`, `batch` and `resume`:
//! the intent is on disk before the submit is sent (a crash from then on leaves a trace);
//! the request id once the relay has answered; the outcome once it is known, and `done`
//! only with every output saved. A submit that certainly did not arrive is journaled as
//! not submitted; one that may have arrived keeps its intent, to be settled by hand.

use std::future::Future;
use std::path::PathBuf;

use falq::{Error as FalqError, RequestHandle};
use tokio::sync::{mpsc, oneshot};

use crate::Saved;
use crate::cost::Estimate;
use crate::journal::{BatchLine, Entry, Journal, new_local_id, now_ms};

/// Where a job's entries go: the journal, written and synced at once (`run`, `resume`), or
/// a batch's group-committing [`Writer`].
pub trait Sink: Sync {
    /// Writes `entry`; answers once it is on disk.
    fn record(&self, entry: &Entry) -> impl Future<Output = Result<(), String>> + Send;
}

impl Sink for Journal {
    async fn record(&self, entry: &Entry) -> Result<(), String> {
        self.append(entry).map_err(|e| e.to_string())
    }
}

/// Journal appends, group-committed: every entry waiting when the writer is free goes in
/// one write and one sync, and each sender hears back once its entry is on disk.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<(Entry, oneshot::Sender<Result<(), String>>)>,
}

impl Writer {
    /// A writer appending to `journal` from a task of its own.
    pub fn start(journal: Journal) -> Writer {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Entry, oneshot::Sender<Result<(), String>>)>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while let Ok(more) = rx.try_recv() {
                    group.push(more);
                }
                let (entries, acks): (Vec<Entry>, Vec<_>) = group.into_iter().unzip();
                let journal = journal.clone();
                let written = tokio::task::spawn_blocking(move || journal.append_all(&entries))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                for ack in acks {
                    let _ = ack.send(written.clone());
                }
            }
        });
        Writer { tx }
    }
}

impl Sink for Writer {
    async fn record(&self, entry: &Entry) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx.send((entry.clone(), ack)).map_err(|_| "the journal writer stopped".to_string())?;
        done.await.map_err(|_| "the journal writer stopped".to_string())?
    }
}

/// What a paid job is, as its entries say.
#[derive(Clone, Debug)]
pub struct JobRecord {
    /// The endpoint id.
    pub endpoint: String,
    /// The relay.
    pub base_url: String,
    /// Where its outputs go.
    pub out: PathBuf,
    /// Whether it runs on this process's simulator.
    pub sim: bool,
    /// The batch line it is, if any.
    pub batch: Option<BatchLine>,
    /// What it is estimated to cost.
    pub cost: Option<Estimate>,
}

/// How a submit ended.
pub enum Submitted {
    /// The relay has the job. `unrecorded`: the journal could not record its request id
    /// (its intent is there: it shows as maybe-submitted until settled).
    Sent { handle: RequestHandle, local_id: String, unrecorded: Option<String> },
    /// The intent could not be written: nothing was sent.
    NotJournaled(String),
    /// The submit failed; `error.maybe_submitted()` says whether the job may exist (then its
    /// intent stands, and `local_id` settles it).
    Failed { error: FalqError, local_id: String },
}

/// Submits a paid job under the journal's protocol: the intent first, then `send`, then
/// the request id (or that nothing was queued).
pub async fn submit<F>(sink: &impl Sink, job: &JobRecord, send: impl FnOnce() -> F) -> Submitted
where
    F: Future<Output = Result<RequestHandle, FalqError>>,
{
    let local_id = new_local_id();
    let intent = Entry::Intent {
        local_id: local_id.clone(),
        endpoint: job.endpoint.clone(),
        base_url: job.base_url.clone(),
        out: job.out.clone(),
        sim: job.sim,
        batch: job.batch.clone(),
        cost: job.cost.clone(),
        at: now_ms(),
    };
    if let Err(e) = sink.record(&intent).await {
        return Submitted::NotJournaled(e);
    }
    match send().await {
        Ok(handle) => {
            let submitted = Entry::Submitted {
                local_id: Some(local_id.clone()),
                endpoint: job.endpoint.clone(),
                request_id: handle.request_id.clone(),
                base_url: job.base_url.clone(),
                out: job.out.clone(),
                sim: job.sim,
                batch: job.batch.clone(),
                cost: job.cost.clone(),
                at: now_ms(),
            };
            let unrecorded = sink.record(&submitted).await.err();
            Submitted::Sent { handle, local_id, unrecorded }
        }
        Err(error) => {
            if !error.maybe_submitted() {
                let _ = sink.record(&Entry::NotSubmitted { local_id: local_id.clone(), error: error.to_string(), at: now_ms() }).await;
            }
            Submitted::Failed { error, local_id }
        }
    }
}

/// Records what became of a job once it is known, and answers that entry (none while the
/// job may still complete: it stays pending) with whether it was written.
pub async fn record_outcome(
    sink: &impl Sink,
    request_id: &str,
    outcome: Result<&Saved, &FalqError>,
) -> (Option<Entry>, Result<(), String>) {
    match outcome_entry(request_id, outcome) {
        Some(entry) => {
            let written = sink.record(&entry).await;
            (Some(entry), written)
        }
        None => (None, Ok(())),
    }
}

/// The journal entry of a job's outcome: done only with its outputs saved; none for an
/// error after which the job may still complete (it stays pending).
pub fn outcome_entry(request_id: &str, outcome: Result<&Saved, &FalqError>) -> Option<Entry> {
    let request_id = request_id.to_string();
    let at = now_ms();
    match outcome {
        Ok(saved) => Some(Entry::Done {
            request_id,
            files: saved.files.clone(),
            seed: saved.seed.clone(),
            text: saved.text.clone(),
            billed_units: saved.billed_units,
            at,
        }),
        Err(e @ FalqError::JobFailed { .. }) => Some(Entry::Failed { request_id, error: e.to_string(), at }),
        Err(FalqError::Expired { .. }) => Some(Entry::Expired { request_id, at }),
        Err(FalqError::Timeout { cancelled: true, .. }) => Some(Entry::Cancelled { request_id, at }),
        Err(_) => None,
    }
}

/// What the user should know of a paid job after an error: where it stands and what to do.
pub fn job_note(request_id: &str, outcome: Result<&Saved, &FalqError>) -> Option<String> {
    match outcome {
        Ok(_) | Err(FalqError::JobFailed { .. } | FalqError::Expired { .. }) => None,
        Err(FalqError::Timeout { cancelled: true, .. }) => Some(format!("note: {request_id} was cancelled on the relay")),
        Err(_) => Some(format!("note: {request_id} is still pending in the journal: `falq resume` waits for it and saves its outputs")),
    }
}

/// What to do about a job of unknown fate, by its local id.
pub fn settle_hint(local_id: &str) -> String {
    format!("find it in the relay's request history, then `falq settle {local_id} --request-id ID` (or --resend, or --forget)")
}
