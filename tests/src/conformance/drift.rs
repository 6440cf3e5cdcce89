//! The suite's checking functions: does the generated code still agree with a spec?
//! Each finding is one line naming the operation (or component) and the field, so a
//! changed overlay, a renamed field or a new endpoint says exactly what drifted.

use serde_json::Value;

use super::samples::{ConstraintKind, Fill, constraints, properties_of, request_samples, sample};
use super::typed::{QUEUE_OPERATIONS, TypedEndpoint, component_roundtrip, component_type, enum_parser, typed_endpoint};
use super::{Operation, Spec, component_of, json_difference};

/// Every finding for every operation and component of a spec; empty when the generated
/// code conforms.
pub fn check_spec(spec: &Spec) -> Vec<String> {
    let mut findings = coverage_gaps(spec);
    for name in spec.component_names() {
        if component_roundtrip(&name).is_none() {
            findings.push(format!("component {name} has no generated type in the conformance table (tests/src/conformance/typed.rs)"));
        }
        findings.extend(field_differences(spec, &name).into_iter().map(|d| format!("component {name}: {d}")));
    }
    for op in spec.operations() {
        findings.extend(check_operation(spec, &op.id));
    }
    findings
}

/// Operations of the spec that the suite has no case for, and cases for operations that
/// are gone: `operation foo has no conformance case`.
pub fn coverage_gaps(spec: &Spec) -> Vec<String> {
    let mut findings = vec![];
    let ops = spec.operations();
    for op in &ops {
        let covered = if op.endpoint_id.is_some() { typed_endpoint(&op.id).is_some() } else { QUEUE_OPERATIONS.contains(&op.id.as_str()) };
        if !covered {
            findings.push(format!("operation {} has no conformance case", op.id));
        }
    }
    let known: Vec<String> = super::typed::typed_endpoints()
        .iter()
        .map(|e| e.operation_id.to_string())
        .chain(QUEUE_OPERATIONS.iter().map(|s| s.to_string()))
        .collect();
    for id in known {
        if !ops.iter().any(|o| o.id == id) {
            findings.push(format!("operation {id} has a conformance case but is not in the spec"));
        }
    }
    findings
}

/// Every finding for one operation: its input and output types, each request sample,
/// each constraint case and each response schema.
pub fn check_operation(spec: &Spec, operation_id: &str) -> Vec<String> {
    let op = match spec.operation(operation_id) {
        Ok(op) => op,
        Err(e) => return vec![e],
    };
    let mut findings = vec![];
    if op.endpoint_id.is_some() {
        match typed_endpoint(&op.id) {
            Some(typed) => check_submit(spec, &op, &typed, &mut findings),
            None => findings.push(format!("operation {} has no conformance case", op.id)),
        }
    }
    check_responses(spec, &op, &mut findings);
    findings
}

fn check_submit(spec: &Spec, op: &Operation, typed: &TypedEndpoint, findings: &mut Vec<String>) {
    let id = &op.id;
    if op.input_component() != Some(typed.input_type) {
        findings.push(format!(
            "operation {id}: the spec's input is {:?}, the generated client sends {}",
            op.input_component(),
            typed.input_type
        ));
    }
    if op.output_component() != Some(typed.output_type) {
        findings.push(format!(
            "operation {id}: the spec's x-falq-output is {:?}, the generated output is {}",
            op.output_component(),
            typed.output_type
        ));
    }
    if let Some(input) = op.input_component() {
        let differences = field_differences(spec, input);
        if !differences.is_empty() {
            // Every body would fail the same way: the field lists say it once.
            findings.extend(differences.into_iter().map(|d| format!("operation {id}: {d}")));
            return;
        }
    }
    for (label, body) in request_samples(spec, op) {
        check_accepted_body(spec, op, typed, &format!("{label} body"), &body, findings);
    }
    for case in constraints(spec, op) {
        let field = &case.field;
        let at = format!("operation {id}: field {field}");
        let typed_result = (typed.validate)(&case.body);
        let schema_result = op.request_body.as_ref().map(|s| spec.check(s, &case.body));
        if case.kind.accepted() {
            check_accepted_body(spec, op, typed, &format!("case {field} = {}", case.value), &case.body, findings);
            continue;
        }
        // The converter and the validator must refuse what the spec refuses.
        if let Some(Ok(())) = schema_result {
            findings.push(format!("{at}: the JSON Schema accepts {} ({:?})", case.value, case.kind));
        }
        match (&case.kind, typed_result) {
            (ConstraintKind::Required, Ok(_)) => {
                findings.push(format!("{at} is required by the spec, but the generated type accepts a body without it"));
            }
            (ConstraintKind::Required, Err(e)) => {
                if !e.contains(&format!("`{field}`")) {
                    findings.push(format!("{at} is required; the error does not name it: {e}"));
                }
            }
            (ConstraintKind::NotInEnum { allowed, component }, result) => {
                let deser_error = match result {
                    Ok(_) => {
                        findings.push(format!(
                            "{at}: {} is not one of the spec's values {allowed:?}, but the generated type accepts it",
                            case.value
                        ));
                        continue;
                    }
                    Err(e) => e,
                };
                if !names_field(&deser_error, field) {
                    findings.push(format!("{at}: the error for {} does not name the field: {deser_error}", case.value));
                }
                let parse_error = component.as_deref().and_then(enum_parser).and_then(|p| case.value.as_str().and_then(|s| p(s).err()));
                let lists_all = |text: &str| allowed.iter().filter(|v| !v.is_null()).all(|v| text.contains(&plain(v)));
                if !lists_all(&deser_error) && !parse_error.as_deref().is_some_and(lists_all) {
                    findings.push(format!(
                        "{at}: neither the deserialization error ({deser_error}) nor the FromStr error ({parse_error:?}) lists the allowed values {allowed:?}"
                    ));
                }
            }
            (ConstraintKind::AboveMaximum(_) | ConstraintKind::BelowMinimum(_) | ConstraintKind::TooFewItems(_), result) => match result {
                Err(e) => findings
                    .push(format!("{at}: {} should deserialize and be refused by validate(), but deserialization failed: {e}", case.value)),
                Ok(Ok(())) => findings.push(format!(
                    "{at}: {} is outside the spec's bounds ({:?}), but the generated client does not refuse it",
                    case.value, case.kind
                )),
                Ok(Err(refused)) => {
                    if !refused.0.iter().any(|e| e.field == *field) {
                        findings.push(format!("{at}: {} is refused, but the error does not name field {field}: {refused}", case.value));
                    }
                }
            },
            (ConstraintKind::WrongType { expected }, result) => match result {
                Ok(_) => findings.push(format!("{at}: {} is not of type {expected}, but the generated type accepts it", case.value)),
                Err(e) => {
                    if !names_field(&e, field) {
                        findings.push(format!("{at}: the error for {} does not name the field: {e}", case.value));
                    }
                }
            },
            (kind, _) => findings.push(format!("{at}: no check for {kind:?}")),
        }
    }
}

