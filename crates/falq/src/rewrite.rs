//! URL rewrite and credential confinement: every URL a server returns is mapped onto
//! the configured base, so the key only ever goes to the base's origin.

use reqwest::Url;

use crate::error::Error;

/// Whether two URLs share scheme, host and port (an origin): the generated client's rule.
pub use falq_api::same_origin;

/// Maps a URL the server returned onto the base. A URL on the base's origin is kept;
/// any other (`https://queue.fal.run/fal-ai/flux-1/requests/ID`) becomes the base's
/// origin and path prefix followed by the returned path and query
/// (`https://relay.example/api/fal-ai/flux-1/requests/ID`). `None` when the text is not
/// an absolute http(s) URL.
pub fn onto_base(base: &Url, returned: &str) -> Option<Url> {
    let url = Url::parse(returned.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    if same_origin(&url, base) {
        return Some(url);
    }
    let mut mapped = base.clone();
    let prefix = base.path().trim_end_matches('/');
    let path = url.path();
    // A relay may already answer with its own prefix on a foreign host: keep one copy.
    let joined = if !prefix.is_empty() && (path == prefix || path.starts_with(&format!("{prefix}/"))) {
        path.to_string()
    } else {
        format!("{prefix}{path}")
    };
    mapped.set_path(&joined);
    mapped.set_query(url.query());
    Some(mapped)
}

/// `{base}/{app_id}/requests/{request_id}{suffix}`: the app-id rule, for a URL the
/// server left out or returned unusable.
pub fn queue_url(base: &Url, app_id: &str, request_id: &str, suffix: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{app_id}/requests/{request_id}{suffix}"));
    url
}

/// A queue URL as the spec's operations name it: `{prefix}/{owner}/{app}/requests/{id}`
/// and a suffix (`/status`, `/cancel`, none for the result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePath {
    /// Scheme, host, port and any path before `{owner}`: the generated client's base URL
    /// for this call (`workflows` of a three-segment app id stays in it).
    pub prefix: String,
    /// The owner segment (`fal-ai`).
    pub owner: String,
    /// The app segment (`flux-1`).
    pub app: String,
    /// The request id.
    pub request_id: String,
}

impl QueuePath {
    /// The queue path the app-id rule names for `request_id` of `app_id` on `base`
    /// (`{base}/{app_id}/requests/{id}`): what [`queue_path`] reads from [`queue_url`]'s
    /// URL, without writing and parsing it. `None` for an app id of fewer than two segments.
    pub fn of_app(base: &Url, app_id: &str, request_id: &str) -> Option<QueuePath> {
        let (head, app) = app_id.rsplit_once('/')?;
        let (lead, owner) = head.rsplit_once('/').map_or(("", head), |(lead, owner)| (lead, owner));
        let base = base.as_str().trim_end_matches('/');
        Some(QueuePath {
            prefix: if lead.is_empty() { base.to_string() } else { format!("{base}/{lead}") },
            owner: owner.to_string(),
            app: app.to_string(),
            request_id: request_id.to_string(),
        })
    }

    /// The URL of the call with `suffix` at this path, as text.
    pub fn url_text(&self, suffix: &str) -> String {
        format!("{}/{}/{}/requests/{}{suffix}", self.prefix, self.owner, self.app, self.request_id)
    }

    /// Whether `url` is [`url_text`](Self::url_text)`(suffix)`, read piece by piece: a
    /// submit's answer names three URLs, and writing each out to compare it cost more than
    /// anything else in taking the answer.
    pub fn is_url(&self, url: &str, suffix: &str) -> bool {
        let pieces = [self.prefix.as_str(), "/", &self.owner, "/", &self.app, "/requests/", &self.request_id];
        pieces.iter().try_fold(url, |rest, piece| rest.strip_prefix(piece)).is_some_and(|rest| rest == suffix)
    }
}

/// Reads `url` as a queue URL ending in `/requests/{id}{suffix}` after at least two
/// segments; `None` when the spec's operations cannot say it (no such shape, a query, an
/// escaped segment the operation would escape again): that call goes to the URL as it is.
pub fn queue_path(url: &Url, suffix: &str) -> Option<QueuePath> {
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return None;
    }
    let segments: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
    let tail: Vec<&str> = suffix.split('/').filter(|s| !s.is_empty()).collect();
    let head = segments.len().checked_sub(tail.len() + 4)?;
    let [owner, app, requests, id] = segments[head..head + 4] else { return None };
    let named = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('%');
    if requests != "requests" || segments[head + 4..] != tail[..] || ![owner, app, id].into_iter().all(named) {
        return None;
    }
    let mut prefix = url.clone();
    prefix.set_path(&segments[..head].join("/"));
    Some(QueuePath {
        prefix: prefix.as_str().trim_end_matches('/').to_string(),
        owner: owner.to_string(),
        app: app.to_string(),
        request_id: id.to_string(),
    })
}

