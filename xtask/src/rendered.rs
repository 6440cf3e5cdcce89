//! Rendered pages: the relays that publish no YAML (kkiai) publish the rendered page, and
//! that is what a user copies from the browser: the endpoint's path, its method and URL, a
//! "Body Parameters (application/json)" table (`| Parameter | Type | Required | Description |`,
//! nested rows marked `└`), prose with `Default:` and `Range:`, a request example, a cURL
//! example and a response example, cut wherever the copy ended. This reads such a page into
//! the same OpenAPI document an Apifox page gives, so every later stage (the prose rules,
//! overlays, merge) treats both alike.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::diag::Diagnostic;
use crate::load::{DocKind, Document, Source};

/// The header row of a rendered page's parameter table.
static TABLE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\|?\s*(parameter|name|参数名?)\s*\|\s*(type|类型)\s*\|\s*(required|必填|是否必填|必选)\s*\|\s*(description|说明|描述)\s*\|?\s*$")
        .expect("regex")
});

/// Whether a page is a rendered page (no YAML, a parameter table) rather than an Apifox export.
pub fn is_rendered(text: &str) -> bool {
    text.lines().any(|l| TABLE_HEADER.is_match(l.trim()))
}

/// One row of the parameter table.
struct Row {
    line: usize,
    depth: usize,
    name: String,
    schema: Value,
    required: bool,
}

/// Reads a rendered page into an OpenAPI document of one operation. A row the reader
/// cannot understand is an error naming the page's line, never a field silently dropped.
pub fn parse(file: &Path, text: &str) -> Result<Document, Diagnostic> {
    let lines: Vec<&str> = text.lines().collect();
    let at = |i: usize, message: String| Diagnostic::new(file, i + 1, message);
    let (path, method) = endpoint(file, &lines)?;
    let header = lines.iter().position(|l| TABLE_HEADER.is_match(l.trim())).ok_or_else(|| {
        Diagnostic::new(file, 0, "no parameter table (| Parameter | Type | Required | Description |) in this rendered page")
    })?;
    let mut rows: Vec<Row> = Vec::new();
    for (i, raw) in lines.iter().enumerate().skip(header + 1) {
        let line = raw.trim();
        if line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) && !line.is_empty() {
            continue; // the separator row
        }
        if line.is_empty() || !line.contains('|') {
            break;
        }
        rows.push(row(line, i).map_err(|why| {
            at(i, why).help(
                "each row is `name | type | Required or Optional | description |`, the type one of string, integer, number, boolean, object, array[...]; correct the row as the relay's page shows it",
            )
        })?);
    }
    let mut top = json!({"type": "object", "properties": {}});
    // Where each nested row goes: the schema of the nearest object row one level up.
    let mut parents: Vec<(usize, Vec<String>)> = Vec::new();
    for r in &rows {
        let into: Vec<String> = if r.depth == 0 {
            vec![]
        } else {
            match parents.iter().rev().find(|(d, _)| *d + 1 == r.depth) {
                Some((_, p)) => p.clone(),
                None => {
                    return Err(at(r.line, format!("the nested row {:?} has no object row above it", r.name))
                        .help("a row marked └ belongs to the object or array[object] row above it"));
                }
            }
        };
        let mut holder = &mut top;
        for key in &into {
            holder = &mut holder[key.as_str()];
        }
        if holder["properties"].get(&r.name).is_some() {
            return Err(at(r.line, format!("the field {:?} is listed twice", r.name)));
        }
        holder["properties"][r.name.as_str()] = r.schema.clone();
        if r.required {
            match holder.get_mut("required").and_then(Value::as_array_mut) {
                Some(list) => list.push(json!(r.name)),
                None => holder["required"] = json!([r.name]),
            }
        }
        // Where this row's own nested rows go.
        parents.retain(|(d, _)| *d < r.depth);
        let mut own = into.clone();
        own.extend(["properties".to_string(), r.name.clone()]);
        match r.schema.get("type").and_then(Value::as_str) {
            Some("object") => parents.push((r.depth, own)),
            Some("array") if r.schema.pointer("/items/type").and_then(Value::as_str) == Some("object") => {
                own.push("items".into());
                parents.push((r.depth, own));
            }
            _ => {}
        }
    }
    let mut media = Map::new();
    media.insert("schema".into(), top);
    if let Some(example) = example_after(&lines, &["request example", "请求示例"]) {
        media.insert("example".into(), example);
    }
    let mut op = json!({
        "summary": path.trim_start_matches('/'),
        "requestBody": {"content": {"application/json": Value::Object(media)}},
        "responses": {"200": {"description": "", "content": {"application/json": {"schema": {"type": "object", "properties": {}}}}}},
    });
    if let Some(doc) = lines.iter().find_map(|l| l.trim().strip_prefix("Official documentation:")) {
        op["description"] = json!(format!("Official documentation: {}", doc.trim()));
    }
    if let Some(example) = example_after(&lines, &["response example", "返回示例", "响应示例"]) {
        op["responses"]["200"]["content"]["application/json"]["example"] = example;
    }
    if method != "post" {
        op.as_object_mut().map(|m| m.remove("requestBody"));
    }
    let value = json!({
        "openapi": "3.0.1",
        "info": {"title": "", "version": "1.0.0"},
        "paths": {path.as_str(): {method.as_str(): op}},
    });
    Ok(Document {
        source: Source { file: file.to_path_buf(), line: 1, text: text.to_string() },
        kind: DocKind::Page,
        value,
        authored_page: false,
        rendered: true,
        notes: vec![],
    })
}

