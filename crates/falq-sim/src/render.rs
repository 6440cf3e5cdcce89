//! The media files: output sizes from presets and aspect ratios, the seeded synthetic image,
//! the blend with an input image's thumbnail, PNG/JPEG encoding; a seeded WAV for audio and
//! a seeded binary glTF for a 3D mesh.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

use crate::SimError;
use crate::util::mix64;

/// The side of the square thumbnail an input image is reduced to.
pub(crate) const THUMB_SIDE: u32 = 16;

/// The output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    /// `png` is PNG; anything else (`jpeg`, `jpg`, absent) is JPEG, fal's default.
    pub(crate) fn from_name(name: Option<&str>) -> ImageFormat {
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("png") => ImageFormat::Png,
            _ => ImageFormat::Jpeg,
        }
    }

    pub(crate) fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

/// An input image reduced to what outputs are derived from: its size (when known) and a
/// 16×16 RGB thumbnail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Thumb {
    /// The original's width and height, when it was decoded.
    pub(crate) size: Option<(u32, u32)>,
    /// `THUMB_SIDE`² RGB pixels, row by row.
    pub(crate) rgb: Vec<u8>,
}

impl Thumb {
    /// The thumbnail of a decoded image.
    pub(crate) fn of(image: &DynamicImage) -> Thumb {
        let small = image.thumbnail_exact(THUMB_SIDE, THUMB_SIDE).to_rgb8();
        Thumb { size: Some((image.width(), image.height())), rgb: small.into_raw() }
    }

    /// A stand-in for an image the simulator does not fetch (a remote URL): a pattern
    /// derived from a hash of the URL, so different URLs give different outputs.
    pub(crate) fn from_hash(hash: u64) -> Thumb {
        let side = THUMB_SIDE as usize;
        let mut rgb = Vec::with_capacity(side * side * 3);
        for i in 0..side * side {
            let h = mix64(hash ^ (i as u64 / 4));
            rgb.extend_from_slice(&[(h >> 8) as u8, (h >> 24) as u8, (h >> 40) as u8]);
        }
        Thumb { size: None, rgb }
    }
}

/// The size of a preset `image_size` name.
pub(crate) fn preset_size(name: &str) -> Option<(u32, u32)> {
    Some(match name {
        "square_hd" => (1024, 1024),
        "square" => (512, 512),
        "portrait_4_3" => (768, 1024),
        "portrait_16_9" => (576, 1024),
        "landscape_4_3" => (1024, 768),
        "landscape_16_9" => (1024, 576),
        _ => return None,
    })
}

/// About one megapixel at width:height, each side rounded to a multiple of 16.
pub(crate) fn size_for_ratio(width: f64, height: f64) -> Option<(u32, u32)> {
    if !(width > 0.0 && height > 0.0 && width.is_finite() && height.is_finite()) {
        return None;
    }
    let w = (1024.0 * 1024.0 * width / height).sqrt();
    let h = w * height / width;
    let round16 = |x: f64| ((x / 16.0).round().max(1.0) * 16.0).min(16_384.0) as u32;
    Some((round16(w), round16(h)))
}

/// The size of an `aspect_ratio` such as `16:9`.
pub(crate) fn aspect_ratio_size(ratio: &str) -> Option<(u32, u32)> {
    let (w, h) = ratio.split_once(':')?;
    size_for_ratio(w.trim().parse().ok()?, h.trim().parse().ok()?)
}

