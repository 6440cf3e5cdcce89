//! falq-core: the hand-written support the generated `falq-api` crate builds on: what
//! an endpoint of the catalogue is ([`EndpointInfo`], [`FieldInfo`], [`Endpoint`]), the one
//! validation before sending ([`validate_input`], [`Validate`]), and the error of a string
//! that is no enum value ([`ParseEnumError`]). Everything under `generated/` is written by
//! `cargo xtask regen`; this crate is not.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod duration;
pub mod json_schema;
mod kind;
pub mod outputs;
pub mod retry;
mod sample;
mod validate;

pub use duration::parse_duration;
pub use kind::{FileKind, OutputFile, canonical_type, content_type_of_name, extension_of_type, output_kind_label, sniff};
pub use sample::{Fill, SAMPLE_URL, minimal_input, sample};

pub use validate::{InputError, InputErrorKind, InputErrors, Segment, Validate, lax_read, validate_input, validate_lax};

/// One endpoint of the catalogue: what the CLI, the simulator and the queue layer
/// need to know about it.
#[derive(Debug)]
pub struct EndpointInfo {
    /// The endpoint id, as in `POST {base}/{id}` (`fal-ai/flux-1/dev/redux`).
    pub id: &'static str,
    /// The app id status, result and cancel URLs use (`fal-ai/flux-1`).
    pub app_id: &'static str,
    /// The generated method's name (`flux_1_dev_redux`).
    pub operation_id: &'static str,
    /// The page's summary.
    pub summary: &'static str,
    /// The page's description.
    pub description: &'static str,
    /// The component name of the input schema in the crate's `OPENAPI_JSON`.
    pub input_schema: &'static str,
    /// The component name of the output schema in the crate's `OPENAPI_JSON`.
    pub output_schema: &'static str,
    /// Whether a JSON value is this endpoint's output (decodes as its output type);
    /// the error says which field does not.
    pub check_output: fn(&serde_json::Value) -> Result<(), String>,
    /// [`EndpointInfo::check_output`] of JSON text, decoded straight into the output type
    /// without a `Value` first: what the transport asks of every result it reads.
    pub check_output_json: fn(&[u8]) -> Result<(), String>,
    /// The input's fields, in the page's order: what the CLI shows and parses.
    pub fields: &'static [FieldInfo],
    /// The JSON Schema of the input ([`json_schema::DIALECT`]), self-contained: what is checked before sending.
    pub input_json_schema: &'static str,
    /// The JSON Schema of the output ([`json_schema::DIALECT`]), self-contained.
    pub output_json_schema: &'static str,
    /// Where files sit in the output, as JSON pointers with `*` for every item of an
    /// array (`/images/*`, `/video`), each with its kind.
    pub output_files: &'static [OutputFile],
    /// Where the output's text sits (a transcript, a description): JSON pointers of its
    /// free-text string fields, files and echoes of the input (`prompt`) left out.
    pub output_text: &'static [&'static str],
    /// What the endpoint answers, in a word or two (`images`, `image`, `video`, `audio`,
    /// `mesh`, `text`, `json`): [`output_kind_label`] of the two above.
    pub output_kind: &'static str,
}

/// One field of an endpoint's input.
#[derive(Debug)]
pub struct FieldInfo {
    /// The property name.
    pub name: &'static str,
    /// `string`, `integer`, `number`, `boolean`, `array`, `object`, `one of` (a union) or `any`.
    pub kind: &'static str,
    /// Whether the input must have it.
    pub required: bool,
    /// Its values, for an enum.
    pub values: &'static [&'static str],
    /// Its default, as JSON text.
    pub default: Option<&'static str>,
    /// The least value (or item count, for an array).
    pub min: Option<f64>,
    /// The greatest value (or item count, for an array).
    pub max: Option<f64>,
    /// Whether `null` is allowed.
    pub nullable: bool,
    /// What the page says of it.
    pub description: &'static str,
    /// Whether it takes a file or URL (the CLI sends a local file as a data URL).
    pub takes_file: bool,
    /// What it takes, in short: `integer`, `jpeg | png`, `array of string`, `a | b or {width, height}`.
    pub label: &'static str,
    /// For an array, the kind of its items; empty otherwise.
    pub item_kind: &'static str,
}

/// Whether `value` decodes as `T`; the error names the field where it does not.
pub fn check_as<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<(), String> {
    T::deserialize(value).map(drop).map_err(|e| e.to_string())
}

/// Whether the JSON text `json` decodes as `T` ([`check_as`] without building a `Value`);
/// the error names the field where it does not.
pub fn check_json_as<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<T>(json).map(drop).map_err(|e| e.to_string())
}

/// An endpoint known at compile time: its input and output types.
pub trait Endpoint {
    /// What the endpoint takes.
    type Input: serde::Serialize + serde::de::DeserializeOwned + Validate + Clone + Send + Sync + 'static;
    /// What its result call answers once it completed.
    type Output: serde::Serialize + serde::de::DeserializeOwned + Send + 'static;
    /// Its catalogue entry.
    fn info() -> &'static EndpointInfo;
}

/// The app id of an endpoint id, as status, result and cancel URLs use it:
/// `owner/app` (`fal-ai/flux-1` for `fal-ai/flux-1/dev/redux`), or three segments
/// for `workflows/` and `comfy/` ids.
pub fn app_id_of(endpoint_id: &str) -> String {
    let parts: Vec<&str> = endpoint_id.trim_matches('/').split('/').collect();
    let keep = if matches!(parts[0], "workflows" | "comfy") { 3 } else { 2 };
    parts.iter().take(keep).copied().collect::<Vec<_>>().join("/")
}

/// A string that is not one of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEnumError {
    /// The enum's name.
    pub type_name: &'static str,
    /// The value given.
    pub value: String,
    /// The values allowed, comma separated.
    pub allowed: &'static str,
}

impl std::fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a {}; allowed: {}", self.value, self.type_name, self.allowed)
    }
}

impl std::error::Error for ParseEnumError {}

#[cfg(test)]
mod tests {
    #[test]
    fn app_ids() {
        assert_eq!(super::app_id_of("fal-ai/flux-1/dev/redux"), "fal-ai/flux-1");
        assert_eq!(super::app_id_of("fal-ai/flux-pro"), "fal-ai/flux-pro");
        assert_eq!(super::app_id_of("/fal-ai/flux-pro/"), "fal-ai/flux-pro");
        assert_eq!(super::app_id_of("workflows/me/wf/x"), "workflows/me/wf");
        assert_eq!(super::app_id_of("comfy/me/wf"), "comfy/me/wf");
        assert_eq!(super::app_id_of(""), "");
    }
}
