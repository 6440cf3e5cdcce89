//! Inputs and outputs as files: local files become data URLs, data-URI results are
//! decoded, and every output URL is streamed to a directory at once (results expire).

use std::path::{Path, PathBuf};

use base64::Engine;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use falq_api::FileKind;

use crate::error::Error;
use crate::http::{Saved, Transport};

/// The media type a file's first bytes say it is (images, video, audio, meshes, ...).
pub use falq_api::sniff;

/// The extension a saved file gets: what its bytes are, else the media type the server
/// sent (unless a bare `application/octet-stream`), else what the output says of it (its
/// `content_type`, its `file_name`), else its URL's; `bin` when nothing says.
pub fn extension_for(sniffed: Option<&str>, header: Option<&str>, file: &OutputFile) -> &'static str {
    let told = |t: &str| falq_api::canonical_type(t) != "application/octet-stream";
    sniffed
        .and_then(falq_api::extension_of_type)
        .or_else(|| header.filter(|t| told(t)).and_then(falq_api::extension_of_type))
        .or_else(|| file.content_type.as_deref().filter(|t| told(t)).and_then(falq_api::extension_of_type))
        .or_else(|| file.file_name.as_deref().and_then(falq_api::content_type_of_name).and_then(falq_api::extension_of_type))
        .or_else(|| falq_api::content_type_of_name(&file.url).and_then(falq_api::extension_of_type))
        .unwrap_or("bin")
}

/// The media type of a saved file, as [`extension_for`] decides it.
fn media_type_for(sniffed: Option<&str>, header: Option<&str>, file: &OutputFile) -> String {
    let told = |t: &&str| falq_api::canonical_type(t) != "application/octet-stream";
    sniffed
        .map(str::to_string)
        .or_else(|| header.filter(told).map(falq_api::canonical_type))
        .or_else(|| file.content_type.as_deref().filter(told).map(falq_api::canonical_type))
        .or_else(|| file.file_name.as_deref().and_then(falq_api::content_type_of_name).map(str::to_string))
        .or_else(|| falq_api::content_type_of_name(&file.url).map(str::to_string))
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// A local file as a `data:` URL, its type sniffed from its bytes.
pub fn data_url_from_path(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let mime = sniff(&bytes).unwrap_or("application/octet-stream");
    Ok(format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes)))
}

/// A local file an input sends as a data URL, in place of a placeholder string in the
/// input: it is read and base64-encoded once, straight into the request body (a 200 MB
/// image costs its encoded size once, not the file, a string and a body besides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// The string standing for it in the input (see [`LocalFile::new`]).
    pub placeholder: String,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

