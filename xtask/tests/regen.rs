//! The regen pipeline end to end: the checked-in crate is fresh, every page becomes a
//! clean typed operation, a new page just works, and bad input gets file:line errors.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod common;
use common::*;

/// A scratch `specs/` holding the authored queue spec plus `files`.
fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("falq-xtask-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs/falq")).unwrap();
    std::fs::copy(root().join("specs/falq/queue.yaml"), dir.join("specs/falq/queue.yaml")).unwrap();
    for (path, text) in files {
        let p = dir.join("specs").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn regen_err(dir: &Path) -> String {
    match xtask::regen(&dir.join("specs"), dir) {
        Ok(_) => panic!("regen should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn generated_crate_is_fresh() {
    let (report, _) = xtask::run(&root(), true).expect("regen runs");
    assert!(report.changed.is_empty(), "the generated crate is stale: run `cargo xtask regen`\n{}", report.diff);
}

/// The relay's fal catalogue (its docs' "Fal-ai Aggregation Platform" menu, seed 000):
/// twenty-nine endpoints, each with the operation name derived from its path and the
/// output its page or fal's schema gives it. The catalogue holds these at least: pages
/// dropped into `specs/` add to it.
const RELAY: [(&str, &str, &str); 29] = [
    ("fal-ai/flux-1/dev", "flux_1_dev", "FluxImageOutput"),
    ("fal-ai/flux-1/dev/image-to-image", "flux_1_dev_image_to_image", "FluxImageOutput"),
    ("fal-ai/flux-1/dev/redux", "flux_1_dev_redux", "FluxImageOutput"),
    ("fal-ai/flux-1/schnell", "flux_1_schnell", "FluxImageOutput"),
    ("fal-ai/flux-1/schnell/redux", "flux_1_schnell_redux", "FluxImageOutput"),
    ("fal-ai/flux-pro/kontext", "flux_pro_kontext", "FluxImageOutput"),
    ("fal-ai/flux-pro/kontext/max", "flux_pro_kontext_max", "FluxImageOutput"),
    ("fal-ai/flux-pro/kontext/max/multi", "flux_pro_kontext_max_multi", "FluxImageOutput"),
    ("fal-ai/flux-pro/kontext/max/text-to-image", "flux_pro_kontext_max_text_to_image", "FluxImageOutput"),
    ("fal-ai/flux-pro/kontext/multi", "flux_pro_kontext_multi", "FluxImageOutput"),
    ("fal-ai/flux-pro/kontext/text-to-image", "flux_pro_kontext_text_to_image", "FluxImageOutput"),
    ("fal-ai/veo3", "veo3", "VideoOutput"),
    ("fal-ai/veo3/fast", "veo3_fast", "VideoOutput"),
    ("fal-ai/veo3/image-to-video", "veo3_image_to_video", "VideoOutput"),
    ("fal-ai/veo3/fast/image-to-video", "veo3_fast_image_to_video", "VideoOutput"),
    ("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", "kling_video_v2_5_turbo_pro_text_to_video", "VideoOutput"),
    ("fal-ai/kling-video/v2.5-turbo/pro/image-to-video", "kling_video_v2_5_turbo_pro_image_to_video", "VideoOutput"),
    ("fal-ai/nano-banana", "nano_banana", "DescribedImagesOutput"),
    ("fal-ai/nano-banana/edit", "nano_banana_edit", "DescribedImagesOutput"),
    ("fal-ai/bytedance/seedream/v4/text-to-image", "bytedance_seedream_v4_text_to_image", "SeededImagesOutput"),
    ("fal-ai/bytedance/seedream/v4/edit", "bytedance_seedream_v4_edit", "SeededImagesOutput"),
    ("fal-ai/wan/v2.2-a14b/image-to-image", "wan_v2_2_a14b_image_to_image", "SingleImageOutput"),
    ("fal-ai/vidu/reference-to-image", "vidu_reference_to_image", "SingleImageOutput"),
    ("fal-ai/imagen4/preview", "imagen4_preview", "DescribedImagesOutput"),
    ("fal-ai/qwen-image-edit-lora", "qwen_image_edit_lora", "FluxImageOutput"),
    ("fal-ai/qwen-image-edit-plus", "qwen_image_edit_plus", "FluxImageOutput"),
    ("fal-ai/flux-lora", "flux_lora", "FluxImageOutput"),
    ("fal-ai/flux-lora/image-to-image", "flux_lora_image_to_image", "FluxImageOutput"),
    ("fal-ai/flux-lora/inpainting", "flux_lora_inpainting", "FluxImageOutput"),
];

#[test]
fn the_catalogue_holds_the_relays_twenty_nine_endpoints() {
    let r = xtask::regen(&root().join("specs"), &root()).expect("regen");
    let ids: Vec<&str> =
        r.spec["paths"].as_object().unwrap().values().filter_map(|item| item["post"]["x-falq-endpoint-id"].as_str()).collect();
    for (id, _, _) in RELAY {
        assert!(ids.contains(&id), "{id} is missing from {ids:?}");
    }
    // The relay's "get request result" pages are the queue's result call, no endpoint.
    let queue_pages = |p: &&String| p.contains("{model_name}") || p.starts_with("/fal-ai/veo3/requests/");
    assert!(!r.spec["paths"].as_object().unwrap().keys().any(|p| queue_pages(&p)), "{:?}", r.spec["paths"].as_object().unwrap().keys());
    // The real dev page's nested `definitions: ImageSize` clashes with ours: scoped, with a note.
    assert!(r.spec["components"]["schemas"].get("Flux1DevImageSize").is_some());
    assert!(
        r.warnings.iter().any(|w| w.file.ends_with("flux-1-dev.md")
            && w.message.contains("schema ImageSize differs")
            && w.message.contains("Flux1DevImageSize")),
        "{:?}",
        r.warnings
    );
    // Every vendored Apifox page is byte for byte the relay's: its first line is the page
    // title (a rendered page is as the browser shows it).
    fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { pages(&path, out) } else { out.push(path) }
        }
    }
    let mut vendored = Vec::new();
    pages(&root().join("specs/apifox"), &mut vendored);
    for path in vendored {
        let text = std::fs::read_to_string(&path).unwrap();
        if xtask::rendered::is_rendered(&text) {
            continue;
        }
        assert!(text.starts_with("# ") && text.contains("## OpenAPI Specification"), "{}", path.display());
    }
}

fn all_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                all_keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

/// fal's request options, which regen adds to every submit (`x-falq-submit-parameters`).
const REQUEST_OPTIONS: [&str; 5] =
    ["fal_webhook", "X-Fal-Queue-Priority", "X-Fal-Request-Timeout", "X-Fal-Runner-Hint", "X-Fal-Object-Lifecycle-Preference"];

fn parameter_names(op: &serde_json::Value) -> Vec<&str> {
    op["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect()
}

#[test]
fn every_page_is_a_clean_typed_operation() {
    let r = xtask::regen(&root().join("specs"), &root()).expect("regen");
    let spec = &r.spec;
    for (id, op_id, output) in RELAY {
        let op = &spec["paths"][format!("/{id}")]["post"];
        assert_eq!(op["operationId"], json!(op_id), "{id}");
        assert_eq!(op["x-falq-output"]["$ref"], json!(format!("#/components/schemas/{output}")), "{id}");
        // The input is named after the endpoint (as typify spells it), never after a title.
        let input_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
        let input_name = input_ref.strip_prefix("#/components/schemas/").unwrap();
        let words: String = op_id.split('_').collect();
        assert_eq!(input_name.to_lowercase(), format!("{words}input"), "{id}");
        // The FLUX family's facts, from the relay's pages and fal's schema.
        if id.starts_with("fal-ai/flux-1") || id.starts_with("fal-ai/flux-pro") {
            let input = &spec["components"]["schemas"][input_name];
            if let Some(n) = input["properties"].get("num_images") {
                assert_eq!(n["maximum"], json!(4), "{id}: num_images 1-4");
            }
            if let Some(seed) = input["properties"].get("seed") {
                assert_eq!(seed["type"], json!("integer"), "{id}: seed is an integer");
            }
        }
    }
    // Whatever the pages: every endpoint is a POST whose header parameters are gone and
    // fal's request options added, whose submit answers the queue status, and that has
    // an input component and an output.
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(id) = item["post"]["x-falq-endpoint-id"].as_str() else { continue };
        let op = &item["post"];
        assert_eq!(op["x-falq-endpoint-id"], json!(path.trim_start_matches('/')));
        assert_eq!(parameter_names(op), REQUEST_OPTIONS, "{id}: the page's header parameters are gone, fal's request options added");
        for (code, r) in op["responses"].as_object().unwrap().iter().filter(|(c, _)| c.starts_with('2')) {
            assert_eq!(r["content"]["application/json"]["schema"]["$ref"], json!("#/components/schemas/QueueStatus"), "{id} {code}");
        }
        let input = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap_or_default();
        assert!(spec.pointer(&input.replace("#/", "/")).is_some(), "{id}: input {input}");
        let output = op["x-falq-output"]["$ref"].as_str().unwrap_or_default();
        assert!(spec.pointer(&output.replace("#/", "/")).is_some(), "{id}: output {output}");
    }
    for op in ["queue_status", "queue_status_stream", "queue_result", "queue_cancel"] {
        assert!(
            spec["paths"].as_object().unwrap().values().any(|item| item
                .as_object()
                .unwrap()
                .values()
                .any(|o| o["operationId"] == json!(op))),
            "{op} missing"
        );
    }
    // Required fields: only what the page (or fal) says is required.
    assert_eq!(spec["components"]["schemas"]["Flux1DevReduxInput"]["required"], json!(["image_url"]));
    assert_eq!(spec["components"]["schemas"]["Flux1DevReduxInput"]["properties"]["num_inference_steps"]["maximum"], json!(50));
    assert_eq!(spec["components"]["schemas"]["Flux1SchnellReduxInput"]["properties"]["num_inference_steps"]["maximum"], json!(12));
    // No quirk survives: no titles, no Apifox extensions, ASCII names only.
    let mut keys = Vec::new();
    all_keys(&spec["paths"], &mut keys);
    all_keys(&spec["components"], &mut keys);
    assert!(!keys.iter().any(|k| k == "title" || k.starts_with("x-apifox")), "titles or x-apifox keys survived");
    for name in spec["components"]["schemas"].as_object().unwrap().keys() {
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "schema name {name} is not an ASCII identifier");
    }
    // Shared shapes are one component each: the aspect ratios and safety levels are
    // spelled out once, in their components, however many pages repeat them.
    let text = serde_json::to_string(spec).unwrap();
    assert_eq!(text.matches("\"21:9\"").count(), 1, "aspect ratios defined once");
    assert_eq!(text.matches("[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]").count(), 1, "safety tolerance defined once");
}

