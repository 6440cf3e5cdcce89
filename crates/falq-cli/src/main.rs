//! `falq`: run any fal-compatible endpoint from the shell, with progress, saved outputs
//! and a crash-safe journal; `falq sim` serves the local simulator.

mod batch;
mod cost;
mod inputs;
mod journal;
mod paid;
mod progress;
mod sheet;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand, ValueEnum};
use falq::{ApiKey, CancelOnTimeout, Client, Config, Error as FalqError, Logs, RequestHandle, WaitMode};
use serde_json::{Value, json};

use inputs::Usage;
use journal::{Entry, Journal, now_ms};

/// Exit codes, distinct per kind of failure.
mod exit {
    /// Anything else (a file could not be written, ...).
    pub const OTHER: u8 = 1;
    /// A usage error: bad arguments or input, refused before anything was sent.
    pub const USAGE: u8 = 2;
    /// The job ran and failed.
    pub const JOB_FAILED: u8 = 3;
    /// The relay or the network failed beyond the retry policy.
    pub const NETWORK: u8 = 4;
    /// The deadline passed.
    pub const TIMEOUT: u8 = 5;
    /// The cost cap (`--max-cost`) kept a job or lines from being sent.
    pub const BUDGET: u8 = 6;
    /// Interrupted by Ctrl-C; the job stays pending in the journal.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser, Debug)]
#[command(
    name = "falq",
    version,
    about = "Run fal-compatible image endpoints from the shell: typed inputs, progress, saved outputs, a crash-safe journal."
)]
struct Cli {
    /// The relay's base URL (else FAL_BASE_URL). The key (FAL_KEY or --key-file) is sent there and nowhere else.
    #[arg(long, global = true, env = "FAL_BASE_URL", hide_env_values = true)]
    base_url: Option<String>,
    /// A file holding the key (else FAL_KEY).
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every endpoint with its summary.
    Endpoints,
    /// Run an endpoint: submit, wait with progress, save its outputs. `falq run <endpoint> --help` lists its fields.
    Run(RunArgs),
    /// Run every line of a JSON-lines or CSV file: validated first, journaled, outputs named by line, with
    /// manifest.jsonl and an index.html contact sheet. The same command again finishes the batch.
    Batch(batch::BatchArgs),
    /// Show a job's status.
    Status(JobArgs),
    /// Print a job's result (and save its outputs with --out).
    Result {
        #[command(flatten)]
        job: JobArgs,
        /// Save the outputs into this directory too.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cancel a job.
    Cancel(JobArgs),
    /// List the jobs of the journal and their state.
    Jobs {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Finish every unfinished batch and wait for every pending job of the journal, saving outputs where they
    /// were started to; never submits a job again.
    Resume,
    /// Settle a job of unknown fate (`maybe-submitted` in `falq jobs`): attach the request id found in the
    /// relay's history, send it once more, or forget it.
    Settle(SettleArgs),
    /// Serve the local simulator of the fal queue.
    Sim(SimArgs),
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
struct RunArgs {
    /// The endpoint id, e.g. fal-ai/flux-1/dev/redux.
    endpoint: Option<String>,
    /// Set an input field: FIELD=VALUE, typed by the endpoint's schema (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// The whole input as JSON, or @FILE.
    #[arg(long)]
    input: Option<String>,
    /// Where outputs are saved.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Print the typed output and the saved files as JSON.
    #[arg(long)]
    json: bool,
    /// How to wait.
    #[arg(long, value_enum, default_value_t = WaitArg::Stream)]
    wait: WaitArg,
    /// Submit, record the job, print its request id, and return.
    #[arg(long)]
    no_wait: bool,
    /// Give up after this long (30s, 5m, 1h, 500ms); the job is cancelled.
    #[arg(long, value_parser = parse_positive_duration)]
    timeout: Option<Duration>,
    /// Run against a simulator started in this process (no relay, no key needed).
    #[arg(long)]
    sim: bool,
    /// On Ctrl-C, cancel the remote job too.
    #[arg(long)]
    cancel_on_interrupt: bool,
    /// Call an endpoint id that is close to one of the catalogue's as given, untyped
    /// (any other id without a page runs untyped anyway).
    #[arg(long)]
    untyped: bool,
    #[command(flatten)]
    request: RequestArgs,
    #[command(flatten)]
    cost: CostArgs,
    /// Show this help, or the endpoint's fields when an endpoint is given.
    #[arg(short = 'h', long = "help")]
    help: bool,
}

/// The request options of `run` and `batch`.
#[derive(Args, Debug, Clone, Default)]
struct RequestArgs {
    /// A URL the relay POSTs the result to when the job ends (fal_webhook).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// The job's queue priority.
    #[arg(long, value_enum)]
    priority: Option<PriorityArg>,
    /// Give up if the job has not started within this long (X-Fal-Request-Timeout).
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    start_timeout: Option<Duration>,
    /// A hint of which runner should take the job (X-Fal-Runner-Hint).
    #[arg(long, value_name = "TEXT")]
    runner_hint: Option<String>,
    /// How long the relay keeps the result and its files (X-Fal-Object-Lifecycle-Preference).
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    result_lifetime: Option<Duration>,
}

impl RequestArgs {
    /// The options as command-line arguments again (a batch records them for `resume`).
    fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let secs = |d: &Duration| format!("{}ms", d.as_millis());
        if let Some(w) = &self.webhook {
            out.extend(["--webhook".to_string(), w.clone()]);
        }
        if let Some(p) = self.priority {
            out.extend(["--priority".to_string(), if p == PriorityArg::Low { "low" } else { "normal" }.to_string()]);
        }
        if let Some(d) = &self.start_timeout {
            out.extend(["--start-timeout".to_string(), secs(d)]);
        }
        if let Some(h) = &self.runner_hint {
            out.extend(["--runner-hint".to_string(), h.clone()]);
        }
        if let Some(d) = &self.result_lifetime {
            out.extend(["--result-lifetime".to_string(), secs(d)]);
        }
        out
    }
}

/// What `run` and `batch` may spend, and what a price is.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CostArgs {
    /// Your relay's price list (TOML; default: $FALQ_HOME/prices.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub(crate) prices: Option<PathBuf>,
    /// Never send a job that would take the estimated spend past AMOUNT (in the price list's
    /// currency); a batch counts every job it sent, in any run.
    #[arg(long, value_name = "AMOUNT", value_parser = cost::Money::parse)]
    pub(crate) max_cost: Option<cost::Money>,
    /// Check everything and send nothing: print what would be sent and what it would cost.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

impl CostArgs {
    /// The price list: `--prices`, else `$FALQ_HOME/prices.toml`, else none.
    fn prices(&self) -> Result<cost::Prices, Failure> {
        let prices = self.prices.as_deref().map(absolute);
        Ok(cost::Prices::load(prices.as_deref(), &falq_home()?)?)
    }

    /// Why `--max-cost` cannot be kept for `endpoint` (no price for it), if so.
    fn cannot_cap(&self, prices: &cost::Prices, endpoint: &str) -> Option<Usage> {
        self.max_cost.filter(|_| prices.of(endpoint).is_none()).map(|cap| {
            let table = prices.source.as_ref().map_or_else(
                || "no price table was given (--prices FILE, or $FALQ_HOME/prices.toml)".to_string(),
                |p| format!("{} has no price for it", p.display()),
            );
            Usage(format!("--max-cost {cap}: {endpoint} is unpriced ({table}), so falq cannot keep to a cap; nothing was sent"))
        })
    }

    /// The options again, for a batch's record (`--prices` absolute; never `--dry-run`).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.prices {
            out.extend(["--prices".to_string(), absolute(p).display().to_string()]);
        }
        if let Some(m) = self.max_cost {
            out.extend(["--max-cost".to_string(), m.to_string()]);
        }
        out
    }
}

