//! `falq batch`: every line of a JSON-lines or CSV file run on one endpoint, crash-safe.
//!
//! Every line is validated before anything is sent. A line is journaled (an intent,
//! group-committed with its neighbours) before it is submitted, and its request id as
//! soon as the relay answers, so running the same command again (after Ctrl-C, a crash
//! or `kill -9`) finishes the batch: it waits for what is pending, sends what was never
//! sent, and never sends a line twice. A line is known by its number and a hash of its
//! input: a file changed under a started batch is refused before anything is sent.
//! Outputs are saved as each job completes, named by line (`line-0042-0.png`), and
//! `manifest.jsonl` and `index.html` (see `sheet.rs`) are kept current.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, ValueEnum};
use falq::many::{JobLimit, QueuedJobs};
use falq::{ApiKey, Client, Config, Error as FalqError, RequestHandle, WaitMode};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value};

use crate::cost::{Estimate, Money, Prices, Spend};
use crate::inputs::{self, Target, Usage};
use crate::journal::{BatchLine, Entry, Job, Journal, Settlement, jobs_of, now_ms};
use crate::paid::{self, Writer};
use crate::sheet::{Board, Row, State, shown_input};
use crate::{CostArgs, Failure, Globals, RequestArgs, Saved, WaitArg, absolute, exit, writable_dir, writable_journal};

/// Consecutive submits refused (beyond the retry policy) after which no new line is
/// sent: the relay is down or refuses the key, and hammering it helps nobody.
const MAX_SUBMIT_FAILURES: usize = 5;

/// How the batch file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// By the file's extension (`.csv`; else JSON lines), or its first character.
    Auto,
    /// One JSON object per line.
    Jsonl,
    /// A header row of field names, then one row per input.
    Csv,
}

/// `falq batch`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// The endpoint id, e.g. fal-ai/flux-1/schnell.
    pub endpoint: String,
    /// The inputs: JSON lines (one object per line) or CSV with a header row; - reads standard input.
    pub file: String,
    /// A field every line gets unless it gives its own: FIELD=VALUE (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Where outputs, manifest.jsonl and index.html go (default: out/<file name>). The batch is known by it:
    /// the same command again finishes the batch.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Jobs in flight at once (default: adaptive, growing while the relay keeps up and backing off on 429).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: Option<u64>,
    /// Stop before sending anything if any line is invalid (else bad lines are reported and skipped).
    #[arg(long)]
    pub strict: bool,
    /// How FILE is written.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// How to wait.
    #[arg(long, value_enum, default_value_t = WaitArg::Stream)]
    pub wait: WaitArg,
    /// Run against a simulator started in this process (no relay, no key needed).
    #[arg(long)]
    pub sim: bool,
    /// Call an endpoint id that is close to one of the catalogue's as given, untyped.
    #[arg(long)]
    pub untyped: bool,
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub cost: CostArgs,
}

impl BatchArgs {
    /// The arguments again, with the file and the output directory given (for `resume`).
    fn to_args(&self, file: &Path, out: &Path) -> Vec<String> {
        let mut a = vec![self.endpoint.clone(), file.display().to_string(), "--out".into(), out.display().to_string()];
        for s in &self.sets {
            a.extend(["--set".to_string(), s.clone()]);
        }
        if let Some(n) = self.concurrency {
            a.extend(["--concurrency".to_string(), n.to_string()]);
        }
        if self.strict {
            a.push("--strict".into());
        }
        let format = match self.format {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        };
        a.extend(["--format".to_string(), format.to_string()]);
        a.extend(["--wait".to_string(), if self.wait == WaitArg::Poll { "poll" } else { "stream" }.to_string()]);
        if self.sim {
            a.push("--sim".into());
        }
        if self.untyped {
            a.push("--untyped".into());
        }
        a.extend(self.request.to_args());
        a.extend(self.cost.to_args());
        a
    }

    /// Arguments recorded by [`BatchArgs::to_args`], read back.
    pub fn from_recorded(args: &[String]) -> Result<BatchArgs, String> {
        #[derive(Parser, Debug)]
        struct Recorded {
            #[command(flatten)]
            args: BatchArgs,
        }
        Recorded::try_parse_from(std::iter::once("falq-batch".to_string()).chain(args.iter().cloned()))
            .map(|r| r.args)
            .map_err(|e| e.to_string())
    }
}

/// One line of the batch file.
#[derive(Debug)]
struct Line {
    number: u64,
    /// Its input as it will be sent (files still paths), or why it cannot be.
    input: Result<Input, String>,
    /// Its fields as written, for the sheet.
    shown: Value,
}

/// A valid line's input, the hash the journal knows it by, and what it is estimated to cost.
#[derive(Debug)]
struct Input {
    value: Value,
    hash: String,
    estimate: Option<Estimate>,
}

/// A stable 64-bit FNV-1a hash, as hex: the same input hashes the same in every version.
fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The file's text, where relative file paths in it are taken from, and whether it was
/// standard input.
fn read_source(file: &str) -> Result<(String, PathBuf, bool), Failure> {
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| Usage(format!("reading standard input: {e}")))?;
        let cwd = std::env::current_dir().unwrap_or_default();
        return Ok((text, cwd, true));
    }
    let path = absolute(Path::new(file));
    let text = std::fs::read_to_string(&path).map_err(|e| Usage(format!("{file}: {e}; nothing was sent")))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((text, base, false))
}

fn detect(format: Format, file: &str, text: &str) -> Format {
    match format {
        Format::Auto if file.to_ascii_lowercase().ends_with(".csv") => Format::Csv,
        Format::Auto if file.to_ascii_lowercase().ends_with(".jsonl") || file.to_ascii_lowercase().ends_with(".ndjson") => Format::Jsonl,
        Format::Auto => {
            if text.trim_start().starts_with('{') {
                Format::Jsonl
            } else {
                Format::Csv
            }
        }
        f => f,
    }
}

