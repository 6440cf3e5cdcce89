//! falq-sim: a faithful local fal/relay queue server for tests, benchmarks and demos.
//!
//! ```no_run
//! # async fn demo() -> Result<(), falq_sim::SimError> {
//! use falq_sim::{Sim, SimConfig, SimMode};
//! let sim = Sim::spawn(SimConfig { mode: SimMode::Direct, ..SimConfig::default() }).await?;
//! println!("POST {}/fal-ai/flux-pro/kontext/text-to-image", sim.base_url());
//! sim.set_faults("submit:429@1; status:503%20".parse()?);
//! # Ok(()) }
//! ```
//!
//! # Routes (under [`SimConfig::path_prefix`])
//!
//! | call | route | answers |
//! |---|---|---|
//! | submit | `POST /{endpoint_id}` | 200 `QueueStatus` (`IN_QUEUE`, `queue_position`; relay mode adds `"logs":null,"metrics":{}`) and `x-fal-request-id`; 422 fal `detail` list on bad input; 404 unknown endpoint; 413 body too large. Honours `X-Fal-Queue-Priority: low` (queued behind every normal job), `X-Fal-Request-Timeout` (a job not started by then completes without running; its result answers 504 with `X-Fal-Request-Timeout-Type: user`) and `fal_webhook` (fal's payload POSTed on completion, loopback URLs only) |
//! | status | `GET /{app}/requests/{id}/status[?logs=1]` | 202 while `IN_QUEUE`/`IN_PROGRESS` (`queue_position` when queued), 200 `COMPLETED` with `metrics.inference_time`; `logs` when asked and running or done |
//! | stream | `GET /{app}/requests/{id}/status/stream[?logs=1]` | SSE: `data: <QueueStatus>` now, on each change of state (and each new log line with `logs=1`), `: keep-alive` after each quiet [`SimTiming::keep_alive`]; closed after `COMPLETED` |
//! | result | `GET /{app}/requests/{id}` | 200 output, with `x-fal-request-id` and `x-fal-billable-units` (one unit per image, per second of video asked for, per other file; one for a job without files); 400 `{"detail":"Request is still in progress"}`; 400 `{"detail":"Request was cancelled","error_type":"request_cancelled"}`; 422 `{"detail":[...]}` for a failed job; 404 `{"detail":"Request not found"}` unknown or expired |
//! | cancel | `PUT /{app}/requests/{id}/cancel` | 202 `CANCELLATION_REQUESTED` (a queued job completes at once, a running one right after the answer; either way its result then answers the cancelled 400); 400 `ALREADY_COMPLETED`; 404 `NOT_FOUND` |
//! | media | `GET /media/{request_id}-{index}.{ext}` | 200 the file, no key needed: an image (`jpeg`, `png`), the sample MP4, a WAV, a binary glTF mesh (`glb`), as the output schema says; 404 once the job expired |
//! | admin | `GET /_sim/counters[?per_job=0]`, `GET/POST/PUT/DELETE /_sim/faults` | [`Counters`]; the fault plan `{"rules":[...],"spec":"..."}` |
//!
//! `{app}` is the app id (`fal-ai/flux-1`; three segments for `workflows/` and `comfy/`),
//! or leniently the full endpoint id or anything between. Every endpoint of
//! `falq_api::ENDPOINTS` is served, its input validated by the catalogue's one validation
//! (`falq_api::validate_lax`: the generated JSON Schema, read as pydantic's lax mode reads
//! it) and refused with fal's 422 `detail` items; unknown input fields are ignored, as fal does.
//!
//! # Modes and auth
//!
//! [`SimMode::Relay`] answers URLs on `https://queue.fal.run` and wants
//! `Authorization: Bearer <key>`; [`SimMode::Direct`] answers URLs on its own base and wants
//! `Authorization: Key <key>`. Any non-empty key passes unless [`SimConfig::api_key`] is set;
//! otherwise 401 `{"detail":"..."}`. Media and admin routes need no key. Media URLs are
//! always on the simulator itself (`http://` + the request's `Host`, or [`SimConfig::public_url`]).
//!
//! # Outputs
//!
//! Results are `FluxImageOutput`-shaped. Images are real JPEG or PNG files (`output_format`),
//! sized by `image_size` (preset or `{width,height}`) or `aspect_ratio` (about one megapixel,
//! multiples of 16; without one, the input image's ratio, else 1:1). They are drawn when
//! first downloaded, not at completion, and cached ([`SimConfig::media_cache_bytes`]); with
//! `sync_mode: true` the result call draws them and inlines `data:` URIs. Same seed and same
//! input give the same bytes. With `image_url`/`image_urls[0]`, pictures are derived from
//! the input image: data URLs are decoded and `http://` URLs on 127.0.0.1, localhost or the
//! simulator itself are fetched; other hosts are never fetched but hashed, so different URLs
//! still give different pictures. An input image that cannot be loaded fails the job: its
//! result answers 422 (`image_load_error` / `file_download_error`), as fal does.
//!
//! # Faults
//!
//! See [`FaultRule`] for the grammar (`submit:429@1,3`, `status:503%20`, `result:422%100`,
//! `status:stall=2s%10`, `submit:reset@1`, `status:malformed@2`).
//!
//! # Defaults ([`SimConfig::default`])
//!
//! Relay mode, any key, queue delay 200 ms, run 600 ms, 4 workers, results kept 1 h,
//! 4 log lines, keep-alive 15 s, seed `0xfa1c51`, bodies up to 64 MiB, images up to
//! 4096×4096 pixels, 64 MiB media cache, no faults.
//!
//! # Not simulated
//!
//! `fal_webhook` is accepted and ignored; the `X-Fal-*` request headers are ignored; results
//! of any size share one TTL (fal keeps large ones only minutes); media expire with their job.
//!
//! # Scale
//!
//! One mutex holds the jobs, a FIFO queue and a timer heap; one task sleeps until the next
//! deadline (no polling); status streams wait on a per-job `tokio::sync::watch`. Jobs are
//! dropped when their result TTL ends, so memory stays bounded.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod catalog;
mod config;
mod counters;
mod error;
mod extra;
mod fault;
mod queue;
mod render;
mod route;
mod server;
mod sim;
mod source;
mod synth;
mod util;
mod validate;

pub use config::{SimConfig, SimMode, SimTiming, SimTls};
pub use counters::{Counters, JobCounters, JobTotals, PerRoute, RouteCounters};
pub use error::SimError;
pub use extra::extra_endpoint;
pub use fault::{FaultKind, FaultPlan, FaultRoute, FaultRule, FaultWhen};
pub use sim::Sim;
