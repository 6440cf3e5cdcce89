//! Building an endpoint's input from the shell: `--input`, `--set key=value` typed by the
//! endpoint's schema, local files for `*_url` fields, and the `run <endpoint> --help` text.

use std::path::Path;

use falq::files::LocalFile;
use falq_api::{EndpointInfo, FieldInfo};
use serde_json::{Map, Value};

/// A usage error: bad input, refused before anything is sent.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage<T>(msg: impl Into<String>) -> Result<T, Usage> {
    Err(Usage(msg.into()))
}

/// The endpoint a command runs: one of the catalogue (typed: its fields typed, checked
/// and validated before sending), or any other endpoint id (untyped: the input is sent as
/// given, the output is any JSON object, every file in it saved).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The endpoint id.
    pub id: &'static str,
    /// Its catalogue entry, when it has one.
    pub info: Option<&'static EndpointInfo>,
}

impl Target {
    /// The target of a journaled endpoint id: typed when it is in the catalogue.
    pub fn of_id(id: &str) -> Target {
        match falq_api::endpoint(id) {
            Some(e) => Target { id: e.id, info: Some(e) },
            None => Target { id: Box::leak(id.to_string().into_boxed_str()), info: None },
        }
    }

    /// The one-line note an untyped endpoint gets.
    pub fn untyped_note(&self) -> Option<String> {
        self.info.is_none().then(|| {
            format!(
                "note: {} has no page in specs/: it runs untyped: its input is sent as given, unchecked, and every file of its output is saved",
                self.id
            )
        })
    }
}

/// The catalogue's endpoint an unknown id is most likely a typo of (within two edits).
fn closest(id: &str) -> Option<&'static str> {
    falq_api::ENDPOINTS.iter().map(|e| (distance(e.id, id), e.id)).min().filter(|(d, _)| *d <= 2).map(|(_, id)| id)
}

/// The endpoint for an id: the catalogue's, or an untyped one for any other valid endpoint
/// id (fal's clients call any id). An id within two edits of a catalogued one is taken for
/// a typo and refused, naming that one, unless `untyped` says it is meant: a paid call to
/// a mistyped id is worth a question. An id that is no endpoint id is refused.
pub fn find_endpoint(id: &str, untyped: bool) -> Result<Target, Usage> {
    if let Some(e) = falq_api::endpoint(id) {
        return Ok(Target { id: e.id, info: Some(e) });
    }
    let id = id.trim_matches('/');
    falq::rewrite::validate_endpoint_id(id).map_err(|e| Usage(format!("{e} (`falq endpoints` lists the typed ones)")))?;
    if let Some(near) = closest(id).filter(|_| !untyped) {
        return usage(format!(
            "unknown endpoint {id:?}; did you mean {near}? (`falq endpoints` lists them all; pass --untyped to call {id} as given)"
        ));
    }
    Ok(Target { id: Box::leak(id.to_string().into_boxed_str()), info: None })
}

/// Edit distance, for "did you mean".
pub fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

fn field(e: Target, name: &str) -> Option<&'static FieldInfo> {
    e.info?.fields.iter().find(|f| f.name == name)
}

/// Whether a field takes a file or URL: as its schema says, or for an untyped endpoint as
/// its name says (`*_url`, `*_urls`).
fn takes_file(e: Target, name: &str) -> bool {
    match e.info {
        Some(_) => field(e, name).is_some_and(|f| f.takes_file),
        None => name.ends_with("url") || name.ends_with("urls"),
    }
}

/// A `--set` value or CSV cell for an untyped endpoint: JSON when it is JSON (`2`, `true`,
/// `[1,2]`, `{"a":1}`, `"text"`), else the text itself.
pub fn untyped_value(raw: &str) -> Value {
    serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { v.to_string() }
}

