//! The journal: every job, written ahead and synced, so a paid job survives Ctrl-C, a
//! crash or `kill -9` at any point: an `intent` is written before the submit is sent,
//! the request id as soon as the relay answers. One JSON object per line; any line that
//! cannot be read (torn by a crash, bad UTF-8, garbage) is skipped and counted, never
//! fatal. Appends take an exclusive lock, so several `falq` processes may share it.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cost::Estimate;

/// Which line of which batch a job runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchLine {
    /// The batch: its output directory, absolute.
    pub batch: PathBuf,
    /// The line of the batch file (1-based, as an editor shows it).
    pub line: u64,
    /// A hash of the line's input as read, so a changed file is noticed before sending.
    pub hash: String,
    /// The stem its output files are named with (`line-0042`).
    pub stem: String,
}

/// How a job of unknown fate was settled.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// It was not found at the relay: send it once more (a batch line is sent by the next
    /// run of its batch, or `falq resume`).
    Resend,
    /// Drop it: falq does nothing more for it.
    Forget,
}

/// What happened to a job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// A submit is about to be sent (write-ahead): if nothing follows, it may or may
    /// not have reached the relay.
    Intent {
        /// A local id tying this to what follows.
        local_id: String,
        /// The endpoint id.
        endpoint: String,
        /// The base URL it is sent to.
        base_url: String,
        /// Where its outputs go.
        out: PathBuf,
        /// Whether an in-process simulator runs it.
        #[serde(default)]
        sim: bool,
        /// The batch line it runs, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<BatchLine>,
        /// What it was estimated to cost when it was sent (unpriced: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Estimate>,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// The submit certainly queued nothing (refused, or never sent).
    NotSubmitted {
        /// The intent's local id.
        local_id: String,
        /// Why.
        error: String,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// The relay accepted the job.
    Submitted {
        /// The intent's local id (absent in journals written before intents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local_id: Option<String>,
        /// The endpoint id.
        endpoint: String,
        /// The request id.
        request_id: String,
        /// The base URL it was submitted to.
        base_url: String,
        /// Where its outputs go.
        out: PathBuf,
        /// Whether an in-process simulator ran it (it cannot be resumed).
        #[serde(default)]
        sim: bool,
        /// The batch line it runs, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<BatchLine>,
        /// What it was estimated to cost when it was sent (unpriced: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Estimate>,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// Its outputs were saved.
    Done {
        /// The request id.
        request_id: String,
        /// The saved files.
        files: Vec<PathBuf>,
        /// The output's seed, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<serde_json::Value>,
        /// The output's text (a transcript, a description), by where it sits in the output.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        text: Vec<(String, String)>,
        /// The units the relay billed (`x-fal-billable-units`), when it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        billed_units: Option<f64>,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// It failed for good.
    Failed {
        /// The request id.
        request_id: String,
        /// Why.
        error: String,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// It was cancelled (the relay answered CANCELLATION_REQUESTED).
    Cancelled {
        /// The request id.
        request_id: String,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// The relay no longer has it (404): its result expired, or it never existed there.
    Expired {
        /// The request id.
        request_id: String,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// The user settled a job of unknown fate (`falq settle`): send it again, or forget
    /// it. (Attaching the request id found at the relay is a `Submitted` entry.)
    Settled {
        /// The intent's local id.
        local_id: String,
        /// What becomes of it.
        settlement: Settlement,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// A batch started (written before its first line is sent): what `falq resume` needs
    /// to finish it.
    BatchStarted {
        /// Its output directory, absolute: the batch's identity.
        batch: PathBuf,
        /// The base URL its lines are sent to.
        base_url: String,
        /// The `falq batch` arguments, the file made absolute (a copy, for standard input).
        args: Vec<String>,
        /// Unix time in milliseconds.
        at: u64,
    },
    /// Every line of a batch reached an end (done, failed, or beyond falq's reach).
    BatchEnded {
        /// Its output directory.
        batch: PathBuf,
        /// Unix time in milliseconds.
        at: u64,
    },
}

impl Entry {
    /// The request id, for entries that have one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Entry::Submitted { request_id, .. }
            | Entry::Done { request_id, .. }
            | Entry::Failed { request_id, .. }
            | Entry::Cancelled { request_id, .. }
            | Entry::Expired { request_id, .. } => Some(request_id),
            Entry::Intent { .. }
            | Entry::NotSubmitted { .. }
            | Entry::Settled { .. }
            | Entry::BatchStarted { .. }
            | Entry::BatchEnded { .. } => None,
        }
    }

    /// The batch line a submission runs, if any.
    pub fn batch_line(&self) -> Option<&BatchLine> {
        match self {
            Entry::Intent { batch, .. } | Entry::Submitted { batch, .. } => batch.as_ref(),
            _ => None,
        }
    }

    /// What a submission was estimated to cost, if it was priced.
    pub fn cost(&self) -> Option<&Estimate> {
        match self {
            Entry::Intent { cost, .. } | Entry::Submitted { cost, .. } => cost.as_ref(),
            _ => None,
        }
    }

    /// The endpoint a submission runs.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Entry::Intent { endpoint, .. } | Entry::Submitted { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }
}

/// A job as the journal knows it: how it was submitted and its latest state.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The submission.
    pub submitted: Entry,
    /// The latest entry (the submission itself while pending).
    pub latest: Entry,
}

impl Job {
    /// `pending`, `done`, `failed`, `cancelled`, `expired`, or `maybe-submitted` (an
    /// intent with no answer recorded: a crash, or a submit whose answer was lost).
    pub fn state(&self) -> &'static str {
        match self.latest {
            Entry::Submitted { .. } => "pending",
            Entry::Done { .. } => "done",
            Entry::Failed { .. } => "failed",
            Entry::Cancelled { .. } => "cancelled",
            Entry::Expired { .. } => "expired",
            Entry::Intent { .. } => "maybe-submitted",
            Entry::Settled { settlement: Settlement::Resend, .. } => "to-resend",
            Entry::Settled { settlement: Settlement::Forget, .. } => "forgotten",
            Entry::NotSubmitted { .. } | Entry::BatchStarted { .. } | Entry::BatchEnded { .. } => "not-submitted",
        }
    }

    /// The request id, once the relay gave one.
    pub fn request_id(&self) -> Option<&str> {
        self.submitted.request_id()
    }

    /// Whether it may have been paid for: it reached the relay, or may have. A job
    /// settled to be sent again never did.
    pub fn may_be_paid(&self) -> bool {
        !matches!(self.state(), "to-resend" | "not-submitted")
    }

    /// The units the relay billed for it, once its outputs were saved.
    pub fn billed_units(&self) -> Option<f64> {
        match &self.latest {
            Entry::Done { billed_units, .. } => *billed_units,
            _ => None,
        }
    }
}

/// A new local id for an intent: time and randomness, unique across processes.
pub fn new_local_id() -> String {
    use rand::{Rng, SeedableRng};
    format!("local-{:x}-{:08x}", now_ms(), rand::rngs::SmallRng::from_os_rng().random::<u32>())
}

/// The journal file.
#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Journal {
    /// The journal under `home` (created when first written).
    pub fn at(home: &Path) -> Self {
        Self { path: home.join("journal.jsonl") }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks, before anything is sent, that the journal can be written: its directory
    /// exists or can be made, and the file opens for appending.
    pub fn check_writable(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        OpenOptions::new().create(true).append(true).open(&self.path).map(drop)
    }

    /// Appends an entry and syncs it to disk before returning. The file is locked for
    /// the write, so concurrent `falq` processes never interleave their lines.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Appends entries in one write and one sync (a group commit: a batch journals a
    /// wave of intents at the cost of one).
    pub fn append_all(&self, entries: &[Entry]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = String::new();
        for entry in entries {
            line.push_str(&serde_json::to_string(entry).map_err(std::io::Error::other)?);
            line.push('\n');
        }
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.lock()?;
        // A torn line left by an earlier crash must not swallow this one.
        if f.metadata()?.len() > 0 && !ends_with_newline(&self.path)? {
            line.insert(0, '\n');
        }
        f.write_all(line.as_bytes())?;
        let synced = f.sync_data();
        let _ = f.unlock();
        synced
    }

    /// Every entry that can be read, and how many lines could not be.
    pub fn entries(&self) -> std::io::Result<(Vec<Entry>, usize)> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
            Err(e) => return Err(e),
        };
        Ok(parse(&bytes))
    }

    /// The entries of the journal's last `max_bytes` (whole lines only): what a run needs
    /// of the recent past (service times) without reading a journal grown by big batches.
    pub fn recent_entries(&self, max_bytes: u64) -> std::io::Result<Vec<Entry>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let start = len.saturating_sub(max_bytes);
        f.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        f.take(max_bytes).read_to_end(&mut bytes)?;
        // A tail that starts mid-line skips that line's rest.
        let whole = if start > 0 { bytes.iter().position(|b| *b == b'\n').map_or(&[][..], |i| &bytes[i + 1..]) } else { &bytes[..] };
        Ok(parse(whole).0)
    }

    /// Every job, in the order they were started, and how many lines could not be read.
    pub fn jobs(&self) -> std::io::Result<(Vec<Job>, usize)> {
        let (entries, unreadable) = self.entries()?;
        Ok((jobs_of(entries), unreadable))
    }
}

