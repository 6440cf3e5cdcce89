//! Names: every Rust type and enum variant the generated crate holds is chosen here,
//! unique and readable, before progenitor sees the spec.
//!
//! typify names what it is not told about itself: an inline object becomes
//! `{Parent}{Field}`, and two schemas that end up with one name silently share the
//! first one's type; enum variants come from the values, so `a-b` and `a_b`, or
//! `写实` and `动漫`, make a crate that does not compile. So the merged spec is
//! brought into a form where typify invents nothing: every inline schema that
//! becomes a named type (an object with fields, an enum, a `oneOf`/`anyOf`) is
//! hoisted into a component of its own with a unique name, every string enum carries
//! `x-enum-varnames` that we chose (and `generate` emits those enums itself), and
//! every component name is one typify keeps as it is.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::walk::{RUST_KEYWORDS, Slot, for_each_child_mut, is_ascii_ident, pascal, schema_ref, unique_name};

/// typify's own type name for a component name (`heck`'s PascalCase after replacing
/// what is no identifier character).
fn typify_pascal(name: &str) -> String {
    use heck::ToPascalCase;
    let out = name.replace('\'', "").replace(|c| !unicode_ident::is_xid_continue(c), "-").to_pascal_case();
    let out = match out.chars().next() {
        None => "X".to_string(),
        Some(c) if unicode_ident::is_xid_start(c) => out,
        Some(_) => format!("X{out}"),
    };
    if RUST_KEYWORDS.contains(&out.as_str()) { format!("{out}_") } else { out }
}

/// An ASCII type name that typify keeps unchanged: `a_d` + `Input` → `AdInput`,
/// `写实风格` → `Schema`. `fallback` is used when nothing ASCII is left.
pub fn type_name(raw: &str, fallback: &str) -> String {
    let ascii = pascal(raw);
    let mut name = if ascii.is_empty() { fallback.to_string() } else { ascii };
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name = format!("T{name}");
    }
    for _ in 0..4 {
        let next = typify_pascal(&name);
        if next == name {
            break;
        }
        name = next;
    }
    name
}

/// Whether typify would keep `name` as it is.
pub fn is_stable_type_name(name: &str) -> bool {
    is_ascii_ident(name) && typify_pascal(name) == name
}

/// Replaces every `$ref` to the component `old` by one to `new`, everywhere in `v`.
pub fn rename_refs(v: &mut Value, renames: &[(String, String)]) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = crate::walk::component_name(r)
                && let Some((_, new)) = renames.iter().find(|(old, _)| old == name)
            {
                *r = crate::walk::ref_to(new);
            }
            for v in m.values_mut() {
                rename_refs(v, renames);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

/// Renames every component whose name typify would change (or that is no ASCII
/// identifier) to a stable, unique one, rewriting references.
pub fn stable_type_names(doc: &mut Value) {
    let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) else { return };
    let mut taken: BTreeSet<String> = schemas.keys().filter(|n| is_stable_type_name(n)).cloned().collect();
    let mut renames = Vec::new();
    for name in schemas.keys() {
        if is_stable_type_name(name) {
            continue;
        }
        let new = unique_name(&type_name(name, "Schema"), &|n| taken.contains(n));
        taken.insert(new.clone());
        renames.push((name.clone(), new));
    }
    if renames.is_empty() {
        return;
    }
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        let old = std::mem::take(schemas);
        for (k, v) in old {
            let k = renames.iter().find(|(o, _)| *o == k).map_or(k, |(_, n)| n.clone());
            schemas.insert(k, v);
        }
    }
    rename_refs(doc, &renames);
}

/// Whether typify would make a named type of this (nested) schema: a string enum, an
/// object with fields, a `oneOf`/`anyOf`, or an `allOf` that is more than one reference.
fn makes_named_type(s: &Value) -> bool {
    let Some(m) = s.as_object() else { return false };
    if m.contains_key("$ref") {
        return false;
    }
    let string_enum = m.get("enum").and_then(Value::as_array).is_some_and(|v| v.iter().any(Value::is_string));
    let object = m.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
    let union = m.contains_key("oneOf") || m.contains_key("anyOf");
    let all_of = m.get("allOf").and_then(Value::as_array).is_some_and(|l| !(l.len() == 1 && l[0].get("$ref").is_some()));
    string_enum || object || union || all_of
}

