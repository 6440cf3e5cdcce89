//! What a batch shows in its output directory, kept current as jobs finish:
//! `manifest.jsonl` (one line per input line: its state, request id, files, seed, error)
//! and `index.html`, a self-contained contact sheet of every output with its line's
//! inputs and seed. Both are rewritten whole (to a temporary file, then renamed, so a
//! reader never sees half of one), at most once a second while the batch runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use falq_api::FileKind;
use serde_json::{Value, json};

use crate::cost::Estimate;

/// How often the files are rewritten while the batch runs.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Strings longer than this (data URLs, long prompts in the details) are shown shortened.
const SHOWN_CHARS: usize = 300;

/// Where one line stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not sent yet.
    Queued,
    /// Sent; waiting for its result.
    Pending,
    /// Its outputs are saved.
    Done,
    /// The job failed (the relay's answer says why).
    Failed,
    /// The relay no longer has it (its result expired before it was saved).
    Expired,
    /// Cancelled on the relay.
    Cancelled,
    /// falq stopped between sending it and hearing back: check the relay before sending again.
    MaybeSubmitted,
    /// Its submit was refused or never sent: the next run sends it.
    NotSubmitted,
    /// Its input is invalid: never sent.
    Invalid,
    /// Of unknown fate, and the user said to drop it (`falq settle --forget`).
    Forgotten,
}

impl State {
    /// The word the manifest uses.
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Pending => "pending",
            State::Done => "done",
            State::Failed => "failed",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
            State::MaybeSubmitted => "maybe-submitted",
            State::NotSubmitted => "not-submitted",
            State::Invalid => "invalid",
            State::Forgotten => "forgotten",
        }
    }

    /// Whether its job reached the relay, or may have: what it costs is spent.
    pub fn was_sent(self) -> bool {
        matches!(
            self,
            State::Pending | State::Done | State::Failed | State::Expired | State::Cancelled | State::MaybeSubmitted | State::Forgotten
        )
    }

    /// Whether falq will do nothing more for the line.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Done | State::Failed | State::Expired | State::Cancelled | State::MaybeSubmitted | State::Invalid | State::Forgotten
        )
    }
}

/// One input line.
#[derive(Clone, Debug)]
pub struct Row {
    /// Its line number in the batch file.
    pub line: u64,
    /// Where it stands.
    pub state: State,
    /// Its request id, once the relay gave one.
    pub request_id: Option<String>,
    /// Its saved files, as paths.
    pub files: Vec<PathBuf>,
    /// Its output's seed.
    pub seed: Option<Value>,
    /// Its output's text (a transcript, a description), by where it sits in the output.
    pub text: Vec<(String, String)>,
    /// What went wrong.
    pub error: Option<String>,
    /// Its input, as shown (long strings shortened).
    pub input: Value,
    /// What its job is estimated to cost (none: unpriced).
    pub cost: Option<Estimate>,
    /// The units the relay billed for it, when it said.
    pub billed_units: Option<f64>,
}

impl Row {
    /// A line in `state` with nothing else known yet.
    pub fn new(line: u64, state: State, input: Value) -> Row {
        Row { line, state, request_id: None, files: vec![], seed: None, text: vec![], error: None, input, cost: None, billed_units: None }
    }
}

/// Every line of a batch, and its output directory.
#[derive(Debug)]
pub struct Board {
    out: PathBuf,
    /// What the sheet is titled with.
    title: String,
    rows: BTreeMap<u64, Row>,
    /// How many rows are in each state (by `State as usize`), kept as rows change: a
    /// batch of 10,000 lines asks after every job.
    counts: [usize; 10],
    dirty: bool,
    last_flush: Option<Instant>,
}

impl Board {
    /// An empty board for `out`.
    pub fn new(out: &Path, title: String) -> Board {
        Board { out: out.to_path_buf(), title, rows: BTreeMap::new(), counts: [0; 10], dirty: true, last_flush: None }
    }

    /// Adds or replaces a line.
    pub fn set(&mut self, row: Row) {
        self.counts[row.state as usize] += 1;
        if let Some(old) = self.rows.insert(row.line, row) {
            self.counts[old.state as usize] -= 1;
        }
        self.dirty = true;
    }

