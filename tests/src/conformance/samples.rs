//! Values derived from the spec: minimal and maximal request bodies, the spec's own
//! examples as bodies, and one constraint case per required field, enum, bound and type.

use serde_json::{Map, Value, json};

use super::{Operation, Spec, component_of};

/// How much of a schema a sample fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Required members only; the first enum value and `oneOf` branch; lower bounds.
    Minimal,
    /// Every member; the last enum value and `oneOf` branch; upper bounds; a seed above 2^53.
    Maximal,
}

/// A value the schema accepts. `name` is the field it is for (a `*url*` field gets a URL).
pub fn sample(spec: &Spec, schema: &Value, fill: Fill, name: &str) -> Value {
    sample_at(spec, schema, fill, name, 0)
}

fn sample_at(spec: &Spec, schema: &Value, fill: Fill, name: &str, depth: usize) -> Value {
    // Regen refuses recursive schemas, so any depth ends; this only stops a runaway.
    assert!(depth <= 64, "a schema nested past 64 levels: {schema}");
    let minimal = fill == Fill::Minimal;
    if schema.get("$ref").is_some() {
        return sample_at(spec, spec.resolve(schema), fill, name, depth + 1);
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        let parts: Vec<Value> = all.iter().map(|s| sample_at(spec, s, fill, name, depth + 1)).collect();
        return match parts.as_slice() {
            [one] => one.clone(),
            _ => Value::Object(parts.iter().filter_map(Value::as_object).flatten().map(|(k, v)| (k.clone(), v.clone())).collect()),
        };
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            let branch = if minimal { branches.first() } else { branches.last() };
            return branch.map(|b| sample_at(spec, b, fill, name, depth + 1)).unwrap_or(Value::Null);
        }
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        let non_null: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        let pick = if minimal { non_null.first() } else { non_null.last() };
        return pick.map(|v| (*v).clone()).unwrap_or(Value::Null);
    }
    let min = schema.get("minimum").and_then(Value::as_f64);
    let max = schema.get("maximum").and_then(Value::as_f64);
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => {
            let v = match (fill, min, max) {
                (Fill::Minimal, Some(lo), _) => lo as i64,
                (Fill::Minimal, None, Some(hi)) => (hi as i64).min(0),
                (Fill::Minimal, None, None) => 0,
                (Fill::Maximal, _, Some(hi)) => hi as i64,
                (Fill::Maximal, Some(lo), None) => lo as i64 + 3,
                // Seeds exceed 2^53: a float would round them.
                (Fill::Maximal, None, None) => 196_619_188_014_358_660,
            };
            json!(v)
        }
        Some("number") => {
            let v = match (fill, min, max) {
                (Fill::Minimal, Some(lo), _) => lo,
                (Fill::Minimal, None, Some(hi)) => hi.min(0.0),
                (Fill::Minimal, None, None) => 0.0,
                (Fill::Maximal, _, Some(hi)) => hi,
                (Fill::Maximal, Some(lo), None) => lo + 1.25,
                (Fill::Maximal, None, None) => 1234.5,
            };
            json!(v)
        }
        Some("boolean") => json!(!minimal),
        Some("string") => {
            if name.contains("url") {
                json!(format!("https://example.test/{name}.png"))
            } else if minimal {
                json!("a red fox in the snow")
            } else {
                json!("一只猫咪 \"quoted\" \\ 🦊 in the snow")
            }
        }
        Some("array") => {
            let lo = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let hi = schema.get("maxItems").and_then(Value::as_u64).map(|m| m as usize);
            let n = if minimal { lo.max(1) } else { lo.max(2) };
            let n = hi.map_or(n, |hi| n.min(hi));
            let items = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            let list: Vec<Value> = (0..n)
                .map(|i| {
                    let v = sample_at(spec, &items, fill, name, depth + 1);
                    // Distinct items: a URL list keeps its order visible.
                    match v {
                        Value::String(s) if i > 0 => Value::String(s.replacen(".png", &format!("-{i}.png"), 1)),
                        other => other,
                    }
                })
                .collect();
            Value::Array(list)
        }
        Some("object") | None if schema.get("properties").is_some() || schema.get("type").is_some() => {
            let required: Vec<&str> =
                schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let mut out = Map::new();
            for (prop, s) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
                if minimal && !required.contains(&prop.as_str()) {
                    continue;
                }
                out.insert(prop.clone(), sample_at(spec, s, fill, prop, depth + 1));
            }
            if !minimal && let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                out.insert(format!("extra_{name}"), sample_at(spec, extra, fill, name, depth + 1));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