/// Every line of the file, each checked on its own (a bad line does not hide the next).
fn read_lines(e: Target, format: Format, text: &str, common: &Map<String, Value>, base: &Path) -> Result<Vec<Line>, Failure> {
    // A spreadsheet's export often starts with a byte-order mark: it is not part of the first field.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Vec::new();
    let finish = |number: u64, fields: Result<Map<String, Value>, String>| {
        let shown = fields.as_ref().map(|f| shown_input(&Value::Object(f.clone()))).unwrap_or(Value::Null);
        let input = fields.and_then(|f| inputs::batch_line(e, f, common, base)).map(|value| {
            let hash = fnv1a(value.to_string().as_bytes());
            Input { value, hash, estimate: None }
        });
        Line { number, input, shown }
    };
    match format {
        Format::Jsonl | Format::Auto => {
            for (i, raw) in text.lines().enumerate() {
                if raw.trim().is_empty() {
                    continue;
                }
                let fields = match crate::inputs::parse_json(raw) {
                    Ok(Value::Object(m)) => Ok(m),
                    Ok(_) => Err("not a JSON object".to_string()),
                    Err(err) => Err(format!("not JSON: {err}")),
                };
                lines.push(finish(i as u64 + 1, fields));
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
            let headers: Vec<String> = reader
                .headers()
                .map_err(|err| Usage(format!("the CSV header row cannot be read: {err}; nothing was sent")))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            for h in &headers {
                inputs::typed_cell(e, h, "").map_err(|err| Usage(format!("CSV header: {err}; nothing was sent")))?;
            }
            for record in reader.records() {
                let (number, fields) = match record {
                    Ok(r) => {
                        let number = r.position().map_or(0, |p| p.line());
                        let fields = if r.len() != headers.len() {
                            Err(format!("{} cells for {} columns", r.len(), headers.len()))
                        } else {
                            headers.iter().zip(r.iter()).try_fold(Map::new(), |mut m, (h, cell)| {
                                if let Some(v) = inputs::typed_cell(e, h, cell)? {
                                    m.insert(h.clone(), v);
                                }
                                Ok::<_, String>(m)
                            })
                        };
                        (number, fields)
                    }
                    Err(err) => (err.position().map_or(0, |p| p.line()), Err(format!("not CSV: {err}"))),
                };
                lines.push(finish(number, fields));
            }
        }
    }
    Ok(lines)
}

/// What one line needs done.
enum Work {
    /// Send it.
    Submit { line: u64, input: Value, hash: String, estimate: Option<Estimate> },
    /// Wait for its job, sent earlier.
    Wait { line: u64, handle: Box<RequestHandle> },
}

/// What came of it.
struct Ended {
    line: u64,
    /// Whether a submit was refused (for the run of failures that stops sending).
    submit_refused: bool,
    /// The journal could not be written: stop sending.
    journal_failed: bool,
    /// Its submit certainly queued nothing (what it was to cost is not spent).
    not_sent: bool,
}

/// Everything a line's work needs, shared.
struct Ctx {
    endpoint: Target,
    client: Client,
    options: falq::SubmitOptions,
    writer: Writer,
    board: Mutex<Board>,
    out: PathBuf,
    base_url: String,
    sim: bool,
    width: usize,
    queued: QueuedJobs,
}

impl Ctx {
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stem(&self, line: u64) -> String {
        format!("line-{line:0width$}", width = self.width)
    }

    fn batch_line(&self, line: u64, hash: &str) -> BatchLine {
        BatchLine { batch: self.out.clone(), line, hash: hash.to_string(), stem: self.stem(line) }
    }

    async fn run(&self, work: Work) -> Ended {
        let (line, handle) = match work {
            Work::Wait { line, handle } => (line, *handle),
            Work::Submit { line, input, hash, estimate } => match self.submit(line, input, &hash, estimate).await {
                Ok(handle) => (line, handle),
                Err(ended) => return ended,
            },
        };
        let mut ticket = self.queued.submitted();
        let stem = self.stem(line);
        let outcome = handle
            .finish_to_dir(&self.out, &stem, |u| {
                ticket.update(u);
            })
            .await
            .map(|(result, files)| Saved::of(self.endpoint, &handle, &result, files));
        ticket.left();
        let (entry, journaled) = paid::record_outcome(&self.writer, &handle.request_id, outcome.as_ref()).await;
        // The line stands where its journal entry says (no entry: still pending).
        let state = state_of(entry.as_ref());
        let mut board = self.board();
        board.update(line, |row| match &outcome {
            Ok(saved) => {
                row.state = State::Done;
                row.files = saved.files.clone();
                row.seed = saved.seed.clone();
                row.text = saved.text.clone();
                row.billed_units = saved.billed_units;
                row.error = None;
            }
            Err(e) => {
                row.state = state;
                row.error = Some(e.to_string());
            }
        });
        if let Err(e) = &journaled {
            board.update(line, |row| row.error = Some(format!("the journal could not record its outcome: {e}")));
        }
        Ended { line, submit_refused: false, journal_failed: journaled.is_err(), not_sent: false }
    }

    /// Sends the line under the journal's protocol ([`paid::submit`]), its state on the board.
    async fn submit(&self, line: u64, mut input: Value, hash: &str, estimate: Option<Estimate>) -> Result<RequestHandle, Ended> {
        let job = paid::JobRecord {
            endpoint: self.endpoint.id.into(),
            base_url: self.base_url.clone(),
            out: self.out.clone(),
            sim: self.sim,
            batch: Some(self.batch_line(line, hash)),
            cost: estimate.clone(),
        };
        self.board().update(line, |row| {
            row.state = State::Pending;
            row.cost = estimate.clone();
        });
        // Its local files, checked before anything is journaled or sent.
        let files = match inputs::attach_files(self.endpoint, &mut input) {
            Ok(files) => files,
            Err(Usage(message)) => {
                self.board().update(line, |row| {
                    row.state = State::NotSubmitted;
                    row.cost = None;
                    row.error = Some(format!("not sent: {message}"));
                });
                return Err(Ended { line, submit_refused: true, journal_failed: false, not_sent: true });
            }
        };
        let send = || self.client.submit_json_with_files(self.endpoint.id, &input, &files, &self.options);
        match paid::submit(&self.writer, &job, send).await {
            paid::Submitted::Sent { handle, unrecorded, .. } => {
                self.board().update(line, |row| row.request_id = Some(handle.request_id.clone()));
                if let Some(e) = unrecorded {
                    self.board().update(line, |row| {
                        row.error = Some(format!("sent as {}, but the journal could not record it ({e})", handle.request_id));
                    });
                    return Err(Ended { line, submit_refused: false, journal_failed: true, not_sent: false });
                }
                Ok(handle)
            }
            paid::Submitted::NotJournaled(e) => {
                self.board().update(line, |row| {
                    row.state = State::NotSubmitted;
                    row.cost = None;
                    row.error = Some(format!("not sent: the journal cannot be written ({e})"));
                });
                Err(Ended { line, submit_refused: false, journal_failed: true, not_sent: true })
            }
            paid::Submitted::Failed { error: e, local_id } => {
                let maybe = e.maybe_submitted();
                let error = match (&e, inputs::too_large(&files)) {
                    (FalqError::Http { status: 413, .. }, Some(why)) => why.0,
                    _ if maybe => format!("{}; {}", e, settle_hint(&local_id)),
                    _ => e.to_string(),
                };
                self.board().update(line, |row| {
                    row.state = if maybe { State::MaybeSubmitted } else { State::NotSubmitted };
                    if !maybe {
                        row.cost = None;
                    }
                    row.error = Some(error);
                });
                Err(Ended { line, submit_refused: true, journal_failed: false, not_sent: !maybe })
            }
        }
    }
}

pub use crate::paid::settle_hint;

/// The state a job's latest journal entry puts its line in (no entry yet: pending).
fn state_of(latest: Option<&Entry>) -> State {
    match latest {
        Some(Entry::Done { .. }) => State::Done,
        Some(Entry::Failed { .. }) => State::Failed,
        Some(Entry::Cancelled { .. }) => State::Cancelled,
        Some(Entry::Expired { .. }) => State::Expired,
        Some(Entry::Intent { .. }) => State::MaybeSubmitted,
        Some(Entry::Settled { settlement: Settlement::Resend, .. }) => State::NotSubmitted,
        Some(Entry::Settled { settlement: Settlement::Forget, .. }) => State::Forgotten,
        _ => State::Pending,
    }
}

/// What this run does with a line.
enum Todo {
    /// Send it (never sent, refused, or settled to be sent again).
    Send,
    /// Wait for its job, sent earlier.
    Wait(String),
}

/// Where each line stands before this run (from the journal), and what this run does
/// with it: a row for every line, and (line, what to do) in file order; plus how many
/// lines ran on an in-process simulator that is gone (sent again: it cost nothing).
fn plan_lines(lines: &[Line], journaled: &BTreeMap<u64, Job>) -> (Vec<Row>, Vec<(u64, Todo)>, usize) {
    let (mut rows, mut todo, mut resent_sim) = (Vec::new(), Vec::new(), 0);
    for l in lines {
        let mut row = Row::new(l.number, State::Queued, l.shown.clone());
        let input = match &l.input {
            Ok(input) => input,
            Err(why) => {
                row.state = State::Invalid;
                row.error = Some(why.clone());
                rows.push(row);
                continue;
            }
        };
        let mut next = Some(Todo::Send);
        if let Some(job) = journaled.get(&l.number) {
            let state = state_of(Some(&job.latest));
            let on_dead_sim = matches!(&job.submitted, Entry::Submitted { sim: true, .. } | Entry::Intent { sim: true, .. });
            row.request_id = job.request_id().map(str::to_string);
            // What it was estimated at when it was sent (else what it is now).
            row.cost = job.submitted.cost().cloned().or_else(|| input.estimate.clone());
            row.billed_units = job.billed_units();
            match (&job.latest, state) {
                // A job of an in-process simulator that is gone: nothing was paid, send again.
                (_, State::Pending | State::MaybeSubmitted) if on_dead_sim => {
                    resent_sim += 1;
                    row.cost = None;
                }
                (Entry::Done { files, seed, text, .. }, _) => {
                    (row.state, row.files, row.seed, row.text, next) = (State::Done, files.clone(), seed.clone(), text.clone(), None);
                }
                (Entry::Failed { error, .. }, _) => (row.state, row.error, next) = (State::Failed, Some(error.clone()), None),
                (_, State::Pending) => {
                    row.state = State::Pending;
                    next = job.request_id().map(|id| Todo::Wait(id.to_string()));
                }
                (_, State::MaybeSubmitted) => {
                    row.state = State::MaybeSubmitted;
                    let local = match &job.submitted {
                        Entry::Intent { local_id, .. } => local_id.as_str(),
                        _ => "?",
                    };
                    row.error = Some(format!("falq stopped between sending this line and hearing back; {}", settle_hint(local)));
                    next = None;
                }
                // Settled to be sent again: it never reached the relay; sent once more, now.
                (_, State::NotSubmitted) => row.cost = None,
                (_, other) => (row.state, next) = (other, None),
            }
        }
        rows.push(row);
        if let Some(next) = next {
            todo.push((l.number, next));
        }
    }
    (rows, todo, resent_sim)
}

/// Each valid line's estimate; a line whose units cannot be counted is an error under
/// `--max-cost` (the cap could not be kept), else unpriced with a note.
fn price_lines(lines: &mut [Line], endpoint: Target, prices: &Prices, cost: &CostArgs) -> Result<(), Failure> {
    if let Some(refused) = cost.cannot_cap(prices, endpoint.id) {
        return Err(refused.into());
    }
    let mut uncounted = Vec::new();
    for l in lines.iter_mut() {
        let Ok(input) = &mut l.input else { continue };
        match prices.estimate(endpoint, &input.value) {
            Ok(e) => input.estimate = e,
            Err(why) => uncounted.push(format!("line {}: {why}", l.number)),
        }
    }
    if uncounted.is_empty() {
        return Ok(());
    }
    let shown = uncounted.iter().take(10).cloned().collect::<Vec<_>>().join("\n");
    if cost.max_cost.is_some() {
        return Err(Usage(format!(
            "{shown}\n{} line(s) cannot be priced, so --max-cost cannot be kept; nothing was sent",
            uncounted.len()
        ))
        .into());
    }
    eprintln!("{shown}\nnote: {} line(s) cannot be priced: they run unpriced", uncounted.len());
    Ok(())
}

/// What the journal says this batch spent already: every job that may have reached the
/// relay, at its estimate (lines sent again now are not counted twice).
fn spent_before(rows: &[Row]) -> Money {
    rows.iter().filter(|r| r.state.was_sent()).filter_map(|r| r.cost.as_ref()).map(|e| e.cost).sum()
}

/// The estimated spend of the rows whose jobs may have been paid for.
fn spend_of(endpoint: &str, rows: &[&Row]) -> Spend {
    let mut spend = Spend::default();
    for r in rows.iter().filter(|r| r.state.was_sent()) {
        spend.add(endpoint, r.cost.as_ref(), r.billed_units);
    }
    spend
}

/// How many of the lines to send `cap` lets through, in order, after `spent`: sending stops
/// at the first line that would take the spend past the cap. Answers (lines sent, spend).
fn within_cap(costs: impl Iterator<Item = Money>, spent: Money, cap: Option<Money>) -> (usize, Money) {
    let mut total = spent;
    let mut sent = 0;
    for c in costs {
        if cap.is_some_and(|cap| total + c > cap) {
            break;
        }
        total += c;
        sent += 1;
    }
    (sent, total)
}

/// `falq batch --dry-run`: the lines read and checked, the journal read; nothing sent or
/// written. Prints what would be sent and what it would cost.
fn dry_run(endpoint: Target, out: &Path, lines: &[Line], rows: &[Row], todo: &[(u64, Todo)], prices: &Prices, cap: Option<Money>) -> u8 {
    let input_of = |line: u64| lines.iter().find(|l| l.number == line).and_then(|l| l.input.as_ref().ok());
    let to_send: Vec<&Input> = todo.iter().filter(|(_, t)| matches!(t, Todo::Send)).filter_map(|(line, _)| input_of(*line)).collect();
    let waits = todo.iter().filter(|(_, t)| matches!(t, Todo::Wait(_))).count();
    let count = |s: State| rows.iter().filter(|r| r.state == s).count();
    println!("dry run of the batch {}: nothing was sent", out.display());
    println!(
        "{} line(s): {} invalid, {} done before, {waits} pending (waited for, never sent again), {} of unknown fate",
        rows.len(),
        count(State::Invalid),
        count(State::Done),
        count(State::MaybeSubmitted)
    );
    let mut spend = Spend::default();
    for input in &to_send {
        spend.add(endpoint.id, input.estimate.as_ref(), None);
    }
    println!("to send: {} job(s)", to_send.len());
    if !to_send.is_empty() {
        for line in spend.lines(prices.currency.as_deref()) {
            println!("  {line}");
        }
    }
    let before = spent_before(rows);
    if before.0 > 0 {
        println!("spent before (estimated): {}", prices.show(before));
        println!("in all (estimated): {}", prices.show(before + spend.total()));
    }
    let costs = || to_send.iter().map(|i| i.estimate.as_ref().map_or(Money(0), |e| e.cost));
    if let Some(cap) = cap {
        let (sent, total) = within_cap(costs(), before, Some(cap));
        if sent < to_send.len() {
            let all = before + costs().sum::<Money>();
            println!(
                "--max-cost {}: {sent} of the {} job(s) would be sent ({} in all); --max-cost {} would send them all",
                prices.show(cap),
                to_send.len(),
                prices.show(total),
                all
            );
            return exit::BUDGET;
        }
        println!("--max-cost {}: every job would be sent ({} in all)", prices.show(cap), prices.show(total));
    }
    0
}

/// Runs a batch (or finishes one: the same arguments again). `falq resume`, which found
/// the batch in the journal, gives the base URL it was started on (`resumed_on`), used
/// unless one is configured now.
pub async fn batch(globals: &Globals, args: BatchArgs, resumed_on: Option<&str>) -> Result<u8, Failure> {
    let Lines { endpoint, lines, text, stdin, format, prices } = Lines::read(&args)?;
    // Everything local is checked before anything is sent.
    let out = absolute(&args.out.clone().unwrap_or_else(|| {
        let name = if stdin {
            "stdin".to_string()
        } else {
            Path::new(&args.file).file_stem().map_or("batch".into(), |s| s.to_string_lossy().into_owned())
        };
        PathBuf::from("out").join(name)
    }));
    let journal = if args.cost.dry_run { crate::journal()? } else { writable_journal()? };
    let (recorded, journaled) = history(&journal, &out, &lines, &args.file)?;
    let (rows, todo, resent_sim) = plan_lines(&lines, &journaled);
    if args.cost.dry_run {
        return Ok(dry_run(endpoint, &out, &lines, &rows, &todo, &prices, args.cost.max_cost));
    }
    writable_dir(&out)?;
    // Standard input is kept, so `falq resume` can read the lines again.
    let file = if stdin {
        let copy = out.join(if format == Format::Csv { "input.csv" } else { "input.jsonl" });
        std::fs::write(&copy, &text).with_context(|| format!("keeping standard input in {}", copy.display()))?;
        copy
    } else {
        absolute(Path::new(&args.file))
    };
    let (client, base_url, sim_guard) = connect(globals, &args, resumed_on).await?;
    let options = crate::submit_options(&args.request)?;
    // Recorded for `falq resume`, again whenever this run's options differ (a new cap).
    let recorded_args = args.to_args(&file, &out);
    if recorded.as_ref() != Some(&recorded_args) {
        journal
            .append(&Entry::BatchStarted { batch: out.clone(), base_url: base_url.clone(), args: recorded_args, at: now_ms() })
            .with_context(|| format!("the journal {} could not be written; nothing was sent", journal.path().display()))?;
    }
    let title = format!("{} · {}", endpoint.id, file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()));
    let mut board = Board::new(&out, title);
    let spent = spent_before(&rows);
    for row in rows {
        board.set(row);
    }
    let work = queue_work(&client, endpoint, &lines, todo, &mut board);
    if resent_sim > 0 {
        eprintln!(
            "note: {resent_sim} line(s) ran on an earlier in-process simulator that is gone; they are sent again (a simulator costs nothing)"
        );
    }
    if resumed_on.is_some() || !journaled.is_empty() {
        eprintln!("batch {}: {} line(s) done before, {} to finish", out.display(), board.count(State::Done), work.len());
    }
    board.flush(!work.is_empty()).with_context(|| format!("writing the manifest into {}", out.display()))?;
    let ctx = Ctx {
        endpoint,
        client,
        options,
        writer: Writer::start(Journal::at(journal.path().parent().unwrap_or(Path::new(".")))),
        board: Mutex::new(board),
        out,
        base_url,
        sim: args.sim,
        width: lines.iter().map(|l| l.number).max().unwrap_or(1).to_string().len().max(4),
        queued: QueuedJobs::default(),
    };
    let sent = Box::pin(send_all(&ctx, work, &args, spent)).await;
    drop(sim_guard);
    report(&ctx, &journal, &sent, &lines, &prices)
}

