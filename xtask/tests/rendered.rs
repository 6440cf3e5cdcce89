//! Rendered pages (kkiai's: a parameter table, no YAML), as a user copies them from the
//! browser, some cut mid-way: each replaces the page of its endpoint with no code change,
//! into the same fields. The pages are in `xtask/tests/rendered/` (seed 001 and kkiai's
//! pages of three more endpoints); every endpoint of the catalogue is also rendered as
//! kkiai renders pages. Which page each endpoint has is read from `specs/`, whatever it holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod common;
use common::*;

/// The fields of an endpoint's input: name → (kind, required).
fn fields(r: &xtask::Regen, id: &str) -> BTreeMap<String, (String, bool)> {
    let op = &r.spec["paths"][format!("/{id}")]["post"];
    let input = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap_or_else(|| panic!("{id}: {op}"));
    let name = input.rsplit('/').next().unwrap();
    xtask::export::fields(&r.spec, name).into_iter().map(|f| (f.name, (f.kind, f.required))).collect()
}

/// A page under `specs/` (not ours) of one POST endpoint: (the file, the endpoint's path,
/// whether it is a rendered page). Developing duplicates are left out: the released page
/// outranks them, whatever its dialect.
fn vendored_pages(specs: &Path) -> Vec<(PathBuf, String, bool)> {
    let mut pages = Vec::new();
    let mut stack = vec![specs.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p != specs.join("falq") {
                    stack.push(p);
                }
                continue;
            }
            if !p.extension().is_some_and(|x| x == "md" || x == "txt") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains("x-apifox-status: developing") {
                continue;
            }
            if let Some(path) = post_path(&p, &text) {
                pages.push((p, path, xtask::rendered::is_rendered(&text)));
            }
        }
    }
    pages.sort();
    pages
}

