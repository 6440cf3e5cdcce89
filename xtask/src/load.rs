//! Stage 1, load: read `specs/**`, Apifox markdown pages and raw YAML, remembering file and line.
//!
//! A markdown page holds one or more fenced ```` ```yaml ```` blocks, each an OpenAPI
//! document. A `.yaml`/`.yml`/`.json` file is either an OpenAPI document we author
//! (top-level `openapi:`) or an overlay (top-level `falq-overlay:`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::{Diagnostic, Errors};

/// Where a YAML document came from: the file, the line its text starts on, and the text.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file, relative to the specs directory's parent.
    pub file: PathBuf,
    /// The 1-based line of the file on which `text` starts.
    pub line: usize,
    /// The YAML text of the document.
    pub text: String,
}

impl Source {
    /// The file line of the first line of the document that contains `needle`
    /// (the document's first line when none does).
    pub fn line_of(&self, needle: &str) -> usize {
        self.text.lines().position(|l| l.contains(needle)).map_or(self.line, |i| self.line + i)
    }

    /// A diagnostic at the first line containing `needle`.
    pub fn diag_at(&self, needle: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.line_of(needle), message)
    }

    /// The file line of the key at `keys` (a path of mapping keys from the document's
    /// top; a number not found as a mapping key stands for a list item and is passed
    /// over), found by following the YAML block structure: each key is looked for below
    /// and further indented than its parent. A key inside a flow mapping (`{a: 1, b: 2}`)
    /// is found on its parent's line. Where a key cannot be found, the deepest one found
    /// is answered.
    pub fn line_of_path(&self, keys: &[&str]) -> usize {
        let lines: Vec<&str> = self.text.lines().collect();
        let indent_of = |l: &str| l.len() - l.trim_start_matches([' ', '-']).len();
        let mut at: Option<usize> = None;
        for key in keys {
            let candidates = [format!("{key}:"), format!("'{key}':"), format!("\"{key}\":")];
            let starts = |text: &str| candidates.iter().any(|c| text.starts_with(c.as_str()));
            if let Some(i) = at {
                let flow = &lines[i][lines[i].find('{').unwrap_or(lines[i].len())..];
                if flow.contains(&format!("{key}:")) || flow.contains(&format!("'{key}':")) {
                    continue;
                }
            }
            let (from, parent_indent) = match at {
                Some(i) => (i + 1, Some(indent_of(lines[i]))),
                None => (0, None),
            };
            let mut found = None;
            for (j, line) in lines.iter().enumerate().skip(from) {
                let text = line.trim_start_matches([' ', '-']);
                if text.is_empty() || text.starts_with('#') {
                    continue;
                }
                let indent = indent_of(line);
                if parent_indent.is_some_and(|p| indent <= p) {
                    break;
                }
                if starts(text) {
                    found = Some(j);
                    break;
                }
            }
            match found {
                Some(j) => at = Some(j),
                // A number is a list item's index, unless a mapping has it as a key ('200':).
                None if key.parse::<usize>().is_ok() => continue,
                None => break,
            }
        }
        at.map_or(self.line, |i| self.line + i)
    }
}

/// What a loaded document is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    /// A page as the relay publishes it: normalized before merging.
    Page,
    /// An OpenAPI document we author (queue endpoints, shared schemas): merged as is.
    Authored,
    /// Corrections applied to the pages' operations by endpoint id.
    Overlay,
}

/// One parsed document.
#[derive(Clone, Debug)]
pub struct Document {
    /// Where it came from.
    pub source: Source,
    /// What it is for.
    pub kind: DocKind,
    /// The document as JSON.
    pub value: Value,
    /// A page we wrote in the relay's dialect (under `specs/falq/`) for an endpoint the
    /// relay publishes no page for: a vendored page of the same endpoint replaces it.
    pub authored_page: bool,
    /// A rendered page (a parameter table, no YAML): an Apifox page of the same endpoint,
    /// which says more, is preferred to it.
    pub rendered: bool,
    /// What loading had to read as the page meant it (a description that is not valid
    /// YAML as written), each with its line: warnings.
    pub notes: Vec<Diagnostic>,
}

/// The directory below `specs/` that holds what we author; everything else is vendored.
pub const AUTHORED_DIR: &str = "falq";

