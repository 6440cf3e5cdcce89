//! fal's 422 `detail` items for an input: the simulator validates with the catalogue's
//! one validation (`falq_api::validate_lax`, the generated JSON Schema read the way
//! pydantic's lax mode reads it: `"2"` is an integer) and words each error as fal's
//! pydantic models do (`loc`, `msg`, `type`, `ctx`). No schema is walked here.

use falq_api::types::{LocationPart, ValidationErrorItem};
use falq_api::{EndpointInfo, InputError, InputErrorKind, Segment};
use serde_json::{Value, json};

/// The input as fal reads it, or fal's `detail` items for what it breaks, each located
/// from `"body"` (`["body", "num_images"]`).
pub fn validate(info: &'static EndpointInfo, body: &Value) -> Result<Value, Vec<ValidationErrorItem>> {
    falq_api::validate_lax(info, body).map_err(|errors| errors.0.iter().map(detail).collect())
}

/// One error as pydantic words it.
fn detail(e: &InputError) -> ValidationErrorItem {
    let mut loc = vec![LocationPart::String("body".into())];
    loc.extend(e.location.iter().map(|s| match s {
        Segment::Key(k) => LocationPart::String(k.clone()),
        Segment::Index(i) => LocationPart::Integer(*i as i64),
    }));
    let (msg, kind, ctx): (String, &str, Option<Value>) = match &e.kind {
        InputErrorKind::Missing => ("Field required".into(), "missing", None),
        InputErrorKind::Type { expected } => {
            let (msg, kind) = type_error(expected.first().copied().unwrap_or(""), &e.value);
            (msg.into(), kind, None)
        }
        InputErrorKind::Enum { allowed } => {
            let expected = enum_expected(allowed);
            (format!("Input should be {expected}"), "literal_error", Some(json!({ "expected": expected })))
        }
        InputErrorKind::Minimum { limit, exclusive: false } => (
            format!("Input should be greater than or equal to {}", show_number(*limit)),
            "greater_than_equal",
            Some(json!({ "ge": json_number(*limit) })),
        ),
        InputErrorKind::Minimum { limit, exclusive: true } => {
            (format!("Input should be greater than {}", show_number(*limit)), "greater_than", Some(json!({ "gt": json_number(*limit) })))
        }
        InputErrorKind::Maximum { limit, exclusive: false } => (
            format!("Input should be less than or equal to {}", show_number(*limit)),
            "less_than_equal",
            Some(json!({ "le": json_number(*limit) })),
        ),
        InputErrorKind::Maximum { limit, exclusive: true } => {
            (format!("Input should be less than {}", show_number(*limit)), "less_than", Some(json!({ "lt": json_number(*limit) })))
        }
        InputErrorKind::MinItems { limit } => {
            let len = e.value.as_array().map_or(0, Vec::len);
            let unit = if *limit == 1 { "item" } else { "items" };
            (
                format!("List should have at least {limit} {unit} after validation, not {len}"),
                "too_short",
                Some(json!({ "field_type": "List", "min_length": limit, "actual_length": len })),
            )
        }
        InputErrorKind::MaxItems { limit } => {
            let len = e.value.as_array().map_or(0, Vec::len);
            let unit = if *limit == 1 { "item" } else { "items" };
            (
                format!("List should have at most {limit} {unit} after validation, not {len}"),
                "too_long",
                Some(json!({ "field_type": "List", "max_length": limit, "actual_length": len })),
            )
        }
        InputErrorKind::MinLength { limit } => {
            let unit = if *limit == 1 { "character" } else { "characters" };
            (format!("String should have at least {limit} {unit}"), "string_too_short", Some(json!({ "min_length": limit })))
        }
        InputErrorKind::MaxLength { limit } => {
            let unit = if *limit == 1 { "character" } else { "characters" };
            (format!("String should have at most {limit} {unit}"), "string_too_long", Some(json!({ "max_length": limit })))
        }
        _ => (format!("Value error, {}", e.message), "value_error", None),
    };
    item(&loc, msg, kind, ctx)
}

