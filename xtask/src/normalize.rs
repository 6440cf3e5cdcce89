//! Stage 2, normalize: one small named rule per quirk of the Apifox dialect.
//!
//! Each rule takes a page's document (JSON) and fixes one quirk in place; the
//! catalogue is [`RULES`], applied in order. Per-page corrections that no rule
//! can infer live in overlay files in `specs/`, never in code.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::diag::Diagnostic;
use crate::load::Source;
use crate::prose::{ascii_value, default_in_prose, enum_in_prose, range_in_prose, says_optional};
use crate::walk::{
    METHODS, component_name, describe_path, for_each_operation, for_each_root_schema, for_each_schema, for_each_schema_at,
    for_each_schema_at_mut, pascal, pointer, refs_in, rust_field_name, schema_ref, walk_schema,
};

/// What a rule may consult and report.
pub struct Ctx<'a> {
    /// The page being normalized.
    pub source: &'a Source,
    /// Warnings (skipped operations, guesses made): shown, never fatal.
    pub warnings: Vec<Diagnostic>,
    /// The property names of the shared queue status type, from the authored spec.
    pub queue_status_fields: BTreeSet<String>,
    /// The component schemas of the authored spec, which pages may refer to.
    pub known_schemas: BTreeSet<String>,
    /// Every fact read from prose (a default, a range, nullability, optionality).
    pub inferred: Vec<Inference>,
}

/// One fact a rule read from a description rather than from the schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Inference {
    /// The page and the line of the description.
    pub file: std::path::PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// Where the field sits (`POST /fal-ai/flux-1/dev, field num_images`).
    pub place: String,
    /// What was decided (`default 28`, `range 1..=50`, `nullable`, `optional`).
    pub what: String,
    /// The description it was read from.
    pub text: String,
}

impl Ctx<'_> {
    /// A context for normalizing `source` with no authored spec around it.
    pub fn new(source: &Source) -> Ctx<'_> {
        Ctx { source, warnings: Vec::new(), queue_status_fields: BTreeSet::new(), known_schemas: BTreeSet::new(), inferred: Vec::new() }
    }

    fn infer(&mut self, keys: &[String], what: String, text: &str) {
        let needle: String = text.lines().next().unwrap_or("").chars().take(16).collect();
        let line = if needle.trim().is_empty() { self.source.line } else { self.source.line_of(needle.trim()) };
        self.inferred.push(Inference { file: self.source.file.clone(), line, place: describe_path(keys), what, text: text.to_string() });
    }
}

/// A named normalization rule.
pub struct Rule {
    /// The rule's name, as tests and ARCHITECTURE.md call it.
    pub name: &'static str,
    /// The quirk it handles.
    pub quirk: &'static str,
    /// Applies the rule to a page.
    pub apply: fn(&mut Value, &mut Ctx) -> Result<(), Diagnostic>,
}

/// Every rule, in the order they run on a page.
pub const RULES: &[Rule] = &[
    Rule {
        name: "check_page_paths",
        quirk: "a page that defines no path (its `paths:` line lost, or the endpoint indented under another key)",
        apply: check_page_paths,
    },
    Rule {
        name: "check_schema_types",
        quirk: "types OpenAPI 3.0 does not know (file), enums that contradict their type, malformed schemas",
        apply: check_schema_types,
    },
    Rule {
        name: "untyped_colliding_properties",
        quirk: "property names that become one Rust name (num_images and num-images)",
        apply: untyped_colliding_properties,
    },
    Rule {
        name: "apifox_status",
        quirk: "pages still `developing` beside the released page of the same endpoint (x-apifox-status)",
        apply: apifox_status,
    },
    Rule { name: "drop_apifox_noise", quirk: "x-apifox-* extensions, servers: [], security: [], folder tags", apply: drop_apifox_noise },
    Rule { name: "strip_base_url_placeholder", quirk: "paths start with /BASE_URL or {{BASE_URL}}", apply: strip_base_url_placeholder },
    Rule {
        name: "queue_call_pages",
        quirk: "a relay's own page for the queue's calls (\"get request result\": GET /fal-ai/{model_name}/requests/{request_id})",
        apply: queue_call_pages,
    },
    Rule { name: "operation_id_from_path", quirk: "no operationId", apply: operation_id_from_path },
    Rule {
        name: "drop_transport_headers",
        quirk: "Authorization, Content-Type, Accept declared as header parameters",
        apply: drop_transport_headers,
    },
    Rule {
        name: "skip_unsupported_operations",
        quirk: "multipart/form-data bodies, bodies on GET, cookie parameters",
        apply: skip_unsupported_operations,
    },
    Rule {
        name: "declare_path_parameters",
        quirk: "a {param} in a path with no declared parameter (progenitor panics)",
        apply: declare_path_parameters,
    },
    Rule {
        name: "one_media_type",
        quirk: "several media types on a body, or success responses of different kinds (progenitor panics)",
        apply: one_media_type,
    },
    Rule {
        name: "schema_from_example",
        quirk: "a request schema with no properties (`properties: {}`) and only an example",
        apply: schema_from_example,
    },
    Rule {
        name: "output_from_page",
        quirk: "the result an endpoint answers shown as the submit's 200 (a schema or an example that is no queue status)",
        apply: output_from_page,
    },
    Rule { name: "hoist_nested_definitions", quirk: "definitions: nested inside a schema", apply: hoist_nested_definitions },
    Rule { name: "openapi31_null_type", quirk: "type: 'null' and type lists inside a 3.0.1 document", apply: openapi31_null_type },
    Rule { name: "drop_empty_object_branches", quirk: "oneOf with an empty-object branch", apply: drop_empty_object_branches },
    Rule {
        name: "examples_out_of_schemas",
        quirk: "examples: arrays and example: values that do not match the schema",
        apply: examples_out_of_schemas,
    },
    Rule {
        name: "optional_from_prose",
        quirk: "every property in required although its description says optional",
        apply: optional_from_prose,
    },
    Rule { name: "nullable_from_prose", quirk: "nullability only in prose (可为null)", apply: nullable_from_prose },
    Rule {
        name: "enums_from_prose",
        quirk: "allowed values only in prose (枚举值：16：9、9：16、auto; Enumerated values: 'none', 'high')",
        apply: enums_from_prose,
    },
    Rule { name: "defaults_from_prose", quirk: "defaults only in prose (默认28, Default: 4)", apply: defaults_from_prose },
    Rule { name: "ranges_from_prose", quirk: "ranges only in prose (范围1-50, Range: 1-12)", apply: ranges_from_prose },
    Rule { name: "ascii_values", quirk: "full-width punctuation inside enum values and defaults (16：9)", apply: ascii_values },
    Rule { name: "names_from_endpoint", quirk: "free-text (often Chinese) titles on schemas", apply: names_from_endpoint },
    Rule { name: "queue_status_response", quirk: "empty or copied-inline submit response schemas", apply: queue_status_response },
    Rule {
        name: "name_inline_responses",
        quirk: "inline success and error schemas share one generated name",
        apply: name_inline_responses,
    },
    Rule {
        name: "refuse_recursive_refs",
        quirk: "a schema that refers to itself, or a $ref to a schema the page does not define",
        apply: refuse_recursive_refs,
    },
    Rule {
        name: "check_openapi_shape",
        quirk: "anything else OpenAPI 3.0 does not allow where it is read (a mapping where a list belongs, a parameter with no `in`)",
        apply: check_openapi_shape,
    },
];

/// Runs every rule on a page, in order.
pub fn normalize_page(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for rule in RULES {
        (rule.apply)(doc, ctx)?;
    }
    Ok(())
}

fn ops_mut(doc: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut out = Vec::new();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return out };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if METHODS.contains(&method.as_str())
                && let Some(op) = op.as_object_mut()
            {
                out.push((path.clone(), method.clone(), op));
            }
        }
    }
    out
}

/// The `type` names of OpenAPI 3.0 (and 3.1's `null`, which a later rule rewrites).
const TYPES: [&str; 7] = ["string", "number", "integer", "boolean", "array", "object", "null"];

fn keys_str(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// Whether a JSON value is an instance of an OpenAPI type name.
fn value_has_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => v.is_null(),
    }
}

/// Every schema of the page is checked before anything else reads it: a `type`
/// OpenAPI 3.0 does not know (`file`, `int`), an `enum` whose values contradict the
/// type, and malformed keywords (`properties` that is no mapping, a property with no
/// schema, a bound that is no number) are errors naming the page's line and the field.
pub fn check_schema_types(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let mut first: Option<Diagnostic> = None;
    let source = ctx.source;
    for_each_schema_at(doc, &mut |keys, s| {
        if first.is_some() {
            return;
        }
        let at = |what: String, help: &str| {
            Diagnostic::new(&source.file, source.line_of_path(&keys_str(keys)), format!("{}: {what}", describe_path(keys)))
                .help(help.to_string())
        };
        let Some(m) = s.as_object() else {
            first = Some(at(format!("a schema must be a mapping, found {s}"), "give the field a schema such as {type: string}"));
            return;
        };
        let types: Vec<&str> = match m.get("type") {
            None => vec![],
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => list.iter().filter_map(Value::as_str).collect(),
            Some(other) => {
                first =
                    Some(at(format!("`type: {other}` is not a type name"), "write one of string, number, integer, boolean, array, object"));
                return;
            }
        };
        if let Some(bad) = types.iter().find(|t| !TYPES.contains(t)) {
            let help = if *bad == "file" {
                "`type: file` is Swagger 2.0; in OpenAPI 3 a URL field is `type: string` and an upload `type: string, format: binary` (fix it in specs/falq/overlays.yaml)"
            } else {
                "write one of string, number, integer, boolean, array, object (fix it in specs/falq/overlays.yaml)"
            };
            first = Some(at(format!("unknown type {bad:?}"), help));
            return;
        }
        if let Some(e) = m.get("enum") {
            let Some(values) = e.as_array() else {
                first = Some(at(format!("`enum` must be a list, found {e}"), "list the allowed values"));
                return;
            };
            let declared: Vec<&str> = types.iter().copied().filter(|t| *t != "null").collect();
            for v in values {
                let fits = if v.is_null() {
                    true
                } else if declared.is_empty() {
                    values.iter().filter(|x| !x.is_null()).all(|x| std::mem::discriminant(x) == std::mem::discriminant(v))
                } else {
                    declared.iter().any(|t| value_has_type(v, t))
                };
                if !fits {
                    let what =
                        if declared.is_empty() { "the other values' type".to_string() } else { format!("type {}", declared.join(" or ")) };
                    first = Some(at(
                        format!("enum value {v} contradicts {what}"),
                        "make the enum values and the type agree (quote numbers meant as strings)",
                    ));
                    return;
                }
            }
        }
        if let Some(p) = m.get("properties") {
            match p.as_object() {
                None => first = Some(at(format!("`properties` must be a mapping, found {p}"), "list the fields as name: schema")),
                Some(props) => {
                    if let Some((name, _)) = props.iter().find(|(_, v)| !v.is_object()) {
                        let mut k = keys.to_vec();
                        k.extend(["properties".to_string(), name.clone()]);
                        first = Some(
                            Diagnostic::new(
                                &source.file,
                                source.line_of_path(&keys_str(&k)),
                                format!("{}: the property has no schema", describe_path(&k)),
                            )
                            .help("give it one, such as {type: string}"),
                        );
                    }
                }
            }
        }
        if let Some(r) = m.get("required").filter(|r| !r.as_array().is_some_and(|a| a.iter().all(Value::is_string))) {
            first = Some(at(format!("`required` must be a list of field names, found {r}"), "list the required fields' names"));
        }
        for k in ["minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "multipleOf"] {
            if let Some(v) = m.get(k).filter(|v| !v.is_number()) {
                first = Some(at(format!("`{k}` must be a number, found {v}"), "write the bound as a number"));
            }
        }
        if let Some(i) = m.get("items").filter(|i| !i.is_object()) {
            first =
                Some(at(format!("`items` must be one schema, found {i}"), "describe the items with one schema (tuples are not supported)"));
        }
    });
    first.map_or(Ok(()), Err)
}

