//! Checks on the merged spec that no single rule owns: keys inside schemas that are no
//! schema keyword (a YAML flow mapping split at a comma leaves one with a null value).

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::load::Document;
use crate::walk::for_each_schema;

/// The keywords of an OpenAPI 3.0 schema object (plus `$ref`).
pub const SCHEMA_KEYWORDS: &[&str] = &[
    "$ref",
    "title",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "enum",
    "type",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "items",
    "properties",
    "additionalProperties",
    "description",
    "format",
    "default",
    "nullable",
    "discriminator",
    "readOnly",
    "writeOnly",
    "xml",
    "externalDocs",
    "example",
    "deprecated",
];

/// Whether a key of a schema object is a keyword of OpenAPI 3.0 (or an `x-` extension).
pub fn is_schema_word(key: &str) -> bool {
    key.starts_with("x-") || SCHEMA_KEYWORDS.contains(&key)
}

/// The JSON pointers of every key, in every schema of the document (nested ones
/// included), that is no schema keyword: what [`stray_keywords`] takes out of a spec.
pub fn stray_keys(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    crate::walk::for_each_schema_at(doc, &mut |keys, schema| {
        for key in schema.as_object().into_iter().flat_map(|m| m.keys()).filter(|k| !is_schema_word(k)) {
            found.push(format!("{}/{}", crate::walk::pointer(keys), crate::walk::escape_key(key)));
        }
    });
    found
}

/// Keys of schemas that are no keyword: an error when the value is null (a cut YAML
/// flow mapping, whose description is cut short too), else removed with a warning.
pub fn stray_keywords(spec: &mut Value, sources: &[Document]) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let locate = |key: &str, message: String| {
        let doc = sources.iter().find(|d| d.source.text.contains(key));
        match doc {
            Some(d) => d.source.diag_at(key, message),
            None => Diagnostic::new(std::path::Path::new("specs"), 0, message),
        }
    };
    for_each_schema(spec, &mut |s| {
        let Some(m) = s.as_object_mut() else { return };
        let stray: Vec<String> = m.keys().filter(|k| !is_schema_word(k)).cloned().collect();
        for key in stray {
            let value = m.remove(&key).unwrap_or(Value::Null);
            if value.is_null() {
                errors.push(
                    locate(&key, format!("a schema has the key {key:?} with no value: a YAML flow mapping split at a comma?"))
                        .help("quote the text that holds the comma, e.g. description: 'When, as ISO 8601.'"),
                );
            } else {
                warnings.push(locate(&key, format!("dropped {key:?}: not an OpenAPI 3.0 schema keyword")));
            }
        }
    });
    (warnings, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cut_flow_mapping_is_an_error_and_other_strays_are_dropped() {
        let mut spec = json!({"components": {"schemas": {"A": {"properties": {
            "ts": {"type": "string", "description": "When", "as ISO 8601.": null},
            "c": {"type": "string", "const": "x", "x-ok": 1}
        }}}}});
        let (warnings, errors) = stray_keywords(&mut spec, &[]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("\"as ISO 8601.\""), "{}", errors[0]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("\"const\""));
        assert_eq!(spec["components"]["schemas"]["A"]["properties"]["c"], json!({"type": "string", "x-ok": 1}));
    }

    #[test]
    fn stray_keys_are_found_in_every_schema_of_a_document() {
        let body = json!({"type": "object", "properties": {"a/b": {"items": {"type": "string", "when, as": null}}}});
        let doc = json!({
            "components": {"schemas": {"A": {"allOf": [{"type": "object", "x-ok": 1, "const": "x"}]}}},
            "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": body}}}}}}
        });
        let mut found = stray_keys(&doc);
        found.sort();
        assert_eq!(
            found,
            vec![
                "/components/schemas/A/allOf/0/const".to_string(),
                "/paths/~1x/post/requestBody/content/application~1json/schema/properties/a~1b/items/when, as".to_string(),
            ]
        );
        assert_eq!(doc.pointer("/components/schemas/A/allOf/0/const"), Some(&json!("x")), "each is a pointer into the document");
    }
}