/// The endpoint's path (`/fal-ai/veo3`), from its own line or its URL, and its method.
fn endpoint(file: &Path, lines: &[&str]) -> Result<(String, String), Diagnostic> {
    static PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-{}]+)+/?$").expect("regex"));
    static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^https?://[^/\s]+(/[A-Za-z0-9_.\-{}/]+)$").expect("regex"));
    let mut path = None;
    let mut method = None;
    for line in lines.iter().map(|l| l.trim()) {
        if TABLE_HEADER.is_match(line) {
            break;
        }
        if path.is_none() && PATH.is_match(line) {
            path = Some(line.trim_end_matches('/').to_string());
        } else if path.is_none()
            && let Some(c) = URL.captures(line)
        {
            path = Some(c[1].trim_end_matches('/').to_string());
        } else if method.is_none() && matches!(line, "POST" | "GET" | "PUT" | "DELETE" | "PATCH") {
            method = Some(line.to_ascii_lowercase());
        }
    }
    let path = path.ok_or_else(|| {
        Diagnostic::new(file, 0, "no endpoint path (/owner/app/...) or URL before the parameter table of this rendered page")
            .help("the page as the relay shows it starts with the endpoint's path, its method and its URL")
    })?;
    Ok((path, method.unwrap_or_else(|| "post".into())))
}

/// One table row: `name | type | Required | description |`, its leading pipe optional, a
/// nested row's name marked `└` (one mark per level).
fn row(line: &str, index: usize) -> Result<Row, String> {
    let body = line.strip_prefix('|').unwrap_or(line);
    let cells: Vec<&str> = body.splitn(4, '|').collect();
    if cells.len() < 3 {
        return Err(format!("a table row the reader cannot understand: {line:?} (expected name | type | required | description)"));
    }
    let raw_name = cells[0];
    let start = raw_name.find(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$').unwrap_or(raw_name.len());
    let (marks, name) = raw_name.split_at(start);
    let depth = marks.chars().filter(|c| matches!(c, '└' | '├' | '┕' | '┝')).count();
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.$".contains(c)) {
        return Err(format!("{raw_name:?} is no field name"));
    }
    let schema = schema_of_type(cells[1].trim()).ok_or_else(|| {
        format!("{name}: the type {:?} is not one falq reads (string, integer, number, boolean, object, array[...])", cells[1].trim())
    })?;
    let required = match cells[2].trim().to_ascii_lowercase().as_str() {
        "required" | "yes" | "true" | "是" | "必填" | "必选" | "必须" => true,
        "optional" | "no" | "false" | "否" | "可选" | "选填" | "" => false,
        other => return Err(format!("{name}: {other:?} says neither required nor optional")),
    };
    let description = cells.get(3).map_or("", |d| d.trim().trim_end_matches('|').trim());
    let mut schema = schema;
    if !description.is_empty() {
        schema["description"] = json!(description);
    }
    Ok(Row { line: index, depth, name: name.to_string(), schema, required })
}

/// The schema a table's type cell names: `string`, `integer`, `number`, `boolean`,
/// `object`, `array`, `array[string]`, `array<object>`, `string[]`.
fn schema_of_type(cell: &str) -> Option<Value> {
    let t = cell.to_ascii_lowercase().replace(' ', "");
    let scalar = |t: &str| -> Option<Value> {
        Some(match t {
            "string" | "str" | "text" => json!({"type": "string"}),
            "integer" | "int" | "int32" | "int64" | "long" => json!({"type": "integer"}),
            "number" | "float" | "double" | "decimal" => json!({"type": "number"}),
            "boolean" | "bool" => json!({"type": "boolean"}),
            "object" | "map" | "dict" => json!({"type": "object", "properties": {}}),
            _ => return None,
        })
    };
    if let Some(inner) =
        t.strip_prefix("array[").and_then(|r| r.strip_suffix(']')).or_else(|| t.strip_prefix("array<").and_then(|r| r.strip_suffix('>')))
    {
        return Some(json!({"type": "array", "items": scalar(inner)?}));
    }
    if let Some(inner) = t.strip_suffix("[]") {
        return Some(json!({"type": "array", "items": scalar(inner)?}));
    }
    if t == "array" || t == "list" {
        return Some(json!({"type": "array", "items": {}}));
    }
    scalar(&t)
}