/// Properties whose names become the same Rust field name (`num_images` and
/// `num-images`, `statusUrl` and `status_url`) cannot all be fields of the generated
/// struct: the one whose name is already the Rust name (else the first) keeps its field,
/// the others are marked `x-falq-untyped` and left out of the struct, with a warning.
/// They stay in `openapi.json`, so JSON inputs (`submit_json`, `--set`) still reach them.
pub fn untyped_colliding_properties(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let mut marks: Vec<(Vec<String>, String)> = Vec::new();
    for_each_schema_at(doc, &mut |keys, s| {
        let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
        let mut by_rust: std::collections::BTreeMap<String, Vec<&String>> = std::collections::BTreeMap::new();
        for name in props.keys() {
            by_rust.entry(rust_field_name(name)).or_default().push(name);
        }
        for (rust, names) in by_rust.into_iter().filter(|(_, n)| n.len() > 1) {
            let keep = names.iter().position(|n| **n == rust).unwrap_or(0);
            for (i, n) in names.iter().enumerate() {
                if i != keep {
                    marks.push((keys.to_vec(), (*n).clone()));
                    let mut k = keys.to_vec();
                    k.extend(["properties".to_string(), (*n).clone()]);
                    ctx.warnings.push(
                        Diagnostic::new(
                            &ctx.source.file,
                            ctx.source.line_of_path(&keys_str(&k)),
                            format!(
                                "{}: {n:?} and {:?} are both the Rust field `{rust}`; the typed struct keeps {:?}",
                                describe_path(&k),
                                names[keep],
                                names[keep]
                            ),
                        )
                        .help(format!("{n:?} stays in openapi.json: send it with submit_json or `--set {n}=...`")),
                    );
                }
            }
        }
    });
    for (mut keys, name) in marks {
        keys.extend(["properties".to_string(), name]);
        if let Some(p) = doc.pointer_mut(&pointer(&keys)).and_then(Value::as_object_mut) {
            p.insert("x-falq-untyped".into(), Value::Bool(true));
        }
    }
    Ok(())
}

/// Removes `x-apifox-*` and `x-run-in-apifox` keys everywhere, empty `servers`,
/// `security` and `securitySchemes`, the operations' folder `tags`, `deprecated: false`,
/// and empty response `headers`.
pub fn drop_apifox_noise(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !(k.starts_with("x-apifox") || k == "x-run-in-apifox"));
                for v in m.values_mut() {
                    strip(v);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(doc);
    if let Some(m) = doc.as_object_mut() {
        for key in ["servers", "security"] {
            if m.get(key).and_then(Value::as_array).is_some_and(|a| a.is_empty()) {
                m.remove(key);
            }
        }
    }
    if let Some(c) = doc.get_mut("components").and_then(Value::as_object_mut)
        && c.get("securitySchemes").and_then(Value::as_object).is_some_and(|m| m.is_empty())
    {
        c.remove("securitySchemes");
    }
    for_each_operation(doc, |_, _, op| {
        op.remove("tags");
        if op.get("security").and_then(Value::as_array).is_some_and(|a| a.is_empty()) {
            op.remove("security");
        }
        if op.get("deprecated") == Some(&Value::Bool(false)) {
            op.remove("deprecated");
        }
        if let Some(rs) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for r in rs.values_mut() {
                if let Some(r) = r.as_object_mut()
                    && r.get("headers").and_then(Value::as_object).is_some_and(|h| h.is_empty())
                {
                    r.remove("headers");
                }
            }
        }
    });
    Ok(())
}

/// An operation's `x-apifox-status` (`developing`, `released`, ...) is kept as
/// `x-falq-status` (the noise rule drops every `x-apifox-*`): merge sets a `developing`
/// page aside when a released page of the same endpoint is there.
pub fn apifox_status(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_operation(doc, |_, _, op| {
        if let Some(status) = op.get("x-apifox-status").and_then(Value::as_str).map(str::to_string) {
            op.insert("x-falq-status".into(), Value::String(status));
        }
    });
    Ok(())
}

/// Where a path names one of the queue's own calls: `/{owner}/{app}[/...]/requests/{id}`,
/// with `/status`, `/status/stream` or `/cancel` after it, or nothing (the result). Answers
/// the app part (before `/requests`) and the call.
fn queue_call_of(path: &str) -> Option<(&str, &'static str)> {
    static QUEUE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^/?(.+?/.+?)/requests/[^/]+(/status/stream|/status|/cancel)?/?$").expect("regex"));
    let c = QUEUE.captures(path)?;
    let call = match c.get(2).map(|m| m.as_str()) {
        None => "result",
        Some("/status") => "status",
        Some("/status/stream") => "status stream",
        _ => "cancel",
    };
    Some((c.get(1)?.as_str(), call))
}

/// A page for one of the queue's own calls (a relay's "get request result" page,
/// `GET /fal-ai/{model_name}/requests/{request_id}`, or one for a status or a cancel) is
/// no endpoint: falq makes those calls itself (`queue_result`, ...). The path is set
/// aside with a note. A result page of one app (`/fal-ai/veo3/requests/{request_id}`) that
/// shows what the result is (a schema, or an example) types the output of that app's
/// endpoints that say nothing better (`x-falq-app-outputs`, read by merge).
pub fn queue_call_pages(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let source = ctx.source;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return Ok(()) };
    let queue_paths: Vec<String> = paths.keys().filter(|p| queue_call_of(p).is_some()).cloned().collect();
    let mut app_outputs: Vec<(String, Value)> = Vec::new();
    for path in queue_paths {
        let Some(item) = paths.shift_remove(&path) else { continue };
        let (app, call) = queue_call_of(&path).unwrap_or(("", "result"));
        let app = app.trim_start_matches('/').to_string();
        let shown =
            if call == "result" { "the queue's result call (queue_result)".to_string() } else { format!("the queue's {call} call") };
        let mut note = format!("note: {path} is {shown}, which falq makes itself for every endpoint: no endpoint of its own");
        let result = (call == "result" && !app.contains('{')).then(|| item.get("get")).flatten().and_then(success_output);
        if let Some(schema) = result {
            note.push_str(&format!("; what it shows types the output of {app}'s endpoints that say nothing better"));
            app_outputs.push((app, schema));
        }
        ctx.warnings.push(source.diag_at(&path, note));
    }
    if !app_outputs.is_empty() {
        let outputs: Map<String, Value> = app_outputs.into_iter().collect();
        if let Some(m) = doc.as_object_mut() {
            m.insert("x-falq-app-outputs".into(), Value::Object(outputs));
        }
    }
    Ok(())
}

/// What a result the success answer of an operation shows: its schema when that has
/// properties, else one read from its example (an object); `None` when it shows nothing.
fn success_output(op: &Value) -> Option<Value> {
    let responses = op.get("responses")?.as_object()?;
    responses.iter().filter(|(code, _)| is_success_code(code)).find_map(|(_, r)| {
        let media = r.get("content")?.as_object()?.iter().find(|(mt, _)| is_json(mt))?.1;
        let schema = media.get("schema").filter(|s| s.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty()));
        match (schema, media.get("example").filter(|e| e.as_object().is_some_and(|m| !m.is_empty()))) {
            (Some(s), example) => {
                let mut s = s.clone();
                if let (Some(m), Some(e)) = (s.as_object_mut(), example) {
                    m.insert("x-falq-examples".into(), json!([e]));
                }
                Some(s)
            }
            (None, Some(example)) => Some(output_schema_of_example(example)),
            (None, None) => None,
        }
    })
}

/// A success status (`200`, `2XX`), or an Apifox alternate of one (`x-200:成功`).
fn is_success_code(code: &str) -> bool {
    code.starts_with('2') || code.strip_prefix("x-").is_some_and(|c| c.starts_with('2'))
}

/// The schema of a JSON value, as a page's example shows it: types from the values, an
/// array's items from its first item, nothing required. For an input.
pub fn schema_of_example(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(a) => match a.first() {
            Some(first) => json!({"type": "array", "items": schema_of_example(first)}),
            None => json!({"type": "array"}),
        },
        Value::Object(m) => {
            let props: Map<String, Value> = m.iter().map(|(k, v)| (k.clone(), schema_of_example(v))).collect();
            json!({"type": "object", "properties": props})
        }
    }
}

/// The schema of an output, as a page's example of it shows it: [`schema_of_example`], with
/// every object that has a string `url` a `File` (the example kept beside it, so its
/// `content_type` or name tells its kind), and required what makes it this output and no
/// queue status: the top-level fields holding files, or else its text.
pub fn output_schema_of_example(example: &Value) -> Value {
    fn typed(v: &Value) -> Value {
        match v {
            Value::Object(m) if m.get("url").is_some_and(Value::is_string) => {
                json!({"allOf": [schema_ref("File")], "x-falq-examples": [v]})
            }
            Value::Object(m) => {
                let props: Map<String, Value> = m.iter().map(|(k, v)| (k.clone(), typed(v))).collect();
                json!({"type": "object", "properties": props})
            }
            Value::Array(a) => match a.first() {
                Some(first) => json!({"type": "array", "items": typed(first)}),
                None => json!({"type": "array"}),
            },
            other => schema_of_example(other),
        }
    }
    fn holds_file(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.get("url").is_some_and(Value::is_string) || m.values().any(holds_file),
            Value::Array(a) => a.iter().any(holds_file),
            _ => false,
        }
    }
    let mut schema = typed(example);
    let Some(m) = example.as_object() else { return schema };
    let files: Vec<&String> = m.iter().filter(|(_, v)| holds_file(v)).map(|(k, _)| k).collect();
    let required: Vec<&String> = if files.is_empty() { m.iter().filter(|(_, v)| v.is_string()).map(|(k, _)| k).collect() } else { files };
    if let Some(s) = schema.as_object_mut() {
        s.insert("required".into(), json!(required));
        s.insert("x-falq-examples".into(), json!([example]));
    }
    schema
}

static BASE_URL_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/?(?:\{\{\s*BASE_URL\s*\}\}|\{\s*BASE_URL\s*\}|BASE_URL)(/|$)").expect("regex"));

/// A page's path as the normalized spec writes it: the base URL placeholder removed
/// (`/BASE_URL/fal-ai/x`, `{{BASE_URL}}/fal-ai/x` → `/fal-ai/x`), one leading slash.
pub fn without_base_url_placeholder(path: &str) -> String {
    let stripped = BASE_URL_PREFIX.replace(path, "/").into_owned();
    if stripped.starts_with('/') { stripped } else { format!("/{stripped}") }
}

/// `/BASE_URL/fal-ai/x`, `{{BASE_URL}}/fal-ai/x` and `/{{BASE_URL}}/fal-ai/x` become `/fal-ai/x`.
pub fn strip_base_url_placeholder(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return Ok(()) };
    let old = std::mem::take(paths);
    for (path, item) in old {
        let stripped = without_base_url_placeholder(&path);
        if paths.contains_key(&stripped) {
            return Err(ctx
                .source
                .diag_at(&path, format!("two paths of this page become {stripped} once the base URL placeholder is removed"))
                .help("keep one of them"));
        }
        paths.insert(stripped, item);
    }
    Ok(())
}

/// The operation id of an endpoint path: the owner `fal-ai` is dropped, every
/// other non-alphanumeric run becomes `_` (`/fal-ai/flux-1/dev/redux` → `flux_1_dev_redux`).
pub fn operation_id_for(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("fal-ai/").unwrap_or(trimmed);
    let mut out = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) { format!("op_{out}") } else { out }
}

/// Gives every operation a stable `operationId` derived from its path (a POST on
/// an endpoint path), and records the endpoint id as `x-falq-endpoint-id`.
pub fn operation_id_from_path(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for (path, method, op) in ops_mut(doc) {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        if segments.len() < 2 {
            return Err(ctx
                .source
                .diag_at(&path, format!("{path} is not an endpoint path of the form /owner/app[/...]"))
                .help("a fal endpoint id has an owner and an app, as in /fal-ai/flux-1/dev"));
        }
        if !segments.iter().all(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.{}".contains(c))) {
            return Err(ctx
                .source
                .diag_at(&path, format!("{path} has characters an endpoint id cannot have"))
                .help("endpoint ids use ASCII letters, digits, '-', '_' and '.'"));
        }
        // An id the page gives is kept when it is a snake-case ASCII name; otherwise it
        // is made one (progenitor would turn `Create-Image` and `create_image` into one method).
        let given = op.get("operationId").and_then(Value::as_str).map(|s| {
            let snake = heck::ToSnakeCase::to_snake_case(s.replace(|c: char| !c.is_ascii_alphanumeric(), "_").as_str());
            let snake = snake.trim_matches('_').to_string();
            if snake.starts_with(|c: char| c.is_ascii_digit()) { format!("op_{snake}") } else { snake }
        });
        match given.filter(|s| crate::walk::is_ascii_ident(s)) {
            Some(id) => {
                op.insert("operationId".into(), Value::String(id));
            }
            None => {
                op.remove("operationId");
            }
        }
        let has_id = op.contains_key("operationId");
        if !has_id {
            let mut id = operation_id_for(&path);
            if method != "post" {
                id = format!("{method}_{id}");
            }
            op.insert("operationId".into(), Value::String(id));
        }
        if method == "post" && !path.contains('{') {
            op.insert("x-falq-endpoint-id".into(), Value::String(path.trim_start_matches('/').to_string()));
        }
    }
    Ok(())
}

