//! Extractors that turn bad input into GoTrue errors instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use crate::api::state::AppState;
use crate::auth::session::Client;
use crate::error::{Error, ErrorCode, Kind};

/// Maximum request body (GoTrue: 1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. The content type is not checked (GoTrue parses any body as JSON).
/// Syntax errors are `400 bad_json`; well-formed JSON of the wrong shape is
/// `400 validation_failed`; an oversized body is `413 request_entity_too_large`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(Json)
    }
}

/// A JSON body that may be absent (an empty body reads as `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let parsed = serde_json::from_slice(bytes).map_err(json_error)?;
    // A JSON string can only hold NUL as the escape `\u0000`; without that text in the body
    // there is nothing to look for.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(json_error)?;
        if contains_nul(&value) {
            return Err(nul_error("Request body"));
        }
    }
    Ok(parsed)
}

fn json_error(err: serde_json::Error) -> Error {
    match err.classify() {
        serde_json::error::Category::Data => Error::validation(format!("Invalid request body: {err}")),
        _ => Error::bad_request(
            ErrorCode::BadJson,
            format!("Could not parse request body as JSON: {err}"),
        ),
    }
}

/// PostgreSQL cannot store NUL in `text` or `jsonb` (it fails with "unsupported Unicode
/// escape sequence"), so a NUL anywhere in the input would end as a 500 once it reached a
/// column: metadata keys and values, roles, filters. Refused up front, everywhere, instead.
fn contains_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn nul_error(what: &str) -> Error {
    Error::validation(format!("{what} must not contain NUL characters"))
}

pub(crate) fn body_error(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::new(
            Kind::PayloadTooLarge,
            ErrorCode::RequestEntityTooLarge,
            "Request body too large",
        )
    } else {
        Error::bad_request(ErrorCode::BadJson, "Could not read request body")
    }
}

/// Query parameters; a value of the wrong type is `400 validation_failed`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or("");
        // `%00` decodes to NUL, which no query value can be stored or searched with (see
        // `contains_nul`).
        if url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err(nul_error("Query parameters"));
        }
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|err| Error::validation(format!("Invalid query parameters: {err}")))
    }
}

/// Who is calling, for the audit log and sessions: the client address by the same rule as the
/// rate limiter (`api::client_ip`; GoTrue instead believes `X-Forwarded-For` from anyone, so
/// any client could write any address into its audit trail) and the user agent.
impl<S: Send + Sync> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let ip = state.client_ips.of(parts).map(|address| address.ip);
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Ok(Client { ip, user_agent })
    }
}

/// The `X-JWT-Aud` header: the audience a request asks for (GoTrue's `requestAud`), `None`
/// when it is absent or empty. A value that is not UTF-8 is kept (lossily): it must still
/// fail to match, not vanish.
pub struct RequestedAudience(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestedAudience {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestedAudience(
            parts
                .headers
                .get("x-jwt-aud")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .filter(|v| !v.is_empty()),
        ))
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is a well-formed one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    bearer_of(parts.headers.get(AUTHORIZATION)?)
}

fn bearer_of(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `Authorization` header, for a handler that reads it only in some cases. Unlike taking
/// the request's `Parts`, which clones every header, it shares the one value.
pub struct Authorization(Option<HeaderValue>);

impl Authorization {
    /// The bearer token, as [`bearer_token`] reads it.
    pub fn bearer(&self) -> Option<&str> {
        self.0.as_ref().and_then(bearer_of)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorization {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Authorization(parts.headers.get(AUTHORIZATION).cloned()))
    }
}
