//! Spec conformance: the normalized OpenAPI document (`falq_api::OPENAPI_JSON`) read as
//! JSON Schema, and checks that requests, responses, examples and the generated types
//! agree with it. Every message names the operation and the field.
//!
//! - [`validate_request`], [`validate_response`], [`validate_result`] and
//!   [`validate_status_event`] check one exchange against the current spec; a simulator's
//!   tests call them on what it answers.
//! - [`Spec`] does the same for any document, so tests can mutate a copy of the spec.
//! - [`drift::check_spec`] compares the spec with the generated types; [`samples`] and
//!   [`strategy`] derive request bodies and proptest strategies from the spec.

pub mod capture;
pub mod drift;
pub mod examples;
pub mod samples;
pub mod schema;
pub mod strategy;
pub mod typed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

use schema::{COMPONENT_PREFIX, bundle, converted_components, escape_pointer, to_json_schema};

/// Checks a request (method, target with query, JSON body) against the operation
/// `operation_id` of the current spec.
pub fn validate_request(operation_id: &str, method: &str, target: &str, body: Option<&Value>) -> Result<(), String> {
    Spec::current().validate_request(operation_id, method, target, body)
}

/// Checks an answer (status and JSON body) against the responses of the operation
/// `operation_id` of the current spec.
pub fn validate_response(operation_id: &str, status: u16, body: &Value) -> Result<(), String> {
    Spec::current().validate_response(operation_id, status, body)
}

/// Checks what the result call answered for a request submitted to the endpoint operation
/// `endpoint_operation_id` (`flux_1_dev_redux`): a 200 against the endpoint's
/// `x-falq-output`, any other status against the result call's own responses.
pub fn validate_result(endpoint_operation_id: &str, status: u16, body: &Value) -> Result<(), String> {
    Spec::current().validate_result(endpoint_operation_id, status, body)
}

/// Checks one `data:` event of the status stream: a `QueueStatus`, as the
/// `queue_status_stream` operation describes.
pub fn validate_status_event(body: &Value) -> Result<(), String> {
    Spec::current().validate_status_event(body)
}

/// The operation id of the result call, whose 200 answer is the endpoint's `x-falq-output`.
pub const RESULT_OPERATION: &str = "queue_result";

/// The component every status stream event is.
pub const STATUS_EVENT_COMPONENT: &str = "QueueStatus";

/// One operation of the spec.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The `operationId` (`flux_1_dev_redux`, `queue_status`).
    pub id: String,
    /// `GET`, `POST`, `PUT`, ...
    pub method: String,
    /// The path template (`/{owner}/{app}/requests/{request_id}/status`).
    pub path: String,
    /// `x-falq-endpoint-id`, for the submit operations.
    pub endpoint_id: Option<String>,
    /// The parameters, `$ref`s resolved.
    pub parameters: Vec<Parameter>,
    /// The schema of the JSON request body.
    pub request_body: Option<Value>,
    /// Whether the spec marks the body required.
    pub request_body_required: bool,
    /// The `responses` object.
    pub responses: Map<String, Value>,
    /// `x-falq-output`: what the result call answers once a submit completed.
    pub output: Option<Value>,
    /// The JSON pointer of the operation object in the document.
    pub pointer: String,
}

impl Operation {
    /// The component name of the request body, when it is a `$ref`.
    pub fn input_component(&self) -> Option<&str> {
        self.request_body.as_ref().and_then(component_of)
    }

    /// The component name of `x-falq-output`, when it is a `$ref`.
    pub fn output_component(&self) -> Option<&str> {
        self.output.as_ref().and_then(component_of)
    }

    /// The response of a status: its key (`202`, `4XX`, `default`) and object.
    pub fn response(&self, status: u16) -> Option<(&str, &Value)> {
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        [exact.as_str(), range.as_str(), "default"].into_iter().find_map(|k| self.responses.get_key_value(k)).map(|(k, v)| (k.as_str(), v))
    }

    /// Each response key and its JSON (or other) media type and schema.
    pub fn response_schemas(&self) -> Vec<(String, String, Value)> {
        let mut out = vec![];
        for (status, response) in &self.responses {
            for (media, content) in response.get("content").and_then(Value::as_object).into_iter().flatten() {
                if let Some(schema) = content.get("schema") {
                    out.push((status.clone(), media.clone(), schema.clone()));
                }
            }
        }
        out
    }
}

/// One parameter of an operation.
#[derive(Clone, Debug)]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    pub location: String,
    /// Whether it must be given.
    pub required: bool,
    /// Its schema.
    pub schema: Value,
}