/// The keys that describe a use of a type rather than the type: they stay beside the
/// reference when a nested schema is hoisted.
const USE_KEYS: [&str; 6] = ["description", "default", "nullable", "x-falq-examples", "x-falq-untyped", "readOnly"];

/// Hoists every nested schema that would become a named type into a component named
/// after where it sits (`{Parent}{Field}`, `{Parent}Item`, `{Parent}Variant{n}`,
/// `{Parent}Value`), unique across the document, leaving `allOf: [$ref]` plus its
/// description, default and nullability in its place.
pub fn hoist_inline_types(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let mut taken: BTreeSet<String> = schemas.keys().cloned().collect();
    let mut queue: Vec<String> = schemas.keys().cloned().collect();
    let mut i = 0;
    while i < queue.len() {
        let name = queue[i].clone();
        i += 1;
        let Some(slot) = schemas.get_mut(&name) else { continue };
        let mut hoisted = Vec::new();
        hoist_children(slot, &name, &mut taken, &mut hoisted);
        for (n, s) in hoisted {
            queue.push(n.clone());
            schemas.insert(n, s);
        }
    }
}

fn hoist_children(schema: &mut Value, owner: &str, taken: &mut BTreeSet<String>, out: &mut Vec<(String, Value)>) {
    let visit = |child: &mut Value, suffix: &str, taken: &mut BTreeSet<String>, out: &mut Vec<(String, Value)>| {
        if makes_named_type(child) {
            let base = type_name(&format!("{owner}_{suffix}"), owner);
            let base = if base == owner { format!("{owner}Field") } else { base };
            let name = unique_name(&base, &|n| taken.contains(n));
            taken.insert(name.clone());
            let mut inner = std::mem::take(child);
            let mut wrapper = Map::new();
            wrapper.insert("allOf".into(), json!([schema_ref(&name)]));
            if let Some(im) = inner.as_object_mut() {
                for k in USE_KEYS {
                    if let Some(v) = im.remove(k) {
                        wrapper.insert(k.into(), v);
                    }
                }
                // The type keeps its description when the use has none of its own.
                if let Some(d) = wrapper.get("description") {
                    im.insert("description".into(), d.clone());
                }
            }
            *child = Value::Object(wrapper);
            out.push((name, inner));
        } else {
            // Not a named type itself (an array, a map, a wrapper): look inside it.
            hoist_children(child, &format!("{owner}_{suffix}"), taken, out);
        }
    };
    for_each_child_mut(schema, &mut |key, slot, child| {
        let suffix = match (key, slot) {
            ("properties", Slot::Named(field, i)) if pascal(field).is_empty() => format!("field{}", i + 1),
            (_, Slot::Named(name, _)) => name.to_string(),
            ("items", Slot::One) => "item".into(),
            ("additionalProperties", Slot::One) => "value".into(),
            (key, Slot::One) => key.into(),
            (_, Slot::At(i)) => format!("variant{}", i + 1),
        };
        visit(child, &suffix, taken, out);
    });
}

/// A readable variant name for one enum value: `IN_QUEUE` → `InQueue`, `21:9` → `R21x9`,
/// `2` → `V2`, `1.5x` → `V15x`; `None` when the value has nothing ASCII to name it by.
pub fn variant_base(value: &str) -> Option<String> {
    if let Some((a, b)) = value.split_once(':')
        && !a.is_empty()
        && !b.is_empty()
        && a.chars().all(|c| c.is_ascii_digit())
        && b.chars().all(|c| c.is_ascii_digit())
    {
        return Some(format!("R{a}x{b}"));
    }
    let ascii = value.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let name = heck::ToPascalCase::to_pascal_case(ascii.as_str());
    if name.is_empty() {
        return None;
    }
    let name = if name.starts_with(|c: char| c.is_ascii_digit()) { format!("V{name}") } else { name };
    Some(if RUST_KEYWORDS.contains(&name.as_str()) { format!("{name}_") } else { name })
}

