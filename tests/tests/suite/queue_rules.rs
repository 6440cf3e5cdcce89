//! The queue layer's rules, each against a focused mock server on 127.0.0.1: URL
//! rewrite with and without a path prefix, key confinement (a second listener stands
//! in for queue.fal.run and the media host), retries, no double submit, timeouts
//! that cancel, and the stream that falls back to polling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use falq::{CancelOnTimeout, Client, Config, EndpointMethods, Error, Logs, WaitMode, endpoints, types};
use serde_json::json;
use tests::{CaptureServer, Reply, fixture};

const ID: &str = "acf05732-7cb3-445b-9f39-fdaeccb1d730";

fn config(base: &str, mode: WaitMode) -> Config {
    tests::fast_config(base, mode)
}

fn input() -> types::Flux1DevReduxInput {
    serde_json::from_value(json!({"image_url": "https://example.test/in.png"})).unwrap()
}

/// A relay that answers like the seeds: URLs on `foreign` (standing in for queue.fal.run),
/// COMPLETED at once, and a result whose image lives on `foreign` too.
fn relay(foreign: String, prefix: &'static str) -> impl Fn(&tests::Captured) -> Reply + Send + Sync + 'static {
    move |req| {
        let urls = |status: &str| {
            json!({"status": status, "request_id": ID,
                "response_url": format!("{foreign}/fal-ai/flux-pro/requests/{ID}"),
                "status_url": format!("{foreign}/fal-ai/flux-pro/requests/{ID}/status"),
                "cancel_url": format!("{foreign}/fal-ai/flux-pro/requests/{ID}/cancel"),
                "logs": null, "metrics": {}, "queue_position": 0})
            .to_string()
        };
        let t = req.target.strip_prefix(prefix).unwrap_or("unprefixed");
        if req.method == "POST" && t == "/fal-ai/flux-1/dev/redux" {
            Reply::json(200, urls("IN_QUEUE"))
        } else if t.starts_with(&format!("/fal-ai/flux-pro/requests/{ID}/status/stream")) {
            Reply::json(404, r#"{"detail":"Not Found"}"#)
        } else if t.starts_with(&format!("/fal-ai/flux-pro/requests/{ID}/status")) {
            Reply::json(200, urls("COMPLETED"))
        } else if t == format!("/fal-ai/flux-pro/requests/{ID}") {
            let mut r: serde_json::Value = serde_json::from_str(&fixture("seeds/result-image.json")).unwrap();
            r["images"][0]["url"] = json!(format!("{foreign}/files/rabbit/out.png"));
            Reply::json(200, r.to_string())
        } else {
            Reply::json(404, format!(r#"{{"detail":"no route {}"}}"#, req.target))
        }
    }
}

async fn foreign_host() -> CaptureServer {
    CaptureServer::start_with(|req| {
        if req.target.starts_with("/files/") {
            Reply::bytes(200, "image/png", tests::PNG)
        } else {
            Reply::json(200, r#"{"status":"COMPLETED"}"#)
        }
    })
    .await
}

#[tokio::test]
async fn returned_urls_are_rewritten_and_the_key_stays_on_the_base() {
    for prefix in ["", "/api"] {
        let foreign = foreign_host().await;
        let base = CaptureServer::start_with(relay(foreign.base_url.clone(), prefix)).await;
        let client = Client::new(config(&format!("{}{prefix}/", base.base_url), WaitMode::Stream)).unwrap();
        let handle = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap();
        assert_eq!(
            handle.status_url().as_str(),
            format!("{}{prefix}/fal-ai/flux-pro/requests/{ID}/status", base.base_url),
            "the returned app is kept, the origin is the base"
        );
        let out: types::FluxImageOutput = handle.finish(|_| {}).await.expect("completes through the base");
        let dir = std::env::temp_dir().join(format!("falq-rewrite-{}-{}", std::process::id(), prefix.len()));
        let saved = client.download("fal-ai/flux-1/dev/redux", &serde_json::to_value(&out).unwrap(), &dir, ID).await.unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].path.extension().unwrap(), "png", "extension from the content type");
        std::fs::remove_dir_all(&dir).ok();

        let at_base = base.received();
        assert!(
            at_base.iter().all(|r| r.header("authorization") == Some("Bearer sk-relay-secret")),
            "every call to the base carries the key"
        );
        // Each request names the host it goes to, once (falq writes the base's own `Host`
        // over plain HTTP; the pool would otherwise).
        let names = |r: &tests::Captured| r.headers.iter().filter(|(k, _)| k == "host").map(|(_, v)| v.clone()).collect::<Vec<_>>();
        let authority = |url: &str| url.trim_start_matches("http://").to_string();
        for r in &at_base {
            assert_eq!(names(r), [authority(&base.base_url)], "{} {}", r.method, r.target);
        }
        assert!(at_base.iter().any(|r| r.target.contains("/status/stream")), "streaming was tried");
        assert!(
            at_base.iter().any(|r| r.target.starts_with(&format!("{prefix}/fal-ai/flux-pro/requests/{ID}/status?logs=1"))),
            "and fell back to polling"
        );
        let at_foreign = foreign.received();
        assert_eq!(
            at_foreign.len(),
            1,
            "only the media download went to the foreign host: {:?}",
            at_foreign.iter().map(|r| &r.target).collect::<Vec<_>>()
        );
        assert_eq!(at_foreign[0].target, "/files/rabbit/out.png");
        assert_eq!(at_foreign[0].header("authorization"), None, "media is fetched without the key");
        assert_eq!(names(&at_foreign[0]), [authority(&foreign.base_url)], "and names its own host");
    }
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let foreign = foreign_host().await;
    let target = format!("{}/steal", foreign.base_url);
    let base = CaptureServer::start_with(move |req| {
        if req.method == "POST" {
            Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#))
        } else {
            Reply::json(302, "").header("location", &target)
        }
    })
    .await;
    let client = Client::new(config(&base.base_url, WaitMode::Poll)).unwrap();
    let handle = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap();
    let err = handle.status(Logs::Omit).await.unwrap_err();
    assert!(matches!(err, Error::ForeignRedirect { .. }), "{err}");
    assert!(foreign.received().is_empty(), "nothing reached the other origin");
}

/// Redirects within the base's origin are followed, each hop with the key: a 307 or 308
/// asks the same again (a submit keeps its body), a 303 (and a 301 or 302 of a POST)
/// asks again with a GET.
#[tokio::test]
async fn a_redirect_within_the_base_is_followed_as_its_status_says() {
    let queued = format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#);
    let base = CaptureServer::start_with_base(move |req, base| match (req.method.as_str(), req.target.as_str()) {
        ("POST", "/fal-ai/flux-1/dev/redux") => Reply::json(307, "").header("location", &format!("{base}/moved/redux")),
        ("POST", "/moved/redux") => Reply::json(308, "").header("location", "/moved/again"),
        ("POST", "/moved/again") => Reply::json(200, queued.clone()),
        (_, t) if t.contains("/status") && !t.starts_with("/seen") => Reply::json(303, "").header("location", "/seen/status"),
        ("GET", "/seen/status") => Reply::json(200, format!(r#"{{"status":"IN_PROGRESS","request_id":"{ID}"}}"#)),
        _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
    })
    .await;
    let client = Client::new(config(&base.base_url, WaitMode::Poll)).unwrap();
    let handle = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap();
    assert_eq!(handle.request_id, ID);
    let status = handle.status(Logs::Omit).await.unwrap();
    assert_eq!(status.status, types::QueueStatusKind::InProgress);
    let got = base.received();
    let hops: Vec<(&str, &str)> = got.iter().map(|r| (r.method.as_str(), r.target.as_str())).collect();
    assert_eq!(&hops[..3], [("POST", "/fal-ai/flux-1/dev/redux"), ("POST", "/moved/redux"), ("POST", "/moved/again")]);
    assert_eq!(got[1].body, got[0].body, "a 307 sends the same body");
    assert_eq!(got[2].body, got[0].body, "and so does a 308");
    assert_eq!(got[3].method, "GET");
    assert_eq!(got[4].method, "GET", "a 303 asks with a GET");
    assert_eq!(got[4].target, "/seen/status");
    assert!(got[4].body.is_empty());
    for r in &got {
        assert_eq!(r.header("authorization"), Some("Bearer sk-relay-secret"), "{} {}", r.method, r.target);
    }
}

/// A relay over HTTPS whose certificate no trusted authority signed (the test's own
/// authority, which this process does not trust) is refused at the handshake: no call
/// reaches it, so neither does the key, and the submit says nothing was queued.
#[tokio::test(flavor = "multi_thread")]
async fn a_relay_whose_certificate_does_not_check_out_is_never_sent_the_key() {
    let relay = CaptureServer::start(|_| (200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#))).await;
    let front = tokio::task::block_in_place(|| tests::tls::TlsFront::start(&relay.base_url, "untrusted"));
    let client = Client::new(config(&front.base_url, WaitMode::Poll)).unwrap();
    let err = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!err.maybe_submitted(), "{err}");
    assert!(relay.received().is_empty(), "nothing passed the handshake");
}

/// A relay that redirects without end: falq follows a few hops within the base and then
/// answers what it got, a redirect it does not follow.
#[tokio::test]
async fn redirects_within_the_base_end() {
    let base = CaptureServer::start_with(|req| {
        let n: usize = req.target.rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        Reply::json(302, "").header("location", &format!("/loop/{}", n + 1))
    })
    .await;
    let client = Client::new(config(&base.base_url, WaitMode::Poll)).unwrap();
    let err = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap_err();
    assert!(matches!(&err, Error::Protocol { message, .. } if message.contains("redirects within the base URL")), "{err}");
    let got = base.received();
    assert!((2..=8).contains(&got.len()), "a few hops, not {}", got.len());
    assert!(got[1..].iter().all(|r| r.method == "GET"), "a 302 of a POST asks with a GET");
}

#[tokio::test]
async fn submit_is_retried_only_when_it_cannot_have_been_accepted() {
    // (replies to the successive submits, expected outcome, submits the server saw)
    let cases: Vec<(Vec<Reply>, bool, usize)> = vec![
        (
            vec![
                Reply::json(503, r#"{"detail":"busy","error_type":"runner_scheduling_failure"}"#),
                Reply::json(429, "{}").header("retry-after", "0"),
                Reply::json(200, fixture("seeds/submit.json")),
            ],
            true,
            3,
        ),
        (vec![Reply::json(502, r#"{"detail":"bad gateway"}"#), Reply::json(200, fixture("seeds/submit.json"))], false, 1),
        (vec![Reply::json(504, r#"{"detail":"timeout"}"#), Reply::json(200, fixture("seeds/submit.json"))], false, 1),
        (vec![Reply::reset(), Reply::json(200, fixture("seeds/submit.json"))], false, 1),
        (vec![Reply::json(500, r#"{"detail":"oops"}"#), Reply::json(200, fixture("seeds/submit.json"))], false, 1),
    ];
    for (replies, ok, submits) in cases {
        let n = Arc::new(AtomicUsize::new(0));
        let replies = Arc::new(replies);
        let (n2, r2) = (n.clone(), replies.clone());
        let server = CaptureServer::start_with(move |_| {
            let i = n2.fetch_add(1, Ordering::SeqCst);
            r2[i.min(r2.len() - 1)].clone()
        })
        .await;
        let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
        let result = client.submit::<endpoints::Flux1DevRedux>(&input()).await;
        assert_eq!(
            result.is_ok(),
            ok,
            "{:?} → {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>(),
            result.as_ref().err().map(ToString::to_string)
        );
        assert_eq!(
            server.count("POST", "/fal-ai/flux-1/dev/redux"),
            submits,
            "submits seen for {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        if let Err(Error::Network { maybe_submitted, .. }) = &result {
            assert!(*maybe_submitted, "a lost submit says the job may exist");
        }
    }
}

#[tokio::test]
async fn submit_to_a_dead_port_is_retried_then_fails_with_the_attempts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(config(&format!("http://{addr}"), WaitMode::Poll)).unwrap();
    let err = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap_err();
    match err {
        Error::Network { attempts, maybe_submitted, call, .. } => {
            assert_eq!((attempts, maybe_submitted, call), (4, false, falq::Call::Submit));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn status_result_and_cancel_survive_transient_faults() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = CaptureServer::start_with(move |req| {
        let i = n2.fetch_add(1, Ordering::SeqCst);
        match (req.method.as_str(), i % 2) {
            ("POST", _) => Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#)),
            (_, 1) if req.target.contains("/status") => Reply::json(503, r#"{"detail":"x"}"#),
            (_, 1) if req.method == "PUT" => Reply::json(429, "{}").header("retry-after", "0"),
            (_, 1) => Reply::reset(),
            ("PUT", _) => Reply::json(202, r#"{"status":"CANCELLATION_REQUESTED"}"#),
            (_, _) if req.target.contains("/status") => Reply::json(200, format!(r#"{{"status":"COMPLETED","request_id":"{ID}"}}"#)),
            _ => Reply::json(200, fixture("seeds/result-image.json")),
        }
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let handle = client.submit::<endpoints::Flux1DevRedux>(&input()).await.unwrap();
    assert_eq!(handle.status(Logs::Include).await.unwrap().status, types::QueueStatusKind::Completed);
    let out: types::FluxImageOutput = handle.result().await.unwrap();
    assert_eq!(out.seed, Some(920212137));
    assert_eq!(handle.cancel().await.unwrap(), types::CancelStatus::CancellationRequested);
    assert_eq!(server.count("POST", "/"), 1);
}

#[tokio::test]
async fn a_failed_job_surfaces_from_the_result_with_field_errors() {
    let server = CaptureServer::start_with(|req| match req.method.as_str() {
        "POST" => Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#)),
        _ if req.target.contains("/status") => Reply::json(200, format!(r#"{{"status":"COMPLETED","request_id":"{ID}"}}"#)),
        _ => Reply::json(422, r#"{"detail":[{"loc":["body","image_size","width"],"msg":"ensure this value is less than or equal to 14142","type":"less_than_equal"}]}"#),
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let err = client.flux_1_dev_redux(input()).await.unwrap_err();
    match &err {
        Error::JobFailed { status, request_id, field_errors, .. } => {
            assert_eq!(*status, 422);
            assert_eq!(request_id.as_deref(), Some(ID));
            assert_eq!(field_errors[0].field, "image_size.width");
            assert_eq!(field_errors[0].kind, "less_than_equal");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("image_size.width: ensure this value"), "{err}");
    assert_eq!(server.count("GET", &format!("/fal-ai/flux-1/requests/{ID}")), 2, "one status, one result: a failed result is not retried");
}

#[tokio::test]
async fn infrastructure_errors_are_typed() {
    let server = CaptureServer::start_with(|_| {
        Reply::json(504, r#"{"detail":"Request timed out","error_type":"request_timeout"}"#)
            .header("x-fal-error-type", "request_timeout")
            .header("x-fal-request-timeout-type", "user")
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let handle = client.handle("fal-ai/flux-1/dev/redux", ID).unwrap();
    match handle.status(Logs::Omit).await.unwrap_err() {
        Error::Infrastructure { error_type, status, request_id, .. } => {
            assert_eq!((error_type.as_str(), status, request_id.as_deref()), ("request_timeout", 504, Some(ID)));
        }
        other => panic!("{other}"),
    }
    assert_eq!(server.received().len(), 1, "a user start-deadline 504 is not retried");
}

#[tokio::test]
async fn a_timeout_cancels_the_remote_job_and_keeps_the_request_id() {
    for (policy, cancels) in [(CancelOnTimeout::Cancel, 1), (CancelOnTimeout::Leave, 0)] {
        let server = CaptureServer::start_with(|req| match req.method.as_str() {
            "POST" => Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}","queue_position":3}}"#)),
            "PUT" => Reply::json(202, r#"{"status":"CANCELLATION_REQUESTED"}"#),
            _ => Reply::json(202, format!(r#"{{"status":"IN_PROGRESS","request_id":"{ID}"}}"#)),
        })
        .await;
        let mut c = config(&server.base_url, WaitMode::Poll);
        c.wait.deadline = Some(Duration::from_millis(150));
        c.wait.cancel_on_timeout = policy;
        let client = Client::new(c).unwrap();
        let err = client.flux_1_dev_redux(input()).await.unwrap_err();
        match err {
            Error::Timeout { request_id, cancelled, .. } => {
                assert_eq!(request_id, ID);
                assert_eq!(cancelled, cancels == 1);
            }
            other => panic!("{other}"),
        }
        assert_eq!(server.count("PUT", &format!("/fal-ai/flux-1/requests/{ID}/cancel")), cancels);
    }
}

#[tokio::test]
async fn streaming_reports_updates_and_polling_is_the_fallback() {
    let events = [
        json!({"status": "IN_QUEUE", "request_id": ID, "queue_position": 1}),
        json!({"status": "IN_PROGRESS", "request_id": ID, "logs": [{"message": "step 1/4", "level": "INFO"}]}),
        json!({"status": "IN_PROGRESS", "request_id": ID, "logs": [{"message": "step 1/4", "level": "INFO"}, {"message": "step 2/4", "level": "INFO"}]}),
        json!({"status": "COMPLETED", "request_id": ID, "logs": [], "metrics": {"inference_time": 0.5}}),
    ];
    let sse: String = events.iter().map(|e| format!(": keep-alive\n\ndata: {e}\n\n")).collect();
    let server = CaptureServer::start_with(move |req| match req.method.as_str() {
        "POST" => Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#)),
        _ if req.target.contains("/status/stream") => Reply::sse(sse.clone()),
        _ => Reply::json(200, fixture("seeds/result-image.json")),
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Stream)).unwrap();
    let mut updates = Vec::new();
    let out = client
        .run_with::<endpoints::Flux1DevRedux>(&input(), |u| {
            updates.push((u.status, u.queue_position, u.new_logs.iter().map(|l| l.message.clone()).collect::<Vec<_>>()))
        })
        .await
        .unwrap();
    assert_eq!(out.images.len(), 1);
    use types::QueueStatusKind::*;
    assert_eq!(
        updates,
        vec![
            (InQueue, Some(1), vec![]),
            (InProgress, None, vec!["step 1/4".to_string()]),
            (InProgress, None, vec!["step 2/4".to_string()]),
            (Completed, None, vec![]),
        ]
    );
    assert_eq!(server.count("GET", "/fal-ai/flux-1/requests"), 2, "stream + result: no status polls");
}

#[tokio::test]
async fn bad_input_and_bad_ids_are_refused_before_sending() {
    let server = CaptureServer::start(|_| (200, fixture("seeds/submit.json"))).await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let bad: types::Flux1DevReduxInput = serde_json::from_value(json!({"image_url": "u", "num_images": 9})).unwrap();
    let err = client.submit::<endpoints::Flux1DevRedux>(&bad).await.unwrap_err();
    assert!(err.to_string().contains("num_images: 9 is greater than the maximum of 4"), "{err}");
    let err = client.submit_json("fal-ai/flux-1/dev/redux", &json!({"image_url": "u", "num_inference_steps": 0})).await.unwrap_err();
    assert!(err.to_string().contains("num_inference_steps: 0 is less than the minimum of 1"), "{err}");
    // A LoRA-like list of objects, a wrong type and a missing required field: all refused
    // before sending, each named with its path.
    let err = client.submit_json("fal-ai/flux-pro/kontext/multi", &json!({"image_urls": "x", "num_images": "two"})).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("image_urls:") && text.contains("num_images:") && text.contains("prompt:"), "{text}");
    for (endpoint, request) in [("fal-ai/flux-1/dev/redux", "../../admin"), ("fal-ai/flux-1/dev/redux", "a/b"), ("flux", "r1")] {
        assert!(matches!(client.handle(endpoint, request), Err(Error::InvalidId { .. })), "{endpoint} {request}");
    }
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_missing_or_foreign_app_url_is_rebuilt_from_the_app_id() {
    let server = CaptureServer::start_with(|req| match req.method.as_str() {
        "POST" => Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}","status_url":"not a url","response_url":"https://queue.fal.run/fal-ai/flux-1/requests/OTHER"}}"#)),
        _ => Reply::json(200, format!(r#"{{"status":"COMPLETED","request_id":"{ID}"}}"#)),
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let h = client
        .submit::<endpoints::FluxProKontextMax>(&serde_json::from_value(json!({"prompt": "p", "image_url": "u"})).unwrap())
        .await
        .unwrap();
    assert_eq!(h.status_url().path(), format!("/fal-ai/flux-pro/requests/{ID}/status"));
    assert_eq!(h.response_url().path(), format!("/fal-ai/flux-pro/requests/{ID}"), "a URL naming another request is not trusted");
    assert_eq!(h.cancel_url().path(), format!("/fal-ai/flux-pro/requests/{ID}/cancel"));
}

/// Status, its stream, result and cancel are sent by the generated operations (progenitor
/// builds them from the spec; they carry its `api-version` header, which nothing else
/// sends) over the client's transport (its key); a returned URL the operations cannot
/// express (a query, a shape other than `{owner}/{app}/requests/{id}`) is followed exactly
/// as the relay gave it.
#[tokio::test]
async fn queue_calls_go_through_the_generated_operations_unless_their_url_cannot_be_expressed() {
    for (label, tail) in [("spec-shaped", ""), ("with a query", "?sig=abc")] {
        let server = CaptureServer::start_with_base(move |req, base| {
            let urls = |status: &str| {
                json!({"status": status, "request_id": ID,
                    "status_url": format!("{base}/api/fal-ai/flux-pro/requests/{ID}/status{tail}"),
                    "response_url": format!("{base}/api/fal-ai/flux-pro/requests/{ID}{tail}"),
                    "cancel_url": format!("{base}/api/fal-ai/flux-pro/requests/{ID}/cancel{tail}")})
                .to_string()
            };
            let path = req.target.split('?').next().unwrap_or_default();
            match (req.method.as_str(), path.strip_prefix(&format!("/api/fal-ai/flux-pro/requests/{ID}"))) {
                ("POST", _) => Reply::json(200, urls("IN_QUEUE")),
                ("GET", Some("/status/stream")) => Reply::sse(format!("data: {}\n\n", urls("COMPLETED"))),
                ("GET", Some("/status")) => Reply::json(200, urls("COMPLETED")),
                ("GET", Some("")) => Reply::json(200, fixture("seeds/result-image.json")),
                ("PUT", Some("/cancel")) => Reply::json(400, r#"{"status":"ALREADY_COMPLETED"}"#),
                _ => Reply::json(404, r#"{"detail":"Not Found"}"#),
            }
        })
        .await;
        let client = Client::new(config(&format!("{}/api", server.base_url), WaitMode::Stream)).unwrap();
        let h = client
            .submit::<endpoints::FluxProKontextMax>(&serde_json::from_value(json!({"prompt": "p", "image_url": "u"})).unwrap())
            .await
            .unwrap();
        let before = server.received().len();
        assert_eq!(h.wait(|_| {}).await.unwrap().status, types::QueueStatusKind::Completed, "{label}: streamed");
        assert_eq!(h.status(Logs::Include).await.unwrap().status, types::QueueStatusKind::Completed, "{label}");
        let out: types::FluxImageOutput = h.result().await.unwrap();
        assert_eq!(out.images.len(), 1, "{label}");
        assert_eq!(h.cancel().await.unwrap(), types::CancelStatus::AlreadyCompleted, "{label}");
        let calls = server.received()[before..].to_vec();
        assert_eq!(calls.len(), 4, "{label}: {calls:?}");
        assert!(calls[0].target.contains("/status/stream"), "{label}: {calls:?}");
        for c in &calls {
            assert!(c.header("authorization").is_some_and(|a| a.ends_with(" sk-relay-secret")), "{label}: the key reaches the base: {c:?}");
            if tail.is_empty() {
                assert!(c.header("api-version").is_some(), "{label}: sent by the generated operation: {c:?}");
            } else {
                assert!(c.target.ends_with(tail) || c.target.contains(&format!("{tail}&")), "{label}: followed as given: {c:?}");
            }
        }
        let status_call = &calls[1];
        assert!(status_call.target.contains("logs=1"), "{label}: logs asked for: {}", status_call.target);
    }
}

/// One road: a JSON input (the CLI's, `run_many`'s), local files included, is submitted
/// through its endpoint's generated operation (its `api-version` mark) as the caller gave
/// it; only an input its type cannot hold as it is goes by hand, whole, through the same
/// transport and key.
#[tokio::test]
async fn json_submits_go_through_the_generated_operation_and_lose_nothing() {
    let server = CaptureServer::start_with(|req| match req.method.as_str() {
        "POST" => Reply::json(200, format!(r#"{{"status":"IN_QUEUE","request_id":"{ID}"}}"#)),
        _ if req.target.contains("/status") => Reply::json(200, format!(r#"{{"status":"COMPLETED","request_id":"{ID}"}}"#)),
        _ => Reply::json(200, fixture("seeds/result-image.json")),
    })
    .await;
    let client = Client::new(config(&server.base_url, WaitMode::Poll)).unwrap();
    let redux = "fal-ai/flux-1/dev/redux";
    let given = json!({"image_url": "https://example.test/in.png", "num_images": 2, "seed": null});
    client.submit_json(redux, &given).await.unwrap();
    let png = std::env::temp_dir().join(format!("falq-road-{}.png", std::process::id()));
    std::fs::write(&png, tests::PNG).unwrap();
    let file = falq::files::LocalFile::new(0, &png).unwrap();
    let with_file = json!({"image_url": file.placeholder});
    client.submit_json_with_files(redux, &with_file, std::slice::from_ref(&file), &Default::default()).await.unwrap();
    let many: Vec<_> = futures_util::StreamExt::collect(client.run_many_json(
        redux,
        (0..3).map(|n| json!({"image_url": format!("https://example.test/{n}.png")})),
        falq::JobLimit::fixed(2),
        Default::default(),
    ))
    .await;
    assert!(many.iter().all(|f| f.result.is_ok()), "{:?}", many.iter().map(|f| f.result.as_ref().err()).collect::<Vec<_>>());
    let calls = server.received();
    let submits: Vec<_> = calls.iter().filter(|c| c.method == "POST").collect();
    assert_eq!(submits.len(), 5);
    for c in &calls {
        assert!(c.header("api-version").is_some(), "a generated operation: {} {}", c.method, c.target);
        assert!(c.header("authorization").is_some(), "{c:?}");
    }
    assert_eq!(submits[0].json(), json!({"image_url": "https://example.test/in.png", "num_images": 2}), "as given; null is unset");
    let sent = submits[1].json();
    assert!(sent["image_url"].as_str().is_some_and(|u| u.starts_with("data:image/png;base64,")), "the file, spliced in: {sent}");
    std::fs::remove_file(&png).ok();
}

/// One budget of attempts per call: a relay that answers 503 and a body cut short by
/// turns gets the retry policy's attempts in all for a status call and for a download (a
/// retry of the send, a read asked again and a download started again all count), never
/// attempts × reads.
#[tokio::test]
async fn every_retry_of_a_call_counts_against_one_budget() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let server = CaptureServer::start_with(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            Reply::json(503, r#"{"detail":"busy"}"#)
        } else {
            Reply::bytes(200, "image/png", tests::PNG).cut_at(12)
        }
    })
    .await;
    let config = config(&server.base_url, WaitMode::Poll);
    let budget = config.retry.max_attempts as usize;
    let client = Client::new(config).unwrap();
    let handle = client.handle("fal-ai/flux-1/dev/redux", ID).unwrap();
    let status = handle.status(Logs::Omit).await;
    assert!(matches!(status, Err(Error::Network { attempts, .. }) if attempts as usize == budget), "{status:?}");
    assert_eq!(server.count("GET", "/fal-ai/flux-1/requests/"), budget, "the status call's attempts, all told");
    let dir = std::env::temp_dir().join(format!("falq-budget-{}", std::process::id()));
    let result = json!({"images": [{"url": format!("{}/files/a.png", server.base_url)}]});
    let saved = client.download("fal-ai/flux-1/dev/redux", &result, &dir, "a").await;
    assert!(matches!(&saved, Err(Error::Download { message, .. }) if message.contains(&format!("after {budget} attempts"))), "{saved:?}");
    assert_eq!(server.count("GET", "/files/"), budget, "the download's attempts, all told");
    assert!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0, "nothing left behind");
    std::fs::remove_dir_all(&dir).ok();
}

/// A download ended by anything, its future dropped mid-body included (a deadline, a
/// cancelled run), leaves nothing in the output directory: no part file, no output.
#[tokio::test]
async fn a_download_cut_off_mid_body_leaves_nothing_on_disk() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        // A PNG announced whole, its first bytes sent, the rest never.
        let head = format!("HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\n\r\n", tests::PNG.len() + 4096);
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&tests::PNG[..16]).await.unwrap();
        s.flush().await.unwrap();
        let _ = started_tx.send(());
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let client = Client::new(tests::fast_config(&format!("http://{addr}"), WaitMode::Poll)).unwrap();
    let dir = std::env::temp_dir().join(format!("falq-cut-off-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let result = serde_json::from_str::<serde_json::Value>(&tests::image_output(&format!("http://{addr}/files/out.png"))).unwrap();
    // Boxed, so that dropping it drops the download itself.
    let mut download = Box::pin(client.download("fal-ai/flux-1/dev/redux", &result, &dir, "cut"));
    // The first bytes are on their way; once the part file holds them, drop the download.
    tokio::select! {
        r = &mut download => panic!("the download ended on its own: {r:?}"),
        _ = started_rx => {}
    }
    let part = dir.join("cut-0.part");
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            tokio::select! {
                r = &mut download => panic!("the download ended on its own: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            if std::fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
                break;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "the part file never held the first bytes");
    drop(download);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(left.is_empty(), "left on disk: {left:?}");
}