/// The component a schema names: `{$ref}` or an `allOf: [{$ref}]` wrapper.
pub fn component_of(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(COMPONENT_PREFIX);
    }
    match schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([only]) => component_of(only),
        _ => None,
    }
}

/// A normalized OpenAPI document, with its schemas compiled as JSON Schema on demand.
pub struct Spec {
    document: Value,
    defs: Map<String, Value>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec").field("operations", &self.operations().iter().map(|o| o.id.clone()).collect::<Vec<_>>()).finish()
    }
}

impl Spec {
    /// The spec the generated crate was generated from (`falq_api::OPENAPI_JSON`).
    pub fn current() -> &'static Spec {
        static CURRENT: OnceLock<Spec> = OnceLock::new();
        CURRENT.get_or_init(|| Spec::from_document(Self::current_document()))
    }

    /// A fresh copy of the current document, to mutate.
    pub fn current_document() -> Value {
        serde_json::from_str(falq_api::OPENAPI_JSON).expect("falq_api::OPENAPI_JSON is JSON")
    }

    /// A spec over any OpenAPI 3.0 document.
    pub fn from_document(document: Value) -> Spec {
        let defs = converted_components(&document);
        Spec { document, defs, validators: Mutex::new(HashMap::new()) }
    }

    /// The document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// A component schema, as written.
    pub fn component(&self, name: &str) -> Option<&Value> {
        self.document.pointer(&format!("/components/schemas/{}", escape_pointer(name)))
    }

    /// The names of every component schema.
    pub fn component_names(&self) -> Vec<String> {
        self.document.pointer("/components/schemas").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// Follows `$ref`s (and single-`allOf` wrappers) to the schema they name: regen's
    /// resolver, the project's one.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        xtask::export::resolve(&self.document, schema)
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut out = vec![];
        for (path, item) in self.document.get("paths").and_then(Value::as_object).into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                if !["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                    continue;
                }
                out.push(self.operation_at(path, method, op));
            }
        }
        out
    }

    fn operation_at(&self, path: &str, method: &str, op: &Value) -> Operation {
        let pointer = format!("/paths/{}/{method}", escape_pointer(path));
        let mut parameters = vec![];
        let shared = self.document.pointer(&format!("/paths/{}/parameters", escape_pointer(path)));
        for p in shared.into_iter().chain(op.get("parameters")).filter_map(Value::as_array).flatten() {
            let p = match p.get("$ref").and_then(Value::as_str) {
                Some(r) => self.document.pointer(r.trim_start_matches('#')).unwrap_or(p),
                None => p,
            };
            parameters.push(Parameter {
                name: p.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                location: p.get("in").and_then(Value::as_str).unwrap_or_default().to_string(),
                required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                schema: p.get("schema").cloned().unwrap_or(Value::Bool(true)),
            });
        }
        Operation {
            id: op
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{} {path}", method.to_uppercase())),
            method: method.to_uppercase(),
            path: path.to_string(),
            endpoint_id: op.get("x-falq-endpoint-id").and_then(Value::as_str).map(str::to_string),
            parameters,
            request_body: op.pointer("/requestBody/content/application~1json/schema").cloned(),
            request_body_required: op.pointer("/requestBody/required").and_then(Value::as_bool).unwrap_or(false),
            responses: op.get("responses").and_then(Value::as_object).cloned().unwrap_or_default(),
            output: op.get("x-falq-output").cloned(),
            pointer,
        }
    }

    /// The operation with this id.
    pub fn operation(&self, id: &str) -> Result<Operation, String> {
        self.operations().into_iter().find(|o| o.id == id).ok_or_else(|| format!("operation {id} is not in the spec"))
    }

    /// The operation a request (method and target, a query allowed) is a call of.
    pub fn find_operation(&self, method: &str, target: &str) -> Option<Operation> {
        let (path, _) = split_target(target);
        let mut matches: Vec<Operation> = self
            .operations()
            .into_iter()
            .filter(|o| o.method.eq_ignore_ascii_case(method) && path_params(&o.path, path).is_some())
            .collect();
        // A literal segment beats a template one (`/fal-ai/flux-pro/kontext` over `/{owner}/...`).
        matches.sort_by_key(|o| o.path.matches('{').count());
        matches.into_iter().next()
    }

    /// The JSON Schema form of an OpenAPI schema of this document, with every component
    /// as its definitions: regen's conversion, the form the catalogue's schemas have.
    pub fn json_schema(&self, schema: &Value) -> Value {
        bundle(to_json_schema(schema), &self.defs)
    }

    /// Validates an instance against an OpenAPI schema of this document; each error is
    /// `"/field: message"`.
    pub fn check(&self, schema: &Value, instance: &Value) -> Result<(), Vec<String>> {
        let validator = self.validator(schema).map_err(|e| vec![e])?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { at.as_str() })
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let converted = to_json_schema(schema);
        let key = converted.to_string();
        if let Some(v) = self.validators.lock().expect("lock").get(&key) {
            return Ok(v.clone());
        }
        let compiled = falq_api::json_schema::compile(&bundle(converted, &self.defs))
            .map_err(|e| format!("the schema {schema} does not compile: {e}"))?;
        let compiled = Arc::new(compiled);
        self.validators.lock().expect("lock").insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Validates an instance against a component schema.
    pub fn validate_component(&self, name: &str, instance: &Value) -> Result<(), String> {
        if self.component(name).is_none() {
            return Err(format!("component {name} is not in the spec"));
        }
        let schema = serde_json::json!({"$ref": format!("{COMPONENT_PREFIX}{name}")});
        self.check(&schema, instance).map_err(|e| format!("{name}: {}", e.join("; ")))
    }

    /// See [`validate_request`].
    pub fn validate_request(&self, operation_id: &str, method: &str, target: &str, body: Option<&Value>) -> Result<(), String> {
        let op = self.operation(operation_id)?;
        let fail = |what: String| Err(format!("operation {operation_id}: {what}"));
        if !op.method.eq_ignore_ascii_case(method) {
            return fail(format!("is a {}, the request was a {method}", op.method));
        }
        let (path, query) = split_target(target);
        let Some(path_values) = path_params(&op.path, path) else {
            return fail(format!("path {path} does not match {}", op.path));
        };
        let mut errors = vec![];
        let query_values = parse_query(query);
        for (name, _) in &query_values {
            if !op.parameters.iter().any(|p| p.location == "query" && &p.name == name) {
                errors.push(format!("query parameter {name} is not in the spec"));
            }
        }
        for p in &op.parameters {
            let given: Vec<&String> = match p.location.as_str() {
                "path" => path_values.iter().filter(|(n, _)| n == &p.name).map(|(_, v)| v).collect(),
                "query" => query_values.iter().filter(|(n, _)| n == &p.name).map(|(_, v)| v).collect(),
                _ => continue,
            };
            if given.is_empty() && p.required {
                errors.push(format!("{} parameter {} is required", p.location, p.name));
            }
            for raw in given {
                let value = coerce_parameter(&self.resolve(&p.schema).clone(), raw);
                if let Err(e) = self.check(&p.schema, &value) {
                    errors.push(format!("{} parameter {} = {raw}: {}", p.location, p.name, e.join("; ")));
                }
            }
        }
        match (&op.request_body, body) {
            (Some(schema), Some(body)) => {
                if let Err(e) = self.check(schema, body) {
                    errors.extend(e.into_iter().map(|e| format!("request body {e}")));
                }
            }
            (Some(_), None) if op.request_body_required => errors.push("the request body is required".into()),
            (None, Some(_)) => errors.push("takes no request body, one was sent".into()),
            _ => {}
        }
        if errors.is_empty() { Ok(()) } else { fail(errors.join("; ")) }
    }

    /// See [`validate_response`].
    pub fn validate_response(&self, operation_id: &str, status: u16, body: &Value) -> Result<(), String> {
        let op = self.operation(operation_id)?;
        let Some((key, response)) = op.response(status) else {
            let known: Vec<&String> = op.responses.keys().collect();
            return Err(format!("operation {operation_id} has no response {status} in the spec (it has {known:?})"));
        };
        let content = response.get("content").and_then(Value::as_object);
        let schema = content.and_then(|c| c.get("application/json").or_else(|| c.values().next())).and_then(|m| m.get("schema"));
        match schema {
            Some(schema) => self.check(schema, body).map_err(|e| format!("operation {operation_id}, response {key}: {}", e.join("; "))),
            None if body.is_null() => Ok(()),
            None => Err(format!("operation {operation_id}, response {key}: the spec gives no body, one was answered")),
        }
    }

    /// See [`validate_result`].
    pub fn validate_result(&self, endpoint_operation_id: &str, status: u16, body: &Value) -> Result<(), String> {
        if status != 200 {
            return self
                .validate_response(RESULT_OPERATION, status, body)
                .map_err(|e| format!("{e} (the result of {endpoint_operation_id})"));
        }
        let op = self.operation(endpoint_operation_id)?;
        let Some(output) = &op.output else { return Err(format!("operation {endpoint_operation_id} has no x-falq-output")) };
        self.check(output, body).map_err(|e| format!("operation {endpoint_operation_id}, result (x-falq-output): {}", e.join("; ")))
    }

    /// See [`validate_status_event`].
    pub fn validate_status_event(&self, body: &Value) -> Result<(), String> {
        self.validate_component(STATUS_EVENT_COMPONENT, body).map_err(|e| format!("operation queue_status_stream, event: {e}"))
    }
}

