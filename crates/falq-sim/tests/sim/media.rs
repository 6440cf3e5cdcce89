//! Real outputs: decodable images of the right size and type, determinism, input images, sync mode.

use base64::Engine as _;
use falq_sim::{SimConfig, SimMode};
use serde_json::{Value, json};

use crate::common::*;

/// Downloads an output image with no key; answers (content type, bytes).
async fn fetch(api: &Api, url: &str) -> (String, Vec<u8>) {
    let response = api.download(url).await;
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, response.bytes().await.unwrap().to_vec())
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).expect("a decodable image");
    (image.width(), image.height())
}

async fn first_image(api: &Api, endpoint: &str, input: &Value) -> Vec<u8> {
    let output = api.output(endpoint, input).await;
    fetch(api, output["images"][0]["url"].as_str().unwrap()).await.1
}

#[tokio::test]
async fn media_are_real_images_of_the_asked_size_and_format_served_without_a_key() {
    for mode in [SimMode::Relay, SimMode::Direct] {
        let (sim, api) = start(SimConfig { mode, ..fast() }).await;
        let input = json!({ "image_url": "https://fal.media/a.png", "image_size": { "width": 64, "height": 48 }, "num_images": 2, "output_format": "png" });
        let output = api.output(REDUX, &input).await;
        let images = output["images"].as_array().unwrap();
        assert_eq!(images.len(), 2);
        let mut files = Vec::new();
        for image in images {
            let url = image["url"].as_str().unwrap();
            assert!(url.starts_with(&format!("{}/media/", sim.base_url())), "{mode}: {url}");
            assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(64), Some(48)));
            assert_eq!(image["content_type"], "image/png");
            assert!(image["file_name"].as_str().unwrap().ends_with(".png"));
            let (content_type, bytes) = fetch(&api, url).await;
            assert_eq!(content_type, "image/png");
            assert_eq!(image::guess_format(&bytes).unwrap(), image::ImageFormat::Png);
            assert_eq!(dimensions(&bytes), (64, 48));
            files.push(bytes);
        }
        assert_ne!(files[0], files[1], "each image of a job differs");
        assert_eq!(output["has_nsfw_concepts"], json!([false, false]));
    }
}

#[tokio::test]
async fn jpeg_is_the_default_and_presets_and_aspect_ratios_size_the_images() {
    let (_sim, api) = start(fast()).await;
    let output = api.output(REDUX, &json!({ "image_url": "https://fal.media/a.png", "image_size": "square" })).await;
    let (content_type, bytes) = fetch(&api, output["images"][0]["url"].as_str().unwrap()).await;
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(image::guess_format(&bytes).unwrap(), image::ImageFormat::Jpeg);
    assert_eq!(dimensions(&bytes), (512, 512));
    let output = api.output(TEXT, &json!({ "prompt": "p", "aspect_ratio": "16:9" })).await;
    assert_eq!((output["images"][0]["width"].as_u64(), output["images"][0]["height"].as_u64()), (Some(1360), Some(768)));
    let output = api.output(REDUX, &json!({ "image_url": "https://fal.media/a.png" })).await;
    assert_eq!((output["images"][0]["width"].as_u64(), output["images"][0]["height"].as_u64()), (Some(1024), Some(768)));
}

#[tokio::test]
async fn the_same_seed_and_input_give_the_same_bytes() {
    let (_sim, api) = start(fast()).await;
    let input = small_redux_input("https://fal.media/a.png", 196_619_188_014_358_660);
    let a = first_image(&api, REDUX, &input).await;
    let b = first_image(&api, REDUX, &input).await;
    assert_eq!(a, b);
    let c = first_image(&api, REDUX, &small_redux_input("https://fal.media/a.png", 2)).await;
    assert_ne!(a, c);
    let output = api.output(REDUX, &input).await;
    assert_eq!(output["seed"].as_u64(), Some(196_619_188_014_358_660), "seeds above 2^53 come back exact");
    // A second simulator with the same input draws the same bytes.
    let (_other, other_api) = start(fast()).await;
    assert_eq!(first_image(&other_api, REDUX, &input).await, a);
}

