//! Per request: its id, its span, the "request completed" line GoTrue logs, and the HTTP
//! metrics.
//!
//! The request id is a fresh UUID, or, with `GOTRUE_API_REQUEST_ID_HEADER`, the value a proxy
//! in front put in that header (as GoTrue). A client's own `X-Request-Id` is not believed
//! otherwise: it would let a client give its requests another request's id in the logs. The
//! id goes back in `X-Request-Id` and into 5xx bodies (`error_id`).
//!
//! The span carries GoTrue's request fields (`request_id`, `method`, `path`, `remote_addr`),
//! so every line logged while handling the request has them. `path` never includes the query
//! string (it can carry tokens: `/verify?token=...`), and `remote_addr` is the client address
//! as the rate limiter and audit log see it (`api::client_ip`). Like GoTrue, `/health` (and
//! the readiness probe) are not logged: probes every few seconds would drown the rest.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use metrics::{Counter, Histogram};
use tracing::Instrument;

use crate::api::error::ERROR_CODE_HEADER;
use crate::api::state::AppState;
use crate::telemetry::metrics::{AUTH_FAILURES, HTTP_DURATION, HTTP_REQUESTS, installed as metrics_installed};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a proxy's header; a longer one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;
/// Paths are logged as they came, cut to this many bytes.
const MAX_LOGGED_PATH_LEN: usize = 256;

/// Runs `inner` on the request inside the request's span, and observes what it answers.
pub async fn observe<Inner, Answer>(state: &AppState, mut request: Request, inner: Inner) -> Response
where
    Inner: FnOnce(Request) -> Answer,
    Answer: Future<Output = Response>,
{
    let started = Instant::now();
    let id = request_id(state, &request);
    request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    let (parts, body) = request.into_parts();
    let route = route_label(parts.extensions.get::<MatchedPath>());
    let method = parts.method.clone();
    let grant_type = (route == "/token").then(|| grant_type(parts.uri.query())).flatten();
    // The fields are evaluated only when the span is enabled (log level info or finer).
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %method,
        path = truncated(parts.uri.path(), MAX_LOGGED_PATH_LEN),
        remote_addr = state
            .client_ips
            .of(&parts)
            .map(|client| client.ip.to_string())
            .as_deref()
            .unwrap_or_default(),
    );
    let mut response = inner(Request::from_parts(parts, body)).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let error_code = response
        .headers()
        .get(ERROR_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    record(&method, &route, status, error_code.as_deref(), elapsed);
    if !is_probe(&route) {
        span.in_scope(|| log_completed(status, elapsed, error_code.as_deref(), grant_type));
    }
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response
}

/// The proxy's id when configured and usable (visible ASCII, not too long), else a new UUID.
fn request_id(state: &AppState, request: &Request) -> HeaderValue {
    let from_proxy = state
        .config
        .request_id_header
        .as_ref()
        .and_then(|name| request.headers().get(name))
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
        });
    match from_proxy {
        Some(value) => value.clone(),
        None => {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            // A UUID's text is always a valid header value.
            HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("-"))
        }
    }
}

/// GoTrue's levels for the line: error for 5xx, warning for 4xx, info otherwise.
fn log_completed(status: StatusCode, elapsed: Duration, error_code: Option<&str>, grant_type: Option<&str>) {
    let status = status.as_u16();
    // GoTrue logs the duration in nanoseconds.
    let duration = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    if status >= 500 {
        tracing::error!(status, duration, error_code, grant_type, "request completed");
    } else if status >= 400 {
        tracing::warn!(status, duration, error_code, grant_type, "request completed");
    } else {
        tracing::info!(status, duration, error_code, grant_type, "request completed");
    }
}

fn record(method: &Method, route: &str, status: StatusCode, error_code: Option<&str>, elapsed: Duration) {
    if !metrics_installed() {
        return;
    }
    let (requests, duration) = request_series(method_label(method), route, status);
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
    if status.is_client_error()
        && let Some(code) = error_code
    {
        metrics::counter!(AUTH_FAILURES, "route" => route.to_owned(), "error_code" => code.to_owned()).increment(1);
    }
}

/// The request counter and latency histogram of one (method, route, status), registered
/// once: looking a series up by its labels on every request cost three string copies and a
/// hash of the key each. Bounded: the routes, methods and statuses are fixed sets.
fn request_series(method: &'static str, route: &str, status: StatusCode) -> (Counter, Histogram) {
    type Series = HashMap<(&'static str, String, u16), (Counter, Histogram)>;
    static SERIES: OnceLock<Mutex<Series>> = OnceLock::new();
    let mut series = SERIES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((requests, duration)) = series.get(&(method, route.to_owned(), status.as_u16())) {
        return (requests.clone(), duration.clone());
    }
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    let found = (
        metrics::counter!(HTTP_REQUESTS, &labels),
        metrics::histogram!(HTTP_DURATION, &labels),
    );
    series.insert((method, route.to_owned(), status.as_u16()), found.clone());
    found
}

/// The matched route template (`/admin/users/{user_id}`) with the `/auth/v1` mount stripped,
/// so both mounts share a series; `unmatched` for a 404. Never the raw path, which a client
/// chooses: the templates are a fixed set.
fn route_label(matched: Option<&MatchedPath>) -> String {
    let Some(matched) = matched else {
        return "unmatched".into();
    };
    let path = matched.as_str();
    let path = path
        .strip_prefix("/auth/v1")
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    path.to_owned()
}

/// Methods a client can choose freely, limited to the ones HTTP defines.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn is_probe(route: &str) -> bool {
    matches!(route, "/health" | "/health/ready")
}

/// `grant_type` of `POST /token`, when it is one GoTrue knows (the value is the client's).
fn grant_type(query: Option<&str>) -> Option<&'static str> {
    let value = url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value)?;
    ["password", "refresh_token", "pkce", "id_token", "web3"]
        .into_iter()
        .find(|known| *known == value)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_grant_types_are_logged() {
        assert_eq!(grant_type(Some("grant_type=password")), Some("password"));
        assert_eq!(grant_type(Some("x=1&grant_type=refresh_token")), Some("refresh_token"));
        assert_eq!(grant_type(Some("grant_type=hunter2")), None);
        assert_eq!(grant_type(None), None);
    }

    #[test]
    fn paths_are_cut_at_a_character_boundary() {
        assert_eq!(truncated("/abc", 10), "/abc");
        assert_eq!(truncated("/é", 2), "/");
        assert_eq!(
            truncated(&"a".repeat(300), MAX_LOGGED_PATH_LEN).len(),
            MAX_LOGGED_PATH_LEN
        );
    }
}
