//! Drift detection: the generated code agrees with the spec it was generated from, and a
//! mutated copy of the spec (a renamed field, a changed bound, enum, type, output or
//! required list, a new or removed operation) is reported naming the operation and field.

use serde_json::{Value, json};
use tests::conformance::Spec;
use tests::conformance::drift::{check_operation, check_spec, coverage_gaps};

/// The findings of the suite's checking function on a mutated copy of the current spec.
fn findings_after(mutate: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut document = Spec::current_document();
    mutate(&mut document);
    check_spec(&Spec::from_document(document))
}

/// Asserts one finding holds every needle (the operation, the field, the reason).
fn check_reported(findings: &[String], needles: &[&str]) {
    assert!(
        findings.iter().any(|f| needles.iter().all(|n| f.contains(n))),
        "no finding names all of {needles:?}; findings:\n{}",
        findings.join("\n")
    );
}

fn schema<'a>(document: &'a mut Value, component: &str) -> &'a mut Value {
    document.pointer_mut(&format!("/components/schemas/{component}")).unwrap_or_else(|| panic!("component {component}"))
}

#[test]
fn the_generated_code_conforms_to_the_spec() {
    let findings = check_spec(Spec::current());
    assert!(findings.is_empty(), "{} findings:\n{}", findings.len(), findings.join("\n"));
    assert!(coverage_gaps(Spec::current()).is_empty());
}

#[test]
fn a_renamed_input_field_is_reported_with_its_operation() {
    let findings = findings_after(|d| {
        let input = schema(d, "FluxProKontextMaxInput");
        let prompt = input["properties"].as_object_mut().unwrap().remove("prompt").unwrap();
        input["properties"]["text"] = prompt;
        input["required"] = json!(["text", "image_url"]);
    });
    check_reported(
        &findings,
        &["operation flux_pro_kontext_max: field text is in the spec but not in the generated type FluxProKontextMaxInput"],
    );
    check_reported(
        &findings,
        &["operation flux_pro_kontext_max: field prompt is in the generated type FluxProKontextMaxInput but not in the spec"],
    );
    let per_operation: Vec<&String> = findings.iter().filter(|f| f.starts_with("operation ")).collect();
    assert_eq!(per_operation.len(), 2, "only the changed operation drifts, once per field: {findings:#?}");
}

#[test]
fn a_raised_maximum_is_reported_with_its_operation_and_field() {
    let findings = findings_after(|d| schema(d, "Flux1DevReduxInput")["properties"]["num_images"]["maximum"] = json!(8));
    check_reported(
        &findings,
        &["operation flux_1_dev_redux", "field num_images", "the spec allows it, but the generated client refuses it"],
    );
    check_reported(&findings, &["operation flux_1_dev_redux, case num_images = 8: field num_images"]);
}

#[test]
fn a_lowered_maximum_is_reported_with_its_operation_and_field() {
    let findings = findings_after(|d| schema(d, "FluxProKontextInput")["properties"]["guidance_scale"]["maximum"] = json!(10));
    check_reported(&findings, &["operation flux_pro_kontext: field guidance_scale", "outside the spec's bounds", "does not refuse it"]);
}

#[test]
fn an_overlay_making_a_field_required_is_reported() {
    let findings = findings_after(|d| schema(d, "Flux1SchnellReduxInput")["required"] = json!(["image_url", "seed"]));
    check_reported(
        &findings,
        &["operation flux_1_schnell_redux: field seed is required by the spec, but the generated type accepts a body without it"],
    );
}

#[test]
fn a_new_enum_value_is_reported_for_every_operation_using_it() {
    let findings = findings_after(|d| schema(d, "OutputFormat")["enum"].as_array_mut().unwrap().push(json!("webp")));
    for op in [
        "flux_1_dev_redux",
        "flux_1_schnell_redux",
        "flux_pro_kontext_max",
        "flux_pro_kontext_multi",
        "flux_pro_kontext_text_to_image",
        "flux_pro_kontext",
    ] {
        check_reported(&findings, &[&format!("operation {op}"), "output_format", "webp", "unknown variant"]);
    }
}