const NEW_PAGE: &str = r#"# FLUX.1 [Dev] 文生图 and [Schnell]

Two specs in one page, with `{{BASE_URL}}` placeholders.

```yaml
openapi: 3.0.1
info: {title: '', version: 1.0.0}
paths:
  '{{BASE_URL}}/fal-ai/flux-1/dev':
    post:
      summary: FLUX.1 [Dev] 文生图
      parameters:
        - {name: Authorization, in: header, required: true, example: 'Bearer {{API_KEY}}', schema: {type: string}}
        - {name: Accept, in: header, schema: {type: string}}
      requestBody:
        content:
          application/json:
            schema:
              title: FLUX.1 Dev 文生图请求参数
              type: object
              properties:
                prompt: {type: string, description: 必填。提示词, examples: [a cat]}
                num_inference_steps: {type: integer, description: 可选。推理步数，默认28，范围1-50}
                num_images: {type: integer, description: 可选。数量，默认1，1-4}
                seed: {type: [integer, 'null'], description: 可选。随机种子}
                output_format: {type: string, enum: [jpeg, png], description: 可选。格式，默认jpeg}
              required: [prompt, num_inference_steps, num_images, seed, output_format]
      responses:
        '200':
          description: ''
          content:
            application/json:
              schema: {type: object, properties: {}}
  '{{BASE_URL}}/fal-ai/flux-1/dev/upload':
    post:
      summary: 上传
      requestBody:
        content:
          multipart/form-data:
            schema: {type: object}
      responses:
        '200': {description: ''}
```

