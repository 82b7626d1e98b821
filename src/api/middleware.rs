//! Cross-cutting HTTP behaviour: error format by API version, request timeout, CORS,
//! GoTrue-style 404/405, panics as JSON errors.

use std::any::Any;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::api::error::{legacy_body, versioned_body};
use crate::api::state::AppState;
use crate::error::{Error, ErrorCode, Kind};

pub const API_VERSION_HEADER: HeaderName = HeaderName::from_static("x-supabase-api-version");
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The first API version with the `{code, message}` error format.
const API_VERSION_2024_01_01: &str = "2024-01-01";

/// Renders `Error`s in the format the client asked for. Errors carry their parts in a
/// response extension; with `X-Supabase-Api-Version` ≥ 2024-01-01 the body is rewritten to
/// `{code, message}` and the header is echoed (GoTrue echoes it only on errors).
pub async fn render_errors(request: Request, next: Next) -> Response {
    let versioned = request
        .headers()
        .get(&API_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| is_at_least_2024_01_01(v.trim()));
    // A shared handle on the header's bytes, not a copy: only an error reads it.
    let request_id = request.headers().get(&REQUEST_ID_HEADER).cloned();
    let response = next.run(request).await;
    let Some(parts) = response.extensions().get::<Error>().cloned() else {
        return response;
    };
    let (mut head, _) = response.into_parts();
    let body = if versioned {
        versioned_body(&parts)
    } else {
        legacy_body(&parts, request_id.as_ref().and_then(|v| v.to_str().ok()))
    };
    head.headers.remove(axum::http::header::CONTENT_LENGTH);
    if versioned {
        head.headers
            .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION_2024_01_01));
    }
    Response::from_parts(head, Body::from(body.to_string()))
}

/// `YYYY-MM-DD` on or after 2024-01-01. Dates compare correctly as strings once the shape
/// is checked.
fn is_at_least_2024_01_01(value: &str) -> bool {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok() && value >= API_VERSION_2024_01_01
}

/// GoTrue's `GOTRUE_API_MAX_REQUEST_DURATION`: a request that takes longer is answered with
/// `504 request_timeout`.
pub async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit: Duration = state.config.max_request_duration;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::new(
            Kind::Timeout,
            ErrorCode::RequestTimeout,
            "Processing this request timed out, please retry after a moment.",
        )
        .into_response(),
    }
}

pub async fn not_found() -> Error {
    Error::not_found(ErrorCode::NotFound, "Not Found")
}

pub async fn method_not_allowed() -> Error {
    Error::new(
        Kind::MethodNotAllowed,
        ErrorCode::MethodNotAllowed,
        "Method Not Allowed",
    )
}

/// A panic becomes a logged 500 in GoTrue's format instead of a dropped connection.
pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    Error::internal("handler panicked").into_response()
}

/// Any origin may call the API, with the headers supabase-js sends (`apikey`, `x-client-info`,
/// which GoTrue leaves to its gateway), but never with credentials. GoTrue (rs/cors with no
/// origin list) answers `Access-Control-Allow-Origin: *` together with
/// `Access-Control-Allow-Credentials: true`, a pair browsers treat as "no credentials";
/// Latchkey sends the `*` alone. No route reads cookies or HTTP authentication and supabase-js
/// sends its tokens in headers, so credentials are never needed, while reflecting any origin
/// with credentials allowed (as Latchkey did) would let every web page make credentialed
/// calls and read the answers.
pub fn cors() -> CorsLayer {
    let allowed = [
        "accept",
        "authorization",
        "content-type",
        "x-client-ip",
        "x-client-info",
        "x-jwt-aud",
        "x-use-cookie",
        "x-supabase-api-version",
        "apikey",
        "x-requested-with",
        "redirect_to",
    ];
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers(allowed.map(HeaderName::from_static))
        .expose_headers(
            [
                "x-total-count",
                "link",
                "x-supabase-api-version",
                "x-sb-error-code",
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
            ]
            .map(HeaderName::from_static),
        )
        .max_age(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_dates() {
        assert!(is_at_least_2024_01_01("2024-01-01"));
        assert!(is_at_least_2024_01_01("2026-11-23"));
        assert!(!is_at_least_2024_01_01("2023-12-31"));
        assert!(!is_at_least_2024_01_01("2024-1-1"));
        assert!(!is_at_least_2024_01_01("9999-99-99"));
        assert!(!is_at_least_2024_01_01("garbage"));
    }
}