/// `2 num_images × 0.025 = 0.05 USD`, or `0.04 USD per request`.
fn describe_estimate(prices: &cost::Prices, endpoint: &str, e: &cost::Estimate) -> String {
    match (&e.unit, prices.of(endpoint)) {
        (Some(unit), Some(p)) if p.per_request.0 > 0 => {
            format!("{} + {} {unit} × {} = {}", p.per_request, cost::trim_units(e.units), p.per_unit, prices.show(e.cost))
        }
        (Some(unit), Some(p)) => format!("{} {unit} × {} = {}", cost::trim_units(e.units), p.per_unit, prices.show(e.cost)),
        _ => format!("{} per request", prices.show(e.cost)),
    }
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("how").required(true).args(["request_id", "resend", "forget"]))]
struct SettleArgs {
    /// The job's local id, as `falq jobs` shows it (`local-...`).
    local_id: String,
    /// The request id the relay's history shows for it: `falq resume` then waits for it and saves its outputs.
    #[arg(long)]
    request_id: Option<String>,
    /// The relay has no such job: send it once more (a batch line: the next run of its batch, or `falq resume`).
    #[arg(long)]
    resend: bool,
    /// Drop it: falq does nothing more for it.
    #[arg(long)]
    forget: bool,
}

#[derive(Args, Debug)]
struct JobArgs {
    /// The endpoint id.
    endpoint: String,
    /// The request id.
    request_id: String,
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8089")]
    addr: String,
    /// relay: answers queue.fal.run URLs and takes `Bearer` keys; direct: its own URLs and `Key` keys.
    #[arg(long, value_enum, default_value_t = ModeArg::Relay)]
    mode: ModeArg,
    /// Accept only this key (else any non-empty key).
    #[arg(long)]
    key: Option<String>,
    /// Inject a fault (repeatable), e.g. submit:429@1,3 or status:503%20.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// How long a job waits in the queue before it runs (e.g. 200ms).
    #[arg(long, value_parser = parse_duration)]
    queue_delay: Option<Duration>,
    /// How long a job runs (e.g. 600ms).
    #[arg(long, value_parser = parse_duration)]
    run_time: Option<Duration>,
    /// How many jobs run at once.
    #[arg(long)]
    workers: Option<usize>,
    /// How long results are kept after completion (then 404).
    #[arg(long, value_parser = parse_duration)]
    result_ttl: Option<Duration>,
    /// The concurrent streams one HTTP/2 connection allows, as a relay's server or CDN
    /// sets it (100 to 256 is common); no limit when not given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    h2_max_streams: Option<u32>,
    /// The seed of request ids, default job seeds and fault rates (random when not given),
    /// to replay a session exactly.
    #[arg(long)]
    seed: Option<u64>,
    /// The base URL clients reach the simulator at, when not its own address (a TLS front,
    /// a proxy): the URLs in its answers start with it.
    #[arg(long)]
    public_url: Option<String>,
    /// The largest request body accepted, in bytes (413 beyond, as a relay behind a proxy answers).
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Serve HTTPS with this certificate chain (PEM), as real relays do; HTTP/2 and
    /// HTTP/1.1 are offered by ALPN. Needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// A fresh simulator seed, so two sessions never hand out the same request ids.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WaitArg {
    Poll,
    Stream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PriorityArg {
    Low,
    Normal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Relay,
    Direct,
}

/// `30s`, `5m`, `1h`, `500ms`, or plain seconds (the project's one duration parser).
fn parse_duration(text: &str) -> Result<Duration, String> {
    falq_api::parse_duration(text)
}

/// A duration above zero (`--timeout`).
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() { Err(format!("{text:?} must be more than zero")) } else { Ok(d) }
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let code = if error.downcast_ref::<Usage>().is_some() {
            exit::USAGE
        } else if let Some(f) = error.downcast_ref::<FalqError>() {
            falq_code(f)
        } else {
            exit::OTHER
        };
        Self { code, error }
    }
}

fn falq_code(e: &FalqError) -> u8 {
    match e {
        FalqError::Config { .. } | FalqError::InvalidInput { .. } | FalqError::InvalidId { .. } | FalqError::Encode { .. } => exit::USAGE,
        FalqError::JobFailed { .. } | FalqError::Expired { .. } => exit::JOB_FAILED,
        FalqError::Timeout { .. } | FalqError::NotReady { .. } => exit::TIMEOUT,
        FalqError::Io { .. } => exit::OTHER,
        FalqError::NotSaved { source, .. } => falq_code(source),
        _ => exit::NETWORK,
    }
}