/// The seeded picture, `width`×`height` RGB, derived from `source` when there is one.
/// Cheap: integer arithmetic per pixel.
pub(crate) fn render(width: u32, height: u32, seed: u64, source: Option<&Thumb>) -> Vec<u8> {
    let (w, h) = (width.max(1) as usize, height.max(1) as usize);
    let r0 = mix64(seed);
    let r1 = mix64(r0);
    let c0 = [(r0 >> 8) as u8 as i32, (r0 >> 16) as u8 as i32, (r0 >> 24) as u8 as i32];
    let c1 = [(r1 >> 8) as u8 as i32, (r1 >> 16) as u8 as i32, (r1 >> 24) as u8 as i32];
    let cell = 8 + (r0 >> 40) as usize % 56;
    let (cx, cy) = ((r1 >> 32) as usize % w, (r1 >> 48) as usize % h);
    let radius = (w.min(h) / 4).max(1) + (r0 >> 56) as usize % (w.min(h) / 4).max(1);
    let r2 = (radius * radius) as i64;
    // Bilinear sampling positions into the thumbnail, per column and per row (8.8 fixed point).
    let side = THUMB_SIDE as usize;
    let axis = |n: usize| -> Vec<(usize, usize, i32)> {
        (0..n)
            .map(|i| {
                let g = if n > 1 { i * (side - 1) * 256 / (n - 1) } else { 0 };
                let (lo, f) = (g >> 8, (g & 255) as i32);
                (lo, (lo + 1).min(side - 1), f)
            })
            .collect()
    };
    let (xs, ys) = if source.is_some() { (axis(w), axis(h)) } else { (Vec::new(), Vec::new()) };
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let dy = y as i64 - cy as i64;
        let row = ys.get(y).copied();
        for x in 0..w {
            let t = ((x * 255 / w + y * 255 / h) / 2) as i32;
            let mut px = [0i32; 3];
            for c in 0..3 {
                px[c] = (c0[c] * (255 - t) + c1[c] * t) / 255;
            }
            if ((x / cell) + (y / cell)).is_multiple_of(2) {
                px.iter_mut().for_each(|v| *v = (*v + 24).min(255));
            }
            let dx = x as i64 - cx as i64;
            if dx * dx + dy * dy < r2 {
                px.iter_mut().for_each(|v| *v = 255 - *v);
            }
            if let (Some(thumb), Some(&(x0, x1, fx)), Some((y0, y1, fy))) = (source, xs.get(x), row) {
                for (c, v) in px.iter_mut().enumerate() {
                    let at = |xx: usize, yy: usize| thumb.rgb[(yy * side + xx) * 3 + c] as i32;
                    let top = at(x0, y0) * (256 - fx) + at(x1, y0) * fx;
                    let bottom = at(x0, y1) * (256 - fx) + at(x1, y1) * fx;
                    let s = (top * (256 - fy) + bottom * fy) >> 16;
                    *v = (s * 3 + *v) / 4;
                }
            }
            out.extend(px.iter().map(|&v| v as u8));
        }
    }
    out
}

/// Encodes RGB pixels as PNG or JPEG (quality 85).
pub(crate) fn encode(rgb: &[u8], width: u32, height: u32, format: ImageFormat) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::new();
    let result = match format {
        ImageFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, 85).write_image(rgb, width, height, ExtendedColorType::Rgb8),
        ImageFormat::Png => PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive).write_image(
            rgb,
            width,
            height,
            ExtendedColorType::Rgb8,
        ),
    };
    result.map_err(|e| SimError::Image(e.to_string()))?;
    Ok(out)
}

/// Renders and encodes one output image.
pub(crate) fn render_file(width: u32, height: u32, seed: u64, source: Option<&Thumb>, format: ImageFormat) -> Result<Vec<u8>, SimError> {
    encode(&render(width, height, seed, source), width.max(1), height.max(1), format)
}

/// The sample rate of the simulator's audio.
const SAMPLE_RATE: u32 = 16_000;

/// Half a second of a seeded tone as a 16-bit mono PCM WAV file: real audio any player opens.
pub(crate) fn wav(seed: u64) -> Vec<u8> {
    let samples = SAMPLE_RATE / 2;
    let hz = 220.0 + (mix64(seed) % 660) as f64;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(SAMPLE_RATE);
        let v = (t * hz * std::f64::consts::TAU).sin() * 8000.0;
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    out
}