/// Header parameters the client sets once (`Authorization`, `Content-Type`, `Accept`)
/// are removed from every operation, `required: true` or not.
pub fn drop_transport_headers(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_operation(doc, |_, _, op| {
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            params.retain(|p| {
                let header = p.get("in").and_then(Value::as_str) == Some("header");
                let name = p.get("name").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                !(header && matches!(name.as_str(), "authorization" | "content-type" | "accept" | "user-agent"))
            });
        }
        if op.get("parameters").and_then(Value::as_array).is_some_and(|a| a.is_empty()) {
            op.remove("parameters");
        }
    });
    Ok(())
}

/// Operations progenitor cannot express (a non-JSON request body such as
/// `multipart/form-data`, a body on GET/HEAD/DELETE, cookie parameters) are
/// removed with a warning; the rest of the page is kept.
pub fn skip_unsupported_operations(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let source = ctx.source;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return Ok(()) };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let content: Vec<String> =
                op.pointer("/requestBody/content").and_then(Value::as_object).map(|c| c.keys().cloned().collect()).unwrap_or_default();
            let reason = if !content.is_empty() && !content.iter().any(|c| is_json(c)) {
                Some(format!("its request body is {} (only JSON bodies are supported)", content.join(", ")))
            } else if !content.is_empty() && matches!(method, "get" | "head" | "delete") {
                Some(format!("it sends a request body with {}", method.to_uppercase()))
            } else if op
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p.get("in").and_then(Value::as_str) == Some("cookie")))
            {
                Some("it takes cookie parameters".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                ctx.warnings.push(
                    source
                        .diag_at(path, format!("skipped {} {path}: {reason}", method.to_uppercase()))
                        .help("the rest of the page is generated; call this operation by hand"),
                );
                item.remove(method);
            }
        }
    }
    paths.retain(|_, item| item.as_object().is_some_and(|m| m.keys().any(|k| METHODS.contains(&k.as_str()))));
    Ok(())
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.starts_with("application/json;") || media_type.ends_with("+json")
}

/// A `{name}` in a path with no declared `in: path` parameter gets a string parameter
/// (progenitor would panic), with a warning.
pub fn declare_path_parameters(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    static PARAM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{([^{}/]+)\}").expect("regex"));
    let source = ctx.source;
    for (path, _, op) in ops_mut(doc) {
        for cap in PARAM.captures_iter(&path) {
            let name = &cap[1];
            let params = op.entry("parameters").or_insert_with(|| json!([]));
            let Some(params) = params.as_array_mut() else { continue };
            let declared = params
                .iter()
                .any(|p| p.get("in").and_then(Value::as_str) == Some("path") && p.get("name").and_then(Value::as_str) == Some(name));
            if !declared {
                ctx.warnings.push(source.diag_at(&path, format!("path parameter {{{name}}} of {path} is not declared; taken as a string")));
                params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
            }
        }
    }
    Ok(())
}

/// A request body or response with several media types keeps only its JSON one;
/// a JSON response without a schema gets `{}`; when success responses mix a JSON
/// body and no body, the body-less ones are dropped. Each change is a warning.
pub fn one_media_type(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let source = ctx.source;
    for (path, method, op) in ops_mut(doc) {
        let where_ = format!("{} {path}", method.to_uppercase());
        let keep_json = |content: &mut Map<String, Value>, what: &str, warnings: &mut Vec<Diagnostic>| {
            if content.len() > 1 && content.keys().any(|k| is_json(k)) {
                let dropped: Vec<String> = content.keys().filter(|k| !is_json(k)).cloned().collect();
                content.retain(|k, _| is_json(k));
                while content.len() > 1 {
                    let last = content.keys().next_back().cloned().unwrap_or_default();
                    content.remove(&last);
                }
                warnings
                    .push(source.diag_at(&path, format!("{where_}: {what} keeps application/json only (dropped {})", dropped.join(", "))));
            }
            for (mt, v) in content.iter_mut() {
                if is_json(mt)
                    && let Some(m) = v.as_object_mut()
                {
                    m.entry("schema").or_insert_with(|| json!({}));
                }
            }
        };
        if let Some(content) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")).and_then(Value::as_object_mut) {
            keep_json(content, "the request body", &mut ctx.warnings);
        }
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        for (code, r) in responses.iter_mut() {
            if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) {
                keep_json(content, &format!("response {code}"), &mut ctx.warnings);
            }
        }
        let success = |code: &str| code.starts_with('2') || code == "default";
        let has_body = |r: &Value| r.get("content").and_then(Value::as_object).is_some_and(|c| !c.is_empty());
        let with_body = responses.iter().filter(|(c, r)| success(c) && has_body(r)).count();
        let without: Vec<String> = responses.iter().filter(|(c, r)| success(c) && !has_body(r)).map(|(c, _)| c.clone()).collect();
        if with_body > 0 && !without.is_empty() {
            for c in &without {
                responses.remove(c);
            }
            ctx.warnings.push(
                source.diag_at(&path, format!("{where_}: dropped body-less success responses {} beside a JSON one", without.join(", "))),
            );
        }
    }
    Ok(())
}

/// A request body whose schema lists no properties (`properties: {}`, as Apifox exports a
/// body described only by its example) takes its fields from the page's example: types
/// from the values, nothing required, with a warning, each field listed in `inferred.md`.
/// Without it every field would be refused as unknown and the endpoint could not be called.
pub fn schema_from_example(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let source = ctx.source;
    let mut inferred: Vec<(Vec<String>, String)> = Vec::new();
    for (path, method, op) in ops_mut(doc) {
        let Some(content) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")).and_then(Value::as_object_mut) else { continue };
        for (mt, media) in content.iter_mut() {
            if !is_json(mt) {
                continue;
            }
            let Some(example) = media.get("example").filter(|e| e.as_object().is_some_and(|m| !m.is_empty())).cloned() else { continue };
            let Some(schema) = media.get_mut("schema").and_then(Value::as_object_mut) else { continue };
            let no_fields = schema.get("properties").is_none_or(|p| p.as_object().is_some_and(|p| p.is_empty()))
                && schema.get("$ref").is_none()
                && !["allOf", "oneOf", "anyOf", "additionalProperties"].iter().any(|k| schema.contains_key(*k))
                && schema.get("type").is_none_or(|t| t == "object");
            if !no_fields {
                continue;
            }
            let typed = schema_of_example(&example);
            let Some(props) = typed.get("properties").and_then(Value::as_object) else { continue };
            for (name, p) in props {
                let keys = vec![
                    "paths".into(),
                    path.clone(),
                    method.clone(),
                    "requestBody".into(),
                    "content".into(),
                    mt.clone(),
                    "schema".into(),
                    "properties".into(),
                    name.clone(),
                ];
                let t = p.get("type").and_then(Value::as_str).unwrap_or("any");
                inferred.push((keys, format!("{t}, from the request example")));
            }
            schema.insert("type".into(), json!("object"));
            schema.insert("properties".into(), Value::Object(props.clone()));
            ctx.warnings.push(
                source
                    .diag_at(
                        &path,
                        format!(
                            "{} {path}: the request schema lists no fields; {} taken from the page's example ({}), none required",
                            method.to_uppercase(),
                            props.len(),
                            props.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .help("describe the fields (required, enums, ranges) in specs/falq/overlays.yaml"),
            );
        }
    }
    for (keys, what) in inferred {
        let line = source.line_of(&format!("{}:", keys.last().map_or("", String::as_str)));
        ctx.inferred.push(Inference {
            file: source.file.clone(),
            line,
            place: describe_path(&keys),
            what,
            text: "(the request example)".into(),
        });
    }
    Ok(())
}

/// Where a page shows what an endpoint answers once it completes (its submit's `200` with
/// a schema, or an example, that is no queue status: some relays document the result
/// there), that becomes the endpoint's output (`{Operation}Output`, with the example kept
/// for the tests). The submit itself answers the queue status whatever the page shows
/// (`queue_status_response`); Apifox's alternate responses (`x-200:成功`) are read, then
/// dropped.
pub fn output_from_page(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let fields = ctx.queue_status_fields.clone();
    let source = ctx.source;
    let existing: BTreeSet<String> =
        doc.pointer("/components/schemas").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let is_status_shape = |m: &Map<String, Value>| m.keys().all(|k| fields.contains(k));
    let mut outputs: Vec<(String, Value)> = Vec::new();
    for (path, method, op) in ops_mut(doc) {
        if method != "post" || !op.contains_key("x-falq-endpoint-id") {
            continue;
        }
        let Some(id) = op.get("operationId").and_then(Value::as_str).map(str::to_string) else { continue };
        let mut found: Option<Value> = None;
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for (code, r) in responses.iter_mut().filter(|(c, _)| is_success_code(c)) {
                let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) else { continue };
                for (_, media) in content.iter_mut().filter(|(mt, _)| is_json(mt)) {
                    let Some(m) = media.as_object_mut() else { continue };
                    let props = m.get("schema").and_then(|s| s.get("properties")).and_then(Value::as_object);
                    let schema_is_output = props.is_some_and(|p| !p.is_empty() && !is_status_shape(p));
                    let example = m.get("example").and_then(Value::as_object).filter(|e| !e.is_empty() && !is_status_shape(e)).cloned();
                    let output = if schema_is_output {
                        let mut s = m.get("schema").cloned().unwrap_or_default();
                        if let (Some(s), Some(e)) = (s.as_object_mut(), &example) {
                            s.insert("x-falq-examples".into(), json!([e]));
                        }
                        Some(s)
                    } else {
                        example.as_ref().map(|e| output_schema_of_example(&Value::Object(e.clone())))
                    };
                    if let Some(output) = output {
                        // The example is the output's, not the queue status's.
                        if example.is_some() {
                            m.remove("example");
                        }
                        if found.is_none() {
                            ctx.warnings.push(source.diag_at(
                                &path,
                                format!("note: POST {path}: the page shows its result under {code}; it types the endpoint's output, and the submit answers the queue status"),
                            ));
                            found = Some(output);
                        }
                    }
                }
            }
            responses.retain(|code, _| !code.starts_with("x-"));
        }
        if let Some(output) = found {
            let name = crate::names::type_name(&format!("{id}_output"), "Output");
            let name = crate::walk::unique_name(&name, &|n| existing.contains(n) || outputs.iter().any(|(o, _)| o == n));
            op.insert("x-falq-output".into(), schema_ref(&name));
            outputs.push((name, output));
        }
    }
    add_components(doc, outputs);
    Ok(())
}

/// Adds schemas to the page's `components.schemas`.
fn add_components(doc: &mut Value, schemas: Vec<(String, Value)>) {
    if schemas.is_empty() {
        return;
    }
    let comps = doc.as_object_mut().map(|m| m.entry("components").or_insert_with(|| json!({})));
    let Some(comps) = comps.and_then(Value::as_object_mut) else { return };
    if let Some(all) = comps.entry("schemas").or_insert_with(|| json!({})).as_object_mut() {
        for (name, schema) in schemas {
            all.insert(name, schema);
        }
    }
}