/// What a completed job left on disk: its files, and its output's seed.
#[derive(Clone, Debug, Default)]
struct Saved {
    files: Vec<PathBuf>,
    seed: Option<Value>,
    /// The output's text (a transcript, a description), by where it sits.
    text: Vec<(String, String)>,
    /// The units the relay billed, when it said (`x-fal-billable-units`).
    billed_units: Option<f64>,
}

impl Saved {
    fn of(endpoint: inputs::Target, handle: &RequestHandle, result: &Value, files: Vec<falq::SavedFile>) -> Saved {
        Saved {
            files: files.into_iter().map(|f| f.path).collect(),
            seed: result.get("seed").filter(|s| !s.is_null()).cloned(),
            text: output_texts(endpoint, result),
            billed_units: handle.billable_units(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A client's work is waiting on its relay: one thread serves ten thousand jobs, without
    // the wake-ups between workers a multi-threaded runtime pays on every answer (a quarter
    // to a third of falq's CPU per job, ARCHITECTURE "Decisions"). The simulator serves many
    // clients at once and takes every core.
    let mut builder = match cli.command {
        Command::Sim(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let globals = Globals { base_url: cli.base_url.clone(), key_file: cli.key_file.clone() };
    match cli.command {
        Command::Endpoints => {
            let width = falq_api::ENDPOINTS.iter().map(|e| e.id.len()).max().unwrap_or(0);
            for e in falq_api::ENDPOINTS {
                println!("{:<width$}  {:<8}  {}", e.id, e.output_kind, e.summary);
            }
            Ok(0)
        }
        Command::Run(args) => run(&globals, args).await,
        Command::Batch(args) => batch::batch(&globals, args, None).await,
        Command::Status(job) => {
            let (_, handle) = globals.handle(&job)?;
            let status = handle.status(Logs::Include).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(0)
        }
        Command::Result { job, out } => {
            let (_, handle) = globals.handle(&job)?;
            let result = handle.result_json().await?;
            let files = match out {
                Some(dir) => handle.save_outputs(&result, &absolute(&dir), &job.request_id).await?.into_iter().map(|f| f.path).collect(),
                None => vec![],
            };
            println!("{}", serde_json::to_string_pretty(&json!({"request_id": job.request_id, "output": result, "files": files}))?);
            Ok(0)
        }
        Command::Cancel(job) => {
            let (_, handle) = globals.handle(&job)?;
            let status = handle.cancel().await?;
            println!("{}", serde_json::to_string(&status)?);
            // The journal says what the relay said, nothing more.
            let entry = match status {
                falq::types::CancelStatus::CancellationRequested => {
                    Some(Entry::Cancelled { request_id: job.request_id.clone(), at: now_ms() })
                }
                falq::types::CancelStatus::NotFound => Some(Entry::Expired { request_id: job.request_id.clone(), at: now_ms() }),
                falq::types::CancelStatus::AlreadyCompleted => {
                    eprintln!(
                        "note: {} already completed; save its outputs with `falq resume` or `falq result {} {} --out DIR`",
                        job.request_id, job.endpoint, job.request_id
                    );
                    None
                }
            };
            if let Some(entry) = entry {
                journal()?.append(&entry).ok();
            }
            Ok(0)
        }
        Command::Jobs { json } => jobs(json),
        Command::Resume => resume(&globals).await,
        Command::Settle(args) => settle(args),
        Command::Sim(args) => sim(args).await,
    }
}

struct Globals {
    base_url: Option<String>,
    key_file: Option<PathBuf>,
}

impl Globals {
    fn key(&self) -> Result<Option<ApiKey>, Failure> {
        if let Some(path) = &self.key_file {
            let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("--key-file {}: {e}; nothing was sent", path.display())))?;
            if text.trim().is_empty() {
                return Err(Usage(format!("--key-file {} is empty", path.display())).into());
            }
            return Ok(Some(ApiKey::new(text)));
        }
        Ok(std::env::var("FAL_KEY").ok().filter(|k| !k.trim().is_empty()).map(ApiKey::new))
    }

    /// The config for `base` (else --base-url / FAL_BASE_URL); a relay needs a key.
    fn config(&self, base: Option<&str>) -> Result<Config, Failure> {
        let base = base.map(str::to_string).or_else(|| self.base_url.clone()).filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            Usage(
                "no relay configured: set FAL_BASE_URL (or pass --base-url URL) and FAL_KEY, or try the built-in simulator with --sim"
                    .into(),
            )
        })?;
        let mut config = Config::new(&base)?;
        if let Some(scheme) = std::env::var("FAL_AUTH_SCHEME").ok().filter(|s| !s.trim().is_empty()) {
            config.auth_scheme = scheme.parse()?;
        }
        config.key = self.key()?;
        require_key(&config)?;
        Ok(config)
    }

    /// The handle of a job given on the command line: its ids are checked first.
    fn handle(&self, job: &JobArgs) -> Result<(Client, RequestHandle), Failure> {
        falq::rewrite::validate_endpoint_id(job.endpoint.trim_matches('/'))?;
        falq::rewrite::validate_request_id(&job.request_id)?;
        let client = self.client(None)?;
        let handle = client.handle(&job.endpoint, &job.request_id)?;
        Ok((client, handle))
    }

    fn client(&self, base: Option<&str>) -> Result<Client, Failure> {
        Ok(Client::new(self.config(base)?)?)
    }
}

/// A relay call without a key is refused before it is sent (the relay's 401 would come
/// after a paid submit's input was checked, and says less).
fn require_key(config: &Config) -> Result<(), Failure> {
    if config.key.is_none() {
        return Err(Usage(format!("no key for {}: set FAL_KEY (or pass --key-file FILE); nothing was sent", config.base_url)).into());
    }
    Ok(())
}

fn falq_home() -> Result<PathBuf, Failure> {
    if let Some(h) = std::env::var_os("FALQ_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    dirs::data_dir().map(|d| d.join("falq")).ok_or_else(|| anyhow!("no data directory on this platform: set FALQ_HOME").into())
}

fn journal() -> Result<Journal, Failure> {
    Ok(Journal::at(&falq_home()?))
}

/// A journal that can be written, checked before anything is sent.
fn writable_journal() -> Result<Journal, Failure> {
    let journal = journal()?;
    journal.check_writable().map_err(|e| {
        Usage(format!(
            "the journal {} cannot be written ({e}): set FALQ_HOME to a directory you can write; nothing was sent",
            journal.path().display()
        ))
    })?;
    Ok(journal)
}

/// An output directory that exists (or is made) and takes a file, checked before
/// anything is sent: a paid job must have somewhere to land.
fn writable_dir(dir: &Path) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Usage(format!("--out {} cannot be written ({e}); nothing was sent", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".falq-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
}

async fn run(globals: &Globals, args: RunArgs) -> Result<u8, Failure> {
    let Some(endpoint) = run_target(&args)? else { return Ok(0) };
    let (input, files) = inputs::build_input(endpoint, args.input.as_deref(), &args.sets)?;
    if let Some(note) = endpoint.untyped_note() {
        eprintln!("{note}");
    }
    let options = submit_options(&args.request)?;
    let (prices, estimate, over_cap) = run_cost(&args, endpoint, &input)?;
    if args.cost.dry_run {
        return dry_run(globals, &args, endpoint, &input, &files, &prices, estimate.as_ref(), over_cap);
    }
    if let Some(why) = over_cap {
        return Err(Failure { code: exit::BUDGET, error: anyhow!("{why}; nothing was sent") });
    }
    // Everything local is checked before anything is sent (and paid for).
    let journal = writable_journal()?;
    let out = absolute(&args.out);
    writable_dir(&out)?;
    // The simulator lives as long as this run.
    let (client, base_url, sim_guard) = run_client(globals, &args).await?;
    if !args.sim {
        learn_from_journal(&client, &journal, endpoint.id, &base_url);
    }
    // Write-ahead: a crash from here on leaves a trace of the job, whatever happens.
    let job =
        paid::JobRecord { endpoint: endpoint.id.into(), base_url, out: out.clone(), sim: args.sim, batch: None, cost: estimate.clone() };
    let submitted = paid::submit(&journal, &job, || client.submit_json_with_files(endpoint.id, &input, &files, &options)).await;
    let handle = run_submit(&journal, submitted, &files)?;
    let progress = progress::Progress::new(std::io::stderr().is_terminal());
    progress.line(&format!("submitted {} ({})", handle.request_id, endpoint.id));
    if args.no_wait {
        if args.json {
            println!("{}", json!({"endpoint": endpoint.id, "request_id": handle.request_id}));
        } else {
            println!("{}", handle.request_id);
        }
        return Ok(0);
    }
    let outcome = tokio::select! {
        r = handle.finish_to_dir(&out, &handle.request_id, |u| progress.update(u)) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    drop(sim_guard);
    progress.finish();
    let Some(outcome) = outcome else {
        return Ok(interrupted(&journal, &handle, args.cancel_on_interrupt).await);
    };
    let outcome = outcome.map(|(result, files)| {
        let saved = Saved::of(endpoint, &handle, &result, files);
        (result, saved)
    });
    let files_outcome = outcome.as_ref().map(|(_, saved)| saved);
    let (_, written) = paid::record_outcome(&journal, &handle.request_id, files_outcome).await;
    written.map_err(|e| anyhow!("the journal {} could not record the outcome of {}: {e}", journal.path().display(), handle.request_id))?;
    if let Some(note) = paid::job_note(&handle.request_id, files_outcome) {
        eprintln!("{note}");
    }
    match outcome {
        Ok((result, saved)) => {
            let spent = Spent { estimate: estimate.as_ref(), billed_units: saved.billed_units, prices: &prices, endpoint: endpoint.id };
            print_result(args.json, endpoint, &handle.request_id, &result, &saved.files, &spent)?;
            Ok(0)
        }
        Err(e) => Err(Failure { code: falq_code(&e), error: e.into() }),
    }
}

/// The endpoint `falq run` is for; `None` once help was printed.
fn run_target(args: &RunArgs) -> Result<Option<inputs::Target>, Failure> {
    let Some(endpoint_id) = args.endpoint.as_deref() else {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let run = cmd.find_subcommand_mut("run").map(|c| c.render_help().to_string()).unwrap_or_default();
        if args.help {
            println!("{run}");
            return Ok(None);
        }
        return Err(Usage(format!("which endpoint? `falq endpoints` lists them\n\n{run}")).into());
    };
    let endpoint = inputs::find_endpoint(endpoint_id, args.untyped)?;
    if args.help {
        print!("{}", inputs::endpoint_help(endpoint));
        return Ok(None);
    }
    Ok(Some(endpoint))
}

/// What a run costs: the prices, its estimate, and why `--max-cost` refuses it, if it does.
fn run_cost(
    args: &RunArgs,
    endpoint: inputs::Target,
    input: &Value,
) -> Result<(cost::Prices, Option<cost::Estimate>, Option<String>), Failure> {
    let prices = args.cost.prices()?;
    if let Some(refused) = args.cost.cannot_cap(&prices, endpoint.id) {
        return Err(refused.into());
    }
    let estimate = match prices.estimate(endpoint, input) {
        Ok(e) => e,
        Err(why) if args.cost.max_cost.is_some() => {
            return Err(Usage(format!("{}: {why}, so --max-cost cannot be kept; nothing was sent", endpoint.id)).into());
        }
        Err(why) => {
            eprintln!("note: {}: {why}: the job is unpriced", endpoint.id);
            None
        }
    };
    let over_cap = match (args.cost.max_cost, &estimate) {
        (Some(cap), Some(e)) if e.cost > cap => Some(format!(
            "{} is estimated at {}, above --max-cost {}",
            endpoint.id,
            describe_estimate(&prices, endpoint.id, e),
            prices.show(cap)
        )),
        _ => None,
    };
    Ok((prices, estimate, over_cap))
}

/// The client of a run: the relay, or a simulator of this process (living as long as the
/// guard); the run's wait mode and deadline, cancelling on the deadline.
async fn run_client(globals: &Globals, args: &RunArgs) -> Result<(Client, String, Option<falq_sim::Sim>), Failure> {
    let mut sim_guard = None;
    let mut config = if args.sim {
        let config = falq_sim::SimConfig { seed: fresh_seed(), ..falq_sim::SimConfig::default() };
        let sim = falq_sim::Sim::spawn(config).await.context("cannot start the simulator")?;
        let mut c = Config::new(sim.base_url())?;
        c.key = Some(globals.key()?.unwrap_or_else(|| ApiKey::new("sim")));
        sim_guard = Some(sim);
        c
    } else {
        globals.config(None)?
    };
    config.wait.mode = match args.wait {
        WaitArg::Poll => WaitMode::Poll,
        WaitArg::Stream => WaitMode::Stream,
    };
    config.wait.deadline = args.timeout;
    config.wait.cancel_on_timeout = CancelOnTimeout::Cancel;
    let base_url = config.base_url.to_string();
    Ok((Client::new(config)?, base_url, sim_guard))
}

/// The handle of a run's submit, or the error that says what became of the job.
fn run_submit(journal: &Journal, submitted: paid::Submitted, files: &[falq::files::LocalFile]) -> Result<RequestHandle, Failure> {
    match submitted {
        paid::Submitted::Sent { handle, unrecorded: None, .. } => Ok(handle),
        paid::Submitted::Sent { handle, local_id, unrecorded: Some(e) } => {
            let (id, path) = (&handle.request_id, journal.path().display());
            Err(anyhow!(
                "the job {id} was submitted but the journal {path} could not record its request id (its intent {local_id} is there): {e}"
            )
            .into())
        }
        paid::Submitted::NotJournaled(e) => {
            Err(anyhow!("the journal {} could not be written; nothing was sent: {e}", journal.path().display()).into())
        }
        paid::Submitted::Failed { error, local_id } => {
            if let (FalqError::Http { status: 413, .. }, Some(why)) = (&error, inputs::too_large(files)) {
                return Err(why.into());
            }
            if error.maybe_submitted() {
                eprintln!(
                    "note: the submit may have reached the relay; `falq jobs` lists it as maybe-submitted: {}",
                    paid::settle_hint(&local_id)
                );
            }
            Err(Failure { code: falq_code(&error), error: error.into() })
        }
    }
}

/// A run interrupted while waiting: its job cancelled on the relay when asked to (and
/// journaled so), else left pending for `falq resume`.
async fn interrupted(journal: &Journal, handle: &RequestHandle, cancel: bool) -> u8 {
    if !cancel {
        eprintln!("interrupted: {} is still pending; resume with: falq resume", handle.request_id);
        return exit::INTERRUPTED;
    }
    let cancelled = handle.cancel().await;
    if matches!(cancelled, Ok(falq::types::CancelStatus::CancellationRequested)) {
        journal.append(&Entry::Cancelled { request_id: handle.request_id.clone(), at: now_ms() }).ok();
    }
    match cancelled {
        Ok(falq::types::CancelStatus::CancellationRequested) => eprintln!("interrupted: {} was cancelled on the relay", handle.request_id),
        Ok(other) => {
            eprintln!("interrupted: the relay answered {other} to cancelling {}; it stays in the journal: falq resume", handle.request_id)
        }
        Err(e) => eprintln!("interrupted: cancelling {} failed ({e}); it stays pending: falq resume", handle.request_id),
    }
    exit::INTERRUPTED
}

/// Teaches the client this endpoint's recent service times on this relay, from the
/// journal (submitted to done: an upper bound), so its first poll aims at the completion.
fn learn_from_journal(client: &Client, journal: &Journal, endpoint_id: &str, base: &str) {
    // The last few MB are plenty for 16 samples, and bounded however large batches grew it.
    let Ok(recent) = journal.recent_entries(4 << 20) else { return };
    let jobs = journal::jobs_of(recent);
    let times = jobs.iter().rev().filter_map(|j| match (&j.submitted, &j.latest) {
        (Entry::Submitted { endpoint, base_url, at: start, .. }, Entry::Done { at: end, .. })
            if endpoint == endpoint_id && base_url == base =>
        {
            end.checked_sub(*start).map(Duration::from_millis)
        }
        _ => None,
    });
    for t in times.take(16) {
        client.learn_service_time(endpoint_id, t);
    }
}

/// The request options given on the command line, checked before anything is sent.
fn submit_options(args: &RequestArgs) -> Result<falq::SubmitOptions, Failure> {
    let webhook = match &args.webhook {
        Some(w) => Some(falq::Url::parse(w).map_err(|e| Usage(format!("--webhook {w:?} is not a URL: {e}")))?),
        None => None,
    };
    let options = falq::SubmitOptions {
        webhook,
        priority: args.priority.map(|p| if p == PriorityArg::Low { falq::Priority::Low } else { falq::Priority::Normal }),
        start_timeout: args.start_timeout,
        runner_hint: args.runner_hint.clone(),
        result_lifetime: args.result_lifetime,
    };
    options.headers().map_err(|e| Usage(format!("{e}; nothing was sent")))?;
    Ok(options)
}

/// What a run prints: the saved files, one path a line; for an output without files, its
/// text (a transcript, a description), else the output as JSON. With `--json`, all of it.
fn print_result(
    as_json: bool,
    endpoint: inputs::Target,
    request_id: &str,
    result: &Value,
    files: &[PathBuf],
    spent: &Spent,
) -> anyhow::Result<()> {
    let texts = output_texts(endpoint, result);
    if as_json {
        let text: serde_json::Map<String, Value> = texts.into_iter().map(|(at, t)| (at, Value::String(t))).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"endpoint": endpoint.id, "request_id": request_id, "output": result, "files": files,
                "text": text, "cost": spent.json()}))?
        );
        return Ok(());
    }
    if let Some(line) = spent.line() {
        eprintln!("{line}");
    }
    for f in files {
        println!("{}", f.display());
    }
    if files.is_empty() {
        match texts.as_slice() {
            [] => println!("{}", serde_json::to_string_pretty(result)?),
            [(_, only)] => println!("{only}"),
            many => {
                for (at, text) in many {
                    println!("{}: {text}", at.trim_start_matches('/'));
                }
            }
        }
    }
    Ok(())
}

