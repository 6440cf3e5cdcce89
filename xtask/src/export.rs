//! What downstream needs of each endpoint, worked out once from the merged spec: the
//! JSON Schema of its input and output (the catalogue's dialect), self-contained; its input's field table;
//! and where files sit in its output. `generate` writes them into the catalogue, so the
//! CLI, the validation before sending, the simulator and the tests never walk the spec.

use std::collections::BTreeSet;

use falq_core::FileKind;
use falq_core::json_schema::{DEFINITION_REF, DEFINITIONS, DIALECT};
use serde_json::{Map, Value, json};

use crate::walk::{Nest, component_name};

/// Keywords an OpenAPI 3.0 Schema Object shares with JSON Schema, whose value is data.
const SHARED_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "format",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
    "description",
    "default",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// The JSON Schema form of an OpenAPI 3.0 schema, in the catalogue's dialect: `$ref`s into
/// the definitions (one with siblings inside an `allOf`, so the siblings still apply),
/// `nullable` as a null type, the boolean exclusive bounds as numbers, the page's examples
/// (`x-falq-examples`) as `examples`; other extensions and OpenAPI-only keywords dropped.
pub fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(m) = schema else { return schema.clone() };
    let mut out = Map::new();
    for (k, v) in m {
        let k = k.as_str();
        if k == "$ref" {
            let target = v.as_str().unwrap_or_default();
            let target = component_name(target).map_or_else(|| target.to_string(), |name| format!("{DEFINITION_REF}{name}"));
            out.insert("$ref".into(), Value::String(target));
        } else if let Some(nest) = crate::walk::nest_of(k) {
            // Where a schema nests others (regen's one list), each nested one converted.
            let converted = match (nest, v) {
                (Nest::Map, Value::Object(m)) => Value::Object(m.iter().map(|(name, s)| (name.clone(), to_json_schema(s))).collect()),
                (Nest::List, Value::Array(l)) => Value::Array(l.iter().map(to_json_schema).collect()),
                (Nest::One, s) => to_json_schema(s),
                // A map or list keyword holding something else: nothing a validator could use.
                _ => continue,
            };
            out.insert(k.into(), converted);
        } else if SHARED_KEYWORDS.contains(&k) {
            out.insert(k.into(), v.clone());
        } else if k == "x-falq-examples" {
            // The page's examples (normalize gathers them here): what tells a file's kind
            // when nothing else does (`falq_core::outputs`).
            out.insert("examples".into(), v.clone());
        }
    }
    for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        match m.get(flag) {
            Some(Value::Bool(true)) => {
                if let Some(limit) = out.remove(bound) {
                    out.insert(flag.into(), limit);
                }
            }
            Some(n @ Value::Number(_)) => {
                out.insert(flag.into(), n.clone());
            }
            _ => {}
        }
    }
    // Draft 7 reads nothing beside a `$ref`: one with siblings goes inside an `allOf`.
    if out.len() > 1
        && let Some(target) = out.remove("$ref")
    {
        let mut all = vec![json!({"$ref": target})];
        if let Some(Value::Array(more)) = out.remove("allOf") {
            all.extend(more);
        }
        out.insert("allOf".into(), Value::Array(all));
    }
    if m.get("nullable") == Some(&Value::Bool(true)) {
        match out.get("type").cloned() {
            Some(Value::String(t)) => {
                out.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(values)) = out.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            _ => return json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
        }
    }
    Value::Object(out)
}

/// The components `v` refers to.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    let mut all = Vec::new();
    crate::walk::refs_in(v, &mut all);
    out.extend(all.iter().filter_map(|r| component_name(r)).map(str::to_string));
}

/// The self-contained JSON Schema of the component `name`: the component itself at the
/// root, every component it reaches (and only those) under its definitions.
pub fn bundled(doc: &Value, name: &str) -> Value {
    let component = |n: &str| crate::walk::component(doc, n).cloned().unwrap_or(Value::Bool(true));
    let mut reached = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        let mut found = BTreeSet::new();
        refs(&component(&n), &mut found);
        for f in found {
            if reached.insert(f.clone()) {
                todo.push(f);
            }
        }
    }
    let mut root = match to_json_schema(&component(name)) {
        Value::Object(m) => m,
        other => Map::from_iter([("allOf".to_string(), json!([other]))]),
    };
    root.insert("$schema".into(), json!(DIALECT));
    if !reached.is_empty() {
        root.insert(DEFINITIONS.into(), Value::Object(reached.iter().map(|n| (n.clone(), to_json_schema(&component(n)))).collect()));
    }
    Value::Object(root)
}

