//! What an output file is: an image, a video, audio, a 3D mesh or another file, told from
//! its media type, its file name, its first bytes, or the words naming where it sits in an
//! output (`video`, `audio_file`, `model_mesh`). Regen types every file slot of the
//! catalogue with it; the simulator answers each kind with real bytes; the CLI names saved
//! files by it.

/// The kind of an output file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A picture (PNG, JPEG, WebP, ...).
    Image,
    /// A video (MP4, WebM, MOV, ...).
    Video,
    /// Sound (WAV, MP3, ...).
    Audio,
    /// A 3D mesh or scene (binary glTF, OBJ, ...).
    Mesh,
    /// Any other file (an archive, a document, subtitles, ...).
    Other,
}

/// Media types, their usual extension and their kind; the first row of a kind is its default.
const TYPES: &[(&str, &str, FileKind)] = &[
    ("image/png", "png", FileKind::Image),
    ("image/jpeg", "jpg", FileKind::Image),
    ("image/webp", "webp", FileKind::Image),
    ("image/gif", "gif", FileKind::Image),
    ("image/avif", "avif", FileKind::Image),
    ("image/bmp", "bmp", FileKind::Image),
    ("image/tiff", "tiff", FileKind::Image),
    ("image/svg+xml", "svg", FileKind::Image),
    ("video/mp4", "mp4", FileKind::Video),
    ("video/webm", "webm", FileKind::Video),
    ("video/quicktime", "mov", FileKind::Video),
    ("video/x-matroska", "mkv", FileKind::Video),
    ("video/x-msvideo", "avi", FileKind::Video),
    ("audio/wav", "wav", FileKind::Audio),
    ("audio/mpeg", "mp3", FileKind::Audio),
    ("audio/ogg", "ogg", FileKind::Audio),
    ("audio/flac", "flac", FileKind::Audio),
    ("audio/mp4", "m4a", FileKind::Audio),
    ("audio/aac", "aac", FileKind::Audio),
    ("audio/opus", "opus", FileKind::Audio),
    ("audio/webm", "weba", FileKind::Audio),
    ("model/gltf-binary", "glb", FileKind::Mesh),
    ("model/gltf+json", "gltf", FileKind::Mesh),
    ("model/obj", "obj", FileKind::Mesh),
    ("model/stl", "stl", FileKind::Mesh),
    ("model/ply", "ply", FileKind::Mesh),
    ("model/vnd.usdz+zip", "usdz", FileKind::Mesh),
    ("model/fbx", "fbx", FileKind::Mesh),
    ("application/octet-stream", "bin", FileKind::Other),
    ("application/json", "json", FileKind::Other),
    ("text/plain", "txt", FileKind::Other),
    ("application/zip", "zip", FileKind::Other),
    ("application/pdf", "pdf", FileKind::Other),
    ("text/vtt", "vtt", FileKind::Other),
    ("application/x-subrip", "srt", FileKind::Other),
];

/// Other names of the same types (`audio/x-wav`) and extensions (`jpeg`).
const ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("audio/x-wav", "audio/wav"),
    ("audio/wave", "audio/wav"),
    ("audio/vnd.wave", "audio/wav"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/x-flac", "audio/flac"),
    ("audio/x-m4a", "audio/mp4"),
    ("model/gltf", "model/gltf+json"),
    ("application/x-zip-compressed", "application/zip"),
];

const EXTENSION_ALIASES: &[(&str, &str)] = &[("jpeg", "jpg"), ("jpe", "jpg"), ("tif", "tiff"), ("wave", "wav"), ("mpeg4", "mp4")];

/// Words that name a kind where they name a field (`images`, `audio_file`, `model_mesh`),
/// or describe one (`The generated video`).
const WORDS: &[(&str, FileKind)] = &[
    ("video", FileKind::Video),
    ("videos", FileKind::Video),
    ("clip", FileKind::Video),
    ("movie", FileKind::Video),
    ("animation", FileKind::Video),
    ("audio", FileKind::Audio),
    ("audios", FileKind::Audio),
    ("speech", FileKind::Audio),
    ("voice", FileKind::Audio),
    ("sound", FileKind::Audio),
    ("music", FileKind::Audio),
    ("song", FileKind::Audio),
    ("wav", FileKind::Audio),
    ("mp3", FileKind::Audio),
    ("mesh", FileKind::Mesh),
    ("meshes", FileKind::Mesh),
    ("glb", FileKind::Mesh),
    ("gltf", FileKind::Mesh),
    ("3d", FileKind::Mesh),
    ("obj", FileKind::Mesh),
    ("image", FileKind::Image),
    ("images", FileKind::Image),
    ("img", FileKind::Image),
    ("photo", FileKind::Image),
    ("picture", FileKind::Image),
    ("mask", FileKind::Image),
    ("masks", FileKind::Image),
    ("frame", FileKind::Image),
    ("frames", FileKind::Image),
    ("thumbnail", FileKind::Image),
];