#[test]
fn a_changed_field_type_is_reported() {
    let findings = findings_after(|d| schema(d, "FluxProKontextMultiInput")["properties"]["num_images"]["type"] = json!("string"));
    check_reported(&findings, &["operation flux_pro_kontext_multi", "num_images", "invalid type"]);
}

#[test]
fn a_renamed_response_field_is_reported_for_the_operations_answering_it() {
    let findings = findings_after(|d| {
        let status = schema(d, "QueueStatus");
        let url = status["properties"].as_object_mut().unwrap().remove("status_url").unwrap();
        status["properties"]["status_link"] = url;
    });
    check_reported(
        &findings,
        &["operation queue_status, response 202 (QueueStatus): field status_link is in the spec but not in the generated type QueueStatus"],
    );
    check_reported(&findings, &["operation queue_status, response 202 (QueueStatus, Maximal)", "field status_link", "dropped"]);
    check_reported(
        &findings,
        &[
            "operation flux_1_dev_redux, response 200 (QueueStatus): field status_url is in the generated type QueueStatus but not in the spec",
        ],
    );
}

#[test]
fn a_changed_output_is_reported() {
    let findings = findings_after(|d| {
        *d.pointer_mut("/paths/~1fal-ai~1flux-pro~1kontext/post/x-falq-output").expect("an output") =
            json!({"$ref": "#/components/schemas/FalResult"});
    });
    check_reported(
        &findings,
        &["operation flux_pro_kontext: the spec's x-falq-output is Some(\"FalResult\"), the generated output is FluxImageOutput"],
    );
}

#[test]
fn a_new_operation_without_a_case_is_named() {
    let findings = findings_after(|d| {
        let mut op = d.pointer("/paths/~1fal-ai~1flux-pro~1kontext").unwrap().clone();
        op["post"]["operationId"] = json!("flux_2_dev");
        op["post"]["x-falq-endpoint-id"] = json!("fal-ai/flux-2/dev");
        d["paths"]["/fal-ai/flux-2/dev"] = op;
    });
    check_reported(&findings, &["operation flux_2_dev has no conformance case"]);
    let findings = findings_after(|d| {
        let get = d.pointer("/paths/~1{owner}~1{app}~1requests~1{request_id}/get").unwrap().clone();
        let mut get = get;
        get["operationId"] = json!("queue_logs");
        d["paths"]["/{owner}/{app}/requests/{request_id}/logs"] = json!({"get": get});
    });
    check_reported(&findings, &["operation queue_logs has no conformance case"]);
}

#[test]
fn a_removed_operation_is_named() {
    let findings = findings_after(|d| {
        d["paths"].as_object_mut().unwrap().remove("/{owner}/{app}/requests/{request_id}/cancel");
    });
    check_reported(&findings, &["operation queue_cancel has a conformance case but is not in the spec"]);
}

#[test]
fn a_new_component_without_a_type_is_named() {
    let findings = findings_after(|d| d["components"]["schemas"]["AudioOutput"] = json!({"type": "object"}));
    check_reported(&findings, &["component AudioOutput has no generated type"]);
}

#[test]
fn the_request_and_response_helpers_follow_a_mutated_spec() {
    let mut document = Spec::current_document();
    schema(&mut document, "Flux1DevReduxInput")["properties"]["num_images"]["maximum"] = json!(2);
    schema(&mut document, "QueueStatus")["required"] = json!(["status", "request_id"]);
    let spec = Spec::from_document(document);
    let err = spec
        .validate_request("flux_1_dev_redux", "POST", "/fal-ai/flux-1/dev/redux", Some(&json!({"image_url": "u", "num_images": 3})))
        .unwrap_err();
    assert!(err.starts_with("operation flux_1_dev_redux: request body /num_images: 3 is greater than the maximum of 2"), "{err}");
    let err = spec.validate_response("queue_status", 202, &json!({"status": "IN_QUEUE"})).unwrap_err();
    assert!(err.starts_with("operation queue_status, response 202: /: \"request_id\" is a required property"), "{err}");
    assert_eq!(check_operation(Spec::current(), "no_such_operation"), vec!["operation no_such_operation is not in the spec".to_string()]);
}
