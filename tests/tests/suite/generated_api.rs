//! The generated falq-api crate as a user meets it: requests it sends, answers it
//! reads, bounds it refuses before sending, enums with exact wire values.

use falq_api::types::{self, FluxImageOutput, QueueStatus, QueueStatusKind};
use falq_api::{AspectRatio, Endpoint, ImageSizePreset, SafetyTolerance, Validate, endpoints};
use serde_json::json;
use tests::{CaptureServer, fixture, fixture_json};

fn client(base: &str) -> falq_api::Client {
    falq_api::client_for(base, reqwest::Client::new(), tests::fast_hooks())
}

#[tokio::test]
async fn submit_posts_only_what_was_set_to_the_endpoint_path() {
    let server = CaptureServer::start(|_| (200, fixture("seeds/submit-relay.json"))).await;
    // A base URL with a path prefix and a trailing slash, as relays publish them.
    let c = client(&format!("{}/api/", server.base_url));
    let answer = c
        .flux_1_dev_redux()
        .body(types::Flux1DevReduxInput::builder().image_url("https://example.test/in.png").num_images(2i64).seed(196619188014358660i64))
        .send()
        .await
        .expect("submit succeeds")
        .into_inner();
    assert_eq!(answer.status, QueueStatusKind::InQueue);
    assert_eq!(answer.request_id.as_deref(), Some("acf05732-7cb3-445b-9f39-fdaeccb1d730"));
    assert_eq!(answer.logs, None, "the relay's logs: null is accepted");
    let reqs = server.received();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].target, "/api/fal-ai/flux-1/dev/redux");
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(reqs[0].header("authorization"), None, "no per-call auth argument: the client's own headers only");
    assert_eq!(
        reqs[0].json(),
        json!({"image_url": "https://example.test/in.png", "num_images": 2, "seed": 196619188014358660i64}),
        "unset optional fields are not sent; the seed stays exact"
    );
}

#[tokio::test]
async fn out_of_range_values_are_refused_before_sending() {
    let server = CaptureServer::start(|_| (200, fixture("seeds/submit.json"))).await;
    let c = client(&server.base_url);
    let cases = [
        (json!({"image_url": "u", "num_images": 5}), "num_images: 5 is greater than the maximum of 4"),
        (json!({"image_url": "u", "num_inference_steps": 51}), "num_inference_steps: 51 is greater than the maximum of 50"),
        (json!({"image_url": "u", "guidance_scale": 0.5}), "guidance_scale: 0.5 is less than the minimum of 1.0"),
        (
            json!({"image_url": "u", "image_size": {"width": 20000, "height": 512}}),
            "image_size.width: 20000 is greater than the maximum of 14142",
        ),
    ];
    for (input, expected) in cases {
        let input: types::Flux1DevReduxInput = serde_json::from_value(input).expect("well-typed");
        assert_eq!(input.validate().map_err(|e| e.to_string()), Err(expected.to_string()));
        let err = c.flux_1_dev_redux().body(input).send().await.expect_err("refused");
        assert!(err.to_string().contains(expected), "{err}");
    }
    // schnell's steps stop at 12, dev's at 50: bounds are per endpoint.
    let schnell: types::Flux1SchnellReduxInput = serde_json::from_value(json!({"image_url": "u", "num_inference_steps": 13})).unwrap();
    assert_eq!(schnell.validate().unwrap_err().to_string(), "num_inference_steps: 13 is greater than the maximum of 12");
    assert!(server.received().is_empty(), "nothing out of range reached the server");
}