/// `definitions:` (or `$defs:`) nested inside a schema are hoisted into
/// `components.schemas` (prefixed with the operation's name when the name is taken)
/// and references to them rewritten.
pub fn hoist_nested_definitions(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let mut hoisted: Vec<(String, Value)> = Vec::new();
    for_each_schema(doc, &mut |s| {
        if let Some(m) = s.as_object_mut() {
            for key in ["definitions", "$defs"] {
                if let Some(Value::Object(defs)) = m.remove(key) {
                    hoisted.extend(defs);
                }
            }
        }
    });
    if hoisted.is_empty() {
        return Ok(());
    }
    let existing: BTreeSet<String> =
        doc.pointer("/components/schemas").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let prefix = ops_mut(doc).first().and_then(|(_, _, op)| op.get("operationId").and_then(Value::as_str).map(pascal)).unwrap_or_default();
    let mut renames = Vec::new();
    let mut named = Vec::new();
    for (name, schema) in hoisted {
        let ascii = crate::names::type_name(&name, "Definition");
        let is_taken = |n: &str| existing.contains(n) || named.iter().any(|(m, _): &(String, Value)| m == n);
        let new = if is_taken(&ascii) { crate::walk::unique_name(&format!("{prefix}{ascii}"), &is_taken) } else { ascii };
        renames.push((name, new.clone()));
        named.push((new, schema));
    }
    let comps = doc.as_object_mut().map(|m| m.entry("components").or_insert_with(|| json!({})));
    let Some(comps) = comps.and_then(Value::as_object_mut) else { return Ok(()) };
    let schemas = comps.entry("schemas").or_insert_with(|| json!({}));
    if let Some(schemas) = schemas.as_object_mut() {
        for (n, s) in named {
            schemas.insert(n, s);
        }
    }
    for_each_schema(doc, &mut |s| {
        if let Some(r) = s.get_mut("$ref") {
            let Some(text) = r.as_str() else { return };
            for (old, new) in &renames {
                if text == format!("#/definitions/{old}")
                    || text == format!("#/$defs/{old}")
                    || text.ends_with(&format!("/definitions/{old}"))
                {
                    *r = Value::String(crate::walk::ref_to(new));
                    return;
                }
            }
        }
    });
    ctx.warnings.push(Diagnostic::new(
        &ctx.source.file,
        ctx.source.line_of("definitions:"),
        format!("hoisted nested definitions into components: {}", renames.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ")),
    ));
    Ok(())
}

/// OpenAPI 3.1 null types inside a 3.0 document: `type: 'null'` becomes `nullable: true`,
/// `type: [T, 'null']` becomes `type: T, nullable: true`, and a `{type: 'null'}` branch of
/// `oneOf`/`anyOf` is removed, making the whole schema nullable.
pub fn openapi31_null_type(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_root_schema(doc, &mut |root| walk_schema(root, &mut null_type_one));
    Ok(())
}

fn null_type_one(s: &mut Value) {
    let Some(m) = s.as_object_mut() else { return };
    match m.get("type").cloned() {
        Some(Value::String(t)) if t == "null" => {
            m.remove("type");
            m.insert("nullable".into(), Value::Bool(true));
        }
        Some(Value::Array(types)) => {
            let non_null: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
            if non_null.len() < types.len() {
                m.insert("nullable".into(), Value::Bool(true));
            }
            match non_null.len() {
                0 => {
                    m.remove("type");
                }
                1 => {
                    m.insert("type".into(), non_null[0].clone());
                }
                _ => {
                    m.remove("type");
                    m.insert("oneOf".into(), Value::Array(non_null.into_iter().map(|t| json!({"type": t})).collect()));
                }
            }
        }
        _ => {}
    }
    for key in ["oneOf", "anyOf"] {
        let Some(list) = m.get_mut(key).and_then(Value::as_array_mut) else { continue };
        let before = list.len();
        list.retain(|b| !(b.get("type").and_then(Value::as_str) == Some("null") && b.as_object().is_some_and(|o| o.len() == 1)));
        if list.len() < before {
            m.insert("nullable".into(), Value::Bool(true));
            collapse_single_branch(m, key);
        }
    }
}

fn collapse_single_branch(m: &mut Map<String, Value>, key: &str) {
    let single = m.get(key).and_then(Value::as_array).filter(|l| l.len() == 1).map(|l| l[0].clone());
    if let Some(Value::Object(branch)) = single {
        m.remove(key);
        for (k, v) in branch {
            m.entry(k).or_insert(v);
        }
    }
}

fn is_empty_object(s: &Value) -> bool {
    let Some(m) = s.as_object() else { return false };
    let props_empty = m.get("properties").is_none_or(|p| p.as_object().is_some_and(|p| p.is_empty()));
    m.get("type").and_then(Value::as_str) == Some("object")
        && props_empty
        && !m.contains_key("additionalProperties")
        && m.keys().all(|k| matches!(k.as_str(), "type" | "properties" | "description" | "title" | "required") || k.starts_with("x-"))
}

/// An empty-object branch of `oneOf`/`anyOf` says nothing about its shape: it is
/// dropped (with a warning naming the overlay to write); a single remaining branch is inlined.
pub fn drop_empty_object_branches(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let mut dropped = 0;
    for_each_schema(doc, &mut |s| {
        let Some(m) = s.as_object_mut() else { return };
        for key in ["oneOf", "anyOf"] {
            let Some(list) = m.get_mut(key).and_then(Value::as_array_mut) else { continue };
            let before = list.len();
            list.retain(|b| !is_empty_object(b));
            if list.len() < before && !list.is_empty() {
                dropped += before - list.len();
                collapse_single_branch(m, key);
            } else if list.is_empty() {
                m.remove(key);
            }
        }
    });
    if dropped > 0 {
        ctx.warnings.push(
            Diagnostic::new(
                &ctx.source.file,
                ctx.source.line_of("oneOf"),
                format!("dropped {dropped} empty-object branch(es) of oneOf/anyOf"),
            )
            .help("describe the object form in an overlay under specs/falq/ if the endpoint accepts one"),
        );
    }
    Ok(())
}

/// Schema `examples:` arrays (a 3.1-ism) and `example:` values move to `x-falq-examples`:
/// they never shape a type, and the conformance tests check the valid ones.
pub fn examples_out_of_schemas(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema(doc, &mut |s| {
        let Some(m) = s.as_object_mut() else { return };
        let mut kept: Vec<Value> = Vec::new();
        if let Some(Value::Array(list)) = m.remove("examples") {
            kept.extend(list);
        } else if let Some(Value::Object(named)) = m.get("examples").cloned() {
            m.remove("examples");
            kept.extend(named.into_values().map(|e| e.get("value").cloned().unwrap_or(e)));
        }
        if let Some(e) = m.remove("example") {
            kept.push(e);
        }
        if !kept.is_empty() {
            m.insert("x-falq-examples".into(), Value::Array(kept));
        }
    });
    Ok(())
}

/// A property listed in `required` whose description says it is optional (`可选`,
/// `选填`, `optional`) and does not also say required (`必填`) leaves `required`.
pub fn optional_from_prose(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema_at_mut(doc, &mut |keys, s| {
        let Some(m) = s.as_object_mut() else { return };
        let Some(props) = m.get("properties").and_then(Value::as_object) else { return };
        let optional: Vec<(String, String)> = props
            .iter()
            .filter_map(|(k, p)| {
                p.get("description").and_then(Value::as_str).filter(|d| says_optional(d)).map(|d| (k.clone(), d.to_string()))
            })
            .collect();
        if let Some(req) = m.get_mut("required").and_then(Value::as_array_mut) {
            for (name, text) in &optional {
                if req.iter().any(|r| r.as_str() == Some(name)) {
                    let mut k = keys.to_vec();
                    k.extend(["properties".to_string(), name.clone()]);
                    ctx.infer(&k, "optional (listed in required)".into(), text);
                }
            }
            req.retain(|r| r.as_str().is_none_or(|r| !optional.iter().any(|(n, _)| n == r)));
        }
    });
    Ok(())
}

/// A description saying the value may be null (`可为null`, `可为空`, `nullable`, `can be null`)
/// makes the schema `nullable: true`.
pub fn nullable_from_prose(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    static NULLABLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)可为\s*null|可为空|可以为空|可以为\s*null|\bnullable\b|can be null|may be null|or null\b").expect("regex")
    });
    for_each_schema_at_mut(doc, &mut |keys, s| {
        let Some(m) = s.as_object_mut() else { return };
        let Some(desc) = m.get("description").and_then(Value::as_str).filter(|d| NULLABLE.is_match(d)).map(str::to_string) else { return };
        if m.get("nullable") != Some(&Value::Bool(true)) {
            m.insert("nullable".into(), Value::Bool(true));
            ctx.infer(keys, "nullable".into(), &desc);
        }
    });
    Ok(())
}

fn schema_type(m: &Map<String, Value>) -> &str {
    m.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A default stated only in the description becomes `default:` (when the schema has none).
pub fn defaults_from_prose(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema_at_mut(doc, &mut |keys, s| {
        let Some(m) = s.as_object_mut() else { return };
        if m.contains_key("default") {
            return;
        }
        let Some(desc) = m.get("description").and_then(Value::as_str).map(str::to_string) else { return };
        if let Some(d) = default_in_prose(&desc, m) {
            ctx.infer(keys, format!("default {d}"), &desc);
            m.insert("default".into(), d);
        }
    });
    Ok(())
}

/// Bounds stated only in the description of a number or integer become
/// `minimum`/`maximum`; of a list (of anything but numbers, whose bounds may be the
/// items'), whole counts become `minItems`/`maxItems` (each only where the schema
/// states none).
pub fn ranges_from_prose(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema_at_mut(doc, &mut |keys, s| {
        let Some(m) = s.as_object_mut() else { return };
        let t = schema_type(m).to_string();
        let list =
            t == "array" && !m.get("items").and_then(Value::as_object).is_some_and(|i| matches!(schema_type(i), "integer" | "number"));
        if t != "integer" && t != "number" && !list {
            return;
        }
        let Some(desc) = m.get("description").and_then(Value::as_str).map(str::to_string) else { return };
        let (min, max) = range_in_prose(&desc);
        if let (Some(a), Some(b)) = (min, max)
            && a > b
        {
            return;
        }
        if list {
            let count = |v: Option<f64>| v.filter(|v| *v >= 0.0 && v.fract() == 0.0).map(|v| v as u64);
            if min.is_some_and(|v| count(Some(v)).is_none()) || max.is_some_and(|v| count(Some(v)).is_none()) {
                return;
            }
            for (key, bound) in [("minItems", count(min)), ("maxItems", count(max))] {
                if let Some(n) = bound.filter(|_| !m.contains_key(key)) {
                    m.insert(key.into(), Value::from(n));
                    ctx.infer(keys, format!("{key} {n}"), &desc);
                }
            }
            return;
        }
        let as_json = |v: f64| {
            if t == "integer" && v.fract() == 0.0 {
                Value::from(v as i64)
            } else {
                serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
            }
        };
        if let Some(min) = min.filter(|_| !m.contains_key("minimum")) {
            m.insert("minimum".into(), as_json(min));
            ctx.infer(keys, format!("minimum {}", as_json(min)), &desc);
        }
        if let Some(max) = max.filter(|_| !m.contains_key("maximum")) {
            m.insert("maximum".into(), as_json(max));
            ctx.infer(keys, format!("maximum {}", as_json(max)), &desc);
        }
    });
    Ok(())
}

/// Whether a field takes a file or URL: such a field's prose lists the file types it
/// accepts (`接受的文件类型：jpg、png`), never values to send.
fn takes_url(keys: &[String], m: &Map<String, Value>) -> bool {
    let name = keys.iter().rev().find(|k| !matches!(k.as_str(), "items" | "properties")).map_or("", String::as_str);
    name.ends_with("url") || name.ends_with("urls") || m.get("format").and_then(Value::as_str).is_some_and(|f| f == "uri" || f == "binary")
}

/// Allowed values stated only in the description of a string or number become `enum`
/// (`枚举值：16：9、9：16、auto`, `Enumerated values: 'none', 'regular'`, `支持：jpeg、png`,
/// `范围[720p，1080p]`), read as ASCII, each listed in `inferred.md`.
pub fn enums_from_prose(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema_at_mut(doc, &mut |keys, s| {
        let Some(m) = s.as_object_mut() else { return };
        if m.contains_key("enum") || takes_url(keys, m) {
            return;
        }
        let Some(desc) = m.get("description").and_then(Value::as_str).map(str::to_string) else { return };
        if let Some(values) = enum_in_prose(&desc, m) {
            let shown: Vec<String> = values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect();
            ctx.infer(keys, format!("one of {}", shown.join(", ")), &desc);
            m.insert("enum".into(), Value::Array(values));
        }
    });
    Ok(())
}

/// Enum values and defaults written with full-width punctuation (`16：9`) are what falq
/// sends and checks, so they are read as the ASCII they stand for (`16:9`); text with
/// ideographs is kept as written. Each change is listed in `inferred.md`.
pub fn ascii_values(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema_at_mut(doc, &mut |keys, s| {
        let Some(m) = s.as_object_mut() else { return };
        let mut changed = Vec::new();
        if let Some(values) = m.get_mut("enum").and_then(Value::as_array_mut) {
            for v in values.iter_mut() {
                if let Some(ascii) = v.as_str().and_then(ascii_value) {
                    changed.push(format!("{v} as {ascii:?}"));
                    *v = Value::String(ascii);
                }
            }
        }
        if let Some(d) = m.get_mut("default")
            && let Some(ascii) = d.as_str().and_then(ascii_value)
        {
            changed.push(format!("default {d} as {ascii:?}"));
            *d = Value::String(ascii);
        }
        if !changed.is_empty() {
            let text = m.get("description").and_then(Value::as_str).unwrap_or("").to_string();
            ctx.infer(keys, format!("read {}", changed.join(", ")), &text);
        }
    });
    Ok(())
}

/// Type names come from the endpoint, never from free-text titles: every `title` is
/// dropped, and each operation's inline JSON request body becomes the component
/// `{Operation}Input` (`Flux1DevReduxInput`).
pub fn names_from_endpoint(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    for_each_schema(doc, &mut |s| {
        if let Some(m) = s.as_object_mut()
            && m.get("title").is_some_and(Value::is_string)
        {
            m.remove("title");
        }
    });
    let existing: BTreeSet<String> =
        doc.pointer("/components/schemas").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let mut hoisted: Vec<(String, Value)> = Vec::new();
    let source = ctx.source;
    for (path, _, op) in ops_mut(doc) {
        let Some(id) = op.get("operationId").and_then(Value::as_str).map(str::to_string) else { continue };
        let Some(content) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")).and_then(Value::as_object_mut) else { continue };
        for (mt, media) in content.iter_mut() {
            if !is_json(mt) {
                continue;
            }
            let Some(schema) = media.get_mut("schema") else { continue };
            if schema.get("$ref").is_some() {
                continue;
            }
            let name = crate::names::type_name(&format!("{id}_input"), "Input");
            let unique = crate::walk::unique_name(&name, &|n| existing.contains(n) || hoisted.iter().any(|(h, _)| h == n));
            if unique != name {
                ctx.warnings.push(
                    source.diag_at(&path, format!("note: the page has a schema named {name} already; the input of {path} is {unique}")),
                );
            }
            hoisted.push((unique.clone(), std::mem::replace(schema, schema_ref(&unique))));
        }
    }
    if hoisted.is_empty() {
        return Ok(());
    }
    let comps = doc.as_object_mut().map(|m| m.entry("components").or_insert_with(|| json!({})));
    let Some(comps) = comps.and_then(Value::as_object_mut) else { return Ok(()) };
    let schemas = comps.entry("schemas").or_insert_with(|| json!({}));
    let Some(schemas) = schemas.as_object_mut() else { return Ok(()) };
    for (name, schema) in hoisted {
        schemas.insert(name, schema);
    }
    Ok(())
}

/// The success response of a submit (a POST on an endpoint path) is the shared
/// queue status, whatever the page shows: empty (`properties: {}`), a subset of its fields
/// copied inline, or the endpoint's result (which `output_from_page` took already). The
/// page's example of the status stays on the media type.
pub fn queue_status_response(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    for (_, method, op) in ops_mut(doc) {
        if method != "post" || !op.contains_key("x-falq-endpoint-id") {
            continue;
        }
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        for (code, r) in responses.iter_mut() {
            if !code.starts_with('2') {
                continue;
            }
            let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) else { continue };
            for (mt, media) in content.iter_mut() {
                if !is_json(mt) {
                    continue;
                }
                if let Some(schema) = media.get_mut("schema") {
                    *schema = schema_ref("QueueStatus");
                }
            }
        }
    }
    Ok(())
}

