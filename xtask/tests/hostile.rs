//! Pages no rule was written against, and hostile but plausible edits of real ones:
//! regen either makes a crate that compiles (proved by compiling it) or refuses the
//! page with its file, line and field. It never panics, overflows or writes broken code.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::*;

/// A scratch project: the real `specs/` (pages, authored spec, overlays) plus `files`.
fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("falq-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("specs"), &dir.join("specs"));
    for (path, text) in files {
        let p = dir.join("specs").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// A page in the relay's dialect for `path` with `props` (YAML lines under `properties:`,
/// indented by 16) and extra YAML for `components: schemas:` (indented by 4).
fn page(path: &str, props: &str, components: &str) -> String {
    format!(
        "# 测试页面\n\n## OpenAPI Specification\n\n```yaml\nopenapi: 3.0.1\ninfo:\n  title: ''\n  version: 1.0.0\npaths:\n  /BASE_URL/{path}:\n    post:\n      summary: 测试\n      parameters:\n        - name: Authorization\n          in: header\n          required: true\n          example: Bearer {{{{API_KEY}}}}\n          schema:\n            type: string\n      requestBody:\n        content:\n          application/json:\n            schema:\n              title: 请求参数\n              type: object\n              properties:\n{props}              required:\n                - prompt\n      responses:\n        '200':\n          description: ''\n          content:\n            application/json:\n              schema:\n                type: object\n                properties: {{}}\ncomponents:\n  schemas:\n{components}servers: []\n```\n"
    )
}

const HOSTILE_PROPS: &str = "                prompt:
                  type: string
                  description: 必填。提示词
                num_images:
                  type: integer
                  description: 可选。数量，默认1，范围1-4
                num-images:
                  type: integer
                  description: 同上，另一种写法
                statusUrl:
                  type: string
                status_url:
                  type: string
                type:
                  type: string
                  description: a field named like a keyword
                style:
                  type: string
                  enum: [写实, 动漫, 3d 渲染]
                  description: 风格，默认 \"写实\"
                ratio:
                  type: string
                  enum: ['1:1', '1-1', '1_1', '+', '-', Error, Self, '']
                negative_prompt:
                  type: string
                  description: 反向提示词，默认 \"blur, distort, and low quality\"
                loras:
                  type: array
                  description: LoRA 列表
                  items:
                    type: object
                    required: [path]
                    properties:
                      path:
                        type: string
                      scale:
                        type: number
                        minimum: 0.01
                        maximum: 4
                      mode:
                        type: string
                        enum: [a-b, a_b, A B]
                size:
                  $ref: '#/components/schemas/ImageSize'
                file:
                  $ref: '#/components/schemas/File'
                风格:
                  type: string
                  enum: [x, y]
";

const HOSTILE_COMPONENTS: &str = "    ImageSize:
      type: object
      properties:
        w:
          type: integer
        h:
          type: integer
    File:
      type: object
      required: [url]
      properties:
        url: {type: string}
        content_type: {type: string}
        file_name: {type: string}
        file_size: {type: integer, format: int64}
        width: {type: integer, format: int64}
        height: {type: integer, format: int64}
    image-size:
      type: string
      enum: [small, big]
";

fn regen_ok(dir: &Path) -> xtask::Regen {
    match xtask::regen(&dir.join("specs"), dir) {
        Ok(r) => r,
        Err(e) => panic!("regen refused:\n{e}"),
    }
}

fn regen_err(dir: &Path) -> String {
    match xtask::regen(&dir.join("specs"), dir) {
        Ok(_) => panic!("regen should refuse"),
        Err(e) => e.to_string(),
    }
}

/// Writes the generated crate of `r` beside the hand-written files of the real one and
/// runs `cargo check` on it, offline, in a target directory of its own (the outer
/// `cargo test` holds the workspace's). Answers cargo's output when it fails.
fn compile(r: &xtask::Regen, name: &str) -> Result<(), String> {
    let ws = std::env::temp_dir().join(format!("falq-compile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    let krate = ws.join("generated/falq-api");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    // Every file of the crate is generated; the hand-written support is falq-core and
    // falq-runtime.
    copy_dir(&root().join("crates/falq-core"), &ws.join("crates/falq-core"));
    copy_dir(&root().join("crates/falq-runtime"), &ws.join("crates/falq-runtime"));
    for out in &r.outputs {
        std::fs::write(ws.join(&out.path), &out.content).unwrap();
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: String =
        manifest
            .lines()
            .filter(|l| !l.contains("path = \"crates/") || l.starts_with("falq-core") || l.starts_with("falq-runtime"))
            .map(|l| {
                if l.starts_with("members") {
                    "members = [\"crates/falq-core\", \"crates/falq-runtime\", \"generated/falq-api\"]"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    std::fs::write(ws.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(root().join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--manifest-path"])
        .arg(ws.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", root().join("target/regen-compile-check"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    std::fs::remove_dir_all(&ws).ok();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn hostile_pages_make_a_crate_that_compiles() {
    let video = "# 视频\n\n```yaml\nopenapi: 3.0.1\ninfo: {title: '', version: 1.0.0}\npaths:\n  /BASE_URL/fal-ai/kling-video/v2/master/text-to-video:\n    post:\n      operationId: Kling-Video Text2Video\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              required: [prompt]\n              properties:\n                prompt: {type: string}\n                duration: {type: string, enum: ['5', '10'], description: 秒数，默认5}\n      responses:\n        '200': {description: ''}\n```\n";
    let clash = page("fal-ai/flux1/dev", "                prompt:\n                  type: string\n", "    {}\n");
    let clash = clash.replace("components:\n  schemas:\n    {}\n", "");
    let dir = scratch(
        "compile",
        &[
            ("apifox/hostile.md", &page("fal-ai/hostile/model", HOSTILE_PROPS, HOSTILE_COMPONENTS)),
            ("apifox/video.md", video),
            ("apifox/flux1-dev.md", &clash),
            ("zz-video.yaml", "falq-overlay: 1\nendpoints:\n  fal-ai/kling-video/v2/master/text-to-video:\n    output: VideoOutput\n"),
        ],
    );
    // The pages of other families (families.rs checks what regen makes of them) are
    // compiled with these: one compile for both.
    copy_dir(&root().join("xtask/tests/families"), &dir.join("specs/apifox/families"));
    let r = regen_ok(&dir);
    let schemas = &r.spec["components"]["schemas"];
    let input = &schemas["HostileModelInput"];
    // Colliding property names: one keeps the field, the other stays in the spec for JSON callers.
    assert_eq!(input["properties"]["num-images"]["x-falq-untyped"], json!(true));
    assert!(input["properties"]["num_images"].get("x-falq-untyped").is_none());
    // A quoted default with commas is kept whole.
    assert_eq!(input["properties"]["negative_prompt"]["default"], json!("blur, distort, and low quality"));
    // Enum variants: unique, readable, and the wire values unchanged.
    let style = input["properties"]["style"]["allOf"][0]["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    assert_eq!(schemas[style]["x-enum-varnames"], json!(["Value1", "Value2", "V3d"]));
    assert_eq!(schemas[style]["enum"], json!(["写实", "动漫", "3d 渲染"]));
    let ratio = input["properties"]["ratio"]["allOf"][0]["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    assert_eq!(schemas[ratio]["x-enum-varnames"], json!(["R1x1", "V11", "V112", "Value4", "Value5", "Error", "Self_", "Value8"]));
    // Page schemas named like ours: the same shape is ours, another shape is scoped.
    assert_eq!(input["properties"]["file"]["$ref"], json!("#/components/schemas/File"));
    assert_eq!(input["properties"]["size"]["$ref"], json!("#/components/schemas/HostileModelImageSize"));
    assert!(schemas.as_object().unwrap().keys().all(|k| k.is_ascii()), "every type name is ASCII");
    // Operation names that would be one Rust name are told apart, with a note.
    let dev2 = &r.spec["paths"]["/fal-ai/flux1/dev"]["post"]["operationId"];
    assert_ne!(dev2, &json!("flux_1_dev"));
    assert!(r.warnings.iter().any(|w| w.message.contains("operation name") && w.message.contains("flux1_dev")), "{:?}", r.warnings);
    // One overlay line types a video endpoint; a page's operationId becomes a Rust name.
    let video_op = &r.spec["paths"]["/fal-ai/kling-video/v2/master/text-to-video"]["post"];
    assert_eq!(video_op["x-falq-output"], json!({"$ref": "#/components/schemas/VideoOutput"}));
    assert_eq!(video_op["operationId"], json!("kling_video_text2_video"));
    let catalog = &r.outputs.iter().find(|o| o.path.ends_with("catalog.rs")).unwrap().content;
    assert!(catalog.contains("type Output = crate::types::VideoOutput;"));
    if let Err(e) = compile(&r, "hostile") {
        panic!("the crate generated from hostile pages does not compile:\n{e}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn pages_regen_refuses_name_their_page_line_and_field() {
    let recursive = page(
        "fal-ai/tree/model",
        "                prompt:\n                  type: string\n                root:\n                  $ref: '#/components/schemas/Node'\n",
        "    Node:\n      type: object\n      properties:\n        children:\n          type: array\n          items:\n            $ref: '#/components/schemas/Node'\n",
    );
    let file_type = page(
        "fal-ai/upload/model",
        "                prompt:\n                  type: string\n                image:\n                  type: file\n",
        "    {}\n",
    );
    let bad_enum = page(
        "fal-ai/enum/model",
        "                prompt:\n                  type: string\n                steps:\n                  type: integer\n                  enum: [low, high]\n",
        "    {}\n",
    );
    let cases: [(&str, &str, &str); 3] = [
        ("recursive", &recursive, "schema Node refers back to itself (Node → Node): recursive schemas are not supported"),
        ("filetype", &file_type, "POST /BASE_URL/fal-ai/upload/model, field image: unknown type \"file\""),
        ("badenum", &bad_enum, "field steps: enum value \"low\" contradicts type integer"),
    ];
    for (name, text, want) in cases {
        let dir = scratch(name, &[("apifox/zz.md", text)]);
        let msg = regen_err(&dir);
        assert!(msg.contains(want), "{name}: {msg}");
        assert!(msg.contains("specs/apifox/zz.md:"), "{name}: names the page: {msg}");
        assert!(!msg.contains("openapi.json"), "{name}: blames the page, not the generated spec: {msg}");
        // The line holds what the message is about.
        let line: usize = msg.split("specs/apifox/zz.md:").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
        let text_line = text.lines().nth(line - 1).unwrap_or("");
        let about = if name == "recursive" {
            "Node"
        } else if name == "filetype" {
            "image"
        } else {
            "steps"
        };
        assert!(text_line.contains(about) || text.lines().nth(line).unwrap_or("").contains(about), "{name}: line {line} is {text_line:?}");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn the_relays_page_replaces_an_authored_one_with_a_note() {
    let real =
        std::fs::read_to_string(root().join("specs/falq/pages/flux-1-schnell.md")).unwrap().replace("默认4，范围1~12", "默认4，范围1~8");
    let dir = scratch("replace", &[("apifox/flux-1-schnell.md", &real)]);
    let r = regen_ok(&dir);
    let steps = &r.spec["components"]["schemas"]["Flux1SchnellInput"]["properties"]["num_inference_steps"];
    assert_eq!(steps["maximum"], json!(8), "the relay's page is the one used");
    assert!(
        r.warnings.iter().any(|w| w.file.ends_with("specs/falq/pages/flux-1-schnell.md")
            && w.message.contains("is generated from the relay's page specs/apifox/flux-1-schnell.md; this page is set aside")),
        "{:?}",
        r.warnings
    );
    assert!(!r.spec["components"]["schemas"].as_object().unwrap().keys().any(|k| k.starts_with("Flux1SchnellInput2")));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_project_root_is_found_at_run_time() {
    let dir = std::env::temp_dir().join(format!("falq-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["specs/apifox", "xtask/src", "crates/x"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("Cargo.toml"), "[workspace]\n").unwrap();
    assert_eq!(xtask::find_project_root(&dir.join("crates/x")), Some(dir.clone()));
    assert_eq!(xtask::find_project_root(&dir.join("specs/apifox")), Some(dir.clone()));
    assert_eq!(xtask::find_project_root(&std::env::temp_dir()), None);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn every_inference_from_prose_is_listed_for_review() {
    let r = regen_ok(&root());
    let report = &r.outputs.iter().find(|o| o.path.ends_with("inferred.md")).unwrap().content;
    assert!(report.contains("| specs/apifox/flux-1-dev.md:"), "{report}");
    for i in &r.inferred {
        assert!(report.contains(&format!("{}:{}", i.file.display(), i.line)));
    }
    // One the relay's dev page states only in prose: steps 1..=50.
    assert!(
        r.inferred.iter().any(|i| i.place == "POST /fal-ai/flux-1/dev, field num_inference_steps" && i.what == "maximum 50"),
        "{:?}",
        r.inferred
    );
    let _: Value = json!(null);
}
