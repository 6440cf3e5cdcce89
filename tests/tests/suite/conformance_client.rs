//! What `falq::Client` (the client people use) sends and accepts, checked against the
//! spec: every submit operation with its spec-derived bodies, and each queue call of a
//! job's handle (status with and without logs, the status stream, result, cancel),
//! captured on 127.0.0.1 behind a base URL with a path prefix, with the key it carries.
//! Each canned answer is checked against the spec before it is sent, so falq is shown
//! to accept what the spec allows.

use falq::{ApiKey, Client, Config, Logs, WaitMode};
use tests::CaptureServer;
use tests::conformance::Spec;
use tests::conformance::capture::{KEY, REQUEST_ID, answer, check_captured, check_queue_call, only_new};
use tests::conformance::samples::request_samples;

fn client(base: &str, wait: WaitMode) -> Client {
    let mut config = Config::new(base).unwrap().with_key(ApiKey::new(KEY));
    config.wait.mode = wait;
    Client::new(config).unwrap()
}

#[tokio::test]
async fn every_submit_operation_is_sent_by_falq_as_the_spec_says() {
    let spec = Spec::current();
    let server = CaptureServer::start_with(answer).await;
    let c = client(&server.base_url, WaitMode::Poll);
    let mut covered = Vec::new();
    for op in spec.operations().into_iter().filter(|o| o.endpoint_id.is_some()) {
        let endpoint = op.endpoint_id.clone().unwrap();
        for (label, body) in request_samples(spec, &op) {
            let before = server.received().len();
            let handle = c.submit_json(&endpoint, &body).await.unwrap_or_else(|e| panic!("operation {} ({label} body): {e}", op.id));
            assert_eq!(handle.request_id, REQUEST_ID);
            let captured = only_new(&server, before);
            check_captured(&op.id, &captured, Some(&body));
            covered.push(op.id.clone());
        }
    }
    for info in falq_api::ENDPOINTS {
        assert!(covered.contains(&info.operation_id.to_string()), "{} has no case", info.id);
    }
}

/// Every request option set (a start timeout of 1.5 s, which goes out as 2 whole seconds).
fn every_option() -> falq::SubmitOptions {
    falq::SubmitOptions {
        webhook: Some("http://127.0.0.1:9/hook?x=1".parse().unwrap()),
        priority: Some(falq::Priority::Low),
        start_timeout: Some(std::time::Duration::from_millis(1500)),
        runner_hint: Some("eu-1".into()),
        result_lifetime: Some(std::time::Duration::from_secs(3600)),
    }
}

#[tokio::test]
async fn request_options_are_sent_as_the_spec_declares_them() {
    let spec = Spec::current();
    let server = CaptureServer::start_with(answer).await;
    let c = client(&server.base_url, WaitMode::Poll);
    let options = every_option();
    let body = serde_json::json!({"prompt": "a kite"});
    c.submit_json_with("fal-ai/flux-1/schnell", &body, &options).await.unwrap();
    let captured = only_new(&server, 0);
    check_captured("flux_1_schnell", &captured, Some(&body));
    // Every header sent is one the operation declares, with a value its schema allows.
    let op = spec.operation("flux_1_schnell").unwrap();
    for p in op.parameters.iter().filter(|p| p.location == "header") {
        let Some(value) = captured.header(&p.name.to_ascii_lowercase()) else { panic!("{} was not sent", p.name) };
        let typed = if p.schema.get("type").and_then(serde_json::Value::as_str) == Some("integer") {
            serde_json::json!(value.parse::<i64>().unwrap_or_else(|_| panic!("{}: {value:?} is no integer", p.name)))
        } else {
            serde_json::json!(value)
        };
        let schema = tests::conformance::schema::to_json_schema(&p.schema);
        let valid = falq_api::json_schema::compile(&schema).unwrap().is_valid(&typed);
        assert!(valid, "{}: {value:?} against {schema}", p.name);
    }
    assert_eq!(captured.header("x-fal-request-timeout"), Some("2"), "1.5 s rounds up to whole seconds");
}

