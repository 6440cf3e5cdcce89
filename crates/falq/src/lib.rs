//! falq: submit, wait, fetch and cancel on any fal-compatible relay, typed end to end.
//!
//! ```no_run
//! use falq::{Client, EndpointMethods, types};
//! # async fn demo() -> Result<(), falq::Error> {
//! let client = Client::from_env()?; // FAL_BASE_URL, FAL_KEY, FAL_AUTH_SCHEME
//! let input = types::Flux1DevReduxInput::builder().image_url("https://example.com/in.png").try_into().unwrap();
//! let output = client.flux_1_dev_redux(input).await?;
//! println!("{} image(s), seed {:?}", output.images.len(), output.seed);
//! # Ok(()) }
//! ```
//!
//! Below that: [`Client::submit`] answers a [`RequestHandle`] with `status`, `wait`,
//! `result` and `cancel`; [`Client::handle`] rebuilds one from ids alone. Every URL
//! the server returns is mapped onto the base URL, so the key never leaves it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
pub mod config;
mod error;
pub mod files;
mod http;
mod knowledge;
pub mod many;
pub mod options;
pub mod poll;
pub mod rewrite;
mod road;
mod send;
mod sse;

pub use client::{Client, RequestHandle, Update};
pub use config::{
    ApiKey, AuthScheme, CancelOnTimeout, Config, HttpPolicy, HttpVersion, Logs, PollPolicy, RetryPolicy, Timeouts, WaitMode, WaitPolicy,
};
pub use error::{Error, FieldError};
pub use falq_api::retry::{self, Call};
pub use falq_api::{self as api, Endpoint, EndpointMethods, endpoints, types};
pub use files::SavedFile;
pub use many::{Finished, JobLimit};
pub use options::{Priority, SubmitOptions};
pub use reqwest::Url;

/// The README's Rust examples, compiled as doc tests so they never drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
