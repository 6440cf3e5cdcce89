//! Requests the generated client sends, for every operation of the spec, captured on
//! 127.0.0.1 and checked against the spec: method, path, query, the client's own
//! `Authorization` header, and the body under a real JSON Schema validator. Bodies are
//! derived from the spec (minimal, maximal, nulls, the spec's examples) and the seeds.

use falq_api::types;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tests::conformance::capture::{KEY, REQUEST_ID, answer, check_captured, check_queue_call, only_new};
use tests::conformance::examples::{ExampleTarget, page_examples};
use tests::conformance::samples::request_samples;
use tests::conformance::typed::submit_with;
use tests::conformance::{Spec, split_target, validate_status_event};
use tests::{CaptureServer, fixture_json};

/// A reqwest client carrying the relay's auth header as a default header, as users build it.
fn http_with_auth() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {KEY}")).expect("header"));
    reqwest::Client::builder().default_headers(headers).build().expect("reqwest client")
}

#[tokio::test]
async fn every_submit_operation_sends_its_spec_derived_bodies_as_the_spec_says() {
    let spec = Spec::current();
    let server = CaptureServer::start_with(answer).await;
    let client = falq_api::client_for(&server.base_url, http_with_auth(), tests::fast_hooks());
    // The relay's pages, and the pages we author in its dialect for models it sells without one.
    let headers = page_examples(spec, &specs_dir()).expect("the pages parse");
    let mut covered = vec![];
    let mut header_examples = 0;
    for op in spec.operations().into_iter().filter(|o| o.endpoint_id.is_some()) {
        let samples = request_samples(spec, &op);
        assert!(samples.len() >= 2, "operation {}: at least minimal and maximal: {samples:?}", op.id);
        for (label, body) in samples {
            let before = server.received().len();
            let answer = match submit_with(&client, &op.id, &body).await {
                Ok(answer) => answer,
                Err(e) => panic!("{e}"),
            };
            let answer = answer.unwrap_or_else(|e| panic!("operation {}, {label} body: the client failed: {e}", op.id));
            assert_eq!(answer.request_id.as_deref(), Some(REQUEST_ID));
            let captured = only_new(&server, before);
            assert_eq!(captured.method, op.method);
            assert_eq!(split_target(&captured.target).0, op.path, "operation {}: the path is the spec's", op.id);
            check_captured(&op.id, &captured, Some(&body));
            // The page's own header examples (`Authorization: Bearer {{API_KEY}}`,
            // `Content-Type: application/json`) describe what arrives.
            for example in headers.iter() {
                let ExampleTarget::HeaderParameter { operation, name } = &example.target else { continue };
                if operation != &op.id {
                    continue;
                }
                let expected = example.value.as_str().expect("a header example is text").replace("{{API_KEY}}", KEY);
                assert_eq!(
                    captured.header(&name.to_ascii_lowercase()),
                    Some(expected.as_str()),
                    "operation {}: header {name} as the page shows it",
                    op.id
                );
                header_examples += 1;
            }
            covered.push(op.id.clone());
        }
    }
    // Every header example a page shows (Authorization, Content-Type) was checked against
    // what arrived, once per body sent.
    let shown = headers.iter().filter(|e| matches!(e.target, ExampleTarget::HeaderParameter { .. })).count();
    assert!(header_examples >= shown, "{header_examples} header checks for {shown} header examples");
    let submits: Vec<String> = spec.operations().into_iter().filter(|o| o.endpoint_id.is_some()).map(|o| o.id).collect();
    assert_eq!(submits.len(), falq_api::ENDPOINTS.len(), "{submits:?}");
    for id in &submits {
        assert!(covered.contains(id), "operation {id} has no conformance case");
    }
}

fn specs_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("specs")
}

#[tokio::test]
async fn the_seed_request_bodies_are_sent_unchanged() {
    let server = CaptureServer::start_with(answer).await;
    let client = falq_api::client_for(&server.base_url, http_with_auth(), tests::fast_hooks());
    for (seed, operation_id) in
        [("seeds/request-flux-1-dev-redux.json", "flux_1_dev_redux"), ("seeds/request-flux-1-schnell-redux.json", "flux_1_schnell_redux")]
    {
        let body = fixture_json(seed);
        let before = server.received().len();
        submit_with(&client, operation_id, &body).await.unwrap_or_else(|e| panic!("{seed}: {e}")).unwrap_or_else(|e| panic!("{seed}: {e}"));
        let captured = only_new(&server, before);
        check_captured(operation_id, &captured, Some(&body));
        assert_eq!(captured.json(), body, "{seed}: sent as written, every field kept");
    }
}

