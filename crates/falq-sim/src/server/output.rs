//! What a completed job answers: its result (images, or a video for a video endpoint) and
//! the media files behind its URLs, encoded once and cached.

use super::*;

/// Encoded media kept for repeated downloads, oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct MediaCache {
    files: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
    capacity: usize,
}

impl MediaCache {
    pub(crate) fn new(capacity: usize) -> MediaCache {
        MediaCache { capacity, ..MediaCache::default() }
    }

    fn get(&self, name: &str) -> Option<Bytes> {
        self.files.get(name).cloned()
    }

    fn insert(&mut self, name: String, file: Bytes) {
        if file.len() > self.capacity || self.files.contains_key(&name) {
            return;
        }
        while self.bytes + file.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(f) = self.files.remove(&old) {
                self.bytes -= f.len();
            }
        }
        self.bytes += file.len();
        self.order.push_back(name.clone());
        self.files.insert(name, file);
    }
}

/// What a result call needs, copied out of the lock.
pub(super) enum ResultState {
    Pending,
    Cancelled,
    TimedOut,
    Failed(Value),
    Done { job: JobOutput, inference_time: f64 },
}

/// The parts of a completed job its output is drawn from.
#[derive(Clone)]
pub(super) struct JobOutput {
    pub(super) id: String,
    pub(super) base: Arc<str>,
    pub(super) plan: OutputPlan,
    pub(super) seed: serde_json::Number,
    pub(super) image_seed: u64,
}

/// Where a job's result stands, copied out of the lock.
fn result_state(job: &Job) -> ResultState {
    match (&job.phase, &job.plan) {
        (Phase::Completed { outcome: Outcome::Cancelled, .. }, _) => ResultState::Cancelled,
        (Phase::Completed { outcome: Outcome::TimedOut, .. }, _) => ResultState::TimedOut,
        (Phase::Completed { outcome: Outcome::Failed(item), .. }, _) => ResultState::Failed(json!({ "detail": [item] })),
        (Phase::Completed { outcome: Outcome::Success, inference_time, .. }, Ok(plan)) => ResultState::Done {
            job: JobOutput {
                id: job.id.clone(),
                base: job.base.clone(),
                plan: plan.clone(),
                seed: job.seed.clone(),
                image_seed: job.image_seed,
            },
            inference_time: *inference_time,
        },
        _ => ResultState::Pending,
    }
}

/// A result's status and body, as the result call answers them.
async fn result_answer(shared: &Shared, state: ResultState) -> (StatusCode, Value, Option<String>) {
    match state {
        ResultState::Pending => (StatusCode::BAD_REQUEST, json!({ "detail": "Request is still in progress" }), None),
        ResultState::Cancelled => {
            (StatusCode::BAD_REQUEST, json!({ "detail": "Request was cancelled", "error_type": "request_cancelled" }), None)
        }
        ResultState::TimedOut => {
            (StatusCode::GATEWAY_TIMEOUT, json!({ "detail": "Request timed out", "error_type": "request_timeout" }), None)
        }
        ResultState::Failed(body) => (StatusCode::UNPROCESSABLE_ENTITY, body, None),
        ResultState::Done { job, inference_time } => match output_json(shared, &job, inference_time).await {
            Ok(output) => (StatusCode::OK, output, Some(job.id)),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, json!({ "detail": e.to_string(), "error_type": "internal_error" }), None),
        },
    }
}

pub(super) async fn result(shared: &Arc<Shared>, app_path: &str, request_id: &str) -> Reply {
    let (seq, state) = {
        let core = shared.core();
        let Some(seq) = lookup(&core, app_path, request_id) else {
            return not_found();
        };
        let Some(job) = core.job(seq) else {
            return not_found();
        };
        (seq, result_state(job))
    };
    let timed_out = matches!(state, ResultState::TimedOut);
    let (status, body, id) = result_answer(shared, state).await;
    let mut reply = Reply::json(status, &body);
    // Like fal, a result names its request in `x-fal-request-id` (fal-js reads it).
    if let Some(id) = id {
        reply = reply.header(HeaderName::from_static("x-fal-request-id"), &id);
    }
    // A job that missed its own start deadline: the caller's timeout, not to be retried.
    if timed_out {
        reply = reply
            .header(HeaderName::from_static("x-fal-error-type"), "request_timeout")
            .header(HeaderName::from_static("x-fal-request-timeout-type"), "user");
    }
    reply.for_job(seq)
}

/// POSTs fal's webhook payload for a completed job (`{request_id, gateway_request_id,
/// status: "OK"|"ERROR", payload, error}`) to its `fal_webhook` URL. Only loopback URLs
/// are called: the simulator reaches nothing beyond this machine.
pub(super) async fn deliver_webhook(shared: Arc<Shared>, seq: u64) {
    let (url, id, state) = {
        let core = shared.core();
        let Some(job) = core.job(seq) else { return };
        let Some(url) = job.webhook.clone() else { return };
        (url, job.id.clone(), result_state(job))
    };
    let (status, payload, _) = result_answer(&shared, state).await;
    let ok = status == StatusCode::OK;
    let body = json!({
        "request_id": id,
        "gateway_request_id": id,
        "status": if ok { "OK" } else { "ERROR" },
        "payload": payload,
        "error": if ok { Value::Null } else { json!(format!("Invalid status code: {}", status.as_u16())) },
    });
    if let Err(e) = post_loopback(&url, &body).await {
        tracing::warn!(%url, request_id = %id, error = %e, "webhook not delivered");
    }
}