    /// Changes a line in place.
    pub fn update(&mut self, line: u64, change: impl FnOnce(&mut Row)) {
        if let Some(row) = self.rows.get_mut(&line) {
            let before = row.state;
            change(row);
            self.counts[before as usize] -= 1;
            self.counts[row.state as usize] += 1;
            self.dirty = true;
        }
    }

    /// A line.
    pub fn row(&self, line: u64) -> Option<&Row> {
        self.rows.get(&line)
    }

    /// How many lines are in each state.
    pub fn count(&self, state: State) -> usize {
        self.counts[state as usize]
    }

    /// Every line.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// Rewrites the files if something changed and a second passed since the last time.
    pub fn flush_if_due(&mut self) -> std::io::Result<()> {
        if self.dirty && self.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY) {
            self.flush(true)?;
        }
        Ok(())
    }

    /// Rewrites `manifest.jsonl` and `index.html` now; `running` makes the sheet reload
    /// itself every few seconds.
    pub fn flush(&mut self, running: bool) -> std::io::Result<()> {
        write_atomically(&self.out.join("manifest.jsonl"), self.manifest().as_bytes())?;
        write_atomically(&self.out.join("index.html"), self.html(running).as_bytes())?;
        self.dirty = false;
        self.last_flush = Some(Instant::now());
        Ok(())
    }

    /// One JSON object per line, in line order.
    pub fn manifest(&self) -> String {
        let mut out = String::new();
        for r in self.rows.values() {
            let files: Vec<String> = r.files.iter().map(|f| self.shown_path(f)).collect();
            let mut row = json!({
                "line": r.line,
                "state": r.state.name(),
                "request_id": r.request_id,
                "files": files,
                "seed": r.seed,
                "error": r.error,
            });
            if !r.text.is_empty() {
                row["text"] = Value::Object(r.text.iter().map(|(at, t)| (at.clone(), Value::String(t.clone()))).collect());
            }
            if let Some(e) = r.cost.as_ref().filter(|_| r.state.was_sent()) {
                row["cost"] = json!(e.cost.as_f64());
                row["units"] = json!(e.units);
                if let Some(unit) = &e.unit {
                    row["unit"] = json!(unit);
                }
            }
            if let Some(b) = r.billed_units {
                row["billed_units"] = json!(b);
            }
            out.push_str(&row.to_string());
            out.push('\n');
        }
        out
    }

    /// A file as the sheet links it: relative to the output directory when inside it.
    fn shown_path(&self, f: &Path) -> String {
        f.strip_prefix(&self.out).unwrap_or(f).display().to_string()
    }

    /// The contact sheet: self-contained (inline style, no script or font from elsewhere),
    /// every output beside its line's inputs and seed.
    pub fn html(&self, running: bool) -> String {
        let total = self.rows.len();
        let done = self.count(State::Done);
        let mut h = String::with_capacity(1024 + total * 512);
        h.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        if running {
            h.push_str("<meta http-equiv=\"refresh\" content=\"5\">\n");
        }
        let _ = writeln!(h, "<title>{}</title>", escape(&self.title));
        h.push_str(STYLE);
        h.push_str("</head><body>\n");
        let _ = writeln!(
            h,
            "<header><h1>{}</h1><p>{done} of {total} lines done{}</p></header>\n<main>",
            escape(&self.title),
            if running { " · running, this page reloads itself" } else { "" }
        );
        for r in self.rows.values() {
            let _ = write!(h, "<figure class=\"card {}\" id=\"line-{}\">", r.state.name(), r.line);
            // Each file as what it is: a picture, a playable video or sound, else a link.
            for f in &r.files {
                let shown = self.shown_path(f);
                let src = escape(&url_path(&shown));
                match kind_of(f) {
                    Some(FileKind::Image) => {
                        let _ = write!(h, "<a href=\"{src}\"><img src=\"{src}\" loading=\"lazy\" alt=\"line {}\"></a>", r.line);
                    }
                    Some(FileKind::Video) => {
                        let _ = write!(h, "<video src=\"{src}\" controls muted loop></video>");
                    }
                    Some(FileKind::Audio) => {
                        let _ = write!(h, "<audio src=\"{src}\" controls></audio>");
                    }
                    _ => {
                        let _ = write!(h, "<a class=\"file\" href=\"{src}\">{}</a>", escape(&shown));
                    }
                }
            }
            for (at, text) in &r.text {
                let label = if r.text.len() > 1 { format!("<b>{}</b> ", escape(at.trim_start_matches('/'))) } else { String::new() };
                let _ = write!(h, "<p class=\"text\">{label}{}</p>", escape(text));
            }
            if r.files.is_empty() && r.text.is_empty() {
                let _ = write!(h, "<div class=\"empty\">{}</div>", r.state.name());
            }
            h.push_str("<figcaption>");
            let _ = write!(h, "<b>line {}</b> · {}", r.line, r.state.name());
            if let Some(seed) = &r.seed {
                let _ = write!(h, " · seed <code>{}</code>", escape(&seed.to_string()));
            }
            if let Some(prompt) = r.input.get("prompt").and_then(Value::as_str) {
                let _ = write!(h, "<p class=\"prompt\">{}</p>", escape(prompt));
            }
            if let Some(error) = &r.error {
                let _ = write!(h, "<p class=\"error\">{}</p>", escape(error));
            }
            let inputs = serde_json::to_string_pretty(&r.input).unwrap_or_default();
            let _ = write!(h, "<details><summary>inputs</summary><pre>{}</pre></details>", escape(&inputs));
            if let Some(id) = &r.request_id {
                let _ = write!(h, "<p class=\"id\">{}</p>", escape(id));
            }
            h.push_str("</figcaption></figure>\n");
        }
        h.push_str("</main>\n");
        // Tells a browser-driven check how many images loaded (no effect on the page).
        h.push_str(
            "<script>addEventListener('load',()=>{const i=[...document.images];document.body.dataset.images=\
             i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length})</script>\n",
        );
        h.push_str("</body></html>\n");
        h
    }
}