/// The JSON object after the first line naming it (`Request Example`), wherever its text
/// ends (the copy runs it into `cURL Example`); `None` when the page was cut inside it.
fn example_after(lines: &[&str], names: &[&str]) -> Option<Value> {
    let start = lines.iter().position(|l| names.iter().any(|n| l.trim().to_lowercase().starts_with(n)))?;
    let rest = lines[start + 1..].join("\n");
    let brace = rest.find('{')?;
    let mut values = serde_json::Deserializer::from_str(&rest[brace..]).into_iter::<Value>();
    values.next()?.ok().filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "Theme\n/fal-ai/acme/model\nPOST\nhttps://www.relay.example/fal-ai/acme/model\nOfficial documentation: https://fal.ai/models/fal-ai/acme/model\nBody Parameters (application/json)\n| Parameter | Type | Required | Description |\n|---|---|---|---|\nprompt | string | Required | |\nloras | array[object] | Optional | LoRA weights |\n└ path | string | Required | URL of the weights |\n└ scale | number | Optional | Default: 1 Range: 0-4 |\nsize | object | Optional | |\n└ width | integer | Required | Range: 64-2048 |\n└ height | integer | Required | |\ntags | array[string] | Optional | a | b |\nRequest Example\njson\n{\n\"prompt\": \"a cat\",\n\"size\": {\"width\": 512, \"height\": 512}\n}cURL Example\nbash\ncurl --location";

    #[test]
    fn a_rendered_page_is_the_same_document_an_apifox_page_gives() {
        assert!(is_rendered(PAGE));
        assert!(!is_rendered("# t\n```yaml\nopenapi: 3.0.1\n```\n"));
        let d = parse(Path::new("specs/kkiai/p.md"), PAGE).unwrap();
        let op = &d.value["paths"]["/fal-ai/acme/model"]["post"];
        assert_eq!(op["description"], "Official documentation: https://fal.ai/models/fal-ai/acme/model");
        let body = &op["requestBody"]["content"]["application/json"];
        assert_eq!(body["example"], json!({"prompt": "a cat", "size": {"width": 512, "height": 512}}));
        let s = &body["schema"];
        assert_eq!(s["required"], json!(["prompt"]));
        assert_eq!(s["properties"]["loras"]["items"]["required"], json!(["path"]));
        assert_eq!(
            s["properties"]["loras"]["items"]["properties"]["scale"],
            json!({"type": "number", "description": "Default: 1 Range: 0-4"})
        );
        assert_eq!(s["properties"]["size"]["required"], json!(["width", "height"]));
        assert_eq!(s["properties"]["tags"], json!({"type": "array", "items": {"type": "string"}, "description": "a | b"}));
        assert!(d.rendered);
    }

    #[test]
    fn a_row_the_reader_cannot_understand_names_its_line() {
        for (bad, line, says) in [
            ("prompt | text area | Required | |", 9, "the type \"text area\" is not one falq reads"),
            ("prompt | string | Maybe | |", 9, "says neither required nor optional"),
            ("└ orphan | string | Required | |", 9, "has no object row above it"),
            ("pro mpt | string | Required | |", 9, "is no field name"),
            ("prompt | string", 9, "cannot understand"),
        ] {
            let page = PAGE.replace("prompt | string | Required | |", bad);
            let e = parse(Path::new("p.md"), &page).map(drop).unwrap_err();
            assert_eq!(e.line, line, "{bad}: {e}");
            assert!(e.message.contains(says), "{bad}: {e}");
        }
        let e = parse(Path::new("p.md"), "Body Parameters\n| Parameter | Type | Required | Description |\n").map(drop).unwrap_err();
        assert!(e.message.contains("no endpoint path"), "{e}");
        // The endpoint from the URL where the page has no path line; a GET page has no body.
        let url_only = PAGE.replacen("/fal-ai/acme/model\nPOST\n", "GET\n", 1);
        let d = parse(Path::new("p.md"), &url_only).unwrap();
        assert!(d.value.pointer("/paths/~1fal-ai~1acme~1model/get").is_some(), "{}", d.value["paths"]);
        assert!(d.value.pointer("/paths/~1fal-ai~1acme~1model/get/requestBody").is_none());
        // A page cut inside its example: the fields, no example.
        let cut = &PAGE[..PAGE.find("\"size\"").unwrap()];
        let d = parse(Path::new("p.md"), cut).unwrap();
        assert!(d.value.pointer("/paths/~1fal-ai~1acme~1model/post/requestBody/content/application~1json/example").is_none());
    }
}
