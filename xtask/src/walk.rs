//! Walking an OpenAPI document held as JSON: its operations and every schema in it.

use serde_json::{Map, Value};

/// The HTTP methods an OpenAPI path item can hold, in the order we report them.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Calls `f(path, method, operation)` for every operation of the document.
pub fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&str, &str, &mut Map<String, Value>)) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for method in METHODS {
            if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                f(path, method, op);
            }
        }
    }
}

/// The keys below which a schema holds schemas.
const SCHEMA_LISTS: [&str; 3] = ["allOf", "oneOf", "anyOf"];

/// Calls `f` on `schema` and, depth first, on every schema nested in it.
pub fn walk_schema(schema: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    f(schema);
    let Some(obj) = schema.as_object_mut() else { return };
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for p in props.values_mut() {
            walk_schema(p, f);
        }
    }
    for key in ["items", "not", "additionalProperties"] {
        if let Some(s) = obj.get_mut(key).filter(|s| s.is_object()) {
            walk_schema(s, f);
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
            for s in list {
                walk_schema(s, f);
            }
        }
    }
    for key in ["definitions", "$defs"] {
        if let Some(defs) = obj.get_mut(key).and_then(Value::as_object_mut) {
            for s in defs.values_mut() {
                walk_schema(s, f);
            }
        }
    }
}

/// Calls `f` on every top-level schema of the document: components, parameters,
/// request bodies and responses (each then walked with [`walk_schema`] by the caller if needed).
pub fn for_each_root_schema(doc: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for s in schemas.values_mut() {
            f(s);
        }
    }
    for_each_operation(doc, |_, _, op| {
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for p in params {
                if let Some(s) = p.get_mut("schema") {
                    f(s);
                }
            }
        }
        if let Some(content) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")).and_then(Value::as_object_mut) {
            for mt in content.values_mut() {
                if let Some(s) = mt.get_mut("schema") {
                    f(s);
                }
            }
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for r in responses.values_mut() {
                if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) {
                    for mt in content.values_mut() {
                        if let Some(s) = mt.get_mut("schema") {
                            f(s);
                        }
                    }
                }
            }
        }
    });
}

/// Calls `f` on every schema of the document, nested ones included.
pub fn for_each_schema(doc: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    for_each_root_schema(doc, &mut |root| walk_schema(root, f));
}

/// `flux_1_dev_redux` → `Flux1DevRedux`.
pub fn pascal(snake: &str) -> String {
    snake
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The JSON `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}