/// The one POST endpoint a page describes (a result page, or a page of several, has none).
fn post_path(file: &Path, text: &str) -> Option<String> {
    let docs = xtask::load::load_file(file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let posts: Vec<String> = docs
        .iter()
        .flat_map(|d| d.value["paths"].as_object().into_iter().flatten())
        .filter(|(_, item)| item.get("post").is_some())
        .map(|(path, _)| xtask::normalize::without_base_url_placeholder(path))
        .filter(|path| !path.contains('{'))
        .collect();
    match posts.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The rendered pages of `xtask/tests/rendered/`, each with its endpoint's path.
fn fixtures() -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(root().join("xtask/tests/rendered"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let path = post_path(&p, &std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|| panic!("{}: no endpoint", p.display()));
            (p, path)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 4, "seed 001 and kkiai's pages: {out:?}");
    out
}

#[test]
fn a_rendered_page_replaces_the_page_of_its_endpoint_into_the_same_fields() {
    let original = xtask::regen(&root().join("specs"), &root()).expect("regen");
    let pages = vendored_pages(&root().join("specs"));
    for (fixture, path) in fixtures() {
        let page = fixture.file_name().unwrap().to_string_lossy().into_owned();
        // The catalogue's page of the endpoint, in whatever dialect; an endpoint the
        // catalogue does not hold has nothing to compare with.
        let Some((current, _, _)) = pages.iter().find(|(_, p, _)| *p == path) else { continue };
        let id = path.trim_start_matches('/');
        let dir = std::env::temp_dir().join(format!("falq-rendered-{}-{}", id.replace('/', "-"), std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&root().join("specs"), &dir.join("specs"));
        std::fs::remove_file(dir.join("specs").join(current.strip_prefix(root().join("specs")).unwrap())).unwrap();
        std::fs::create_dir_all(dir.join("specs/kkiai-copy")).unwrap();
        std::fs::copy(&fixture, dir.join("specs/kkiai-copy").join(&page)).unwrap();
        let r = xtask::regen(&dir.join("specs"), &dir).unwrap_or_else(|e| panic!("{page}: regen refused:\n{e}"));
        let (yaml, rendered) = (fields(&original, id), fields(&r, id));
        // The same required fields; every field both pages describe has one type.
        let required = |f: &BTreeMap<String, (String, bool)>| f.iter().filter(|(_, (_, r))| *r).map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(required(&rendered), required(&yaml), "{page}: required fields");
        for (name, (kind, _)) in &rendered {
            if let Some((yaml_kind, _)) = yaml.get(name) {
                assert_eq!(kind, yaml_kind, "{page}: {name}");
            }
        }
        let shared = rendered.keys().filter(|n| yaml.contains_key(*n)).count();
        assert!(shared * 2 > rendered.len(), "{page}: most fields are the other page's: {rendered:?} / {yaml:?}");
        // What the prose says is read as in Apifox pages, and listed for review.
        assert!(r.inferred.iter().any(|i| i.file.ends_with(&page)), "{page}: nothing inferred from its prose");
        // The output is the endpoint's, whichever page describes its input.
        let output = |r: &xtask::Regen| r.spec["paths"][path.as_str()]["post"]["x-falq-output"].clone();
        assert_eq!(output(&r), output(&original), "{page}");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn beside_the_apifox_page_of_its_endpoint_a_rendered_page_is_set_aside_with_a_note() {
    let pages = vendored_pages(&root().join("specs"));
    let dir = std::env::temp_dir().join(format!("falq-rendered-both-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("specs"), &dir.join("specs"));
    std::fs::create_dir_all(dir.join("specs/kkiai-copy")).unwrap();
    // Each fixture whose endpoint has an Apifox page (two rendered pages of one endpoint
    // are of equal rank: an error, as for two Apifox pages).
    let mut beside = Vec::new();
    for (fixture, path) in fixtures() {
        if pages.iter().any(|(_, p, rendered)| *p == path && !rendered) {
            let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::copy(&fixture, dir.join("specs/kkiai-copy").join(&name)).unwrap();
            beside.push(name);
        }
    }
    let r = xtask::regen(&dir.join("specs"), &dir).unwrap_or_else(|e| panic!("regen refused:\n{e}"));
    for page in beside {
        assert!(
            r.warnings.iter().any(|w| w.file.ends_with(&page) && w.message.contains("is generated from the Apifox page")),
            "{page}: {:?}",
            r.warnings.iter().filter(|w| w.file.ends_with(&page)).collect::<Vec<_>>()
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// One row of an input's field table, nested fields included: (`loras.path`, kind, required).
type Row = (String, String, bool);

/// The kind of a schema in a word: its type (an array's with its items'), `one of`.
fn kind(doc: &Value, s: &Value) -> String {
    let s = xtask::export::resolve(doc, s);
    if s.get("oneOf").is_some() || s.get("anyOf").is_some() {
        return "one of".into();
    }
    if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        return kind(doc, only);
    }
    match s.get("type").and_then(Value::as_str) {
        Some("array") => format!("array[{}]", kind(doc, s.get("items").unwrap_or(&Value::Null))),
        Some(t) => t.to_string(),
        None if s.get("enum").is_some() => "string".into(),
        None => "any".into(),
    }
}

/// The object a field holds fields of: itself, or an array's items.
fn object_of<'a>(doc: &'a Value, s: &'a Value) -> Option<&'a Value> {
    let mut s = xtask::export::resolve(doc, s);
    if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        s = xtask::export::resolve(doc, only);
    }
    if s.get("type").and_then(Value::as_str) == Some("array") {
        s = xtask::export::resolve(doc, s.get("items")?);
    }
    s.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty()).map(|_| s)
}

fn table(doc: &Value, s: &Value, prefix: &str, out: &mut Vec<Row>) {
    let required: Vec<&str> =
        s.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, p) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
        out.push((format!("{prefix}{name}"), kind(doc, p), required.contains(&name.as_str())));
        if let Some(inner) = object_of(doc, p) {
            table(doc, inner, &format!("{prefix}{name}."), out);
        }
    }
}

fn input_of<'a>(r: &'a xtask::Regen, path: &str) -> &'a Value {
    let op = &r.spec["paths"][path]["post"];
    let input = op.pointer("/requestBody/content/application~1json/schema").unwrap_or_else(|| panic!("{path}: no input"));
    xtask::export::resolve(&r.spec, input)
}

/// A scalar as a relay's prose writes it.
fn prose_value(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The table rows kkiai's page would show for an object's fields, nested rows marked `└`
/// once per level; with `prose`, each description says the field's default, range and
/// allowed values in kkiai's wording, else every description cell is empty.
fn rendered_rows(doc: &Value, s: &Value, depth: usize, prose: bool, out: &mut String) {
    let required: Vec<&str> =
        s.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, use_site) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let p = xtask::export::resolve(doc, use_site);
        let t = match kind(doc, use_site).as_str() {
            // A union is shown as its first branch's type, as kkiai shows `image_size`.
            "one of" => {
                let first = p.get("oneOf").or_else(|| p.get("anyOf")).and_then(|b| b.get(0)).unwrap();
                kind(doc, first)
            }
            k => k.to_string(),
        };
        let mut desc = Vec::new();
        let get = |k: &str| use_site.get(k).or_else(|| p.get(k));
        if prose {
            if let Some(d) = get("default").filter(|d| !d.is_object() && !d.is_array() && !d.is_null()) {
                // kkiai quotes a free string's default, not a listed value's.
                let free = d.is_string() && p.get("enum").is_none();
                desc.push(format!("Default value: {}", if free { d.to_string() } else { prose_value(d) }));
            }
            let bound = |number: &str, items: &str| get(number).or_else(|| get(items));
            match (bound("minimum", "minItems"), bound("maximum", "maxItems")) {
                (Some(lo), Some(hi)) => desc.push(format!("Range: {lo}-{hi}")),
                (Some(lo), None) => desc.push(format!("Minimum: {lo}")),
                (None, Some(hi)) => desc.push(format!("Maximum: {hi}")),
                (None, None) => {}
            }
            if let Some(values) = p.get("enum").and_then(Value::as_array).filter(|v| v.len() > 1) {
                desc.push(format!("Supported: {}", values.iter().map(prose_value).collect::<Vec<_>>().join(", ")));
            }
        }
        let marks = "└".repeat(depth);
        let req = if required.contains(&name.as_str()) { "Required" } else { "Optional" };
        out.push_str(&format!("{marks}{}{name} | {t} | {req} | {} |\n", if depth > 0 { " " } else { "" }, desc.join(" ")));
        if let Some(inner) = object_of(doc, use_site) {
            rendered_rows(doc, inner, depth + 1, prose, out);
        }
    }
}

/// Every POST endpoint of the catalogue, its Apifox page replaced by the page kkiai would
/// render for it (in full, or cut right after its table with every description cell
/// empty), regenerates into the same field table, nested fields included; with the prose,
/// the same defaults, ranges and allowed values. The rules are not written against these
/// pages: they are made from whatever the catalogue holds.
#[test]
fn every_endpoint_of_the_catalogue_rendered_as_kkiai_renders_it_regenerates_into_the_same_fields() {
    let original = xtask::regen(&root().join("specs"), &root()).expect("regen");
    // Each page of one POST endpoint, with that endpoint's path.
    let pages: Vec<(PathBuf, String)> = vendored_pages(&root().join("specs"))
        .into_iter()
        .filter(|(_, path, _)| original.spec["paths"][path].get("post").is_some())
        .map(|(p, path, _)| (p, path))
        .collect();
    // Every endpoint but those only an authored page describes.
    let endpoints = original.spec["paths"].as_object().unwrap().values().filter(|i| i.get("post").is_some()).count();
    let authored = std::fs::read_dir(root().join("specs/falq/pages"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "md"))
        .count();
    assert!(pages.len() + authored >= endpoints, "{} pages of {endpoints} endpoints: {pages:?}", pages.len());
    for prose in [true, false] {
        let dir = std::env::temp_dir().join(format!("falq-rendered-all-{prose}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&root().join("specs"), &dir.join("specs"));
        for (page, path) in &pages {
            let input = input_of(&original, path);
            let mut text = format!(
                "Theme\n{path}\nPOST\nhttps://www.relay.example{path}\nBody Parameters (application/json)\n| Parameter | Type | Required | Description |\n|---|---|---|---|\n"
            );
            rendered_rows(&original.spec, input, 0, prose, &mut text);
            if prose {
                let example = original.spec["paths"][path]["post"].pointer("/requestBody/content/application~1json/example").cloned();
                let example = example.unwrap_or_else(|| json!({"prompt": "a cat"}));
                text.push_str(&format!(
                    "Request Example\njson\n{}cURL Example\nbash\ncurl --location --request POST",
                    serde_json::to_string_pretty(&example).unwrap()
                ));
            }
            let relative = page.strip_prefix(root().join("specs")).unwrap();
            std::fs::remove_file(dir.join("specs").join(relative)).unwrap();
            std::fs::write(dir.join("specs").join(relative).with_extension("txt"), text).unwrap();
        }
        let r = xtask::regen(&dir.join("specs"), &dir).unwrap_or_else(|e| panic!("prose {prose}: regen refused:\n{e}"));
        for (page, path) in &pages {
            let (mut want, mut got) = (Vec::new(), Vec::new());
            table(&original.spec, input_of(&original, path), "", &mut want);
            table(&r.spec, input_of(&r, path), "", &mut got);
            want.sort();
            got.sort();
            assert_eq!(got, want, "{path} (from {}), prose {prose}", page.display());
            if prose {
                let name = |r: &xtask::Regen| {
                    let op = &r.spec["paths"][path]["post"];
                    op.pointer("/requestBody/content/application~1json/schema/$ref")
                        .and_then(Value::as_str)
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_string()
                };
                let facts = |r: &xtask::Regen| -> Vec<_> {
                    xtask::export::fields(&r.spec, &name(r)).into_iter().map(|f| (f.name, f.values, f.default, f.min, f.max)).collect()
                };
                assert_eq!(facts(&r), facts(&original), "{path}: defaults, ranges, allowed values");
            }
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
