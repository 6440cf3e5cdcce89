//! OpenAPI 3.0 schema objects as JSON Schema (the catalogue's dialect): `$ref`s to the definitions, `nullable` as a
//! null type, the boolean `exclusiveMinimum` as a number, the page's examples as `examples`, other
//! extensions and OpenAPI-only words dropped.

use falq_api::json_schema::DEFINITIONS;
use serde_json::{Map, Value, json};

/// Where OpenAPI keeps named schemas (regen's one definition); a `$ref` into it becomes
/// one into the definitions.
pub use xtask::walk::COMPONENT_PREFIX;

/// The JSON Schema form of an OpenAPI 3.0 schema: regen's own conversion (the
/// one the catalogue's schemas are made with), so the suite checks the same thing.
pub use xtask::export::to_json_schema;

/// Gives a converted schema the converted components as its definitions, so its `$ref`s resolve.
pub fn bundle(mut root: Value, defs: &Map<String, Value>) -> Value {
    match &mut root {
        Value::Object(m) => {
            m.insert(DEFINITIONS.into(), Value::Object(defs.clone()));
            root
        }
        other => json!({"allOf": [other.clone()], DEFINITIONS: defs}),
    }
}

/// The converted form of every component schema of an OpenAPI document.
pub fn converted_components(document: &Value) -> Map<String, Value> {
    document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| schemas.iter().map(|(name, s)| (name.clone(), to_json_schema(s))).collect())
        .unwrap_or_default()
}

/// A key as one segment of a JSON pointer: regen's escaping.
pub use xtask::walk::escape_key as escape_pointer;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(openapi: Value, expected: Value) {
        assert_eq!(to_json_schema(&openapi), expected);
    }

    #[test]
    fn conversion_table() {
        check(json!({"type": "integer", "nullable": true}), json!({"type": ["integer", "null"]}));
        check(json!({"type": "string", "enum": ["a"], "nullable": true}), json!({"type": ["string", "null"], "enum": ["a", null]}));
        check(
            json!({"allOf": [{"$ref": "#/components/schemas/M"}], "nullable": true, "description": "d"}),
            json!({"anyOf": [{"allOf": [{"$ref": "#/definitions/M"}], "description": "d"}, {"type": "null"}]}),
        );
        check(json!({"type": "number", "minimum": 1, "exclusiveMinimum": true}), json!({"type": "number", "exclusiveMinimum": 1}));
        check(
            json!({"type": "string", "x-falq-examples": ["a"], "example": "b", "stray": null}),
            json!({"type": "string", "examples": ["a"]}),
        );
        check(json!({"properties": {"type": {"type": "string"}}}), json!({"properties": {"type": {"type": "string"}}}));
    }
}
