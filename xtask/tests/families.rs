//! Pages of families no rule was written against (speech, transcription, 3D, a single
//! image, deep nesting), written as relays publish them, with the relays' quirks in other
//! places (an unquoted `: ` in a nested description, full-width enums deep in an input, a
//! result shown under an alternate `x-200` answer or on a result page, a developing
//! duplicate): each regenerates, typed with its output kind, from the page alone. The
//! pages are in `xtask/tests/families/`; `hostile.rs` compiles the crate they make.

use std::path::PathBuf;

use falq_core::FileKind;
use serde_json::{Value, json};

mod common;
use common::*;

/// The project's `specs/` plus the family pages under `specs/apifox/families/`, in a
/// scratch directory of the test's own (tests run at once).
fn regen_with_families(test: &str) -> (xtask::Regen, PathBuf) {
    let dir = std::env::temp_dir().join(format!("falq-families-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("specs"), &dir.join("specs"));
    copy_dir(&root().join("xtask/tests/families"), &dir.join("specs/apifox/families"));
    match xtask::regen(&dir.join("specs"), &dir) {
        Ok(r) => (r, dir),
        Err(e) => panic!("regen refused the family pages:\n{e}"),
    }
}

fn output_of<'a>(spec: &'a Value, id: &str) -> &'a str {
    let op = &spec["paths"][format!("/{id}")]["post"];
    op["x-falq-output"]["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")).unwrap_or_else(|| panic!("{id}: {op}"))
}

