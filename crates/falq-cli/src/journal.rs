//! The journal: every submitted request id, written and synced before `run` waits,
//! so a job survives Ctrl-C, a crash or `kill -9`. One JSON object per line; a torn
//! last line (a write cut short) is skipped, never fatal.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What happened to a job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// The relay accepted the job.
    Submitted {
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
        /// Unix time in milliseconds.
        at: u64,
    },
    /// Its outputs were saved.
    Done {
        /// The request id.
        request_id: String,
        /// The saved files.
        files: Vec<PathBuf>,
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
    /// It was cancelled.
    Cancelled {
        /// The request id.
        request_id: String,
        /// Unix time in milliseconds.
        at: u64,
    },
}

impl Entry {
    fn request_id(&self) -> &str {
        match self {
            Entry::Submitted { request_id, .. }
            | Entry::Done { request_id, .. }
            | Entry::Failed { request_id, .. }
            | Entry::Cancelled { request_id, .. } => request_id,
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
    /// `pending`, `done`, `failed` or `cancelled`.
    pub fn state(&self) -> &'static str {
        match self.latest {
            Entry::Submitted { .. } => "pending",
            Entry::Done { .. } => "done",
            Entry::Failed { .. } => "failed",
            Entry::Cancelled { .. } => "cancelled",
        }
    }
}

/// The journal file.
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

    /// Appends an entry and syncs it to disk before returning.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        // A torn line left by an earlier crash must not swallow this one.
        if f.metadata()?.len() > 0 && !ends_with_newline(&self.path)? {
            f.write_all(b"\n")?;
        }
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }

    /// Every job, in submission order, and how many lines could not be read.
    pub fn jobs(&self) -> std::io::Result<(Vec<Job>, usize)> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
            Err(e) => return Err(e),
        };
        let mut order = Vec::new();
        let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
        let mut unreadable = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(entry) = serde_json::from_str::<Entry>(line) else {
                unreadable += 1;
                continue;
            };
            let id = entry.request_id().to_string();
            match &entry {
                Entry::Submitted { .. } => {
                    if !jobs.contains_key(&id) {
                        order.push(id.clone());
                    }
                    jobs.insert(id, Job { submitted: entry.clone(), latest: entry });
                }
                _ => {
                    if let Some(job) = jobs.get_mut(&id) {
                        job.latest = entry;
                    }
                }
            }
        }
        Ok((order.into_iter().filter_map(|id| jobs.remove(&id)).collect(), unreadable))
    }
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
            endpoint: "fal-ai/flux-1/dev/redux".into(),
            request_id: id.into(),
            base_url: "http://127.0.0.1:1".into(),
            out: "out".into(),
            sim: false,
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
        j.append(&Entry::Done { request_id: "a".into(), files: vec!["out/a-0.png".into()], at: 2 }).unwrap();
        // A crash in the middle of a write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(br#"{"event":"done","request_id":"b","fi"#).unwrap();
        drop(f);
        let (jobs, unreadable) = j.jobs().unwrap();
        assert_eq!(unreadable, 1);
        assert_eq!(
            jobs.iter().map(|j| (j.submitted.request_id().to_string(), j.state())).collect::<Vec<_>>(),
            vec![("a".to_string(), "done"), ("b".to_string(), "pending")]
        );
        // The next entry starts on a line of its own.
        j.append(&Entry::Cancelled { request_id: "b".into(), at: 3 }).unwrap();
        let (jobs, unreadable) = j.jobs().unwrap();
        assert_eq!((jobs[1].state(), unreadable), ("cancelled", 1));
        std::fs::remove_dir_all(&dir).ok();
    }
}