/// A batch's lines, read, checked and priced, and what they are for.
struct Lines {
    endpoint: Target,
    lines: Vec<Line>,
    /// The file's text, and whether it came from standard input.
    text: String,
    stdin: bool,
    format: Format,
    prices: Prices,
}

impl Lines {
    /// Reads the lines of `args.file` for the endpoint; reports the invalid ones (and stops
    /// under `--strict`, or when none is valid); prices every line.
    fn read(args: &BatchArgs) -> Result<Lines, Failure> {
        let endpoint = inputs::find_endpoint(&args.endpoint, args.untyped)?;
        let common = inputs::typed_sets(endpoint, &args.sets)?;
        if let Some(note) = endpoint.untyped_note() {
            eprintln!("{note}");
        }
        let (text, base_dir, stdin) = read_source(&args.file)?;
        let format = detect(args.format, &args.file, &text);
        let mut lines = read_lines(endpoint, format, &text, &common, &base_dir)?;
        let invalid: Vec<&Line> = lines.iter().filter(|l| l.input.is_err()).collect();
        for l in invalid.iter().take(50) {
            if let Err(why) = &l.input {
                eprintln!("line {}: {why}", l.number);
            }
        }
        if invalid.len() > 50 {
            eprintln!("... and {} more invalid lines (all of them are in manifest.jsonl)", invalid.len() - 50);
        }
        if args.strict && !invalid.is_empty() {
            return Err(Usage(format!("{} invalid line(s) and --strict: nothing was sent", invalid.len())).into());
        }
        if lines.iter().all(|l| l.input.is_err()) {
            return Err(Usage(format!("{}: no valid line to run; nothing was sent", args.file)).into());
        }
        let prices = args.cost.prices()?;
        price_lines(&mut lines, endpoint, &prices, &args.cost)?;
        Ok(Lines { endpoint, lines, text, stdin, format, prices })
    }
}

