//! What a completed job answers, built from its endpoint's output schema alone (the
//! catalogue's `output_json_schema`, and `output_files` for the kind of each file): files
//! where the schema has files (as many images as asked for), the job's seed, prompt and
//! size where the schema asks for them, text for text, values within every enum, bound
//! and item count. A page of a new output kind needs no simulator code.

use falq_api::json_schema::type_of;
use falq_api::{EndpointInfo, FileKind};
use serde_json::{Map, Number, Value, json};

use crate::catalog::OutputPlan;
use crate::render::ImageFormat;

/// The deepest schema nesting followed; deeper, a value is `null`.
const MAX_DEPTH: usize = 24;

/// One file of a job's output, in the order the output lists them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MediaFile {
    /// What it is.
    pub(crate) kind: FileKind,
    /// Its format, for an image.
    pub(crate) format: ImageFormat,
}

impl MediaFile {
    /// The media type it is served as.
    pub(crate) fn content_type(&self) -> &'static str {
        match self.kind {
            FileKind::Image => self.format.content_type(),
            FileKind::Video => "video/mp4",
            FileKind::Audio => "audio/wav",
            FileKind::Mesh => "model/gltf-binary",
            FileKind::Other => "text/plain",
        }
    }

    /// Its file extension.
    pub(crate) fn extension(&self) -> &'static str {
        match self.kind {
            FileKind::Image => self.format.extension(),
            FileKind::Video => "mp4",
            FileKind::Audio => "wav",
            FileKind::Mesh => "glb",
            FileKind::Other => "txt",
        }
    }
}

/// The values of one job an output is made of.
pub(crate) struct JobValues<'a> {
    pub(crate) plan: &'a OutputPlan,
    pub(crate) seed: &'a Number,
    pub(crate) inference_time: f64,
}

/// Where each file of an output is served: its URL, name and size (when known), in the
/// order of [`media_files`].
pub(crate) struct Placed<'a> {
    pub(crate) urls: &'a [String],
    pub(crate) names: &'a [String],
    pub(crate) sizes: &'a [Option<u64>],
}

struct Walk<'a> {
    root: &'a Value,
    info: &'static EndpointInfo,
    job: &'a JobValues<'a>,
    placed: Option<&'a Placed<'a>>,
    files: Vec<MediaFile>,
    /// Whether an array of files was expanded already (inner ones hold one file each).
    expanded: bool,
}

/// The files an endpoint's output holds for this job, in order.
pub(crate) fn media_files(info: &'static EndpointInfo, schema: &Value, job: &JobValues) -> Vec<MediaFile> {
    let mut walk = Walk { root: schema, info, job, placed: None, files: Vec::new(), expanded: false };
    walk.value(schema, "", None, 0);
    walk.files
}

/// The output of this job, its files at the URLs given (one per [`media_files`] entry).
pub(crate) fn output(info: &'static EndpointInfo, schema: &Value, job: &JobValues, placed: &Placed) -> Value {
    let mut walk = Walk { root: schema, info, job, placed: Some(placed), files: Vec::new(), expanded: false };
    walk.value(schema, "", None, 0)
}

/// The schema a use site stands for: a union with `null` unwrapped to its one other branch.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    falq_api::json_schema::resolve(root, s, falq_api::json_schema::Branch::Only)
}