/// Request bodies for a submit operation, each labelled: `minimal`, `maximal`, `nulls`
/// (every nullable optional field null) and one per example the spec gives a field.
pub fn request_samples(spec: &Spec, op: &Operation) -> Vec<(String, Value)> {
    let Some(schema) = &op.request_body else { return vec![] };
    let minimal = sample(spec, schema, Fill::Minimal, "");
    let mut out = vec![("minimal".to_string(), minimal.clone()), ("maximal".to_string(), sample(spec, schema, Fill::Maximal, ""))];
    let object = spec.resolve(schema);
    let required = required_of(object);
    let mut nulls = minimal.clone();
    for (prop, s) in properties_of(object) {
        if s.get("nullable") == Some(&Value::Bool(true)) && !required.contains(&prop) {
            nulls[&prop] = Value::Null;
        }
        for (i, example) in s.get("x-falq-examples").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let mut body = minimal.clone();
            body[&prop] = example.clone();
            out.push((format!("example {prop}#{i}"), body));
        }
    }
    if nulls != minimal {
        out.push(("nulls".to_string(), nulls));
    }
    out
}

/// The properties of an object schema, in order.
pub fn properties_of(schema: &Value) -> Vec<(String, Value)> {
    schema.get("properties").and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// The `required` list of an object schema.
pub fn required_of(schema: &Value) -> Vec<String> {
    schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// What a [`Constraint`] case puts in the body.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstraintKind {
    /// The required field is left out.
    Required,
    /// A value outside the enum; `component` names the enum's schema when it has one.
    NotInEnum {
        /// The values the spec allows.
        allowed: Vec<Value>,
        /// The enum's component (`OutputFormat`), if named.
        component: Option<String>,
    },
    /// One of the enum's values (accepted).
    InEnum,
    /// Just above the maximum.
    AboveMaximum(f64),
    /// Just below the minimum.
    BelowMinimum(f64),
    /// Exactly at a bound (accepted).
    AtBound(f64),
    /// One item fewer than `minItems`.
    TooFewItems(u64),
    /// Exactly `minItems` items (accepted).
    AtMinItems(u64),
    /// A value of another JSON type than the spec's.
    WrongType {
        /// The spec's type, or `oneOf` for a union.
        expected: String,
    },
}

impl ConstraintKind {
    /// Whether the spec accepts a body of this kind.
    pub fn accepted(&self) -> bool {
        matches!(self, ConstraintKind::InEnum | ConstraintKind::AtBound(_) | ConstraintKind::AtMinItems(_))
    }
}

/// One case derived from a constraint of an operation's input.
#[derive(Clone, Debug)]
pub struct Constraint {
    /// The operation id.
    pub operation: String,
    /// The field, dotted (`num_images`, `image_size.width`).
    pub field: String,
    /// What the case does.
    pub kind: ConstraintKind,
    /// The value put in the field (`Null` when left out).
    pub value: Value,
    /// The whole body: the minimal body with this change.
    pub body: Value,
}

/// Every constraint case of a submit operation's input: each required field left out,
/// each enum given a value outside it and each of its values, each bound crossed and met,
/// each field given a wrong type. Fields inside `oneOf` object branches count too.
pub fn constraints(spec: &Spec, op: &Operation) -> Vec<Constraint> {
    let Some(schema) = &op.request_body else { return vec![] };
    let minimal = sample(spec, schema, Fill::Minimal, "");
    let object = spec.resolve(schema).clone();
    let mut out = vec![];
    for name in required_of(&object) {
        let mut body = minimal.clone();
        if let Some(m) = body.as_object_mut() {
            m.remove(&name);
        }
        out.push(Constraint { operation: op.id.clone(), field: name, kind: ConstraintKind::Required, value: Value::Null, body });
    }
    for (name, prop) in properties_of(&object) {
        field_constraints(spec, &name, &prop, &minimal, &mut |field, kind, value, body| {
            out.push(Constraint { operation: op.id.clone(), field, kind, value, body });
        });
    }
    out
}

type Emit<'a> = dyn FnMut(String, ConstraintKind, Value, Value) + 'a;

fn field_constraints(spec: &Spec, field: &str, schema: &Value, base: &Value, emit: &mut Emit<'_>) {
    let put = |emit: &mut Emit<'_>, kind: ConstraintKind, value: Value| {
        let mut body = base.clone();
        set_dotted(&mut body, field, value.clone());
        emit(field.to_string(), kind, value, body);
    };
    let component = component_of(schema).map(str::to_string);
    let resolved = spec.resolve(schema).clone();
    // Enum.
    if let Some(Value::Array(allowed)) = resolved.get("enum") {
        let invalid = match resolved.get("type").and_then(Value::as_str) {
            Some("integer") | Some("number") => json!(987_654),
            _ => json!(format!("not-a-{}", field.replace('.', "-"))),
        };
        put(emit, ConstraintKind::NotInEnum { allowed: allowed.clone(), component: component.clone() }, invalid);
        for v in allowed.iter().filter(|v| !v.is_null()) {
            put(emit, ConstraintKind::InEnum, v.clone());
        }
    }
    // Bounds.
    let ty = resolved.get("type").and_then(Value::as_str).map(str::to_string);
    let integer = ty.as_deref() == Some("integer");
    let number = |v: f64| if integer { json!(v as i64) } else { json!(v) };
    if let Some(max) = resolved.get("maximum").and_then(Value::as_f64) {
        let above = if integer { max + 1.0 } else { max.next_up() };
        put(emit, ConstraintKind::AboveMaximum(max), number(above));
        put(emit, ConstraintKind::AtBound(max), number(max));
    }
    if let Some(min) = resolved.get("minimum").and_then(Value::as_f64) {
        let below = if integer { min - 1.0 } else { min.next_down() };
        put(emit, ConstraintKind::BelowMinimum(min), number(below));
        put(emit, ConstraintKind::AtBound(min), number(min));
    }
    if let Some(min) = resolved.get("minItems").and_then(Value::as_u64) {
        let items = resolved.get("items").cloned().unwrap_or(Value::Bool(true));
        let one = sample(spec, &items, Fill::Minimal, field);
        if min > 0 {
            put(emit, ConstraintKind::TooFewItems(min), Value::Array(vec![one.clone(); (min - 1) as usize]));
        }
        put(emit, ConstraintKind::AtMinItems(min), Value::Array(vec![one; min.max(1) as usize]));
    }
    // A wrong JSON type.
    let wrong = match ty.as_deref() {
        Some("string") => Some((json!(12345), "string")),
        Some("integer") => Some((json!("12"), "integer")),
        Some("number") => Some((json!("1.5"), "number")),
        Some("boolean") => Some((json!("true"), "boolean")),
        Some("array") => Some((json!("not a list"), "array")),
        // Not a list: serde reads a struct from a sequence, so a list would fail at its first item.
        Some("object") => Some((json!("not an object"), "object")),
        _ if resolved.get("oneOf").is_some() || resolved.get("anyOf").is_some() => Some((json!(true), "oneOf")),
        _ => None,
    };
    if let Some((value, expected)) = wrong {
        put(emit, ConstraintKind::WrongType { expected: expected.into() }, value);
    }
    if integer {
        put(emit, ConstraintKind::WrongType { expected: "integer".into() }, json!(2.5));
    }
    // The `oneOf` branches: an enum branch is the field's enum; an object branch's fields
    // are `field.sub`, each case riding on the branch's minimal sample.
    for key in ["oneOf", "anyOf"] {
        for branch in resolved.get(key).and_then(Value::as_array).into_iter().flatten() {
            let branch_component = component_of(branch).map(str::to_string);
            let b = spec.resolve(branch).clone();
            if let Some(Value::Array(allowed)) = b.get("enum") {
                put(
                    emit,
                    ConstraintKind::NotInEnum { allowed: allowed.clone(), component: branch_component },
                    json!(format!("not-a-{field}")),
                );
                for v in allowed {
                    put(emit, ConstraintKind::InEnum, v.clone());
                }
            } else if b.get("properties").is_some() {
                let mut nested_base = base.clone();
                set_dotted(&mut nested_base, field, sample(spec, &b, Fill::Minimal, field));
                for (sub, sub_schema) in properties_of(&b) {
                    field_constraints(spec, &format!("{field}.{sub}"), &sub_schema, &nested_base, emit);
                }
            }
        }
    }
}

/// Sets a dotted field (`image_size.width`) in a JSON object, creating objects on the way.
/// When the parent of a nested field is not an object yet, the caller's base supplies it.
pub fn set_dotted(body: &mut Value, field: &str, value: Value) {
    let mut at = body;
    let parts: Vec<&str> = field.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let m = at.as_object_mut().expect("object");
        if i + 1 == parts.len() {
            m.insert(part.to_string(), value);
            return;
        }
        at = m.entry(part.to_string()).or_insert(Value::Object(Map::new()));
    }
}