impl LocalFile {
    /// The `n`-th local file of an input, checked to be a readable file now.
    pub fn new(n: usize, path: &Path) -> Result<LocalFile, Error> {
        let io = |source| Error::Io { path: path.display().to_string(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(Error::Io { path: path.display().to_string(), source: std::io::Error::other("not a file") });
        }
        // Control characters keep it from being any value a user sends.
        Ok(LocalFile { placeholder: format!("\u{1}falq-local-file:{n}\u{1}"), path: path.to_path_buf(), size: meta.len() })
    }
}

/// The JSON body of `input` with each local file's placeholder replaced by the file as a
/// `data:` URL (its type sniffed from its first bytes), encoded in chunks into one buffer
/// of the body's exact size.
pub fn body_with_files(input: &Value, files: &[LocalFile]) -> Result<bytes::Bytes, Error> {
    let text = serde_json::to_vec(input).map_err(|e| Error::Io { path: "the input".into(), source: std::io::Error::other(e) })?;
    if files.is_empty() {
        return Ok(bytes::Bytes::from(text));
    }
    splice_files(&text, files)
}

/// A JSON body (`text`, as a generated operation serialized it) with each local file's
/// placeholder replaced by the file as a `data:` URL, encoded in chunks into one buffer of
/// the body's exact size.
pub fn splice_files(text: &[u8], files: &[LocalFile]) -> Result<bytes::Bytes, Error> {
    use std::io::Read;
    // Each placeholder as it appears in the JSON text, quotes included.
    let mut spots: Vec<(usize, usize, &LocalFile)> = Vec::new();
    for f in files {
        let quoted = serde_json::to_string(&f.placeholder).unwrap_or_default();
        let quoted = quoted.as_bytes();
        let mut from = 0;
        while let Some(i) = text[from..].windows(quoted.len()).position(|w| w == quoted) {
            spots.push((from + i, quoted.len(), f));
            from += i + quoted.len();
        }
    }
    spots.sort_by_key(|(at, _, _)| *at);
    let encoded = |n: u64| n.div_ceil(3) * 4;
    let size = text.len() as u64 + spots.iter().map(|(_, len, f)| encoded(f.size) + 48 - *len as u64).sum::<u64>();
    let mut body: Vec<u8> = Vec::with_capacity(usize::try_from(size).unwrap_or(usize::MAX));
    let mut at = 0;
    for (start, len, f) in spots {
        body.extend_from_slice(&text[at..start]);
        let io = |source| Error::Io { path: f.path.display().to_string(), source };
        let mut file = std::fs::File::open(&f.path).map_err(io)?;
        let mut head = [0u8; 16];
        let n = file.read(&mut head).map_err(io)?;
        let mime = sniff(&head[..n]).unwrap_or("application/octet-stream");
        body.extend_from_slice(format!("\"data:{mime};base64,").as_bytes());
        // Chunks of a multiple of 3 bytes encode without padding between them.
        let mut chunk = vec![0u8; 3 << 20];
        chunk[..n].copy_from_slice(&head[..n]);
        let mut filled = n;
        let mut out = String::new();
        loop {
            while filled < chunk.len() {
                let got = file.read(&mut chunk[filled..]).map_err(io)?;
                if got == 0 {
                    break;
                }
                filled += got;
            }
            if filled == 0 {
                break;
            }
            out.clear();
            base64::engine::general_purpose::STANDARD.encode_string(&chunk[..filled], &mut out);
            body.extend_from_slice(out.as_bytes());
            if filled < chunk.len() {
                break;
            }
            filled = 0;
        }
        body.push(b'"');
        at = start + len;
    }
    body.extend_from_slice(&text[at..]);
    Ok(bytes::Bytes::from(body))
}

/// Decodes a `data:[type][;base64],payload` URI into its media type and bytes.
pub fn decode_data_uri(uri: &str) -> Option<(String, Vec<u8>)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let is_b64 = meta.ends_with(";base64");
    let mime = meta.trim_end_matches(";base64").to_string();
    let mime = if mime.is_empty() { "text/plain".to_string() } else { mime };
    let bytes = if is_b64 { base64::engine::general_purpose::STANDARD.decode(payload.trim()).ok()? } else { payload.as_bytes().to_vec() };
    Some((mime, bytes))
}

/// An output file found in a result: its URL and what the result says of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputFile {
    /// The URL (`https://...` or `data:`).
    pub url: String,
    /// The result's `content_type`, if any.
    pub content_type: Option<String>,
    /// The result's `file_name`, if any.
    pub file_name: Option<String>,
    /// The result's `file_size`, if any: a longer download is refused.
    pub file_size: Option<u64>,
    /// What the endpoint's catalogue says the file at this place is, if it says.
    pub kind: Option<FileKind>,
}

impl OutputFile {
    /// The media type the file is announced as: its `content_type`, else its name's or its
    /// URL's extension.
    fn announced(&self) -> Option<String> {
        self.content_type
            .as_deref()
            .map(falq_api::canonical_type)
            .filter(|t| t != "application/octet-stream")
            .or_else(|| self.file_name.as_deref().and_then(falq_api::content_type_of_name).map(str::to_string))
            .or_else(|| falq_api::content_type_of_name(&self.url).map(str::to_string))
    }
}