pub use crate::walk::{ref_target, resolve};

/// One field of an endpoint's input, as the CLI shows and parses it.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The property name.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean`, `array`, `object`, or `one of` (a union).
    pub kind: String,
    /// Whether the input must have it.
    pub required: bool,
    /// Its string values, for an enum.
    pub values: Vec<String>,
    /// Its default, as JSON text.
    pub default: Option<String>,
    /// Bounds (value, or item count for arrays).
    pub min: Option<f64>,
    /// See `min`.
    pub max: Option<f64>,
    /// Whether it is nullable.
    pub nullable: bool,
    /// Its description.
    pub description: String,
    /// Whether it takes a file or URL (a `*_url` or `*_urls` field, or `format: uri`).
    pub takes_file: bool,
    /// A short description of what it takes: `integer`, `jpeg | png`, `array of string`,
    /// `square_hd | square or {width, height}`.
    pub label: String,
    /// For an array, the kind of its items (`string`, `object`, ...); empty otherwise.
    pub item_kind: String,
}

/// A short description of what a schema takes: `integer`, `jpeg | png`,
/// `array of string`, `{width, height}`, `a | b or {width, height}`.
pub fn type_label(doc: &Value, s: &Value) -> String {
    fn label(doc: &Value, s: &Value, depth: usize) -> String {
        if depth > 8 {
            return "any".into();
        }
        let s = resolve(doc, s);
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            return values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect::<Vec<_>>().join(" | ");
        }
        if let Some(list) = s.get("oneOf").or_else(|| s.get("anyOf")).and_then(Value::as_array) {
            return list.iter().map(|b| label(doc, b, depth + 1)).collect::<Vec<_>>().join(" or ");
        }
        match s.get("type").and_then(Value::as_str) {
            Some("array") => format!("array of {}", s.get("items").map_or_else(|| "any".to_string(), |i| label(doc, i, depth + 1))),
            Some("object") => {
                let props: Vec<String> =
                    s.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
                if props.is_empty() { "object".into() } else { format!("{{{}}}", props.join(", ")) }
            }
            Some(t) => t.to_string(),
            None => "any".into(),
        }
    }
    label(doc, s, 0)
}

/// The field table of an input component: its properties in order.
pub fn fields(doc: &Value, input: &str) -> Vec<Field> {
    let schema = resolve(doc, crate::walk::component(doc, input).unwrap_or(&Value::Null));
    let required: BTreeSet<&str> =
        schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return vec![] };
    props
        .iter()
        .map(|(name, use_site)| {
            let s = resolve(doc, use_site);
            let get = |k: &str| use_site.get(k).or_else(|| s.get(k));
            let kind = if s.get("oneOf").is_some() || s.get("anyOf").is_some() {
                "one of".to_string()
            } else {
                s.get("type").and_then(Value::as_str).unwrap_or(if s.get("enum").is_some() { "string" } else { "any" }).to_string()
            };
            let values = s
                .get("enum")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let (min, max) = if kind == "array" {
                (get("minItems").and_then(Value::as_f64), get("maxItems").and_then(Value::as_f64))
            } else {
                (get("minimum").and_then(Value::as_f64), get("maximum").and_then(Value::as_f64))
            };
            let item_is_uri = s.pointer("/items/format").and_then(Value::as_str) == Some("uri");
            let takes_file = name.ends_with("url")
                || name.ends_with("urls")
                || matches!(s.get("format").and_then(Value::as_str), Some("uri" | "binary"))
                || item_is_uri;
            Field {
                name: name.clone(),
                kind,
                required: required.contains(name.as_str()),
                values,
                default: get("default").map(Value::to_string),
                min,
                max,
                nullable: get("nullable") == Some(&Value::Bool(true)),
                description: get("description").and_then(Value::as_str).unwrap_or("").trim().to_string(),
                takes_file,
                label: type_label(doc, use_site),
                item_kind: s
                    .get("items")
                    .map(|i| resolve(doc, i))
                    .and_then(|i| i.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }
        })
        .collect()
}

