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

/// A header cell of a parameter table and what its column holds.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Column {
    Name,
    Type,
    Required,
    Default,
    Description,
    Other,
}

fn column(cell: &str) -> Column {
    match cell.trim().to_lowercase().as_str() {
        "parameter" | "parameters" | "name" | "field" | "参数" | "参数名" | "字段" | "名称" => Column::Name,
        "type" | "类型" | "数据类型" => Column::Type,
        "required" | "必填" | "是否必填" | "必选" | "是否必须" => Column::Required,
        "default" | "默认值" => Column::Default,
        "description" | "说明" | "描述" | "备注" => Column::Description,
        _ => Column::Other,
    }
}

/// The columns of a table's header row, when it is a parameter table's (a name and a
/// type column at least).
fn header_columns(line: &str) -> Option<Vec<Column>> {
    let line = line.trim();
    if !line.contains('|') {
        return None;
    }
    let body = line.strip_prefix('|').unwrap_or(line);
    let body = body.strip_suffix('|').unwrap_or(body);
    let columns: Vec<Column> = body.split('|').map(column).collect();
    let has = |c: Column| columns.contains(&c);
    (columns.len() >= 3 && columns[0] == Column::Name && has(Column::Type)).then_some(columns)
}

/// Whether a page is a rendered page (no YAML, a parameter table) rather than an Apifox export.
pub fn is_rendered(text: &str) -> bool {
    !text.lines().any(|l| l.trim_start().starts_with("openapi:")) && text.lines().any(|l| header_columns(l).is_some())
}

/// What a table describes, from the heading above it (`Body Parameters
/// (application/json)`, `Path Parameters`, `Response Parameters`).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Section {
    Body,
    Path,
    Query,
    Header,
    Response,
}

fn section(heading: &str) -> Section {
    static RESPONSE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bresponses?\b|返回|响应").expect("regex"));
    static HEADER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bheaders?\b|请求头").expect("regex"));
    static PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bpath\b|路径").expect("regex"));
    static QUERY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bquery\b|查询").expect("regex"));
    if RESPONSE.is_match(heading) {
        Section::Response
    } else if HEADER.is_match(heading) {
        Section::Header
    } else if PATH.is_match(heading) {
        Section::Path
    } else if QUERY.is_match(heading) {
        Section::Query
    } else {
        Section::Body
    }
}

/// One row of the parameter table.
struct Row {
    line: usize,
    depth: usize,
    name: String,
    schema: Value,
    required: bool,
}

