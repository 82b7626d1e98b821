//! The OpenAPI document's shared parts and Swagger UI at `/docs`.
//!
//! Handlers describe their own inputs, successes and domain errors with `#[utoipa::path]`;
//! what every operation has in common is added here once, from the code that causes it, so
//! the document cannot drift from the behaviour:
//! - `429` on the operations the rate limiter guards (asked of `ratelimit::applies`),
//! - a `default` response: whatever else goes wrong (413, 5xx) still has GoTrue's error body,
//! - the optional `X-Supabase-Api-Version` header that picks the error format (supabase-js
//!   sends it on every call), so Swagger UI and the fuzzer exercise both formats,
//! - an example on each error response with its own status, so Swagger UI does not show one
//!   400 body under every status.

use axum::Router;
use axum::http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder, Type};
use utoipa_swagger_ui::SwaggerUi;

use crate::api::ratelimit;

/// Where Swagger UI is served; `/docs` redirects here.
pub const DOCS_PATH: &str = "/docs";
/// Where the document is served (Swagger UI loads it from here).
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Name of the shared response for rate-limited requests, under `components.responses`.
pub const RATE_LIMITED: &str = "RateLimited";
/// Name of the shared catch-all error response, under `components.responses`.
pub const ERROR: &str = "Error";
/// Name of the shared `X-Supabase-Api-Version` header parameter, under `components.parameters`.
pub const API_VERSION: &str = "ApiVersion";

/// GoTrue's error body, in the shape the request asked for: legacy by default, `{code,
/// message}` with `X-Supabase-Api-Version: 2024-01-01`, and the OAuth shape that some token
/// errors keep whatever the version. Exactly one shape matches any error (`code` is a number
/// only in the legacy one), so it is a `oneOf`.
// Only a description for the document: `crate::error` builds the bodies.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorBody {
    Legacy(LegacyError),
    Versioned(VersionedError),
    OAuth(OAuthError),
}

/// Without `X-Supabase-Api-Version`.
#[derive(Serialize, ToSchema)]
pub struct LegacyError {
    /// The HTTP status.
    #[schema(example = 400)]
    code: u16,
    /// Machine-readable, e.g. `invalid_credentials`, `weak_password`, `over_request_rate_limit`.
    #[schema(example = "invalid_credentials")]
    error_code: String,
    #[schema(example = "Invalid login credentials")]
    msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_password: Option<WeakPasswordReasons>,
    /// The request id, on 5xx only, to find the cause in the server log.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_id: Option<String>,
}

/// With `X-Supabase-Api-Version: 2024-01-01` (what supabase-js sends).
#[derive(Serialize, ToSchema)]
pub struct VersionedError {
    /// The machine-readable error code.
    #[schema(example = "invalid_credentials")]
    code: String,
    #[schema(example = "Invalid login credentials")]
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_password: Option<WeakPasswordReasons>,
}

/// OAuth's error shape, e.g. a refresh-token grant without a refresh token.
#[derive(Serialize, ToSchema)]
pub struct OAuthError {
    #[schema(example = "invalid_request")]
    error: String,
    #[schema(example = "refresh_token required")]
    error_description: String,
}

/// Why a password was refused (`422 weak_password`).
#[derive(Serialize, ToSchema)]
pub struct WeakPasswordReasons {
    /// `length`, `characters` or `pwned`.
    reasons: Vec<String>,
}

/// `POST /signup` answers with a session (autoconfirm, anonymous) or, while the address waits
/// for confirmation, the bare user.
// Only a description for the document, like `ErrorBody`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SignupResponse {
    Session(crate::api::types::SessionResponse),
    User(crate::api::types::UserResponse),
}