impl FileKind {
    /// Every kind.
    pub const ALL: [FileKind; 5] = [FileKind::Image, FileKind::Video, FileKind::Audio, FileKind::Mesh, FileKind::Other];

    /// `image`, `video`, `audio`, `mesh` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Video => "video",
            FileKind::Audio => "audio",
            FileKind::Mesh => "mesh",
            FileKind::Other => "file",
        }
    }

    /// The kind of a media type (`video/mp4`; parameters ignored), where it says one.
    pub fn from_content_type(content_type: &str) -> Option<FileKind> {
        let mime = canonical_type(content_type);
        if let Some((_, _, k)) = TYPES.iter().find(|(t, _, _)| *t == mime) {
            return Some(*k);
        }
        match mime.split('/').next().unwrap_or("") {
            "image" => Some(FileKind::Image),
            "video" => Some(FileKind::Video),
            "audio" => Some(FileKind::Audio),
            "model" => Some(FileKind::Mesh),
            _ => None,
        }
    }

    /// The kind a file name's or URL's extension says (`clip.MP4`, `https://x/y.glb?sig=1`).
    pub fn from_name(name: &str) -> Option<FileKind> {
        content_type_of_name(name).and_then(FileKind::from_content_type)
    }

    /// The kind the words of a field name or description name (`audio_file` → audio,
    /// `modelMesh` → mesh, `The generated video` → video); the first word that names one wins.
    pub fn from_words(text: &str) -> Option<FileKind> {
        words(text).find_map(|w| WORDS.iter().find(|(word, _)| *word == w).map(|(_, k)| *k))
    }

    /// The media type a file of this kind has when nothing else says (`image/png`, `video/mp4`,
    /// `audio/wav`, `model/gltf-binary`, `application/octet-stream`).
    pub fn content_type(self) -> &'static str {
        TYPES.iter().find(|(_, _, k)| *k == self).map_or("application/octet-stream", |(t, _, _)| t)
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A media type in its usual spelling: lowercase, no parameters, aliases resolved.
pub fn canonical_type(content_type: &str) -> String {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ALIASES.iter().find(|(alias, _)| *alias == mime).map_or(mime, |(_, t)| t.to_string())
}

/// The usual file extension of a media type (`image/jpeg` → `jpg`), if it is known.
pub fn extension_of_type(content_type: &str) -> Option<&'static str> {
    let mime = canonical_type(content_type);
    TYPES.iter().find(|(t, _, _)| *t == mime).map(|(_, e, _)| *e)
}

/// The media type a file name's or URL's extension says (`a.jpeg` → `image/jpeg`), if known.
pub fn content_type_of_name(name: &str) -> Option<&'static str> {
    let path = name.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    let (_, ext) = last.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    let ext = EXTENSION_ALIASES.iter().find(|(a, _)| *a == ext).map_or(ext.as_str(), |(_, e)| e);
    TYPES.iter().find(|(_, e, _)| *e == ext).map(|(t, _, _)| *t)
}

/// The media type a file's first bytes say it is (PNG, JPEG, GIF, WebP, AVIF, BMP, TIFF;
/// MP4, MOV, WebM; WAV, MP3, OGG, FLAC, M4A; binary glTF; PDF, ZIP), if they say one.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |p: &[u8]| bytes.starts_with(p);
    let at = |i: usize, p: &[u8]| bytes.len() >= i + p.len() && &bytes[i..i + p.len()] == p;
    Some(if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        "image/webp"
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        "audio/wav"
    } else if at(4, b"ftyp") {
        match bytes.get(8..12) {
            Some(b"avif" | b"avis") => "image/avif",
            Some(b"qt  ") => "video/quicktime",
            Some(b"M4A " | b"M4B ") => "audio/mp4",
            _ => "video/mp4",
        }
    } else if starts(b"\x1a\x45\xdf\xa3") {
        "video/webm"
    } else if starts(b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0) {
        "audio/mpeg"
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(b"fLaC") {
        "audio/flac"
    } else if starts(b"glTF") {
        "model/gltf-binary"
    } else if starts(b"BM") {
        "image/bmp"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "image/tiff"
    } else if starts(b"%PDF") {
        "application/pdf"
    } else if starts(b"PK\x03\x04") {
        "application/zip"
    } else {
        return None;
    })
}