/// The arguments a batch was last started with, and its jobs by line.
type History = (Option<Vec<String>>, BTreeMap<u64, Job>);

/// What the journal holds of the batch at `out`: the arguments it was last started with,
/// and its jobs by line (the latest of each line decides). A line sent before must be the
/// same line now.
fn history(journal: &Journal, out: &Path, lines: &[Line], file: &str) -> Result<History, Failure> {
    let (entries, unreadable) = journal.entries().with_context(|| format!("reading {}", journal.path().display()))?;
    if unreadable > 0 {
        eprintln!("note: skipped {unreadable} unreadable journal line(s)");
    }
    let recorded = entries.iter().rev().find_map(|e| match e {
        Entry::BatchStarted { batch, args, .. } if batch == out => Some(args.clone()),
        _ => None,
    });
    let mut journaled: BTreeMap<u64, Job> = BTreeMap::new();
    for job in jobs_of(entries) {
        if let Some(b) = job.submitted.batch_line().filter(|b| b.batch == out) {
            journaled.insert(b.line, job);
        }
    }
    for l in lines {
        let (Ok(input), Some(job)) = (&l.input, journaled.get(&l.number)) else { continue };
        if job.submitted.batch_line().is_some_and(|b| b.hash != input.hash) {
            return Err(Usage(format!(
                "line {} of {file} changed since this batch sent it (as {}): finish the batch with its original file, or start a new one with another --out; nothing was sent",
                l.number,
                job.request_id().unwrap_or("a job that may exist")
            ))
            .into());
        }
    }
    Ok((recorded, journaled))
}

