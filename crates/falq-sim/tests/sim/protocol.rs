//! The queue protocol: modes, auth, validation, status, logs, streams, results, cancel, TTL, paths.

use std::time::Duration;

use falq_api::types::{CancelResponse, FalError, FluxImageOutput, QueueStatus, QueueStatusKind};
use falq_sim::{SimConfig, SimMode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn relay_mode_answers_queue_fal_run_urls_and_takes_bearer_keys() {
    let (sim, api) = start(fast()).await;
    let response = api.post(TEXT, &small_text_input(1)).await;
    assert_eq!(response.status(), 200);
    let header_id = response.headers()["x-fal-request-id"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    let id = body["request_id"].as_str().unwrap();
    assert_eq!(id, header_id);
    assert_eq!(body["status"], "IN_QUEUE");
    assert_eq!(body["queue_position"], 0);
    assert_eq!(body["response_url"], format!("https://queue.fal.run/fal-ai/flux-pro/requests/{id}"));
    assert_eq!(body["status_url"], format!("https://queue.fal.run/fal-ai/flux-pro/requests/{id}/status"));
    assert_eq!(body["cancel_url"], format!("https://queue.fal.run/fal-ai/flux-pro/requests/{id}/cancel"));
    assert_eq!(body["logs"], Value::Null);
    assert_eq!(body["metrics"], json!({}));
    let typed: QueueStatus = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(typed.status, QueueStatusKind::InQueue);
    // Following the rewritten URLs works with the Bearer key.
    let done = api.wait_for(&body, "COMPLETED").await;
    assert_eq!(done["request_id"], id);
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    // The result names its request, as fal's does (fal-js takes the id from it).
    let result = api.http.get(api.local(body["response_url"].as_str().unwrap())).bearer_auth("test-key").send().await.unwrap();
    assert_eq!(result.status(), 200);
    assert_eq!(result.headers().get("x-fal-request-id").and_then(|v| v.to_str().ok()), Some(id));
}

#[tokio::test]
async fn direct_mode_answers_its_own_urls_and_takes_key_keys() {
    let (sim, api) = start(SimConfig { mode: SimMode::Direct, ..fast() }).await;
    let body = api.submit(TEXT, &small_text_input(1)).await;
    let id = body["request_id"].as_str().unwrap();
    assert_eq!(body["status_url"], format!("{}/fal-ai/flux-pro/requests/{id}/status", sim.base_url()));
    assert!(body.get("logs").is_none(), "direct mode adds no logs:null");
    let done = api.wait_for(&body, "COMPLETED").await;
    assert_eq!(done["response_url"], format!("{}/fal-ai/flux-pro/requests/{id}", sim.base_url()));
    let bearer = api.http.get(body["status_url"].as_str().unwrap()).header("authorization", "Bearer test-key").send().await.unwrap();
    assert_eq!(bearer.status(), 401);
}

#[tokio::test]
async fn missing_wrong_scheme_and_wrong_keys_answer_401() {
    let (sim, api) = start(SimConfig { api_key: Some("right".into()), ..stuck_in_queue() }).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let status_url = api.local(submitted["status_url"].as_str().unwrap());
    let submit_url = format!("{}/{TEXT}", sim.base_url());
    for auth in [None, Some("Key right"), Some("Bearer wrong"), Some("Bearer "), Some("right")] {
        for (method, url) in [("POST", &submit_url), ("GET", &status_url)] {
            let mut request = api.http.request(method.parse().unwrap(), url.as_str()).json(&small_text_input(1));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} with {auth:?}");
            let body: Value = response.json().await.unwrap();
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
        }
    }
    let cancel = api.http.put(api.local(submitted["cancel_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(cancel.status(), 401);
    let result = api.http.get(api.local(submitted["response_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(result.status(), 401);
    // Direct mode without a configured key takes any non-empty Key.
    let (_direct, api) = start(SimConfig { mode: SimMode::Direct, ..fast() }).await;
    assert_eq!(
        api.http
            .post(format!("{}/{TEXT}", api.base))
            .header("authorization", "Key anything")
            .json(&small_text_input(1))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        api.http
            .post(format!("{}/{TEXT}", api.base))
            .header("authorization", "Bearer anything")
            .json(&small_text_input(1))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// The (loc, type) pairs of a 422 answer.
async fn details(response: reqwest::Response) -> Vec<(Value, String)> {
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let _typed: FalError = serde_json::from_value(body.clone()).unwrap();
    body["detail"].as_array().unwrap().iter().map(|d| (d["loc"].clone(), d["type"].as_str().unwrap().to_string())).collect()
}

#[tokio::test]
async fn bad_inputs_answer_fal_422_details() {
    let (_sim, api) = start(fast()).await;
    let url = "https://fal.media/files/a.png";
    let cases = [
        (json!({}), json!(["body", "image_url"]), "missing"),
        (json!({ "image_url": url, "num_images": 5 }), json!(["body", "num_images"]), "less_than_equal"),
        (json!({ "image_url": url, "num_images": 0 }), json!(["body", "num_images"]), "greater_than_equal"),
        (json!({ "image_url": url, "output_format": "gif" }), json!(["body", "output_format"]), "literal_error"),
        (json!({ "image_url": url, "num_inference_steps": "many" }), json!(["body", "num_inference_steps"]), "int_parsing"),
        (json!({ "image_url": url, "sync_mode": 3 }), json!(["body", "sync_mode"]), "bool_type"),
        (
            json!({ "image_url": url, "image_size": { "width": 99999, "height": 10 } }),
            json!(["body", "image_size", "width"]),
            "less_than_equal",
        ),
        (json!("a string"), json!(["body"]), "model_attributes_type"),
    ];
    for (input, loc, kind) in cases {
        assert_eq!(details(api.post(REDUX, &input).await).await, vec![(loc, kind.to_string())], "{input}");
    }
    let response = api.post(REDUX, &json!({ "image_url": url, "num_images": 5 })).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"][0]["msg"], "Input should be less than or equal to 4");
    // Not JSON at all, and an empty body.
    let raw = |body: &'static str| {
        api.http
            .post(format!("{}/{REDUX}", api.base))
            .header("authorization", &api.auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(details(raw("{\"image_url\":").await.unwrap()).await[0].1, "json_invalid");
    assert_eq!(details(raw("").await.unwrap()).await, vec![(json!(["body"]), "missing".to_string())]);
    // Unknown fields are ignored, as fal does.
    assert_eq!(api.post(REDUX, &json!({ "image_url": url, "unheard_of": { "x": 1 } })).await.status(), 200);
}

#[tokio::test]
async fn queued_jobs_answer_202_with_their_position_and_no_result_yet() {
    let (_sim, api) = start(stuck_in_queue()).await;
    let first = api.submit(TEXT, &small_text_input(1)).await;
    let second = api.submit(TEXT, &small_text_input(2)).await;
    assert_eq!(second["queue_position"], 1);
    let response = api.get(second["status_url"].as_str().unwrap()).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["queue_position"].as_u64()), (Some("IN_QUEUE"), Some(1)));
    let result = api.get(first["response_url"].as_str().unwrap()).await;
    assert_eq!(result.status(), 400);
    assert_eq!(result.json::<Value>().await.unwrap(), json!({ "detail": "Request is still in progress" }));
    // Cancelling the first moves the second up.
    assert_eq!(api.put(first["cancel_url"].as_str().unwrap()).await.status(), 202);
    let body: Value = api.get(second["status_url"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(body["queue_position"], 0);
}

#[tokio::test]
async fn running_jobs_answer_202_with_step_logs_when_asked() {
    let (_sim, api) = start(stuck_in_progress()).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let running = api.wait_for(&submitted, "IN_PROGRESS").await;
    let logs = running["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["message"], "step 1/2");
    assert_eq!(logs[0]["level"], "INFO");
    assert_eq!(logs[0]["source"], "user");
    assert!(logs[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(running.get("queue_position").is_none());
    let plain = api.get(submitted["status_url"].as_str().unwrap()).await;
    assert_eq!(plain.status(), 202);
    let plain = plain.json::<Value>().await.unwrap();
    assert_eq!(plain.get("logs"), Some(&Value::Null), "like fal, the key is there and null without logs=1 (fal-client reads it)");
}

#[tokio::test]
async fn completed_jobs_answer_200_with_metrics_logs_and_the_output() {
    let (sim, api) = start(fast()).await;
    let submitted = api.submit(TEXT, &small_text_input(7)).await;
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(sim.completed_at(id), None);
    let done = api.wait_for(&submitted, "COMPLETED").await;
    assert!(sim.completed_at(id).is_some());
    assert_eq!(sim.status_of(id), Some(QueueStatusKind::Completed));
    assert!(done["metrics"]["inference_time"].as_f64().unwrap() > 0.0);
    let messages: Vec<&str> = done["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(messages, vec!["step 1/2", "step 2/2"]);
    assert_eq!(api.get(submitted["status_url"].as_str().unwrap()).await.status(), 200);
    let result = api.get(submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(result.status(), 200);
    let output: FluxImageOutput = result.json().await.unwrap();
    assert_eq!(output.images.len(), 1);
    assert_eq!((output.images[0].width, output.images[0].height), (Some(1024), Some(1024)));
    assert_eq!(output.seed, Some(7));
    assert_eq!(output.prompt.as_deref(), Some("a lighthouse"));
    assert_eq!(output.has_nsfw_concepts, vec![false]);
    assert!(output.timings.contains_key("inference"));
}

/// The data of every event of a finished stream, and whether keep-alives came.
fn events(text: &str) -> Vec<Value> {
    text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect()
}

#[tokio::test]
async fn status_streams_send_each_change_and_close_after_completed() {
    let (_sim, api) = start(fast()).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let url = format!("{}/stream?logs=1", submitted["status_url"].as_str().unwrap());
    let response = api.get(&url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // The body ends: the server closed the stream.
    let text = response.text().await.unwrap();
    let events = events(&text);
    let statuses: Vec<&str> = events.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.last(), Some(&"COMPLETED"));
    assert_eq!(statuses.iter().filter(|s| **s == "COMPLETED").count(), 1);
    let order = |s: &str| ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].iter().position(|x| *x == s).unwrap();
    assert!(statuses.windows(2).all(|w| order(w[0]) <= order(w[1])), "{statuses:?}");
    for e in &events {
        let _typed: QueueStatus = serde_json::from_value(e.clone()).unwrap();
    }
    assert_eq!(events.last().unwrap()["logs"].as_array().unwrap().len(), 2);
    // No event repeats the one before it.
    let signatures: Vec<String> = events.iter().map(|e| format!("{}{}", e["status"], e["logs"])).collect();
    assert!(signatures.windows(2).all(|w| w[0] != w[1]));
    // A completed job's stream is one event.
    let again = api.get(&url).await.text().await.unwrap();
    assert_eq!(events_statuses(&again), vec!["COMPLETED"]);
}

fn events_statuses(text: &str) -> Vec<String> {
    events(text).iter().map(|e| e["status"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn quiet_streams_send_keep_alive_comments_and_end_on_cancel() {
    let mut config = stuck_in_queue();
    config.timing.keep_alive = Duration::from_millis(20);
    let (_sim, api) = start(config).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let seen = api.stream_cancelled_after(&submitted, ": keep-alive\n\n").await;
    assert_eq!(events_statuses(&seen), vec!["IN_QUEUE", "COMPLETED"]);
}

#[tokio::test]
async fn cancel_answers_202_then_400_and_404() {
    let (_sim, api) = start(stuck_in_progress()).await;
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    api.wait_for(&submitted, "IN_PROGRESS").await;
    let cancel_url = submitted["cancel_url"].as_str().unwrap();
    let response = api.put(cancel_url).await;
    assert_eq!(response.status(), 202);
    let typed: CancelResponse = response.json().await.unwrap();
    assert_eq!(serde_json::to_value(typed).unwrap(), json!({ "status": "CANCELLATION_REQUESTED" }));
    api.wait_for(&submitted, "COMPLETED").await;
    let result = api.get(submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(result.status(), 400);
    assert_eq!(result.json::<Value>().await.unwrap(), json!({ "detail": "Request was cancelled", "error_type": "request_cancelled" }));
    let again = api.put(cancel_url).await;
    assert_eq!(again.status(), 400);
    assert_eq!(again.json::<Value>().await.unwrap(), json!({ "status": "ALREADY_COMPLETED" }));
    let unknown = api.put(&cancel_url.replace(submitted["request_id"].as_str().unwrap(), "nope")).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap(), json!({ "status": "NOT_FOUND" }));
}

#[tokio::test]
async fn results_expire_after_their_ttl() {
    let mut config = fast();
    config.timing.result_ttl = Duration::from_millis(150);
    let (sim, api) = start(config).await;
    let (submitted, result) = api.run(TEXT, &small_text_input(1)).await;
    assert_eq!(result.status(), 200);
    let output: Value = result.json().await.unwrap();
    let response_url = submitted["response_url"].as_str().unwrap();
    let mut gone = None;
    for _ in 0..1000 {
        let response = api.get(response_url).await;
        if response.status() == 404 {
            gone = Some(response.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gone, Some(json!({ "detail": "Request not found" })));
    assert_eq!(api.get(submitted["status_url"].as_str().unwrap()).await.status(), 404);
    assert_eq!(api.put(submitted["cancel_url"].as_str().unwrap()).await.status(), 404);
    assert_eq!(api.download(output["images"][0]["url"].as_str().unwrap()).await.status(), 404);
    let counters = sim.counters();
    assert_eq!(counters.jobs.expired, 1);
    assert!(counters.per_job.is_empty());
    assert_eq!(sim.completed_at(submitted["request_id"].as_str().unwrap()), None);
}

#[tokio::test]
async fn queue_paths_take_the_app_id_or_the_endpoint_id_but_not_another_app() {
    let (_sim, api) = start(fast()).await;
    let submitted = api.submit(REDUX, &small_redux_input("https://fal.media/a.png", 1)).await;
    let id = submitted["request_id"].as_str().unwrap();
    api.wait_for(&submitted, "COMPLETED").await;
    for (app, expected) in [
        ("fal-ai/flux-1", 200),
        ("fal-ai/flux-1/dev/redux", 200),
        ("fal-ai/flux-1/dev", 200),
        ("fal-ai/flux-pro", 404),
        ("fal-ai/flux-1x", 404),
    ] {
        let url = format!("{}/{app}/requests/{id}/status", api.base);
        assert_eq!(api.get(&url).await.status(), expected, "{app}");
        let url = format!("{}/{app}/requests/{id}", api.base);
        assert_eq!(api.get(&url).await.status(), expected, "{app} result");
    }
}

#[tokio::test]
async fn a_path_prefix_moves_every_route() {
    let (sim, api) = start(SimConfig { path_prefix: "/fal/".into(), mode: SimMode::Direct, ..fast() }).await;
    assert!(sim.base_url().ends_with("/fal"));
    let output = api.output(TEXT, &small_text_input(1)).await;
    let media = output["images"][0]["url"].as_str().unwrap();
    assert!(media.starts_with(&format!("{}/media/", sim.base_url())));
    assert_eq!(api.download(media).await.status(), 200);
    let outside = api
        .http
        .post(format!("{}/{TEXT}", sim.base_url().trim_end_matches("/fal")))
        .header("authorization", &api.auth)
        .json(&small_text_input(1))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
}

#[tokio::test]
async fn unknown_paths_methods_and_oversized_bodies_answer_json_errors() {
    let (_sim, api) = start(SimConfig { max_body_bytes: 1000, ..fast() }).await;
    let check = async |response: reqwest::Response, status: u16| {
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
    };
    check(api.get(&format!("{}/nowhere", api.base)).await, 404).await;
    check(api.post("fal-ai/not-an-endpoint", &json!({})).await, 404).await;
    check(api.get(&format!("{}/{TEXT}", api.base)).await, 405).await;
    check(api.http.delete(format!("{}/fal-ai/flux-pro/requests/x", api.base)).send().await.unwrap(), 405).await;
    check(api.post(TEXT, &json!({ "prompt": "x".repeat(2000) })).await, 413).await;
    check(api.get(&format!("{}/fal-ai/flux-pro/requests/unknown/status", api.base)).await, 404).await;
    check(api.get(&format!("{}/fal-ai/flux-pro/requests/unknown", api.base)).await, 404).await;
    check(api.download(&format!("{}/media/unknown-0.jpeg", api.base)).await, 404).await;
}

#[tokio::test]
async fn every_endpoint_of_the_spec_is_served() {
    let (_sim, api) = start(fast()).await;
    let api = &api;
    futures_util::future::join_all(falq_api::ENDPOINTS.iter().map(|endpoint| async move {
        // Each endpoint from its required fields alone, as its schema says them.
        let input = falq_api::minimal_input(endpoint);
        let response = api.post(endpoint.id, &input).await;
        assert_eq!(response.status(), 200, "{}", endpoint.id);
        let body: Value = response.json().await.unwrap();
        assert!(body["status_url"].as_str().unwrap().contains(&format!("/{}/requests/", endpoint.app_id)));
        api.wait_for(&body, "COMPLETED").await;
        let result = api.get(body["response_url"].as_str().unwrap()).await;
        assert_eq!(result.status(), 200, "{}", endpoint.id);
        let output: Value = result.json().await.unwrap();
        (endpoint.check_output)(&output).unwrap_or_else(|e| panic!("{}: the result is not its output type: {e}: {output}", endpoint.id));
        // Every file the catalogue says the output holds is there, and is what it says.
        for slot in endpoint.output_files {
            let files = at_pointer(&output, slot.pointer);
            assert!(!files.is_empty(), "{}: no file at {}: {output}", endpoint.id, slot.pointer);
            for file in files {
                let url = file["url"].as_str().unwrap();
                let media = api.download(url).await;
                assert_eq!(media.status(), 200, "{url}");
                let declared = media.headers()["content-type"].to_str().unwrap().to_string();
                let bytes = media.bytes().await.unwrap();
                let sniffed = falq_api::sniff(&bytes);
                let kind = sniffed.and_then(falq_api::FileKind::from_content_type).unwrap_or(falq_api::FileKind::Other);
                assert_eq!(kind, slot.kind, "{}: {} holds {sniffed:?}", endpoint.id, slot.pointer);
                if let Some(sniffed) = sniffed {
                    assert_eq!(declared, sniffed, "{url}: served as what it is");
                }
                assert_eq!(file["content_type"].as_str().unwrap_or(&declared), declared, "{url}: the output says what it is");
            }
        }
    }))
    .await;
}

/// A result says what fal bills for it in `x-fal-billable-units`: one unit per image, one
/// per second of video asked for (`duration`, or its default), for every endpoint of the
/// catalogue that outputs images or a video with a duration.
#[tokio::test]
async fn a_result_bills_its_images_and_seconds_of_video() {
    use falq_api::FileKind;
    let (_sim, api) = start(fast()).await;
    let units = |r: &reqwest::Response| r.headers().get("x-fal-billable-units").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut checked = (0, 0);
    for info in falq_api::ENDPOINTS {
        let kinds: Vec<FileKind> = info.output_files.iter().map(|f| f.kind).collect();
        let input = falq_api::minimal_input(info);
        let field = |name: &str| info.fields.iter().find(|f| f.name == name);
        if kinds == [FileKind::Image] && info.output_files[0].pointer.ends_with('*') && field("num_images").is_some() && checked.0 < 3 {
            let mut input = input.clone();
            input["num_images"] = json!(2);
            if field("image_size").is_some_and(|f| f.kind == "one of") {
                input["image_size"] = json!({"width": 64, "height": 48});
            }
            let (_, result) = api.run(info.id, &input).await;
            assert_eq!(result.status(), 200, "{}", info.id);
            assert_eq!(units(&result).as_deref(), Some("2"), "{}: two images", info.id);
            checked.0 += 1;
        }
        if kinds == [FileKind::Video]
            && let Some(default) = field("duration").and_then(|f| f.default)
        {
            let seconds: String =
                serde_json::from_str::<Value>(default).unwrap().to_string().chars().filter(char::is_ascii_digit).collect();
            let (_, result) = api.run(info.id, &input).await;
            assert_eq!(result.status(), 200, "{}", info.id);
            assert_eq!(units(&result), Some(seconds), "{}: the default duration's seconds", info.id);
            checked.1 += 1;
        }
    }
    assert!(checked.0 > 0, "an endpoint of images was checked");
    // A job that is not complete bills nothing.
    let submitted = api.submit(TEXT, &small_text_input(1)).await;
    let early = api.get(submitted["response_url"].as_str().unwrap()).await;
    if early.status() != 200 {
        assert_eq!(units(&early), None);
    }
}
