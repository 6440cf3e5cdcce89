//! Values a JSON Schema accepts, from the schema alone: the smallest valid input of an
//! endpoint (its required fields, each with its default, its first allowed value, its
//! least bound, or a plain sample; a URL for a field that takes a file) and the fullest
//! one (every field, last allowed values, greatest bounds). What the tests, the
//! simulator's checks and `falq run --sim` use to call any endpoint of the catalogue
//! without knowing it: the project's one sample generator.

use serde_json::{Map, Value, json};

use crate::EndpointInfo;
use crate::json_schema::{Bound, Branch, bounds, integer_bounds, resolve, type_of};

/// A URL a field that takes a file is given: the simulator does not fetch remote inputs.
pub const SAMPLE_URL: &str = "https://fal.media/files/sample/input.png";

/// How much of a schema a [`sample`] fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Required members only, each with its default when it has one; the first allowed
    /// value and union branch; least bounds and item counts.
    Minimal,
    /// Every member and an extra one where the schema allows more; no defaults; the last
    /// allowed value and union branch; greatest bounds; text beyond ASCII; an integer
    /// above 2^53 where nothing bounds it (a float would round a seed).
    Maximal,
}

/// The smallest input of `info` its schema accepts: required fields only, at every depth.
pub fn minimal_input(info: &EndpointInfo) -> Value {
    let root: Value = serde_json::from_str(info.input_json_schema).unwrap_or(Value::Bool(true));
    sample(&root, Fill::Minimal, "")
}

/// A value the self-contained JSON Schema `root` (its `$ref`s into its own definitions)
/// accepts, filled as `fill` says. `name` is the field it is for: a string field named
/// `*url`/`*urls` (or of format `uri`) gets a URL.
pub fn sample(root: &Value, fill: Fill, name: &str) -> Value {
    Sampler { root, fill }.value(root, name, 0)
}

/// A number within `lo` and `hi` (each a bound and whether it is exclusive): the least
/// (or greatest) one allowed, or one between the bounds when the bound is exclusive.
fn number(fill: Fill, lo: Bound, hi: Bound) -> f64 {
    match (fill, lo, hi) {
        (Fill::Minimal, Some((l, false)), _) => l,
        (Fill::Minimal, Some((l, true)), Some((h, _))) => (l + h) / 2.0,
        (Fill::Minimal, Some((l, true)), None) => l + 1.0,
        (Fill::Minimal, None, Some((h, false))) => h.min(1.0),
        (Fill::Minimal, None, Some((h, true))) => (h - 1.0).min(1.0),
        (Fill::Minimal, None, None) => 1.0,
        (Fill::Maximal, _, Some((h, false))) => h,
        (Fill::Maximal, Some((l, _)), Some((h, true))) => (l + h) / 2.0,
        (Fill::Maximal, None, Some((h, true))) => h - 1.0,
        (Fill::Maximal, Some((l, _)), None) => l + 1.25,
        (Fill::Maximal, None, None) => 1234.5,
    }
}

struct Sampler<'a> {
    root: &'a Value,
    fill: Fill,
}