/// Unique, readable variant names for a list of enum values, in order: values with
/// nothing ASCII are `Value1`, `Value2` (by position); clashes get `2`, `3`, ...
pub fn variant_names(values: &[&str]) -> Vec<String> {
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let base = variant_base(v).unwrap_or_else(|| format!("Value{}", i + 1));
        let name = unique_name(&base, &|n| taken.contains(n));
        taken.insert(name.clone());
        out.push(name);
    }
    out
}

/// Every component that is a string enum gets `x-enum-varnames`: the authored ones
/// are kept when they are valid, unique identifiers, one per value; all others are
/// chosen by [`variant_names`]. `null` values leave the list (the use is nullable).
pub fn name_enum_variants(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for s in schemas.values_mut() {
        let Some(m) = s.as_object_mut() else { continue };
        let Some(values) = m.get("enum").and_then(Value::as_array) else { continue };
        if !values.iter().any(Value::is_string) {
            continue;
        }
        if values.iter().any(Value::is_null) {
            let kept: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
            m.insert("enum".into(), Value::Array(kept));
            m.insert("nullable".into(), Value::Bool(true));
        }
        let values: Vec<&str> = m["enum"].as_array().map(|v| v.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let given: Option<Vec<&str>> =
            m.get("x-enum-varnames").and_then(Value::as_array).map(|v| v.iter().filter_map(Value::as_str).collect());
        let valid = given.as_ref().is_some_and(|g| {
            g.len() == values.len() && g.iter().all(|n| is_ascii_ident(n)) && g.iter().collect::<BTreeSet<_>>().len() == g.len()
        });
        if !valid {
            let names = variant_names(&values);
            m.insert("x-enum-varnames".into(), json!(names));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_typify_fixed_points() {
        for (raw, want) in [
            ("flux_1_dev_redux_input", "Flux1DevReduxInput"),
            ("a_d_input", "AdInput"),
            ("写实", "Schema"),
            ("self", "Self_"),
            ("9x", "T9x"),
        ] {
            let got = type_name(raw, "Schema");
            assert_eq!(got, want, "{raw}");
            assert!(is_stable_type_name(&got), "{got}");
        }
    }

    #[test]
    fn variant_names_are_unique_and_readable() {
        let check = |values: &[&str], want: &[&str]| assert_eq!(variant_names(values), want, "{values:?}");
        check(&["IN_QUEUE", "IN_PROGRESS"], &["InQueue", "InProgress"]);
        check(&["1:1", "1-1", "21:9"], &["R1x1", "V11", "R21x9"]);
        check(&["写实", "动漫", "3d 渲染"], &["Value1", "Value2", "V3d"]);
        check(&["a-b", "a_b", "A B"], &["AB", "AB2", "AB3"]);
        check(&["+", "-", "self", ""], &["Value1", "Value2", "Self_", "Value4"]);
    }

    #[test]
    fn nested_named_types_are_hoisted_uniquely() {
        let mut doc = json!({"components": {"schemas": {
            "In": {"type": "object", "properties": {
                "style": {"type": "string", "enum": ["a", "b"], "description": "d", "default": "a"},
                "loras": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}}}},
                "风格": {"type": "string", "enum": ["写实"]}
            }},
            "InStyle": {"type": "string"}
        }}});
        hoist_inline_types(&mut doc);
        let s = &doc["components"]["schemas"];
        assert_eq!(
            s["In"]["properties"]["style"],
            json!({"allOf": [{"$ref": "#/components/schemas/InStyle2"}], "description": "d", "default": "a"})
        );
        assert_eq!(s["InStyle2"], json!({"type": "string", "enum": ["a", "b"], "description": "d"}));
        assert_eq!(s["In"]["properties"]["loras"]["items"]["allOf"][0]["$ref"], json!("#/components/schemas/InLorasItem"));
        assert_eq!(s["In"]["properties"]["风格"]["allOf"][0]["$ref"], json!("#/components/schemas/InField3"));
        assert_eq!(s["InStyle"], json!({"type": "string"}), "an existing component keeps its name");
    }
}
