//! What a completed job answers: its result (made from its endpoint's output schema by
//! `synth`: images, a video, audio, a mesh, text) and the media files behind its URLs,
//! images encoded once and cached.

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
    pub(super) endpoint: &'static falq_api::EndpointInfo,
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
                endpoint: job.endpoint,
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
/// What fal bills a job for (`x-fal-billable-units`): one unit per image, one per second
/// of video (the seconds asked for, else one), one per other file, one for a job with no file.
fn billable_units(shared: &Shared, job: &JobOutput) -> f64 {
    let Some(model) = shared.catalog.endpoint(job.endpoint.id) else { return 1.0 };
    let values = JobValues { plan: &job.plan, seed: &job.seed, inference_time: 0.0 };
    let files = synth::media_files(job.endpoint, &model.output_schema, &values);
    if files.is_empty() {
        return 1.0;
    }
    files.iter().map(|f| if f.kind == FileKind::Video { job.plan.seconds.unwrap_or(1.0) } else { 1.0 }).sum()
}

async fn result_answer(shared: &Shared, state: ResultState) -> (StatusCode, Value, Option<(String, f64)>) {
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
            Ok(output) => {
                let units = billable_units(shared, &job);
                (StatusCode::OK, output, Some((job.id, units)))
            }
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
    // and what it bills in `x-fal-billable-units`.
    if let Some((id, units)) = id {
        reply = reply
            .header(HeaderName::from_static("x-fal-request-id"), &id)
            .header(HeaderName::from_static("x-fal-billable-units"), &units.to_string());
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

/// The video every video job produces (see `assets/README.md`).
pub(super) const SAMPLE_VIDEO: &[u8] = include_bytes!("../../assets/sample.mp4");

/// The output a completed job answers: its endpoint's output schema filled in with the job's
/// files and values (`synth`). Each file is served under `/media/{request_id}-{index}.{ext}`;
/// in sync mode the files are made now and inlined as data URIs.
pub(super) async fn output_json(shared: &Shared, job: &JobOutput, inference_time: f64) -> Result<Value, SimError> {
    let Some(model) = shared.catalog.endpoint(job.endpoint.id) else {
        return Err(SimError::Image(format!("no catalogue entry for {}", job.endpoint.id)));
    };
    let values = JobValues { plan: &job.plan, seed: &job.seed, inference_time };
    let files = synth::media_files(job.endpoint, &model.output_schema, &values);
    let names: Vec<String> = files.iter().enumerate().map(|(i, f)| media_name(&job.id, i as u32, f.extension())).collect();
    let mut urls = Vec::with_capacity(files.len());
    let mut sizes = Vec::with_capacity(files.len());
    for (index, (file, name)) in files.iter().zip(&names).enumerate() {
        if job.plan.sync_mode {
            let bytes = media_bytes(shared, name, job, index as u32, file).await?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            urls.push(format!("data:{};base64,{encoded}", file.content_type()));
            sizes.push(Some(bytes.len() as u64));
        } else {
            urls.push(format!("{}/media/{name}", job.base));
            sizes.push(fixed_size(file, job, index as u32));
        }
    }
    Ok(synth::output(job.endpoint, &model.output_schema, &values, &Placed { urls: &urls, names: &names, sizes: &sizes }))
}

/// The size of a file known without drawing it: every kind but images.
fn fixed_size(file: &MediaFile, job: &JobOutput, index: u32) -> Option<u64> {
    match file.kind {
        FileKind::Image => None,
        _ => Some(generated_bytes(file, job, index).len() as u64),
    }
}

/// The seed of a job's file at `index`.
fn file_seed(job: &JobOutput, index: u32) -> u64 {
    mix64(job.image_seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The bytes of a file that is not an image: the sample video, a seeded WAV or glTF mesh, a
/// short text for any other file.
fn generated_bytes(file: &MediaFile, job: &JobOutput, index: u32) -> Bytes {
    match file.kind {
        FileKind::Video => Bytes::from_static(SAMPLE_VIDEO),
        FileKind::Audio => Bytes::from(crate::render::wav(file_seed(job, index))),
        FileKind::Mesh => Bytes::from(crate::render::glb(file_seed(job, index))),
        FileKind::Image | FileKind::Other => {
            Bytes::from(format!("A file simulated by falq-sim for request {}, file {index}.\n", job.id).into_bytes())
        }
    }
}

pub(super) fn media_name(request_id: &str, index: u32, extension: &str) -> String {
    format!("{request_id}-{index}.{extension}")
}

/// `{request_id}-{index}.{ext}` split into its parts.
pub(super) fn parse_media_name(name: &str) -> Option<(&str, u32, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (id, index) = stem.rsplit_once('-')?;
    Some((id, index.parse().ok()?, ext))
}

/// The bytes of one file: an image from the cache or drawn now (off the async threads),
/// anything else made at once.
pub(super) async fn media_bytes(shared: &Shared, name: &str, job: &JobOutput, index: u32, file: &MediaFile) -> Result<Bytes, SimError> {
    if file.kind != FileKind::Image {
        return Ok(generated_bytes(file, job, index));
    }
    if let Some(bytes) = shared.media().get(name) {
        return Ok(bytes);
    }
    let plan = job.plan.clone();
    let seed = file_seed(job, index);
    let format = file.format;
    let bytes = tokio::task::spawn_blocking(move || render_file(plan.width, plan.height, seed, plan.source.as_deref(), format))
        .await
        .map_err(|e| SimError::Image(e.to_string()))??;
    let bytes = Bytes::from(bytes);
    shared.media().insert(name.to_string(), bytes.clone());
    Ok(bytes)
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
                (Phase::Completed { outcome: Outcome::Success, inference_time, .. }, Ok(plan)) => Some((
                    seq,
                    *inference_time,
                    JobOutput {
                        id: job.id.clone(),
                        endpoint: job.endpoint,
                        base: job.base.clone(),
                        plan: plan.clone(),
                        seed: job.seed.clone(),
                        image_seed: job.image_seed,
                    },
                )),
                _ => None,
            }
        })
    };
    let Some((seq, inference_time, job)) = found else {
        return not_found();
    };
    let Some(model) = shared.catalog.endpoint(job.endpoint.id) else {
        return not_found();
    };
    let values = JobValues { plan: &job.plan, seed: &job.seed, inference_time };
    let files = synth::media_files(job.endpoint, &model.output_schema, &values);
    let Some(file) = files.get(index as usize).filter(|f| f.extension() == ext) else {
        return not_found();
    };
    match media_bytes(shared, name, &job, index, file).await {
        Ok(bytes) => Reply {
            status: StatusCode::OK,
            headers: vec![
                (header::CONTENT_TYPE, HeaderValue::from_static(file.content_type())),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            ],
            body: ReplyBody::Full(bytes),
            job: Some(seq),
        },
        Err(e) => Reply::json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "detail": e.to_string() })),
    }
}