/// The lowercase words of a name or a sentence: `audio_file`, `modelMesh`, `The 3D model`
/// → `audio file`, `model mesh`, `the 3d model`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && previous_lower && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            previous_lower = c.is_ascii_lowercase();
            word.push(c.to_ascii_lowercase());
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            previous_lower = false;
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out.into_iter()
}

/// Where a file sits in an endpoint's output, and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputFile {
    /// A JSON pointer with `*` for every item of an array (`/images/*`, `/video`).
    pub pointer: &'static str,
    /// What the file is.
    pub kind: FileKind,
}

/// What an endpoint answers, in a word or two: `image`, `images`, `video`, `audio`,
/// `mesh`, `files`, `video and audio`, `text`, or `json` (no file and no text), from the
/// kinds of its files (each with whether it is an array's items) and whether it has text.
pub fn output_kind_label(files: impl IntoIterator<Item = (FileKind, bool)>, has_text: bool) -> String {
    let mut kinds: Vec<(FileKind, bool)> = Vec::new();
    for (kind, many) in files {
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, m)) => *m = true,
            None => kinds.push((kind, many)),
        }
    }
    if kinds.is_empty() {
        return if has_text { "text".into() } else { "json".into() };
    }
    let label = |(k, many): &(FileKind, bool)| match (k, many) {
        (FileKind::Image, true) => "images".to_string(),
        (FileKind::Video, true) => "videos".to_string(),
        (FileKind::Mesh, true) => "meshes".to_string(),
        (FileKind::Other, true) => "files".to_string(),
        (k, _) => k.as_str().to_string(),
    };
    kinds.iter().map(label).collect::<Vec<_>>().join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_types_names_and_words() {
        for (input, kind) in [
            ("video/mp4", Some(FileKind::Video)),
            ("audio/x-wav", Some(FileKind::Audio)),
            ("Image/JPEG; q=1", Some(FileKind::Image)),
            ("model/gltf-binary", Some(FileKind::Mesh)),
            ("audio/x-unknown", Some(FileKind::Audio)),
            ("application/zip", Some(FileKind::Other)),
            ("text/x-unknown", None),
        ] {
            assert_eq!(FileKind::from_content_type(input), kind, "{input}");
        }
        for (input, kind) in [
            ("https://v3.fal.media/files/a/b.MP4?sig=x", Some(FileKind::Video)),
            ("out.jpeg", Some(FileKind::Image)),
            ("scene.glb", Some(FileKind::Mesh)),
            ("speech.wav", Some(FileKind::Audio)),
            ("noext", None),
            ("a.unknownext", None),
        ] {
            assert_eq!(FileKind::from_name(input), kind, "{input}");
        }
        for (input, kind) in [
            ("audio_file", Some(FileKind::Audio)),
            ("modelMesh", Some(FileKind::Mesh)),
            ("model_glb", Some(FileKind::Mesh)),
            ("The generated video.", Some(FileKind::Video)),
            ("images", Some(FileKind::Image)),
            ("imagery", None),
            ("file", None),
        ] {
            assert_eq!(FileKind::from_words(input), kind, "{input}");
        }
        assert_eq!(extension_of_type("image/jpg"), Some("jpg"));
        assert_eq!(content_type_of_name("x.jpeg"), Some("image/jpeg"));
        for k in FileKind::ALL {
            assert_eq!(FileKind::from_content_type(k.content_type()), Some(k), "{k}");
        }
    }

    #[test]
    fn first_bytes_say_what_a_file_is() {
        for (bytes, mime) in [
            (&b"\x89PNG\r\n\x1a\nrest"[..], Some("image/png")),
            (b"\xff\xd8\xff\xe0", Some("image/jpeg")),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"RIFF\0\0\0\0WAVEfmt ", Some("audio/wav")),
            (b"\0\0\0\x18ftypisom", Some("video/mp4")),
            (b"\0\0\0\x14ftypqt  ", Some("video/quicktime")),
            (b"\x1a\x45\xdf\xa3", Some("video/webm")),
            (b"ID3\x04", Some("audio/mpeg")),
            (b"glTF\x02\0\0\0", Some("model/gltf-binary")),
            (b"\0\0\0\0\0\0\0\0", None),
            (b"hello", None),
        ] {
            assert_eq!(sniff(bytes), mime, "{bytes:?}");
        }
    }

    #[test]
    fn output_kinds_in_a_word() {
        use FileKind::*;
        assert_eq!(output_kind_label([(Image, true)], false), "images");
        assert_eq!(output_kind_label([(Image, false)], true), "image");
        assert_eq!(output_kind_label([(Video, false), (Audio, false)], false), "video and audio");
        assert_eq!(output_kind_label([(Image, false), (Image, false)], false), "images");
        assert_eq!(output_kind_label([], true), "text");
        assert_eq!(output_kind_label([], false), "json");
    }
}
