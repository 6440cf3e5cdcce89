//! Endpoints the simulated relay sells beyond the catalogue (`SimConfig::extra_endpoints`):
//! a relay always sells more models than falq has pages for, and a client must run those
//! untyped. Each takes any JSON object and answers an output made from the JSON Schema
//! given, its files typed by the words that name them (`audio`, `video`, `model_mesh`).

use falq_api::{EndpointInfo, FileKind, OutputFile};
use serde_json::Value;

/// An endpoint without a page: `id` takes any JSON object and answers, once completed, an
/// output shaped by `output_schema` (a JSON Schema; files are objects with a string `url`,
/// their kinds read from their field names, or a `content_type` default). Leaked: an
/// endpoint lives as long as the process, as the catalogue's do.
pub fn extra_endpoint(id: &str, output_schema: Value) -> &'static EndpointInfo {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut files = Vec::new();
    file_slots(&output_schema, String::new(), &mut Vec::new(), &mut files, 0);
    let output_files: Vec<OutputFile> = files.into_iter().map(|(pointer, kind)| OutputFile { pointer: leak(pointer), kind }).collect();
    let id = id.trim_matches('/');
    Box::leak(Box::new(EndpointInfo {
        id: leak(id.to_string()),
        app_id: leak(falq_api::app_id_of(id)),
        operation_id: "extra_endpoint",
        summary: "an endpoint the relay sells without a page",
        description: "",
        input_schema: "",
        output_schema: "",
        check_output: |v| if v.is_object() { Ok(()) } else { Err("not a JSON object".into()) },
        fields: &[],
        input_json_schema: r#"{"type": "object"}"#,
        output_json_schema: leak(output_schema.to_string()),
        output_files: Box::leak(output_files.into_boxed_slice()),
        output_text: &[],
        output_kind: "",
    }))
}

fn file_slots(s: &Value, at: String, names: &mut Vec<String>, out: &mut Vec<(String, FileKind)>, depth: usize) {
    if depth > 16 {
        return;
    }
    let props = s.get("properties").and_then(Value::as_object);
    if props.is_some_and(|p| p.contains_key("url")) {
        let stated = s.pointer("/properties/content_type/default").and_then(Value::as_str).and_then(FileKind::from_content_type);
        let named = names.iter().rev().find_map(|n| FileKind::from_words(n));
        out.push((at, stated.or(named).unwrap_or(FileKind::Other)));
        return;
    }
    for (name, p) in props.into_iter().flatten() {
        names.push(name.clone());
        file_slots(p, format!("{at}/{name}"), names, out, depth + 1);
        names.pop();
    }
    if let Some(items) = s.get("items") {
        file_slots(items, format!("{at}/*"), names, out, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_are_found_with_their_kinds() {
        let file = json!({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}});
        let e = extra_endpoint(
            "/acme/speech/v2/",
            json!({"type": "object", "properties": {
                "audio": file, "clips": {"type": "array", "items": {"type": "object", "properties": {"video": file}}},
                "asset": {"type": "object", "properties": {"url": {"type": "string"}, "content_type": {"type": "string", "default": "model/gltf-binary"}}},
                "text": {"type": "string"}}}),
        );
        assert_eq!((e.id, e.app_id), ("acme/speech/v2", "acme/speech"));
        let files: Vec<(&str, FileKind)> = e.output_files.iter().map(|f| (f.pointer, f.kind)).collect();
        assert_eq!(files, [("/audio", FileKind::Audio), ("/clips/*/video", FileKind::Video), ("/asset", FileKind::Mesh)]);
        assert!((e.check_output)(&json!({})).is_ok() && (e.check_output)(&json!([])).is_err());
    }
}
