//! Constraints: for every required field, enum, bound and type of every input in the spec
//! (derived from `openapi.json`, not listed by hand), the generated client refuses a value
//! outside it before sending, naming the field, and the capture server sees nothing; values
//! at the bounds and every enum value are sent. Parameters of the queue calls too.

use serde_json::Value;
use tests::conformance::drift::names_field;
use tests::conformance::samples::{ConstraintKind, constraints, required_of};
use tests::conformance::typed::{enum_parser, submit_with, typed_endpoint};
use tests::conformance::{Operation, Spec, json_difference};
use tests::{CaptureServer, fixture};

fn submit_operations() -> Vec<Operation> {
    Spec::current().operations().into_iter().filter(|o| o.endpoint_id.is_some()).collect()
}

fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[tokio::test]
async fn every_constraint_of_every_input_is_enforced_before_sending() {
    let spec = Spec::current();
    let server = CaptureServer::start(|_| (200, fixture("seeds/submit.json"))).await;
    let client = falq_api::client_for(&server.base_url, reqwest::Client::new(), tests::fast_hooks());
    let mut kinds_seen = std::collections::BTreeSet::new();
    for op in submit_operations() {
        let typed = typed_endpoint(&op.id).unwrap_or_else(|| panic!("operation {} has no conformance case", op.id));
        let cases = constraints(spec, &op);
        assert!(!cases.is_empty(), "operation {}: no constraint cases", op.id);
        for case in cases {
            let field = case.field.as_str();
            let what = format!("operation {}: field {field} = {} ({:?})", op.id, case.value, case.kind);
            kinds_seen.insert(format!("{:?}", case.kind).split([' ', '(']).next().unwrap_or_default().to_string());
            // The JSON Schema validator and the case agree on what the spec allows.
            let schema = op.request_body.as_ref().expect("a body schema");
            assert_eq!(spec.check(schema, &case.body).is_ok(), case.kind.accepted(), "{what}: the JSON Schema verdict");
            let before = server.received().len();
            let sent = submit_with(&client, &op.id, &case.body).await;
            if case.kind.accepted() {
                sent.unwrap_or_else(|e| panic!("{what}: {e}")).unwrap_or_else(|e| panic!("{what}: the client refused it: {e}"));
                let received = server.received();
                assert_eq!(received.len(), before + 1, "{what}: sent once");
                let body = received[before].json();
                assert_eq!(json_difference(&case.body, &body), None, "{what}: sent as built");
                continue;
            }
            match &case.kind {
                ConstraintKind::Required => {
                    let e = sent.expect_err("a body without a required field is no input");
                    assert!(e.contains(&format!("operation {}", op.id)) && e.contains(&format!("missing field `{field}`")), "{what}: {e}");
                }
                ConstraintKind::NotInEnum { allowed, component } => {
                    let e = sent.expect_err("a value outside the enum is no input");
                    assert!(e.starts_with(&format!("operation {}", op.id)), "{what}: {e}");
                    let detail = e.split_once("body is not its input: ").map(|(_, d)| d).unwrap_or(&e);
                    assert!(names_field(detail, field), "{what}: the error names the field: {e}");
                    // The deserialization error lists the values, or, behind an untagged
                    // union (image_size), the enum's FromStr does.
                    let from_str = component.as_deref().and_then(enum_parser).and_then(|parse| parse(&plain(&case.value)).err());
                    let lists = |text: &str| allowed.iter().all(|v| text.contains(&plain(v)));
                    assert!(
                        lists(&e) || from_str.as_deref().is_some_and(lists),
                        "{what}: allowed values {allowed:?} named by neither {e:?} nor {from_str:?}"
                    );
                }
                ConstraintKind::AboveMaximum(_) | ConstraintKind::BelowMinimum(_) | ConstraintKind::TooFewItems(_) => {
                    let refused_now = (typed.validate)(&case.body).expect("well-typed").expect_err("out of range");
                    assert!(refused_now.0.iter().any(|e| e.field == field), "{what}: names the field: {refused_now}");
                    let message = refused_now.to_string();
                    assert!(
                        message.contains("minimum") || message.contains("maximum") || message.contains("less than"),
                        "{what}: says the bound: {message}"
                    );
                    let refused = sent.expect("well-typed").expect_err("refused before sending");
                    assert!(refused.contains(&message), "{what}: the client's error {refused:?} carries {message:?}");
                }
                ConstraintKind::WrongType { .. } => {
                    let e = sent.expect_err("a value of another type is no input");
                    let detail = e.split_once("body is not its input: ").map(|(_, d)| d).unwrap_or(&e);
                    assert!(
                        names_field(detail, field) && (detail.contains("invalid type") || detail.contains("did not match any variant")),
                        "{what}: {e}"
                    );
                }
                other => panic!("{what}: no check for {other:?}"),
            }
            assert_eq!(server.received().len(), before, "{what}: nothing reached the server");
        }
    }
    let expected = ["AboveMaximum", "AtBound", "AtMinItems", "BelowMinimum", "InEnum", "NotInEnum", "Required", "TooFewItems", "WrongType"];
    assert_eq!(kinds_seen.into_iter().collect::<Vec<_>>(), expected, "every kind of constraint is exercised");
}