/// An endpoint, its files with their kinds, its text, and its output's kind in a word.
type Family = (&'static str, &'static [(&'static str, FileKind)], &'static [&'static str], &'static str);

#[test]
fn every_family_regenerates_typed_with_its_output_kind() {
    let (r, dir) = regen_with_families("kinds");
    let spec = &r.spec;
    let cases: [Family; 7] = [
        ("fal-ai/kokoro/american-english", &[("/audio", FileKind::Audio)], &[], "audio"),
        ("fal-ai/whisper", &[], &["/text", "/chunks/*/text", "/inferred_languages/*"], "text"),
        ("fal-ai/trellis", &[("/model_mesh", FileKind::Mesh)], &[], "mesh"),
        ("fal-ai/clarity-upscaler", &[("/image", FileKind::Image)], &[], "image"),
        (
            "fal-ai/storyboard/v1",
            &[("/result/frames/*/image", FileKind::Image), ("/result/preview", FileKind::Video), ("/result/soundtrack", FileKind::Audio)],
            &["/result/notes"],
            "images and video and audio",
        ),
        ("fal-ai/veo3", &[("/video", FileKind::Video)], &[], "video"),
        // kkiai's rendered result page of the app (a response table) types it.
        ("fal-ai/fast-sdxl", &[("/images/*", FileKind::Image)], &[], "images"),
    ];
    for (id, files, text, label) in cases {
        let output = output_of(spec, id);
        let got: Vec<(String, FileKind)> = xtask::export::output_files(spec, output).into_iter().map(|f| (f.pointer, f.kind)).collect();
        let want: Vec<(String, FileKind)> = files.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        assert_eq!(got, want, "{id}: the files of {output}");
        assert_eq!(xtask::export::output_text(spec, output), text, "{id}: the text of {output}");
        let words = falq_core::output_kind_label(got.iter().map(|(p, k)| (*k, p.contains('*'))), !text.is_empty());
        assert_eq!(words, label, "{id}");
        let catalog = &r.outputs.iter().find(|o| o.path.ends_with("catalog.rs")).unwrap().content;
        assert!(catalog.contains(&format!("output_kind: \"{label}\"")), "{id}: the catalogue says {label}");
    }
    // A submit answers the queue status, whatever its page showed under 200 or x-200.
    for id in ["fal-ai/kokoro/american-english", "fal-ai/whisper", "fal-ai/clarity-upscaler", "fal-ai/storyboard/v1"] {
        let responses = spec["paths"][format!("/{id}")]["post"]["responses"].as_object().unwrap();
        assert!(responses.keys().all(|c| !c.starts_with("x-")), "{id}: alternates are read, then dropped");
        assert_eq!(responses["200"]["content"]["application/json"]["schema"], json!({"$ref": "#/components/schemas/QueueStatus"}), "{id}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_quirks_of_the_families_are_read_by_the_general_rules() {
    let (r, dir) = regen_with_families("quirks");
    let schemas = &r.spec["components"]["schemas"];
    let input = |id: &str| {
        let op = &r.spec["paths"][format!("/{id}")]["post"];
        let name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        schemas[name].clone()
    };
    let resolve = |s: &Value| -> Value {
        match s["allOf"][0]["$ref"].as_str() {
            Some(r) => schemas[r.rsplit('/').next().unwrap()].clone(),
            None => s.clone(),
        }
    };
    // Unquoted `: ` in descriptions, enums and defaults in English wordings.
    let kokoro = input("fal-ai/kokoro/american-english");
    assert_eq!(resolve(&kokoro["properties"]["voice"])["enum"], json!(["af_heart", "af_bella", "am_adam"]));
    assert_eq!(kokoro["properties"]["voice"]["default"], json!("af_heart"));
    assert_eq!(
        (kokoro["properties"]["speed"]["minimum"].clone(), kokoro["properties"]["speed"]["maximum"].clone()),
        (json!(0.1), json!(5.0))
    );
    let notes: Vec<usize> = r
        .warnings
        .iter()
        .filter(|w| w.file.ends_with("fal-ai-kokoro-american-english.md") && w.message.contains("not valid YAML as written"))
        .map(|w| w.line)
        .collect();
    assert_eq!(notes, [31, 34], "each unquoted description is named with its line");
    // Chinese wordings, a default that is one of the values, a range.
    let whisper = input("fal-ai/whisper");
    assert_eq!(resolve(&whisper["properties"]["task"])["enum"], json!(["transcribe", "translate"]));
    assert_eq!(whisper["properties"]["task"]["default"], json!("transcribe"));
    assert_eq!(whisper["properties"]["batch_size"]["maximum"], json!(64));
    assert_eq!(whisper["required"], json!(["audio_url"]));
    let trellis = input("fal-ai/trellis");
    assert_eq!(resolve(&trellis["properties"]["texture_size"])["enum"], json!(["512", "1024", "2048"]));
    // Deep in an input: full-width enum values read as ASCII, a range and default three levels down.
    let board = input("fal-ai/storyboard/v1");
    assert_eq!(resolve(&board["properties"]["aspect_ratio"])["enum"], json!(["16:9", "9:16", "1:1"]));
    let text = serde_json::to_string(schemas).unwrap();
    assert!(text.contains(r#""enum":["pan","tilt","zoom"]"#), "the nested motion kind is an enum");
    let strength: Vec<&str> =
        r.inferred.iter().filter(|i| i.place.ends_with("field shots[].camera.motion.strength")).map(|i| i.what.as_str()).collect();
    assert_eq!(strength, ["default 0.5", "minimum 0.0", "maximum 1.0"]);
    // A request schema with no fields, typed from its example; nothing required.
    let clarity = input("fal-ai/clarity-upscaler");
    assert_eq!(clarity["properties"]["upscale_factor"]["type"], json!("integer"));
    assert_eq!(clarity["properties"]["creativity"]["type"], json!("number"));
    assert!(clarity.get("required").is_none());
    // kkiai's rendered page (a table, no YAML), cut inside its example: nested rows two
    // levels deep, empty description cells, kkiai's prose.
    let sdxl = input("fal-ai/fast-sdxl");
    assert_eq!(sdxl["required"], json!(["prompt"]));
    assert_eq!(resolve(&sdxl["properties"]["image_size"])["enum"], json!(["square_hd", "square", "portrait_4_3", "landscape_16_9"]));
    assert_eq!(sdxl["properties"]["image_size"]["default"], json!("square_hd"));
    assert_eq!(sdxl["properties"]["loras"]["maxItems"], json!(5));
    assert_eq!(resolve(&sdxl["properties"]["format"])["enum"], json!(["jpeg", "png"]), "`default` names the stated default");
    let lora = resolve(&sdxl["properties"]["loras"]["items"]);
    assert_eq!(lora["required"], json!(["path"]));
    assert_eq!((lora["properties"]["scale"]["minimum"].clone(), lora["properties"]["scale"]["maximum"].clone()), (json!(0.0), json!(4.0)));
    assert_eq!(resolve(&lora["properties"]["blocks"])["properties"]["unet"]["maximum"], json!(1.0));
    assert_eq!(resolve(&sdxl["properties"]["embeddings"]["items"])["properties"]["tokens"]["type"], json!("array"));
    // The developing duplicate is set aside for the released page, with a note.
    assert!(r.warnings.iter().any(|w| w.file.ends_with("fal-ai-storyboard-developing.md") && w.message.contains("is set aside")));
    assert!(board["properties"].get("shots").is_some(), "the released page's fields");
    // A result page of one app types its endpoints; it is no endpoint of its own.
    assert!(r.spec["paths"].get("/fal-ai/trellis/requests/{request_id}").is_none());
    std::fs::remove_dir_all(dir).ok();
}
