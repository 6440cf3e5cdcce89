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

/// Calls `f(keys, schema)` on every schema of the document, nested ones included,
/// where `keys` is the schema's path of JSON keys from the document's top (list
/// indices as numbers), as [`crate::load::Source::line_of_path`] takes it.
pub fn for_each_schema_at(doc: &Value, f: &mut dyn FnMut(&[String], &Value)) {
    let mut roots: Vec<Vec<String>> = Vec::new();
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
        for name in schemas.keys() {
            roots.push(vec!["components".into(), "schemas".into(), name.clone()]);
        }
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let base = vec!["paths".to_string(), path.clone(), method.to_string()];
                if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                    for i in 0..params.len() {
                        roots.push([base.clone(), vec!["parameters".into(), i.to_string(), "schema".into()]].concat());
                    }
                }
                if let Some(content) = op.pointer("/requestBody/content").and_then(Value::as_object) {
                    for mt in content.keys() {
                        roots.push([base.clone(), vec!["requestBody".into(), "content".into(), mt.clone(), "schema".into()]].concat());
                    }
                }
                if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                    for (code, r) in responses {
                        for mt in
                            r.get("content").and_then(Value::as_object).map(|c| c.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
                        {
                            roots.push(
                                [base.clone(), vec!["responses".into(), code.clone(), "content".into(), mt, "schema".into()]].concat(),
                            );
                        }
                    }
                }
            }
        }
    }
    for keys in roots {
        if let Some(schema) = doc.pointer(&pointer(&keys)) {
            walk_schema_at(schema, &mut keys.clone(), f);
        }
    }
}

/// Every `$ref` anywhere in `v`, in document order.
pub fn refs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r.to_string());
            }
            m.values().for_each(|v| refs_in(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// The JSON pointer of a path of keys.
pub fn pointer(keys: &[String]) -> String {
    keys.iter().map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1"))).collect()
}

/// [`for_each_schema_at`] with each schema mutable: `f` may change a schema's own
/// keywords, not which schemas are nested in it.
pub fn for_each_schema_at_mut(doc: &mut Value, f: &mut dyn FnMut(&[String], &mut Value)) {
    let mut all = Vec::new();
    for_each_schema_at(doc, &mut |keys, _| all.push(keys.to_vec()));
    for keys in all {
        if let Some(s) = doc.pointer_mut(&pointer(&keys)) {
            f(&keys, s);
        }
    }
}

/// Calls `f(keys, schema)` on `schema` and, depth first, on every schema nested in it.
pub fn walk_schema_at(schema: &Value, keys: &mut Vec<String>, f: &mut dyn FnMut(&[String], &Value)) {
    f(keys, schema);
    let Some(obj) = schema.as_object() else { return };
    let mut nested = |keys: &mut Vec<String>, path: &[&str], s: &Value| {
        let n = keys.len();
        keys.extend(path.iter().map(|k| k.to_string()));
        walk_schema_at(s, keys, f);
        keys.truncate(n);
    };
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            nested(keys, &["properties", name], p);
        }
    }
    for key in ["items", "not", "additionalProperties"] {
        if let Some(s) = obj.get(key).filter(|s| s.is_object()) {
            nested(keys, &[key], s);
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            for (i, s) in list.iter().enumerate() {
                nested(keys, &[key, &i.to_string()], s);
            }
        }
    }
    for key in ["definitions", "$defs"] {
        if let Some(defs) = obj.get(key).and_then(Value::as_object) {
            for (name, s) in defs {
                nested(keys, &[key, name], s);
            }
        }
    }
}

/// Where a schema sits, for people: the operation or component, then the field path
/// (`POST /fal-ai/x, field image_size.width`; `components.schemas.Lora, field path`).
pub fn describe_path(keys: &[String]) -> String {
    let (owner, rest) = match keys {
        [p, path, method, rest @ ..] if p == "paths" => (format!("{} {path}", method.to_uppercase()), rest),
        [c, s, name, rest @ ..] if c == "components" && s == "schemas" => (format!("schema {name}"), rest),
        _ => (keys.join("."), &[][..]),
    };
    let mut field = String::new();
    let mut it = rest.iter().peekable();
    while let Some(k) = it.next() {
        match k.as_str() {
            "properties" | "definitions" | "$defs" => {
                if let Some(name) = it.next() {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(name);
                }
            }
            "items" => field.push_str("[]"),
            "allOf" | "oneOf" | "anyOf" => {
                let i = it.next().map_or(String::new(), |i| i.clone());
                field.push_str(&format!("<{k} {i}>"));
            }
            _ => {}
        }
    }
    if field.is_empty() { owner } else { format!("{owner}, field {field}") }
}

/// Words Rust reserves: a name equal to one gets a trailing `_` (as typify does).
pub const RUST_KEYWORDS: &[&str] = &[
    "_", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else", "enum", "extern",
    "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv",
    "pub", "ref", "return", "Self", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// The Rust field name typify gives a property (its `sanitize(name, Case::Snake)`):
/// `numImages` and `num-images` both become `num_images`.
pub fn rust_field_name(name: &str) -> String {
    use heck::ToSnakeCase;
    let out = match name {
        "+1" => "plus1".to_string(),
        "-1" => "minus1".to_string(),
        _ => name.replace('\'', "").replace(|c| !unicode_ident::is_xid_continue(c), "-").to_snake_case(),
    };
    let out = match out.chars().next() {
        None => "x".to_string(),
        Some(c) if unicode_ident::is_xid_start(c) => out,
        Some(_) => format!("x{out}"),
    };
    if RUST_KEYWORDS.contains(&out.as_str()) { format!("{out}_") } else { out }
}

/// Whether `name` is an ASCII Rust identifier that is no keyword.
pub fn is_ascii_ident(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RUST_KEYWORDS.contains(&name)
}

/// `base`, or `base2`, `base3`, ... whichever `taken` does not hold yet.
pub fn unique_name(base: &str, taken: &dyn Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..).map(|n| format!("{base}{n}")).find(|n| !taken(n)).unwrap_or_default()
}
