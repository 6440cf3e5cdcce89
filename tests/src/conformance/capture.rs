//! What the conformance suite answers and checks on its capture server, shared by the
//! suite's test files: a canned answer per operation (checked against the spec before it
//! is sent) and the checks of a captured request against the operation it calls.

use serde_json::{Value, json};

use crate::conformance::{Spec, json_difference, path_params, split_target, validate_response};
use crate::{CaptureServer, Captured, Reply, fixture_json};

/// The key the suite's clients carry.
pub const KEY: &str = "test-key";
/// The request id of every canned answer.
pub const REQUEST_ID: &str = "551a32da-52b2-4be8-bf2f-bfb7cce2b324";

/// A status event of the canned request, with one log line.
pub fn status_event(status: &str) -> Value {
    json!({"status": status, "request_id": REQUEST_ID, "logs": [{"message": "step 3/28", "level": "INFO", "source": "user", "timestamp": "2026-01-01T00:00:00Z"}]})
}

/// What the capture server answers: for each operation, a body its spec allows
/// (checked against the spec before it is sent).
pub fn answer(req: &Captured) -> Reply {
    let spec = Spec::current();
    // The queue calls go through a base URL with a path prefix, as relays publish them.
    let target = req.target.strip_prefix("/api").unwrap_or(&req.target);
    let Some(op) = spec.find_operation(&req.method, target) else {
        return Reply::json(404, r#"{"detail":"no such operation"}"#);
    };
    let (status, body): (u16, Value) = match op.id.as_str() {
        _ if op.endpoint_id.is_some() => (200, fixture_json("seeds/submit.json")),
        "queue_status" => (202, status_event("IN_PROGRESS")),
        "queue_result" => (200, fixture_json("seeds/result-image.json")),
        "queue_cancel" => (202, json!({"status": "CANCELLATION_REQUESTED"})),
        "queue_status_stream" => {
            let events = [status_event("IN_PROGRESS"), status_event("COMPLETED")];
            let sse: String = events.iter().map(|e| format!("data: {e}\n\n: keep-alive\n\n")).collect();
            return Reply::sse(sse);
        }
        other => return Reply::json(500, format!(r#"{{"detail":"no canned answer for {other}"}}"#)),
    };
    validate_response(&op.id, status, &body).expect("the canned answer conforms");
    Reply::json(status, body.to_string())
}

/// The one request a call added to the server's log.
pub fn only_new(server: &CaptureServer, before: usize) -> Captured {
    let received = server.received();
    assert_eq!(received.len(), before + 1, "exactly one request per call: {:?}", &received[before..]);
    received[before].clone()
}

/// Checks a captured request against the operation the test meant to call: the
/// operation its method and path find, the spec's request schema, the key, the body.
pub fn check_captured(operation_id: &str, captured: &Captured, expected_body: Option<&Value>) {
    let spec = Spec::current();
    let found = spec.find_operation(&captured.method, &captured.target).map(|o| o.id);
    assert_eq!(found.as_deref(), Some(operation_id), "{} {} is a call of the intended operation", captured.method, captured.target);
    let body = (!captured.body.is_empty()).then(|| captured.json());
    spec.validate_request(operation_id, &captured.method, &captured.target, body.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        captured.header("authorization"),
        Some(format!("Bearer {KEY}").as_str()),
        "operation {operation_id}: the client's auth header arrives"
    );
    match expected_body {
        Some(expected) => {
            assert_eq!(captured.header("content-type"), Some("application/json"), "operation {operation_id}");
            let sent = body.expect("a body");
            if let Some(d) = json_difference(expected, &sent) {
                panic!("operation {operation_id}: the body sent differs from the one built: {d}\nbuilt: {expected}\nsent:  {sent}");
            }
        }
        None => assert!(captured.body.is_empty(), "operation {operation_id} sends no body"),
    }
}

/// A queue call: no body, the path parameters decode to what was given.
pub fn check_queue_call(operation_id: &str, captured: &Captured, request_id: &str) {
    let spec = Spec::current();
    let op = spec.operation(operation_id).expect("operation");
    let path = split_target(&captured.target).0.strip_prefix("/api").expect("the base URL's path prefix is kept");
    let params = path_params(&op.path, path).unwrap_or_else(|| panic!("operation {operation_id}: {path} does not match {}", op.path));
    assert_eq!(
        params,
        vec![
            ("owner".to_string(), "fal-ai".to_string()),
            ("app".to_string(), "flux-1".to_string()),
            ("request_id".to_string(), request_id.to_string())
        ],
        "operation {operation_id}: path parameters"
    );
    let unprefixed = Captured { target: captured.target.trim_start_matches("/api").to_string(), ..captured.clone() };
    check_captured(operation_id, &unprefixed, None);
}
