//! The one place that knows an OpenAPI document's shape, held as JSON: its operations,
//! where schemas sit (roots, and where a schema nests others: [`NESTED`]), and how a
//! component is named and reached (`#/components/schemas/{name}`: [`COMPONENT_PREFIX`],
//! [`schema_ref`], [`component_name`], [`ref_target`], [`resolve`]). Every stage of regen
//! walks schemas through here.

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

/// How a schema nests others: a map of schemas, one schema, or a list of schemas.
#[derive(Clone, Copy)]
pub enum Nest {
    /// `{name: schema, ...}`.
    Map,
    /// A schema (when the value is an object: `additionalProperties: true` is none).
    One,
    /// `[schema, ...]`.
    List,
}

/// Every keyword under which a schema holds schemas, in the order they are walked.
pub const NESTED: [(&str, Nest); 9] = [
    ("properties", Nest::Map),
    ("items", Nest::One),
    ("not", Nest::One),
    ("additionalProperties", Nest::One),
    ("allOf", Nest::List),
    ("oneOf", Nest::List),
    ("anyOf", Nest::List),
    ("definitions", Nest::Map),
    ("$defs", Nest::Map),
];

/// How a schema nests others under `keyword`, when it does.
pub fn nest_of(keyword: &str) -> Option<Nest> {
    NESTED.iter().find(|(k, _)| *k == keyword).map(|(_, n)| *n)
}

/// Where a schema sits in the one holding it, under a keyword of [`NESTED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot<'a> {
    /// In a map (`properties`), by name, the map's `n`th.
    Named(&'a str, usize),
    /// The keyword's one schema (`items`).
    One,
    /// In a list (`oneOf`), at this index.
    At(usize),
}

/// Calls `f(keyword, slot, child)` on every schema `schema` holds directly, in the order
/// of [`NESTED`]: the one list of where schemas nest, for every walk of the project.
pub fn for_each_child(schema: &Value, f: &mut dyn FnMut(&str, Slot<'_>, &Value)) {
    let Some(obj) = schema.as_object() else { return };
    for (key, nest) in NESTED {
        match (nest, obj.get(key)) {
            (Nest::Map, Some(Value::Object(m))) => m.iter().enumerate().for_each(|(i, (name, s))| f(key, Slot::Named(name, i), s)),
            (Nest::One, Some(s)) if s.is_object() => f(key, Slot::One, s),
            (Nest::List, Some(Value::Array(list))) => list.iter().enumerate().for_each(|(i, s)| f(key, Slot::At(i), s)),
            _ => {}
        }
    }
}

/// [`for_each_child`] with each child mutable.
pub fn for_each_child_mut(schema: &mut Value, f: &mut dyn FnMut(&str, Slot<'_>, &mut Value)) {
    let Some(obj) = schema.as_object_mut() else { return };
    for (key, nest) in NESTED {
        match (nest, obj.get_mut(key)) {
            (Nest::Map, Some(Value::Object(m))) => {
                m.iter_mut().enumerate().for_each(|(i, (name, s))| f(key, Slot::Named(name, i), s));
            }
            (Nest::One, Some(s)) if s.is_object() => f(key, Slot::One, s),
            (Nest::List, Some(Value::Array(list))) => list.iter_mut().enumerate().for_each(|(i, s)| f(key, Slot::At(i), s)),
            _ => {}
        }
    }
}

/// Calls `f` on `schema` and, depth first, on every schema nested in it (after `f` has
/// seen the schema holding them, so `f` may change what it holds).
pub fn walk_schema(schema: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    f(schema);
    for_each_child_mut(schema, &mut |_, _, s| walk_schema(s, f));
}

/// Calls `f` on every top-level schema of the document ([`root_keys`]: components,
/// parameters, request bodies and responses), each then walked with [`walk_schema`] by
/// the caller if needed.
pub fn for_each_root_schema(doc: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    for keys in root_keys(doc) {
        if let Some(s) = doc.pointer_mut(&pointer(&keys)) {
            f(s);
        }
    }
}

/// Where the top-level schemas of the document sit, as paths of JSON keys: each
/// component, then per operation its parameters', request body's and responses' schemas.
pub fn root_keys(doc: &Value) -> Vec<Vec<String>> {
    let mut roots: Vec<Vec<String>> = Vec::new();
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
        for name in schemas.keys() {
            roots.push(vec!["components".into(), "schemas".into(), name.clone()]);
        }
    }
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else { return roots };
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let at = |rest: &[&str]| [&["paths", path.as_str(), method][..], rest].concat().into_iter().map(str::to_string).collect();
            for i in 0..op.get("parameters").and_then(Value::as_array).map_or(0, Vec::len) {
                roots.push(at(&["parameters", &i.to_string(), "schema"]));
            }
            for mt in op.pointer("/requestBody/content").and_then(Value::as_object).into_iter().flat_map(|c| c.keys()) {
                roots.push(at(&["requestBody", "content", mt, "schema"]));
            }
            for (code, r) in op.get("responses").and_then(Value::as_object).into_iter().flatten() {
                for mt in r.get("content").and_then(Value::as_object).into_iter().flat_map(|c| c.keys()) {
                    roots.push(at(&["responses", code, "content", mt, "schema"]));
                }
            }
        }
    }
    roots
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

