//! A small validator of JSON inputs against the OpenAPI 3.0 subset the normalized spec uses,
//! answering errors shaped like fal's (pydantic's) 422 `detail` items.
//!
//! Supported: `$ref` (to `#/components/schemas/*`), `type`, `nullable`, `enum`, `required`,
//! `properties`, `items`, `minimum`/`maximum` (and boolean `exclusiveMinimum`/`exclusiveMaximum`),
//! `minItems`/`maxItems`, `minLength`/`maxLength`, `allOf`, `oneOf`/`anyOf` (both read as
//! "at least one"). Unknown properties are ignored, as fal ignores them. Like pydantic's lax
//! mode, numeric strings are accepted for `integer` and `number`, and `2.0` for `integer`.

use falq_api::types::{LocationPart, ValidationErrorItem};
use serde_json::{Map, Value, json};

const MAX_DEPTH: u32 = 64;

/// Validates JSON values against the component schemas of an OpenAPI document.
#[derive(Clone, Debug, Default)]
pub struct SchemaValidator {
    schemas: Map<String, Value>,
}

impl SchemaValidator {
    /// Reads `components.schemas` of an OpenAPI document (an empty set when absent).
    pub fn from_openapi(doc: &Value) -> SchemaValidator {
        let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).cloned().unwrap_or_default();
        SchemaValidator { schemas }
    }

    /// Whether the document has a component schema of this name.
    pub fn has_schema(&self, name: &str) -> bool {
        self.schemas.contains_key(name)
    }

    /// The errors of `body` against the component schema `schema_name`, each located from
    /// `"body"` as fal does (`["body", "num_images"]`); empty when valid or when the schema
    /// is unknown.
    pub fn validate(&self, schema_name: &str, body: &Value) -> Vec<ValidationErrorItem> {
        let mut out = Vec::new();
        if let Some(schema) = self.schemas.get(schema_name) {
            let mut loc = vec![LocationPart::String("body".into())];
            self.check(schema, body, &mut loc, &mut out, 0);
        }
        out
    }

    /// The schema of property `name` of component `schema_name`, looked up through `$ref`
    /// and `allOf`, as written (its `default` and wrappers kept).
    pub(crate) fn property(&self, schema_name: &str, name: &str) -> Option<&Value> {
        self.find_property(self.schemas.get(schema_name)?, name, 0)
    }

    /// Follows `$ref`s and single-entry `allOf` wrappers to the schema that says what a value is.
    pub(crate) fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..MAX_DEPTH {
            if let Some(target) = schema.get("$ref").and_then(Value::as_str).and_then(|r| self.lookup(r)) {
                schema = target;
            } else if let Some([only]) = schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                schema = only;
            } else {
                break;
            }
        }
        schema
    }

    fn find_property<'a>(&'a self, schema: &'a Value, name: &str, depth: u32) -> Option<&'a Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let schema = self.resolve(schema);
        if let Some(p) = schema.pointer("/properties").and_then(|p| p.get(name)) {
            return Some(p);
        }
        schema.get("allOf")?.as_array()?.iter().find_map(|s| self.find_property(s, name, depth + 1))
    }

    fn lookup(&self, reference: &str) -> Option<&Value> {
        self.schemas.get(reference.strip_prefix("#/components/schemas/")?)
    }

    fn check(&self, schema: &Value, value: &Value, loc: &mut Vec<LocationPart>, out: &mut Vec<ValidationErrorItem>, depth: u32) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(schema) = schema.as_object() else {
            return;
        };
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if let Some(target) = self.lookup(reference) {
                self.check(target, value, loc, out, depth + 1);
            }
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, loc, out, depth + 1);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
                self.check_union(alternatives, value, loc, out, depth);
            }
        }
        // Like pydantic's `Literal`, a value outside an enum is a literal_error whatever its type.
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| enum_matches(a, value))
        {
            let expected = enum_expected(allowed);
            out.push(item(loc, format!("Input should be {expected}"), "literal_error", Some(json!({ "expected": expected }))));
            return;
        }
        if let Some(ty) = schema.get("type").and_then(Value::as_str)
            && let Some(error) = type_error(ty, value)
        {
            out.push(item(loc, error.0, error.1, None));
            return;
        }
        let numeric = matches!(schema.get("type").and_then(Value::as_str), Some("integer" | "number")) || value.is_number();
        if let Some(n) = lax_number(value).filter(|_| numeric) {
            check_bounds(schema, n, loc, out);
        }
        match value {
            Value::String(s) => check_length(schema, s, loc, out),
            Value::Array(items) => self.check_array(schema, items, loc, out, depth),
            Value::Object(fields) => self.check_object(schema, fields, loc, out, depth),
            _ => {}
        }
    }

    fn check_union(
        &self,
        alternatives: &[Value],
        value: &Value,
        loc: &mut Vec<LocationPart>,
        out: &mut Vec<ValidationErrorItem>,
        depth: u32,
    ) {
        // When none fits, report the closest: an alternative of the value's own type first,
        // then the one with the fewest errors, then the first.
        let mut best: Option<((bool, usize), Vec<ValidationErrorItem>)> = None;
        for alternative in alternatives {
            let mut errors = Vec::new();
            self.check(alternative, value, loc, &mut errors, depth + 1);
            if errors.is_empty() {
                return;
            }
            let resolved = self.resolve(alternative);
            let other_type = resolved.get("type").and_then(Value::as_str).is_some_and(|t| type_error(t, value).is_some());
            let rank = (other_type, errors.len());
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((rank, errors));
            }
        }
        out.extend(best.map(|(_, e)| e).unwrap_or_default());
    }

    fn check_array(
        &self,
        schema: &Map<String, Value>,
        items: &[Value],
        loc: &mut Vec<LocationPart>,
        out: &mut Vec<ValidationErrorItem>,
        depth: u32,
    ) {
        let len = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64).filter(|&m| len < m) {
            let unit = if min == 1 { "item" } else { "items" };
            out.push(item(
                loc,
                format!("List should have at least {min} {unit} after validation, not {len}"),
                "too_short",
                Some(json!({ "field_type": "List", "min_length": min, "actual_length": len })),
            ));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64).filter(|&m| len > m) {
            let unit = if max == 1 { "item" } else { "items" };
            out.push(item(
                loc,
                format!("List should have at most {max} {unit} after validation, not {len}"),
                "too_long",
                Some(json!({ "field_type": "List", "max_length": max, "actual_length": len })),
            ));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, element) in items.iter().enumerate() {
                loc.push(LocationPart::Integer(i as i64));
                self.check(item_schema, element, loc, out, depth + 1);
                loc.pop();
            }
        }
    }

    fn check_object(
        &self,
        schema: &Map<String, Value>,
        fields: &Map<String, Value>,
        loc: &mut Vec<LocationPart>,
        out: &mut Vec<ValidationErrorItem>,
        depth: u32,
    ) {
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let properties = schema.get("properties").and_then(Value::as_object);
        let missing = |loc: &mut Vec<LocationPart>, out: &mut Vec<ValidationErrorItem>, name: &str| {
            loc.push(LocationPart::String(name.to_string()));
            out.push(item(loc, "Field required".into(), "missing", None));
            loc.pop();
        };
        for (name, property) in properties.into_iter().flatten() {
            match fields.get(name) {
                Some(value) => {
                    loc.push(LocationPart::String(name.clone()));
                    self.check(property, value, loc, out, depth + 1);
                    loc.pop();
                }
                None if required.contains(&name.as_str()) => missing(loc, out, name),
                None => {}
            }
        }
        for name in required {
            if !fields.contains_key(name) && !properties.is_some_and(|p| p.contains_key(name)) {
                missing(loc, out, name);
            }
        }
    }
}