#[tokio::test]
async fn every_queue_operation_sends_what_the_spec_says() {
    let spec = Spec::current();
    let server = CaptureServer::start_with(answer).await;
    let client = falq_api::client_for(&format!("{}/api/", server.base_url), http_with_auth(), tests::fast_hooks());
    // A request id with characters a path must escape.
    let odd_id = "req 1/ä?x";
    for op in spec.operations().into_iter().filter(|o| o.endpoint_id.is_none()) {
        for request_id in [REQUEST_ID, odd_id] {
            let before = server.received().len();
            match op.id.as_str() {
                "queue_status" => {
                    let status =
                        client.queue_status().owner("fal-ai").app("flux-1").request_id(request_id).logs(1i64).send().await.expect("status");
                    assert_eq!(status.status().as_u16(), 202);
                    assert_eq!(status.into_inner().status, types::QueueStatusKind::InProgress);
                    let c = only_new(&server, before);
                    assert!(c.target.ends_with("/status?logs=1"), "{}", c.target);
                    check_queue_call(&op.id, &c, request_id);
                    // The query parameter is optional.
                    client.queue_status().owner("fal-ai").app("flux-1").request_id(request_id).send().await.expect("status without logs");
                    let c = only_new(&server, before + 1);
                    assert!(!c.target.contains('?'), "{}", c.target);
                    check_queue_call(&op.id, &c, request_id);
                }
                "queue_status_stream" => {
                    let stream = client
                        .queue_status_stream()
                        .owner("fal-ai")
                        .app("flux-1")
                        .request_id(request_id)
                        .logs(1i64)
                        .send()
                        .await
                        .expect("stream");
                    let mut bytes = stream.into_inner().into_inner();
                    let mut text = String::new();
                    while let Some(chunk) = bytes.next().await {
                        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
                    }
                    let events: Vec<Value> = text
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(|d| serde_json::from_str(d.trim()).expect("a JSON event"))
                        .collect();
                    assert_eq!(events.len(), 2, "{text}");
                    for e in &events {
                        validate_status_event(e).unwrap_or_else(|e| panic!("{e}"));
                        serde_json::from_value::<types::QueueStatus>(e.clone()).expect("a typed event");
                    }
                    check_queue_call(&op.id, &only_new(&server, before), request_id);
                }
                "queue_result" => {
                    let result = client.queue_result().owner("fal-ai").app("flux-1").request_id(request_id).send().await.expect("result");
                    let result = Value::Object(result.into_inner().0);
                    tests::conformance::validate_result("flux_1_dev_redux", 200, &result).unwrap_or_else(|e| panic!("{e}"));
                    check_queue_call(&op.id, &only_new(&server, before), request_id);
                }
                "queue_cancel" => {
                    let cancel = client.queue_cancel().owner("fal-ai").app("flux-1").request_id(request_id).send().await.expect("cancel");
                    assert_eq!(cancel.into_inner().status, types::CancelStatus::CancellationRequested);
                    check_queue_call(&op.id, &only_new(&server, before), request_id);
                }
                other => panic!("operation {other} has no conformance case"),
            }
        }
    }
}

