//! Endpoints the simulated relay sells beyond the catalogue (`SimConfig::extra_endpoints`):
//! a relay always sells more models than falq has pages for, and a client must run those
//! untyped. Each takes any JSON object and answers an output made from the JSON Schema
//! given, its files and text found as regen finds those of the catalogue's endpoints
//! (`falq_api::outputs`: a file's kind from its media type, names, field or description).

use falq_api::{EndpointInfo, OutputFile};
use serde_json::Value;

/// An endpoint without a page: `id` takes any JSON object and answers, once completed, an
/// output shaped by `output_schema` (a JSON Schema in the catalogue's form: files are
/// objects with a string `url`). Leaked: an endpoint lives as long as the process, as the
/// catalogue's do.
pub fn extra_endpoint(id: &str, output_schema: Value) -> &'static EndpointInfo {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let files = falq_api::outputs::output_files(&output_schema);
    let output_files: Vec<OutputFile> = files.into_iter().map(|(pointer, kind)| OutputFile { pointer: leak(pointer), kind }).collect();
    let text: Vec<&'static str> = falq_api::outputs::output_text(&output_schema).into_iter().map(leak).collect();
    let kind = falq_api::output_kind_label(output_files.iter().map(|f| (f.kind, f.pointer.contains('*'))), !text.is_empty());
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
        check_output_json: falq_api::check_json_as::<serde_json::Map<String, Value>>,
        fields: &[],
        input_json_schema: r#"{"type": "object"}"#,
        output_json_schema: leak(output_schema.to_string()),
        output_files: Box::leak(output_files.into_boxed_slice()),
        output_text: Box::leak(text.into_boxed_slice()),
        output_kind: leak(kind),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use falq_api::FileKind;
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
        assert_eq!(e.output_text, ["/text"]);
        assert!(!e.output_kind.is_empty(), "{:?}", e.output_kind);
        assert!((e.check_output)(&json!({})).is_ok() && (e.check_output)(&json!([])).is_err());
        for (text, object) in [(" {\"a\": 1}", true), ("{}", true), ("[]", false), ("\"{}\"", false), ("{", false), ("7", false)] {
            assert_eq!((e.check_output_json)(text.as_bytes()).is_ok(), object, "{text}");
        }
    }
}