/// Any JSON response schema still inline gets a component of its own,
/// `{Operation}Response{code}`: progenitor names inline success and error
/// schemas alike, and one would silently replace the other.
pub fn name_inline_responses(doc: &mut Value, _: &mut Ctx) -> Result<(), Diagnostic> {
    let mut hoisted = Vec::new();
    for (_, _, op) in ops_mut(doc) {
        let Some(id) = op.get("operationId").and_then(Value::as_str).map(str::to_string) else { continue };
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        for (code, r) in responses.iter_mut() {
            let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) else { continue };
            for (mt, media) in content.iter_mut() {
                let Some(schema) = media.get_mut("schema") else { continue };
                if !is_json(mt) || schema.get("$ref").is_some() || schema.as_object().is_some_and(|m| m.is_empty()) {
                    continue;
                }
                let name = format!("{}Response{}", pascal(&id), pascal(code));
                hoisted.push((name.clone(), std::mem::replace(schema, schema_ref(&name))));
            }
        }
    }
    if hoisted.is_empty() {
        return Ok(());
    }
    let comps = doc.as_object_mut().map(|m| m.entry("components").or_insert_with(|| json!({})));
    if let Some(schemas) =
        comps.and_then(Value::as_object_mut).map(|c| c.entry("schemas").or_insert_with(|| json!({}))).and_then(Value::as_object_mut)
    {
        for (n, s) in hoisted {
            schemas.insert(n, s);
        }
    }
    Ok(())
}

/// A page exists to define an endpoint: one whose YAML has no path with an operation under
/// `paths:`, or a key there that is no path (the line naming it lost, so `post:` moved up),
/// is refused, at the line of what went astray, rather than read as a page of nothing.
pub fn check_page_paths(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let source = ctx.source;
    let help =
        "an Apifox page defines its endpoint as `paths:`, then `  /BASE_URL/owner/app:`, then `    post:`, each indented below the last";
    let paths = doc.get("paths").and_then(Value::as_object);
    if let Some(stray) = paths.into_iter().flatten().map(|(k, _)| k).find(|k| !k.starts_with('/') && !BASE_URL_PREFIX.is_match(k)) {
        return Err(Diagnostic::new(
            &source.file,
            source.line_of_path(&["paths", stray]),
            format!("`{stray}` under `paths:` is no path (a path starts with /)"),
        )
        .help(help));
    }
    for (path, item) in paths.into_iter().flatten() {
        let Some((method, op)) = item.as_object().into_iter().flatten().find(|(k, v)| METHODS.contains(&k.as_str()) && !v.is_object())
        else {
            continue;
        };
        return Err(Diagnostic::new(
            &source.file,
            source.line_of_path(&["paths", path, method]),
            format!("{} {path} holds no operation (found {op})", method.to_uppercase()),
        )
        .help(help));
    }
    // The keys of a body's or an answer's `content:` are media types (`application/json:`
    // lost, `schema:` would stand in its place).
    for (path, item) in paths.into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten().filter(|(k, _)| METHODS.contains(&k.as_str())) {
            let answers =
                op.get("responses").and_then(Value::as_object).into_iter().flatten().map(|(code, r)| (vec!["responses", code.as_str()], r));
            for (at, part) in op.get("requestBody").map(|b| (vec!["requestBody"], b)).into_iter().chain(answers) {
                let Some(key) =
                    part.get("content").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k).find(|k| !k.contains('/'))
                else {
                    continue;
                };
                let keys: Vec<&str> = ["paths", path.as_str(), method.as_str()]
                    .into_iter()
                    .chain(at.iter().copied())
                    .chain(["content", key.as_str()])
                    .collect();
                return Err(Diagnostic::new(
                    &source.file,
                    source.line_of_path(&keys),
                    format!("{} {path}, {}: `{key}` under `content:` is no media type", method.to_uppercase(), at.join(" ")),
                )
                .help("a media type reads like application/json: the line naming it may be lost"));
            }
        }
    }
    let has_operation = |item: &Value| item.as_object().is_some_and(|m| m.keys().any(|k| METHODS.contains(&k.as_str())));
    if paths.is_some_and(|p| p.values().any(has_operation)) {
        return Ok(());
    }
    // A path key outside `paths:` (its line lost, or an indent changed).
    let astray = source.text.lines().position(|l| {
        let key = l.trim().trim_end_matches(':').trim_matches(['\'', '"']);
        l.starts_with(' ') && l.trim_end().ends_with(':') && (key.starts_with('/') || BASE_URL_PREFIX.is_match(key))
    });
    let (line, found) = match astray {
        Some(i) if paths.is_none_or(|p| p.is_empty()) => {
            (source.line + i, format!(": {} is not under it", source.text.lines().nth(i).unwrap_or("").trim()))
        }
        _ => (source.line_of_path(&["paths"]), String::new()),
    };
    Err(Diagnostic::new(&source.file, line, format!("this page defines no endpoint (a path with an operation) under `paths:`{found}"))
        .help(help))
}

/// The page's paths and components as `openapiv3` reads them (what progenitor is given once
/// the pages are merged): whatever it refuses is refused here, at the page's line and with
/// the place in words, rather than later in a merged spec that no page can be blamed for.
pub fn check_openapi_shape(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let refused = match (doc.get("paths"), doc.get("components")) {
        (Some(paths), _) if <openapiv3::Paths as serde::Deserialize>::deserialize(paths).is_err() => {
            Some(refusal::<openapiv3::Paths>(paths, "paths"))
        }
        (_, Some(c)) if !c.is_null() && <openapiv3::Components as serde::Deserialize>::deserialize(c).is_err() => {
            Some(refusal::<openapiv3::Components>(c, "components"))
        }
        _ => None,
    };
    if let Some((keys, what)) = refused {
        let place = match keys.as_slice() {
            [p, path, method, rest @ ..] if p == "paths" && !rest.is_empty() => {
                format!("{} {path}, {}", method.to_uppercase(), rest.join("."))
            }
            _ => keys.join("."),
        };
        return Err(Diagnostic::new(&ctx.source.file, page_line(ctx.source, &keys), format!("{place}: not OpenAPI 3.0: {what}"))
            .help("correct the page there (or the relay's export): regen reads it as OpenAPI 3.0.1"));
    }
    // What the catalogue reads of an endpoint: the JSON schema of its input.
    for (path, method, op) in ops_mut(doc) {
        if op.contains_key("x-falq-endpoint-id")
            && method == "post"
            && op.get("requestBody").is_none_or(|b| b.pointer("/content/application~1json/schema").is_none())
        {
            let keys = ["paths", &path, "post", "requestBody", "content"].map(String::from);
            return Err(Diagnostic::new(
                &ctx.source.file,
                page_line(ctx.source, &keys),
                format!("POST {path}: the endpoint has no JSON input schema (requestBody: content: application/json: schema:)"),
            )
            .help("a fal endpoint takes its input as a JSON object: correct the page's requestBody"));
        }
    }
    Ok(())
}

/// The page's line of `keys` in the normalized document: the page writes a path as it was
/// before its base URL placeholder went.
fn page_line(source: &Source, keys: &[String]) -> usize {
    let mut keys = keys.to_vec();
    if keys.len() > 1 && keys[0] == "paths" {
        let raw = source
            .text
            .lines()
            .map(|l| l.trim().trim_end_matches(':').trim_matches(['\'', '"']))
            .find(|l| without_base_url_placeholder(l) == keys[1]);
        if let Some(raw) = raw {
            keys[1] = raw.to_string();
        }
    }
    source.line_of_path(&keys_str(&keys))
}

/// Where in `part` (found at `top`) `T` refuses it, and why: the deepest member or item
/// whose removal lets `T` read the rest (or, a required one, leaves only its absence).
/// `openapiv3`'s types flatten their extensions, which hides the place from serde's errors.
fn refusal<T: serde::de::DeserializeOwned>(part: &Value, top: &str) -> (Vec<String>, String) {
    let reads = |v: &Value| T::deserialize(v).map(drop).map_err(|e| e.to_string());
    let why = reads(part).err().unwrap_or_default();
    let mut at: Vec<String> = Vec::new();
    loop {
        let node = at.iter().try_fold(part, |v, k| match v {
            Value::Object(m) => m.get(k),
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        });
        let children: Vec<String> = match node {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            Some(Value::Array(a)) => (0..a.len()).map(|i| i.to_string()).collect(),
            _ => Vec::new(),
        };
        let without = |child: &str| {
            let mut trial = part.clone();
            let parent = at.iter().try_fold(&mut trial, |v, k| match v {
                Value::Object(m) => m.get_mut(k),
                Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                _ => None,
            });
            match parent {
                Some(Value::Object(m)) => drop(m.shift_remove(child)),
                Some(Value::Array(a)) => drop(child.parse::<usize>().ok().filter(|i| *i < a.len()).map(|i| a.remove(i))),
                _ => {}
            }
            trial
        };
        // A required member whose value is wrong leaves only its absence when removed.
        let culprit = |c: &String| match reads(&without(c)) {
            Ok(()) => true,
            Err(e) => e.starts_with(&format!("missing field `{c}`")),
        };
        match children.into_iter().find(culprit) {
            Some(c) => at.push(c),
            None => break,
        }
    }
    (std::iter::once(top.to_string()).chain(at).collect(), why)
}