/// Loads every spec below `specs_dir`, in path order. `root` is the directory file
/// names are shown relative to. Files named `README.md` or starting with `_` are skipped.
/// A page (`.md`, or `.txt` as copied from a browser) is an Apifox export (fenced YAML) or
/// a rendered page (a parameter table), told apart by its content.
pub fn load_dir(specs_dir: &Path, root: &Path) -> Result<Vec<Document>, Errors> {
    let mut files = Vec::new();
    collect_files(specs_dir, &mut files).map_err(|e| Diagnostic::new(specs_dir, 0, format!("cannot read the specs directory: {e}")))?;
    files.sort();
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let text = match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                // Pages exported on Windows carry CRLF line ends and sometimes a BOM.
                Ok(t) => t.trim_start_matches('\u{feff}').replace("\r\n", "\n"),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
                    errors.push(
                        Diagnostic::new(&shown, line, format!("this file is not UTF-8 (byte {at})"))
                            .help("export the page again, or convert it to UTF-8"),
                    );
                    continue;
                }
            },
            Err(e) => {
                errors.push(Diagnostic::new(&shown, 0, format!("cannot read file: {e}")));
                continue;
            }
        };
        let authored = path.strip_prefix(specs_dir).is_ok_and(|p| p.starts_with(AUTHORED_DIR));
        match load_file(&shown, &text) {
            Ok(mut d) => {
                for doc in &mut d {
                    doc.authored_page = authored && doc.kind == DocKind::Page;
                }
                docs.append(&mut d)
            }
            Err(Errors(mut e)) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(docs) } else { Err(Errors(errors)) }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('_') || name.starts_with('.') || name == "README.md" {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("md" | "txt" | "yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads one file's documents: the fenced blocks of a markdown page, or a whole YAML/JSON file.
pub fn load_file(file: &Path, text: &str) -> Result<Vec<Document>, Errors> {
    let is_markdown = matches!(file.extension().and_then(|e| e.to_str()), Some("md" | "txt"));
    // A page copied from a relay's rendered docs (a parameter table, no YAML).
    if is_markdown && crate::rendered::is_rendered(text) && !text.contains("```yaml") && !text.contains("```yml") {
        return Ok(vec![crate::rendered::parse(file, text)?]);
    }
    if is_markdown {
        let blocks = fenced_blocks(file, text)?;
        let mut docs = Vec::new();
        let mut errors = Vec::new();
        for source in blocks {
            match parse_document(source) {
                Ok(doc) if doc.kind == DocKind::Page || doc.kind == DocKind::Authored => docs.push(Document { kind: DocKind::Page, ..doc }),
                Ok(doc) => errors.push(
                    Diagnostic::new(&doc.source.file, doc.source.line, "an overlay cannot live in a markdown page")
                        .help("move it into its own .yaml file under specs/"),
                ),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(docs) } else { Err(Errors(errors)) }
    } else {
        let source = Source { file: file.to_path_buf(), line: 1, text: text.to_string() };
        Ok(vec![parse_document(source)?])
    }
}

/// The fenced ```` ```yaml ```` (or `yml`, `openapi`, or `json` holding an `"openapi"` key) blocks of a markdown page.
pub fn fenced_blocks(file: &Path, text: &str) -> Result<Vec<Source>, Diagnostic> {
    struct Open<'a> {
        start: usize,
        fence: String,
        is_spec: bool,
        is_json: bool,
        body: Vec<&'a str>,
    }
    let mut blocks = Vec::new();
    let mut open: Option<Open> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if trimmed.starts_with("```") {
                    let fence: String = trimmed.chars().take_while(|c| *c == '`').collect();
                    let lang = trimmed[fence.len()..].trim().to_ascii_lowercase();
                    // Only spec blocks are read; shell or JSON examples are passed over.
                    let is_spec = matches!(lang.as_str(), "yaml" | "yml" | "openapi");
                    let is_json = lang == "json";
                    open = Some(Open { start: i + 1, fence, is_spec, is_json, body: Vec::new() });
                }
            }
            Some(o) => {
                if trimmed.starts_with(o.fence.as_str()) && trimmed.trim_start_matches('`').trim().is_empty() {
                    // A JSON block is a spec only when it says it is one.
                    if o.is_spec || (o.is_json && o.body.iter().any(|l| l.contains("\"openapi\""))) {
                        blocks.push(Source { file: file.to_path_buf(), line: o.start + 1, text: o.body.join("\n") });
                    }
                    open = None;
                } else {
                    o.body.push(line);
                }
            }
        }
    }
    if let Some(o) = open {
        return Err(
            Diagnostic::new(file, o.start, "this code fence is never closed").help("end the spec block with a line of three backticks")
        );
    }
    if blocks.is_empty() {
        return Err(Diagnostic::new(file, 0, "no fenced ```yaml block with an OpenAPI spec in this page").help(
            "an Apifox page carries its spec in a ```yaml fence under '## OpenAPI Specification'; export the page again or remove the file",
        ));
    }
    Ok(blocks)
}