/// Every file object (an object with a string `url`) in a result, in document order:
/// `images[]`, `video`, `audio`, ...; for an endpoint of the catalogue, each with the kind
/// its output schema gives the place it sits in (`EndpointInfo::output_files`).
pub fn output_files(endpoint_id: &str, result: &Value) -> Vec<OutputFile> {
    let slots = falq_api::endpoint(endpoint_id).map_or(&[][..], |e| e.output_files);
    fn walk(v: &Value, at: &mut Vec<String>, slots: &[falq_api::OutputFile], out: &mut Vec<OutputFile>) {
        match v {
            Value::Object(m) => {
                if let Some(url) = m.get("url").and_then(Value::as_str) {
                    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                    let kind = slots.iter().find(|slot| matches_pointer(slot.pointer, at)).map(|slot| slot.kind);
                    out.push(OutputFile {
                        url: url.to_string(),
                        content_type: s("content_type"),
                        file_name: s("file_name"),
                        file_size: m.get("file_size").and_then(Value::as_u64),
                        kind,
                    });
                } else {
                    for (k, v) in m {
                        at.push(k.clone());
                        walk(v, at, slots, out);
                        at.pop();
                    }
                }
            }
            Value::Array(a) => {
                for v in a {
                    at.push("*".into());
                    walk(v, at, slots, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(result, &mut Vec::new(), slots, &mut out);
    out
}

/// Whether a catalogue pointer (`/images/*`) names the place `at` (`images`, `*`).
fn matches_pointer(pointer: &str, at: &[String]) -> bool {
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    parts.len() == at.len() && parts.iter().zip(at).all(|(p, a)| p == a)
}

/// Media types whose first bytes [`sniff`] knows: a file announced as one of them must
/// start as one.
fn sniffable(content_type: &str) -> bool {
    const KNOWN: &[&str] = &[
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/tiff",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "audio/wav",
        "audio/mpeg",
        "audio/ogg",
        "audio/flac",
        "audio/mp4",
        "model/gltf-binary",
        "application/pdf",
        "application/zip",
    ];
    KNOWN.contains(&falq_api::canonical_type(content_type).as_str())
}

/// Whether a file's first bytes are what it is announced as (the relay's `Content-Type`,
/// the output's `content_type` or name, its URL) and what the endpoint's output says it is
/// (an image, a video, ...): `Err` says what is wrong. A kind the bytes do not say is
/// accepted unless the announced type is one whose bytes are known.
pub fn check_first_bytes(first: &[u8], header: Option<&str>, file: &OutputFile) -> Result<(), String> {
    error_page(first, header, file)?;
    let sniffed = sniff(first);
    let announced = header.map(falq_api::canonical_type).filter(|t| t != "application/octet-stream").or_else(|| file.announced());
    let expected = announced.as_deref().and_then(FileKind::from_content_type).or(file.kind);
    match (sniffed, expected) {
        (Some(got), Some(want)) => {
            let got_kind = FileKind::from_content_type(got).unwrap_or(FileKind::Other);
            if got_kind == want || want == FileKind::Other {
                Ok(())
            } else {
                Err(format!("announced as {} ({}) but its first bytes are {got}", want, announced.as_deref().unwrap_or("by the output")))
            }
        }
        (None, _) => match announced.as_deref().filter(|t| sniffable(t)) {
            Some(t) => Err(format!("announced as {t} but its first bytes are not ({})", hex_start(first))),
            None if matches!(file.kind, Some(k) if k != FileKind::Other) && announced.is_none() => Err(format!(
                "the output's {} is not one by its first bytes ({})",
                file.kind.map_or("file", FileKind::as_str),
                hex_start(first)
            )),
            None => Ok(()),
        },
        (Some(_), None) => Ok(()),
    }
}

/// An answer that is a page or a message, not the file the output names: an HTML page for
/// any media file, or JSON or text for an image, a video or a sound, by the relay's
/// `Content-Type` or, whatever it says, by the first bytes. (A mesh may be JSON or XML, an
/// SVG image is XML: those are left to the other checks.)
fn error_page(first: &[u8], header: Option<&str>, file: &OutputFile) -> Result<(), String> {
    let announced = file.announced();
    let Some(want) = announced.as_deref().and_then(FileKind::from_content_type).or(file.kind).filter(|k| *k != FileKind::Other) else {
        return Ok(());
    };
    let no_text_form =
        matches!(want, FileKind::Image | FileKind::Video | FileKind::Audio) && !announced.as_deref().is_some_and(|t| t.contains("svg"));
    let header = header.map(falq_api::canonical_type);
    if let Some(h) = header.as_deref() {
        let page = h == "text/html" || h == "application/xhtml+xml";
        let text = h.starts_with("text/") || h == "application/json" || h.ends_with("+json") || h == "application/xml";
        if page || (no_text_form && text) {
            return Err(format!("the relay answered {h} for the output's {want}: an error page or message, not the file"));
        }
    }
    let start = first.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &first[i..]);
    let start = start.strip_prefix(b"\xef\xbb\xbf").unwrap_or(start);
    if no_text_form && sniff(first).is_none() && matches!(start.first(), Some(b'<' | b'{' | b'[')) {
        return Err(format!("the output's {want} starts as text ({}): an error page or message, not the file", snippet_of(start)));
    }
    Ok(())
}

fn snippet_of(text: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&text[..text.len().min(16)]).into_owned();
    shown.replace(['\n', '\r'], " ")
}

fn hex_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "no bytes at all".into();
    }
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    shown.join(" ")
}

/// A file saved by [`download_outputs`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SavedFile {
    /// Where it was saved.
    pub path: PathBuf,
    /// Its media type.
    pub content_type: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Where it came from (data URIs shown as `data:`).
    pub source: String,
}

