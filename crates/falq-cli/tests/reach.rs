//! How the real `falq` binary reaches a relay: over HTTPS, checking the relay's
//! certificate against the platform's authorities, and through the user's proxy
//! (`HTTP_PROXY`, minus `NO_PROXY`, read as reqwest reads them). falq's own sender speaks to
//! relays directly and hands every call to a relay a proxy covers to reqwest, which speaks
//! to proxies. Lost otherwise: a user whose only way out is a proxy could not reach the
//! relay at all, and a relay's HTTPS is what keeps the key secret.

use std::process::Command;
use std::sync::{Arc, OnceLock};

use serde_json::json;
use tests::{CaptureServer, Captured, Reply};

mod common;
use common::Scratch;

const ID: &str = "5f0c1c2d-0000-4000-8000-0000000000bb";

/// A relay known to its clients as `public` (its own address while that is unset): the
/// job completes at once, and its image is on the relay's host. Answers requests whose
/// target is the path alone or `public` + path (a proxy is asked in absolute form).
fn relay(public: Arc<OnceLock<String>>) -> impl Fn(&Captured, &str) -> Reply + Send + Sync + 'static {
    move |req, own| {
        let at = public.get().map_or(own, String::as_str);
        let t = req.target.strip_prefix(at).unwrap_or(&req.target);
        let urls = |state: &str| {
            json!({"status": state, "request_id": ID,
                "response_url": format!("{at}/fal-ai/flux-1/requests/{ID}"),
                "status_url": format!("{at}/fal-ai/flux-1/requests/{ID}/status"),
                "cancel_url": format!("{at}/fal-ai/flux-1/requests/{ID}/cancel"), "queue_position": 0})
            .to_string()
        };
        if req.method == "POST" && t == "/fal-ai/flux-1/dev/redux" {
            Reply::json(200, urls("IN_QUEUE"))
        } else if t.contains("/status/stream") {
            Reply::json(404, r#"{"detail":"Not Found"}"#)
        } else if t.contains("/status") {
            Reply::json(200, urls("COMPLETED"))
        } else if t.starts_with("/files/") {
            Reply::bytes(200, "image/png", tests::PNG)
        } else if t.starts_with(&format!("/fal-ai/flux-1/requests/{ID}")) {
            Reply::json(
                200,
                json!({"images": [{"url": format!("{at}/files/out.png"), "content_type": "image/png"}], "seed": 7}).to_string(),
            )
        } else {
            Reply::json(404, r#"{"detail":"Not Found"}"#)
        }
    }
}

/// `falq run` of one redux job against `base`, with no proxy settings but `env`'s.
fn run(home: &Scratch, base: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c: Command = common::falq(home);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"] {
        c.env_remove(var);
    }
    c.env("FAL_BASE_URL", base).env("FAL_KEY", "sk-test").envs(env.iter().copied());
    c.args(["run", "fal-ai/flux-1/dev/redux", "--wait", "poll", "--set", "image_url=https://example.test/in.png", "--out", "imgs"]);
    common::run(&mut c)
}