/// Reads a rendered page into an OpenAPI document of one operation: its body table the
/// request's schema, path, query and header tables its parameters, a response table the
/// schema of its answer. A row the reader cannot understand is an error naming the page's
/// line, never a field silently dropped.
pub fn parse(file: &Path, text: &str) -> Result<Document, Diagnostic> {
    let lines: Vec<&str> = text.lines().collect();
    let (path, method) = endpoint(file, &lines)?;
    let mut body: Option<Value> = None;
    let mut response: Option<Value> = None;
    let mut parameters: Vec<Value> = Vec::new();
    let mut tables = 0;
    for (header, line) in lines.iter().enumerate() {
        let Some(columns) = header_columns(line) else { continue };
        tables += 1;
        let heading = lines[..header].iter().rev().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap_or("");
        let rows = table_rows(file, &lines, header, &columns)?;
        let schema = object_of_rows(file, &rows)?;
        let twice = |what: &str| Diagnostic::new(file, header + 1, format!("a second {what} table in this rendered page"));
        match section(heading) {
            Section::Body if body.is_some() => return Err(twice("body parameter")),
            Section::Body => body = Some(schema),
            Section::Response if response.is_some() => return Err(twice("response")),
            Section::Response => response = Some(schema),
            place => {
                let place = match place {
                    Section::Path => "path",
                    Section::Query => "query",
                    _ => "header",
                };
                for r in rows.iter().filter(|r| r.depth == 0) {
                    let mut schema = r.schema.clone();
                    let description = schema.as_object_mut().and_then(|m| m.remove("description"));
                    let mut p = json!({"name": r.name, "in": place, "required": r.required || place == "path", "schema": schema});
                    if let Some(d) = description {
                        p["description"] = d;
                    }
                    parameters.push(p);
                }
            }
        }
    }
    if tables == 0 {
        return Err(Diagnostic::new(file, 0, "no parameter table (| Parameter | Type | Required | Description |) in this rendered page"));
    }
    let mut op = json!({
        "summary": path.trim_start_matches('/'),
        "responses": {"200": {"description": "", "content": {"application/json": {"schema": response.unwrap_or_else(|| json!({"type": "object", "properties": {}}))}}}},
    });
    if let Some(top) = body.filter(|_| method != "get") {
        let mut media = Map::new();
        media.insert("schema".into(), top);
        if let Some(example) = example_after(&lines, &["request example", "请求示例"]) {
            media.insert("example".into(), example);
        }
        op["requestBody"] = json!({"content": {"application/json": Value::Object(media)}});
    }
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(doc) = lines.iter().find_map(|l| l.trim().strip_prefix("Official documentation:")) {
        op["description"] = json!(format!("Official documentation: {}", doc.trim()));
    }
    if let Some(example) = example_after(&lines, &["response example", "返回示例", "响应示例"]) {
        op["responses"]["200"]["content"]["application/json"]["example"] = example;
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

/// The rows of the table whose header is at line `header`, to the first line that is no row.
fn table_rows(file: &Path, lines: &[&str], header: usize, columns: &[Column]) -> Result<Vec<Row>, Diagnostic> {
    let mut rows = Vec::new();
    for (i, raw) in lines.iter().enumerate().skip(header + 1) {
        let line = raw.trim();
        if line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) && !line.is_empty() {
            continue; // the separator row
        }
        if line.is_empty() || !line.contains('|') {
            break;
        }
        rows.push(row(line, i, columns).map_err(|why| {
            Diagnostic::new(file, i + 1, why).help(
                "each row is `name | type | Required or Optional | description |`, the type one of string, integer, number, boolean, object, array[...]; correct the row as the relay's page shows it",
            )
        })?);
    }
    Ok(rows)
}

/// The object schema a table's rows make: a row marked `└` is a field of the nearest
/// `object` or `array[object]` row one level up.
fn object_of_rows(file: &Path, rows: &[Row]) -> Result<Value, Diagnostic> {
    let mut top = json!({"type": "object", "properties": {}});
    // Where each nested row goes: the schema of the nearest object row one level up.
    let mut parents: Vec<(usize, Vec<String>)> = Vec::new();
    for r in rows {
        let at = |message: String| Diagnostic::new(file, r.line + 1, message);
        let into: Vec<String> = if r.depth == 0 {
            vec![]
        } else {
            match parents.iter().rev().find(|(d, _)| *d + 1 == r.depth) {
                Some((_, p)) => p.clone(),
                None => {
                    return Err(at(format!("the nested row {:?} has no object row above it", r.name))
                        .help("a row marked └ belongs to the object or array[object] row above it"));
                }
            }
        };
        let mut holder = &mut top;
        for key in &into {
            holder = &mut holder[key.as_str()];
        }
        if holder["properties"].get(&r.name).is_some() {
            return Err(at(format!("the field {:?} is listed twice", r.name)));
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
    Ok(top)
}

/// The endpoint's path (`/fal-ai/veo3`), from its own line or its URL, and its method.
fn endpoint(file: &Path, lines: &[&str]) -> Result<(String, String), Diagnostic> {
    static PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-{}]+)+/?$").expect("regex"));
    static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^https?://[^/\s]+(/[A-Za-z0-9_.\-{}/]+)$").expect("regex"));
    let mut path = None;
    let mut method = None;
    for line in lines.iter().map(|l| l.trim()) {
        if header_columns(line).is_some() {
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

/// One table row, its cells in the header's columns (the last one takes any `|` its text
/// holds), its leading pipe optional, a nested row's name marked `└` (one mark per level).
/// A `Default` column is read as the description's `Default:`.
fn row(line: &str, index: usize, columns: &[Column]) -> Result<Row, String> {
    let body = line.strip_prefix('|').unwrap_or(line);
    let cells: Vec<&str> = body.splitn(columns.len(), '|').collect();
    let cell = |c: Column| columns.iter().position(|x| *x == c).and_then(|i| cells.get(i)).map(|t| t.trim().trim_end_matches('|').trim());
    // Every cell up to the last column that states something a field needs.
    let needed = columns.iter().rposition(|c| matches!(c, Column::Type | Column::Required)).unwrap_or(1);
    if cells.len() <= needed {
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
    let type_cell = cell(Column::Type).unwrap_or("");
    let schema = schema_of_type(type_cell).ok_or_else(|| {
        format!("{name}: the type {type_cell:?} is not one falq reads (string, integer, number, boolean, object, array[...])")
    })?;
    let required = match cell(Column::Required).unwrap_or("").to_ascii_lowercase().as_str() {
        "required" | "yes" | "true" | "y" | "是" | "必填" | "必选" | "必须" => true,
        "optional" | "no" | "false" | "n" | "否" | "可选" | "选填" | "" | "-" => false,
        other => return Err(format!("{name}: {other:?} says neither required nor optional")),
    };
    let mut description = cell(Column::Description).unwrap_or("").to_string();
    if let Some(default) = cell(Column::Default).filter(|d| !d.is_empty() && *d != "-") {
        description = format!("{description} Default: {default}").trim().to_string();
    }
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
    fn tables_are_read_by_their_columns_and_their_headings() {
        // A result page: its path parameter table, its response table (nested), a copy
        // with fenced examples and a Default column; a table inside an Apifox page is no
        // rendered page.
        let page = "GET\nhttps://relay.example/fal-ai/acme/requests/{request_id}\nPath Parameters\n| Name | Type | Required | Default | Description |\n|---|---|---|---|---|\nrequest_id | string | Yes | - | The request |\nQuery Parameters\n| Name | Type | Required | Default | Description |\n|---|---|---|---|---|\nlogs | integer | No | 0 | Include logs: 0 or 1 |\nResponse Parameters\n| Name | Type | Required | Default | Description |\n|---|---|---|---|---|\nvideo | object | Yes | | |\n└ url | string | Yes | | |\nseed | integer | No | | |\nResponse Example\n```json\n{\"video\": {\"url\": \"https://x/v.mp4\"}, \"seed\": 1}\n```\n";
        assert!(is_rendered(page));
        let d = parse(Path::new("r.md"), page).unwrap();
        let op = &d.value["paths"]["/fal-ai/acme/requests/{request_id}"]["get"];
        assert_eq!(
            op["parameters"][0],
            json!({"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The request"})
        );
        assert_eq!(
            op["parameters"][1],
            json!({"name": "logs", "in": "query", "required": false, "schema": {"type": "integer"}, "description": "Include logs: 0 or 1 Default: 0"})
        );
        let answer = &op["responses"]["200"]["content"]["application/json"];
        assert_eq!(answer["schema"]["required"], json!(["video"]));
        assert_eq!(answer["schema"]["properties"]["video"]["required"], json!(["url"]));
        assert_eq!(answer["example"]["seed"], json!(1));
        assert!(op.get("requestBody").is_none());
        assert!(!is_rendered("# T\n| Parameter | Type | Required | Description |\n```yaml\nopenapi: 3.0.1\n```\n"));
        // Two body tables: which one is meant is not guessed.
        let twice = format!("{PAGE}\nBody Parameters\n| Parameter | Type | Required | Description |\nx | string | Required | |\n");
        let e = parse(Path::new("p.md"), &twice).map(drop).unwrap_err();
        assert!(e.message.contains("a second body parameter table"), "{e}");
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