/// The relay (or a simulator of this process, which lives as long as the guard) and its
/// client: a batch waits as long as its jobs take and never cancels them (they are paid for).
async fn connect(
    globals: &Globals,
    args: &BatchArgs,
    resumed_on: Option<&str>,
) -> Result<(Client, String, Option<falq_sim::Sim>), Failure> {
    let mut sim_guard = None;
    let mut config = if args.sim {
        let sim = falq_sim::Sim::spawn(falq_sim::SimConfig { seed: crate::fresh_seed(), ..falq_sim::SimConfig::default() })
            .await
            .context("cannot start the simulator")?;
        let mut c = Config::new(sim.base_url())?;
        c.key = Some(globals.key()?.unwrap_or_else(|| ApiKey::new("sim")));
        sim_guard = Some(sim);
        c
    } else {
        globals.config(globals.base_url.as_deref().or(resumed_on))?
    };
    config.wait.mode = if args.wait == WaitArg::Poll { WaitMode::Poll } else { WaitMode::Stream };
    config.wait.deadline = None;
    config.wait.cancel_on_timeout = falq::CancelOnTimeout::Leave;
    let base_url = config.base_url.to_string();
    Ok((Client::new(config)?, base_url, sim_guard))
}

/// The work of this run: waits first (their jobs are paid for already), then the lines to
/// send, in file order. A job that cannot be followed says so on its row.
fn queue_work(client: &Client, endpoint: Target, lines: &[Line], todo: Vec<(u64, Todo)>, board: &mut Board) -> VecDeque<Work> {
    let mut work: VecDeque<Work> = VecDeque::new();
    let mut sends = Vec::new();
    for (line, what) in todo {
        match what {
            Todo::Wait(request_id) => match client.handle(endpoint.id, &request_id) {
                Ok(h) => work.push_back(Work::Wait { line, handle: Box::new(h) }),
                Err(e) => board.update(line, |row| row.error = Some(format!("cannot be resumed: {e}"))),
            },
            Todo::Send => {
                if let Some(Ok(input)) = lines.iter().find(|l| l.number == line).map(|l| &l.input) {
                    sends.push(Work::Submit {
                        line,
                        input: input.value.clone(),
                        hash: input.hash.clone(),
                        estimate: input.estimate.clone(),
                    });
                }
            }
        }
    }
    work.extend(sends);
    work
}