#[tokio::test]
async fn jobs_without_a_seed_get_a_large_integer_seed_from_the_sims_seed() {
    let seeds = async |seed: u64| {
        let (_sim, api) = start(SimConfig { seed, ..fast() }).await;
        let mut seeds = Vec::new();
        for _ in 0..2 {
            let output = api.output(TEXT, &json!({ "prompt": "p" })).await;
            seeds.push(output["seed"].as_u64().expect("an integer seed"));
        }
        seeds
    };
    let a = seeds(5).await;
    assert_ne!(a[0], a[1]);
    assert_eq!(a, seeds(5).await);
    assert_ne!(a, seeds(6).await);
}

#[tokio::test]
async fn outputs_derive_from_the_input_image() {
    let (_sim, api) = start(fast()).await;
    let red = png_data_url([220, 20, 20]);
    let blue = png_data_url([20, 20, 220]);
    let from_red = first_image(&api, REDUX, &small_redux_input(&red, 3)).await;
    let from_blue = first_image(&api, REDUX, &small_redux_input(&blue, 3)).await;
    assert_ne!(from_red, from_blue);
    assert_eq!(from_red, first_image(&api, REDUX, &small_redux_input(&red, 3)).await);
    // The picture leans to the input's colour.
    let mean = |bytes: &[u8]| {
        let image = image::load_from_memory(bytes).unwrap().to_rgb8();
        let n = image.pixels().len() as u64;
        let sum = image.pixels().fold([0u64; 3], |s, p| [s[0] + u64::from(p[0]), s[1] + u64::from(p[1]), s[2] + u64::from(p[2])]);
        sum.map(|c| c / n)
    };
    assert!(mean(&from_red)[0] > mean(&from_red)[2]);
    assert!(mean(&from_blue)[2] > mean(&from_blue)[0]);
    // kontext/multi takes the first of image_urls, and sizes by its ratio when no aspect_ratio is given.
    let output = api.output("fal-ai/flux-pro/kontext/multi", &json!({ "prompt": "p", "image_urls": [red, blue] })).await;
    assert_eq!((output["images"][0]["width"].as_u64(), output["images"][0]["height"].as_u64()), (Some(1456), Some(720)));
}

#[tokio::test]
async fn local_http_input_images_are_fetched_including_from_the_sim_itself() {
    let (_sim, api) = start(fast()).await;
    let first = api.output(REDUX, &small_redux_input(&png_data_url([0, 200, 0]), 1)).await;
    let media_url = first["images"][0]["url"].as_str().unwrap();
    let derived = first_image(&api, REDUX, &small_redux_input(media_url, 9)).await;
    let unrelated = first_image(&api, REDUX, &small_redux_input("https://fal.media/a.png", 9)).await;
    assert_ne!(derived, unrelated);
    assert_eq!(dimensions(&derived), (64, 48));
}

#[tokio::test]
async fn unloadable_input_images_fail_the_job_at_its_result() {
    let (_sim, api) = start(fast()).await;
    let cases = [
        ("data:image/png;base64,bm90IGFuIGltYWdl", "image_load_error"),
        ("data:image/png;base64,%%%", "image_load_error"),
        ("http://127.0.0.1:1/missing.png", "file_download_error"),
    ];
    for (url, kind) in cases {
        let (_, result) = api.run(REDUX, &small_redux_input(url, 1)).await;
        assert_eq!(result.status(), 422, "{url}");
        let body: Value = result.json().await.unwrap();
        assert_eq!(body["detail"][0]["loc"], json!(["body", "image_url"]));
        assert_eq!(body["detail"][0]["type"], kind);
    }
}

#[tokio::test]
async fn sync_mode_inlines_data_uris() {
    let (_sim, api) = start(fast()).await;
    let mut input = small_redux_input("https://fal.media/a.png", 4);
    input["sync_mode"] = json!(true);
    input["output_format"] = json!("png");
    let output = api.output(REDUX, &input).await;
    let url = output["images"][0]["url"].as_str().unwrap();
    let payload = url.strip_prefix("data:image/png;base64,").expect("a PNG data URI");
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload).unwrap();
    assert_eq!(dimensions(&bytes), (64, 48));
    assert_eq!(output["images"][0]["file_size"].as_u64(), Some(bytes.len() as u64));
    // The same job without sync_mode draws the same picture.
    input["sync_mode"] = json!(false);
    assert_eq!(first_image(&api, REDUX, &input).await, bytes);
}
