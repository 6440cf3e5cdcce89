//! Responses: the seeds' answers conform to the responses of the right operations (submit
//! → QueueStatus, result → the endpoint's x-falq-output), the validation helpers name the
//! operation and the field, and the generated client reads every response the spec declares.

use std::sync::{Arc, Mutex};

use falq_api::{Error, ResponseValue};
use serde::Serialize;
use serde_json::{Value, json};
use tests::conformance::samples::{Fill, request_samples, sample};
use tests::conformance::typed::submit_answer;
use tests::conformance::{Operation, Spec, json_difference, validate_response, validate_result, validate_status_event};
use tests::{CaptureServer, Reply, fixture_json};

fn submit_operations() -> Vec<Operation> {
    Spec::current().operations().into_iter().filter(|o| o.endpoint_id.is_some()).collect()
}

#[test]
fn the_seed_submit_answers_conform_to_every_submit_and_status_response() {
    for seed in ["seeds/submit.json", "seeds/submit-relay.json"] {
        let answer = fixture_json(seed);
        for op in submit_operations() {
            validate_response(&op.id, 200, &answer).unwrap_or_else(|e| panic!("{seed}: {e}"));
        }
        validate_response("queue_status", 202, &answer).unwrap_or_else(|e| panic!("{seed}: {e}"));
        validate_response("queue_status", 200, &answer).unwrap_or_else(|e| panic!("{seed}: {e}"));
        validate_status_event(&answer).unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
}

#[test]
fn the_seed_results_conform_to_the_outputs_of_their_endpoints() {
    let image = fixture_json("seeds/result-image.json");
    let video = fixture_json("seeds/result-video.json");
    assert_eq!(submit_operations().len(), falq_api::ENDPOINTS.len());
    let files_are = |info: &falq_api::EndpointInfo, pointer: &str, kind: falq_api::FileKind| matches!(info.output_files, [only] if only.pointer == pointer && only.kind == kind);
    let (mut images, mut videos) = (0, 0);
    for op in submit_operations() {
        let info = falq_api::ENDPOINTS.iter().find(|e| e.operation_id == op.id).expect("in the catalogue");
        for (seed, value) in [("result-image", &image), ("result-video", &video)] {
            // The JSON Schema and the generated type agree on what is this endpoint's output.
            let by_schema = validate_result(&op.id, 200, value);
            let by_type = (info.check_output)(value);
            assert_eq!(by_schema.is_ok(), by_type.is_ok(), "{}: {seed}: schema {by_schema:?}, type {by_type:?}", op.id);
        }
        // What the catalogue says each endpoint answers decides which seed is its output:
        // a list of images takes the relay's image result, one video the video result.
        if files_are(info, "/images/*", falq_api::FileKind::Image) {
            validate_result(&op.id, 200, &image).unwrap_or_else(|e| panic!("{e}"));
            let err = validate_result(&op.id, 200, &video).unwrap_err();
            // Whatever else the output requires, the video result lacks its images.
            assert!(
                err.starts_with(&format!("operation {}, result (x-falq-output): ", op.id))
                    && err.contains("/: \"images\" is a required property"),
                "{err}"
            );
            images += 1;
        }
        if files_are(info, "/video", falq_api::FileKind::Video) {
            validate_result(&op.id, 200, &video).unwrap_or_else(|e| panic!("{e}"));
            assert!(validate_result(&op.id, 200, &image).is_err(), "{}: images are no video", op.id);
            videos += 1;
        }
    }
    assert!(images > 0 && videos > 0, "the relay's FLUX and video endpoints are in the catalogue: {images} image, {videos} video");
    // To the result call itself, any output is a JSON object.
    validate_response("queue_result", 200, &image).unwrap_or_else(|e| panic!("{e}"));
    validate_response("queue_result", 200, &video).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_response_helpers_name_the_operation_and_the_field() {
    let responses: &[(&str, u16, Value, Result<(), &str>)] = &[
        ("queue_status", 202, json!({"status": "IN_QUEUE", "queue_position": 3}), Ok(())),
        ("queue_status", 200, json!({"status": "COMPLETED", "metrics": null, "logs": null, "error": null, "queue_position": null}), Ok(())),
        ("queue_status", 200, json!({"status": "COMPLETED", "metrics": {"inference_time": 1.5}, "extra": "a relay's own field"}), Ok(())),
        ("queue_status", 202, json!({"status": "DONE"}), Err("operation queue_status, response 202: /status: \"DONE\" is not one of")),
        (
            "queue_status",
            202,
            json!({"request_id": "r"}),
            Err("operation queue_status, response 202: /: \"status\" is a required property"),
        ),
        ("queue_status", 202, json!({"status": "IN_QUEUE", "queue_position": 1.5}), Err("/queue_position: 1.5 is not of types")),
        ("queue_status", 202, json!({"status": "IN_QUEUE", "metrics": {"inference_time": "fast"}}), Err("/metrics")),
        ("queue_status", 404, json!({"detail": "Request not found"}), Ok(())),
        ("queue_status", 500, json!({"detail": "boom"}), Err("operation queue_status has no response 500 in the spec")),
        ("queue_cancel", 202, json!({"status": "CANCELLATION_REQUESTED"}), Ok(())),
        ("queue_cancel", 400, json!({"status": "ALREADY_COMPLETED"}), Ok(())),
        ("queue_cancel", 404, json!({"status": "NOT_FOUND"}), Ok(())),
        (
            "queue_cancel",
            202,
            json!({"status": "CANCELLED"}),
            Err("operation queue_cancel, response 202: /status: \"CANCELLED\" is not one of"),
        ),
        (
            "queue_result",
            422,
            json!({"detail": [{"loc": ["body", "num_images"], "msg": "ensure this value is less than or equal to 4", "type": "value_error.number.not_le", "ctx": {"limit_value": 4}}]}),
            Ok(()),
        ),
        (
            "queue_result",
            422,
            json!({"detail": [{"loc": ["body", 1.5], "msg": "m", "type": "t"}]}),
            Err("operation queue_result, response 422: /detail"),
        ),
        ("queue_result", 500, json!({"detail": "Request timed out", "error_type": "request_timeout"}), Ok(())),
        ("queue_result", 400, json!({"detail": "not done", "error_type": 3}), Err("/error_type: 3 is not of types")),
        ("flux_1_dev_redux", 200, fixture_json("seeds/submit.json"), Ok(())),
        ("flux_1_dev_redux", 202, fixture_json("seeds/submit.json"), Err("operation flux_1_dev_redux has no response 202 in the spec")),
        ("queue_status_stream", 200, json!("data: {\"status\":\"IN_QUEUE\"}\n\n"), Ok(())),
        ("no_such_operation", 200, json!({}), Err("operation no_such_operation is not in the spec")),
    ];
    for (op, status, body, expected) in responses {
        check(&format!("{op} {status} {body}"), validate_response(op, *status, body), *expected);
    }
    let results: &[(&str, u16, Value, Result<(), &str>)] = &[
        ("flux_pro_kontext", 200, json!({"images": [{"url": "https://v3.fal.media/x.png"}], "seed": 196619188014358660u64}), Ok(())),
        (
            "flux_1_dev_redux",
            200,
            json!({"images": [{"width": 1024}]}),
            Err("operation flux_1_dev_redux, result (x-falq-output): /images/0: \"url\" is a required property"),
        ),
        ("flux_1_dev_redux", 200, json!({"images": [], "seed": 1.5}), Err("/seed: 1.5 is not of types")),
        ("flux_1_dev_redux", 200, json!({"images": [], "timings": {"inference": "slow"}}), Err("/timings/inference")),
        ("flux_1_dev_redux", 404, json!({"detail": "Request not found"}), Ok(())),
        ("flux_1_dev_redux", 504, json!({"detail": "Request timed out", "error_type": "request_timeout"}), Ok(())),
        ("flux_1_dev_redux", 504, json!({"detail": 7}), Err("/detail")),
        ("flux_1_dev_redux", 418, json!({"detail": "teapot"}), Err("operation queue_result has no response 418 in the spec")),
        ("queue_status", 200, json!({"images": []}), Err("operation queue_status has no x-falq-output")),
    ];
    for (op, status, body, expected) in results {
        check(&format!("result of {op} {status} {body}"), validate_result(op, *status, body), *expected);
    }
    let event = json!({"status": "IN_PROGRESS", "logs": [{"message": "m", "level": "LOUD"}]});
    check(
        "event",
        validate_status_event(&event),
        Err("operation queue_status_stream, event: QueueStatus: /logs/0/level: \"LOUD\" is not one of"),
    );
}

fn check(what: &str, got: Result<(), String>, expected: Result<(), &str>) {
    match (got, expected) {
        (Ok(()), Ok(())) => {}
        (Err(e), Err(want)) => assert!(e.contains(want), "{what}: {e:?} should contain {want:?}"),
        (got, want) => panic!("{what}: got {got:?}, expected {want:?}"),
    }
}

/// A call's outcome as the generated client typed it: the status and the typed body as
/// JSON, whether the spec lists the status as a success or an error.
fn outcome<T: Serialize, E: Serialize + std::fmt::Debug>(result: Result<ResponseValue<T>, Error<E>>) -> Result<(u16, Value), String> {
    match result {
        Ok(v) => Ok((v.status().as_u16(), serde_json::to_value(v.into_inner()).expect("serialize"))),
        Err(Error::ErrorResponse(v)) => Ok((v.status().as_u16(), serde_json::to_value(v.into_inner()).expect("serialize"))),
        Err(other) => Err(other.to_string()),
    }
}

/// Calls an operation with the generated client (submits with the minimal body).
async fn call(client: &falq_api::Client, op: &Operation) -> Result<(u16, Value), String> {
    if op.endpoint_id.is_some() {
        let body = request_samples(Spec::current(), op).into_iter().next().expect("a minimal body").1;
        return submit_answer(client, &op.id, &body).await;
    }
    match op.id.as_str() {
        "queue_status" => outcome(client.queue_status().owner("fal-ai").app("flux-1").request_id("r1").send().await),
        "queue_result" => outcome(client.queue_result().owner("fal-ai").app("flux-1").request_id("r1").send().await),
        "queue_cancel" => outcome(client.queue_cancel().owner("fal-ai").app("flux-1").request_id("r1").send().await),
        other => Err(format!("operation {other} has no conformance case")),
    }
}

#[tokio::test]
async fn the_generated_client_reads_every_json_response_the_spec_declares() {
    let spec = Spec::current();
    let reply: Arc<Mutex<Reply>> = Arc::new(Mutex::new(Reply::json(500, "{}")));
    let shared = reply.clone();
    let server = CaptureServer::start_with(move |_| shared.lock().expect("lock").clone()).await;
    let client = falq_api::client_for(&server.base_url, reqwest::Client::new(), tests::fast_hooks());
    let mut cases = 0;
    for op in spec.operations() {
        for (status, media, schema) in op.response_schemas() {
            if media != "application/json" {
                assert_eq!(op.id, "queue_status_stream", "only the stream answers something else");
                continue;
            }
            let code: u16 = status.parse().unwrap_or_else(|_| panic!("operation {}: response {status} is a plain status", op.id));
            for fill in [Fill::Minimal, Fill::Maximal] {
                let body = sample(spec, &schema, fill, "");
                validate_response(&op.id, code, &body).unwrap_or_else(|e| panic!("{e}"));
                *reply.lock().expect("lock") = Reply::json(code, body.to_string());
                let what = format!("operation {}, response {status} ({fill:?})", op.id);
                let (got_status, typed) = call(&client, &op).await.unwrap_or_else(|e| panic!("{what}: the client does not read it: {e}"));
                assert_eq!(got_status, code, "{what}");
                if let Some(d) = json_difference(&body, &typed) {
                    panic!("{what}: the client's typed answer differs: {d}");
                }
                cases += 1;
            }
        }
    }
    // Each submit × (1 + 7 errors), status 4 + 4 infrastructure errors, result 6 + 4, cancel 3 statuses; two fills each.
    assert_eq!(cases, 2 * (falq_api::ENDPOINTS.len() * 8 + (4 + 4) + (6 + 4) + 3));
}

/// The transport tells a result from its text (`check_output_json`, no `Value` built) where
/// the rest of falq reads a value (`check_output`): for every endpoint, the two agree on
/// every endpoint's outputs (both fills), the seeds' results, and what is no output at all.
#[test]
fn an_output_is_told_from_its_text_as_from_its_value() {
    let outputs: Vec<(String, Value)> = falq_api::ENDPOINTS
        .iter()
        .flat_map(|info| {
            let schema: Value = serde_json::from_str(info.output_json_schema).expect("the catalogue's output schema is JSON");
            [Fill::Minimal, Fill::Maximal].map(|fill| (format!("{} {fill:?}", info.id), falq_api::sample(&schema, fill, "")))
        })
        .chain(["seeds/result-image.json", "seeds/result-video.json"].map(|s| (s.to_string(), fixture_json(s))))
        .chain(
            [json!({}), json!([]), json!("text"), json!(null), json!({"detail": "failed"}), json!({"status": "IN_PROGRESS"})]
                .map(|v| (v.to_string(), v)),
        )
        .collect();
    let (mut outputs_seen, mut others_seen) = (0, 0);
    for info in falq_api::ENDPOINTS {
        for (what, value) in &outputs {
            let by_value = (info.check_output)(value);
            let by_text = (info.check_output_json)(&serde_json::to_vec(value).expect("serializes"));
            assert_eq!(by_text.is_ok(), by_value.is_ok(), "{}: {what}: text {by_text:?}, value {by_value:?}", info.id);
            if by_value.is_ok() { outputs_seen += 1 } else { others_seen += 1 }
        }
    }
    // Each endpoint takes its own samples at least; a string and null are no output of any.
    assert!(outputs_seen >= 2 * falq_api::ENDPOINTS.len(), "{outputs_seen}");
    assert!(others_seen >= 2 * falq_api::ENDPOINTS.len(), "{others_seen}");
}
