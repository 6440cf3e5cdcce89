//! Outputs of every family, made from their JSON Schemas alone: endpoints the simulated
//! relay sells beyond the catalogue (`SimConfig::extra_endpoints`), with outputs of audio,
//! text, a 3D mesh, a single image, files deep in nested lists, video beside audio, and a
//! file of no known kind. Each answers what its schema says, and every file it names is
//! served as what it is.

use falq_api::FileKind;
use falq_sim::{SimConfig, extra_endpoint};
use serde_json::{Value, json};

use crate::common::*;

fn file() -> Value {
    json!({"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string"}, "content_type": {"type": ["string", "null"]},
        "file_name": {"type": ["string", "null"]}, "file_size": {"type": ["integer", "null"]}}})
}

/// (endpoint, output schema, a field the output must hold as text)
fn families() -> Vec<(&'static str, Value, Option<&'static str>)> {
    vec![
        (
            "acme/tts",
            json!({"type": "object", "required": ["audio"], "properties": {"audio": file(), "duration": {"type": "number"}}}),
            None,
        ),
        (
            "acme/whisper",
            json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"},
                "chunks": {"type": "array", "items": {"type": "object", "properties": {
                    "timestamp": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, "text": {"type": "string"}}}}}}),
            Some("/text"),
        ),
        (
            "acme/trellis",
            json!({"type": "object", "required": ["model_mesh"], "properties": {"model_mesh": file(), "timings": {"type": "object", "additionalProperties": {"type": "number"}}}}),
            None,
        ),
        (
            "acme/upscaler",
            json!({"type": "object", "required": ["image"], "properties": {"image": file(), "seed": {"type": "integer"}}}),
            None,
        ),
        (
            "acme/storyboard",
            json!({"type": "object", "required": ["result"], "properties": {"result": {"type": "object", "properties": {
                "frames": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer", "minimum": 0}, "image": file()}}},
                "preview": {"type": "object", "properties": {"url": {"type": "string"}, "content_type": {"type": "string", "default": "video/mp4"}}},
                "soundtrack": file(),
                "style": {"type": "string", "enum": ["noir", "pastel"]},
                "notes": {"type": "string", "maxLength": 12}}}}}),
            Some("/result/notes"),
        ),
        ("acme/archive", json!({"type": "object", "required": ["archive"], "properties": {"archive": file()}}), None),
    ]
}

#[tokio::test]
async fn every_family_answers_its_schema_and_serves_files_of_their_kinds() {
    let endpoints: Vec<_> = families().into_iter().map(|(id, schema, text)| (extra_endpoint(id, schema), text)).collect();
    let config = SimConfig { extra_endpoints: endpoints.iter().map(|(e, _)| *e).collect(), ..fast() };
    let (_sim, api) = start(config).await;
    for (endpoint, text) in &endpoints {
        let submitted = api.submit(endpoint.id, &json!({"prompt": "a fox", "num_images": 3})).await;
        api.wait_for(&submitted, "COMPLETED").await;
        let result = api.get(submitted["response_url"].as_str().unwrap()).await;
        assert_eq!(result.status(), 200, "{}", endpoint.id);
        let output: Value = result.json().await.unwrap();
        let schema: Value = serde_json::from_str(endpoint.output_json_schema).unwrap();
        let validator = falq_api::json_schema::compile(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(&output).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: the output does not match its schema: {errors:?}\n{output}", endpoint.id);
        if let Some(at) = text {
            let t = at_pointer(&output, at);
            assert!(
                t.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())) && !t.is_empty(),
                "{}: text at {at}: {output}",
                endpoint.id
            );
        }
        for slot in endpoint.output_files {
            let files = at_pointer(&output, slot.pointer);
            assert!(!files.is_empty(), "{}: {} holds a file: {output}", endpoint.id, slot.pointer);
            for f in files {
                let response = api.download(f["url"].as_str().unwrap()).await;
                assert_eq!(response.status(), 200);
                let bytes = response.bytes().await.unwrap();
                let kind = falq_api::sniff(&bytes).and_then(FileKind::from_content_type).unwrap_or(FileKind::Other);
                assert_eq!(kind, slot.kind, "{}: {} is a {}", endpoint.id, slot.pointer, slot.kind);
            }
        }
    }
    // A list of files holds as many as the input asked for; inner lists one each.
    let board = api.submit("acme/storyboard", &json!({"num_images": 3})).await;
    api.wait_for(&board, "COMPLETED").await;
    let output: Value = api.get(board["response_url"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(output["result"]["frames"].as_array().map(Vec::len), Some(3), "{output}");
    let whisper = api.submit("acme/whisper", &json!({})).await;
    api.wait_for(&whisper, "COMPLETED").await;
    let output: Value = api.get(whisper["response_url"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(output["chunks"][0]["timestamp"].as_array().map(Vec::len), Some(2), "item counts within their bounds: {output}");
}