/// The text of `falq run <endpoint> --help`.
pub fn endpoint_help(target: Target) -> String {
    let usage = format!(
        "usage: falq run {} [--set FIELD=VALUE]... [--input JSON|@FILE] [--out DIR] [--json] [--wait poll|stream] [--no-wait] [--timeout DURATION] [--sim]",
        target.id
    );
    let Some(e) = target.info else {
        let note = target.untyped_note().unwrap_or_default();
        return format!(
            "{} — no page in specs/\n{note}\n\n{usage}\n\nfields: any; `--set FIELD=VALUE` takes JSON values (2, true, [\"a\"], {{...}}) or text\n",
            target.id
        );
    };
    let mut out = format!("{} — {}\n", e.id, e.summary);
    if !e.description.is_empty() {
        out.push_str(&format!("{}\n", e.description));
    }
    out.push_str(&format!("answers: {} ({})\n", e.output_kind, e.output_schema));
    out.push_str(&format!("\n{usage}\n\nfields:\n"));
    for f in e.fields {
        let mut line = format!("  {} ({}){}", f.name, f.label, if f.required { ", required" } else { "" });
        if let Some(d) = f.default {
            let shown = serde_json::from_str::<Value>(d).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| d.to_string());
            line.push_str(&format!(", default {shown}"));
        }
        let unit = if f.kind == "array" { " items" } else { "" };
        match (f.min, f.max) {
            (Some(a), Some(b)) => line.push_str(&format!(", range {}..={}{unit}", num(a), num(b))),
            (Some(a), None) => line.push_str(&format!(", at least {}{unit}", num(a))),
            (None, Some(b)) => line.push_str(&format!(", at most {}{unit}", num(b))),
            _ => {}
        }
        if f.takes_file {
            line.push_str(", a local file is sent as a data URL");
        }
        out.push_str(&line);
        out.push('\n');
        for l in f.description.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("      {}\n", l.trim()));
        }
    }
    out
}

/// A `--set` value typed by the field's kind (from the generated field table); the
/// schema validation that follows checks everything else.
pub fn typed_value(f: &FieldInfo, raw: &str) -> Result<Value, Usage> {
    let name = f.name;
    if !f.values.is_empty() {
        return f
            .values
            .iter()
            .find(|v| **v == raw)
            .map(|v| Value::String(v.to_string()))
            .ok_or_else(|| Usage(format!("{name}: {raw:?} is not allowed; allowed: {}", f.label)));
    }
    if f.nullable && raw == "null" {
        return Ok(Value::Null);
    }
    let scalar = |kind: &str, raw: &str| -> Result<Value, Usage> {
        match kind {
            "integer" => raw.parse::<i64>().map(Value::from).map_err(|_| Usage(format!("{name}: {raw:?} is not an integer"))),
            "number" => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| Usage(format!("{name}: {raw:?} is not a number"))),
            "boolean" => match raw.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(Value::Bool(true)),
                "false" | "no" | "0" => Ok(Value::Bool(false)),
                _ => usage(format!("{name}: {raw:?} is not a boolean (true or false)")),
            },
            "object" => match parse_json(raw) {
                Ok(v) if v.is_object() => Ok(v),
                Err(e) if e.contains("given twice") => usage(format!("{name}: {e}")),
                _ => usage(format!("{name}: expected a JSON object such as {}", f.label)),
            },
            _ => Ok(Value::String(raw.to_string())),
        }
    };
    match f.kind {
        "array" if raw.trim_start().starts_with('[') => match parse_json(raw) {
            Ok(v @ Value::Array(_)) => Ok(v),
            Ok(_) => usage(format!("{name}: not a JSON array")),
            Err(e) => usage(format!("{name}: not a JSON array: {e}")),
        },
        "array" => Ok(Value::Array(vec![scalar(f.item_kind, raw)?])),
        // A union (image_size): JSON for the object form, else the text (a preset name).
        "one of" | "any" => match parse_json(raw) {
            Ok(v) if v.is_object() || v.is_array() => Ok(v),
            Err(e) if e.contains("given twice") => usage(format!("{name}: {e}")),
            _ => Ok(Value::String(raw.to_string())),
        },
        kind => scalar(kind, raw),
    }
}

/// A local file given for a URL field is sent as a data URL: here it stands as a
/// placeholder, the file encoded only into the request body when it is sent; URLs and
/// data URLs pass through.
fn local_file(field: &str, v: Value, files: &mut Vec<LocalFile>) -> Result<Value, Usage> {
    let Value::String(s) = &v else { return Ok(v) };
    if s.contains("://") || s.starts_with("data:") {
        return Ok(v);
    }
    let path = Path::new(s);
    if path.is_file() {
        let file = LocalFile::new(files.len(), path).map_err(|e| Usage(format!("{field}: {e}")))?;
        let placeholder = Value::String(file.placeholder.clone());
        files.push(file);
        return Ok(placeholder);
    }
    usage(format!("{field}: {s:?} is neither a URL nor a readable local file"))
}

