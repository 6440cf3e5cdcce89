//! Where an output's files and free text sit, read from its JSON Schema in the catalogue's
//! form ([`crate::json_schema`]): regen writes them into the catalogue from each page's
//! output schema, and the simulator reads them the same way from the schema of an endpoint
//! it sells without a page. The one reading of what an output holds.

use serde_json::Value;

use crate::FileKind;
use crate::json_schema::{DEFINITION_REF, through, type_of};

/// Where files sit in the output `root` describes, as JSON pointers (`*` for every item of
/// an array), with their kinds: every object whose `url` is a string, not looked inside.
pub fn output_files(root: &Value) -> Vec<(String, FileKind)> {
    let mut out = Vec::new();
    walk(root, root, String::new(), &mut Vec::new(), 0, &mut |at, fields, s| {
        if is_file(root, s) {
            out.push((at.to_string(), file_kind(root, s, fields)));
            return false;
        }
        true
    });
    out
}

/// Field names an output echoes from its input or that name no text a user reads.
const NOT_TEXT: &[&str] = &["prompt", "negative_prompt", "request_id", "content_type", "file_name", "url", "status", "seed"];

/// Where the output's free text sits (a transcript, a description, a caption): every string
/// field that is no enum, no URL and no echo of the input, outside files.
pub fn output_text(root: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, String::new(), &mut Vec::new(), 0, &mut |at, fields, s| {
        if is_file(root, s) {
            return false;
        }
        let r = resolve(root, s);
        let name = fields.iter().rev().find(|f| **f != "*").copied().unwrap_or("");
        let is_text = type_of(r) == "string"
            && r.get("enum").is_none()
            && r.get("format").is_none()
            && !name.is_empty()
            && !NOT_TEXT.contains(&name)
            && !name.ends_with("_url")
            && !name.ends_with("_id");
        if is_text {
            out.push(at.to_string());
        }
        true
    });
    out
}

/// Calls `visit(pointer, field names, use site)` on every schema of the output, depth
/// first, into properties, items and union branches; `visit` answers whether to go inside.
fn walk<'a>(
    root: &'a Value,
    s: &'a Value,
    at: String,
    fields: &mut Vec<&'a str>,
    depth: usize,
    visit: &mut dyn FnMut(&str, &[&str], &Value) -> bool,
) {
    if depth > 12 || !visit(&at, fields, s) {
        return;
    }
    let r = resolve(root, s);
    if let Some(props) = r.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            fields.push(name);
            walk(root, p, format!("{at}/{name}"), fields, depth + 1, visit);
            fields.pop();
        }
    }
    if let Some(items) = r.get("items") {
        fields.push("*");
        walk(root, items, format!("{at}/*"), fields, depth + 1, visit);
        fields.pop();
    }
    for key in ["oneOf", "anyOf"] {
        for branch in r.get(key).and_then(Value::as_array).into_iter().flatten() {
            walk(root, branch, at.clone(), fields, depth + 1, visit);
        }
    }
}

/// The schemas a use site passes through to what it is ([`through`]), and the definitions
/// its `$ref`s name on the way (a `$ref` followed to its target).
fn chain<'a>(root: &'a Value, s: &'a Value) -> (Vec<&'a Value>, Vec<&'a str>) {
    let schemas: Vec<&Value> = through(root, s).collect();
    let followed = &schemas[..schemas.len().saturating_sub(1)];
    let names = followed.iter().filter_map(|s| s.get("$ref")?.as_str()?.strip_prefix(DEFINITION_REF)).collect();
    (schemas, names)
}

/// What a use site is, unions left as they are.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    through(root, s).last().unwrap_or(s)
}

/// Whether a schema is a file of an output: fal's `File` (and `Image`, `VideoFile`, ...):
/// an object whose `url` property is a string.
fn is_file(root: &Value, s: &Value) -> bool {
    let r = resolve(root, s);
    r.pointer("/properties/url").map(|u| resolve(root, u)).is_some_and(|u| u.get("type").is_none() || type_of(u) == "string")
}

