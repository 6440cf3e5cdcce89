//! The spec's own examples and defaults, from `openapi.json` and from the YAML blocks of
//! the vendored pages, each mapped to the schema it illustrates and checked there: valid
//! JSON Schema-wise, and unchanged by a round trip through the generated type.

use std::path::Path;

use serde_json::Value;

use super::samples::{Fill, sample};
use super::schema::escape_pointer;
use super::typed::{component_roundtrip, typed_endpoint};
use super::{Spec, component_of, json_difference};

/// What an example illustrates.
#[derive(Clone, Debug, PartialEq)]
pub enum ExampleTarget {
    /// A response body of an operation.
    Response {
        /// The operation id.
        operation: String,
        /// The response key (`200`).
        status: String,
    },
    /// The request body of an operation.
    RequestBody {
        /// The operation id.
        operation: String,
    },
    /// The schema at this pointer of `openapi.json` (a component or one of its properties).
    Schema {
        /// A JSON pointer into the normalized document.
        pointer: String,
    },
    /// A header parameter of a page, which the normalized spec leaves to the client.
    HeaderParameter {
        /// The operation id.
        operation: String,
        /// The header (`Authorization`).
        name: String,
    },
    /// An example the suite has no rule for.
    Unmapped,
}

/// One example (or default) of the spec.
#[derive(Clone, Debug)]
pub struct Example {
    /// Where it is written: `openapi.json#/pointer` or `specs/apifox/page.md#/pointer`.
    pub source: String,
    /// What it illustrates.
    pub target: ExampleTarget,
    /// The value.
    pub value: Value,
}

impl Example {
    /// The operation or schema it belongs to, for messages.
    pub fn label(&self) -> String {
        match &self.target {
            ExampleTarget::Response { operation, status } => format!("operation {operation}, response {status}"),
            ExampleTarget::RequestBody { operation } => format!("operation {operation}, request body"),
            ExampleTarget::Schema { pointer } => format!("schema {pointer}"),
            ExampleTarget::HeaderParameter { operation, name } => format!("operation {operation}, header {name}"),
            ExampleTarget::Unmapped => format!("example at {}", self.source),
        }
    }
}

/// Every example and default in the normalized document: `x-falq-examples` and `default`
/// on schemas, and `example` / `examples` on request and response media types.
pub fn openapi_examples(spec: &Spec) -> Vec<Example> {
    let doc = spec.document();
    let mut out = vec![];
    let mut visit = |keys: &[String], schema: &Value| {
        let pointer = xtask::walk::pointer(keys);
        let pointer = pointer.as_str();
        for (i, e) in schema.get("x-falq-examples").and_then(Value::as_array).into_iter().flatten().enumerate() {
            out.push(Example {
                source: format!("openapi.json#{pointer}/x-falq-examples/{i}"),
                target: ExampleTarget::Schema { pointer: pointer.to_string() },
                value: e.clone(),
            });
        }
        if let Some(d) = schema.get("default") {
            out.push(Example {
                source: format!("openapi.json#{pointer}/default"),
                target: ExampleTarget::Schema { pointer: pointer.to_string() },
                value: d.clone(),
            });
        }
    };
    for (name, schema) in doc.pointer("/components/schemas").and_then(Value::as_object).into_iter().flatten() {
        // Regen's walk, over every keyword that nests schemas.
        let mut keys = vec!["components".to_string(), "schemas".to_string(), name.clone()];
        xtask::walk::walk_schema_at(schema, &mut keys, &mut visit);
    }
    for op in spec.operations() {
        let raw = doc.pointer(&op.pointer).cloned().unwrap_or_default();
        let mut media_examples = |pointer: String, content: &Value, target: ExampleTarget| {
            for (media, m) in content.as_object().into_iter().flatten() {
                let at = format!("{pointer}/{}", escape_pointer(media));
                if let Some(e) = m.get("example") {
                    out.push(Example { source: format!("openapi.json#{at}/example"), target: target.clone(), value: e.clone() });
                }
                for (k, e) in m.get("examples").and_then(Value::as_object).into_iter().flatten() {
                    let value = e.get("value").cloned().unwrap_or_else(|| e.clone());
                    out.push(Example {
                        source: format!("openapi.json#{at}/examples/{}", escape_pointer(k)),
                        target: target.clone(),
                        value,
                    });
                }
            }
        };
        if let Some(content) = raw.pointer("/requestBody/content") {
            media_examples(format!("{}/requestBody/content", op.pointer), content, ExampleTarget::RequestBody { operation: op.id.clone() });
        }
        for (status, response) in raw.get("responses").and_then(Value::as_object).into_iter().flatten() {
            if let Some(content) = response.get("content") {
                let target = ExampleTarget::Response { operation: op.id.clone(), status: status.clone() };
                media_examples(format!("{}/responses/{status}/content", op.pointer), content, target);
            }
        }
    }
    out
}