/// A `$ref` must name a schema of the page (or of the authored spec), and no schema
/// may refer back to itself: a recursive schema is refused with the page's line and
/// the cycle, since the validators, the CLI's field table and the simulator walk
/// schemas by following references.
pub fn refuse_recursive_refs(doc: &mut Value, ctx: &mut Ctx) -> Result<(), Diagnostic> {
    let source = ctx.source;
    let components: BTreeSet<String> =
        doc.pointer("/components/schemas").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let line_of_ref = |name: &str| {
        let short = name.rsplit('/').next().unwrap_or(name);
        source.text.lines().position(|l| l.contains("$ref") && l.contains(short)).map_or_else(|| source.line_of(short), |i| source.line + i)
    };
    let mut all = Vec::new();
    refs_in(doc, &mut all);
    for r in &all {
        let ok = component_name(r).is_some_and(|n| components.contains(n) || ctx.known_schemas.contains(n));
        if !ok
            && !r.starts_with("#/components/parameters/")
            && !r.starts_with("#/components/responses/")
            && !r.starts_with("#/components/requestBodies/")
        {
            return Err(Diagnostic::new(&source.file, line_of_ref(r), format!("$ref {r:?} names no schema of this page"))
                .help("define the schema under components: schemas:, or correct the reference"));
        }
    }
    let edges: std::collections::BTreeMap<String, Vec<String>> = components
        .iter()
        .map(|n| {
            let mut out = Vec::new();
            refs_in(&doc["components"]["schemas"][n], &mut out);
            (n.clone(), out.iter().filter_map(|r| component_name(r)).filter(|t| components.contains(*t)).map(str::to_string).collect())
        })
        .collect();
    // Depth-first search with an explicit stack: 0 unseen, 1 on the path, 2 done.
    let mut state: std::collections::BTreeMap<&str, u8> = std::collections::BTreeMap::new();
    for start in &components {
        if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        state.insert(start, 1);
        while let Some((node, next)) = path.last().copied() {
            let children = &edges[node];
            if next < children.len() {
                path.last_mut().expect("non-empty").1 += 1;
                let child = children[next].as_str();
                match state.get(child).copied().unwrap_or(0) {
                    0 => {
                        state.insert(child, 1);
                        path.push((child, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let cycle: Vec<&str> = path[from..].iter().map(|(n, _)| *n).chain([child]).collect();
                        return Err(Diagnostic::new(&source.file, line_of_ref(child), format!("schema {child} refers back to itself ({}): recursive schemas are not supported", cycle.join(" → ")))
                            .help("describe the nested level without a reference to itself in specs/falq/overlays.yaml (for example as a free-form object)"));
                    }
                    _ => {}
                }
            } else {
                state.insert(node, 2);
                path.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn source() -> Source {
        Source { file: PathBuf::from("specs/page.md"), line: 5, text: String::new() }
    }

    /// Runs one rule on `before` (YAML) and compares with `after` (YAML); returns the warnings.
    fn check(rule: &str, before: &str, after: &str) -> Vec<Diagnostic> {
        let rule = RULES.iter().find(|r| r.name == rule).expect("a rule of that name");
        let mut doc = crate::load::yaml_to_json(&serde_yaml::from_str(before).unwrap()).unwrap();
        let expected = crate::load::yaml_to_json(&serde_yaml::from_str(after).unwrap()).unwrap();
        let src = source();
        let mut ctx = Ctx::new(&src);
        ctx.queue_status_fields = ["status", "request_id", "response_url", "status_url", "cancel_url", "logs", "metrics", "queue_position"]
            .map(String::from)
            .into();
        (rule.apply)(&mut doc, &mut ctx).expect("rule applies");
        assert!(
            doc == expected,
            "{} gave\n{}\nexpected\n{}",
            rule.name,
            serde_json::to_string_pretty(&doc).unwrap(),
            serde_json::to_string_pretty(&expected).unwrap()
        );
        ctx.warnings
    }

    #[test]
    fn every_rule_has_a_test_below() {
        let me = include_str!("normalize.rs");
        let tests = &me[me.find("mod tests").expect("a test module")..];
        let compact: String = tests.chars().filter(|c| !c.is_whitespace()).collect();
        for rule in RULES {
            assert!(compact.contains(&format!("check(\"{}\"", rule.name)), "rule {} has no before/after test", rule.name);
        }
    }

    /// Runs one rule on a page's YAML text and answers its error.
    fn check_err(rule: &str, page: &str) -> Diagnostic {
        let rule = RULES.iter().find(|r| r.name == rule).expect("a rule of that name");
        let mut doc = crate::load::yaml_to_json(&serde_yaml::from_str(page).unwrap()).unwrap();
        let src = Source { file: PathBuf::from("specs/page.md"), line: 10, text: page.to_string() };
        let mut ctx = Ctx::new(&src);
        (rule.apply)(&mut doc, &mut ctx).expect_err("the rule refuses the page")
    }

    /// Runs the normalization up to and including `rule` on a page's YAML text, as regen
    /// does, and answers its error.
    fn refused_by(rule: &str, page: &str) -> Diagnostic {
        let mut doc = crate::load::yaml_to_json(&serde_yaml::from_str(page).unwrap()).unwrap();
        let src = Source { file: PathBuf::from("specs/page.md"), line: 10, text: page.to_string() };
        let mut ctx = Ctx::new(&src);
        for r in RULES {
            if let Err(e) = (r.apply)(&mut doc, &mut ctx) {
                assert_eq!(r.name, rule, "refused by {} first: {e}", r.name);
                return e;
            }
        }
        panic!("{rule} took the page")
    }

    #[test]
    fn check_page_paths_case() {
        let fine = "paths: {/a/b: {post: {}}}";
        check("check_page_paths", fine, fine);
        // `paths:` lost: the endpoint lands under `info:`.
        let e = refused_by("check_page_paths", "openapi: 3.0.1\ninfo:\n  title: ''\n  /BASE_URL/fal-ai/x:\n    post:\n      summary: s\n");
        assert_eq!(e.line, 13, "{e}");
        assert!(
            e.message.contains("defines no endpoint (a path with an operation) under `paths:`: /BASE_URL/fal-ai/x: is not under it"),
            "{e}"
        );
        // The path's line lost: `post:` moves up under `paths:`.
        let e = refused_by("check_page_paths", "openapi: 3.0.1\npaths:\n  post:\n    summary: s\n");
        assert_eq!((e.line, e.message.as_str()), (12, "`post` under `paths:` is no path (a path starts with /)"), "{e}");
        // An indent lost below `post:` leaves it empty.
        let e = refused_by("check_page_paths", "openapi: 3.0.1\npaths:\n  /fal-ai/x:\n    post:\nsummary: s\n");
        assert_eq!((e.line, e.message.as_str()), (13, "POST /fal-ai/x holds no operation (found null)"), "{e}");
        // `application/json:` lost: `schema:` stands where the media type belongs.
        let e = refused_by(
            "check_page_paths",
            "openapi: 3.0.1\npaths:\n  /fal-ai/x:\n    post:\n      requestBody:\n        content:\n          schema: {type: object}\n",
        );
        assert_eq!((e.line, e.message.as_str()), (16, "POST /fal-ai/x, requestBody: `schema` under `content:` is no media type"), "{e}");
        let e = refused_by(
            "check_page_paths",
            "openapi: 3.0.1\npaths:\n  /fal-ai/x:\n    post:\n      responses:\n        '200':\n          content:\n            schema: {}\n",
        );
        assert_eq!((e.line, e.message.as_str()), (17, "POST /fal-ai/x, responses 200: `schema` under `content:` is no media type"), "{e}");
        for page in [
            "openapi: 3.0.1\ninfo: {title: t}\n",
            "openapi: 3.0.1\npaths: {}\n",
            "openapi: 3.0.1\npaths: [a]\n",
            "openapi: 3.0.1\npaths:\n  /fal-ai/x:\n    summary: no operation\n",
        ] {
            let e = refused_by("check_page_paths", page);
            assert!(e.message.contains("defines no endpoint"), "{page}: {e}");
            assert!((10..=11).contains(&e.line), "{page}: {e}");
        }
    }

    #[test]
    fn check_openapi_shape_case() {
        let fine = "paths: {/fal-ai/x: {post: {parameters: [{name: a, in: query, schema: {type: string}}], responses: {'200': {description: ok}}}}}";
        check("check_openapi_shape", fine, fine);
        let op = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /BASE_URL/fal-ai/x:\n    post:\n";
        for (rest, line, what) in [
            // A list where a mapping belongs, at the page's own path (before /BASE_URL went).
            (
                "      responses:\n        - '200'\n",
                15,
                "POST /fal-ai/x, responses: not OpenAPI 3.0: invalid type: sequence, expected struct Responses",
            ),
            (
                "      responses:\n        '200':\n          description: ok\n      deprecated: maybe\n",
                18,
                "POST /fal-ai/x, deprecated: not OpenAPI 3.0: invalid type: string \"maybe\", expected a boolean",
            ),
            // A response with no description: the member that lacks it.
            (
                "      responses:\n        '200':\n          content: {}\n",
                16,
                "POST /fal-ai/x, responses.200: not OpenAPI 3.0: missing field `description`",
            ),
        ] {
            let e = refused_by("check_openapi_shape", &format!("{op}{rest}"));
            assert_eq!((e.line, e.message.as_str()), (line, what), "{rest}: {e}");
            assert_eq!(e.file, PathBuf::from("specs/page.md"));
        }
        // `content:` lost: the body's media type stands where its content belongs.
        let e = refused_by(
            "check_openapi_shape",
            &format!(
                "{op}      requestBody:\n        application/json:\n          schema: {{type: object, properties: {{prompt: {{type: string}}}}}}\n      responses:\n        '200':\n          description: ok\n"
            ),
        );
        assert_eq!(
            (e.line, e.message.as_str()),
            (15, "POST /fal-ai/x: the endpoint has no JSON input schema (requestBody: content: application/json: schema:)"),
            "{e}"
        );
        let components = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /fal-ai/x:\n    post:\n      responses:\n        '200':\n          description: ok\ncomponents:\n  securitySchemes:\n    key: 3\n";
        let e = refused_by("check_openapi_shape", components);
        assert!(e.message.starts_with("components.securitySchemes.key: not OpenAPI 3.0"), "{e}");
        assert_eq!(e.line, 20, "{e}");
    }

    #[test]
    fn check_schema_types_case() {
        let fine = "paths: {/a/b: {post: {requestBody: {content: {application/json: {schema: {type: object, properties: {n: {type: [integer, 'null'], enum: [1, 2, null]}, s: {type: string, enum: [a]}}}}}}}}}";
        check("check_schema_types", fine, fine);
        let page = "paths:\n  /BASE_URL/fal-ai/x:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                prompt:\n                  type: string\n                image:\n                  type: file\n";
        let e = check_err("check_schema_types", page);
        assert_eq!((e.line, e.message.as_str()), (21, "POST /BASE_URL/fal-ai/x, field image: unknown type \"file\""), "{e}");
        assert!(e.help.as_deref().unwrap_or("").contains("format: binary"), "{e}");
        let page = "components:\n  schemas:\n    In:\n      type: object\n      properties:\n        n:\n          type: integer\n          enum: [a, b]\n";
        let e = check_err("check_schema_types", page);
        assert_eq!(e.line, 15, "{e}");
        assert!(e.message.contains("schema In, field n: enum value \"a\" contradicts type integer"), "{e}");
        for (page, what) in [
            ("components: {schemas: {In: {type: object, properties: {p: }}}}", "field p: the property has no schema"),
            ("components: {schemas: {In: {type: object, properties: [a]}}}", "`properties` must be a mapping"),
            ("components: {schemas: {In: {type: integer, maximum: ten}}}", "`maximum` must be a number"),
            ("components: {schemas: {In: {type: array, items: [{type: string}]}}}", "`items` must be one schema"),
            ("components: {schemas: {In: {enum: [a, 1]}}}", "contradicts the other values' type"),
        ] {
            let e = check_err("check_schema_types", page);
            assert!(e.message.contains(what), "{page}: {e}");
        }
    }

    #[test]
    fn untyped_colliding_properties_case() {
        let w = check(
            "untyped_colliding_properties",
            "components: {schemas: {In: {type: object, properties: {num-images: {type: integer}, num_images: {type: integer}, statusUrl: {type: string}, status_url: {type: string}, 写实: {type: string}}}}}",
            "components: {schemas: {In: {type: object, properties: {num-images: {type: integer, x-falq-untyped: true}, num_images: {type: integer}, statusUrl: {type: string, x-falq-untyped: true}, status_url: {type: string}, 写实: {type: string}}}}}",
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].message.contains("\"num-images\" and \"num_images\" are both the Rust field `num_images`"), "{}", w[0]);
    }

    #[test]
    fn refuse_recursive_refs_case() {
        let fine = "components: {schemas: {A: {properties: {b: {$ref: '#/components/schemas/B'}}}, B: {type: string}}}";
        check("refuse_recursive_refs", fine, fine);
        let page = "components:\n  schemas:\n    Node:\n      type: object\n      properties:\n        children:\n          type: array\n          items:\n            $ref: '#/components/schemas/Node'\n";
        let e = check_err("refuse_recursive_refs", page);
        assert!(e.message.contains("schema Node refers back to itself (Node → Node)"), "{e}");
        assert_eq!(e.line, 18, "{e}");
        let page = "components: {schemas: {A: {properties: {b: {$ref: '#/components/schemas/C'}}}, C: {properties: {a: {$ref: '#/components/schemas/A'}}}}}";
        assert!(check_err("refuse_recursive_refs", page).message.contains("(A → C → A)"));
        let page = "components: {schemas: {A: {properties: {b: {$ref: '#/components/schemas/Missing'}}}}}";
        assert!(check_err("refuse_recursive_refs", page).message.contains("names no schema of this page"));
    }

    #[test]
    fn drop_apifox_noise_case() {
        check(
            "drop_apifox_noise",
            "paths: {/a: {post: {tags: [绘图], deprecated: false, security: [], x-apifox-folder: f, x-run-in-apifox: u, responses: {'200': {description: '', headers: {}, x-apifox-name: 成功}}}}}\nservers: []\nsecurity: []\ncomponents: {schemas: {}, securitySchemes: {}}",
            "paths: {/a: {post: {responses: {'200': {description: ''}}}}}\ncomponents: {schemas: {}}",
        );
    }

    #[test]
    fn strip_base_url_placeholder_case() {
        check("strip_base_url_placeholder", "paths: {/BASE_URL/fal-ai/x: {}}", "paths: {/fal-ai/x: {}}");
        check("strip_base_url_placeholder", "paths: {'{{BASE_URL}}/fal-ai/x/y': {}}", "paths: {/fal-ai/x/y: {}}");
        check(
            "strip_base_url_placeholder",
            "paths: {'/{{ BASE_URL }}/fal-ai/x': {}, /other/app: {}}",
            "paths: {/fal-ai/x: {}, /other/app: {}}",
        );
        // A bare path beside a `servers:` URL (anyapi, chainhub) is the same endpoint path.
        check(
            "strip_base_url_placeholder",
            "servers: [{url: 'https://www.anyapi.vip'}]\npaths: {/fal-ai/veo3: {}}",
            "servers: [{url: 'https://www.anyapi.vip'}]\npaths: {/fal-ai/veo3: {}}",
        );
        for (page, normalized) in [
            ("/BASE_URL/fal-ai/x", "/fal-ai/x"),
            ("{{BASE_URL}}/fal-ai/x", "/fal-ai/x"),
            ("/{BASE_URL}/fal-ai/x", "/fal-ai/x"),
            ("/fal-ai/x", "/fal-ai/x"),
            ("fal-ai/x", "/fal-ai/x"),
        ] {
            assert_eq!(without_base_url_placeholder(page), normalized, "{page}");
        }
    }

    #[test]
    fn operation_id_from_path_case() {
        check(
            "operation_id_from_path",
            "paths: {/fal-ai/flux-1/dev/redux: {post: {}}, /owner/my.app/v2: {post: {operationId: kept}}}",
            "paths: {/fal-ai/flux-1/dev/redux: {post: {operationId: flux_1_dev_redux, x-falq-endpoint-id: fal-ai/flux-1/dev/redux}}, /owner/my.app/v2: {post: {operationId: kept, x-falq-endpoint-id: owner/my.app/v2}}}",
        );
        assert_eq!(operation_id_for("/fal-ai/flux-pro/kontext/max/multi"), "flux_pro_kontext_max_multi");
        assert_eq!(operation_id_for("/workflows/me/wf"), "workflows_me_wf");
    }

    #[test]
    fn operation_id_from_path_rejects_a_bare_path() {
        let mut doc = json!({"paths": {"/redux": {"post": {}}}});
        let src = Source { file: PathBuf::from("p.md"), line: 3, text: "paths:\n  /redux:\n".into() };
        let mut ctx = Ctx::new(&src);
        let err = operation_id_from_path(&mut doc, &mut ctx).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.message.contains("/owner/app"), "{err}");
    }

    #[test]
    fn drop_transport_headers_case() {
        check(
            "drop_transport_headers",
            "paths: {/a/b: {post: {parameters: [{name: Authorization, in: header, required: true}, {name: content-type, in: header}, {name: Accept, in: header}, {name: X-Fal-Queue-Priority, in: header}]}}}",
            "paths: {/a/b: {post: {parameters: [{name: X-Fal-Queue-Priority, in: header}]}}}",
        );
        check(
            "drop_transport_headers",
            "paths: {/a/b: {post: {parameters: [{name: Authorization, in: header}]}}}",
            "paths: {/a/b: {post: {}}}",
        );
    }

    #[test]
    fn skip_unsupported_operations_case() {
        let w = check(
            "skip_unsupported_operations",
            "paths: {/a/up: {post: {requestBody: {content: {multipart/form-data: {}}}}}, /a/get: {get: {requestBody: {content: {application/json: {}}}}, put: {}}, /a/c: {get: {parameters: [{in: cookie, name: s}]}}, /a/ok: {post: {requestBody: {content: {application/json: {}}}}}}",
            "paths: {/a/get: {put: {}}, /a/ok: {post: {requestBody: {content: {application/json: {}}}}}}",
        );
        assert_eq!(w.len(), 3);
        assert!(w[0].message.contains("multipart/form-data"), "{}", w[0]);
        assert!(w[1].message.contains("request body with GET"), "{}", w[1]);
        assert!(w[2].message.contains("cookie"), "{}", w[2]);
    }

    #[test]
    fn declare_path_parameters_case() {
        let w = check(
            "declare_path_parameters",
            "paths: {'/a/b/{id}': {get: {}}}",
            "paths: {'/a/b/{id}': {get: {parameters: [{name: id, in: path, required: true, schema: {type: string}}]}}}",
        );
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn one_media_type_case() {
        check(
            "one_media_type",
            "paths: {/a/b: {post: {requestBody: {content: {application/json: {schema: {type: object}}, application/xml: {}}}, responses: {'200': {content: {application/json: {}}}, '204': {description: none}}}}}",
            "paths: {/a/b: {post: {requestBody: {content: {application/json: {schema: {type: object}}}}, responses: {'200': {content: {application/json: {schema: {}}}}}}}}",
        );
    }

    #[test]
    fn hoist_nested_definitions_case() {
        check(
            "hoist_nested_definitions",
            "paths: {/a/b: {post: {operationId: a_b, requestBody: {content: {application/json: {schema: {type: object, properties: {lora: {$ref: '#/definitions/LoraWeight'}}, definitions: {LoraWeight: {type: object, properties: {path: {type: string}}}}}}}}}}}",
            "paths: {/a/b: {post: {operationId: a_b, requestBody: {content: {application/json: {schema: {type: object, properties: {lora: {$ref: '#/components/schemas/LoraWeight'}}}}}}}}}\ncomponents: {schemas: {LoraWeight: {type: object, properties: {path: {type: string}}}}}",
        );
    }

    #[test]
    fn openapi31_null_type_case() {
        check(
            "openapi31_null_type",
            "components: {schemas: {A: {type: object, properties: {a: {type: [integer, 'null']}, b: {anyOf: [{type: string}, {type: 'null'}]}, c: {type: 'null'}}}}}",
            "components: {schemas: {A: {type: object, properties: {a: {type: integer, nullable: true}, b: {nullable: true, type: string}, c: {nullable: true}}}}}",
        );
    }

    #[test]
    fn drop_empty_object_branches_case() {
        let w = check(
            "drop_empty_object_branches",
            "components: {schemas: {A: {type: object, properties: {image_size: {description: d, oneOf: [{type: object, properties: {}}, {type: string, enum: [square, square_hd]}]}}}}}",
            "components: {schemas: {A: {type: object, properties: {image_size: {description: d, type: string, enum: [square, square_hd]}}}}}",
        );
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn examples_out_of_schemas_case() {
        check(
            "examples_out_of_schemas",
            "components: {schemas: {A: {type: object, properties: {p: {type: string, examples: [a cat]}, n: {type: integer, example: x}}}}}",
            "components: {schemas: {A: {type: object, properties: {p: {type: string, x-falq-examples: [a cat]}, n: {type: integer, x-falq-examples: [x]}}}}}",
        );
    }

    #[test]
    fn optional_from_prose_case() {
        check(
            "optional_from_prose",
            "components: {schemas: {A: {type: object, properties: {image_url: {description: 必填。原图URL}, steps: {description: 可选。推理步数}, seed: {description: 随机种子(可选，相同seed可复刻)}, x: {description: Optional. A thing}, y: {description: 非必填}, z: {}}, required: [image_url, steps, seed, x, y, z]}}}",
            "components: {schemas: {A: {type: object, properties: {image_url: {description: 必填。原图URL}, steps: {description: 可选。推理步数}, seed: {description: 随机种子(可选，相同seed可复刻)}, x: {description: Optional. A thing}, y: {description: 非必填}, z: {}}, required: [image_url, z]}}}",
        );
    }

    #[test]
    fn nullable_from_prose_case() {
        check(
            "nullable_from_prose",
            "components: {schemas: {A: {properties: {seed: {type: integer, description: 可选。随机种子，可为null}, b: {type: string, description: 可为空}, c: {type: string, description: a name}}}}}",
            "components: {schemas: {A: {properties: {seed: {type: integer, description: 可选。随机种子，可为null, nullable: true}, b: {type: string, description: 可为空, nullable: true}, c: {type: string, description: a name}}}}}",
        );
    }

    #[test]
    fn defaults_from_prose_case() {
        check(
            "defaults_from_prose",
            r#"components: {schemas: {A: {properties: {
                steps: {type: integer, description: '可选。推理步数，默认28，范围1-50'},
                g: {type: number, description: 'CFG，默认值3.5（可选）'},
                n: {type: integer, description: '生成图片数量，默认为1（可选）'},
                s: {type: boolean, description: '是否启用安全检测，默认true'},
                f: {type: string, enum: [jpeg, png], description: '格式，默认 jpeg'},
                t: {type: string, enum: ['1', '2'], description: '安全容忍度，默认2'},
                e: {type: integer, description: 'Default: 4 Range: 1-12'},
                kept: {type: integer, default: 7, description: '默认3'},
                free: {type: string, description: '默认 something'},
                neg: {type: string, description: '反向提示词，默认 "blur, distort, and low quality"'},
                wrong: {type: string, enum: [a, b], description: '默认c'}}}}}"#,
            r#"components: {schemas: {A: {properties: {
                steps: {type: integer, description: '可选。推理步数，默认28，范围1-50', default: 28},
                g: {type: number, description: 'CFG，默认值3.5（可选）', default: 3.5},
                n: {type: integer, description: '生成图片数量，默认为1（可选）', default: 1},
                s: {type: boolean, description: '是否启用安全检测，默认true', default: true},
                f: {type: string, enum: [jpeg, png], description: '格式，默认 jpeg', default: jpeg},
                t: {type: string, enum: ['1', '2'], description: '安全容忍度，默认2', default: '2'},
                e: {type: integer, description: 'Default: 4 Range: 1-12', default: 4},
                kept: {type: integer, default: 7, description: '默认3'},
                free: {type: string, description: '默认 something'},
                neg: {type: string, description: '反向提示词，默认 "blur, distort, and low quality"', default: 'blur, distort, and low quality'},
                wrong: {type: string, enum: [a, b], description: '默认c'}}}}}"#,
        );
    }

    #[test]
    fn ranges_from_prose_case() {
        check(
            "ranges_from_prose",
            r#"components: {schemas: {A: {properties: {
                steps: {type: integer, description: '可选。推理步数，默认28，范围1-50'},
                g: {type: number, description: '默认3.5，取值范围[1,20]。'},
                n1: {type: integer, description: '可选。生成图片数量，默认1，1-4'},
                n2: {type: integer, description: '生成图片数量，取值1-4，默认1'},
                n3: {type: integer, description: '一次生成图片数量，默认1，最多4。'},
                e: {type: integer, description: 'Default: 4 Range: 1-12'},
                tol: {type: string, description: '1最严格，6最宽松'},
                seed: {type: integer, description: '1最严格，6最宽松'},
                kept: {type: integer, maximum: 9, description: '范围1-50'},
                urls: {type: array, items: {type: string}, description: '图片列表，最多10张'},
                refs: {type: array, items: {type: string}, description: 'Reference images. Range: 1-4'},
                weights: {type: array, items: {type: number}, description: 'Weights. Range: 0-1'},
                odd: {type: array, items: {type: string}, description: 'Range: 0.5-2'},
                kept_items: {type: array, minItems: 2, items: {type: string}, description: 'at least 1'}}}}}"#,
            r#"components: {schemas: {A: {properties: {
                steps: {type: integer, description: '可选。推理步数，默认28，范围1-50', minimum: 1, maximum: 50},
                g: {type: number, description: '默认3.5，取值范围[1,20]。', minimum: 1.0, maximum: 20.0},
                n1: {type: integer, description: '可选。生成图片数量，默认1，1-4', minimum: 1, maximum: 4},
                n2: {type: integer, description: '生成图片数量，取值1-4，默认1', minimum: 1, maximum: 4},
                n3: {type: integer, description: '一次生成图片数量，默认1，最多4。', maximum: 4},
                e: {type: integer, description: 'Default: 4 Range: 1-12', minimum: 1, maximum: 12},
                tol: {type: string, description: '1最严格，6最宽松'},
                seed: {type: integer, description: '1最严格，6最宽松'},
                kept: {type: integer, maximum: 9, description: '范围1-50', minimum: 1},
                urls: {type: array, items: {type: string}, description: '图片列表，最多10张', maxItems: 10},
                refs: {type: array, items: {type: string}, description: 'Reference images. Range: 1-4', minItems: 1, maxItems: 4},
                weights: {type: array, items: {type: number}, description: 'Weights. Range: 0-1'},
                odd: {type: array, items: {type: string}, description: 'Range: 0.5-2'},
                kept_items: {type: array, minItems: 2, items: {type: string}, description: 'at least 1'}}}}}"#,
        );
    }

    #[test]
    fn names_from_endpoint_case() {
        check(
            "names_from_endpoint",
            "paths: {/a/b: {post: {operationId: flux_pro_kontext, requestBody: {content: {application/json: {schema: {title: FLUX.1 Kontext Max 文本转图像请求参数, type: object, properties: {s: {title: 尺寸, type: string}}}}}}}}}",
            "paths: {/a/b: {post: {operationId: flux_pro_kontext, requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/FluxProKontextInput'}}}}}}}\ncomponents: {schemas: {FluxProKontextInput: {type: object, properties: {s: {type: string}}}}}",
        );
    }

    #[test]
    fn queue_status_response_case() {
        // Whatever a page shows under a submit's 2xx (empty, a subset of the status, the
        // endpoint's result), the submit answers the queue status; its example stays.
        check(
            "queue_status_response",
            "paths: {/a/b: {post: {x-falq-endpoint-id: a/b, responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}}}}}}}, /a/c: {post: {x-falq-endpoint-id: a/c, responses: {'200': {content: {application/json: {schema: {type: object, properties: {status: {type: string}, request_id: {type: string}}}, example: {status: IN_QUEUE}}}}}}}, /a/d: {post: {x-falq-endpoint-id: a/d, responses: {'200': {content: {application/json: {schema: {type: object, properties: {images: {type: array}}}}}}}}}, /a/e: {get: {responses: {'200': {content: {application/json: {schema: {type: object}}}}}}}}",
            "paths: {/a/b: {post: {x-falq-endpoint-id: a/b, responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/QueueStatus'}}}}}}}, /a/c: {post: {x-falq-endpoint-id: a/c, responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/QueueStatus'}, example: {status: IN_QUEUE}}}}}}}, /a/d: {post: {x-falq-endpoint-id: a/d, responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/QueueStatus'}}}}}}}, /a/e: {get: {responses: {'200': {content: {application/json: {schema: {type: object}}}}}}}}",
        );
    }

    #[test]
    fn apifox_status_case() {
        check(
            "apifox_status",
            "paths: {/a/b: {post: {x-apifox-status: developing}}, /a/c: {post: {x-apifox-status: released}}, /a/d: {post: {}}}",
            "paths: {/a/b: {post: {x-apifox-status: developing, x-falq-status: developing}}, /a/c: {post: {x-apifox-status: released, x-falq-status: released}}, /a/d: {post: {}}}",
        );
    }

    #[test]
    fn queue_call_pages_case() {
        // The relay's generic "get request result" page, and one app's: no endpoint; the
        // app's page types that app's outputs with what its example shows. Status and
        // cancel pages are recognised too; an endpoint is left alone.
        let w = check(
            "queue_call_pages",
            "paths: {'/fal-ai/{model_name}/requests/{request_id}': {get: {responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}, example: {images: [{url: 'https://x/a.jpg'}]}}}}}}}, '/fal-ai/trellis/requests/{request_id}': {get: {responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}, example: {model_mesh: {url: 'https://x/m.glb'}}}}}}}}, '/fal-ai/veo3/requests/{request_id}': {get: {responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}}}}}}}, '/fal-ai/x/requests/{id}/status': {get: {}}, '/fal-ai/x/requests/{id}/cancel': {put: {}}, /fal-ai/x: {post: {}}}",
            "paths: {/fal-ai/x: {post: {}}}\nx-falq-app-outputs: {fal-ai/trellis: {type: object, required: [model_mesh], x-falq-examples: [{model_mesh: {url: 'https://x/m.glb'}}], properties: {model_mesh: {allOf: [{$ref: '#/components/schemas/File'}], x-falq-examples: [{url: 'https://x/m.glb'}]}}}}",
        );
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].message.contains("is the queue's result call (queue_result)"), "{}", w[0]);
        assert!(w[1].message.contains("types the output of fal-ai/trellis's endpoints"), "{}", w[1]);
        assert!(!w[2].message.contains("types the output"), "a page that shows nothing types nothing: {}", w[2]);
        assert!(w[3].message.contains("status call") && w[4].message.contains("cancel call"), "{w:?}");
    }

    #[test]
    fn schema_from_example_case() {
        let w = check(
            "schema_from_example",
            "paths: {/a/b: {post: {requestBody: {content: {application/json: {schema: {type: object, properties: {}}, example: {prompt: a cat, image_size: {width: 1280, height: 720}, num_images: 1, strength: 0.5, sync: true, urls: [u1, u2], extra: null}}}}}}, /a/c: {post: {requestBody: {content: {application/json: {schema: {type: object, properties: {prompt: {type: string}}}, example: {prompt: x, other: 1}}}}}}}",
            "paths: {/a/b: {post: {requestBody: {content: {application/json: {schema: {type: object, properties: {prompt: {type: string}, image_size: {type: object, properties: {width: {type: integer}, height: {type: integer}}}, num_images: {type: integer}, strength: {type: number}, sync: {type: boolean}, urls: {type: array, items: {type: string}}, extra: {}}}, example: {prompt: a cat, image_size: {width: 1280, height: 720}, num_images: 1, strength: 0.5, sync: true, urls: [u1, u2], extra: null}}}}}}, /a/c: {post: {requestBody: {content: {application/json: {schema: {type: object, properties: {prompt: {type: string}}}, example: {prompt: x, other: 1}}}}}}}",
        );
        assert_eq!(w.len(), 1, "a schema that lists fields is the page's word: {w:?}");
        assert!(w[0].message.contains("none required"), "{}", w[0]);
    }

    #[test]
    fn output_from_page_case() {
        let w = check(
            "output_from_page",
            "paths: {
              /a/schema: {post: {operationId: a_schema, x-falq-endpoint-id: a/schema, responses: {'200': {content: {application/json: {schema: {type: object, properties: {text: {type: string}}, required: [text]}}}}}}},
              /a/example: {post: {operationId: a_example, x-falq-endpoint-id: a/example, responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}, example: {audio: {url: 'https://x/s.wav', content_type: audio/wav}, duration: 2.5}}}}}}},
              /a/alternate: {post: {operationId: a_alternate, x-falq-endpoint-id: a/alternate, responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}}}}, 'x-200:result': {content: {application/json: {example: {image: {url: 'https://x/i.png'}}}}}}}},
              /a/status: {post: {operationId: a_status, x-falq-endpoint-id: a/status, responses: {'200': {content: {application/json: {schema: {type: object, properties: {status: {type: string}}}, example: {status: IN_QUEUE, request_id: r}}}}}}}}",
            "paths: {
              /a/schema: {post: {operationId: a_schema, x-falq-endpoint-id: a/schema, x-falq-output: {$ref: '#/components/schemas/ASchemaOutput'}, responses: {'200': {content: {application/json: {schema: {type: object, properties: {text: {type: string}}, required: [text]}}}}}}},
              /a/example: {post: {operationId: a_example, x-falq-endpoint-id: a/example, x-falq-output: {$ref: '#/components/schemas/AExampleOutput'}, responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}}}}}}},
              /a/alternate: {post: {operationId: a_alternate, x-falq-endpoint-id: a/alternate, x-falq-output: {$ref: '#/components/schemas/AAlternateOutput'}, responses: {'200': {content: {application/json: {schema: {type: object, properties: {}}}}}}}},
              /a/status: {post: {operationId: a_status, x-falq-endpoint-id: a/status, responses: {'200': {content: {application/json: {schema: {type: object, properties: {status: {type: string}}}, example: {status: IN_QUEUE, request_id: r}}}}}}}}\ncomponents: {schemas: {
              ASchemaOutput: {type: object, properties: {text: {type: string}}, required: [text]},
              AExampleOutput: {type: object, required: [audio], x-falq-examples: [{audio: {url: 'https://x/s.wav', content_type: audio/wav}, duration: 2.5}], properties: {audio: {allOf: [{$ref: '#/components/schemas/File'}], x-falq-examples: [{url: 'https://x/s.wav', content_type: audio/wav}]}, duration: {type: number}}},
              AAlternateOutput: {type: object, required: [image], x-falq-examples: [{image: {url: 'https://x/i.png'}}], properties: {image: {allOf: [{$ref: '#/components/schemas/File'}], x-falq-examples: [{url: 'https://x/i.png'}]}}}}}",
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[2].message.contains("under x-200:result"), "{}", w[2]);
    }

    #[test]
    fn enums_from_prose_case() {
        check(
            "enums_from_prose",
            r#"components: {schemas: {A: {properties: {
                ratio: {type: string, description: '尺寸，枚举值：16：9、9：16、auto，默认值： "auto"'},
                duration: {type: string, description: '生成视频时长，枚举值：5、10'},
                steps: {type: integer, description: 'Steps, one of: 4, 8'},
                format: {type: string, description: 'Supported output image formats: jpeg, png'},
                given: {type: string, enum: [a], description: '枚举值：b、c'},
                image_url: {type: string, description: '图片url，支持：jpg、png'},
                free: {type: string, description: 'A prompt: describe it'}}}}}"#,
            r#"components: {schemas: {A: {properties: {
                ratio: {type: string, description: '尺寸，枚举值：16：9、9：16、auto，默认值： "auto"', enum: ['16:9', '9:16', auto]},
                duration: {type: string, description: '生成视频时长，枚举值：5、10', enum: ['5', '10']},
                steps: {type: integer, description: 'Steps, one of: 4, 8', enum: [4, 8]},
                format: {type: string, description: 'Supported output image formats: jpeg, png', enum: [jpeg, png]},
                given: {type: string, enum: [a], description: '枚举值：b、c'},
                image_url: {type: string, description: '图片url，支持：jpg、png'},
                free: {type: string, description: 'A prompt: describe it'}}}}}"#,
        );
    }

    #[test]
    fn ascii_values_case() {
        check(
            "ascii_values",
            "components: {schemas: {A: {properties: {r: {type: string, enum: ['16：9', '1:1'], default: '16：9'}, p: {type: string, default: '写实，高清'}}}}}",
            "components: {schemas: {A: {properties: {r: {type: string, enum: ['16:9', '1:1'], default: '16:9'}, p: {type: string, default: '写实，高清'}}}}}",
        );
    }

    #[test]
    fn name_inline_responses_case() {
        check(
            "name_inline_responses",
            "paths: {/a/d: {post: {operationId: a_d, responses: {'200': {content: {application/json: {schema: {type: object, properties: {images: {type: array}}}}}}, '422': {content: {application/json: {schema: {type: object}}}}}}}}",
            "paths: {/a/d: {post: {operationId: a_d, responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/ADResponse200'}}}}, '422': {content: {application/json: {schema: {$ref: '#/components/schemas/ADResponse422'}}}}}}}}\ncomponents: {schemas: {ADResponse200: {type: object, properties: {images: {type: array}}}, ADResponse422: {type: object}}}",
        );
    }
}