/// What a file slot is, from the most to the least telling: the media type or file name
/// the schema gives (a default, a single enum value, an example), the names of the
/// definitions it is (`VideoFile`), the names of the fields it sits under (`audio_file`,
/// `images`), then the descriptions (`The generated video`); a file nothing tells is `Other`.
fn file_kind(root: &Value, use_site: &Value, fields: &[&str]) -> FileKind {
    let (schemas, definitions) = chain(root, use_site);
    let file = resolve(root, use_site);
    // Values a property of the file takes: its default, its single enum value, and the
    // examples of the file (on any schema of the chain) or of the property.
    let stated = |property: &str| -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = file.get("properties").and_then(|p| p.get(property)) {
            let p = resolve(root, p);
            out.extend(p.get("default").and_then(Value::as_str).map(str::to_string));
            if let Some([one]) = p.get("enum").and_then(Value::as_array).map(Vec::as_slice) {
                out.extend(one.as_str().map(str::to_string));
            }
            out.extend(p.get("examples").and_then(Value::as_array).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)));
        }
        for s in &schemas {
            let examples = s.get("examples").and_then(Value::as_array).into_iter().flatten().chain(s.get("default"));
            out.extend(examples.filter_map(|e| e.get(property)).filter_map(|v| v.as_str().map(str::to_string)));
        }
        out
    };
    let by_type = stated("content_type").iter().find_map(|t| FileKind::from_content_type(t));
    let by_name = || stated("file_name").iter().chain(&stated("url")).find_map(|n| FileKind::from_name(n));
    let by_definition = || definitions.iter().find_map(|n| FileKind::from_words(n));
    let by_field = || fields.iter().rev().find_map(|n| FileKind::from_words(n));
    let by_description = || schemas.iter().filter_map(|s| s.get("description").and_then(Value::as_str)).find_map(FileKind::from_words);
    by_type.or_else(by_name).or_else(by_definition).or_else(by_field).or_else(by_description).unwrap_or(FileKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every way a file's kind is told, each winning over those after it.
    #[test]
    fn files_are_found_with_the_most_telling_kind() {
        let file =
            json!({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}, "content_type": {"type": "string"}}});
        let root = json!({"type": "object", "properties": {
            "audio": file,
            "clips": {"type": "array", "items": {"type": "object", "properties": {"video": {"$ref": "#/definitions/File"}}}},
            "asset": {"type": "object", "properties": {"url": {"type": "string"}, "content_type": {"type": "string", "default": "model/gltf-binary"}}},
            "named": {"allOf": [{"$ref": "#/definitions/File"}], "examples": [{"url": "https://x/a.wav"}]},
            "mesh": {"$ref": "#/definitions/MeshFile"},
            "thing": {"$ref": "#/definitions/File"},
            "told": {"allOf": [{"$ref": "#/definitions/File"}], "description": "The generated video"},
            "maybe": {"anyOf": [{"$ref": "#/definitions/ImageFile"}, {"type": "null"}]},
            "text": {"type": "string"},
            "caption": {"type": ["string", "null"]},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "link_url": {"type": "string"}},
            "definitions": {
                "File": file,
                "MeshFile": file,
                "ImageFile": file,
            }
        });
        let files = output_files(&root);
        assert_eq!(
            files,
            [
                ("/audio".to_string(), FileKind::Audio),
                ("/clips/*/video".to_string(), FileKind::Video),
                ("/asset".to_string(), FileKind::Mesh),
                ("/named".to_string(), FileKind::Audio),
                ("/mesh".to_string(), FileKind::Mesh),
                ("/thing".to_string(), FileKind::Other),
                ("/told".to_string(), FileKind::Video),
                ("/maybe".to_string(), FileKind::Image),
            ]
        );
        assert_eq!(output_text(&root), ["/text", "/caption"], "a file's url and content type, an enum, a URL are no text");
    }
}