/// The fenced YAML blocks of a markdown page, as JSON.
pub fn page_blocks(text: &str) -> Result<Vec<Value>, String> {
    // The pages are read as regen reads them: one loader in the project (xtask's).
    let docs = xtask::load::load_file(std::path::Path::new("page.md"), text).map_err(|e| format!("the page does not load: {e}"))?;
    Ok(docs.into_iter().map(|d| d.value).collect())
}

/// The path of a page's operation as the normalized spec writes it: Apifox's placeholder
/// prefix (`/BASE_URL`, `{{BASE_URL}}`) removed, by regen's own rule.
pub fn page_path(path: &str) -> String {
    xtask::normalize::without_base_url_placeholder(path)
}

/// Every `example` / `examples` value in the YAML blocks of the pages below `dir` (at any
/// depth), mapped to what it illustrates in the normalized spec. Sources are shown as
/// `specs/...` paths.
pub fn page_examples(spec: &Spec, dir: &Path) -> Result<Vec<Example>, String> {
    fn pages(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pages(&path, out)?;
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    pages(dir, &mut files)?;
    files.sort();
    let specs_root = dir.ancestors().find(|a| a.file_name().is_some_and(|n| n == "specs")).and_then(Path::parent);
    let mut out = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let shown = specs_root.and_then(|r| file.strip_prefix(r).ok()).unwrap_or(&file).display().to_string();
        for block in page_blocks(&text).map_err(|e| format!("{shown}: {e}"))? {
            let mut found = vec![];
            collect_examples(&block, &mut vec![], &mut found);
            for (path, value) in found {
                let source = format!("{shown}#/{}", path.iter().map(|s| escape_pointer(s)).collect::<Vec<_>>().join("/"));
                let target = page_target(spec, &block, &path, &value);
                out.push(Example { source, target, value });
            }
        }
    }
    Ok(out)
}