/// What the saved outputs directory holds.
fn saved(home: &Scratch) -> usize {
    std::fs::read_dir(home.path("imgs")).map(Iterator::count).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_over_https_is_reached_when_its_certificate_checks_out() {
    let public = Arc::new(OnceLock::new());
    let relay_server = CaptureServer::start_with_base(relay(public.clone())).await;
    let front = tests::tls::TlsFront::start(&relay_server.base_url, "reach");
    public.set(front.base_url.clone()).unwrap();
    let home = Scratch::new("https");
    let (base, ca) = (front.base_url.clone(), front.authority.ca.display().to_string());
    let ((code, _, err), home) =
        tokio::task::spawn_blocking(move || (run(&home, &base, &[("SSL_CERT_FILE", ca.as_str())]), home)).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(saved(&home), 1, "the output, fetched over HTTPS too, was saved");
    let got = relay_server.received();
    assert!(got.iter().any(|r| r.method == "POST" && r.header("authorization") == Some("Bearer sk-test")), "the key went over TLS");
    assert!(got.iter().any(|r| r.target == "/files/out.png" && r.header("authorization").is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_to_a_relay_behind_a_proxy_goes_through_it() {
    // The relay's host does not resolve: only the proxy can reach it.
    const BASE: &str = "http://relay.invalid";
    let proxy = CaptureServer::start_with_base(relay(Arc::new(OnceLock::from(BASE.to_string())))).await;
    let home = Scratch::new("proxy-through");
    let proxy_url = proxy.base_url.clone();
    let ((code, _, err), home) =
        tokio::task::spawn_blocking(move || (run(&home, BASE, &[("HTTP_PROXY", proxy_url.as_str())]), home)).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let got = proxy.received();
    let targets: Vec<&String> = got.iter().map(|r| &r.target).collect();
    for r in &got {
        assert!(r.target.starts_with(BASE), "asked of the proxy in absolute form: {}", r.target);
    }
    let api: Vec<&Captured> = got.iter().filter(|r| !r.target.contains("/files/")).collect();
    assert!(api.len() >= 3, "submit, status and result went through the proxy: {targets:?}");
    assert!(api.iter().any(|r| r.method == "POST"), "{targets:?}");
    for r in &api {
        assert_eq!(r.header("authorization"), Some("Bearer sk-test"), "{}", r.target);
    }
    let media: Vec<&Captured> = got.iter().filter(|r| r.target.contains("/files/")).collect();
    assert_eq!(media.len(), 1, "the output was fetched through the proxy too: {targets:?}");
    assert_eq!(media[0].header("authorization"), None, "media is fetched without the key");
    assert_eq!(saved(&home), 1, "the output was saved");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_the_proxy_does_not_cover_is_asked_directly() {
    let relay_server = CaptureServer::start_with_base(relay(Arc::default())).await;
    let proxy = CaptureServer::start(|_| (502, r#"{"detail":"the proxy was asked"}"#.into())).await;
    let home = Scratch::new("proxy-bypass");
    let base = relay_server.base_url.clone();
    let proxy_url = proxy.base_url.clone();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || run(&home, &base, &[("HTTP_PROXY", proxy_url.as_str()), ("NO_PROXY", "127.0.0.1")]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(proxy.received().is_empty(), "NO_PROXY covers the relay: nothing went to the proxy");
    let got = relay_server.received();
    assert!(got.iter().any(|r| r.method == "POST" && r.target == "/fal-ai/flux-1/dev/redux"), "the relay was asked directly");
    assert!(got.iter().any(|r| r.target == "/files/out.png"));
}

/// A `falq sim` serving HTTPS (jobs of `run_time`, no queueing) with a certificate of its
/// own authority, and a scratch home for the clients.
fn https_sim(name: &str, run_time: &str) -> (tests::tls::TestAuthority, Scratch, common::SimProcess) {
    let authority = tests::tls::TestAuthority::new(name);
    let home = Scratch::new(&format!("https-{name}"));
    let (cert, key) = (authority.cert.display().to_string(), authority.key.display().to_string());
    let sim = common::SimProcess::start(&home, &["--queue-delay", "0s", "--run-time", run_time, "--tls-cert", &cert, "--tls-key", &key]);
    (authority, home, sim)
}

/// `falq sim` serves HTTPS as real relays do (ALPN offering HTTP/2): a client that trusts
/// its authority runs a job through it end to end; one that does not is refused at the
/// handshake, and says the job was never queued.
#[test]
fn the_simulator_serves_https() {
    let (authority, home, sim) = https_sim("sim", "10ms");
    assert!(sim.base_url.starts_with("https://127.0.0.1:"), "{}", sim.base_url);
    let (code, _, err) = run(&home, &sim.base_url, &[("SSL_CERT_FILE", authority.ca.display().to_string().as_str())]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(saved(&home), 1, "the output, downloaded over HTTPS too, was saved");
    let stranger = Scratch::new("sim-https-untrusted");
    let (code, _, err) = run(&stranger, &sim.base_url, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("not queued") || err.contains("nothing was queued"), "{err}");
}

#[test]
fn the_simulator_refuses_a_certificate_it_cannot_read() {
    let home = Scratch::new("sim-bad-cert");
    std::fs::write(home.path("cert.pem"), "not a certificate").unwrap();
    std::fs::write(home.path("key.pem"), "not a key").unwrap();
    let (cert, key) = (home.path("cert.pem").display().to_string(), home.path("key.pem").display().to_string());
    let mut c = common::falq(&home);
    c.args(["sim", "--addr", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key]);
    let (code, out, err) = common::run(&mut c);
    assert_eq!(code, 2, "{err}");
    assert!(!out.contains("listening"), "it never said it listens: {out}");
    assert!(err.contains("TLS certificate"), "{err}");
    let mut missing = common::falq(&home);
    missing.args(["sim", "--addr", "127.0.0.1:0", "--tls-cert", &cert]);
    let (code, _, err) = common::run(&mut missing);
    assert_eq!(code, 2, "--tls-cert without --tls-key: {err}");
}

/// A batch over HTTPS to a relay whose ALPN picks HTTP/2: its first call learns the
/// protocol on a connection of its own, and every call after it shares that connection
/// (one more carries the downloads, whose client never holds the key). Calls sent before
/// the first answer would each open a connection and a TLS session.
#[test]
fn a_burst_over_https_learns_http2_on_one_connection() {
    let (authority, home, sim) = https_sim("burst", "300ms");
    let lines = 24;
    let text: String = (0..lines).map(|i| format!("{}\n", json!({"prompt": format!("a lighthouse #{i}")}))).collect();
    std::fs::write(home.path("in.jsonl"), text).unwrap();
    let mut c = common::falq(&home);
    c.env("FAL_KEY", "k").env("SSL_CERT_FILE", &authority.ca);
    c.args(["batch", "fal-ai/flux-1/schnell", "in.jsonl", "--base-url", &sim.base_url]);
    let (code, _, err) = common::run(&mut c);
    assert_eq!(code, 0, "{err}");
    let counters: serde_json::Value = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&authority.ca).unwrap()).unwrap();
        let http = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
        http.get(format!("{}/_sim/counters?per_job=0", sim.base_url)).send().await.unwrap().json().await.unwrap()
    });
    assert_eq!(counters["jobs"]["succeeded"], lines, "{counters}");
    // The batch's API calls, its downloads, and this test's own call for the counters.
    let connections = counters["connections"].as_u64().unwrap();
    assert!(connections <= 3, "{lines} jobs over HTTP/2 opened {connections} connections");
}
