//! Helpers: a simulator with short delays, and a client that speaks its mode's auth.

use std::time::Duration;

use falq_sim::{Sim, SimConfig, SimMode, SimTiming};
use serde_json::{Value, json};

/// The endpoint most tests use: text to image, sized by aspect ratio.
pub const TEXT: &str = "fal-ai/flux-pro/kontext/text-to-image";
/// An endpoint sized by `image_size`, deriving from `image_url`.
pub const REDUX: &str = "fal-ai/flux-1/dev/redux";

/// Short delays: jobs complete within tens of milliseconds.
pub fn fast() -> SimConfig {
    SimConfig {
        timing: SimTiming {
            queue_delay: Duration::from_millis(10),
            run_time: Duration::from_millis(40),
            workers: 8,
            log_lines: 2,
            ..SimTiming::default()
        },
        ..SimConfig::default()
    }
}

/// A config whose jobs stay queued (an hour's queue delay).
pub fn stuck_in_queue() -> SimConfig {
    let mut config = fast();
    config.timing.queue_delay = Duration::from_secs(3600);
    config
}

/// A config whose jobs start at once and run for an hour.
pub fn stuck_in_progress() -> SimConfig {
    let mut config = fast();
    config.timing.queue_delay = Duration::ZERO;
    config.timing.run_time = Duration::from_secs(3600);
    config
}

/// A small picture's input.
pub fn small_text_input(seed: u64) -> Value {
    json!({ "prompt": "a lighthouse", "seed": seed, "aspect_ratio": "1:1" })
}

/// A small redux input with an explicit size.
pub fn small_redux_input(image_url: &str, seed: u64) -> Value {
    json!({ "image_url": image_url, "seed": seed, "image_size": { "width": 64, "height": 48 } })
}

/// A client for one simulator.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

/// Starts a simulator and a client with a valid key for its mode.
pub async fn start(config: SimConfig) -> (Sim, Api) {
    let sim = Sim::spawn(config).await.expect("the simulator starts");
    let key = sim.config().api_key.clone().unwrap_or_else(|| "test-key".into());
    let scheme = match sim.mode() {
        SimMode::Relay => "Bearer",
        SimMode::Direct => "Key",
    };
    let api = Api { http: reqwest::Client::new(), base: sim.base_url().to_string(), auth: format!("{scheme} {key}") };
    (sim, api)
}

impl Api {
    /// A URL the simulator answered, moved onto its base as a relay client must.
    pub fn local(&self, url: &str) -> String {
        url.replace("https://queue.fal.run", &self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/{path}", self.base))
            .header("authorization", &self.auth)
            .json(body)
            .send()
            .await
            .expect("submit answered")
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(self.local(url)).header("authorization", &self.auth).send().await.expect("get answered")
    }

    pub async fn put(&self, url: &str) -> reqwest::Response {
        self.http.put(self.local(url)).header("authorization", &self.auth).send().await.expect("put answered")
    }

    /// Submits and answers the submit body, which must be a 200.
    pub async fn submit(&self, endpoint: &str, body: &Value) -> Value {
        let response = self.post(endpoint, body).await;
        assert_eq!(response.status(), 200, "submit of {body}");
        response.json().await.unwrap()
    }

    /// Polls the status until it reads `wanted`; answers that status body.
    pub async fn wait_for(&self, submitted: &Value, wanted: &str) -> Value {
        let url = format!("{}?logs=1", submitted["status_url"].as_str().unwrap());
        for _ in 0..2000 {
            let response = self.get(&url).await;
            if response.status() == 200 || response.status() == 202 {
                let body: Value = response.json().await.unwrap();
                if body["status"] == wanted {
                    return body;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} never reached {wanted}", submitted["request_id"]);
    }

    /// Submits, waits for completion, answers the result response.
    pub async fn run(&self, endpoint: &str, body: &Value) -> (Value, reqwest::Response) {
        let submitted = self.submit(endpoint, body).await;
        self.wait_for(&submitted, "COMPLETED").await;
        let result = self.get(submitted["response_url"].as_str().unwrap()).await;
        (submitted, result)
    }

    /// Submits, waits, answers the output (which must be a 200).
    pub async fn output(&self, endpoint: &str, body: &Value) -> Value {
        let (_, result) = self.run(endpoint, body).await;
        assert_eq!(result.status(), 200);
        result.json().await.unwrap()
    }

    /// Opens the job's status stream, reads until `marker` has arrived, cancels the job
    /// (asserting 202), and answers all the stream sent until the server closed it.
    pub async fn stream_cancelled_after(&self, submitted: &Value, marker: &str) -> String {
        use futures_util::StreamExt as _;
        let url = format!("{}/stream", submitted["status_url"].as_str().unwrap());
        let mut chunks = self.get(&url).await.bytes_stream();
        let mut text = String::new();
        while !text.contains(marker) {
            text.push_str(&String::from_utf8_lossy(&chunks.next().await.unwrap().unwrap()));
        }
        assert_eq!(self.put(submitted["cancel_url"].as_str().unwrap()).await.status(), 202);
        while let Some(chunk) = chunks.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        text
    }

    /// Downloads a file with no Authorization header.
    pub async fn download(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.expect("media answered")
    }
}

/// A solid PNG as a data URL.
pub fn png_data_url(rgb: [u8; 3]) -> String {
    use base64::Engine as _;
    let image = image::RgbImage::from_pixel(24, 12, image::Rgb(rgb));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes.into_inner()))
}

/// The values at a JSON pointer with `*` for every item of an array.
pub fn at_pointer<'a>(v: &'a Value, pointer: &str) -> Vec<&'a Value> {
    let mut here = vec![v];
    for part in pointer.split('/').skip(1) {
        here = here
            .into_iter()
            .flat_map(|v| match part {
                "*" => v.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default(),
                key => v.get(key).into_iter().collect(),
            })
            .collect();
    }
    here
}