/// The end of a run: the manifest written, the batch ended in the journal when every line
/// is final, the summary (lines, spend, what stopped it) and the exit code.
fn report(ctx: &Ctx, journal: &Journal, sent: &Sent, lines: &[Line], prices: &Prices) -> Result<u8, Failure> {
    let out = &ctx.out;
    let mut board = ctx.board();
    // Lines never sent are queued still; a batch interrupted leaves its jobs pending.
    let pending = board.count(State::Pending);
    let unsent = board.count(State::Queued) + board.count(State::NotSubmitted);
    let ended = board.rows().all(|r| r.state.is_final());
    board.flush(!ended).with_context(|| format!("writing the manifest into {}", out.display()))?;
    if ended {
        journal.append(&Entry::BatchEnded { batch: out.clone(), at: now_ms() }).ok();
    }
    let (done, failed) =
        (board.count(State::Done), board.count(State::Failed) + board.count(State::Expired) + board.count(State::Cancelled));
    let (invalid, maybe) = (board.count(State::Invalid), board.count(State::MaybeSubmitted));
    // Lines that did not end well, unless the progress bar printed them as they ended.
    for r in board.rows().filter(|r| matches!(r.state, State::Failed | State::Expired | State::Cancelled | State::MaybeSubmitted)) {
        if !sent.progress.printed(r.line) {
            eprintln!("line {}: {}: {}", r.line, r.state.name(), r.error.as_deref().unwrap_or(""));
        }
    }
    eprintln!(
        "batch {}: {done} done, {failed} failed, {invalid} invalid, {maybe} maybe submitted, {pending} pending, {unsent} not sent · {}",
        out.display(),
        out.join("index.html").display()
    );
    let rows: Vec<&Row> = board.rows().collect();
    let capped = report_spend(ctx.endpoint, sent, &rows, lines, prices, unsent);
    if sent.interrupted || pending > 0 || unsent > 0 {
        eprintln!("the batch is not finished: run the same command again (or `falq resume`); no line is ever sent twice");
    }
    Ok(if sent.interrupted {
        exit::INTERRUPTED
    } else if capped && pending == 0 {
        exit::BUDGET
    } else if pending > 0 || unsent > 0 {
        exit::NETWORK
    } else if failed + invalid + maybe > 0 {
        exit::JOB_FAILED
    } else {
        0
    })
}

/// The spend of the batch (every run) and why sending stopped; answers whether the cost
/// cap stopped it (and then says what cap would finish it).
fn report_spend(endpoint: Target, sent: &Sent, rows: &[&Row], lines: &[Line], prices: &Prices, unsent: usize) -> bool {
    let spend = spend_of(endpoint.id, rows);
    if !spend.is_empty() {
        eprintln!("spend of this batch (estimated, every run):");
        for line in spend.lines(prices.currency.as_deref()) {
            eprintln!("  {line}");
        }
    }
    if let Some(why) = &sent.stopped {
        eprintln!("stopped sending new lines: {why}");
    }
    let Some(cap) = sent.capped else { return false };
    let left: Money = rows
        .iter()
        .filter(|r| matches!(r.state, State::Queued | State::NotSubmitted))
        .filter_map(|r| lines.iter().find(|l| l.number == r.line))
        .filter_map(|l| l.input.as_ref().ok().and_then(|i| i.estimate.as_ref()))
        .map(|e| e.cost)
        .sum();
    eprintln!(
        "the cost cap stopped it: {unsent} line(s) not sent; estimated spend {} of --max-cost {}; --max-cost {} would finish them (the same command again sends only the rest)",
        prices.show(spend.total()),
        prices.show(cap),
        spend.total() + left
    );
    true
}