#[test]
fn the_request_helper_names_the_operation_and_the_field() {
    let spec = Spec::current();
    let check = |op: &str, method: &str, target: &str, body: Option<Value>, expected: Result<(), &str>| {
        let got = spec.validate_request(op, method, target, body.as_ref());
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(want)) => assert!(e.contains(want), "{op} {method} {target}: {e:?} should contain {want:?}"),
            (got, want) => panic!("{op} {method} {target}: got {got:?}, expected {want:?}"),
        }
    };
    let ok_body = json!({"image_url": "https://example.test/a.png"});
    check("flux_1_dev_redux", "POST", "/fal-ai/flux-1/dev/redux", Some(ok_body.clone()), Ok(()));
    check(
        "flux_1_dev_redux",
        "GET",
        "/fal-ai/flux-1/dev/redux",
        Some(ok_body.clone()),
        Err("operation flux_1_dev_redux: is a POST, the request was a GET"),
    );
    check(
        "flux_1_dev_redux",
        "POST",
        "/fal-ai/flux-1/dev",
        Some(ok_body.clone()),
        Err("operation flux_1_dev_redux: path /fal-ai/flux-1/dev does not match"),
    );
    check(
        "flux_1_dev_redux",
        "POST",
        "/fal-ai/flux-1/dev/redux",
        Some(json!({"num_images": 9})),
        Err("request body /: \"image_url\" is a required property"),
    );
    check(
        "flux_1_dev_redux",
        "POST",
        "/fal-ai/flux-1/dev/redux",
        Some(json!({"image_url": "u", "num_images": 9})),
        Err("request body /num_images: 9 is greater than the maximum of 4"),
    );
    check("flux_1_dev_redux", "POST", "/fal-ai/flux-1/dev/redux", Some(json!({"image_url": "u", "seed": null})), Ok(()));
    check(
        "flux_pro_kontext_max",
        "POST",
        "/fal-ai/flux-pro/kontext/max",
        Some(json!({"prompt": "p", "image_url": "u", "seed": null})),
        Err("/seed: null is not of type \"integer\""),
    );
    check(
        "flux_1_dev_redux",
        "POST",
        "/fal-ai/flux-1/dev/redux",
        Some(json!({"image_url": "u", "image_size": {"width": 512}})),
        Err("request body /image_size"),
    );
    // fal's request options are every submit's (regen adds them); anything else is not.
    check("flux_1_dev_redux", "POST", "/fal-ai/flux-1/dev/redux?fal_webhook=x", Some(ok_body.clone()), Ok(()));
    check("flux_1_dev_redux", "POST", "/fal-ai/flux-1/dev/redux?colour=x", Some(ok_body), Err("query parameter colour is not in the spec"));
    check("queue_status", "GET", "/fal-ai/flux-1/requests/r1/status?logs=1", None, Ok(()));
    check(
        "queue_status",
        "GET",
        "/fal-ai/flux-1/requests/r1/status?logs=2",
        None,
        Err("operation queue_status: query parameter logs = 2: /: 2 is not one of 0 or 1"),
    );
    check("queue_status", "GET", "/fal-ai/flux-1/requests/r1/status?logs=yes", None, Err("query parameter logs = yes"));
    check(
        "queue_cancel",
        "PUT",
        "/fal-ai/flux-1/requests/r1/cancel",
        Some(json!({})),
        Err("operation queue_cancel: takes no request body, one was sent"),
    );
    check("queue_result", "GET", "/fal-ai/requests/r1", None, Err("operation queue_result: path /fal-ai/requests/r1 does not match"));
    check("no_such", "GET", "/", None, Err("operation no_such is not in the spec"));
    // A concrete path finds its operation; a literal endpoint path wins over the templates.
    assert_eq!(spec.find_operation("POST", "/fal-ai/flux-pro/kontext").map(|o| o.id).as_deref(), Some("flux_pro_kontext"));
    assert_eq!(spec.find_operation("GET", "/fal-ai/flux-pro/requests/r1").map(|o| o.id).as_deref(), Some("queue_result"));
    assert_eq!(
        spec.find_operation("GET", "/fal-ai/flux-pro/requests/r1/status/stream?logs=1").map(|o| o.id).as_deref(),
        Some("queue_status_stream")
    );
    assert!(spec.find_operation("DELETE", "/fal-ai/flux-pro/requests/r1").is_none());
}

#[test]
fn every_operation_in_the_spec_has_a_conformance_case() {
    let gaps = tests::conformance::drift::coverage_gaps(Spec::current());
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
    // The submit operations the generated client exposes are exactly the spec's endpoints.
    let typed: Vec<&str> = tests::conformance::typed::typed_endpoints().iter().map(|e| e.operation_id).collect();
    for e in tests::conformance::typed::typed_endpoints() {
        assert_eq!(e.method_name, e.operation_id, "the client method of {} is named after it", e.operation_id);
    }
    let endpoints: Vec<&str> = falq_api::ENDPOINTS.iter().map(|e| e.operation_id).collect();
    assert_eq!(typed, endpoints);
}