fn parse_document(mut source: Source) -> Result<Document, Diagnostic> {
    let (yaml, notes) = parse_yaml_as_meant(&mut source)?;
    let value = yaml_to_json(&yaml).map_err(|m| Diagnostic::new(&source.file, source.line, m))?;
    let Some(map) = value.as_object() else {
        return Err(Diagnostic::new(&source.file, source.line, "the document is not a YAML mapping")
            .help("a spec starts with `openapi: 3.0.1`; an overlay with `falq-overlay: 1`"));
    };
    let kind = if map.contains_key("falq-overlay") {
        DocKind::Overlay
    } else if let Some(version) = map.get("openapi") {
        let v = version.as_str().map(str::to_string).unwrap_or_else(|| version.to_string());
        if !(v.starts_with("3.0") || v.starts_with("3.1")) {
            return Err(source
                .diag_at("openapi", format!("unsupported OpenAPI version {v}"))
                .help("falq reads OpenAPI 3.0.x documents (3.1 constructs inside them are accepted)"));
        }
        if source.file.extension().and_then(|e| e.to_str()) == Some("md") { DocKind::Page } else { DocKind::Authored }
    } else {
        return Err(Diagnostic::new(&source.file, source.line, "neither an OpenAPI document nor an overlay")
            .help("a spec starts with `openapi: 3.0.1`; an overlay with `falq-overlay: 1`"));
    };
    Ok(Document { source, kind, value, authored_page: false, rendered: false, notes })
}

/// Parses a document's YAML. Text that YAML rejects only because a plain scalar holds
/// what YAML reads as syntax (a machine-translated `description: Number of images.
/// Range: 1-4` has an unquoted `: `) is read as the text it obviously is: the value is
/// quoted, in `source.text` too, and a warning names its line. Anything else that is not
/// YAML is an error with the file's line.
fn parse_yaml_as_meant(source: &mut Source) -> Result<(serde_yaml::Value, Vec<Diagnostic>), Diagnostic> {
    let mut notes = Vec::new();
    // Each repair quotes one more value; a page cannot need more than it has lines.
    for _ in 0..=source.text.lines().count() {
        let e = match serde_yaml::from_str::<serde_yaml::Value>(&source.text) {
            Ok(yaml) => return Ok((yaml, notes)),
            Err(e) => e,
        };
        let at = e.location().map(|l| (l.line(), l.column()));
        let line = at.map_or(source.line, |(l, _)| source.line + l - 1);
        let refuse = || {
            Diagnostic::new(&source.file, line, format!("this is not valid YAML: {e}"))
                .help("fix the YAML, or export the page from Apifox again")
        };
        let Some((text, owner)) = at.and_then(|(l, c)| quote_plain_scalar(&source.text, l, c)) else {
            return Err(refuse());
        };
        let key_line = source.line + owner - 1;
        let key = source.text.lines().nth(owner - 1).unwrap_or("").trim().split(':').next().unwrap_or("").to_string();
        notes.push(
            Diagnostic::new(
                &source.file,
                key_line,
                format!("`{key}` is not valid YAML as written ({}); read as the text it is", yaml_reason(&e.to_string())),
            )
            .help("quote the value in the page's YAML to silence this"),
        );
        source.text = text;
    }
    Err(Diagnostic::new(&source.file, source.line, "this is not valid YAML").help("fix the YAML, or export the page from Apifox again"))
}