/// How sending went.
struct Sent {
    progress: Progress,
    /// Why no more lines were sent, if sending stopped early.
    stopped: Option<String>,
    /// The cap that stopped it, if the cap did.
    capped: Option<Money>,
    interrupted: bool,
}

/// Runs the work: waits and sends within the job limit, and never sends a line that
/// would take the estimated spend (`spent` before this run, then each line sent, less
/// those certainly not queued) past `--max-cost`. The spend is reserved before a line
/// is started, one line at a time, so no number of jobs in flight can overshoot it.
async fn send_all(ctx: &Ctx, mut work: VecDeque<Work>, args: &BatchArgs, spent: Money) -> Sent {
    let cap = args.cost.max_cost;
    let mut committed = spent;
    let mut reserved: BTreeMap<u64, Money> = BTreeMap::new();
    let mut limit = match args.concurrency {
        Some(n) => JobLimit::fixed(n as usize),
        None => JobLimit::adaptive(JobLimit::MAX),
    };
    let progress = Progress::new(std::io::stderr().is_terminal(), work.len() as u64);
    let mut running = FuturesUnordered::new();
    let mut refused_in_a_row = 0usize;
    let (mut stopped, mut capped): (Option<String>, Option<Money>) = (None, None);
    let mut interrupted = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        while running.len() < limit.limit() {
            let Some(next) = work.front() else { break };
            if let Work::Submit { line, estimate, .. } = next {
                if stopped.is_some() {
                    break;
                }
                let cost = estimate.as_ref().map_or(Money(0), |e| e.cost);
                if let Some(cap) = cap.filter(|cap| committed + cost > *cap) {
                    stopped = Some(format!("the next line ({line}) would take the estimated spend past --max-cost {cap}"));
                    capped = Some(cap);
                    break;
                }
                committed += cost;
                reserved.insert(*line, cost);
            }
            let Some(next) = work.pop_front() else { break };
            running.push(ctx.run(next));
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some(ended) = running.next() => {
                if ended.not_sent
                    && let Some(cost) = reserved.remove(&ended.line)
                {
                    committed = Money(committed.0.saturating_sub(cost.0));
                }
                limit.on_job_end(ctx.queued.get());
                limit.observe_call_limit(ctx.client.in_flight_limit());
                refused_in_a_row = if ended.submit_refused { refused_in_a_row + 1 } else { 0 };
                if ended.journal_failed {
                    stopped = Some("the journal cannot be written".into());
                } else if refused_in_a_row >= MAX_SUBMIT_FAILURES && stopped.is_none() {
                    stopped = Some(format!("{refused_in_a_row} submits in a row were refused"));
                }
                let board = ctx.board();
                if let Some(row) = board.row(ended.line) {
                    progress.ended(row);
                }
            }
            _ = tick.tick() => {}
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
        }
        let mut board = ctx.board();
        progress.show(&board, running.len(), work.len(), limit.limit());
        if let Err(e) = board.flush_if_due() {
            eprintln!("warning: the manifest could not be written: {e}");
        }
    }
    drop(running);
    progress.finish();
    Sent { progress, stopped, capped, interrupted }
}

/// The batch's progress on stderr: a bar on a terminal (done, failed, in flight, queued,
/// ETA), a plain line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Mutex<Option<Instant>>,
    total: u64,
    /// Lines the bar printed as they ended (not printed again in the summary).
    printed: Mutex<std::collections::HashSet<u64>>,
}