/// A typed submit is the endpoint's generated operation (it carries progenitor's
/// `api-version` header, which falq's own requests never do), with the options as the
/// operation's parameters, over falq's transport (its key); the request is the spec's.
#[tokio::test]
async fn a_typed_submit_is_the_endpoints_generated_operation() {
    let server = CaptureServer::start_with(answer).await;
    let c = client(&server.base_url, WaitMode::Poll);
    let options = every_option();
    let input: falq::types::Flux1SchnellInput = serde_json::from_value(serde_json::json!({"prompt": "a kite", "num_images": 2})).unwrap();
    let handle = c.submit_with::<falq::endpoints::Flux1Schnell>(&input, &options).await.unwrap();
    assert_eq!(handle.request_id, REQUEST_ID);
    let captured = only_new(&server, 0);
    check_captured("flux_1_schnell", &captured, Some(&serde_json::to_value(&input).unwrap()));
    assert!(captured.header("api-version").is_some(), "sent by the generated operation: {captured:?}");
    assert_eq!(captured.header("authorization"), Some(format!("Bearer {KEY}").as_str()), "with falq's key");
    assert_eq!(captured.header("x-fal-queue-priority"), Some("low"));
    assert_eq!(captured.header("x-fal-request-timeout"), Some("2"), "1.5 s rounds up to whole seconds");
    assert_eq!(captured.header("x-fal-runner-hint"), Some("eu-1"));
    assert_eq!(captured.header("x-fal-object-lifecycle-preference"), Some(r#"{"expiration_duration_seconds":3600}"#));
    assert!(captured.target.contains("fal_webhook=http%3A%2F%2F127.0.0.1%3A9%2Fhook%3Fx%3D1"), "{}", captured.target);
}

#[tokio::test]
async fn every_queue_call_of_a_handle_is_sent_by_falq_as_the_spec_says_and_its_answer_accepted() {
    let spec = Spec::current();
    let server = CaptureServer::start_with(answer).await;
    let base = format!("{}/api/", server.base_url);
    let mut checked = Vec::new();
    for op in spec.operations().into_iter().filter(|o| o.endpoint_id.is_none()) {
        let wait = if op.id == "queue_status_stream" { WaitMode::Stream } else { WaitMode::Poll };
        let c = client(&base, wait);
        // The handle of a submit: the URLs the relay returned (queue.fal.run) mapped onto the base.
        let handle =
            c.submit_json("fal-ai/flux-1/dev/redux", &serde_json::json!({"image_url": "https://example.test/a.png"})).await.unwrap();
        let before = server.received().len();
        match op.id.as_str() {
            "queue_status" => {
                let status = handle.status(Logs::Include).await.expect("a status the spec allows is accepted");
                assert_eq!(status.status, falq::types::QueueStatusKind::InProgress);
                check_queue_call(&op.id, &only_new(&server, before), REQUEST_ID);
                handle.status(Logs::Omit).await.expect("status without logs");
                check_queue_call(&op.id, &only_new(&server, before + 1), REQUEST_ID);
            }
            "queue_status_stream" => {
                let status = handle.wait(|_| {}).await.expect("a stream the spec allows is followed to the end");
                assert_eq!(status.status, falq::types::QueueStatusKind::Completed);
                check_queue_call(&op.id, &only_new(&server, before), REQUEST_ID);
            }
            "queue_result" => {
                let result = handle.result_json().await.expect("a result the spec allows is accepted");
                assert!(result["images"].is_array());
                check_queue_call(&op.id, &only_new(&server, before), REQUEST_ID);
            }
            "queue_cancel" => {
                let cancel = handle.cancel().await.expect("a cancel answer the spec allows is accepted");
                assert_eq!(cancel, falq::types::CancelStatus::CancellationRequested);
                check_queue_call(&op.id, &only_new(&server, before), REQUEST_ID);
            }
            other => panic!("operation {other} has no conformance case for falq::Client"),
        }
        checked.push(op.id);
    }
    assert_eq!(checked.len(), 4, "{checked:?}");
}

/// Every JSON response the spec declares for an operation, served to `falq::Client`'s call
/// of that operation: a success is accepted as its value, an error is an error that names
/// the job's state (never a panic, never a success), and what the retry policy retries is
/// asked again (never a submit that may have queued a paid job).
#[tokio::test]
async fn falq_reads_every_json_response_the_spec_declares() {
    use std::sync::{Arc, Mutex};
    use tests::Reply;
    use tests::conformance::samples::{Fill, sample};
    let spec = Spec::current();
    let reply: Arc<Mutex<Reply>> = Arc::new(Mutex::new(Reply::json(500, "{}")));
    let shared = reply.clone();
    let server = CaptureServer::start_with(move |_| shared.lock().expect("lock").clone()).await;
    let c = Client::new(tests::fast_config(&server.base_url, WaitMode::Poll)).unwrap();
    let handle = c.handle("fal-ai/flux-1/dev/redux", REQUEST_ID).unwrap();
    let mut cases = 0;
    for op in spec.operations() {
        for (status, media, schema) in op.response_schemas() {
            if media != "application/json" {
                continue;
            }
            let code: u16 = status.parse().unwrap();
            for fill in [Fill::Minimal, Fill::Maximal] {
                // A result's success is the endpoint's own output (its x-falq-output), which
                // falq checks; the operation's generic schema allows any object.
                let body = match (op.id.as_str(), code) {
                    ("queue_result", 200) => tests::fixture_json("seeds/result-image.json"),
                    _ => sample(spec, &schema, fill, ""),
                };
                *reply.lock().expect("lock") = Reply::json(code, body.to_string());
                let what = format!("operation {}, response {status} ({fill:?}): {body}", op.id);
                let before = server.received().len();
                let got: Result<(), falq::Error> = match (op.id.as_str(), &op.endpoint_id) {
                    (_, Some(endpoint)) => {
                        let input = tests::conformance::samples::request_samples(spec, &op).remove(0).1;
                        c.submit_json(endpoint, &input).await.map(drop)
                    }
                    ("queue_status", _) => handle.status(Logs::Include).await.map(drop),
                    ("queue_result", _) => handle.result_json().await.map(drop),
                    ("queue_cancel", _) => handle.cancel().await.map(drop),
                    (other, _) => panic!("operation {other} has no case"),
                };
                let sent = server.received().len() - before;
                match (&got, code) {
                    // A result still in progress answers 202: not ready, not a success.
                    (Err(falq::Error::NotReady { .. }), 202) if op.id == "queue_result" => {}
                    (Ok(()), 200..=299) => {}
                    // A submit accepted without a request id (the spec leaves it optional) is a
                    // job falq cannot follow: an error that says the job may exist.
                    (Err(e), 200..=299) if op.endpoint_id.is_some() && e.maybe_submitted() => {}
                    // A cancel's every answer is a status (CANCELLATION_REQUESTED, ALREADY_COMPLETED, NOT_FOUND).
                    (Ok(()), _) if op.id == "queue_cancel" => {}
                    (Err(e), 400..=599) => {
                        assert!(!e.to_string().is_empty(), "{what}");
                        let retried = sent > 1;
                        let submit = op.endpoint_id.is_some();
                        let may_retry = matches!(code, 429 | 503) || (!submit && matches!(code, 500 | 502 | 504));
                        assert!(retried <= may_retry, "{what}: sent {sent} times");
                    }
                    (got, _) => panic!("{what}: falq answered {got:?}"),
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 2 * falq_api::ENDPOINTS.len() * 8, "{cases} cases");
}
