//! The pure routing of a method and path to a simulator call.

use hyper::Method;

/// A queue call about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueCall {
    Status,
    Stream,
    Result,
    Cancel,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST /{endpoint_id}`.
    Submit(String),
    /// `.../{app path}/requests/{id}[/status[/stream]|/cancel]`.
    Queue { app_path: String, request_id: String, call: QueueCall },
    /// `GET /media/{name}`.
    Media(String),
    /// `GET /_sim/counters`.
    AdminCounters,
    /// `GET|POST|PUT|DELETE /_sim/faults`.
    AdminFaults,
    /// A known path with another method.
    MethodNotAllowed,
    /// A `POST` to no endpoint of the spec.
    UnknownEndpoint(String),
    /// Anything else.
    NotFound,
}

/// Routes `path` (the prefix already removed); `is_endpoint` says whether a joined path is
/// an endpoint id of the spec. Empty segments (`//`, a trailing `/`) are ignored.
pub(crate) fn route(method: &Method, path: &str, is_endpoint: impl Fn(&str) -> bool) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let only = |allowed: &[Method], route: Route| {
        if allowed.contains(method) { route } else { Route::MethodNotAllowed }
    };
    match segments.as_slice() {
        ["media", name] => return only(&[Method::GET], Route::Media((*name).to_string())),
        ["_sim", "counters"] => return only(&[Method::GET], Route::AdminCounters),
        ["_sim", "faults"] => {
            return only(&[Method::GET, Method::POST, Method::PUT, Method::DELETE], Route::AdminFaults);
        }
        _ => {}
    }
    if let Some(i) = segments.iter().skip(2).position(|s| *s == "requests").map(|p| p + 2)
        && let Some(id) = segments.get(i + 1)
    {
        let call = match &segments[i + 2..] {
            [] => Some((Method::GET, QueueCall::Result)),
            ["status"] => Some((Method::GET, QueueCall::Status)),
            ["status", "stream"] => Some((Method::GET, QueueCall::Stream)),
            ["cancel"] => Some((Method::PUT, QueueCall::Cancel)),
            _ => None,
        };
        if let Some((allowed, call)) = call {
            let app_path = segments[..i].join("/");
            return only(&[allowed], Route::Queue { app_path, request_id: (*id).to_string(), call });
        }
    }
    let joined = segments.join("/");
    if is_endpoint(&joined) {
        return only(&[Method::POST], Route::Submit(joined));
    }
    if method == Method::POST && !segments.is_empty() {
        return Route::UnknownEndpoint(joined);
    }
    Route::NotFound
}

/// Whether the app part of a queue path names the job's app: its app id (`fal-ai/flux-1`),
/// its endpoint id, or anything between (lenient, as clients build these paths differently).
pub(crate) fn app_path_matches(app_path: &str, app_id: &str, endpoint_id: &str) -> bool {
    if app_path == app_id || app_path == endpoint_id {
        return true;
    }
    endpoint_id.strip_prefix(app_path).is_some_and(|rest| rest.starts_with('/')) && app_path.starts_with(app_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path: &str, expected: Route) {
        let is_endpoint = |p: &str| p == "fal-ai/flux-1/dev/redux" || p == "workflows/me/flow/run";
        assert_eq!(route(&method, path, is_endpoint), expected, "{method} {path}");
    }

    fn queue(app_path: &str, id: &str, call: QueueCall) -> Route {
        Route::Queue { app_path: app_path.into(), request_id: id.into(), call }
    }

    #[test]
    fn routes_table() {
        use QueueCall::*;
        check(Method::POST, "/fal-ai/flux-1/dev/redux", Route::Submit("fal-ai/flux-1/dev/redux".into()));
        check(Method::POST, "/fal-ai/flux-1/dev/redux/", Route::Submit("fal-ai/flux-1/dev/redux".into()));
        check(Method::GET, "/fal-ai/flux-1/dev/redux", Route::MethodNotAllowed);
        check(Method::POST, "/fal-ai/nothing", Route::UnknownEndpoint("fal-ai/nothing".into()));
        check(Method::GET, "/fal-ai/flux-1/requests/abc/status", queue("fal-ai/flux-1", "abc", Status));
        check(Method::GET, "/fal-ai/flux-1/requests/abc/status/stream", queue("fal-ai/flux-1", "abc", Stream));
        check(Method::GET, "/fal-ai/flux-1/requests/abc", queue("fal-ai/flux-1", "abc", Result));
        check(Method::PUT, "/fal-ai/flux-1/requests/abc/cancel", queue("fal-ai/flux-1", "abc", Cancel));
        check(Method::POST, "/fal-ai/flux-1/requests/abc/cancel", Route::MethodNotAllowed);
        check(Method::DELETE, "/fal-ai/flux-1/requests/abc", Route::MethodNotAllowed);
        check(Method::GET, "/fal-ai/flux-1/dev/redux/requests/abc/status", queue("fal-ai/flux-1/dev/redux", "abc", Status));
        check(Method::GET, "/workflows/me/flow/requests/abc", queue("workflows/me/flow", "abc", Result));
        check(Method::GET, "/fal-ai/flux-1/requests/abc/logs", Route::NotFound);
        check(Method::GET, "/requests/abc/status", Route::NotFound);
        check(Method::GET, "/media/x-0.png", Route::Media("x-0.png".into()));
        check(Method::POST, "/media/x-0.png", Route::MethodNotAllowed);
        check(Method::GET, "/_sim/counters", Route::AdminCounters);
        check(Method::POST, "/_sim/faults", Route::AdminFaults);
        check(Method::GET, "/", Route::NotFound);
        check(Method::POST, "/", Route::NotFound);
    }

    #[test]
    fn app_paths_table() {
        let (app, endpoint) = ("fal-ai/flux-1", "fal-ai/flux-1/dev/redux");
        for (path, expected) in [
            ("fal-ai/flux-1", true),
            ("fal-ai/flux-1/dev/redux", true),
            ("fal-ai/flux-1/dev", true),
            ("fal-ai/flux-1/de", false),
            ("fal-ai/flux-pro", false),
            ("fal-ai", false),
            ("other/flux-1", false),
        ] {
            assert_eq!(app_path_matches(path, app, endpoint), expected, "{path}");
        }
    }
}