/// One HTTP/1.1 POST of JSON to a loopback `http://` URL.
async fn post_loopback(url: &str, body: &Value) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// webhooks are called".into());
    }
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!("{host} is not a loopback host"));
    }
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let authority = uri.authority().map_or_else(|| host.to_string(), |a| a.to_string());
    let request = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() { Ok(()) } else { Err(format!("the webhook answered HTTP {}", response.status())) }
}

/// The output a completed job answers, FluxImageOutput-shaped; in sync mode the images are
/// drawn now and inlined as data URIs.
/// The video every video job produces (see `assets/README.md`).
pub(super) const SAMPLE_VIDEO: &[u8] = include_bytes!("../../assets/sample.mp4");

/// The output of a video endpoint: `{video: File, seed}` (relay doc 002).
pub(super) fn video_output_json(job: &JobOutput) -> Value {
    let name = format!("{}-0.mp4", job.id);
    let url = if job.plan.sync_mode {
        format!("data:video/mp4;base64,{}", base64::engine::general_purpose::STANDARD.encode(SAMPLE_VIDEO))
    } else {
        format!("{}/media/{name}", job.base)
    };
    json!({
        "video": { "url": url, "content_type": "video/mp4", "file_name": name, "file_size": SAMPLE_VIDEO.len() },
        "seed": job.seed,
    })
}

pub(super) async fn output_json(shared: &Shared, job: &JobOutput, inference_time: f64) -> Result<Value, SimError> {
    if job.plan.video {
        return Ok(video_output_json(job));
    }
    let plan = &job.plan;
    let format = plan.format;
    let mut images = Vec::with_capacity(plan.num_images as usize);
    for index in 0..plan.num_images {
        let name = media_name(&job.id, index, format);
        let mut image = Map::new();
        if plan.sync_mode {
            let file = media_bytes(shared, &name, job, index).await?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&file);
            image.insert("url".into(), json!(format!("data:{};base64,{encoded}", format.content_type())));
            image.insert("file_size".into(), json!(file.len()));
        } else {
            image.insert("url".into(), json!(format!("{}/media/{name}", job.base)));
        }
        image.insert("width".into(), json!(plan.width));
        image.insert("height".into(), json!(plan.height));
        image.insert("content_type".into(), json!(format.content_type()));
        image.insert("file_name".into(), json!(name));
        images.push(Value::Object(image));
    }
    Ok(json!({
        "images": images,
        "timings": { "inference": inference_time },
        "seed": job.seed,
        "has_nsfw_concepts": vec![false; plan.num_images as usize],
        "prompt": plan.prompt.clone().unwrap_or_default(),
    }))
}

pub(super) fn media_name(request_id: &str, index: u32, format: ImageFormat) -> String {
    format!("{request_id}-{index}.{}", format.extension())
}

/// `{request_id}-{index}.{ext}` split into its parts.
pub(super) fn parse_media_name(name: &str) -> Option<(&str, u32, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (id, index) = stem.rsplit_once('-')?;
    Some((id, index.parse().ok()?, ext))
}

/// The encoded bytes of one image, from the cache or drawn now (off the async threads).
pub(super) async fn media_bytes(shared: &Shared, name: &str, job: &JobOutput, index: u32) -> Result<Bytes, SimError> {
    if job.plan.video {
        return Ok(Bytes::from_static(SAMPLE_VIDEO));
    }
    if let Some(file) = shared.media().get(name) {
        return Ok(file);
    }
    let plan = job.plan.clone();
    let seed = mix64(job.image_seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let file = tokio::task::spawn_blocking(move || render_file(plan.width, plan.height, seed, plan.source.as_deref(), plan.format))
        .await
        .map_err(|e| SimError::Image(e.to_string()))??;
    let file = Bytes::from(file);
    shared.media().insert(name.to_string(), file.clone());
    Ok(file)
}

pub(super) async fn media(shared: &Arc<Shared>, name: &str) -> Reply {
    let not_found = || Reply::detail(StatusCode::NOT_FOUND, "Not Found");
    let Some((id, index, ext)) = parse_media_name(name) else {
        return not_found();
    };
    let found = {
        let core = shared.core();
        core.find(id).and_then(|seq| {
            let job = core.job(seq)?;
            match (&job.phase, &job.plan) {
                (Phase::Completed { outcome: Outcome::Success, .. }, Ok(plan))
                    if (plan.video && index == 0 && ext == "mp4")
                        || (!plan.video && index < plan.num_images && plan.format.extension() == ext) =>
                {
                    Some((
                        seq,
                        JobOutput {
                            id: job.id.clone(),
                            base: job.base.clone(),
                            plan: plan.clone(),
                            seed: job.seed.clone(),
                            image_seed: job.image_seed,
                        },
                    ))
                }
                _ => None,
            }
        })
    };
    let Some((seq, job)) = found else {
        return not_found();
    };
    match media_bytes(shared, name, &job, index).await {
        Ok(file) => Reply {
            status: StatusCode::OK,
            headers: vec![
                (header::CONTENT_TYPE, HeaderValue::from_static(if job.plan.video { "video/mp4" } else { job.plan.format.content_type() })),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            ],
            body: ReplyBody::Full(file),
            job: Some(seq),
        },
        Err(e) => Reply::json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "detail": e.to_string() })),
    }
}
