//! The endpoints served, read from the catalogue (`falq_api::ENDPOINTS`: each endpoint's
//! field table and output file locations), and what each job will produce: the pure step
//! from a valid input (as fal reads it) to an output plan.

use std::collections::HashMap;
use std::sync::Arc;

use falq_api::EndpointInfo;
use falq_api::types::ValidationErrorItem;
use serde_json::{Number, Value};

use crate::render::{ImageFormat, Thumb, aspect_ratio_size, preset_size, size_for_ratio};
use crate::validate::detail_item;

/// The most images one job may produce (the spec bounds `num_images` lower still).
const MAX_IMAGES: i64 = 64;

/// How an endpoint's output size is chosen.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SizeField {
    /// `image_size`: a preset or `{width, height}`, with the schema's default.
    ImageSize { default: Option<Value> },
    /// `aspect_ratio`, with the schema's default.
    AspectRatio { default: Option<String> },
    /// Neither: 1024×1024, or the input image's ratio.
    Fixed,
}

/// Which input field holds the image to derive from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageField {
    /// `image_url`: a string.
    Url,
    /// `image_urls`: the first of an array.
    Urls,
}

/// What the simulator knows about one endpoint.
#[derive(Debug)]
pub(crate) struct EndpointModel {
    pub(crate) info: &'static EndpointInfo,
    pub(crate) size: SizeField,
    pub(crate) image_field: Option<ImageField>,
    pub(crate) default_format: Option<String>,
    pub(crate) default_num_images: Option<i64>,
    /// The JSON Schema of its output, which its results are made from (`synth`).
    pub(crate) output_schema: Value,
}

/// Every endpoint of the catalogue.
#[derive(Debug)]
pub(crate) struct Catalog {
    endpoints: HashMap<&'static str, EndpointModel>,
}

impl Catalog {
    /// Every endpoint of `falq_api::ENDPOINTS`, and `extra` (which win over a catalogue
    /// entry of the same id).
    pub(crate) fn load(extra: &[&'static EndpointInfo]) -> Catalog {
        Catalog { endpoints: falq_api::ENDPOINTS.iter().chain(extra).map(|&info| (info.id, model(info))).collect() }
    }

    /// The endpoint with this id (`fal-ai/flux-1/dev/redux`).
    pub(crate) fn endpoint(&self, id: &str) -> Option<&EndpointModel> {
        self.endpoints.get(id)
    }
}

fn model(info: &'static EndpointInfo) -> EndpointModel {
    let property = |name: &str| info.fields.iter().find(|f| f.name == name);
    let default_of = |name: &str| property(name).and_then(|p| p.default).and_then(|d| serde_json::from_str::<Value>(d).ok());
    let size = if property("image_size").is_some() {
        SizeField::ImageSize { default: default_of("image_size") }
    } else if property("aspect_ratio").is_some() {
        SizeField::AspectRatio { default: default_of("aspect_ratio").and_then(|v| v.as_str().map(str::to_string)) }
    } else {
        SizeField::Fixed
    };
    let image_field = if property("image_url").is_some() {
        Some(ImageField::Url)
    } else if property("image_urls").is_some() {
        Some(ImageField::Urls)
    } else {
        None
    };
    EndpointModel {
        info,
        size,
        image_field,
        default_format: default_of("output_format").and_then(|v| v.as_str().map(str::to_string)),
        default_num_images: default_of("num_images").as_ref().and_then(Value::as_i64),
        output_schema: serde_json::from_str(info.output_json_schema).unwrap_or(Value::Bool(true)),
    }
}

impl EndpointModel {
    /// The URL of the input image, if the endpoint takes one and the input gives one.
    pub(crate) fn image_url<'a>(&self, input: &'a Value) -> Option<&'a str> {
        match self.image_field? {
            ImageField::Url => input.get("image_url")?.as_str(),
            ImageField::Urls => input.get("image_urls")?.get(0)?.as_str(),
        }
    }
}

