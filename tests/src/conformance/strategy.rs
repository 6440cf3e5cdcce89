//! Proptest strategies for the catalogue's JSON Schemas (self-contained, in the catalogue's dialect: what
//! `input_json_schema` and `output_json_schema` hold, and what [`super::Spec::json_schema`]
//! makes of any schema of the spec): every value they generate is one the schema accepts
//! (enums, bounds, exclusive bounds, required members, null types, union branches).

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Union};
use serde_json::{Map, Value, json};

/// A strategy for values the self-contained JSON Schema `root` accepts.
pub fn value_strategy(root: &Value) -> BoxedStrategy<Value> {
    build(root, root, 0)
}

fn build(root: &Value, s: &Value, depth: usize) -> BoxedStrategy<Value> {
    // Regen refuses recursive schemas, so any depth ends; this only stops a runaway.
    assert!(depth <= 64, "a schema nested past 64 levels: {s}");
    if let Some(r) = s.get("$ref") {
        let target = falq_api::json_schema::ref_target(root, s).unwrap_or_else(|| panic!("{r} is not in the definitions"));
        return build(root, target, depth + 1);
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types == ["null"] {
        return Just(Value::Null).boxed();
    }
    let inner = build_non_null(root, s, types.iter().copied().find(|t| *t != "null"), depth);
    if types.contains(&"null") && types.len() > 1 { prop_oneof![3 => inner, 1 => Just(Value::Null)].boxed() } else { inner }
}

fn build_non_null(root: &Value, s: &Value, ty: Option<&str>, depth: usize) -> BoxedStrategy<Value> {
    if let Some(c) = s.get("const") {
        return Just(c.clone()).boxed();
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        let parts: Vec<BoxedStrategy<Value>> = all.iter().map(|p| build(root, p, depth + 1)).collect();
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one");
        }
        return parts
            .prop_map(|values| {
                Value::Object(values.iter().filter_map(Value::as_object).flatten().map(|(k, v)| (k.clone(), v.clone())).collect())
            })
            .boxed();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = s.get(key) {
            return Union::new(branches.iter().map(|b| build(root, b, depth + 1))).boxed();
        }
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        return proptest::sample::select(values.clone()).boxed();
    }
    match ty {
        Some("integer") => {
            let (lo, hi) = falq_api::json_schema::integer_bounds(s);
            match (lo, hi) {
                (None, None) => any::<i64>().prop_map(Value::from).boxed(),
                (lo, hi) => (lo.map_or(i64::MIN, |v| v as i64)..=hi.map_or(i64::MAX, |v| v as i64)).prop_map(Value::from).boxed(),
            }
        }
        Some("number") => {
            // An exclusive bound as the nearest number inside it.
            let (lo, hi) = falq_api::json_schema::bounds(s);
            let lo = lo.map(|(b, exclusive)| if exclusive { b.next_up() } else { b });
            let hi = hi.map(|(b, exclusive)| if exclusive { b.next_down() } else { b });
            let (lo, hi) = match (lo, hi) {
                (Some(lo), Some(hi)) => (lo, hi),
                (Some(lo), None) => (lo, lo + 1e6),
                (None, Some(hi)) => (hi - 1e6, hi),
                (None, None) => (-1e9, 1e9),
            };
            prop_oneof![(lo..=hi).prop_map(|f| json!(f)), Just(json!(lo)), Just(json!(hi))].boxed()
        }
        Some("boolean") => any::<bool>().prop_map(Value::Bool).boxed(),
        Some("string") => "\\PC{0,24}".prop_map(Value::String).boxed(),
        Some("array") => {
            let lo = s.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let hi = s.get("maxItems").and_then(Value::as_u64).map_or(lo + 3, |m| m as usize).max(lo);
            let items = s.get("items").cloned().unwrap_or(Value::Bool(true));
            proptest::collection::vec(build(root, &items, depth + 1), lo..=hi).prop_map(Value::Array).boxed()
        }
        Some("object") | None if s.get("properties").is_some() || s.get("additionalProperties").is_some() || ty.is_some() => {
            object_strategy(root, s, depth)
        }
        _ => scalar().boxed(),
    }
}

fn object_strategy(root: &Value, s: &Value, depth: usize) -> BoxedStrategy<Value> {
    let required: Vec<String> =
        s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    let mut members: Vec<BoxedStrategy<Option<(String, Value)>>> = vec![];
    for (name, p) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let name = name.clone();
        let value = build(root, p, depth + 1);
        if required.contains(&name) {
            members.push(value.prop_map(move |v| Some((name.clone(), v))).boxed());
        } else {
            members.push(proptest::option::of(value).prop_map(move |v| v.map(|v| (name.clone(), v))).boxed());
        }
    }
    let extra: BoxedStrategy<Vec<(String, Value)>> = match s.get("additionalProperties") {
        Some(a @ Value::Object(_)) => proptest::collection::vec(("[a-z_]{1,10}", build(root, a, depth + 1)), 0..3).boxed(),
        Some(Value::Bool(true)) if s.get("properties").is_none() => proptest::collection::vec(("[a-z_]{1,10}", scalar()), 0..3).boxed(),
        // An object with listed members gets only them.
        _ => Just(vec![]).boxed(),
    };
    (members, extra)
        .prop_map(|(members, extra)| {
            let mut out = Map::new();
            for (k, v) in extra {
                out.insert(k, v);
            }
            for (k, v) in members.into_iter().flatten() {
                out.insert(k, v);
            }
            Value::Object(out)
        })
        .boxed()
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String)
    ]
}
