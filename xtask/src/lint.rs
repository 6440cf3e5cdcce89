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
        let stray: Vec<String> = m.keys().filter(|k| !k.starts_with("x-") && !SCHEMA_KEYWORDS.contains(&k.as_str())).cloned().collect();
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
}