/// Where OpenAPI keeps named schemas: a `$ref` to a component starts so.
pub const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// The `$ref` text of a component schema.
pub fn ref_to(name: &str) -> String {
    format!("{COMPONENT_PREFIX}{name}")
}

/// The JSON `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": ref_to(name) })
}

/// The component a `$ref` names, when it names one (`#/components/schemas/X` → `X`).
pub fn component_name(r: &str) -> Option<&str> {
    r.strip_prefix(COMPONENT_PREFIX)
}

/// The component schema `name` of `doc`.
pub fn component<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("components")?.get("schemas")?.get(name)
}

/// The component a schema's own `$ref` names, if it names one of `doc` (one step).
pub fn ref_target<'a>(doc: &'a Value, s: &Value) -> Option<&'a Value> {
    component(doc, component_name(s.get("$ref")?.as_str()?)?)
}

/// Follows `$ref`s and single-`allOf` wrappers to the schema that says what a value is.
pub fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..32 {
        if s.get("$ref").is_some() {
            match ref_target(doc, s) {
                Some(t) => s = t,
                None => break,
            }
        } else if let Some([one]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            s = one;
        } else {
            break;
        }
    }
    s
}

/// Calls `f(keys, schema)` on every schema of the document, nested ones included,
/// where `keys` is the schema's path of JSON keys from the document's top (list
/// indices as numbers), as [`crate::load::Source::line_of_path`] takes it.
pub fn for_each_schema_at(doc: &Value, f: &mut dyn FnMut(&[String], &Value)) {
    let roots = root_keys(doc);
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
    keys.iter().map(|k| format!("/{}", escape_key(k))).collect()
}

/// A key as one segment of a JSON pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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
    for_each_child(schema, &mut |key, slot, s| {
        let n = keys.len();
        keys.push(key.to_string());
        match slot {
            Slot::Named(name, _) => keys.push(name.to_string()),
            Slot::At(i) => keys.push(i.to_string()),
            Slot::One => {}
        }
        walk_schema_at(s, keys, f);
        keys.truncate(n);
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_s_children_are_visited_in_the_one_order_with_their_slots() {
        let schema = json!({
            "anyOf": [{"type": "null"}],
            "properties": {"b": {"type": "string"}, "a": {"type": "integer"}},
            "additionalProperties": true,
            "items": {"type": "string"},
            "not": {"enum": [1]},
            "allOf": [{"$ref": "#/components/schemas/X"}, {"type": "object"}],
            "description": "data, no schema",
            "$defs": {"D": {}}
        });
        let mut seen = Vec::new();
        for_each_child(&schema, &mut |key, slot, _| seen.push(format!("{key} {slot:?}")));
        let expected = [
            r#"properties Named("b", 0)"#,
            r#"properties Named("a", 1)"#,
            "items One",
            "not One",
            "allOf At(0)",
            "allOf At(1)",
            "anyOf At(0)",
            r#"$defs Named("D", 0)"#,
        ];
        assert_eq!(seen, expected, "additionalProperties: true holds no schema");
        // The mutable visit sees the same, and the located walk names each place by it.
        let mut copy = schema.clone();
        let mut seen_mut = Vec::new();
        for_each_child_mut(&mut copy, &mut |key, slot, _| seen_mut.push(format!("{key} {slot:?}")));
        assert_eq!(seen_mut, expected);
        let mut at = Vec::new();
        walk_schema_at(&schema, &mut vec![], &mut |keys, _| at.push(pointer(keys)));
        assert_eq!(at, ["", "/properties/b", "/properties/a", "/items", "/not", "/allOf/0", "/allOf/1", "/anyOf/0", "/$defs/D"]);
    }
}