/// What YAML objected to, in a few words.
fn yaml_reason(message: &str) -> &'static str {
    if message.contains("mapping values are not allowed") {
        "an unquoted `: ` inside its text"
    } else if message.contains("cannot start any token") {
        "its text starts with a character YAML reserves"
    } else {
        "text YAML reads as syntax"
    }
}

/// A block mapping entry `key: value` (under a `- ` item too), its key an identifier or quoted.
static ENTRY: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r#"^(\s*(?:- +)?)([A-Za-z_$][\w$.\-]*|'[^']*'|"[^"]*"):[ \t]+(\S.*)$"#).expect("regex"));

/// The text with the plain scalar YAML choked on (at 1-based `line`, `column`) quoted: the
/// entry on that line, or the multi-line plain value it continues. Answers the new text and
/// the 1-based line of the entry, or `None` when the error is not inside a plain value
/// (then the page is really broken, and says so).
fn quote_plain_scalar(text: &str, line: usize, column: usize) -> Option<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let index = line.checked_sub(1).filter(|i| *i < lines.len())?;
    // The entry: the error's line, or the nearest line above that is less indented and
    // opens a plain value this line continues.
    // Where a key starts (after a list item's `- `): what continues its value is indented more.
    let key_column = |c: &regex::Captures| c.get(1).map_or(0, |m| m.len());
    let owner = (0..=index).rev().find(|&i| {
        let Some(c) = ENTRY.captures(lines[i]) else { return false };
        let value = c.get(3).map_or("", |m| m.as_str());
        let plain = !value.starts_with(['\'', '"', '|', '>', '{', '[', '&', '*', '!', '#']);
        if i == index {
            // On its own line, the error must sit in the value, not in the key: YAML has no
            // structure after a key's value on one line, so this is text.
            return plain && column > c.get(3).map_or(usize::MAX, |m| m.start());
        }
        // A value YAML read on over several lines is taken for text only where a page keeps
        // prose: anything else may be structure indented wrongly, which is an error.
        let prose = matches!(c[2].trim_matches(['\'', '"']), "description" | "summary" | "title");
        plain && prose && (i + 1..=index).all(|j| lines[j].trim().is_empty() || indent(lines[j]) > key_column(&c))
    })?;
    let c = ENTRY.captures(lines[owner])?;
    let entry_indent = key_column(&c);
    let mut last = owner;
    while last + 1 < lines.len() && (lines[last + 1].trim().is_empty() || indent(lines[last + 1]) > entry_indent) {
        last += 1;
    }
    while last > owner && lines[last].trim().is_empty() {
        last -= 1;
    }
    // A plain scalar over several lines folds them with single spaces.
    let value: Vec<&str> = std::iter::once(c.get(3).map_or("", |m| m.as_str()))
        .chain(lines[owner + 1..=last].iter().map(|l| l.trim()))
        .filter(|s| !s.is_empty())
        .collect();
    let value = value.join(" ");
    let value = value.trim_end();
    let quoted = format!("{}{}: '{}'", &c[1], &c[2], value.replace('\'', "''"));
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[owner] = quoted;
    // Lines stay where they were, so every later error and note keeps its line number.
    for l in &mut out[owner + 1..=last] {
        l.clear();
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Some((joined, owner + 1))
}