macro_rules! empty_builders {
    ($($marker:ident => $method:ident),* $(,)?) => {
        /// Per endpoint of the catalogue: its operation id, the typed builder's answer to an
        /// input with nothing set, and the generated client's answer to sending it.
        async fn empty_builder_answers(client: &falq_api::Client) -> Vec<(&'static str, Result<(), String>, Result<(), String>)> {
            let mut out = Vec::new();
            $(
                {
                    type Input = <falq_api::endpoints::$marker as falq_api::Endpoint>::Input;
                    let builder = Input::builder();
                    let direct = Input::try_from(builder.clone()).map(drop).map_err(|e| e.to_string());
                    let sent = client.$method().body(builder).send().await.map(drop).map_err(|e| e.to_string());
                    out.push((<falq_api::endpoints::$marker as falq_api::Endpoint>::info().operation_id, direct, sent));
                }
            )*
            out
        }
    };
}

falq_api::for_each_endpoint!(empty_builders);

#[tokio::test]
async fn the_typed_builders_refuse_a_missing_required_field_naming_it() {
    let spec = Spec::current();
    let server = CaptureServer::start(|_| (200, fixture("seeds/submit.json"))).await;
    let client = falq_api::client_for(&server.base_url, reqwest::Client::new(), tests::fast_hooks());
    let answers = empty_builder_answers(&client).await;
    assert_eq!(answers.len(), falq_api::ENDPOINTS.len());
    let mut refused = 0;
    for (op_id, direct, sent) in answers {
        let op = spec.operation(op_id).expect("operation");
        let required = required_of(spec.resolve(op.request_body.as_ref().expect("body")));
        if required.is_empty() {
            // An endpoint that needs nothing (its fields read from an example) takes an empty input.
            assert_eq!(direct, Ok(()), "operation {op_id}: nothing is required");
            continue;
        }
        refused += 1;
        let err = direct.expect_err("an empty input is refused");
        let field = err.strip_prefix("no value supplied for ").unwrap_or_else(|| panic!("operation {op_id}: {err}"));
        assert!(required.iter().any(|r| r == field), "operation {op_id}: {field} is not one of the required {required:?}");
        let sent = sent.expect_err("refused before sending");
        assert!(sent.contains(&err), "operation {op_id}: {sent}");
    }
    assert!(refused > 0, "the relay's endpoints need something");
    let complete = falq_api::ENDPOINTS.len() - refused;
    assert_eq!(server.received().len(), complete, "nothing incomplete reached the server");
}

/// Calls a queue operation, leaving out one path parameter or giving `logs` a value.
async fn queue_call(client: &falq_api::Client, operation_id: &str, omit: &str, logs: Option<i64>) -> Result<(), String> {
    macro_rules! call {
        ($builder:expr $(, $logs:ident)?) => {{
            let mut b = $builder;
            if omit != "owner" {
                b = b.owner("fal-ai");
            }
            if omit != "app" {
                b = b.app("flux-1");
            }
            if omit != "request_id" {
                b = b.request_id("r1");
            }
            $(
                if let Some(value) = logs {
                    b = b.$logs(value);
                }
            )?
            b.send().await.map(drop).map_err(|e| e.to_string())
        }};
    }
    match operation_id {
        "queue_status" => call!(client.queue_status(), logs),
        "queue_status_stream" => call!(client.queue_status_stream(), logs),
        "queue_result" => call!(client.queue_result()),
        "queue_cancel" => call!(client.queue_cancel()),
        other => Err(format!("operation {other} has no conformance case")),
    }
}