impl Walk<'_> {
    fn is_file(&self, s: &Value) -> bool {
        let s = resolve(self.root, s);
        s.get("properties").and_then(|p| p.get("url")).map(|u| resolve(self.root, u)).is_some_and(|u| matches!(type_of(u), "string" | ""))
    }

    /// Whether a schema holds a file anywhere inside.
    fn holds_file(&self, s: &Value, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let s = resolve(self.root, s);
        self.is_file(s)
            || s.get("properties").and_then(Value::as_object).is_some_and(|p| p.values().any(|p| self.holds_file(p, depth + 1)))
            || s.get("items").is_some_and(|i| self.holds_file(i, depth + 1))
    }

    fn kind_at(&self, pointer: &str) -> FileKind {
        self.info.output_files.iter().find(|f| f.pointer == pointer).map_or(FileKind::Other, |f| f.kind)
    }

    fn value(&mut self, use_site: &Value, pointer: &str, name: Option<&str>, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        let s = resolve(self.root, use_site);
        if self.is_file(s) {
            return self.file(s, pointer);
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            let default = s.get("default").filter(|d| values.contains(d));
            return default.or_else(|| values.iter().find(|v| !v.is_null())).cloned().unwrap_or(Value::Null);
        }
        if let Some(branch) = s.get("oneOf").or_else(|| s.get("anyOf")).and_then(Value::as_array).and_then(|l| l.first()) {
            return self.value(branch, pointer, name, depth + 1);
        }
        match type_of(s) {
            "object" => self.object(s, pointer, depth),
            "array" => self.array(s, pointer, name, depth),
            "string" => Value::String(self.text(s, name)),
            "integer" => self.integer(s, name),
            "number" => self.number(s, name),
            "boolean" => s.get("default").filter(|d| d.is_boolean()).cloned().unwrap_or(Value::Bool(false)),
            _ if s.get("properties").is_some() => self.object(s, pointer, depth),
            _ => s.get("default").cloned().unwrap_or(Value::Null),
        }
    }

    fn object(&mut self, s: &Value, pointer: &str, depth: usize) -> Value {
        let mut out = Map::new();
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (key, p) in props {
                let v = self.value(p, &format!("{pointer}/{key}"), Some(key), depth + 1);
                out.insert(key.clone(), v);
            }
        }
        // A map of numbers such as `timings`: how long the run took.
        if out.is_empty()
            && let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object())
        {
            let v = match type_of(resolve(self.root, extra)) {
                "number" | "integer" => json!(round3(self.job.inference_time)),
                _ => self.value(extra, &format!("{pointer}/inference"), Some("inference"), depth + 1),
            };
            out.insert("inference".into(), v);
        }
        Value::Object(out)
    }

    fn array(&mut self, s: &Value, pointer: &str, name: Option<&str>, depth: usize) -> Value {
        let Some(items) = s.get("items") else { return json!([]) };
        let bound = |k: &str| s.get(k).and_then(Value::as_u64).map(|n| n.min(64) as usize);
        let per_image = matches!(type_of(resolve(self.root, items)), "boolean");
        let files = self.holds_file(items, depth);
        let count = if (files && !self.expanded) || per_image { self.job.plan.num_images as usize } else { 1 };
        let count = count.max(bound("minItems").unwrap_or(0)).min(bound("maxItems").unwrap_or(usize::MAX));
        let expanding = files && !self.expanded;
        self.expanded |= expanding;
        let out = (0..count).map(|_| self.value(items, &format!("{pointer}/*"), name, depth + 1)).collect();
        if expanding {
            self.expanded = false;
        }
        Value::Array(out)
    }

    fn text(&self, s: &Value, name: Option<&str>) -> String {
        if let Some(d) = s.get("default").and_then(Value::as_str) {
            return d.to_string();
        }
        let prompt = self.job.plan.prompt.as_deref().unwrap_or("");
        let text = match name {
            Some("prompt") => prompt.to_string(),
            Some(name) if prompt.is_empty() => format!("Simulated {}.", name.replace('_', " ")),
            Some(name) => format!("Simulated {} for: {prompt}", name.replace('_', " ")),
            None => "Simulated text.".to_string(),
        };
        let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = s.get("maxLength").and_then(Value::as_u64).map_or(usize::MAX, |m| m as usize);
        let mut text: String = text.chars().take(max).collect();
        while text.chars().count() < min {
            text.push('.');
        }
        text
    }

    fn integer(&self, s: &Value, name: Option<&str>) -> Value {
        let plan = self.job.plan;
        match name {
            Some("seed") => return Value::Number(self.job.seed.clone()),
            Some("width") => return json!(plan.width),
            Some("height") => return json!(plan.height),
            _ => {}
        }
        if let Some(d) = s.get("default").filter(|d| d.is_i64() || d.is_u64()) {
            return d.clone();
        }
        let min = s.get("minimum").and_then(Value::as_f64).map(|m| m.ceil() as i64);
        let max = s.get("maximum").and_then(Value::as_f64).map(|m| m.floor() as i64);
        json!(1i64.max(min.unwrap_or(i64::MIN)).min(max.unwrap_or(i64::MAX)))
    }

    fn number(&self, s: &Value, name: Option<&str>) -> Value {
        if matches!(name, Some("inference" | "inference_time" | "duration" | "seconds")) && s.get("default").is_none() {
            return json!(round3(self.job.inference_time));
        }
        if let Some(d) = s.get("default").filter(|d| d.is_number()) {
            return d.clone();
        }
        let min = s.get("minimum").and_then(Value::as_f64).unwrap_or(f64::MIN);
        let max = s.get("maximum").and_then(Value::as_f64).unwrap_or(f64::MAX);
        serde_json::Number::from_f64(1f64.max(min).min(max)).map_or(Value::Null, Value::Number)
    }

    /// A file of the output: its URL (as placed), what it is, and what the schema asks of it.
    fn file(&mut self, s: &Value, pointer: &str) -> Value {
        let index = self.files.len();
        let media = MediaFile { kind: self.kind_at(pointer), format: self.job.plan.format };
        let url = self.placed.and_then(|p| p.urls.get(index)).cloned().unwrap_or_default();
        let file_name = self.placed.and_then(|p| p.names.get(index)).cloned().unwrap_or_default();
        let size = self.placed.and_then(|p| p.sizes.get(index).copied().flatten());
        let mut out = Map::new();
        let plan = self.job.plan;
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (key, p) in props {
                let v = match key.as_str() {
                    "url" => json!(url),
                    "content_type" => json!(media.content_type()),
                    "file_name" => json!(file_name),
                    "file_size" => size.map_or(Value::Null, |n| json!(n)),
                    "width" if media.kind == FileKind::Image => json!(plan.width),
                    "height" if media.kind == FileKind::Image => json!(plan.height),
                    _ if resolve(self.root, p).get("type").is_some_and(|t| t.as_array().is_some_and(|l| l.contains(&json!("null")))) => {
                        Value::Null
                    }
                    _ => {
                        let nested = format!("{pointer}/{key}");
                        self.value(p, &nested, Some(key), MAX_DEPTH - 2)
                    }
                };
                // Fields a client may not get (a size not known yet, an image's width on a
                // video) are left out rather than sent as null.
                if !v.is_null() {
                    out.insert(key.clone(), v);
                }
            }
        }
        self.files.push(media);
        Value::Object(out)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