/// A number, or a string holding one (pydantic's lax mode).
pub(crate) fn lax_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// An integer, or a string or a float holding one (pydantic's lax mode).
pub(crate) fn lax_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// The message and type of a value that is not of JSON schema type `ty`, pydantic-style.
fn type_error(ty: &str, value: &Value) -> Option<(String, &'static str)> {
    let error = |msg: &str, kind: &'static str| Some((msg.to_string(), kind));
    match ty {
        "string" if !value.is_string() => error("Input should be a valid string", "string_type"),
        "boolean" if !value.is_boolean() => error("Input should be a valid boolean", "bool_type"),
        "array" if !value.is_array() => error("Input should be a valid list", "list_type"),
        "object" if !value.is_object() => {
            error("Input should be a valid dictionary or object to extract fields from", "model_attributes_type")
        }
        "integer" => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => None,
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => None,
            Value::Number(_) => error("Input should be a valid integer, got a number with a fractional part", "int_from_float"),
            Value::String(s) if s.trim().parse::<i64>().is_ok() => None,
            Value::String(_) => error("Input should be a valid integer, unable to parse string as an integer", "int_parsing"),
            _ => error("Input should be a valid integer", "int_type"),
        },
        "number" => match value {
            Value::Number(_) => None,
            Value::String(_) if lax_number(value).is_some() => None,
            Value::String(_) => error("Input should be a valid number, unable to parse string as a number", "float_parsing"),
            _ => error("Input should be a valid number", "float_type"),
        },
        _ => None,
    }
}