impl Progress {
    fn new(terminal: bool, total: u64) -> Progress {
        let bar = terminal.then(|| {
            let b = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} · ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        Progress { bar, started: Instant::now(), last_line: Mutex::new(None), total, printed: Mutex::default() }
    }

    fn ended(&self, row: &Row) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if !matches!(row.state, State::Done) {
                b.println(format!("line {}: {}: {}", row.line, row.state.name(), row.error.as_deref().unwrap_or("")));
                self.printed.lock().unwrap_or_else(|p| p.into_inner()).insert(row.line);
            }
        }
    }

    /// Whether the bar printed `line` as it ended.
    fn printed(&self, line: u64) -> bool {
        self.printed.lock().unwrap_or_else(|p| p.into_inner()).contains(&line)
    }

    fn show(&self, board: &Board, in_flight: usize, queued: usize, limit: usize) {
        let (done, failed) =
            (board.count(State::Done), board.count(State::Failed) + board.count(State::Expired) + board.count(State::Cancelled));
        let summary = format!("done {done} · failed {failed} · in flight {in_flight} (limit {limit}) · queued {queued}");
        match &self.bar {
            Some(b) => b.set_message(summary),
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                    *last = Some(Instant::now());
                    let finished = (self.total as usize).saturating_sub(in_flight + queued).max(1);
                    let rate = finished as f64 / self.started.elapsed().as_secs_f64().max(0.001);
                    let eta = (in_flight + queued) as f64 / rate;
                    eprintln!("{summary} · ETA {eta:.0}s");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A line the bar printed as it ended is not printed again in the summary; without a
    /// bar (not a terminal) nothing was printed, so the summary lists every such line.
    #[test]
    fn a_failed_line_is_reported_once() {
        let row = |line, state| Row { error: Some("boom".into()), ..Row::new(line, state, json!({})) };
        let bar = Progress::new(true, 3);
        bar.ended(&row(1, State::Failed));
        bar.ended(&row(2, State::Done));
        assert!(bar.printed(1));
        assert!(!bar.printed(2), "a line done is not printed");
        assert!(!bar.printed(3), "a line that did not end in this run is left to the summary");
        let plain = Progress::new(false, 3);
        plain.ended(&row(1, State::Failed));
        assert!(!plain.printed(1));
    }

    fn schnell() -> Target {
        inputs::find_endpoint("fal-ai/flux-1/schnell", false).unwrap()
    }

    fn numbers_and_errors(lines: &[Line]) -> Vec<(u64, Option<String>)> {
        lines.iter().map(|l| (l.number, l.input.as_ref().err().cloned())).collect()
    }

    #[test]
    fn json_lines_are_checked_one_by_one_with_their_numbers() {
        let text = "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"num_images\": 9}\nnot json\n[1]\n{\"prompt\": \"c\", \"colour\": 1}\n{}\n";
        let lines = read_lines(schnell(), Format::Jsonl, text, &Map::new(), Path::new(".")).unwrap_or_else(|_| panic!());
        let got = numbers_and_errors(&lines);
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 3, 4, 5, 6, 7], "blank lines are skipped, numbers kept");
        assert_eq!(got[0].1, None);
        assert!(got[1].1.as_deref().unwrap().contains("num_images"), "{got:?}");
        assert!(got[2].1.as_deref().unwrap().starts_with("not JSON"));
        assert_eq!(got[3].1.as_deref(), Some("not a JSON object"));
        assert!(got[4].1.as_deref().unwrap().contains("unknown field \"colour\""));
        assert!(got[5].1.as_deref().unwrap().contains("missing required field(s) prompt"));
    }

    #[test]
    fn csv_rows_are_typed_by_the_schema_and_common_fields_fill_the_gaps() {
        let text = "prompt,num_images,seed\n\"a, with comma\",2,\n\"multi\nline\",,7\nb,two,\n";
        let common =
            inputs::typed_sets(schnell(), &["num_images=3".to_string(), "output_format=png".to_string()]).unwrap_or_else(|_| panic!());
        let lines = read_lines(schnell(), Format::Csv, text, &common, Path::new(".")).unwrap_or_else(|_| panic!());
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].number, 2);
        assert_eq!(lines[0].input.as_ref().unwrap().value, json!({"prompt": "a, with comma", "num_images": 2, "output_format": "png"}));
        assert_eq!(lines[1].number, 3, "a record is numbered by the line it starts on");
        assert_eq!(
            lines[1].input.as_ref().unwrap().value,
            json!({"prompt": "multi\nline", "seed": 7, "num_images": 3, "output_format": "png"})
        );
        assert_eq!(lines[2].number, 5);
        assert!(lines[2].input.as_ref().unwrap_err().contains("\"two\" is not an integer"));
    }

    #[test]
    fn a_spreadsheets_byte_order_mark_and_crlf_lines_are_read() {
        let text = "\u{feff}prompt,seed\r\na,1\r\nb,2\r\n";
        let lines = read_lines(schnell(), Format::Csv, text, &Map::new(), Path::new(".")).unwrap_or_else(|_| panic!());
        assert_eq!(lines[1].input.as_ref().unwrap().value, json!({"prompt": "b", "seed": 2}));
        let jsonl = "{\"prompt\": \"a\"}\r\n{\"prompt\": \"b\"}\r\n";
        let lines = read_lines(schnell(), Format::Jsonl, jsonl, &Map::new(), Path::new(".")).unwrap_or_else(|_| panic!());
        assert!(lines.iter().all(|l| l.input.is_ok()), "{lines:?}");
    }

    #[test]
    fn an_unknown_csv_column_stops_the_batch_before_it_starts() {
        let e = read_lines(schnell(), Format::Csv, "prompt,colour\na,red\n", &Map::new(), Path::new(".")).err().unwrap();
        assert!(e.error.to_string().contains("unknown column \"colour\""), "{}", e.error);
    }

    #[test]
    fn formats_are_detected_by_name_then_content() {
        assert_eq!(detect(Format::Auto, "a.CSV", "{"), Format::Csv);
        assert_eq!(detect(Format::Auto, "a.jsonl", "prompt"), Format::Jsonl);
        assert_eq!(detect(Format::Auto, "-", "  {\"prompt\": 1}"), Format::Jsonl);
        assert_eq!(detect(Format::Auto, "-", "prompt\na"), Format::Csv);
        assert_eq!(detect(Format::Csv, "a.jsonl", "{"), Format::Csv);
    }

    #[test]
    fn hashes_are_stable_across_versions() {
        // FNV-1a's published test vectors: a journal written today is read the same tomorrow.
        assert_eq!(fnv1a(b""), "cbf29ce484222325");
        assert_eq!(fnv1a(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn recorded_arguments_read_back_the_same() {
        let args = BatchArgs::from_recorded(&[
            "fal-ai/flux-1/schnell".into(),
            "in.csv".into(),
            "--set".into(),
            "num_images=2".into(),
            "--concurrency".into(),
            "3".into(),
            "--priority".into(),
            "low".into(),
            "--start-timeout".into(),
            "30s".into(),
            "--max-cost".into(),
            "2.5".into(),
            "--prices".into(),
            "/abs/prices.toml".into(),
        ])
        .unwrap();
        let again = BatchArgs::from_recorded(&args.to_args(Path::new("/abs/in.csv"), Path::new("/abs/out"))).unwrap();
        assert_eq!(again.file, "/abs/in.csv");
        assert_eq!(again.out.as_deref(), Some(Path::new("/abs/out")));
        assert_eq!((again.sets, again.concurrency), (vec!["num_images=2".to_string()], Some(3)));
        assert_eq!(again.request.start_timeout, Some(Duration::from_secs(30)));
        assert_eq!(again.request.priority, args.request.priority);
        assert_eq!(again.cost.max_cost, Some(Money(2_500_000)), "a batch resumed keeps its cap");
        assert_eq!(again.cost.prices.as_deref(), Some(Path::new("/abs/prices.toml")));
        assert!(BatchArgs::from_recorded(&["x".into()]).is_err());
    }
}
