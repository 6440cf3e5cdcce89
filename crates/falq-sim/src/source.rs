//! Input images: data URLs are decoded, http URLs on this machine (127.0.0.1, localhost,
//! the simulator itself) fetched with a tiny hyper client, and any other URL is never
//! fetched but stood in for by a pattern hashed from the URL.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;

use crate::render::Thumb;
use crate::util::hash_bytes;

/// The largest input image fetched or decoded.
const MAX_INPUT_BYTES: usize = 64 << 20;
/// How long a local fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an input image URL points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SourceKind<'a> {
    /// `data:[type][;base64],payload`: the payload's bytes, decoded.
    Data(Vec<u8>),
    /// A data URL whose payload cannot be decoded.
    BadData,
    /// `http://` on this machine: fetched.
    Local(&'a str),
    /// Anything else: never fetched.
    Remote,
}

/// Sorts a URL; `own_authority` is the simulator's `host:port` as the client addressed it.
pub(crate) fn classify<'a>(url: &'a str, own_authority: Option<&str>) -> SourceKind<'a> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, payload)) = rest.split_once(',') else {
            return SourceKind::BadData;
        };
        if meta.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
            let compact: String = payload.chars().filter(|c| !c.is_whitespace()).collect();
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            return engines.iter().find_map(|e| e.decode(&compact).ok()).map_or(SourceKind::BadData, SourceKind::Data);
        }
        return SourceKind::Data(payload.as_bytes().to_vec());
    }
    let Ok(uri) = url.parse::<Uri>() else {
        return SourceKind::Remote;
    };
    if uri.scheme_str() != Some("http") {
        return SourceKind::Remote;
    }
    let Some(authority) = uri.authority() else {
        return SourceKind::Remote;
    };
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let local =
        matches!(host, "127.0.0.1" | "localhost" | "::1") || own_authority.is_some_and(|own| own.eq_ignore_ascii_case(authority.as_str()));
    if local { SourceKind::Local(url) } else { SourceKind::Remote }
}

/// Why an input image could not be used; the job fails with this at its result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SourceError {
    /// `file_download_error` or `image_load_error`.
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

/// The thumbnail of the image at `url`.
pub(crate) async fn load(url: &str, own_authority: Option<&str>) -> Result<Thumb, SourceError> {
    let bytes = match classify(url, own_authority) {
        SourceKind::Remote => return Ok(Thumb::from_hash(hash_bytes(0, url.trim().as_bytes()))),
        SourceKind::BadData => {
            return Err(load_error("the data URL's base64 payload cannot be decoded".into()));
        }
        SourceKind::Data(bytes) => bytes,
        SourceKind::Local(url) => fetch(url).await?.to_vec(),
    };
    tokio::task::spawn_blocking(move || decode(&bytes)).await.unwrap_or_else(|e| Err(load_error(format!("decoding stopped: {e}"))))
}

fn decode(bytes: &[u8]) -> Result<Thumb, SourceError> {
    let image = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| load_error(e.to_string()))?
        .decode()
        .map_err(|e| load_error(format!("the image cannot be decoded: {e}")))?;
    Ok(Thumb::of(&image))
}

fn load_error(message: String) -> SourceError {
    SourceError { kind: "image_load_error", message: format!("Failed to load the image: {message}") }
}

fn download_error(url: &str, why: impl std::fmt::Display) -> SourceError {
    SourceError { kind: "file_download_error", message: format!("Failed to download the file from {url}: {why}") }
}

/// `GET url` over plain HTTP/1.1; only called for URLs on this machine.
async fn fetch(url: &str) -> Result<Bytes, SourceError> {
    let work = async {
        let uri: Uri = url.parse().map_err(|e| download_error(url, e))?;
        let authority = uri.authority().ok_or_else(|| download_error(url, "no host"))?.clone();
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let stream =
            tokio::net::TcpStream::connect((host, authority.port_u16().unwrap_or(80))).await.map_err(|e| download_error(url, e))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| download_error(url, e))?;
        tokio::spawn(connection);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request =
            Request::get(path).header(header::HOST, authority.as_str()).body(Empty::<Bytes>::new()).map_err(|e| download_error(url, e))?;
        let response = sender.send_request(request).await.map_err(|e| download_error(url, e))?;
        if !response.status().is_success() {
            return Err(download_error(url, format!("HTTP {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_INPUT_BYTES).collect().await.map_err(|e| download_error(url, e))?;
        Ok(body.to_bytes())
    };
    tokio::time::timeout(FETCH_TIMEOUT, work).await.unwrap_or_else(|_| Err(download_error(url, "timed out")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        assert_eq!(classify("data:image/png;base64,aGk=", None), SourceKind::Data(b"hi".to_vec()));
        assert_eq!(classify("data:image/png;base64,aGk", None), SourceKind::Data(b"hi".to_vec()));
        assert_eq!(classify("data:text/plain,hi", None), SourceKind::Data(b"hi".to_vec()));
        assert_eq!(classify("data:image/png;base64,!!", None), SourceKind::BadData);
        assert_eq!(classify("data:image/png;base64", None), SourceKind::BadData);
        assert_eq!(classify("http://127.0.0.1:9/a.png", None), SourceKind::Local("http://127.0.0.1:9/a.png"));
        assert_eq!(classify("http://localhost/a.png", None), SourceKind::Local("http://localhost/a.png"));
        assert_eq!(classify("http://[::1]:80/a.png", None), SourceKind::Local("http://[::1]:80/a.png"));
        assert_eq!(classify("http://sim.test:8080/m", Some("sim.test:8080")), SourceKind::Local("http://sim.test:8080/m"));
        assert_eq!(classify("http://sim.test:8081/m", Some("sim.test:8080")), SourceKind::Remote);
        assert_eq!(classify("https://fal.media/files/a.png", None), SourceKind::Remote);
        assert_eq!(classify("https://127.0.0.1/a.png", None), SourceKind::Remote);
        assert_eq!(classify("http://10.0.0.1/a.png", None), SourceKind::Remote);
        assert_eq!(classify("not a url", None), SourceKind::Remote);
    }

    #[tokio::test]
    async fn remote_urls_are_hashed_and_bad_data_fails() {
        let a = load("https://fal.media/files/a.png", None).await.unwrap();
        assert_eq!(a, load("https://fal.media/files/a.png", None).await.unwrap());
        assert_ne!(a, load("https://fal.media/files/b.png", None).await.unwrap());
        assert_eq!(load("data:image/png;base64,aGk=", None).await.unwrap_err().kind, "image_load_error");
        assert_eq!(load("http://127.0.0.1:1/none.png", None).await.unwrap_err().kind, "file_download_error");
    }
}