/// Everything needed to answer a job's result and draw its images.
#[derive(Clone, Debug)]
pub(crate) struct OutputPlan {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) format: ImageFormat,
    pub(crate) num_images: u32,
    /// The seed the input gave, verbatim (any JSON integer).
    pub(crate) seed: Option<Number>,
    pub(crate) sync_mode: bool,
    pub(crate) prompt: Option<String>,
    pub(crate) source: Option<Arc<Thumb>>,
    /// The seconds of video asked for (`duration`: `8`, `"8s"`, or its default), which
    /// the job is billed by.
    pub(crate) seconds: Option<f64>,
}

/// The output plan of a valid input, as fal reads it (`validate::validate`: numbers are
/// numbers by now); an error item makes the job fail at its result
/// (a size the simulator cannot draw, an input image it could not load).
pub(crate) fn plan_output(
    model: &EndpointModel,
    input: &Value,
    source: Option<Arc<Thumb>>,
    max_pixels: u64,
) -> Result<OutputPlan, Box<ValidationErrorItem>> {
    let given = |name: &str| input.get(name).filter(|v| !v.is_null());
    let (width, height) = match &model.size {
        SizeField::ImageSize { default } => {
            let value = given("image_size").or(default.as_ref());
            match value {
                Some(Value::String(name)) => preset_size(name).unwrap_or((1024, 768)),
                Some(Value::Object(o)) => {
                    let side = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(512);
                    let (w, h) = (side("width"), side("height"));
                    for (name, v) in [("width", w), ("height", h)] {
                        if v < 1 {
                            return Err(Box::new(detail_item(
                                &["body", "image_size", name],
                                "Input should be greater than 0",
                                "greater_than",
                            )));
                        }
                    }
                    (w.min(u32::MAX as i64) as u32, h.min(u32::MAX as i64) as u32)
                }
                _ => (1024, 768),
            }
        }
        SizeField::AspectRatio { default } => {
            let explicit = given("aspect_ratio").and_then(Value::as_str).or(default.as_deref());
            explicit
                .and_then(aspect_ratio_size)
                .or_else(|| source.as_ref().and_then(|s| s.size).and_then(|(w, h)| size_for_ratio(w as f64, h as f64)))
                .unwrap_or((1024, 1024))
        }
        SizeField::Fixed => (1024, 1024),
    };
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Box::new(detail_item(
            &["body", "image_size"],
            format!("The simulator draws at most {max_pixels} pixels per image, not {width}x{height}"),
            "value_error",
        )));
    }
    let num_images = given("num_images").and_then(Value::as_i64).or(model.default_num_images).unwrap_or(1);
    if !(1..=MAX_IMAGES).contains(&num_images) {
        return Err(Box::new(detail_item(
            &["body", "num_images"],
            format!("The simulator draws 1 to {MAX_IMAGES} images per job"),
            "value_error",
        )));
    }
    let format_name = given("output_format").and_then(Value::as_str).or(model.default_format.as_deref());
    Ok(OutputPlan {
        width,
        height,
        format: ImageFormat::from_name(format_name),
        num_images: num_images as u32,
        seed: given("seed").and_then(|s| match s {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.clone()),
            _ => None,
        }),
        sync_mode: given("sync_mode").and_then(Value::as_bool).unwrap_or(false),
        prompt: given("prompt").and_then(Value::as_str).map(str::to_string),
        source,
        seconds: given("duration").cloned().or_else(|| field_default(model, "duration")).as_ref().and_then(leading_number),
    })
}

/// A field's default, as the catalogue gives it.
fn field_default(model: &EndpointModel, name: &str) -> Option<Value> {
    let field = model.info.fields.iter().find(|f| f.name == name)?;
    serde_json::from_str(field.default?).ok()
}