/// The message and type of `value`, which is not of JSON type `ty`, as pydantic words it.
fn type_error(ty: &str, value: &Value) -> (&'static str, &'static str) {
    match (ty, value) {
        ("string", _) => ("Input should be a valid string", "string_type"),
        ("boolean", Value::String(_)) => ("Input should be a valid boolean, unable to interpret input", "bool_parsing"),
        ("boolean", _) => ("Input should be a valid boolean", "bool_type"),
        ("array", _) => ("Input should be a valid list", "list_type"),
        ("object", _) => ("Input should be a valid dictionary or object to extract fields from", "model_attributes_type"),
        ("integer", Value::Number(_)) => ("Input should be a valid integer, got a number with a fractional part", "int_from_float"),
        ("integer", Value::String(_)) => ("Input should be a valid integer, unable to parse string as an integer", "int_parsing"),
        ("integer", _) => ("Input should be a valid integer", "int_type"),
        ("number", Value::String(_)) => ("Input should be a valid number, unable to parse string as a number", "float_parsing"),
        ("number", _) => ("Input should be a valid number", "float_type"),
        _ => ("Input is of the wrong type", "type_error"),
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

    fn info(endpoint: &str) -> &'static EndpointInfo {
        falq_api::endpoint(endpoint).unwrap()
    }

    /// (loc after "body", type) of each error.
    fn errors(endpoint: &str, body: Value) -> Vec<(String, String)> {
        validate(info(endpoint), &body)
            .err()
            .unwrap_or_default()
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

    fn check(endpoint: &str, body: Value, expected: &[(&str, &str)]) {
        let expected: Vec<(String, String)> = expected.iter().map(|(l, t)| (l.to_string(), t.to_string())).collect();
        assert_eq!(errors(endpoint, body.clone()), expected, "{endpoint} {body}");
    }

    #[test]
    fn flux_redux_table() {
        let s = "fal-ai/flux-1/dev/redux";
        let url = "https://example.com/a.png";
        check(s, json!({ "image_url": url }), &[]);
        check(s, json!({ "image_url": url, "unknown_field": [1, 2] }), &[]);
        check(s, json!({}), &[("image_url", "missing")]);
        check(s, json!({ "image_url": url, "num_images": 5 }), &[("num_images", "less_than_equal")]);
        check(s, json!({ "image_url": url, "num_images": 0 }), &[("num_images", "greater_than_equal")]);
        check(s, json!({ "image_url": url, "num_images": "2" }), &[]);
        check(s, json!({ "image_url": url, "num_images": "9" }), &[("num_images", "less_than_equal")]);
        check(s, json!({ "image_url": url, "num_images": "two" }), &[("num_images", "int_parsing")]);
        check(s, json!({ "image_url": url, "num_images": 1.5 }), &[("num_images", "int_from_float")]);
        check(s, json!({ "image_url": url, "num_images": 2.0 }), &[]);
        check(s, json!({ "image_url": url, "num_images": true }), &[("num_images", "int_type")]);
        check(s, json!({ "image_url": 7 }), &[("image_url", "string_type")]);
        check(s, json!({ "image_url": url, "guidance_scale": 20.5 }), &[("guidance_scale", "less_than_equal")]);
        check(s, json!({ "image_url": url, "guidance_scale": "2.5" }), &[]);
        check(s, json!({ "image_url": url, "guidance_scale": "x" }), &[("guidance_scale", "float_parsing")]);
        check(s, json!({ "image_url": url, "output_format": "gif" }), &[("output_format", "literal_error")]);
        check(s, json!({ "image_url": url, "sync_mode": "yes" }), &[]);
        check(s, json!({ "image_url": url, "sync_mode": "maybe" }), &[("sync_mode", "bool_parsing")]);
        check(s, json!({ "image_url": url, "sync_mode": [] }), &[("sync_mode", "bool_type")]);
        check(s, json!({ "image_url": url, "seed": null }), &[]);
        check(s, json!({ "image_url": url, "seed": 196_619_188_014_358_660u64 }), &[]);
        check(s, json!({ "image_url": url, "image_size": "square_hd" }), &[]);
        check(s, json!({ "image_url": url, "image_size": { "width": 640, "height": 480 } }), &[]);
        check(s, json!({ "image_url": url, "image_size": { "width": "640", "height": 480 } }), &[]);
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
        let multi = "fal-ai/flux-pro/kontext/multi";
        check(multi, json!({ "prompt": "p", "image_urls": ["a"] }), &[]);
        check(multi, json!({ "prompt": "p", "image_urls": [] }), &[("image_urls", "too_short")]);
        check(multi, json!({ "prompt": "p", "image_urls": ["a", 3] }), &[("image_urls.1", "string_type")]);
        check(multi, json!({ "prompt": "p", "image_urls": "a" }), &[("image_urls", "list_type")]);
        let kontext = "fal-ai/flux-pro/kontext";
        check(kontext, json!({ "prompt": "p", "image_url": "a", "safety_tolerance": "7" }), &[("safety_tolerance", "literal_error")]);
        check(kontext, json!({ "prompt": "p", "image_url": "a", "safety_tolerance": 2 }), &[("safety_tolerance", "literal_error")]);
        let text = "fal-ai/flux-pro/kontext/text-to-image";
        check(text, json!({ "prompt": "p", "aspect_ratio": "16:9" }), &[]);
        check(text, json!({ "prompt": "p", "aspect_ratio": "5:4" }), &[("aspect_ratio", "literal_error")]);
        check(text, json!({ "aspect_ratio": "1:1" }), &[("prompt", "missing")]);
    }

    #[test]
    fn messages_and_context_match_fal() {
        let redux = info("fal-ai/flux-1/dev/redux");
        let first = |info, body| validate(info, &body).unwrap_err().remove(0);
        let e = first(redux, json!({ "image_url": "u", "num_images": 5 }));
        assert_eq!(
            serde_json::to_value(e).unwrap(),
            json!({
                "loc": ["body", "num_images"],
                "msg": "Input should be less than or equal to 4",
                "type": "less_than_equal",
                "ctx": { "le": 4 }
            })
        );
        assert_eq!(first(redux, json!({ "image_url": "u", "output_format": "gif" })).msg, "Input should be 'jpeg' or 'png'");
        assert_eq!(first(redux, json!({})).msg, "Field required");
        let multi = info("fal-ai/flux-pro/kontext/multi");
        let e = first(multi, json!({ "prompt": "p", "image_urls": [] }));
        assert_eq!(e.msg, "List should have at least 1 item after validation, not 0");
        assert_eq!(e.ctx.map(Value::Object), Some(json!({ "field_type": "List", "min_length": 1, "actual_length": 0 })));
    }

    #[test]
    fn inputs_are_read_as_fal_reads_them() {
        let redux = info("fal-ai/flux-1/dev/redux");
        let read = validate(
            redux,
            &json!({ "image_url": "u", "num_images": " 3 ", "sync_mode": "no", "image_size": { "width": "64", "height": 48 } }),
        )
        .unwrap();
        assert_eq!(read["num_images"], json!(3));
        assert_eq!(read["sync_mode"], json!(false));
        assert_eq!(read["image_size"], json!({ "width": 64, "height": 48 }));
        // A string stays a string where a string is expected.
        let read = validate(redux, &json!({ "image_url": "7" })).unwrap();
        assert_eq!(read["image_url"], json!("7"));
    }
}
