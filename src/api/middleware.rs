//! Cross-cutting HTTP behaviour: error format by API version, request timeout, CORS,
//! GoTrue-style 404/405, panics as JSON errors.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::api::error::{legacy_body, versioned_body};
use crate::api::observe::{self, REQUEST_ID_HEADER};
use crate::api::ratelimit;
use crate::api::state::AppState;
use crate::error::{Error, ErrorCode, Kind};

pub const API_VERSION_HEADER: HeaderName = HeaderName::from_static("x-supabase-api-version");

/// The first API version with the `{code, message}` error format.
const API_VERSION_2024_01_01: &str = "2024-01-01";

/// What runs between CORS and the route, as one middleware, outermost first:
/// - the request id, the request's span, its log line and metrics (`api::observe`), which
///   see the final status, 429s included;
/// - errors rendered in the format the client asked for ([`ErrorFormat`]);
/// - a panic answered as a 500 in GoTrue's format instead of a dropped connection;
/// - GoTrue's `GOTRUE_API_MAX_REQUEST_DURATION`: a longer request gets `504 request_timeout`;
/// - the rate limits (`api::ratelimit`), inside the timeout because they may read the body
///   or ask Redis, and inside the renderer so a 429 gets the client's error format.
///
/// One `from_fn` rather than four layers and CatchPanic: each layer boxes a future and
/// clones the services below it on every request; merged, a `GET /user` costs 2–4 µs less
/// server CPU (BENCHMARKS.md, #24 step 8).
pub async fn per_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    observe::observe(&state, request, |request| guard(&state, request, next)).await
}

async fn guard(state: &AppState, request: Request, next: Next) -> Response {
    let format = ErrorFormat::of(&request);
    let limited = ratelimit::limit(state, request, next);
    let response = contain(state.config.max_request_duration, limited).await;
    format.render(response)
}

/// `work`'s response; `504 request_timeout` once it has taken `limit`; a 500 if it panicked.
async fn contain(limit: Duration, work: impl Future<Output = Response>) -> Response {
    // Unwind safety: a panicking request shares nothing it could leave half-changed except
    // through locks, which poisoning (or their own recovery) covers.
    match AssertUnwindSafe(tokio::time::timeout(limit, work)).catch_unwind().await {
        Ok(Ok(response)) => response,
        Ok(Err(_elapsed)) => Error::new(
            Kind::Timeout,
            ErrorCode::RequestTimeout,
            "Processing this request timed out, please retry after a moment.",
        )
        .into_response(),
        Err(_panic) => Error::internal("handler panicked").into_response(),
    }
}

/// The error format a request asked for. Errors carry their parts in a response extension;
/// with `X-Supabase-Api-Version` ≥ 2024-01-01 the body is rewritten to `{code, message}` and
/// the header is echoed (GoTrue echoes it only on errors).
struct ErrorFormat {
    versioned: bool,
    /// A shared handle on the header's bytes, not a copy: only an error reads it.
    request_id: Option<HeaderValue>,
}

impl ErrorFormat {
    fn of(request: &Request) -> ErrorFormat {
        let versioned = request
            .headers()
            .get(&API_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| is_at_least_2024_01_01(v.trim()));
        let request_id = request.headers().get(&REQUEST_ID_HEADER).cloned();
        ErrorFormat { versioned, request_id }
    }

    fn render(self, response: Response) -> Response {
        let Some(parts) = response.extensions().get::<Error>().cloned() else {
            return response;
        };
        let (mut head, _) = response.into_parts();
        let body = if self.versioned {
            versioned_body(&parts)
        } else {
            legacy_body(&parts, self.request_id.as_ref().and_then(|v| v.to_str().ok()))
        };
        head.headers.remove(axum::http::header::CONTENT_LENGTH);
        if self.versioned {
            head.headers
                .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION_2024_01_01));
        }
        Response::from_parts(head, Body::from(body.to_string()))
    }
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
    use axum::http::StatusCode;

    #[test]
    fn api_version_dates() {
        assert!(is_at_least_2024_01_01("2024-01-01"));
        assert!(is_at_least_2024_01_01("2026-11-23"));
        assert!(!is_at_least_2024_01_01("2023-12-31"));
        assert!(!is_at_least_2024_01_01("2024-1-1"));
        assert!(!is_at_least_2024_01_01("9999-99-99"));
        assert!(!is_at_least_2024_01_01("garbage"));
    }

    async fn answer(response: Response) -> (u16, serde_json::Value) {
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_panic_is_a_500_in_gotrues_format_in_either_error_format() {
        for (version, message_field) in [(None, "msg"), (Some("2024-01-01"), "message")] {
            let mut request = Request::new(Body::empty());
            if let Some(version) = version {
                request
                    .headers_mut()
                    .insert(API_VERSION_HEADER, HeaderValue::from_static(version));
            }
            let format = ErrorFormat::of(&request);
            let panics = async { panic!("a bug in a handler") };
            let (status, body) = answer(format.render(contain(Duration::from_secs(5), panics).await)).await;
            assert_eq!(status, 500);
            assert_eq!(
                body["error_code"].as_str().or(body["code"].as_str()),
                Some("unexpected_failure"),
                "{body}"
            );
            assert!(body[message_field].is_string(), "{body}");
            assert!(!body.to_string().contains("a bug in a handler"), "{body}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_limit_is_a_504_and_one_within_it_passes() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(11)).await;
            StatusCode::OK.into_response()
        };
        let (status, body) = answer(contain(Duration::from_secs(10), slow).await).await;
        assert_eq!((status, body["error_code"].as_str()), (504, Some("request_timeout")));

        let quick = async {
            tokio::time::sleep(Duration::from_secs(9)).await;
            StatusCode::NO_CONTENT.into_response()
        };
        assert_eq!(
            contain(Duration::from_secs(10), quick).await.status(),
            StatusCode::NO_CONTENT
        );
    }
}