/// A number, or the number text starts with (`"8s"`).
fn leading_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
            s[..end].parse().ok()
        }
        _ => None,
    }
    .filter(|n: &f64| n.is_finite() && *n >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::load(&[])
    }

    fn size(endpoint: &str, input: Value, source: Option<Thumb>) -> Result<(u32, u32), String> {
        let catalog = catalog();
        let model = catalog.endpoint(endpoint).unwrap();
        plan_output(model, &input, source.map(Arc::new), 4096 * 4096).map(|p| (p.width, p.height)).map_err(|e| e.type_)
    }

    #[test]
    fn every_spec_endpoint_is_served() {
        let catalog = catalog();
        for info in falq_api::ENDPOINTS {
            let model = catalog.endpoint(info.id).unwrap();
            assert_eq!(model.info.app_id, info.app_id);
        }
    }

    #[test]
    fn models_read_the_schema() {
        let catalog = catalog();
        let redux = catalog.endpoint("fal-ai/flux-1/dev/redux").unwrap();
        assert_eq!(redux.size, SizeField::ImageSize { default: Some(json!("landscape_4_3")) });
        assert_eq!(redux.image_field, Some(ImageField::Url));
        assert_eq!(redux.default_format.as_deref(), Some("jpeg"));
        assert_eq!(redux.default_num_images, Some(1));
        let multi = catalog.endpoint("fal-ai/flux-pro/kontext/multi").unwrap();
        assert_eq!(multi.size, SizeField::AspectRatio { default: None });
        assert_eq!(multi.image_field, Some(ImageField::Urls));
        assert_eq!(multi.image_url(&json!({ "image_urls": ["a", "b"] })), Some("a"));
        let text = catalog.endpoint("fal-ai/flux-pro/kontext/text-to-image").unwrap();
        assert_eq!(text.size, SizeField::AspectRatio { default: Some("1:1".into()) });
        assert_eq!(text.image_field, None);
    }

    #[test]
    fn sizes_table() {
        let redux = "fal-ai/flux-1/dev/redux";
        let multi = "fal-ai/flux-pro/kontext/multi";
        let text = "fal-ai/flux-pro/kontext/text-to-image";
        let wide = Thumb { size: Some((1600, 900)), rgb: vec![0; 768] };
        assert_eq!(size(redux, json!({}), None), Ok((1024, 768)));
        assert_eq!(size(redux, json!({ "image_size": "square" }), None), Ok((512, 512)));
        assert_eq!(size(redux, json!({ "image_size": "portrait_16_9" }), None), Ok((576, 1024)));
        assert_eq!(size(redux, json!({ "image_size": { "width": 64, "height": 48 } }), None), Ok((64, 48)));
        assert_eq!(size(redux, json!({ "image_size": { "width": 0, "height": 48 } }), None), Err("greater_than".into()));
        assert_eq!(size(redux, json!({ "image_size": { "width": 14000, "height": 14000 } }), None), Err("value_error".into()));
        assert_eq!(size(text, json!({}), None), Ok((1024, 1024)));
        assert_eq!(size(text, json!({ "aspect_ratio": "16:9" }), None), Ok((1360, 768)));
        assert_eq!(size(multi, json!({}), Some(wide.clone())), Ok((1360, 768)));
        assert_eq!(size(multi, json!({ "aspect_ratio": "9:16" }), Some(wide)), Ok((768, 1360)));
        assert_eq!(size(multi, json!({}), None), Ok((1024, 1024)));
    }

    #[test]
    fn plans_read_format_count_seed_and_prompt() {
        let catalog = catalog();
        let model = catalog.endpoint("fal-ai/flux-pro/kontext/text-to-image").unwrap();
        let plan = plan_output(
            model,
            &json!({ "prompt": "cat", "num_images": 3, "output_format": "png", "seed": 196_619_188_014_358_660u64, "sync_mode": true }),
            None,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(plan.format, ImageFormat::Png);
        assert_eq!(plan.num_images, 3);
        assert_eq!(plan.seed, Some(Number::from(196_619_188_014_358_660u64)));
        assert!(plan.sync_mode);
        assert_eq!(plan.prompt.as_deref(), Some("cat"));
        let plan = plan_output(model, &json!({ "prompt": "cat", "seed": null }), None, u64::MAX).unwrap();
        assert_eq!((plan.format, plan.num_images, plan.seed, plan.sync_mode), (ImageFormat::Jpeg, 1, None, false));
    }
}
