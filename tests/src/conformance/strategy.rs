//! Proptest strategies derived from the spec's schemas: every value they generate is one
//! the schema accepts (enums, bounds, required members, `nullable`, `oneOf` branches).

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Union};
use serde_json::{Map, Value, json};

use super::Spec;

/// A strategy for values an OpenAPI schema of `spec` accepts.
pub fn value_strategy(spec: &Spec, schema: &Value) -> BoxedStrategy<Value> {
    build(spec, schema, 0)
}

fn build(spec: &Spec, schema: &Value, depth: usize) -> BoxedStrategy<Value> {
    // Regen refuses recursive schemas, so any depth ends; this only stops a runaway.
    assert!(depth <= 64, "a schema nested past 64 levels: {schema}");
    if schema.get("$ref").is_some() {
        return build(spec, spec.resolve(schema), depth + 1);
    }
    let inner = build_non_null(spec, schema, depth);
    if schema.get("nullable") == Some(&Value::Bool(true)) { prop_oneof![3 => inner, 1 => Just(Value::Null)].boxed() } else { inner }
}

fn build_non_null(spec: &Spec, schema: &Value, depth: usize) -> BoxedStrategy<Value> {
    if let Some(Value::Array(all)) = schema.get("allOf") {
        let parts: Vec<BoxedStrategy<Value>> = all.iter().map(|s| build(spec, s, depth + 1)).collect();
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
        if let Some(Value::Array(branches)) = schema.get(key) {
            return Union::new(branches.iter().map(|b| build(spec, b, depth + 1))).boxed();
        }
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        let values: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
        return proptest::sample::select(values).boxed();
    }
    let min = schema.get("minimum").and_then(Value::as_f64);
    let max = schema.get("maximum").and_then(Value::as_f64);
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => match (min, max) {
            (None, None) => any::<i64>().prop_map(Value::from).boxed(),
            (lo, hi) => (lo.map_or(i64::MIN, |v| v as i64)..=hi.map_or(i64::MAX, |v| v as i64)).prop_map(Value::from).boxed(),
        },
        Some("number") => {
            let (lo, hi) = match (min, max) {
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
            let lo = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let hi = schema.get("maxItems").and_then(Value::as_u64).map_or(lo + 3, |m| m as usize).max(lo);
            let items = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            proptest::collection::vec(build(spec, &items, depth + 1), lo..=hi).prop_map(Value::Array).boxed()
        }
        Some("object") | None
            if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() || schema.get("type").is_some() =>
        {
            object_strategy(spec, schema, depth)
        }
        _ => scalar().boxed(),
    }
}

fn object_strategy(spec: &Spec, schema: &Value, depth: usize) -> BoxedStrategy<Value> {
    let required: Vec<String> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    let mut members: Vec<BoxedStrategy<Option<(String, Value)>>> = vec![];
    for (name, s) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let name = name.clone();
        let value = build(spec, s, depth + 1);
        if required.contains(&name) {
            members.push(value.prop_map(move |v| Some((name.clone(), v))).boxed());
        } else {
            members.push(proptest::option::of(value).prop_map(move |v| v.map(|v| (name.clone(), v))).boxed());
        }
    }
    let extra: BoxedStrategy<Vec<(String, Value)>> = match schema.get("additionalProperties") {
        Some(s @ Value::Object(_)) => proptest::collection::vec(("[a-z_]{1,10}", build(spec, s, depth + 1)), 0..3).boxed(),
        Some(Value::Bool(true)) if schema.get("properties").is_none() => {
            proptest::collection::vec(("[a-z_]{1,10}", scalar()), 0..3).boxed()
        }
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