/// A binary glTF 2.0 file holding one seeded triangle: a real mesh any glTF viewer opens.
pub(crate) fn glb(seed: u64) -> Vec<u8> {
    let r = mix64(seed);
    let scale = 1.0 + (r % 1000) as f32 / 1000.0;
    let positions: [f32; 9] = [0.0, 0.0, 0.0, scale, 0.0, 0.0, 0.0, scale, 0.0];
    let bin: Vec<u8> = positions.iter().flat_map(|v| v.to_le_bytes()).collect();
    let json = format!(
        concat!(
            r#"{{"asset":{{"version":"2.0","generator":"falq-sim"}},"scene":0,"scenes":[{{"nodes":[0]}}],"nodes":[{{"mesh":0}}],"#,
            r#""meshes":[{{"primitives":[{{"attributes":{{"POSITION":0}}}}]}}],"buffers":[{{"byteLength":{len}}}],"#,
            r#""bufferViews":[{{"buffer":0,"byteOffset":0,"byteLength":{len},"target":34962}}],"#,
            r#""accessors":[{{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3","min":[0,0,0],"max":[{s},{s},0]}}]}}"#
        ),
        len = bin.len(),
        s = scale
    );
    let mut json = json.into_bytes();
    while json.len() % 4 != 0 {
        json.push(b' ');
    }
    let total = 12 + 8 + json.len() + 8 + bin.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json);
    out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_table() {
        for (name, size) in [
            ("square_hd", Some((1024, 1024))),
            ("square", Some((512, 512))),
            ("portrait_4_3", Some((768, 1024))),
            ("portrait_16_9", Some((576, 1024))),
            ("landscape_4_3", Some((1024, 768))),
            ("landscape_16_9", Some((1024, 576))),
            ("huge", None),
        ] {
            assert_eq!(preset_size(name), size, "{name}");
        }
    }

    #[test]
    fn aspect_ratios_table() {
        for (ratio, size) in [
            ("1:1", Some((1024, 1024))),
            ("16:9", Some((1360, 768))),
            ("9:16", Some((768, 1360))),
            ("4:3", Some((1184, 880))),
            ("21:9", Some((1568, 672))),
            ("0:1", None),
            ("wide", None),
        ] {
            assert_eq!(aspect_ratio_size(ratio), size, "{ratio}");
            if let Some((w, h)) = size {
                assert_eq!((w % 16, h % 16), (0, 0));
                let mp = f64::from(w * h) / 1_048_576.0;
                assert!((0.9..1.1).contains(&mp), "{ratio}: {mp}");
            }
        }
    }

    #[test]
    fn rendering_is_deterministic_and_depends_on_seed_and_source() {
        let a = render(40, 30, 1, None);
        assert_eq!(a.len(), 40 * 30 * 3);
        assert_eq!(a, render(40, 30, 1, None));
        assert_ne!(a, render(40, 30, 2, None));
        let thumb = Thumb::from_hash(5);
        let b = render(40, 30, 1, Some(&thumb));
        assert_ne!(a, b);
        assert_ne!(b, render(40, 30, 1, Some(&Thumb::from_hash(6))));
        assert_eq!(render(1, 1, 3, Some(&thumb)).len(), 3);
    }

    #[test]
    fn encodings_decode_to_the_right_size() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let bytes = render_file(33, 17, 9, None, format).unwrap();
            let decoded = image::load_from_memory(&bytes).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (33, 17), "{format:?}");
        }
        assert_eq!(ImageFormat::from_name(Some("PNG")), ImageFormat::Png);
        assert_eq!(ImageFormat::from_name(None), ImageFormat::Jpeg);
    }

    #[test]
    fn audio_and_meshes_are_real_files() {
        let a = wav(1);
        assert_eq!((&a[..4], &a[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
        assert_eq!(u32::from_le_bytes([a[4], a[5], a[6], a[7]]) as usize, a.len() - 8, "the RIFF size is the file's");
        assert_eq!(u32::from_le_bytes([a[40], a[41], a[42], a[43]]) as usize, a.len() - 44, "the data chunk is the rest");
        assert_ne!(a, wav(2), "seeded");
        let m = glb(1);
        assert_eq!(&m[..4], b"glTF");
        assert_eq!(u32::from_le_bytes([m[8], m[9], m[10], m[11]]) as usize, m.len(), "the header's length is the file's");
        let json_len = u32::from_le_bytes([m[12], m[13], m[14], m[15]]) as usize;
        let json: serde_json::Value = serde_json::from_slice(&m[20..20 + json_len]).expect("the JSON chunk parses");
        assert_eq!(json["asset"]["version"], "2.0");
        assert_eq!(json_len % 4, 0, "chunks are 4-byte aligned");
        let bin_len = u32::from_le_bytes(m[20 + json_len..24 + json_len].try_into().unwrap()) as usize;
        assert_eq!(&m[24 + json_len..28 + json_len], b"BIN\0");
        assert_eq!(bin_len, json["buffers"][0]["byteLength"].as_u64().unwrap() as usize);
        assert_eq!(28 + json_len + bin_len, m.len());
    }

    #[test]
    fn thumbnails_keep_the_original_size() {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(50, 20, image::Rgb([200, 10, 10])));
        let thumb = Thumb::of(&image);
        assert_eq!(thumb.size, Some((50, 20)));
        assert_eq!(thumb.rgb.len(), 16 * 16 * 3);
        assert!(thumb.rgb.chunks(3).all(|p| p[0] > 150 && p[1] < 60));
    }
}