/// Splits a request target into path and query.
pub fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The path parameters of a concrete path under a template, or `None` if it does not match.
pub fn path_params(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut out = vec![];
    for (t, p) in t.iter().zip(&p) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) if !p.is_empty() => out.push((name.to_string(), percent_decode(p, false))),
            Some(_) => return None,
            None if t == p => {}
            None => return None,
        }
    }
    Some(out)
}

/// The `name=value` pairs of a query, percent-decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parameter's text as the JSON value its schema's type describes.
fn coerce_parameter(schema: &Value, raw: &str) -> Value {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("string");
    let parsed = match ty {
        "integer" => raw.parse::<i64>().ok().map(Value::from),
        "number" => raw.parse::<f64>().ok().and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
        "boolean" => raw.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(raw.to_string()))
}

/// Compares two JSON values modulo what a typed round trip may change: members that are
/// absent, `null`, `[]` or `{}` are the same, and numbers compare by value. `None` when
/// equivalent, else the first difference, naming the field.
pub fn json_difference(expected: &Value, actual: &Value) -> Option<String> {
    diff_at("", expected, actual)
}

fn is_vacant(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.values().all(|v| is_vacant(Some(v))),
        _ => false,
    }
}

fn diff_at(at: &str, expected: &Value, actual: &Value) -> Option<String> {
    let field = if at.is_empty() { "(the body)".to_string() } else { format!("field {at}") };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for k in e.keys().chain(a.keys()) {
                let (ev, av) = (e.get(k), a.get(k));
                let sub = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (is_vacant(ev), is_vacant(av)) {
                    (true, true) => {}
                    (false, true) => return Some(format!("field {sub}: {} was dropped", ev.expect("present"))),
                    (true, false) => return Some(format!("field {sub}: {} appeared", av.expect("present"))),
                    (false, false) => {
                        if let Some(d) = diff_at(&sub, ev.expect("present"), av.expect("present")) {
                            return Some(d);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Some(format!("{field}: {} items became {}", e.len(), a.len()));
            }
            e.iter().zip(a).enumerate().find_map(|(i, (e, a))| diff_at(&format!("{at}[{i}]"), e, a))
        }
        (Value::Number(e), Value::Number(a)) => {
            let same = match (e.as_i64(), a.as_i64(), e.as_u64(), a.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => e.as_f64() == a.as_f64() && (e.is_f64() || a.is_f64()),
            };
            (!same).then(|| format!("{field}: {e} became {a}"))
        }
        (e, a) if e == a => None,
        (e, a) => Some(format!("{field}: {e} became {a}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn difference_table() {
        let check = |e: Value, a: Value, expected: Option<&str>| assert_eq!(json_difference(&e, &a).as_deref(), expected, "{e} vs {a}");
        check(json!({"a": 1, "b": null, "c": []}), json!({"a": 1.0}), None);
        check(json!({"m": {"t": null}}), json!({}), None);
        check(
            json!({"seed": 196619188014358660u64}),
            json!({"seed": 196619188014358661u64}),
            Some("field seed: 196619188014358660 became 196619188014358661"),
        );
        check(json!({"text": "x"}), json!({}), Some("field text: \"x\" was dropped"));
        check(json!({"s": {"w": 1}}), json!({"s": {"w": 2}}), Some("field s.w: 1 became 2"));
        check(json!({"l": [1, 2]}), json!({"l": [1]}), Some("field l: 2 items became 1"));
    }

    #[test]
    fn paths_and_queries() {
        assert_eq!(
            path_params("/{owner}/{app}/requests/{id}", "/fal-ai/flux-1/requests/r%201"),
            Some(vec![("owner".into(), "fal-ai".into()), ("app".into(), "flux-1".into()), ("id".into(), "r 1".into())])
        );
        assert_eq!(path_params("/{owner}/{app}/requests/{id}", "/fal-ai/flux-1/requests/r/status"), None);
        assert_eq!(parse_query("logs=1&x=a%2Fb"), vec![("logs".into(), "1".into()), ("x".into(), "a/b".into())]);
    }
}
