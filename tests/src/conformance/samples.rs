//! Values derived from the spec: minimal and maximal request bodies (made by the
//! catalogue's sample generator), the spec's own examples as bodies, and one constraint
//! case per required field, enum, bound and type.

use serde_json::{Map, Value, json};

use super::{Operation, Spec, component_of};

/// How much of a schema a sample fills: the catalogue's own choices ([`falq_api::Fill`]).
pub use falq_api::Fill;

/// A value an OpenAPI schema of `spec` accepts, made by the project's one sample
/// generator ([`falq_api::sample`]) from the schema's JSON Schema form, the form the
/// catalogue holds. `name` is the field it is for (a `*url` field gets a URL).
pub fn sample(spec: &Spec, schema: &Value, fill: Fill, name: &str) -> Value {
    falq_api::sample(&spec.json_schema(schema), fill, name)
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