/// YAML to JSON, with scalar keys (`200:`) turned into strings.
pub fn yaml_to_json(v: &serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("the number {n} has no JSON form"))?
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(s) => Value::Array(s.iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("a mapping key must be a scalar, found {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(&t.value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_blocks(page: &str, expected: &[(usize, &str)]) {
        let blocks = fenced_blocks(Path::new("p.md"), page).expect("blocks");
        let got: Vec<(usize, &str)> = blocks.iter().map(|b| (b.line, b.text.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn finds_one_or_many_fences_with_their_lines() {
        check_blocks("# T\n\n```yaml\nopenapi: 3.0.1\n```\n", &[(4, "openapi: 3.0.1")]);
        check_blocks("# T\n```yaml\na: 1\n```\ntext\n```bash\ncurl x\n```\n```yml\nb: 2\nc: 3\n```\n", &[(3, "a: 1"), (10, "b: 2\nc: 3")]);
    }

    #[test]
    fn a_page_without_a_fence_says_so() {
        let err = fenced_blocks(Path::new("p.md"), "# only prose\n").unwrap_err();
        assert!(err.message.contains("no fenced ```yaml block"), "{err}");
    }

    #[test]
    fn an_unclosed_fence_names_its_line() {
        let err = fenced_blocks(Path::new("p.md"), "# t\n\n```yaml\nopenapi: 3.0.1\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("never closed"));
    }

    #[test]
    fn bad_yaml_names_the_file_line() {
        let page = "# t\n\n```yaml\nopenapi: 3.0.1\npaths:\n  /a: [\n```\n";
        let Errors(errs) = load_file(Path::new("specs/p.md"), page).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("not valid YAML"), "{}", errs[0]);
        assert!(errs[0].line >= 6, "line {} should point into the block", errs[0].line);
    }

    #[test]
    fn text_yaml_rejects_as_written_is_read_as_the_text_it_is_with_a_warning() {
        let page = "# t\n\n```yaml\nopenapi: 3.0.1\npaths:\n  /a/b:\n    post:\n      description: Number of images. Range: 1-4. Default: 1\n      summary: `quoted` text\n      parameters:\n        - description: Voice: one of a, b\n          name: v\n      title: a plain value\n        that goes on: here\n      tags: [ok]\n```\n";
        let docs = load_file(Path::new("specs/p.md"), page).unwrap();
        let post = &docs[0].value["paths"]["/a/b"]["post"];
        assert_eq!(post["description"], "Number of images. Range: 1-4. Default: 1");
        assert_eq!(post["summary"], "`quoted` text");
        assert_eq!(post["parameters"][0]["description"], "Voice: one of a, b");
        assert_eq!(post["parameters"][0]["name"], "v");
        assert_eq!(post["title"], "a plain value that goes on: here");
        assert_eq!(post["tags"][0], "ok");
        let lines: Vec<usize> = docs[0].notes.iter().map(|n| n.line).collect();
        assert_eq!(lines, [8, 9, 11, 13], "each note names its line: {:?}", docs[0].notes);
        assert!(docs[0].notes[0].message.contains("`description` is not valid YAML as written"), "{}", docs[0].notes[0]);
        // Lines keep their numbers in the text later stages read.
        assert_eq!(docs[0].source.text.lines().count(), page.lines().count() - 4);
        assert!(docs[0].source.text.lines().nth(4).unwrap().contains("Number of images"));
    }

    #[test]
    fn yaml_broken_beyond_a_plain_value_stays_an_error_with_its_line() {
        for (page, line) in [
            ("# t\n\n```yaml\nopenapi: 3.0.1\npaths:\n  /a: [\n```\n", 6),
            ("# t\n\n```yaml\nopenapi: 3.0.1\npaths:\n  /a:\n    post: {a: 1\n    b: 2\n```\n", 7),
            ("# t\n\n```yaml\nopenapi: 3.0.1\n  indented: wrong\n```\n", 5),
        ] {
            let Errors(errs) = load_file(Path::new("specs/p.md"), page).unwrap_err();
            assert!(errs[0].message.contains("not valid YAML"), "{}", errs[0]);
            assert!(errs[0].line >= line - 1 && errs[0].line <= line + 1, "{page:?}: line {} (about {line})", errs[0].line);
        }
    }

    #[test]
    fn kinds_are_told_apart() {
        let docs = load_file(Path::new("x.yaml"), "openapi: 3.0.1\npaths: {}\n").unwrap();
        assert_eq!(docs[0].kind, DocKind::Authored);
        let docs = load_file(Path::new("x.yaml"), "falq-overlay: 1\n").unwrap();
        assert_eq!(docs[0].kind, DocKind::Overlay);
        let Errors(e) = load_file(Path::new("x.yaml"), "swagger: '2.0'\n").unwrap_err();
        assert!(e[0].message.contains("neither"));
        let Errors(e) = load_file(Path::new("x.yaml"), "openapi: 2.0.0\n").unwrap_err();
        assert!(e[0].message.contains("unsupported OpenAPI version 2.0.0"));
    }

    #[test]
    fn integer_keys_become_strings() {
        let docs = load_file(Path::new("x.yaml"), "openapi: 3.0.1\nresponses:\n  200: {description: ok}\n").unwrap();
        assert!(docs[0].value["responses"]["200"].is_object());
    }
}