impl Sampler<'_> {
    fn value(&self, use_site: &Value, name: &str, depth: usize) -> Value {
        if depth > 24 {
            return Value::Null;
        }
        let minimal = self.fill == Fill::Minimal;
        let branch = if minimal { Branch::First } else { Branch::Last };
        let s = resolve(self.root, use_site, branch);
        if minimal && let Some(d) = use_site.get("default").or_else(|| s.get("default")) {
            return d.clone();
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        let values = s.get("enum").and_then(Value::as_array).map(|v| v.iter().filter(|v| !v.is_null()));
        if let Some(mut values) = values {
            let pick = if minimal { values.next() } else { values.next_back() };
            if let Some(v) = pick {
                return v.clone();
            }
        }
        let bound = |k: &str| s.get(k).and_then(Value::as_f64);
        match type_of(s) {
            "object" | "" if s.get("properties").is_some() || type_of(s) == "object" => self.object(s, name, depth),
            "array" => {
                let (lo, hi) = (bound("minItems").unwrap_or(0.0), bound("maxItems").unwrap_or(f64::MAX));
                let count = if minimal { lo.max(1.0) } else { lo.max(2.0) }.min(hi) as usize;
                let items = s.get("items").cloned().unwrap_or(json!({}));
                let one = self.value(&items, name, depth + 1);
                // Distinct items in a full sample: a list of URLs keeps its order visible.
                let nth = |i: usize| match &one {
                    Value::String(u) if !minimal && i > 0 && u.contains("://") => Value::String(format!("{u}?{i}")),
                    other => other.clone(),
                };
                Value::Array((0..count).map(nth).collect())
            }
            "string" => {
                let takes_file = name.ends_with("url")
                    || name.ends_with("urls")
                    || matches!(s.get("format").and_then(Value::as_str), Some("uri" | "binary"));
                let text = match (takes_file, minimal) {
                    (true, _) => SAMPLE_URL,
                    (false, true) => "a lighthouse at dusk",
                    (false, false) => "一座灯塔 \"at dusk\" \\ 🌅 in the fog",
                };
                let min = bound("minLength").unwrap_or(0.0) as usize;
                let max = bound("maxLength").map_or(usize::MAX, |m| m as usize);
                let mut text: String = text.chars().take(max).collect();
                while text.chars().count() < min {
                    text.push('a');
                }
                Value::String(text)
            }
            "integer" => {
                let (lo, hi) = integer_bounds(s);
                let v = match (self.fill, lo, hi) {
                    (Fill::Minimal, Some(lo), hi) => lo.min(hi.unwrap_or(f64::MAX)) as i64,
                    (Fill::Minimal, None, hi) => hi.map_or(1, |hi| hi.min(1.0) as i64),
                    (Fill::Maximal, _, Some(hi)) => hi as i64,
                    (Fill::Maximal, Some(lo), None) => lo as i64 + 3,
                    // Seeds exceed 2^53: a float would round them.
                    (Fill::Maximal, None, None) => 196_619_188_014_358_660,
                };
                json!(v)
            }
            "number" => {
                let (lo, hi) = bounds(s);
                json!(number(self.fill, lo, hi))
            }
            "boolean" => Value::Bool(!minimal),
            _ => Value::Null,
        }
    }

    /// An object: its required members (every member, and one more where the schema
    /// takes more, when the fill is maximal).
    fn object(&self, s: &Value, name: &str, depth: usize) -> Value {
        let props = s.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut out = Map::new();
        // Required names first, so that a name without a property still gets a value.
        for key in &required {
            let v = props.and_then(|p| p.get(*key)).map_or(json!("sample"), |p| self.value(p, key, depth + 1));
            out.insert(key.to_string(), v);
        }
        if self.fill == Fill::Maximal {
            for (key, p) in props.into_iter().flatten() {
                if !out.contains_key(key) {
                    let v = self.value(p, key, depth + 1);
                    out.insert(key.clone(), v);
                }
            }
            if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
                out.insert(format!("extra_{name}"), self.value(extra, name, depth + 1));
            }
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schema: Value, expected: Value) {
        assert_eq!(sample(&schema, Fill::Minimal, ""), expected, "{schema}");
    }

    #[test]
    fn required_fields_only_each_within_its_rules() {
        check(
            json!({"type": "object", "required": ["prompt", "image_urls", "n", "size", "mode"], "properties": {
                "prompt": {"type": "string"},
                "image_urls": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "n": {"type": "integer", "minimum": 3, "maximum": 5},
                "size": {"$ref": "#/definitions/Size"},
                "mode": {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["fast", "slow"]}]},
                "optional": {"type": "string"}
            }, "definitions": {"Size": {"type": "object", "required": ["width"], "properties": {"width": {"type": "integer", "default": 512}}}}}),
            json!({"prompt": "a lighthouse at dusk", "image_urls": [SAMPLE_URL, SAMPLE_URL], "n": 3, "size": {"width": 512}, "mode": "fast"}),
        );
        check(json!({"type": "object", "properties": {"x": {"type": "string"}}}), json!({}));
        check(json!({"type": ["number", "null"], "maximum": 0.5}), json!(0.5));
        check(json!({"type": "integer", "maximum": 0}), json!(0));
    }

    #[test]
    fn a_full_sample_has_every_member_the_last_choices_and_the_upper_bounds() {
        let schema = json!({"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string", "maxLength": 6},
            "image_urls": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "n": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
            "seed": {"type": ["integer", "null"]},
            "strength": {"type": "number", "minimum": 0.5},
            "size": {"anyOf": [{"type": "string", "enum": ["square", "wide"]}, {"$ref": "#/definitions/Size"}, {"type": "null"}]},
            "mode": {"enum": ["fast", "slow", null]},
            "safe": {"type": "boolean", "default": true},
            "meta": {"type": "object", "additionalProperties": {"type": "integer", "maximum": 9}}
        }, "definitions": {"Size": {"type": "object", "required": ["width"], "properties": {"width": {"type": "integer"}, "height": {"type": "integer", "maximum": 64}}}}});
        let full = sample(&schema, Fill::Maximal, "");
        assert_eq!(
            full,
            json!({"prompt": "一座灯塔 \"", "image_urls": [SAMPLE_URL, format!("{SAMPLE_URL}?1")], "n": 4,
                "seed": 196_619_188_014_358_660_i64, "strength": 1.75,
                "size": {"width": 196_619_188_014_358_660_i64, "height": 64}, "mode": "slow", "safe": true,
                "meta": {"extra_meta": 9}})
        );
        // The minimal sample of the same schema: the required member only.
        assert_eq!(sample(&schema, Fill::Minimal, ""), json!({"prompt": "a ligh"}));
    }

    #[test]
    fn exclusive_bounds_are_kept_inside_by_both_fills() {
        for schema in [
            json!({"type": "number", "exclusiveMinimum": 5}),
            json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}),
            json!({"type": "number", "exclusiveMaximum": -3}),
            json!({"type": "number", "minimum": 2, "exclusiveMaximum": 2.5}),
            json!({"type": "integer", "exclusiveMinimum": 7}),
            json!({"type": "integer", "exclusiveMaximum": -7}),
            json!({"type": "integer", "exclusiveMinimum": 0.5, "exclusiveMaximum": 2}),
        ] {
            let check = |v: f64| {
                let ok = |k: &str, f: fn(f64, f64) -> bool| schema.get(k).and_then(Value::as_f64).is_none_or(|b| f(v, b));
                ok("exclusiveMinimum", |v, b| v > b)
                    && ok("exclusiveMaximum", |v, b| v < b)
                    && ok("minimum", |v, b| v >= b)
                    && ok("maximum", |v, b| v <= b)
            };
            for fill in [Fill::Minimal, Fill::Maximal] {
                let v = sample(&schema, fill, "");
                assert!(v.as_f64().is_some_and(check), "{fill:?} of {schema}: {v}");
                assert_eq!(v.is_i64(), schema["type"] == "integer", "{fill:?} of {schema}: {v}");
            }
        }
    }
}