const STYLE: &str = "<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{padding:12px 20px;background:#222;color:#eee}header h1{font-size:18px;margin:0}header p{margin:4px 0 0}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:14px;padding:16px;align-items:start}
.card{margin:0;background:#fff;border-radius:6px;overflow:hidden;box-shadow:0 1px 3px #0002}
.card img,.card video{display:block;width:100%;height:auto;background:#ddd}.card audio{display:block;width:100%}
.file{display:block;padding:10px;background:#e6e6e3;word-break:break-all}.text{margin:0;padding:10px;white-space:pre-wrap;background:#fafaf8}
.empty{height:160px;display:flex;align-items:center;justify-content:center;background:#e6e6e3;color:#777;text-transform:uppercase}
figcaption{padding:8px 10px}.prompt{margin:6px 0}.error{color:#b00020;margin:6px 0}.id{color:#999;font-size:11px;margin:4px 0 0}
.failed,.invalid,.expired{outline:2px solid #b00020}pre{white-space:pre-wrap;word-break:break-all;font-size:11px}
</style>
";

/// Text safe inside HTML, attribute values included.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a URL path: each segment percent-encoded where it must be.
fn url_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What a saved file is, by its name (falq names saved files by what they are).
fn kind_of(f: &Path) -> Option<FileKind> {
    f.to_str().and_then(FileKind::from_name)
}

/// A line's input as the sheet shows it: strings past [`SHOWN_CHARS`] shortened (a data
/// URL is not worth megabytes of HTML).
pub fn shown_input(input: &Value) -> Value {
    match input {
        Value::String(s) if s.chars().count() > SHOWN_CHARS => {
            let head: String = s.chars().take(60).collect();
            Value::String(format!("{head}… ({} bytes)", s.len()))
        }
        Value::Array(items) => Value::Array(items.iter().map(shown_input).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shown_input(v))).collect()),
        other => other.clone(),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, state: State) -> Row {
        Row::new(line, state, json!({}))
    }

    #[test]
    fn the_manifest_has_a_line_per_input_line_in_order() {
        let out = Path::new("/tmp/falq-sheet");
        let mut b = Board::new(out, "t".into());
        b.set(row(9, State::Invalid));
        let mut done = row(2, State::Done);
        done.files = vec![out.join("line-0002-0.png")];
        done.seed = Some(json!(196_619_188_014_358_660u64));
        done.request_id = Some("r2".into());
        b.set(done);
        b.update(9, |r| r.error = Some("num_images: 9 is greater than the maximum of 4".into()));
        let lines: Vec<Value> = b.manifest().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines,
            vec![
                json!({"line": 2, "state": "done", "request_id": "r2", "files": ["line-0002-0.png"], "seed": 196_619_188_014_358_660u64, "error": null}),
                json!({"line": 9, "state": "invalid", "request_id": null, "files": [], "seed": null, "error": "num_images: 9 is greater than the maximum of 4"}),
            ]
        );
    }

    #[test]
    fn the_sheet_escapes_what_lines_say_and_links_files_relatively() {
        let out = Path::new("/tmp/falq-sheet");
        let mut b = Board::new(out, "<batch>".into());
        let mut r = row(1, State::Done);
        r.input = json!({"prompt": "a <script>alert(1)</script> & \"quotes\""});
        r.files = vec![out.join("line 1.png"), out.join("clip.mp4"), out.join("speech.wav"), out.join("scene.glb")];
        b.set(r);
        let mut t = row(3, State::Done);
        t.text = vec![("/text".into(), "said <that>".into())];
        b.set(t);
        let mut f = row(2, State::Failed);
        f.error = Some("<b>bad</b>".into());
        b.set(f);
        let h = b.html(true);
        assert!(!h.contains("<script>alert"), "{h}");
        assert!(h.contains("a &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
        assert!(h.contains("<img src=\"line%201.png\""), "{h}");
        assert!(h.contains("<video src=\"clip.mp4\""));
        assert!(h.contains("<audio src=\"speech.wav\" controls>"), "{h}");
        assert!(h.contains("<a class=\"file\" href=\"scene.glb\">scene.glb</a>"), "{h}");
        assert!(h.contains("<p class=\"text\">said &lt;that&gt;</p>"), "{h}");
        assert!(b.manifest().lines().any(|l| l.contains(r#""text":{"/text":"said <that>"}"#)), "{}", b.manifest());
        assert!(h.contains("&lt;b&gt;bad&lt;/b&gt;"));
        assert!(h.contains("http-equiv=\"refresh\""));
        assert!(h.contains("<title>&lt;batch&gt;</title>"));
        assert!(!b.html(false).contains("http-equiv=\"refresh\""), "a finished batch's sheet stays still");
        assert!(!h.contains("http://") && !h.contains("https://"), "self-contained: nothing fetched from elsewhere");
    }

    #[test]
    fn counts_follow_every_change() {
        let mut b = Board::new(Path::new("/tmp/x"), "t".into());
        for line in 1..=5 {
            b.set(row(line, State::Queued));
        }
        b.set(row(5, State::Invalid));
        b.update(1, |r| r.state = State::Pending);
        b.update(1, |r| r.state = State::Done);
        b.update(2, |r| r.state = State::Failed);
        b.update(9, |r| r.state = State::Done);
        let counted = |s: State| b.rows().filter(|r| r.state == s).count();
        for s in [State::Queued, State::Pending, State::Done, State::Failed, State::Invalid] {
            assert_eq!(b.count(s), counted(s), "{s:?}");
        }
        assert_eq!((b.count(State::Queued), b.count(State::Done), b.count(State::Invalid)), (2, 1, 1));
    }

    #[test]
    fn long_strings_are_shortened_for_show() {
        let data = format!("data:image/png;base64,{}", "A".repeat(10_000));
        let shown = shown_input(&json!({"image_url": data, "prompt": "short", "image_urls": [data]}));
        let s = shown["image_url"].as_str().unwrap();
        assert!(s.len() < 120 && s.ends_with("(10022 bytes)"), "{s}");
        assert_eq!(shown["prompt"], "short");
        assert_eq!(shown["image_urls"][0], shown["image_url"]);
    }

    #[test]
    fn flushing_writes_both_files_whole() {
        let out = std::env::temp_dir().join(format!("falq-sheet-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let mut b = Board::new(&out, "t".into());
        b.set(row(1, State::Queued));
        b.flush(false).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("manifest.jsonl")).unwrap().lines().count(), 1);
        assert!(std::fs::read_to_string(out.join("index.html")).unwrap().ends_with("</html>\n"));
        let leftovers: Vec<_> =
            std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains("tmp")).collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&out).ok();
    }
}
