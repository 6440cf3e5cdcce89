//! The smallest valid input of an endpoint, from its input's JSON Schema alone: its
//! required fields, each with its default, its first allowed value, its least bound, or a
//! plain sample (a URL for a field that takes a file). What the tests, the simulator's
//! checks and `falq run --sim` use to call any endpoint of the catalogue without knowing it.

use serde_json::{Map, Value, json};

use crate::EndpointInfo;

/// A URL a field that takes a file is given: the simulator does not fetch remote inputs.
pub const SAMPLE_URL: &str = "https://fal.media/files/sample/input.png";

/// The smallest input of `info` its schema accepts: required fields only, at every depth.
pub fn minimal_input(info: &EndpointInfo) -> Value {
    let root: Value = serde_json::from_str(info.input_json_schema).unwrap_or(Value::Bool(true));
    minimal_value(&root, &root, None, 0)
}

/// The schema a JSON Schema use site stands for: `$ref`s into `$defs` followed, single
/// `allOf`s unwrapped, and the first branch of a union that is not `null`.
fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..32 {
        if let Some(name) = s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(t) => s = t,
                None => break,
            }
        } else if let Some([one]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = one;
        } else if let Some(first) = s
            .get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|b| b.get("type").and_then(Value::as_str) != Some("null")))
        {
            s = first;
        } else {
            break;
        }
    }
    s
}

fn type_of(s: &Value) -> &str {
    match s.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or(""),
        _ => "",
    }
}

fn minimal_value(root: &Value, use_site: &Value, name: Option<&str>, depth: usize) -> Value {
    if depth > 24 {
        return Value::Null;
    }
    let s = resolve(root, use_site);
    if let Some(d) = use_site.get("default").or_else(|| s.get("default")) {
        return d.clone();
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s.get("enum").and_then(Value::as_array).and_then(|v| v.iter().find(|v| !v.is_null())) {
        return first.clone();
    }
    let bound = |k: &str| s.get(k).and_then(Value::as_f64);
    match type_of(s) {
        "object" | "" if s.get("properties").is_some() || type_of(s) == "object" => {
            let props = s.get("properties").and_then(Value::as_object);
            let required = s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
            let mut out = Map::new();
            for key in required {
                let v = props.and_then(|p| p.get(key)).map_or(json!("sample"), |p| minimal_value(root, p, Some(key), depth + 1));
                out.insert(key.to_string(), v);
            }
            Value::Object(out)
        }
        "array" => {
            let count = bound("minItems").unwrap_or(1.0).max(1.0).min(bound("maxItems").unwrap_or(f64::MAX)) as usize;
            let items = s.get("items").cloned().unwrap_or(json!({}));
            Value::Array((0..count).map(|_| minimal_value(root, &items, name, depth + 1)).collect())
        }
        "string" => {
            let takes_file = name.is_some_and(|n| n.ends_with("url") || n.ends_with("urls"))
                || matches!(s.get("format").and_then(Value::as_str), Some("uri" | "binary"));
            let text = if takes_file { SAMPLE_URL.to_string() } else { "a lighthouse at dusk".to_string() };
            let min = bound("minLength").unwrap_or(0.0) as usize;
            let max = bound("maxLength").map_or(usize::MAX, |m| m as usize);
            let mut text: String = text.chars().take(max).collect();
            while text.chars().count() < min {
                text.push('a');
            }
            Value::String(text)
        }
        "integer" => {
            let lo = bound("minimum").map_or(1.0, f64::ceil);
            json!(lo.min(bound("maximum").map_or(f64::MAX, f64::floor)) as i64)
        }
        "number" => {
            let lo = bound("minimum").unwrap_or(1.0);
            json!(lo.min(bound("maximum").unwrap_or(f64::MAX)))
        }
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schema: Value, expected: Value) {
        assert_eq!(minimal_value(&schema, &schema, None, 0), expected, "{schema}");
    }

    #[test]
    fn required_fields_only_each_within_its_rules() {
        check(
            json!({"type": "object", "required": ["prompt", "image_urls", "n", "size", "mode"], "properties": {
                "prompt": {"type": "string"},
                "image_urls": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "n": {"type": "integer", "minimum": 3, "maximum": 5},
                "size": {"$ref": "#/$defs/Size"},
                "mode": {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["fast", "slow"]}]},
                "optional": {"type": "string"}
            }, "$defs": {"Size": {"type": "object", "required": ["width"], "properties": {"width": {"type": "integer", "default": 512}}}}}),
            json!({"prompt": "a lighthouse at dusk", "image_urls": [SAMPLE_URL, SAMPLE_URL], "n": 3, "size": {"width": 512}, "mode": "fast"}),
        );
        check(json!({"type": "object", "properties": {"x": {"type": "string"}}}), json!({}));
        check(json!({"type": ["number", "null"], "maximum": 0.5}), json!(0.5));
        check(json!({"type": "integer", "maximum": 0}), json!(0));
    }
}