/// Adds what every operation shares (see the module comment) to the generated document.
pub fn complete(mut openapi: OpenApi) -> OpenApi {
    let components = openapi.components.get_or_insert_with(Default::default);
    components
        .responses
        .insert(RATE_LIMITED.into(), RefOr::T(rate_limited()));
    components.responses.insert(ERROR.into(), RefOr::T(any_error()));
    components
        .parameters
        .insert(API_VERSION.into(), RefOr::T(api_version()));
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            let api_version = RefOr::Ref(Ref::new(format!("#/components/parameters/{API_VERSION}")));
            operation.parameters.get_or_insert_with(Vec::new).push(api_version);
            let responses = &mut operation.responses.responses;
            if ratelimit::applies(&method, path) {
                // The shared 429 also names the email-send limit, so it replaces a handler's own.
                responses.insert("429".into(), RefOr::Ref(Ref::from_response_name(RATE_LIMITED)));
            }
            responses
                .entry("default".into())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR)));
            for (status, response) in responses.iter_mut() {
                if let (RefOr::T(response), Some(example)) = (response, error_example(status)) {
                    set_example(response, example);
                }
            }
        }
    }
    openapi
}

/// A typical legacy-format error for a status, with codes and messages the code really sends.
fn error_example(status: &str) -> Option<Value> {
    let (code, error_code, msg) = match status {
        "400" => (
            400,
            "validation_failed",
            "Unable to validate email address: invalid format",
        ),
        "401" => (401, "no_authorization", "This endpoint requires a valid Bearer token"),
        "403" => (
            403,
            "bad_jwt",
            "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired",
        ),
        "404" => (404, "user_not_found", "User not found"),
        "422" => (
            422,
            "email_exists",
            "A user with this email address has already been registered",
        ),
        "429" => (429, "over_request_rate_limit", "Request rate limit reached"),
        "503" => (
            503,
            "service_unavailable",
            "Database is unavailable, please retry after a moment.",
        ),
        "default" => (
            500,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        ),
        _ => return None,
    };
    Some(json!({ "code": code, "error_code": error_code, "msg": msg }))
}

/// Sets the example of an `ErrorBody` response that has none yet.
fn set_example(response: &mut Response, example: Value) {
    if let Some(RefOr::T(content)) = response.content.get_mut("application/json")
        && content.schema == Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")))
        && content.example.is_none()
    {
        content.example = Some(example);
    }
}

/// Swagger UI at `/docs/` (and a redirect from `/docs`), reading the document from
/// `/openapi.json`. The document's server is the relative `/auth/v1`, which Swagger UI
/// resolves against the page, so "Try it out" calls this same server.
pub fn swagger_ui<S: Clone + Send + Sync + 'static>(openapi: OpenApi) -> Router<S> {
    SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, openapi).into()
}

fn api_version() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("X-Supabase-Api-Version")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "`2024-01-01` or a later date: errors come as `{code, message}` (what supabase-js sends). \
             Absent or older: the legacy `{code, error_code, msg}`.",
        ))
        .schema(Some(utoipa::openapi::schema::Object::with_type(Type::String)))
        .example(Some(json!("2024-01-01")))
        .build()
}

fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build()
}

fn rate_limited() -> Response {
    let mut response = ResponseBuilder::new()
        .description(
            "A rate limit was reached: `over_request_rate_limit` for too many requests from this \
             client address to this endpoint group (calls with an admin key are never limited), \
             `over_email_send_rate_limit` for an email requested again too soon",
        )
        .content("application/json", error_content())
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(utoipa::openapi::schema::Object::with_type(Type::Integer)))
                .description(Some("Seconds until the next request can succeed"))
                .build(),
        )
        .build();
    if let Some(example) = error_example("429") {
        set_example(&mut response, example);
    }
    response
}

fn any_error() -> Response {
    let mut response = ResponseBuilder::new()
        .description(
            "Any other error, in GoTrue's format: e.g. 413 for a body over 1 MiB, 500 \
             `unexpected_failure`, 503 when the database is unavailable, 504 on timeout",
        )
        .content("application/json", error_content())
        .build();
    if let Some(example) = error_example("default") {
        set_example(&mut response, example);
    }
    response
}

/// The operations of a path, with their methods.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|op| (method, op)))
}