/// A body the spec accepts must deserialize, survive the round trip unchanged, stay valid
/// and pass the client's own bounds.
fn check_accepted_body(spec: &Spec, op: &Operation, typed: &TypedEndpoint, label: &str, body: &Value, findings: &mut Vec<String>) {
    let id = &op.id;
    if let Some(schema) = &op.request_body
        && let Err(e) = spec.check(schema, body)
    {
        findings.push(format!("operation {id}, {label}: the derived body is not valid itself: {}", e.join("; ")));
        return;
    }
    let sent = match (typed.roundtrip)(body) {
        Ok(sent) => sent,
        Err(e) => {
            findings.push(format!("operation {id}, {label}: the generated type {} refuses it: {e}", typed.input_type));
            return;
        }
    };
    if let Some(d) = json_difference(body, &sent) {
        findings.push(format!("operation {id}, {label}: the generated type changes it: {d}"));
    }
    if let Some(schema) = &op.request_body
        && let Err(e) = spec.check(schema, &sent)
    {
        findings.push(format!("operation {id}, {label}: what the client would send is not valid: {}", e.join("; ")));
    }
    if let Ok(Err(refused)) = (typed.validate)(body) {
        let fields: Vec<&str> = refused.0.iter().map(|e| e.field.as_str()).collect();
        findings.push(format!(
            "operation {id}, {label}: field {}: the spec allows it, but the generated client refuses it: {refused}",
            fields.join(", ")
        ));
    }
}

/// Minimal and maximal samples of each response schema (and of `x-falq-output`)
/// round-trip through the generated type unchanged.
fn check_responses(spec: &Spec, op: &Operation, findings: &mut Vec<String>) {
    let mut schemas: Vec<(String, Value)> = op
        .response_schemas()
        .into_iter()
        .filter(|(_, media, _)| media == "application/json")
        .map(|(status, _, schema)| (format!("response {status}"), schema))
        .collect();
    if let Some(output) = &op.output {
        schemas.push(("result (x-falq-output)".into(), output.clone()));
    }
    for (label, schema) in schemas {
        let Some(component) = component_of(&schema) else {
            findings.push(format!("operation {}, {label}: the schema is not a named component, so no generated type is known", op.id));
            continue;
        };
        let Some(roundtrip) = component_roundtrip(component) else {
            findings.push(format!("operation {}, {label}: component {component} has no generated type in the conformance table", op.id));
            continue;
        };
        findings.extend(field_differences(spec, component).into_iter().map(|d| format!("operation {}, {label} ({component}): {d}", op.id)));
        for fill in [Fill::Minimal, Fill::Maximal] {
            let value = sample(spec, &schema, fill, "");
            match roundtrip(&value) {
                Err(e) => {
                    findings.push(format!("operation {}, {label} ({component}, {fill:?}): the generated type refuses {value}: {e}", op.id))
                }
                Ok(back) => {
                    if let Some(d) = json_difference(&value, &back) {
                        findings.push(format!("operation {}, {label} ({component}, {fill:?}): the generated type changes it: {d}", op.id));
                    }
                }
            }
        }
    }
}

/// The fields the spec gives a component and the fields of its generated struct, compared:
/// `field text is in the spec but not in the generated type FluxProKontextMaxInput`.
pub fn field_differences(spec: &Spec, component: &str) -> Vec<String> {
    let (Some(ty), Some(schema)) = (component_type(component), spec.component(component)) else { return vec![] };
    let Some(fields) = (ty.fields)() else { return vec![] };
    let props: Vec<String> = properties_of(spec.resolve(schema)).into_iter().map(|(name, _)| name).collect();
    let mut out = vec![];
    for p in props.iter().filter(|p| !fields.contains(&p.as_str())) {
        out.push(format!("field {p} is in the spec but not in the generated type {component}"));
    }
    for f in fields.iter().filter(|f| !props.iter().any(|p| p == *f)) {
        out.push(format!("field {f} is in the generated type {component} but not in the spec"));
    }
    out
}

/// Whether a deserialization error (`num_images: invalid type ...`) names the field, or
/// the untagged union holding it (`image_size` for `image_size.width`: serde cannot see
/// inside an untagged enum).
pub fn names_field(error: &str, field: &str) -> bool {
    let mut prefix = String::new();
    for part in field.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
        if error.starts_with(&format!("{prefix}:")) || error.contains(&format!("`{prefix}`")) {
            return true;
        }
    }
    false
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