/// `{base}/{endpoint_id}`, the submit URL.
pub fn endpoint_url(base: &Url, endpoint_id: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{endpoint_id}"));
    url
}

/// A request id must be one path segment of safe characters: no `/`, `..`, `?`, `%`.
pub fn validate_request_id(id: &str) -> Result<(), Error> {
    let bad = |why| Err(Error::InvalidId { what: "request id", value: id.to_string(), why });
    if id.is_empty() || id.len() > 200 {
        return bad("it must have 1 to 200 characters");
    }
    if id == "." || id == ".." {
        return bad("it cannot be a dot segment");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')) {
        return bad("only letters, digits, '-', '_', '.' and '~' are allowed");
    }
    Ok(())
}

/// An endpoint id is `owner/app[/path...]`, each segment of safe characters.
pub fn validate_endpoint_id(id: &str) -> Result<(), Error> {
    let bad = |why| Err(Error::InvalidId { what: "endpoint id", value: id.to_string(), why });
    let segments: Vec<&str> = id.split('/').collect();
    if segments.len() < 2 {
        return bad("it must look like owner/app[/path], e.g. fal-ai/flux-1/dev");
    }
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return bad("it has an empty or dot segment");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) {
        return bad("only letters, digits, '-', '_', '.' and '/' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(base: &str, returned: &str, expected: Option<&str>) {
        let base = crate::config::parse_base_url(base).unwrap();
        assert_eq!(onto_base(&base, returned).map(|u| u.to_string()), expected.map(str::to_string), "{base} + {returned}");
    }

    #[test]
    fn the_app_id_rule_s_path_is_what_its_url_reads_as() {
        let bases = ["http://127.0.0.1:8080", "https://relay.example/", "https://relay.example/api/v1/", "http://h:1/fal"];
        let apps = ["fal-ai/flux-pro", "fal-ai/flux-1", "workflows/someone/my-flow", "comfy/a/b", "o/a"];
        for base in bases {
            let base = crate::config::parse_base_url(base).unwrap();
            for app in apps {
                let named = QueuePath::of_app(&base, app, "id-1.x~y").expect("two segments or more");
                for suffix in ["/status", "", "/cancel"] {
                    let url = queue_url(&base, app, "id-1.x~y", suffix);
                    assert_eq!(named.url_text(suffix), url.as_str(), "{base} {app} {suffix}");
                    assert!(named.is_url(url.as_str(), suffix), "{base} {app} {suffix}");
                    assert_eq!(Some(&named), queue_path(&url, suffix).as_ref(), "{base} {app} {suffix}");
                }
            }
        }
        assert_eq!(QueuePath::of_app(&crate::config::parse_base_url("http://h").unwrap(), "one", "id"), None);
    }

    /// `is_url` says what comparing with `url_text` says, for the URL itself and for every
    /// URL one edit away from it (a piece cut short, one more character, another suffix).
    #[test]
    fn a_url_is_told_piece_by_piece_as_its_text_tells_it() {
        let base = crate::config::parse_base_url("https://relay.example/api/").unwrap();
        for app in ["fal-ai/flux-pro", "workflows/someone/my-flow"] {
            let path = QueuePath::of_app(&base, app, "id-1").unwrap();
            for suffix in ["/status", "", "/cancel"] {
                let text = path.url_text(suffix);
                let mut near = vec![text.clone(), format!("{text}/"), format!("{text}x"), format!(" {text}"), String::new()];
                near.extend((0..text.len()).map(|i| format!("{}{}", &text[..i], &text[i + 1..])));
                near.extend((0..=text.len()).map(|i| format!("{}-{}", &text[..i], &text[i..])));
                for other in ["/status", "", "/cancel", "/status/stream"] {
                    for url in &near {
                        assert_eq!(path.is_url(url, other), *url == path.url_text(other), "{url:?} as {other:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn returned_urls_land_on_the_base() {
        let id = "acf05732-7cb3-445b-9f39-fdaeccb1d730";
        check(
            "https://relay.example",
            &format!("https://queue.fal.run/fal-ai/flux-pro/requests/{id}/status"),
            Some(&format!("https://relay.example/fal-ai/flux-pro/requests/{id}/status")),
        );
        check(
            "https://relay.example/api/",
            &format!("https://queue.fal.run/fal-ai/flux-1/requests/{id}"),
            Some(&format!("https://relay.example/api/fal-ai/flux-1/requests/{id}")),
        );
        check(
            "https://relay.example/api",
            "https://other.example/api/fal-ai/x/requests/1?logs=1",
            Some("https://relay.example/api/fal-ai/x/requests/1?logs=1"),
        );
        check("http://127.0.0.1:8080", "http://127.0.0.1:9090/fal-ai/x/requests/1", Some("http://127.0.0.1:8080/fal-ai/x/requests/1"));
        check(
            "https://relay.example/api",
            "https://relay.example/api/fal-ai/x/requests/1",
            Some("https://relay.example/api/fal-ai/x/requests/1"),
        );
        check("https://relay.example", "http://relay.example/fal-ai/x/requests/1", Some("https://relay.example/fal-ai/x/requests/1"));
        check("https://relay.example", "/fal-ai/x/requests/1", None);
        check("https://relay.example", "not a url", None);
        check("https://relay.example", "javascript:alert(1)", None);
    }

    #[test]
    fn queue_urls_follow_the_app_id_rule() {
        let base = crate::config::parse_base_url("https://relay.example/api").unwrap();
        assert_eq!(
            queue_url(&base, "fal-ai/flux-1", "r1", "/status").as_str(),
            "https://relay.example/api/fal-ai/flux-1/requests/r1/status"
        );
        assert_eq!(endpoint_url(&base, "fal-ai/flux-1/dev/redux").as_str(), "https://relay.example/api/fal-ai/flux-1/dev/redux");
    }

    #[test]
    fn ids_cannot_inject_path_segments() {
        for ok in ["acf05732-7cb3-445b-9f39-fdaeccb1d730", "r_1.2~x"] {
            assert!(validate_request_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", "a/b", "../../admin", "a?b=1", "a%2Fb", "a b", "a#b"] {
            assert!(validate_request_id(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(validate_endpoint_id("fal-ai/flux-1/dev/redux").is_ok());
        for bad in ["flux", "fal-ai//x", "fal-ai/../x", "fal-ai/x?y", "fal-ai/x y"] {
            assert!(validate_endpoint_id(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn queue_urls_map_onto_the_operations_parameters_or_are_left_alone() {
        // (URL, suffix, expected (prefix, owner, app, request id)).
        type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str, &'a str, &'a str)>);
        let cases: &[Case] = &[
            ("https://r.example/fal-ai/flux-1/requests/r1/status", "/status", Some(("https://r.example", "fal-ai", "flux-1", "r1"))),
            ("https://r.example/api/v1/fal-ai/flux-pro/requests/r-2", "", Some(("https://r.example/api/v1", "fal-ai", "flux-pro", "r-2"))),
            ("http://127.0.0.1:9/workflows/me/wf/requests/r3/cancel", "/cancel", Some(("http://127.0.0.1:9/workflows", "me", "wf", "r3"))),
            // Not of the spec's shape: the call goes to the URL as it is.
            ("https://r.example/fal-ai/flux-1/requests/r1/status", "", None),
            ("https://r.example/fal-ai/flux-1/requests/r1/status?token=x", "/status", None),
            ("https://r.example/flux-1/jobs/r1/status", "/status", None),
            ("https://r.example/requests/r1/status", "/status", None),
            ("https://r.example/fal-ai/fl%20ux/requests/r1", "", None),
            ("https://r.example/fal-ai//requests/r1", "", None),
        ];
        for (url, suffix, want) in cases {
            let parsed = Url::parse(url).unwrap();
            let got = queue_path(&parsed, suffix);
            let want = want.map(|(prefix, owner, app, id)| QueuePath {
                prefix: prefix.into(),
                owner: owner.into(),
                app: app.into(),
                request_id: id.into(),
            });
            assert_eq!(got, want, "{url} with {suffix:?}");
            // Whatever is accepted, the operation's URL template gives back the same URL.
            if let Some(p) = got {
                assert_eq!(format!("{}/{}/{}/requests/{}{suffix}", p.prefix, p.owner, p.app, p.request_id), *url);
            }
        }
    }
}