fn enum_matches(allowed: &Value, value: &Value) -> bool {
    match (allowed, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => allowed == value,
    }
}

/// `'jpeg' or 'png'`, `'a', 'b' or 'c'`, as pydantic lists a literal's values.
fn enum_expected(allowed: &[Value]) -> String {
    let shown: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("'{s}'"),
            other => other.to_string(),
        })
        .collect();
    match shown.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn check_bounds(schema: &Map<String, Value>, n: f64, loc: &[LocationPart], out: &mut Vec<ValidationErrorItem>) {
    let exclusive = |key: &str| schema.get(key) == Some(&Value::Bool(true));
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let (ok, word, kind, ctx) = if exclusive("exclusiveMinimum") {
            (n > min, "greater than", "greater_than", "gt")
        } else {
            (n >= min, "greater than or equal to", "greater_than_equal", "ge")
        };
        if !ok {
            out.push(item(loc, format!("Input should be {word} {}", show_number(min)), kind, Some(json!({ ctx: json_number(min) }))));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let (ok, word, kind, ctx) = if exclusive("exclusiveMaximum") {
            (n < max, "less than", "less_than", "lt")
        } else {
            (n <= max, "less than or equal to", "less_than_equal", "le")
        };
        if !ok {
            out.push(item(loc, format!("Input should be {word} {}", show_number(max)), kind, Some(json!({ ctx: json_number(max) }))));
        }
    }
}

fn check_length(schema: &Map<String, Value>, s: &str, loc: &[LocationPart], out: &mut Vec<ValidationErrorItem>) {
    let len = s.chars().count() as u64;
    let unit = |n: u64| if n == 1 { "character" } else { "characters" };
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64).filter(|&m| len < m) {
        out.push(item(
            loc,
            format!("String should have at least {min} {}", unit(min)),
            "string_too_short",
            Some(json!({ "min_length": min })),
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64).filter(|&m| len > m) {
        out.push(item(
            loc,
            format!("String should have at most {max} {}", unit(max)),
            "string_too_long",
            Some(json!({ "max_length": max })),
        ));
    }
}

fn show_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 { json!(n as i64) } else { json!(n) }
}

fn item(loc: &[LocationPart], msg: String, kind: &str, ctx: Option<Value>) -> ValidationErrorItem {
    ValidationErrorItem { loc: loc.to_vec(), msg, type_: kind.to_string(), ctx: ctx.and_then(|c| c.as_object().cloned()) }
}