/// Streams every output file of `result` into `dir` as `{stem}-{n}.{ext}`, at most
/// `HttpPolicy::max_downloads` at once (a result of thousands of files opens that many
/// files and connections, not thousands); media URLs are fetched without credentials,
/// data URIs decoded. A partial file is never left under the final name.
pub async fn download_outputs(
    transport: &Transport,
    endpoint_id: &str,
    result: &Value,
    dir: &Path,
    stem: &str,
) -> Result<Vec<SavedFile>, Error> {
    tokio::fs::create_dir_all(dir).await.map_err(|source| Error::Io { path: dir.display().to_string(), source })?;
    let files = output_files(endpoint_id, result);
    let parallel = transport.config.http.max_downloads.max(1);
    let jobs = files.iter().enumerate().map(|(i, f)| save_one(transport, f, dir, stem, i));
    let mut saved = futures_util::stream::iter(jobs).buffered(parallel);
    let mut out = Vec::with_capacity(files.len());
    while let Some(file) = saved.next().await {
        out.push(file?);
    }
    Ok(out)
}

async fn save_one(transport: &Transport, file: &OutputFile, dir: &Path, stem: &str, index: usize) -> Result<SavedFile, Error> {
    let io = |path: &Path| {
        let shown = path.display().to_string();
        move |source| Error::Io { path: shown, source }
    };
    if let Some((mime, bytes)) = decode_data_uri(&file.url) {
        let declared = Some(mime.as_str()).filter(|m| *m != "text/plain");
        check_first_bytes(&bytes[..bytes.len().min(16)], declared, file)
            .map_err(|why| Error::Download { url: "data:".into(), message: format!("refused: {why}") })?;
        let sniffed = sniff(&bytes);
        let mime_given = Some(mime.as_str()).filter(|m| *m != "text/plain" || sniffed.is_none());
        let ext = extension_for(sniffed, mime_given, file);
        let mime = media_type_for(sniffed, mime_given, file);
        let path = dir.join(format!("{stem}-{index}.{ext}"));
        let part = PartFile(path.with_extension("part"));
        tokio::fs::write(&part.0, &bytes).await.map_err(io(&part.0))?;
        tokio::fs::rename(&part.0, &path).await.map_err(io(&path))?;
        return Ok(SavedFile { path, content_type: mime, bytes: bytes.len() as u64, source: "data:".into() });
    }
    let url = reqwest::Url::parse(&file.url).map_err(|e| Error::Download { url: file.url.clone(), message: format!("not a URL: {e}") })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Download { url: file.url.clone(), message: "only http(s) and data: URLs are downloaded".into() });
    }
    let part = PartFile(dir.join(format!("{stem}-{index}.part")));
    let tmp = &part.0;
    // A download cut mid-body (a reset, a proxy's hiccup) starts again from the first byte,
    // within the call's one budget of attempts; the part file is rewritten each time.
    let (header_type, first, total) =
        transport.download(&url, |resp, _| fetch_into(resp, tmp, file, transport.config.http.max_download_bytes)).await?;
    let sniffed = sniff(&first);
    let mime = media_type_for(sniffed, header_type.as_deref(), file);
    let path = dir.join(format!("{stem}-{index}.{}", extension_for(sniffed, header_type.as_deref(), file)));
    tokio::fs::rename(tmp, &path).await.map_err(io(&path))?;
    Ok(SavedFile { path, content_type: mime, bytes: total, source: file.url.clone() })
}