fn collect_examples(v: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                if k == "example" {
                    out.push((path.clone(), x.clone()));
                } else if k == "examples" {
                    match x {
                        Value::Array(list) => {
                            for (i, e) in list.iter().enumerate() {
                                path.push(i.to_string());
                                out.push((path.clone(), e.clone()));
                                path.pop();
                            }
                        }
                        Value::Object(named) => {
                            for (name, e) in named {
                                path.push(name.clone());
                                out.push((path.clone(), e.get("value").cloned().unwrap_or_else(|| e.clone())));
                                path.pop();
                            }
                        }
                        other => out.push((path.clone(), other.clone())),
                    }
                } else {
                    collect_examples(x, path, out);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                path.push(i.to_string());
                collect_examples(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn page_target(spec: &Spec, block: &Value, path: &[String], value: &Value) -> ExampleTarget {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let ["paths", page, method, rest @ ..] = p.as_slice() else { return ExampleTarget::Unmapped };
    let Some(op) = spec.operations().into_iter().find(|o| o.path == page_path(page) && o.method.eq_ignore_ascii_case(method)) else {
        return ExampleTarget::Unmapped;
    };
    match rest {
        ["parameters", i, "example"] => {
            let param = block
                .get("paths")
                .and_then(|ps| ps.get(*page))
                .and_then(|o| o.get(*method))
                .and_then(|o| o.pointer(&format!("/parameters/{i}")));
            match (param.and_then(|p| p.get("in")).and_then(Value::as_str), param.and_then(|p| p.get("name")).and_then(Value::as_str)) {
                (Some("header"), Some(name)) => ExampleTarget::HeaderParameter { operation: op.id, name: name.to_string() },
                _ => ExampleTarget::Unmapped,
            }
        }
        ["requestBody", "content", "application/json", "schema", "properties", prop, "example" | "examples", ..] => match op
            .input_component()
        {
            Some(input) => ExampleTarget::Schema { pointer: format!("/components/schemas/{input}/properties/{}", escape_pointer(prop)) },
            None => ExampleTarget::Unmapped,
        },
        ["requestBody", "content", "application/json", "example" | "examples", ..] => ExampleTarget::RequestBody { operation: op.id },
        ["responses", status, "content", "application/json", "example" | "examples", ..] => {
            // Where regen kept it: on the response, or (a submit's page showing the
            // endpoint's result there) on the endpoint's output.
            let kept_on_response =
                op.responses.get(*status).and_then(|r| r.pointer("/content/application~1json/example")).is_some_and(|e| e == value);
            let output = op.output_component().filter(|c| {
                spec.component(c).and_then(|s| s.get("x-falq-examples")).and_then(Value::as_array).is_some_and(|l| l.contains(value))
            });
            match (kept_on_response, output) {
                (true, _) => ExampleTarget::Response { operation: op.id, status: status.to_string() },
                (false, Some(c)) => ExampleTarget::Schema { pointer: format!("/components/schemas/{}", escape_pointer(c)) },
                (false, None) => ExampleTarget::Unmapped,
            }
        }
        _ => ExampleTarget::Unmapped,
    }
}

/// Checks one example where it belongs: the schema accepts it, and the generated type
/// takes it and gives it back unchanged (modulo absent optionals). The error names the
/// operation or schema and the field, and carries both the schema's and the type's reasons.
pub fn check_example(spec: &Spec, example: &Example) -> Result<(), String> {
    let label = example.label();
    let value = &example.value;
    let (schema, typed): (Value, Option<(String, Value)>) = match &example.target {
        ExampleTarget::Unmapped => return Err(format!("no conformance rule for the example at {}", example.source)),
        ExampleTarget::HeaderParameter { operation, name } => {
            // Auth and content type are the client's, set once: the normalized operation
            // must not ask for them per call.
            let op = spec.operation(operation)?;
            return match op.parameters.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
                Some(_) => Err(format!("{label}: the normalized operation still has a {name} parameter")),
                None => Ok(()),
            };
        }
        ExampleTarget::Response { operation, status } => {
            let op = spec.operation(operation)?;
            let schema = op
                .responses
                .get(status)
                .and_then(|r| r.pointer("/content/application~1json/schema"))
                .cloned()
                .ok_or_else(|| format!("{label}: no JSON schema for the response"))?;
            (schema.clone(), component_of(&schema).map(|c| (c.to_string(), value.clone())))
        }
        ExampleTarget::RequestBody { operation } => {
            let op = spec.operation(operation)?;
            let schema = op.request_body.clone().ok_or_else(|| format!("{label}: the operation has no JSON body"))?;
            if typed_endpoint(operation).is_none() {
                return Err(format!("operation {operation} has no conformance case"));
            }
            (schema.clone(), component_of(&schema).map(|c| (c.to_string(), value.clone())))
        }
        ExampleTarget::Schema { pointer } => {
            let schema = spec.document().pointer(pointer).cloned().ok_or_else(|| format!("{label}: no schema there"))?;
            let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
            let typed = match parts.as_slice() {
                ["components", "schemas", component] => Some((component.to_string(), value.clone())),
                ["components", "schemas", component, "properties", prop] => {
                    // A property's example rides in an otherwise minimal object.
                    let parent = spec.component(component).cloned().unwrap_or_default();
                    let mut body = sample(spec, &parent, Fill::Minimal, "");
                    body[prop.replace("~1", "/").replace("~0", "~")] = value.clone();
                    Some((component.to_string(), body))
                }
                _ => return Err(format!("{label}: no conformance rule for an example of a schema at this depth")),
            };
            (schema, typed)
        }
    };
    let mut reasons = vec![];
    if let Err(e) = spec.check(&schema, value) {
        reasons.push(format!("schema: {}", e.join("; ")));
    }
    if let Some((component, instance)) = typed {
        match component_roundtrip(&component) {
            None => reasons.push(format!("type: component {component} has no generated type in the conformance table")),
            Some(roundtrip) => match roundtrip(&instance) {
                Err(e) => reasons.push(format!("type {component}: {e}")),
                Ok(back) => {
                    if let Some(d) = json_difference(&instance, &back) {
                        reasons.push(format!("type {component}: {d}"));
                    }
                }
            },
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(format!("{label} ({}): {}", example.source, reasons.join(" | "))) }
}