/// A 422 detail item built by the simulator itself (a failed job, an unreadable body).
pub(crate) fn detail_item(loc: &[&str], msg: impl Into<String>, kind: &str) -> ValidationErrorItem {
    let loc: Vec<LocationPart> = loc.iter().map(|s| LocationPart::String((*s).to_string())).collect();
    item(&loc, msg.into(), kind, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> SchemaValidator {
        SchemaValidator::from_openapi(&serde_json::from_str(falq_api::OPENAPI_JSON).unwrap())
    }

    /// (loc after "body", type) of each error.
    fn errors(schema: &str, body: Value) -> Vec<(String, String)> {
        validator()
            .validate(schema, &body)
            .into_iter()
            .map(|e| {
                let loc: Vec<String> = e.loc[1..]
                    .iter()
                    .map(|p| match p {
                        LocationPart::String(s) => s.clone(),
                        LocationPart::Integer(i) => i.to_string(),
                    })
                    .collect();
                (loc.join("."), e.type_)
            })
            .collect()
    }

    fn check(schema: &str, body: Value, expected: &[(&str, &str)]) {
        let expected: Vec<(String, String)> = expected.iter().map(|(l, t)| (l.to_string(), t.to_string())).collect();
        assert_eq!(errors(schema, body.clone()), expected, "{schema} {body}");
    }

    #[test]
    fn flux_redux_table() {
        let s = "Flux1DevReduxInput";
        let url = "https://example.com/a.png";
        check(s, json!({ "image_url": url }), &[]);
        check(s, json!({ "image_url": url, "unknown_field": [1, 2] }), &[]);
        check(s, json!({}), &[("image_url", "missing")]);
        check(s, json!({ "image_url": url, "num_images": 5 }), &[("num_images", "less_than_equal")]);
        check(s, json!({ "image_url": url, "num_images": 0 }), &[("num_images", "greater_than_equal")]);
        check(s, json!({ "image_url": url, "num_images": "2" }), &[]);
        check(s, json!({ "image_url": url, "num_images": "two" }), &[("num_images", "int_parsing")]);
        check(s, json!({ "image_url": url, "num_images": 1.5 }), &[("num_images", "int_from_float")]);
        check(s, json!({ "image_url": url, "num_images": 2.0 }), &[]);
        check(s, json!({ "image_url": url, "num_images": true }), &[("num_images", "int_type")]);
        check(s, json!({ "image_url": 7 }), &[("image_url", "string_type")]);
        check(s, json!({ "image_url": url, "guidance_scale": 20.5 }), &[("guidance_scale", "less_than_equal")]);
        check(s, json!({ "image_url": url, "guidance_scale": "x" }), &[("guidance_scale", "float_parsing")]);
        check(s, json!({ "image_url": url, "output_format": "gif" }), &[("output_format", "literal_error")]);
        check(s, json!({ "image_url": url, "sync_mode": "yes" }), &[("sync_mode", "bool_type")]);
        check(s, json!({ "image_url": url, "seed": null }), &[]);
        check(s, json!({ "image_url": url, "seed": 196_619_188_014_358_660u64 }), &[]);
        check(s, json!({ "image_url": url, "image_size": "square_hd" }), &[]);
        check(s, json!({ "image_url": url, "image_size": { "width": 640, "height": 480 } }), &[]);
        check(s, json!({ "image_url": url, "image_size": "huge" }), &[("image_size", "literal_error")]);
        check(s, json!({ "image_url": url, "image_size": { "width": 20000, "height": 480 } }), &[("image_size.width", "less_than_equal")]);
        check(s, json!({ "image_url": url, "image_size": { "width": 640 } }), &[("image_size.height", "missing")]);
        check(s, json!({ "image_url": url, "image_size": 12 }), &[("image_size", "literal_error")]);
        check(s, json!([1, 2]), &[("", "model_attributes_type")]);
        check(
            s,
            json!({ "num_images": 9, "output_format": "bmp" }),
            &[("image_url", "missing"), ("num_images", "less_than_equal"), ("output_format", "literal_error")],
        );
    }

    #[test]
    fn kontext_table() {
        check("FluxProKontextMultiInput", json!({ "prompt": "p", "image_urls": ["a"] }), &[]);
        check("FluxProKontextMultiInput", json!({ "prompt": "p", "image_urls": [] }), &[("image_urls", "too_short")]);
        check("FluxProKontextMultiInput", json!({ "prompt": "p", "image_urls": ["a", 3] }), &[("image_urls.1", "string_type")]);
        check("FluxProKontextMultiInput", json!({ "prompt": "p", "image_urls": "a" }), &[("image_urls", "list_type")]);
        check(
            "FluxProKontextInput",
            json!({ "prompt": "p", "image_url": "a", "safety_tolerance": "7" }),
            &[("safety_tolerance", "literal_error")],
        );
        check(
            "FluxProKontextInput",
            json!({ "prompt": "p", "image_url": "a", "safety_tolerance": 2 }),
            &[("safety_tolerance", "literal_error")],
        );
        check("FluxProKontextTextToImageInput", json!({ "prompt": "p", "aspect_ratio": "16:9" }), &[]);
        check("FluxProKontextTextToImageInput", json!({ "prompt": "p", "aspect_ratio": "5:4" }), &[("aspect_ratio", "literal_error")]);
        check("FluxProKontextTextToImageInput", json!({ "aspect_ratio": "1:1" }), &[("prompt", "missing")]);
    }

    #[test]
    fn messages_and_context_match_fal() {
        let v = validator();
        let e = &v.validate("Flux1DevReduxInput", &json!({ "image_url": "u", "num_images": 5 }))[0];
        assert_eq!(
            serde_json::to_value(e).unwrap(),
            json!({
                "loc": ["body", "num_images"],
                "msg": "Input should be less than or equal to 4",
                "type": "less_than_equal",
                "ctx": { "le": 4 }
            })
        );
        let e = &v.validate("Flux1DevReduxInput", &json!({ "image_url": "u", "output_format": "gif" }))[0];
        assert_eq!(e.msg, "Input should be 'jpeg' or 'png'");
        let e = &v.validate("Flux1DevReduxInput", &json!({}))[0];
        assert_eq!(e.msg, "Field required");
        let e = &v.validate("FluxProKontextMultiInput", &json!({ "prompt": "p", "image_urls": [] }))[0];
        assert_eq!(e.msg, "List should have at least 1 item after validation, not 0");
        assert!(v.validate("NoSuchSchema", &json!(null)).is_empty());
    }

    #[test]
    fn properties_resolve_through_wrappers() {
        let v = validator();
        let size = v.property("Flux1DevReduxInput", "image_size").unwrap();
        assert_eq!(size.get("default"), Some(&json!("landscape_4_3")));
        assert!(v.resolve(size).get("oneOf").is_some());
        assert_eq!(v.resolve(v.property("FluxProKontextMultiInput", "image_urls").unwrap()).get("type"), Some(&json!("array")));
        assert!(v.property("FluxProKontextInput", "image_size").is_none());
    }

    #[test]
    fn lax_numbers_table() {
        assert_eq!(lax_integer(&json!(3)), Some(3));
        assert_eq!(lax_integer(&json!(3.0)), Some(3));
        assert_eq!(lax_integer(&json!(" 4 ")), Some(4));
        assert_eq!(lax_integer(&json!(3.5)), None);
        assert_eq!(lax_integer(&json!(true)), None);
        assert_eq!(lax_number(&json!("2.5")), Some(2.5));
        assert_eq!(lax_number(&json!("nan")), None);
    }
}