```yaml
openapi: 3.0.1
info: {title: '', version: 1.0.0}
paths:
  /BASE_URL/fal-ai/flux-1/schnell:
    post:
      summary: FLUX.1 [Schnell]
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                prompt: {type: string}
                num_inference_steps: {type: integer, description: 'Default: 4 Range: 1-12'}
              required: [prompt]
      responses:
        '200':
          description: ''
          content:
            application/json:
              schema:
                type: object
                properties:
                  status: {type: string}
                  request_id: {type: string}
```
"#;

#[test]
fn a_new_page_regenerates_without_code_change() {
    let dir = scratch("newpage", &[("pages/flux-1-dev.md", NEW_PAGE)]);
    let r = xtask::regen(&dir.join("specs"), &dir).expect("a page in the same dialect regenerates");
    let spec = &r.spec;
    let dev = &spec["paths"]["/fal-ai/flux-1/dev"]["post"];
    assert_eq!(dev["operationId"], json!("flux_1_dev"));
    assert_eq!(parameter_names(dev), REQUEST_OPTIONS);
    assert_eq!(dev["responses"]["200"]["content"]["application/json"]["schema"]["$ref"], json!("#/components/schemas/QueueStatus"));
    let input = &spec["components"]["schemas"]["Flux1DevInput"];
    assert_eq!(input["required"], json!(["prompt"]));
    assert_eq!(input["properties"]["num_inference_steps"]["default"], json!(28));
    assert_eq!(input["properties"]["seed"]["nullable"], json!(true));
    assert_eq!(input["properties"]["output_format"]["allOf"][0]["$ref"], json!("#/components/schemas/OutputFormat"));
    let schnell = &spec["components"]["schemas"]["Flux1SchnellInput"];
    assert_eq!(schnell["properties"]["num_inference_steps"]["maximum"], json!(12));
    assert!(spec["paths"].get("/fal-ai/flux-1/dev/upload").is_none(), "the multipart operation is skipped");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("skipped POST /fal-ai/flux-1/dev/upload") && w.message.contains("multipart/form-data")),
        "{:?}",
        r.warnings
    );
    let client = &r.outputs.iter().find(|o| o.path.ends_with("generated.rs")).unwrap().content;
    assert!(client.contains("pub fn flux_1_dev(&self)") && client.contains("pub fn flux_1_schnell(&self)"));
    assert!(client.contains("pub struct Flux1DevInput"));
    let catalog = &r.outputs.iter().find(|o| o.path.ends_with("catalog.rs")).unwrap().content;
    assert!(catalog.contains("id: \"fal-ai/flux-1/dev\"") && catalog.contains("app_id: \"fal-ai/flux-1\""));
    assert!(catalog.contains("pub type Flux1SchnellOutput = crate::types::FalResult;"), "no overlay: untyped output");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn errors_name_file_line_and_what_to_do() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (
            "rendered",
            &[(
                "k.txt",
                "/fal-ai/x\nPOST\n| Parameter | Type | Required | Description |\n|---|---|---|---|\nprompt | string | Required | |\nsize | tuple | Optional | |\n",
            )],
            "specs/k.txt:6: size: the type \"tuple\" is not one falq reads",
        ),
        ("badyaml", &[("p.md", "# P\n\n```yaml\nopenapi: 3.0.1\npaths:\n  /a/b: {post: [\n```\n")], "specs/p.md:"),
        ("nofence", &[("p.md", "# just prose\n")], "no fenced ```yaml block"),
        (
            "dup",
            &[
                (
                    "a.md",
                    "```yaml\nopenapi: 3.0.1\ninfo: {title: '', version: '1'}\npaths:\n  /BASE_URL/fal-ai/x:\n    post: {requestBody: {content: {application/json: {schema: {type: object, properties: {prompt: {type: string}}}}}}, responses: {'200': {description: ''}}}\n```\n",
                ),
                (
                    "b.md",
                    "```yaml\nopenapi: 3.0.1\ninfo: {title: '', version: '1'}\npaths:\n  /BASE_URL/fal-ai/x:\n    post: {requestBody: {content: {application/json: {schema: {type: object, properties: {prompt: {type: string}}}}}}, responses: {'200': {description: ''}}}\n```\n",
                ),
            ],
            "specs/b.md:5: duplicate endpoint /fal-ai/x: specs/a.md:5 defines it already",
        ),
        (
            "overlay",
            &[
                (
                    "a.md",
                    "```yaml\nopenapi: 3.0.1\ninfo: {title: '', version: '1'}\npaths:\n  /BASE_URL/fal-ai/x:\n    post: {requestBody: {content: {application/json: {schema: {type: object, properties: {prompt: {type: string}}}}}}, responses: {'200': {description: ''}}}\n```\n",
                ),
                ("o.yaml", "falq-overlay: 1\nendpoints:\n  fal-ai/y:\n    output: FluxImageOutput\n"),
            ],
            "specs/o.yaml:3: the overlay names endpoint fal-ai/y",
        ),
        ("version", &[("a.md", "```yaml\nopenapi: 2.0.0\n```\n")], "unsupported OpenAPI version 2.0.0"),
    ];
    for (name, files, expected) in cases {
        let dir = scratch(name, files);
        let msg = regen_err(&dir);
        assert!(msg.contains(expected), "{name}: expected {expected:?} in\n{msg}");
        assert!(msg.contains("help:") || name == "badyaml", "{name}: says what to do\n{msg}");
        std::fs::remove_dir_all(dir).ok();
    }
}