/// A download's part file, removed however the download ends: an error, or its future
/// dropped (a deadline, a cancelled run). Once renamed into place there is nothing left to
/// remove.
struct PartFile(PathBuf);

impl Drop for PartFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One attempt at a media URL into `tmp`, checked as it arrives: its first bytes must be
/// what it is announced as ([`check_first_bytes`]), and it may not run past its announced
/// `file_size`, its `Content-Length` or `HttpPolicy::max_download_bytes`. Answers its
/// `Content-Type`, its first bytes (to name it) and its length.
async fn fetch_into(resp: reqwest::Response, tmp: &Path, file: &OutputFile, cap: u64) -> Saved<(Option<String>, Vec<u8>, u64)> {
    match fetch_checked(resp, tmp, file, cap).await {
        Ok(got) => Saved::Done(Ok(got)),
        Err(Fetch::CutShort(why)) => Saved::CutShort(why),
        Err(Fetch::Failed(e)) => Saved::Done(Err(e)),
    }
}

/// Why a download attempt failed.
enum Fetch {
    /// Broke off mid-body, or refused as it arrived: worth asking again.
    CutShort(String),
    /// Anything else: the caller's error.
    Failed(Error),
}

async fn fetch_checked(resp: reqwest::Response, tmp: &Path, file: &OutputFile, cap: u64) -> Result<(Option<String>, Vec<u8>, u64), Fetch> {
    let io = |source| Fetch::Failed(Error::Io { path: tmp.display().to_string(), source });
    let header_type = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (limit, limit_says) = [
        (resp.content_length(), "its Content-Length"),
        (file.file_size, "the output's file_size"),
        (Some(cap), "the download cap (HttpPolicy::max_download_bytes)"),
    ]
    .into_iter()
    .filter_map(|(n, what)| n.map(|n| (n, what)))
    .min_by_key(|(n, _)| *n)
    .unwrap_or((cap, "the download cap"));
    let refuse = |why: String| Fetch::CutShort(format!("refused: {why}"));
    // falq asks for no compression: bytes sent in a coding are not the file (and a file of
    // text, whose first bytes say nothing, would be saved as them).
    let codings = crate::http::codings(resp.headers());
    if !codings.is_empty() {
        let coding = codings.join(", ");
        return Err(refuse(format!("sent compressed as `{coding}` (Content-Encoding), which falq did not ask for")));
    }
    let mut out = tokio::fs::File::create(tmp).await.map_err(io)?;
    let mut stream = resp.bytes_stream();
    let mut first: Vec<u8> = Vec::new();
    let mut checked = false;
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Fetch::CutShort(crate::http::error_chain(&e)))?;
        if first.len() < 16 {
            first.extend_from_slice(&chunk[..chunk.len().min(16 - first.len())]);
        }
        if !checked && first.len() >= 16 {
            check_first_bytes(&first, header_type.as_deref(), file).map_err(refuse)?;
            checked = true;
        }
        total += chunk.len() as u64;
        if total > limit {
            return Err(refuse(format!("longer than {limit} bytes, {limit_says}")));
        }
        out.write_all(&chunk).await.map_err(io)?;
    }
    if !checked {
        check_first_bytes(&first, header_type.as_deref(), file).map_err(refuse)?;
    }
    out.flush().await.map_err(io)?;
    Ok((header_type, first, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sniffing_and_extensions() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"hello"), None);
        let file = |url: &str, content_type: Option<&str>, file_name: Option<&str>| OutputFile {
            url: url.into(),
            content_type: content_type.map(str::to_string),
            file_name: file_name.map(str::to_string),
            ..OutputFile::default()
        };
        let plain = file("https://m/x", None, None);
        for (sniffed, header, f, ext) in [
            (Some("image/jpeg"), Some("image/png"), &plain, "jpg"),
            (None, Some("image/png; charset=binary"), &plain, "png"),
            (None, Some("application/octet-stream"), &file("https://m/x", Some("video/mp4"), None), "mp4"),
            (None, None, &file("https://m/x", None, Some("speech.wav")), "wav"),
            (None, Some("application/octet-stream"), &file("https://m/scene.glb?sig=1", None, None), "glb"),
            (Some("model/gltf-binary"), Some("application/octet-stream"), &plain, "glb"),
            (None, Some("text/vtt"), &plain, "vtt"),
            (None, Some("application/x-unknown"), &plain, "bin"),
            (None, None, &plain, "bin"),
        ] {
            assert_eq!(extension_for(sniffed, header, f), ext, "{sniffed:?} {header:?} {f:?}");
        }
    }

    #[test]
    fn a_file_is_kept_only_when_its_first_bytes_are_what_it_claims() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let mp4 = b"\0\0\0\x18ftypisom\0\0\0\0";
        let zeros = [0u8; 16];
        let file = |url: &str, content_type: Option<&str>, kind: Option<FileKind>| OutputFile {
            url: url.into(),
            content_type: content_type.map(str::to_string),
            kind,
            ..OutputFile::default()
        };
        let plain = file("https://m/x", None, None);
        for (first, header, f, ok) in [
            (&png[..], Some("image/png"), &plain, true),
            (&zeros[..], Some("image/png"), &plain, false),
            (&[][..], Some("image/png"), &plain, false),
            (&mp4[..], Some("image/png"), &plain, false),
            (&png[..], Some("application/octet-stream"), &file("https://m/v.mp4", None, None), false),
            (&mp4[..], None, &file("https://m/x", Some("video/mp4"), None), true),
            (&zeros[..], None, &file("https://m/x", None, Some(FileKind::Video)), false),
            (&png[..], None, &file("https://m/x", None, Some(FileKind::Video)), false),
            (&mp4[..], None, &file("https://m/x", None, Some(FileKind::Video)), true),
            (&zeros[..], Some("application/octet-stream"), &file("https://m/a.bin", None, Some(FileKind::Other)), true),
            (&zeros[..], Some("image/x-unknown-format"), &plain, true),
            (b"hello", Some("text/plain"), &plain, true),
        ] {
            assert_eq!(check_first_bytes(first, header, f).is_ok(), ok, "{first:?} as {header:?}, {f:?}");
        }
        let why = check_first_bytes(&zeros, Some("image/png"), &plain).unwrap_err();
        assert!(why.contains("announced as image/png") && why.contains("00 00"), "{why}");
    }

    #[test]
    fn an_error_page_is_never_taken_for_the_output_file() {
        let file = |url: &str, content_type: Option<&str>, kind: Option<FileKind>| OutputFile {
            url: url.into(),
            content_type: content_type.map(str::to_string),
            kind,
            ..OutputFile::default()
        };
        let image = file("https://m/x", Some("image/png"), Some(FileKind::Image));
        let video = file("https://m/x", None, Some(FileKind::Video));
        let mesh = file("https://m/x.gltf", None, Some(FileKind::Mesh));
        let svg = file("https://m/x.svg", Some("image/svg+xml"), Some(FileKind::Image));
        let text = file("https://m/notes.txt", Some("text/plain"), Some(FileKind::Other));
        let html = b"<html><body>502 Bad Gateway</body></html>";
        let json = b"{\"detail\": \"Not Found\"}";
        for (first, header, f, ok) in [
            // By the relay's Content-Type: a page for any media file; JSON or text for a kind
            // that has no text form.
            (&html[..], Some("text/html; charset=utf-8"), &image, false),
            (&html[..], Some("text/html"), &mesh, false),
            (&json[..], Some("application/json"), &video, false),
            (&json[..], Some("application/problem+json"), &image, false),
            (b"Service Unavailable", Some("text/plain"), &video, false),
            (&json[..], Some("application/json"), &mesh, true),
            // By the first bytes, whatever the header says (or when it says nothing).
            (b"\n  <!DOCTYPE html><html>", None, &video, false),
            (b"\xef\xbb\xbf{\"error\": 1}", Some("binary/octet-stream"), &file("https://m/a", None, Some(FileKind::Audio)), false),
            (&json[..], Some("application/octet-stream"), &image, false),
            // What is text by nature stays accepted.
            (b"<svg xmlns='http://www.w3.org/2000/svg'>", Some("image/svg+xml"), &svg, true),
            (b"the transcript", Some("text/plain"), &text, true),
            (b"<html>a report</html>", Some("text/html"), &file("https://m/r.html", Some("text/html"), None), true),
        ] {
            assert_eq!(check_first_bytes(first, header, f).is_ok(), ok, "{:?} as {header:?}, {f:?}", String::from_utf8_lossy(first));
        }
        let why = check_first_bytes(html, Some("text/html"), &image).unwrap_err();
        assert_eq!(why, "the relay answered text/html for the output's image: an error page or message, not the file");
    }

    #[test]
    fn local_files_are_encoded_once_into_the_body_as_data_urls() {
        let dir = std::env::temp_dir().join(format!("falq-local-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Sizes around the chunk and around multiples of 3 (padding only at the end).
        for size in [0usize, 1, 2, 3, 4, (3 << 20) - 1, 3 << 20, (3 << 20) + 1, (6 << 20) + 2] {
            let bytes: Vec<u8> = b"\x89PNG\r\n\x1a\n".iter().copied().chain((0..size).map(|i| (i * 7 % 251) as u8)).take(size).collect();
            let p = dir.join(format!("in-{size}.png"));
            std::fs::write(&p, &bytes).unwrap();
            let a = LocalFile::new(0, &p).unwrap();
            let b = LocalFile::new(1, &p).unwrap();
            let input = json!({"image_url": a.placeholder, "more": [b.placeholder, "kept"], "prompt": "a \"cat\""});
            let body = body_with_files(&input, &[a, b]).unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{size}: {e}"));
            for url in [&v["image_url"], &v["more"][0]] {
                let (_, decoded) = decode_data_uri(url.as_str().unwrap()).unwrap();
                assert_eq!(decoded, bytes, "{size}");
            }
            assert_eq!((v["more"][1].as_str(), v["prompt"].as_str()), (Some("kept"), Some("a \"cat\"")));
        }
        assert!(matches!(LocalFile::new(0, &dir.join("missing.png")), Err(Error::Io { .. })));
        assert!(matches!(LocalFile::new(0, &dir), Err(Error::Io { .. })), "a directory is no file");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn data_uris_round_trip() {
        let dir = std::env::temp_dir().join(format!("falq-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("in.bin");
        std::fs::write(&p, b"\x89PNG\r\n\x1a\nxyz").unwrap();
        let url = data_url_from_path(&p).unwrap();
        assert!(url.starts_with("data:image/png;base64,"), "{url}");
        assert_eq!(decode_data_uri(&url), Some(("image/png".to_string(), b"\x89PNG\r\n\x1a\nxyz".to_vec())));
        assert_eq!(decode_data_uri("data:,hi"), Some(("text/plain".into(), b"hi".to_vec())));
        assert_eq!(decode_data_uri("https://x"), None);
        assert!(matches!(data_url_from_path(&dir.join("missing.png")), Err(Error::Io { .. })));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn finds_every_output_file() {
        let r = json!({"images": [{"url": "https://m/a.png", "content_type": "image/png"}, {"url": "data:image/jpeg;base64,AA=="}], "video": {"url": "https://m/v.mp4", "file_name": "v.mp4", "file_size": 9}, "seed": 1});
        let urls: Vec<String> = output_files("someone/untyped", &r).into_iter().map(|f| f.url).collect();
        assert_eq!(urls, vec!["https://m/a.png", "data:image/jpeg;base64,AA==", "https://m/v.mp4"]);
        // An endpoint of the catalogue: each file with the kind its place has.
        let files = output_files("fal-ai/veo3", &r);
        assert_eq!(files.iter().map(|f| f.kind).collect::<Vec<_>>(), [None, None, Some(FileKind::Video)]);
        assert_eq!(files[2].file_size, Some(9));
    }
}
