//! The use cases' error as an HTTP response, the way GoTrue renders its errors.
//!
//! `IntoResponse` produces the legacy body (`{code, error_code, msg}`), sets
//! `x-sb-error-code`, and stashes the error in a response extension so that
//! `middleware::per_request` can rewrite the body into the 2024-01-01 format
//! (`{code, message}`) when the client asked for it with `X-Supabase-Api-Version`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Error, Kind};

pub const ERROR_CODE_HEADER: HeaderName = HeaderName::from_static("x-sb-error-code");

/// The HTTP status of each kind of failure.
pub fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Some(cause) = self.cause() {
            tracing::error!(code = self.code().as_str(), cause = %cause, "request failed");
        }
        let mut response = (status(self.kind()), axum::Json(legacy_body(&self, None))).into_response();
        if let Ok(value) = HeaderValue::from_str(self.code().as_str()) {
            response.headers_mut().insert(ERROR_CODE_HEADER, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// `{"code": 400, "error_code": "...", "msg": "..."}` — GoTrue's original error format.
pub fn legacy_body(err: &Error, error_id: Option<&str>) -> serde_json::Value {
    if let Some(error) = err.oauth_error() {
        return json!({ "error": error, "error_description": err.message() });
    }
    let mut body = json!({
        "code": status(err.kind()).as_u16(),
        "error_code": err.code().as_str(),
        "msg": err.message(),
    });
    if let Some(reasons) = err.weak_password_reasons() {
        body["weak_password"] = json!({ "reasons": reasons });
    }
    if let (Some(id), true) = (error_id, err.kind().is_server_error()) {
        body["error_id"] = json!(id);
    }
    body
}

/// `{"code": "...", "message": "..."}` — the format of `X-Supabase-Api-Version: 2024-01-01`.
pub fn versioned_body(err: &Error) -> serde_json::Value {
    if let Some(error) = err.oauth_error() {
        return json!({ "error": error, "error_description": err.message() });
    }
    let mut body = json!({ "code": err.code().as_str(), "message": err.message() });
    if let Some(reasons) = err.weak_password_reasons() {
        body["weak_password"] = json!({ "reasons": reasons });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn legacy_body_has_numeric_code_and_error_code() {
        let err = Error::bad_request(ErrorCode::InvalidCredentials, "Invalid login credentials");
        let body = legacy_body(&err, Some("req-1"));
        assert_eq!(body["code"], 400);
        assert_eq!(body["error_code"], "invalid_credentials");
        assert_eq!(body["msg"], "Invalid login credentials");
        assert!(body.get("error_id").is_none(), "error_id is only for 5xx");
    }

    #[test]
    fn versioned_body_keeps_weak_password_reasons() {
        let err = Error::weak_password("Password should be at least 6 characters.", vec!["length"]);
        let body = versioned_body(&err);
        assert_eq!(body["code"], "weak_password");
        assert_eq!(body["weak_password"]["reasons"][0], "length");
    }

    #[test]
    fn internal_errors_carry_an_error_id_and_no_cause() {
        let err = Error::internal("connection string with password=hunter2");
        let body = legacy_body(&err, Some("abc"));
        assert_eq!(body["error_id"], "abc");
        assert!(!body.to_string().contains("hunter2"));
    }
}