/// JSON text as a value, refusing an object that names a key twice: serde_json would keep
/// the last silently, and `{"num_images": 1, "num_images": 4}` would pay for four.
pub fn parse_json(text: &str) -> Result<Value, String> {
    use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
    struct Strict(Value);
    struct Reading;
    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Reading).map(Strict)
        }
    }
    impl<'de> Visitor<'de> for Reading {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                items.push(v);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some((k, Strict(v))) = map.next_entry::<String, Strict>()? {
                if out.contains_key(&k) {
                    return Err(A::Error::custom(format!("the key {k:?} is given twice")));
                }
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let Strict(value) = Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Builds the input: `--input` first, then each `--set` (a repeated array field appends),
/// then local files are set aside to be sent as data URLs (see [`attach_files`]); unknown
/// fields, bad types, missing required fields and out-of-range values are refused here.
pub fn build_input(e: Target, input: Option<&str>, sets: &[String]) -> Result<(Value, Vec<LocalFile>), Usage> {
    let mut obj: Map<String, Value> = match input {
        None => Map::new(),
        Some(text) => {
            let text = if let Some(path) = text.strip_prefix('@') {
                std::fs::read_to_string(path).map_err(|err| Usage(format!("--input @{path}: {err}")))?
            } else {
                text.to_string()
            };
            match parse_json(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return usage("--input must be a JSON object"),
                Err(err) => return usage(format!("--input is not valid JSON: {err}")),
            }
        }
    };
    let unknown = |k: &str| Usage(format!("{}: {}", e.id, unknown_field(e, "field", k)));
    if let Some(k) = obj.keys().find(|k| e.info.is_some() && field(e, k).is_none()) {
        return Err(unknown(k));
    }
    for set in sets {
        let Some((k, raw)) = set.split_once('=') else {
            return usage(format!("--set {set:?}: expected FIELD=VALUE"));
        };
        let k = k.trim();
        let v = match (e.info, field(e, k)) {
            (None, _) => untyped_value(raw),
            (Some(_), Some(f)) => typed_value(f, raw)?,
            (Some(_), None) => return Err(unknown(k)),
        };
        match (obj.get_mut(k), v) {
            (Some(Value::Array(existing)), Value::Array(more)) if !raw.trim_start().starts_with('[') => existing.extend(more),
            (_, v) => {
                obj.insert(k.to_string(), v);
            }
        }
    }
    let missing = missing_fields(e, &obj);
    if !missing.is_empty() {
        return usage(format!("{}: missing required field(s) {} (set them with --set {}=...)", e.id, missing.join(", "), missing[0]));
    }
    let mut value = Value::Object(obj);
    let files = attach_files(e, &mut value)?;
    let Some(info) = e.info else { return Ok((value, files)) };
    falq_api::validate_input(info, &value).map_err(|errs| {
        let lines: Vec<String> = errs.0.iter().map(|x| format!("  {}: {}", x.field, x.message)).collect();
        Usage(format!("{}: invalid input, nothing was sent:\n{}", e.id, lines.join("\n")))
    })?;
    Ok((value, files))
}

/// The required fields an input lacks (none for an untyped endpoint).
fn missing_fields(e: Target, obj: &Map<String, Value>) -> Vec<&'static str> {
    e.info.map_or(&[][..], |i| i.fields).iter().filter(|f| f.required && !obj.contains_key(f.name)).map(|f| f.name).collect()
}

/// `unknown field "colour"; valid fields: image_url, image_size, ...`.
fn unknown_field(e: Target, what: &str, name: &str) -> String {
    let names: Vec<&str> = e.info.map_or(&[][..], |i| i.fields).iter().map(|f| f.name).collect();
    format!("unknown {what} {name:?}; valid fields: {}", names.join(", "))
}

/// The `--set` values of a batch, typed by the endpoint's schema: fields every line gets
/// unless it gives its own.
pub fn typed_sets(e: Target, sets: &[String]) -> Result<Map<String, Value>, Usage> {
    let mut obj = Map::new();
    for set in sets {
        let Some((k, raw)) = set.split_once('=') else {
            return usage(format!("--set {set:?}: expected FIELD=VALUE"));
        };
        let k = k.trim();
        let v = match (e.info, field(e, k)) {
            (None, _) => untyped_value(raw),
            (Some(_), Some(f)) => typed_value(f, raw)?,
            (Some(_), None) => return usage(format!("--set: {}: {}", e.id, unknown_field(e, "field", k))),
        };
        obj.insert(k.to_string(), v);
    }
    Ok(obj)
}

/// A CSV cell typed by its column's field (an empty cell is no value).
pub fn typed_cell(e: Target, column: &str, raw: &str) -> Result<Option<Value>, String> {
    let f = match (e.info, field(e, column)) {
        (None, _) => return Ok(Some(untyped_value(raw)).filter(|_| !raw.is_empty())),
        (Some(_), Some(f)) => f,
        (Some(_), None) => return Err(unknown_field(e, "column", column)),
    };
    if raw.is_empty() {
        return Ok(None);
    }
    typed_value(f, raw).map(Some).map_err(|u| u.0)
}

/// One line of a batch as it will be sent: its own fields, then the common ones it does
/// not give; local files made absolute against `base` (they become data URLs only when
/// the line is sent, so a batch of photos is not held in memory); unknown, missing and
/// invalid fields refused with what is wrong. The error is one line of text.
pub fn batch_line(e: Target, mut obj: Map<String, Value>, common: &Map<String, Value>, base: &Path) -> Result<Value, String> {
    if let Some(k) = obj.keys().find(|k| e.info.is_some() && field(e, k).is_none()) {
        return Err(unknown_field(e, "field", k));
    }
    for (k, v) in common {
        if !obj.contains_key(k) {
            obj.insert(k.clone(), v.clone());
        }
    }
    let missing = missing_fields(e, &obj);
    if !missing.is_empty() {
        return Err(format!("missing required field(s) {}", missing.join(", ")));
    }
    for (k, v) in obj.iter_mut() {
        if !takes_file(e, k) {
            continue;
        }
        let items: Vec<&mut Value> = match v {
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for item in items {
            let Value::String(s) = item else { continue };
            if s.contains("://") || s.starts_with("data:") {
                continue;
            }
            let path = base.join(&*s);
            if !path.is_file() {
                return Err(format!("{k}: {s:?} is neither a URL nor a readable local file (looked for {})", path.display()));
            }
            *s = path.display().to_string();
        }
    }
    let value = Value::Object(obj);
    if let Some(info) = e.info {
        falq_api::validate_input(info, &value)
            .map_err(|errs| errs.0.iter().map(|x| format!("{}: {}", x.field, x.message)).collect::<Vec<_>>().join("; "))?;
    }
    Ok(value)
}

/// The input's local files (a path in a field that takes a file), each replaced by its
/// placeholder: the client encodes them into the request body as it sends it.
pub fn attach_files(e: Target, value: &mut Value) -> Result<Vec<LocalFile>, Usage> {
    let mut files = Vec::new();
    let Some(obj) = value.as_object_mut() else { return Ok(files) };
    for (k, v) in obj.iter_mut() {
        if !takes_file(e, k) {
            continue;
        }
        match v {
            Value::Array(items) => {
                for item in items.iter_mut() {
                    *item = local_file(k, item.take(), &mut files)?;
                }
            }
            other => *other = local_file(k, other.take(), &mut files)?,
        }
    }
    Ok(files)
}

/// What the relay's `413` means for an input with local files: which files made it too
/// large, and what to do (nothing was queued).
pub fn too_large(files: &[LocalFile]) -> Option<Usage> {
    if files.is_empty() {
        return None;
    }
    let shown = |n: u64| if n >= 1_000_000 { format!("{:.1} MB", n as f64 / 1e6) } else { format!("{:.1} KB", n as f64 / 1e3) };
    let listed: Vec<String> = files.iter().map(|f| format!("{} ({})", f.path.display(), shown(f.size))).collect();
    Some(Usage(format!(
        "the relay refuses a request this large (HTTP 413): the local file(s) {} are sent inside it as data URLs (a third larger); nothing was queued. Give a URL for them instead (upload them anywhere the relay can fetch)",
        listed.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn json_with_a_key_given_twice_is_refused_at_any_depth() {
        for text in [r#"{"n": 1, "n": 4}"#, r#"{"a": {"n": 1, "n": 4}}"#, r#"[{"n": 1}, {"m": 1, "m": 2}]"#] {
            let e = parse_json(text).expect_err(text);
            assert!(e.contains("is given twice") && e.contains("line 1 column"), "{text}: {e}");
        }
        // Otherwise it reads what serde_json reads, numbers as numbers.
        for text in [r#"{"a": [1, -2, 2.5, 18446744073709551615, "x", true, null, {}]}"#, "[]", "7", r#""s""#] {
            assert_eq!(parse_json(text).unwrap(), serde_json::from_str::<Value>(text).unwrap(), "{text}");
        }
        assert!(parse_json(r#"{"a": 1} trailing"#).is_err() && parse_json(r#"{"a": 1e999}"#).is_err());
    }

    use serde_json::json;

    fn redux() -> Target {
        find_endpoint("fal-ai/flux-1/dev/redux", false).unwrap()
    }

    fn check(sets: &[&str], expected: Result<Value, &str>) {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let got = build_input(redux(), None, &sets).map(|(v, _)| v).map_err(|e| e.0);
        match expected {
            Ok(v) => assert_eq!(got.unwrap(), v),
            Err(fragment) => {
                let e = got.unwrap_err();
                assert!(e.contains(fragment), "{e:?} should contain {fragment:?}");
            }
        }
    }

    #[test]
    fn sets_are_typed_by_the_schema() {
        check(
            &[
                "image_url=https://x/a.png",
                "num_images=2",
                "guidance_scale=3.5",
                "sync_mode=true",
                "output_format=png",
                "image_size=square_hd",
                "seed=196619188014358660",
            ],
            Ok(
                json!({"image_url": "https://x/a.png", "num_images": 2, "guidance_scale": 3.5, "sync_mode": true, "output_format": "png", "image_size": "square_hd", "seed": 196619188014358660i64}),
            ),
        );
        check(
            &["image_url=https://x", r#"image_size={"width":640,"height":480}"#],
            Ok(json!({"image_url": "https://x", "image_size": {"width": 640, "height": 480}})),
        );
        check(&["image_url=https://x", "seed=null"], Ok(json!({"image_url": "https://x", "seed": null})));
    }

    #[test]
    fn bad_input_names_the_field_and_what_is_allowed() {
        check(&["image_url=https://x", "num_images=two"], Err("num_images: \"two\" is not an integer"));
        check(&["image_url=https://x", "num_images=9"], Err("num_images: 9 is greater than the maximum of 4"));
        // Any depth, any constraint, all at once, before sending.
        check(
            &["image_url=https://x", "image_size={\"width\": 99999, \"height\": 1}"],
            Err("image_size.width: 99999 is greater than the maximum of 14142"),
        );
        check(&["image_url=https://x", "output_format=gif"], Err("output_format: \"gif\" is not allowed; allowed: jpeg | png"));
        check(&["image_url=https://x", "image_size=huge"], Err("image_size: \"huge\" is not allowed"));
        check(&["image_url=https://x", "colour=red"], Err("unknown field \"colour\"; valid fields: image_url, image_size"));
        check(&["num_images=1"], Err("missing required field(s) image_url"));
        check(&["image_url=/no/such/file.png"], Err("neither a URL nor a readable local file"));
        check(&["image_url"], Err("expected FIELD=VALUE"));
        let typo = find_endpoint("fal-ai/flux-1/dev/redx", false).unwrap_err().0;
        assert!(typo.contains("did you mean fal-ai/flux-1/dev/redux") && typo.contains("--untyped"), "{typo}");
        assert!(find_endpoint("fal-ai/flux-1/dev/redx", true).unwrap().info.is_none(), "meant: untyped");
        assert!(find_endpoint("not an id", true).is_err());
    }

    #[test]
    fn an_endpoint_without_a_page_takes_json_values_unchecked() {
        let e = find_endpoint("someone/some-model/v2", false).unwrap();
        assert!(e.info.is_none());
        assert!(e.untyped_note().unwrap().contains("untyped"));
        let sets: Vec<String> =
            ["prompt=a cat", "n=2", "ratio=1.5", "fast=true", "tags=[\"a\",\"b\"]", "size={\"w\":1}", "seed=null", "label=\"2\""]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let (input, _) = build_input(e, Some(r#"{"extra": {"deep": [1]}}"#), &sets).unwrap();
        assert_eq!(
            input,
            json!({"extra": {"deep": [1]}, "prompt": "a cat", "n": 2, "ratio": 1.5, "fast": true, "tags": ["a", "b"], "size": {"w": 1}, "seed": null, "label": "2"})
        );
        // A local file for a URL field is still sent as a data URL; nothing is required.
        let dir = std::env::temp_dir().join(format!("falq-untyped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("in.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\nxyz").unwrap();
        let (input, files) = build_input(e, None, &[format!("audio_url={}", png.display())]).unwrap();
        assert_eq!((files.len(), input["audio_url"].as_str()), (1, Some(files[0].placeholder.as_str())));
        let body: Value = serde_json::from_slice(&falq::files::body_with_files(&input, &files).unwrap()).unwrap();
        assert!(body["audio_url"].as_str().unwrap().starts_with("data:image/png;base64,"), "{body}");
        assert_eq!(build_input(e, None, &[]).unwrap().0, json!({}));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn help_lists_fields_with_types_ranges_and_defaults() {
        let h = endpoint_help(redux());
        for fragment in [
            "image_url (string), required",
            "num_images (integer), default 1, range 1..=4",
            "output_format (jpeg | png), default jpeg",
            "image_size (square_hd | square",
            "可选。推理步数",
        ] {
            assert!(h.contains(fragment), "{fragment:?} missing in\n{h}");
        }
    }
}