/// The entries of journal lines, and how many lines could not be read (blank lines are
/// neither).
fn parse(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut unreadable = 0;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        match std::str::from_utf8(line).ok().and_then(|l| serde_json::from_str::<Entry>(l).ok()) {
            Some(entry) => entries.push(entry),
            None => unreadable += 1,
        }
    }
    (entries, unreadable)
}

/// The jobs of a journal's entries, in the order they were started.
pub fn jobs_of(entries: Vec<Entry>) -> Vec<Job> {
    let mut order: Vec<String> = Vec::new();
    let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
    // Request ids and local ids both lead to the job's key (its first id).
    let mut key_of: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries {
        match &entry {
            Entry::Intent { local_id, .. } => {
                if !key_of.contains_key(local_id) {
                    order.push(local_id.clone());
                    key_of.insert(local_id.clone(), local_id.clone());
                    jobs.insert(local_id.clone(), Job { submitted: entry.clone(), latest: entry });
                }
            }
            Entry::NotSubmitted { local_id, .. } | Entry::Settled { local_id, .. } => {
                if let Some(job) = key_of.get(local_id).and_then(|k| jobs.get_mut(k)) {
                    job.latest = entry;
                }
            }
            Entry::Submitted { local_id, request_id, .. } => {
                let key = local_id.as_ref().and_then(|l| key_of.get(l)).cloned().unwrap_or_else(|| request_id.clone());
                if !jobs.contains_key(&key) {
                    order.push(key.clone());
                }
                key_of.insert(request_id.clone(), key.clone());
                jobs.insert(key, Job { submitted: entry.clone(), latest: entry });
            }
            Entry::BatchStarted { .. } | Entry::BatchEnded { .. } => {}
            other => {
                let id = other.request_id().unwrap_or_default();
                if let Some(job) = key_of.get(id).and_then(|k| jobs.get_mut(k)) {
                    job.latest = entry;
                }
            }
        }
    }
    order.into_iter().filter_map(|k| jobs.remove(&k)).filter(|j| j.state() != "not-submitted").collect()
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(id: &str) -> Entry {
        Entry::Submitted {
            local_id: None,
            endpoint: "fal-ai/flux-1/dev/redux".into(),
            request_id: id.into(),
            base_url: "http://127.0.0.1:1".into(),
            out: "out".into(),
            sim: false,
            batch: None,
            cost: None,
            at: 1,
        }
    }

    #[test]
    fn states_follow_the_latest_entry_and_a_torn_line_is_tolerated() {
        let dir = std::env::temp_dir().join(format!("falq-journal-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let j = Journal::at(&dir);
        assert_eq!(j.jobs().unwrap().0.len(), 0, "no journal yet is no jobs");
        j.append(&submitted("a")).unwrap();
        j.append(&submitted("b")).unwrap();
        j.append(&Entry::Done {
            request_id: "a".into(),
            files: vec!["out/a-0.png".into()],
            seed: None,
            text: vec![],
            billed_units: None,
            at: 2,
        })
        .unwrap();
        // A crash in the middle of a write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(br#"{"event":"done","request_id":"b","fi"#).unwrap();
        drop(f);
        let (jobs, unreadable) = j.jobs().unwrap();
        assert_eq!(unreadable, 1);
        assert_eq!(
            jobs.iter().map(|j| (j.request_id().unwrap_or_default().to_string(), j.state())).collect::<Vec<_>>(),
            vec![("a".to_string(), "done"), ("b".to_string(), "pending")]
        );
        // The next entry starts on a line of its own.
        j.append(&Entry::Cancelled { request_id: "b".into(), at: 3 }).unwrap();
        let (jobs, unreadable) = j.jobs().unwrap();
        assert_eq!((jobs[1].state(), unreadable), ("cancelled", 1));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_damaged_journal_loses_no_readable_job() {
        let dir = std::env::temp_dir().join(format!("falq-journal-damage-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let j = Journal::at(&dir);
        j.append(&submitted("a")).unwrap();
        // A write torn inside a non-ASCII path: invalid UTF-8 in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"event\":\"submitted\",\"out\":\"/tmp/\xe7\xbb").unwrap();
        f.write_all(b"\nnot json at all\n\xff\xfe\n").unwrap();
        drop(f);
        j.append(&submitted("b")).unwrap();
        let (jobs, unreadable) = j.jobs().unwrap();
        assert_eq!(unreadable, 3);
        let ids: Vec<&str> = jobs.iter().filter_map(Job::request_id).collect();
        assert_eq!(ids, ["a", "b"]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_intent_without_an_answer_is_a_job_that_may_exist() {
        let dir = std::env::temp_dir().join(format!("falq-journal-intent-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let j = Journal::at(&dir);
        let intent = |id: &str| Entry::Intent {
            local_id: id.into(),
            endpoint: "e/p".into(),
            base_url: "http://x".into(),
            out: "o".into(),
            sim: false,
            batch: None,
            cost: None,
            at: 1,
        };
        j.append(&intent("l1")).unwrap();
        j.append(&intent("l2")).unwrap();
        let mut answered = submitted("r2");
        if let Entry::Submitted { local_id, .. } = &mut answered {
            *local_id = Some("l2".into());
        }
        j.append(&answered).unwrap();
        j.append(&intent("l3")).unwrap();
        j.append(&Entry::NotSubmitted { local_id: "l3".into(), error: "HTTP 422".into(), at: 2 }).unwrap();
        j.append(&Entry::Expired { request_id: "r2".into(), at: 3 }).unwrap();
        let (jobs, _) = j.jobs().unwrap();
        let states: Vec<(Option<&str>, &str)> = jobs.iter().map(|j| (j.request_id(), j.state())).collect();
        assert_eq!(states, [(None, "maybe-submitted"), (Some("r2"), "expired")], "a refused submit is no job");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_recent_tail_is_read_in_whole_lines() {
        let dir = std::env::temp_dir().join(format!("falq-journal-tail-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let j = Journal::at(&dir);
        assert!(j.recent_entries(1024).unwrap().is_empty(), "no journal yet");
        for i in 0..50 {
            j.append(&submitted(&format!("r{i}"))).unwrap();
        }
        let line = std::fs::read_to_string(j.path()).unwrap().lines().next().unwrap().len() as u64 + 1;
        let tail = j.recent_entries(line * 3 + line / 2).unwrap();
        let ids: Vec<&str> = tail.iter().filter_map(Entry::request_id).collect();
        assert_eq!(ids, ["r47", "r48", "r49"], "the line cut by the tail's start is skipped");
        assert_eq!(j.recent_entries(u64::MAX).unwrap().len(), 50);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn concurrent_appends_never_interleave() {
        let dir = std::env::temp_dir().join(format!("falq-journal-concurrent-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let j = Journal::at(&dir);
                    for i in 0..50 {
                        j.append(&submitted(&format!("t{t}-{i}-{}", "x".repeat(300)))).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let (jobs, unreadable) = Journal::at(&dir).jobs().unwrap();
        assert_eq!((jobs.len(), unreadable), (400, 0));
        std::fs::remove_dir_all(&dir).ok();
    }
}