/// One file slot of an output: where it sits (a JSON pointer, `*` for every item of an
/// array) and what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSlot {
    /// `/images/*`, `/video`, `/model_mesh`.
    pub pointer: String,
    /// What the file is.
    pub kind: FileKind,
}

/// Where files sit in an output component, with their kinds: read from its JSON Schema as
/// the catalogue holds it (`falq_core::outputs`, which the simulator reads too).
pub fn output_files(doc: &Value, output: &str) -> Vec<FileSlot> {
    falq_core::outputs::output_files(&bundled(doc, output)).into_iter().map(|(pointer, kind)| FileSlot { pointer, kind }).collect()
}

/// Where an output component's free text sits (a transcript, a description, a caption).
pub fn output_text(doc: &Value, output: &str) -> Vec<String> {
    falq_core::outputs::output_text(&bundled(doc, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "In": {"type": "object", "required": ["image_url"], "properties": {
                "image_url": {"type": "string", "description": " The image. "},
                "n": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
                "seed": {"type": "integer", "nullable": true},
                "size": {"allOf": [{"$ref": "#/components/schemas/Size"}], "default": "square"},
                "urls": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "uri"}}
            }},
            "Size": {"type": "string", "enum": ["square", "wide"]},
            "File": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}},
            "Out": {"type": "object", "properties": {"images": {"type": "array", "items": {"$ref": "#/components/schemas/File"}}, "video": {"allOf": [{"$ref": "#/components/schemas/File"}]}, "seed": {"type": "integer"}}},
            "Unused": {"type": "string"}
        }}})
    }

    #[test]
    fn a_bundle_holds_what_its_root_reaches_and_no_more() {
        let b = bundled(&doc(), "In");
        assert_eq!(b["properties"]["size"], json!({"allOf": [{"$ref": "#/definitions/Size"}], "default": "square"}));
        assert_eq!(b["properties"]["seed"], json!({"type": ["integer", "null"]}));
        assert_eq!(b["definitions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["Size"]);
        assert_eq!(b["$schema"], json!(DIALECT));
        // It compiles in the catalogue's dialect, and its references resolve.
        let v = falq_core::json_schema::compile(&b).unwrap();
        assert!(v.is_valid(&json!({"image_url": "https://x/a.png", "size": "wide", "seed": null})));
        assert!(!v.is_valid(&json!({"image_url": "https://x/a.png", "size": "tall"})), "Size is reached through the definitions");
        assert!(!v.is_valid(&json!({"image_url": "https://x/a.png", "n": 5})));
        // A format is an annotation: the catalogue refuses no string for it.
        assert!(v.is_valid(&json!({"image_url": "x", "urls": ["not a uri"]})));
    }

    /// Draft 7 ignores whatever stands beside a `$ref`: the conversion moves a `$ref` with
    /// siblings into an `allOf`, so every sibling still constrains (as in 2020-12).
    #[test]
    fn a_ref_with_siblings_keeps_them_in_force() {
        let doc = json!({"components": {"schemas": {
            "In": {"type": "object", "properties": {
                "n": {"$ref": "#/components/schemas/N", "maximum": 3, "description": "d"},
                "m": {"$ref": "#/components/schemas/N", "allOf": [{"minimum": 2}]},
                "o": {"$ref": "#/components/schemas/N", "nullable": true}
            }},
            "N": {"type": "integer"}
        }}});
        let b = bundled(&doc, "In");
        assert_eq!(b["properties"]["n"], json!({"allOf": [{"$ref": "#/definitions/N"}], "maximum": 3, "description": "d"}));
        assert_eq!(b["properties"]["m"], json!({"allOf": [{"$ref": "#/definitions/N"}, {"minimum": 2}]}));
        assert_eq!(b["properties"]["o"], json!({"anyOf": [{"$ref": "#/definitions/N"}, {"type": "null"}]}));
        let v = falq_core::json_schema::compile(&b).unwrap();
        for (input, valid) in [
            (json!({"n": 3}), true),
            (json!({"n": 4}), false),
            (json!({"n": "3"}), false),
            (json!({"m": 1}), false),
            (json!({"m": 2}), true),
            (json!({"o": null}), true),
            (json!({"o": "x"}), false),
        ] {
            assert_eq!(v.is_valid(&input), valid, "{input}");
        }
    }

    #[test]
    fn every_file_slot_of_an_output_has_its_kind_and_text_is_found() {
        let doc = json!({"components": {"schemas": {
            "File": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}, "content_type": {"type": "string"}, "file_name": {"type": "string"}}},
            "VideoFile": {"type": "object", "properties": {"url": {"type": "string"}}},
            "Out": {"type": "object", "properties": {
                "images": {"type": "array", "items": {"$ref": "#/components/schemas/File"}},
                "audio_file": {"allOf": [{"$ref": "#/components/schemas/File"}]},
                "model_mesh": {"$ref": "#/components/schemas/File"},
                "clip": {"$ref": "#/components/schemas/VideoFile"},
                "typed": {"allOf": [{"$ref": "#/components/schemas/File"}], "x-falq-examples": [{"url": "https://x/a", "content_type": "audio/mpeg"}]},
                "named": {"allOf": [{"$ref": "#/components/schemas/File"}], "x-falq-examples": [{"url": "https://x/scene.glb"}]},
                "described": {"allOf": [{"$ref": "#/components/schemas/File"}], "description": "The generated video."},
                "archive": {"$ref": "#/components/schemas/File"},
                "result": {"type": "object", "properties": {"frames": {"type": "array", "items": {"type": "object", "properties": {
                    "image": {"type": "object", "properties": {"url": {"type": "string"}}},
                    "caption": {"type": "string"}}}}}},
                "text": {"type": "string"},
                "prompt": {"type": "string"},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "seed": {"type": "integer"}
            }}
        }}});
        let files: Vec<(String, FileKind)> = output_files(&doc, "Out").into_iter().map(|f| (f.pointer, f.kind)).collect();
        let expected = [
            ("/images/*", FileKind::Image),
            ("/audio_file", FileKind::Audio),
            ("/model_mesh", FileKind::Mesh),
            ("/clip", FileKind::Video),
            ("/typed", FileKind::Audio),
            ("/named", FileKind::Mesh),
            ("/described", FileKind::Video),
            ("/archive", FileKind::Other),
            ("/result/frames/*/image", FileKind::Image),
        ];
        assert_eq!(files, expected.map(|(p, k)| (p.to_string(), k)));
        assert_eq!(output_text(&doc, "Out"), ["/result/frames/*/caption", "/text"]);
    }

    #[test]
    fn field_tables_and_output_files() {
        let f = fields(&doc(), "In");
        let got: Vec<(&str, &str, bool, bool)> = f.iter().map(|f| (f.name.as_str(), f.kind.as_str(), f.required, f.takes_file)).collect();
        assert_eq!(
            got,
            [
                ("image_url", "string", true, true),
                ("n", "integer", false, false),
                ("seed", "integer", false, false),
                ("size", "string", false, false),
                ("urls", "array", false, true)
            ]
        );
        assert_eq!((f[1].min, f[1].max, f[1].default.as_deref()), (Some(1.0), Some(4.0), Some("1")));
        assert_eq!(f[3].values, ["square", "wide"]);
        assert_eq!((f[3].label.as_str(), f[4].label.as_str(), f[4].item_kind.as_str()), ("square | wide", "array of string", "string"));
        assert_eq!(f[0].description, "The image.");
        assert!(f[2].nullable);
        assert_eq!(f[4].min, Some(1.0), "an array's bounds are its item counts");
        let files: Vec<(String, FileKind)> = output_files(&doc(), "Out").into_iter().map(|f| (f.pointer, f.kind)).collect();
        assert_eq!(files, [("/images/*".to_string(), FileKind::Image), ("/video".to_string(), FileKind::Video)]);
    }
}