#[tokio::test]
async fn queue_call_parameters_are_checked_before_sending() {
    let spec = Spec::current();
    let server = CaptureServer::start(|_| (200, r#"{"status":"COMPLETED"}"#.to_string())).await;
    let client = falq_api::client_for(&server.base_url, reqwest::Client::new(), tests::fast_hooks());
    let mut refused = 0;
    for op in spec.operations().into_iter().filter(|o| o.endpoint_id.is_none()) {
        for p in &op.parameters {
            if p.location == "path" && p.required {
                let e = queue_call(&client, &op.id, &p.name, None).await.expect_err("a missing path parameter");
                assert!(e.contains(&format!("{} was not initialized", p.name)), "operation {}: {e}", op.id);
                refused += 1;
            }
            if p.location == "query" {
                let allowed: Vec<i64> =
                    p.schema.get("enum").and_then(Value::as_array).expect("logs is an enum").iter().filter_map(Value::as_i64).collect();
                let outside = allowed.iter().max().expect("values") + 1;
                let e = queue_call(&client, &op.id, "", Some(outside)).await.expect_err("a value outside the enum");
                assert!(e.contains(&format!("for {} failed", p.name)), "operation {}: {e}", op.id);
                refused += 1;
                for value in allowed {
                    let before = server.received().len();
                    let _ = queue_call(&client, &op.id, "", Some(value)).await;
                    let received = server.received();
                    assert_eq!(received.len(), before + 1, "operation {}: {}={value} is sent", op.id, p.name);
                    assert!(received[before].target.ends_with(&format!("?{}={value}", p.name)), "{}", received[before].target);
                    spec.validate_request(&op.id, &received[before].method, &received[before].target, None)
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
    assert_eq!(refused, 4 * 3 + 2, "three path parameters per queue call, logs on two");
    assert_eq!(server.received().len(), 4, "only the valid logs values reached the server");
}

#[test]
fn every_enum_of_the_spec_parses_its_values_and_names_them_on_error() {
    let spec = Spec::current();
    let mut enums = Vec::new();
    for name in spec.component_names() {
        let schema = spec.component(&name).expect("component");
        let Some(values) = schema.get("enum").and_then(Value::as_array) else { continue };
        let parse = enum_parser(&name).unwrap_or_else(|| panic!("enum {name} has no FromStr case in the conformance table"));
        let roundtrip = tests::conformance::typed::component_roundtrip(&name).expect("a generated type");
        for v in values {
            parse(&plain(v)).unwrap_or_else(|e| panic!("enum {name}: {v} is the spec's: {e}"));
            assert_eq!(roundtrip(v).as_ref(), Ok(v), "enum {name}: {v} keeps its wire value");
        }
        // Outside the enum: FromStr or deserialization names every allowed value.
        let from_str = parse("nope").expect_err("not a value");
        let deserialize = roundtrip(&Value::String("nope".into())).expect_err("not a value");
        let lists = |text: &str| values.iter().all(|v| text.contains(&plain(v)));
        assert!(lists(&from_str) || lists(&deserialize), "enum {name}: neither {from_str:?} nor {deserialize:?} lists {values:?}");
        enums.push(name);
    }
    // Every enum of the spec was checked, ours among them, and regen emitted each one.
    let emitted: Vec<&str> = tests::conformance::typed::ENUM_PARSERS.iter().map(|(n, _)| *n).collect();
    assert_eq!(enums.len(), emitted.len(), "checked {enums:?}, emitted {emitted:?}");
    for ours in
        ["QueueStatusKind", "LogLevel", "CancelStatus", "ImageSizePreset", "OutputFormat", "Acceleration", "AspectRatio", "SafetyTolerance"]
    {
        assert!(enums.iter().any(|e| e == ours), "{ours} is missing from {enums:?}");
    }
}