/// The text of an output, where its endpoint's schema says text is (a transcript, a
/// description), as (JSON pointer, text) with `*` expanded to each index.
fn output_texts(endpoint: inputs::Target, result: &Value) -> Vec<(String, String)> {
    fn at(v: &Value, parts: &[&str], here: String, out: &mut Vec<(String, String)>) {
        match parts.split_first() {
            None => {
                if let Some(t) = v.as_str().filter(|t| !t.trim().is_empty()) {
                    out.push((here, t.to_string()));
                }
            }
            Some((&"*", rest)) => {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    at(item, rest, format!("{here}/{i}"), out);
                }
            }
            Some((key, rest)) => {
                if let Some(next) = v.get(*key) {
                    at(next, rest, format!("{here}/{key}"), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for pointer in endpoint.info.map_or(&[][..], |i| i.output_text) {
        let parts: Vec<&str> = pointer.split('/').skip(1).collect();
        at(result, &parts, String::new(), &mut out);
    }
    out
}

/// What a run spent: its estimate and what the relay billed.
struct Spent<'a> {
    estimate: Option<&'a cost::Estimate>,
    billed_units: Option<f64>,
    prices: &'a cost::Prices,
    endpoint: &'a str,
}

impl Spent<'_> {
    /// `cost: 2 num_images × 0.025 = 0.05 USD (estimated); billed: 2 units`, when priced or billed.
    fn line(&self) -> Option<String> {
        let billed = self.billed_units.map(|b| format!("billed: {} units", cost::trim_units(b)));
        match (self.estimate, billed) {
            (Some(e), b) => Some(format!(
                "cost: {} (estimated){}",
                describe_estimate(self.prices, self.endpoint, e),
                b.map(|b| format!("; {b}")).unwrap_or_default()
            )),
            (None, Some(b)) => Some(format!("cost: unpriced; {b}")),
            (None, None) => None,
        }
    }

    fn json(&self) -> Value {
        json!({
            "estimated": self.estimate.map(|e| e.cost.as_f64()),
            "units": self.estimate.map(|e| e.units),
            "unit": self.estimate.and_then(|e| e.unit.clone()),
            "currency": self.prices.currency,
            "billed_units": self.billed_units,
        })
    }
}

/// `falq run --dry-run`: everything checked, nothing sent or written; what would be sent
/// and what it would cost. Exits as the run would be refused: over the cap, 6.
#[allow(clippy::too_many_arguments)]
fn dry_run(
    globals: &Globals,
    args: &RunArgs,
    endpoint: inputs::Target,
    input: &Value,
    files: &[falq::files::LocalFile],
    prices: &cost::Prices,
    estimate: Option<&cost::Estimate>,
    over_cap: Option<String>,
) -> Result<u8, Failure> {
    let target = if args.sim {
        Ok("the in-process simulator".to_string())
    } else {
        globals.config(None).map(|c| c.base_url.to_string()).map_err(|f| f.error.to_string())
    };
    let price = match estimate {
        Some(e) => describe_estimate(prices, endpoint.id, e),
        None => "unpriced (no price for it in the price table)".to_string(),
    };
    if args.json {
        let json = json!({"dry_run": true, "endpoint": endpoint.id, "to": target.as_ref().ok(), "input": input,
            "local_files": files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            "cost": Spent { estimate, billed_units: None, prices, endpoint: endpoint.id }.json(), "over_cap": over_cap});
        println!("{}", serde_json::to_string_pretty(&json).map_err(anyhow::Error::from)?);
    } else {
        println!("dry run: nothing was sent");
        println!("POST {} to {}", endpoint.id, target.as_deref().unwrap_or("(no relay configured)"));
        println!("{}", serde_json::to_string_pretty(input).map_err(anyhow::Error::from)?);
        for f in files {
            println!("local file {} is sent inside the input", f.path.display());
        }
        println!("cost: {price}");
    }
    if let Err(why) = &target {
        eprintln!("note: a real run would stop here: {why}");
    }
    match over_cap {
        Some(why) => {
            eprintln!("{why}: it would not be sent");
            Ok(exit::BUDGET)
        }
        None => Ok(0),
    }
}

fn jobs(as_json: bool) -> Result<u8, Failure> {
    let journal = journal()?;
    let (jobs, unreadable) = journal.jobs().with_context(|| format!("reading {}", journal.path().display()))?;
    if unreadable > 0 {
        eprintln!("note: skipped {unreadable} unreadable journal line(s) (a write cut short by a crash, or damage)");
    }
    let mut maybe = 0;
    let mut spend = cost::Spend::default();
    for job in jobs.iter().filter(|j| j.may_be_paid()) {
        if let Some(endpoint) = job.submitted.endpoint() {
            spend.add(endpoint, job.submitted.cost(), job.billed_units());
        }
    }
    for job in &jobs {
        let (Entry::Submitted { endpoint, out, at, sim, .. } | Entry::Intent { endpoint, out, at, sim, .. }) = &job.submitted else {
            continue;
        };
        let id = match (&job.submitted, job.request_id()) {
            (_, Some(r)) => r.to_string(),
            (Entry::Intent { local_id, .. }, None) => local_id.clone(),
            _ => String::new(),
        };
        maybe += usize::from(job.state() == "maybe-submitted");
        let estimate = job.submitted.cost();
        if as_json {
            println!(
                "{}",
                json!({"request_id": job.request_id(), "id": id, "endpoint": endpoint, "state": job.state(), "out": out, "submitted_at_ms": at, "sim": sim,
                    "cost": estimate.map(|e| e.cost.as_f64()), "units": estimate.map(|e| e.units), "billed_units": job.billed_units()})
            );
        } else {
            let cost = estimate.map_or_else(|| "-".to_string(), |e| e.cost.to_string());
            println!("{id:<40} {:<16} {endpoint:<40} {cost:>9} {}", job.state(), out.display());
        }
    }
    if !spend.is_empty() {
        // The currency, if the price table names one (a table that cannot be read only loses the label).
        let currency = falq_home().ok().and_then(|h| cost::Prices::load(None, &h).ok()).and_then(|p| p.currency);
        let lines = spend.lines(currency.as_deref());
        if as_json {
            eprintln!("spend (estimated, jobs that reached the relay or may have):\n  {}", lines.join("\n  "));
        } else {
            println!("spend (estimated, jobs that reached the relay or may have):\n  {}", lines.join("\n  "));
        }
    }
    if maybe > 0 {
        eprintln!(
            "note: {maybe} job(s) may have been submitted: falq stopped (a crash, or a lost answer) between sending and hearing back. \
             Find each in the relay's request history, then `falq settle ID --request-id REQUEST_ID` (or --resend, or \
             --forget); nothing is resubmitted by falq on its own."
        );
    }
    Ok(0)
}

/// `falq settle`: what became of a job of unknown fate, journaled like any entry. A batch
/// line's batch is opened again, so its next run (or `falq resume`) takes the line up and
/// its manifest follows.
fn settle(args: SettleArgs) -> Result<u8, Failure> {
    let journal = writable_journal()?;
    let (entries, _) = journal.entries().with_context(|| format!("reading {}", journal.path().display()))?;
    let last_batch_start = |batch: &Path| {
        entries.iter().rev().find_map(|e| match e {
            Entry::BatchStarted { batch: b, base_url, args, .. } if b == batch => {
                Some(Entry::BatchStarted { batch: b.clone(), base_url: base_url.clone(), args: args.clone(), at: now_ms() })
            }
            _ => None,
        })
    };
    let jobs = journal::jobs_of(entries.clone());
    let local_of = |e: &Entry| match e {
        Entry::Intent { local_id, .. } | Entry::Submitted { local_id: Some(local_id), .. } => Some(local_id.clone()),
        _ => None,
    };
    let Some(job) = jobs.iter().find(|j| local_of(&j.submitted).as_deref() == Some(args.local_id.as_str())) else {
        return Err(Usage(format!("no job {:?} in the journal {}: `falq jobs` lists them", args.local_id, journal.path().display())).into());
    };
    if job.state() != "maybe-submitted" {
        return Err(Usage(format!("{} is {}, not of unknown fate: nothing to settle", args.local_id, job.state())).into());
    }
    let Entry::Intent { local_id, endpoint, base_url, out, sim, batch, cost, .. } = job.submitted.clone() else {
        return Err(Usage(format!("{} is no intent", args.local_id)).into());
    };
    let entry = match (&args.request_id, args.resend) {
        (Some(request_id), _) => {
            falq::rewrite::validate_request_id(request_id).map_err(|e| Usage(format!("--request-id: {e}")))?;
            Entry::Submitted {
                local_id: Some(local_id.clone()),
                endpoint: endpoint.clone(),
                request_id: request_id.clone(),
                base_url,
                out,
                sim,
                batch: batch.clone(),
                cost,
                at: now_ms(),
            }
        }
        (None, true) => Entry::Settled { local_id: local_id.clone(), settlement: journal::Settlement::Resend, at: now_ms() },
        (None, false) => Entry::Settled { local_id: local_id.clone(), settlement: journal::Settlement::Forget, at: now_ms() },
    };
    let mut entries_out = vec![entry];
    // A batch that ended with this line of unknown fate is opened again.
    if let Some(b) = &batch
        && !args.forget
        && let Some(started) = last_batch_start(&b.batch)
    {
        entries_out.push(started);
    }
    journal
        .append_all(&entries_out)
        .with_context(|| format!("the journal {} could not record the settlement of {local_id}", journal.path().display()))?;
    let what = match (&args.request_id, args.resend, &batch) {
        (Some(id), _, _) => format!("{local_id} is request {id} of {endpoint}: `falq resume` waits for it and saves its outputs"),
        (None, true, Some(b)) => format!(
            "{local_id} (line {} of the batch {}) will be sent once more by the next run of its batch or `falq resume`",
            b.line,
            b.batch.display()
        ),
        (None, true, None) => format!("{local_id} is marked to send again: run the same `falq run` command to send it"),
        (None, false, _) => format!("{local_id} is forgotten: falq does nothing more for it"),
    };
    eprintln!("{what}");
    Ok(0)
}

/// How many pending jobs `resume` waits for at once.
const RESUME_CONCURRENCY: usize = 8;

async fn resume(globals: &Globals) -> Result<u8, Failure> {
    let journal = journal()?;
    // Unfinished batches first: each runs again as it was started (its pending lines are
    // waited for, its unsent lines sent; no line twice).
    let mut worst = resume_batches(globals, &journal).await?;
    let (jobs, unreadable) = journal.jobs().with_context(|| format!("reading {}", journal.path().display()))?;
    if unreadable > 0 {
        eprintln!("note: skipped {unreadable} unreadable journal line(s)");
    }
    // Jobs of unknown fate are never resubmitted by falq: each is reported until settled.
    for job in jobs.iter().filter(|j| j.state() == "maybe-submitted") {
        let Entry::Intent { local_id, endpoint, out, .. } = &job.submitted else { continue };
        eprintln!("maybe-submitted {local_id} ({endpoint}, outputs to {}): {}", out.display(), batch::settle_hint(local_id));
        worst = worst.max(exit::JOB_FAILED);
    }
    let pending: Vec<_> = jobs.into_iter().filter(|j| j.state() == "pending").collect();
    if pending.is_empty() {
        eprintln!("no pending jobs");
        return Ok(worst);
    }
    let (runnable, skipped) = resumable(globals, pending);
    worst = worst.max(skipped);
    Ok(worst.max(finish_all(&journal, &runnable).await))
}

/// Runs every batch the journal shows started and not ended, as it was started; answers
/// the worst exit code.
async fn resume_batches(globals: &Globals, journal: &Journal) -> Result<u8, Failure> {
    let mut worst = 0u8;
    let (entries, _) = journal.entries().with_context(|| format!("reading {}", journal.path().display()))?;
    let mut batches: Vec<(PathBuf, Vec<String>, String)> = Vec::new();
    for entry in entries {
        match entry {
            Entry::BatchStarted { batch, args, base_url, .. } => {
                batches.retain(|(b, _, _)| *b != batch);
                batches.push((batch, args, base_url));
            }
            Entry::BatchEnded { batch, .. } => batches.retain(|(b, _, _)| *b != batch),
            _ => {}
        }
    }
    for (dir, args, base_url) in batches {
        match batch::BatchArgs::from_recorded(&args) {
            Ok(args) => {
                eprintln!("finishing the batch {}", dir.display());
                match Box::pin(batch::batch(globals, args, Some(&base_url))).await {
                    Ok(code) => worst = worst.max(code),
                    Err(Failure { code, error }) => {
                        eprintln!("the batch {} could not be finished: {error:#}", dir.display());
                        worst = worst.max(code);
                    }
                }
            }
            Err(e) => {
                eprintln!("skipped the batch {}: its journal entry cannot be read ({e})", dir.display());
                worst = worst.max(exit::OTHER);
            }
        }
    }
    Ok(worst)
}

/// A job to resume: its client, its handle, where its outputs go and their stem.
type Resumable = (Client, RequestHandle, PathBuf, String);

/// Each pending job's client and handle, or why its entry cannot be resumed (skipped,
/// reported: the worst exit code of those).
fn resumable(globals: &Globals, pending: Vec<journal::Job>) -> (Vec<Resumable>, u8) {
    let mut worst = 0u8;
    let mut runnable = Vec::new();
    for job in pending {
        let Entry::Submitted { endpoint, request_id, base_url, out, sim, batch, .. } = &job.submitted else { continue };
        // A batch line's files are named by its line.
        let stem = batch.as_ref().map_or_else(|| request_id.clone(), |b| b.stem.clone());
        if *sim {
            eprintln!("{request_id}: ran on an in-process simulator that is gone; cannot resume");
            continue;
        }
        // The relay it was submitted to, unless one is configured now. Resume waits as long
        // as it takes and never cancels: the jobs are paid for.
        let prepared = (|| -> Result<(Client, RequestHandle), Failure> {
            let mut config = globals.config(Some(globals.base_url.as_deref().unwrap_or(base_url)))?;
            config.wait.deadline = None;
            config.wait.cancel_on_timeout = CancelOnTimeout::Leave;
            let client = Client::new(config)?;
            let handle = client.handle(endpoint, request_id)?;
            Ok((client, handle))
        })();
        match prepared {
            Ok((client, handle)) => runnable.push((client, handle, out.clone(), stem)),
            Err(Failure { code, error }) => {
                eprintln!("skipped {request_id:?} ({endpoint}): a journal entry that cannot be resumed: {error:#}");
                worst = worst.max(code);
            }
        }
    }
    (runnable, worst)
}

/// Waits for every job and saves its outputs (a few at once), recording each outcome;
/// answers the worst exit code.
async fn finish_all(journal: &Journal, runnable: &[Resumable]) -> u8 {
    let mut worst = 0u8;
    let progress = progress::Progress::new(std::io::stderr().is_terminal());
    use futures_util::StreamExt;
    let mut running = futures_util::stream::iter(runnable.iter().map(|(_client, handle, out, stem)| {
        progress.line(&format!("resuming {} ({})", handle.request_id, handle.endpoint_id));
        let progress = &progress;
        async move {
            let endpoint = inputs::Target::of_id(&handle.endpoint_id);
            let outcome =
                handle.finish_to_dir(out, stem, |u| progress.update(u)).await.map(|(result, f)| Saved::of(endpoint, handle, &result, f));
            (handle, outcome)
        }
    }))
    .buffer_unordered(RESUME_CONCURRENCY);
    while let Some((handle, outcome)) = running.next().await {
        // A journal that cannot be written leaves the job pending: resume finds it again.
        let _ = paid::record_outcome(journal, &handle.request_id, outcome.as_ref()).await;
        match &outcome {
            Ok(saved) => {
                for f in &saved.files {
                    println!("{}", f.display());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                if let Some(note) = paid::job_note(&handle.request_id, outcome.as_ref()) {
                    eprintln!("{note}");
                }
                worst = worst.max(falq_code(e));
            }
        }
    }
    drop(running);
    progress.finish();
    worst
}

async fn sim(args: SimArgs) -> Result<u8, Failure> {
    let mode = match args.mode {
        ModeArg::Relay => falq_sim::SimMode::Relay,
        ModeArg::Direct => falq_sim::SimMode::Direct,
    };
    let mut config = falq_sim::SimConfig {
        mode,
        api_key: args.key.clone(),
        seed: args.seed.unwrap_or_else(fresh_seed),
        public_url: args.public_url.clone(),
        ..falq_sim::SimConfig::default()
    };
    if let Some(d) = args.queue_delay {
        config.timing.queue_delay = d;
    }
    if let Some(d) = args.run_time {
        config.timing.run_time = d;
    }
    if let Some(w) = args.workers {
        config.timing.workers = w.max(1);
    }
    config.h2_max_streams = args.h2_max_streams;
    if let Some(n) = args.max_body_bytes {
        config.max_body_bytes = n;
    }
    if let Some(d) = args.result_ttl {
        config.timing.result_ttl = d;
    }
    for f in &args.faults {
        let plan = f.parse::<falq_sim::FaultPlan>().map_err(|e| Usage(format!("--fault {f:?}: {e}")))?;
        config.faults.rules.extend(plan.rules);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |flag: &str, p: &PathBuf| std::fs::read(p).map_err(|e| Usage(format!("{flag} {}: {e}", p.display())));
        config.tls = Some(falq_sim::SimTls { cert_pem: read("--tls-cert", cert)?, key_pem: read("--tls-key", key)? });
    }
    let scheme = config.scheme();
    let listener = tokio::net::TcpListener::bind(&args.addr).await.map_err(|e| Usage(format!("--addr {}: {e}", args.addr)))?;
    let addr = listener.local_addr()?;
    // Started (its configuration checked, a TLS certificate read) before it says where it listens.
    let _sim = falq_sim::Sim::start(listener, config).map_err(|e| Usage(format!("the simulator cannot start: {e}")))?;
    println!("listening on {scheme}://{addr}");
    eprintln!(
        "mode {:?}; try: FAL_BASE_URL={scheme}://{addr} FAL_KEY=any falq run fal-ai/flux-1/dev/redux --set image_url=<file>",
        args.mode
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
        assert!(parse_duration("3 fortnights").unwrap_err().contains("unknown unit"));
        assert!(parse_positive_duration("0s").unwrap_err().contains("more than zero"));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        // Too large for a Duration (or a deadline): an error, never a panic.
        assert!(parse_duration("99999999999999999999999s").unwrap_err().contains("too long"));
        assert!(parse_duration("1e400").is_err());
        assert!(parse_duration("3651d").is_err());
    }
}