#[tokio::test]
async fn queue_calls_use_the_app_id_path_and_read_status_and_errors() {
    let server = CaptureServer::start(|req| {
        if req.target.ends_with("/status?logs=1") {
            (202, r#"{"status":"IN_PROGRESS","request_id":"r1","logs":[{"message":"step 3/28","level":"INFO","source":"user","timestamp":"2026-01-01T00:00:00Z"}]}"#.into())
        } else if req.method == "PUT" {
            (400, r#"{"status":"ALREADY_COMPLETED"}"#.into())
        } else {
            (422, r#"{"detail":[{"loc":["body","num_images"],"msg":"ensure this value is less than or equal to 4","type":"value_error.number.not_le","ctx":{"limit_value":4}}]}"#.into())
        }
    })
    .await;
    let c = client(&server.base_url);
    let s = c.queue_status().owner("fal-ai").app("flux-1").request_id("r1").logs(1i64).send().await.expect("status").into_inner();
    assert_eq!(s.status, QueueStatusKind::InProgress);
    assert_eq!(s.logs.unwrap()[0].message, "step 3/28");
    let err = c.queue_result().owner("fal-ai").app("flux-1").request_id("r1").send().await.expect_err("422");
    match err {
        falq_api::Error::ErrorResponse(body) => {
            assert_eq!(body.status().as_u16(), 422);
            match body.into_inner().detail {
                Some(types::ErrorDetail::Array(items)) => {
                    assert_eq!(items[0].msg, "ensure this value is less than or equal to 4");
                    assert_eq!(items[0].loc[1], types::LocationPart::String("num_images".into()));
                }
                other => panic!("detail should be a list, got {other:?}"),
            }
        }
        other => panic!("expected a typed error response, got {other}"),
    }
    let err = c.queue_cancel().owner("fal-ai").app("flux-1").request_id("r1").send().await.expect_err("400");
    match err {
        falq_api::Error::ErrorResponse(body) => assert_eq!(body.into_inner().status, types::CancelStatus::AlreadyCompleted),
        other => panic!("{other}"),
    }
    let targets: Vec<String> = server.received().iter().map(|r| format!("{} {}", r.method, r.target)).collect();
    assert!(targets.contains(&"GET /fal-ai/flux-1/requests/r1/status?logs=1".to_string()), "{targets:?}");
    assert!(targets.contains(&"GET /fal-ai/flux-1/requests/r1".to_string()), "{targets:?}");
    assert!(targets.contains(&"PUT /fal-ai/flux-1/requests/r1/cancel".to_string()), "{targets:?}");
}

#[test]
fn enums_have_readable_names_and_exact_wire_values() {
    assert_eq!(serde_json::to_value(AspectRatio::R16x9).unwrap(), json!("16:9"));
    assert_eq!(serde_json::to_value(SafetyTolerance::Level2).unwrap(), json!("2"));
    assert_eq!(serde_json::to_value(ImageSizePreset::Landscape4x3).unwrap(), json!("landscape_4_3"));
    assert_eq!(serde_json::to_value(types::OutputFormat::Png).unwrap(), json!("png"));
    assert_eq!(serde_json::to_value(types::Acceleration::Regular).unwrap(), json!("regular"));
    assert_eq!("21:9".parse::<AspectRatio>(), Ok(AspectRatio::R21x9));
    let err = "7".parse::<SafetyTolerance>().unwrap_err().to_string();
    assert_eq!(err, "\"7\" is not a SafetyTolerance; allowed: 1, 2, 3, 4, 5, 6");
    assert_eq!(AspectRatio::ALL.len(), 9);
    let size: types::ImageSize = serde_json::from_value(json!({"width": 1024, "height": 768})).unwrap();
    assert_eq!(size, types::ImageSize::CustomImageSize(types::CustomImageSize { width: 1024, height: 768 }));
    let preset: types::ImageSize = serde_json::from_value(json!("square_hd")).unwrap();
    assert_eq!(preset, types::ImageSize::ImageSizePreset(ImageSizePreset::SquareHd));
}

#[test]
fn outputs_are_typed_and_seeds_stay_exact() {
    let out: FluxImageOutput = serde_json::from_value(fixture_json("seeds/result-image.json")).expect("the relay's result");
    assert_eq!(out.images[0].width, Some(1024));
    assert_eq!(out.seed, Some(920212137));
    let mut big = fixture_json("seeds/result-image.json");
    big["seed"] = json!(196619188014358660u64);
    let out: FluxImageOutput = serde_json::from_value(big).unwrap();
    assert_eq!(out.seed, Some(196619188014358660), "a seed above 2^53 is not rounded");
    let status: QueueStatus = serde_json::from_value(fixture_json("seeds/submit.json")).unwrap();
    assert_eq!(status.queue_position, Some(0));
}

fn takes_flux_output(_: Option<FluxImageOutput>) {}

#[test]
fn each_endpoint_links_its_input_and_output() {
    let info = endpoints::Flux1DevRedux::info();
    assert_eq!((info.id, info.app_id, info.operation_id), ("fal-ai/flux-1/dev/redux", "fal-ai/flux-1", "flux_1_dev_redux"));
    takes_flux_output(None::<<endpoints::FluxProKontextMulti as Endpoint>::Output>);
    let ids: Vec<&str> = falq_api::ENDPOINTS.iter().map(|e| e.id).collect();
    // The catalogue holds the relay's endpoints (the FLUX models, the video ones, ...) at
    // least; every id once.
    for id in ["fal-ai/flux-1/dev/redux", "fal-ai/flux-pro/kontext/max/multi", "fal-ai/veo3", "fal-ai/nano-banana/edit"] {
        assert!(ids.contains(&id), "{id} is missing from {ids:?}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every endpoint once: {ids:?}");
    // Its output type, and what the catalogue says of its files, agree: a video endpoint
    // answers a video, typed.
    let veo3 = falq_api::endpoint("fal-ai/veo3").unwrap();
    assert_eq!((veo3.output_schema, veo3.output_kind), ("VideoOutput", "video"));
    let _: Option<<endpoints::Veo3 as Endpoint>::Output> = None::<types::VideoOutput>;
    assert_eq!(falq_api::endpoint("/fal-ai/flux-pro/kontext/max/").map(|e| e.input_schema), Some("FluxProKontextMaxInput"));
    assert!(falq_api::endpoint("fal-ai/nope").is_none());
    // Every endpoint is found by its id, written with slashes around or not, and a text
    // one edit from an id is found only when it is an id itself.
    for e in falq_api::ENDPOINTS {
        for written in [e.id.to_string(), format!("/{}", e.id), format!("{}/", e.id)] {
            assert!(falq_api::endpoint(&written).is_some_and(|found| std::ptr::eq(found, *e)), "{written}");
        }
        for near in [format!("{}x", e.id), e.id[..e.id.len() - 1].to_string(), format!("a{}", e.id)] {
            assert_eq!(falq_api::endpoint(&near).map(|f| f.id), ids.iter().find(|id| **id == near).copied(), "{near}");
        }
    }
    let spec: serde_json::Value = serde_json::from_str(falq_api::OPENAPI_JSON).unwrap();
    for e in falq_api::ENDPOINTS {
        assert!(spec["components"]["schemas"].get(e.input_schema).is_some(), "{}", e.id);
        assert!(spec["components"]["schemas"].get(e.output_schema).is_some(), "{}", e.id);
    }
}

/// The one validation before sending, table-driven: every field at every depth.
mod validation {
    use falq_api::validate_input;
    use serde_json::{Value, json};

    fn check(endpoint: &str, input: Value, expected: Result<(), &[&str]>) {
        let info = falq_api::endpoint(endpoint).expect("an endpoint");
        let got = validate_input(info, &input).map_err(|e| e.0.into_iter().map(|e| e.field).collect::<Vec<_>>());
        assert_eq!(got, expected.map_err(|f| f.iter().map(|s| s.to_string()).collect::<Vec<_>>()), "{input}");
    }

    #[test]
    fn every_constraint_at_every_depth_names_its_field() {
        let redux = "fal-ai/flux-1/dev/redux";
        check(redux, json!({"image_url": "u", "num_images": 4, "guidance_scale": 1.0}), Ok(()));
        check(redux, json!({"image_url": "u", "num_images": 5}), Err(&["num_images"]));
        check(redux, json!({"num_images": "two"}), Err(&["image_url", "num_images"]));
        check(redux, json!({"image_url": "u", "image_size": {"width": 20000, "height": 10}}), Err(&["image_size.width"]));
        check(redux, json!({"image_url": "u", "image_size": "square_hd", "output_format": "gif"}), Err(&["output_format"]));
        let e = validate_input(falq_api::endpoint(redux).unwrap(), &json!({"image_url": "u", "image_size": "huge"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "image_size: \"huge\" is not allowed; allowed: square_hd, square, portrait_4_3, portrait_16_9, landscape_4_3, landscape_16_9",
            "a union names the values of its closest branch"
        );
        check("fal-ai/flux-pro/kontext/multi", json!({"prompt": "p", "image_urls": []}), Err(&["image_urls"]));
        check("fal-ai/flux-pro/kontext/multi", json!({"prompt": "p", "image_urls": "x"}), Err(&["image_urls"]));
        let e = validate_input(falq_api::endpoint(redux).unwrap(), &json!({"image_url": "u", "num_images": 9})).unwrap_err();
        assert_eq!(e.to_string(), "num_images: 9 is greater than the maximum of 4");
    }
}

/// The generated client used on its own is as safe as `falq::Client`: its hooks carry the
/// key to the base's origin only, retry per the policy in the project's one loop (never a
/// paid submit that may have arrived), and validate by operation id.
mod safe_on_its_own {
    use std::time::Duration;

    use super::*;
    use tests::Reply;

    const COMPLETED: &str = r#"{"status":"COMPLETED","request_id":"r1"}"#;

    fn hooks() -> falq_api::Hooks {
        let retry = falq_api::retry::RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..Default::default()
        };
        falq_api::Hooks::default().with_key("Bearer", "sk-relay").unwrap().with_retry(retry)
    }

    #[tokio::test]
    async fn the_key_goes_to_the_base_and_a_redirect_elsewhere_does_not_carry_it() {
        let elsewhere = CaptureServer::start(|_| (200, COMPLETED.to_string())).await;
        let target = format!("{}/elsewhere", elsewhere.base_url.replace("127.0.0.1", "localhost"));
        let server = CaptureServer::start_with_base(move |_, _| Reply::json(302, "{}").header("location", &target)).await;
        let c = falq_api::client_for(&server.base_url, reqwest::Client::new(), hooks());
        let _ = c.queue_status().owner("fal-ai").app("flux-1").request_id("r1").send().await;
        assert_eq!(server.received()[0].header("authorization"), Some("Bearer sk-relay"), "the base gets the key");
        assert!(!elsewhere.received().is_empty(), "the redirect was followed");
        for r in elsewhere.received() {
            assert_eq!(r.header("authorization"), None, "another origin never sees the key");
        }
    }

    /// An executor (what `falq::Client` installs) sends what the operations build, after
    /// the hooks' checks; when it has no answer, the operation says why.
    #[tokio::test]
    async fn an_executor_sends_what_the_operations_build() {
        #[derive(Debug, Default)]
        struct Recorder(std::sync::Mutex<Vec<(String, falq_api::retry::Call)>>);
        impl falq_api::Executor for Recorder {
            fn execute(
                &self,
                request: reqwest::Request,
                call: falq_api::retry::Call,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<reqwest::Response, falq_api::NoAnswer>> + Send + '_>>
            {
                Box::pin(async move {
                    let line = format!("{} {} key={}", request.method(), request.url(), request.headers().contains_key("authorization"));
                    self.0.lock().unwrap().push((line, call));
                    if call == falq_api::retry::Call::Cancel {
                        return Err(falq_api::NoAnswer("the relay hung up".into()));
                    }
                    let body = COMPLETED.as_bytes().to_vec();
                    Ok(reqwest::Response::from(http::Response::builder().status(200).body(body).unwrap()))
                })
            }
        }
        let recorder = std::sync::Arc::new(Recorder::default());
        let c = falq_api::client_for("http://127.0.0.1:9/api", reqwest::Client::new(), hooks().with_executor(recorder.clone()));
        let status = c.queue_status().owner("fal-ai").app("flux-1").request_id("r1").logs(1).send().await.expect("the executor's answer");
        assert_eq!(status.into_inner().status, QueueStatusKind::Completed);
        match c.queue_cancel().owner("fal-ai").app("flux-1").request_id("r1").send().await {
            Err(progenitor_client::Error::Custom(why)) => assert_eq!(why, "the relay hung up"),
            other => panic!("no answer must be the operation's error: {other:?}"),
        }
        // An input its schema refuses never reaches the executor.
        let bad = c
            .flux_1_dev_redux()
            .body(
                serde_json::from_value::<types::Flux1DevReduxInput>(json!({"image_url": "u", "num_images": 99}))
                    .expect("the type itself has no bounds"),
            )
            .send()
            .await;
        assert!(matches!(bad, Err(progenitor_client::Error::InvalidRequest(_))), "{bad:?}");
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                ("GET http://127.0.0.1:9/api/fal-ai/flux-1/requests/r1/status?logs=1 key=true".to_string(), falq_api::retry::Call::Status),
                ("PUT http://127.0.0.1:9/api/fal-ai/flux-1/requests/r1/cancel key=true".to_string(), falq_api::retry::Call::Cancel),
            ]
        );
    }

    #[tokio::test]
    async fn queue_calls_are_retried_and_a_paid_submit_is_not() {
        let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = n.clone();
        let server = CaptureServer::start(move |req| {
            let k = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match (req.method.as_str(), k) {
                ("GET", 0 | 1) => (503, r#"{"detail":"busy"}"#.to_string()),
                ("GET", _) => (200, COMPLETED.to_string()),
                _ => (502, r#"{"detail":"bad gateway"}"#.to_string()),
            }
        })
        .await;
        let c = falq_api::client_for(&server.base_url, reqwest::Client::new(), hooks());
        let status = c.queue_status().owner("fal-ai").app("flux-1").request_id("r1").send().await.expect("retried to success");
        assert_eq!(status.into_inner().status, QueueStatusKind::Completed);
        assert_eq!(server.received().len(), 3, "two 503s, then the answer");
        let submit = c.flux_1_dev_redux().body(types::Flux1DevReduxInput::builder().image_url("https://example.test/in.png")).send().await;
        assert!(submit.is_err());
        assert_eq!(
            server.received().iter().filter(|r| r.method == "POST").count(),
            1,
            "a 502 submit may have queued a job: not sent again"
        );
    }

    #[tokio::test]
    async fn every_endpoint_is_validated_by_its_operation_id() {
        let server = CaptureServer::start(|_| (200, fixture("seeds/submit.json"))).await;
        let c = falq_api::client_for(&server.base_url, reqwest::Client::new(), hooks());
        // The same field, different bounds per endpoint: schnell stops at 12 steps, dev at 50.
        let schnell: types::Flux1SchnellInput = serde_json::from_value(json!({"prompt": "p", "num_inference_steps": 20})).unwrap();
        let err = c.flux_1_schnell().body(schnell).send().await.expect_err("refused");
        assert!(err.to_string().contains("fal-ai/flux-1/schnell: invalid input, nothing was sent: num_inference_steps"), "{err}");
        let dev: types::Flux1DevInput = serde_json::from_value(json!({"prompt": "p", "num_inference_steps": 20})).unwrap();
        c.flux_1_dev().body(dev).send().await.expect("within dev's bounds");
        assert_eq!(server.received().len(), 1, "only the valid input was sent");
    }
}

#[tokio::test]
async fn the_generated_client_sends_fals_request_options() {
    let server = CaptureServer::start(|_| (200, fixture("seeds/submit.json"))).await;
    let c = client(&server.base_url);
    c.flux_1_schnell()
        .body(types::Flux1SchnellInput::builder().prompt("a kite"))
        .fal_webhook("http://127.0.0.1:9/hook")
        .x_fal_queue_priority("low")
        .x_fal_request_timeout(90i64)
        .send()
        .await
        .expect("submit");
    let r = &server.received()[0];
    assert_eq!(r.target, "/fal-ai/flux-1/schnell?fal_webhook=http%3A%2F%2F127.0.0.1%3A9%2Fhook");
    assert_eq!(r.header("x-fal-queue-priority"), Some("low"));
    assert_eq!(r.header("x-fal-request-timeout"), Some("90"));
}
