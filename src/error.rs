//! One error type for the whole API, rendered the way GoTrue renders its errors.
//!
//! Handlers return `ApiError`; `IntoResponse` produces the legacy body
//! (`{code, error_code, msg}`) and stashes the parts in a response extension so that the
//! `render_api_version` middleware can rewrite it into the 2024-01-01 format
//! (`{code, message}`) when the client asked for it with `X-Supabase-Api-Version`.

use std::borrow::Cow;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub type ApiResult<T> = Result<T, ApiError>;

macro_rules! error_codes {
    ($($variant:ident => $text:literal,)*) => {
        /// GoTrue's machine-readable error codes (`apierrors/errorcode.go`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }
        }
    };
}

error_codes! {
    UnexpectedFailure => "unexpected_failure",
    ValidationFailed => "validation_failed",
    BadJson => "bad_json",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    EmailExists => "email_exists",
    PhoneExists => "phone_exists",
    BadJwt => "bad_jwt",
    NotAdmin => "not_admin",
    NoAuthorization => "no_authorization",
    UserNotFound => "user_not_found",
    SessionNotFound => "session_not_found",
    SessionExpired => "session_expired",
    RefreshTokenNotFound => "refresh_token_not_found",
    RefreshTokenAlreadyUsed => "refresh_token_already_used",
    FlowStateNotFound => "flow_state_not_found",
    FlowStateExpired => "flow_state_expired",
    SignupDisabled => "signup_disabled",
    UserBanned => "user_banned",
    EmailProviderDisabled => "email_provider_disabled",
    PhoneProviderDisabled => "phone_provider_disabled",
    AnonymousProviderDisabled => "anonymous_provider_disabled",
    UserAlreadyExists => "user_already_exists",
    Conflict => "conflict",
    ReauthenticationNeeded => "reauthentication_needed",
    SamePassword => "same_password",
    ReauthenticationNotValid => "reauthentication_not_valid",
    CurrentPasswordInvalid => "current_password_invalid",
    CurrentPasswordRequired => "current_password_required",
    OtpExpired => "otp_expired",
    WeakPassword => "weak_password",
    EmailNotConfirmed => "email_not_confirmed",
    PhoneNotConfirmed => "phone_not_confirmed",
    InvalidCredentials => "invalid_credentials",
    OverRequestRateLimit => "over_request_rate_limit",
    OverEmailSendRateLimit => "over_email_send_rate_limit",
    BadCodeVerifier => "bad_code_verifier",
    RequestTimeout => "request_timeout",
    RequestEntityTooLarge => "request_entity_too_large",
    ServiceUnavailable => "service_unavailable",
    EmailAddressInvalid => "email_address_invalid",
    OtpDisabled => "otp_disabled",
    BadOauthState => "bad_oauth_state",
    BadOauthCallback => "bad_oauth_callback",
    FlowStateAlreadyUsed => "flow_state_already_used",
    ProviderEmailNeedsVerification => "provider_email_needs_verification",
    IdentityNotFound => "identity_not_found",
    IdentityAlreadyExists => "identity_already_exists",
    SingleIdentityNotDeletable => "single_identity_not_deletable",
    EmailConflictIdentityNotDeletable => "email_conflict_identity_not_deletable",
    UnexpectedAudience => "unexpected_audience",
    ManualLinkingDisabled => "manual_linking_disabled",
}

/// The parts of an error that the version-aware renderer needs.
#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub weak_password_reasons: Option<Vec<&'static str>>,
    /// Set for GoTrue's OAuth-style errors (`{"error", "error_description"}`), which keep
    /// that shape whatever the API version.
    pub oauth_error: Option<&'static str>,
}

#[derive(Debug)]
pub struct ApiError {
    parts: ErrorParts,
    /// The underlying cause of a 5xx, logged once when the response is built.
    cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            parts: ErrorParts {
                status,
                code,
                message: message.into(),
                weak_password_reasons: None,
                oauth_error: None,
            },
            cause: None,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::ValidationFailed, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn weak_password(message: impl Into<Cow<'static, str>>, reasons: Vec<&'static str>) -> Self {
        let mut err = Self::unprocessable(ErrorCode::WeakPassword, message);
        err.parts.weak_password_reasons = Some(reasons);
        err
    }

    /// An OAuth-style 400 (`{"error": "invalid_request", "error_description": ...}`), as
    /// GoTrue answers some token-endpoint errors.
    pub fn oauth_invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::bad_request(ErrorCode::ValidationFailed, description);
        err.parts.oauth_error = Some("invalid_request");
        err
    }

    /// A server-side failure: the client sees a generic message, the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::UnexpectedFailure,
            "Unexpected failure, please check server logs for more information",
        );
        err.cause = Some(cause.to_string());
        err
    }

    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    pub fn code(&self) -> ErrorCode {
        self.parts.code
    }

    pub fn message(&self) -> &str {
        &self.parts.message
    }

    /// The logged-only cause of a server-side failure.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.parts.status.as_u16(),
            self.parts.code.as_str(),
            self.parts.message
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &err {
            // The pool could not get a connection in time, or the connection broke: the
            // database is down or overloaded. Answer quickly with a retryable 503 (supabase-js
            // retries 5xx from this class) instead of hanging; sqlx reconnects by itself.
            E::PoolTimedOut | E::Io(_) | E::PoolClosed | E::Tls(_) => database_unavailable(&err),
            E::Database(db) if db.code().is_some_and(|code| is_unavailable_sqlstate(&code)) => {
                database_unavailable(&err)
            }
            _ => ApiError::internal(err),
        }
    }
}

/// SQLSTATEs that mean "the database cannot serve us right now" rather than a bug: connection
/// exceptions (08), operator intervention such as a shutdown or terminated backend (57P),
/// too many connections (53300), and a database not accepting connections (55000).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "55000"
}

fn database_unavailable(err: &sqlx::Error) -> ApiError {
    {
        {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                "Database is unavailable, please retry after a moment.",
            )
        }
    }
}

pub const ERROR_CODE_HEADER: HeaderName = HeaderName::from_static("x-sb-error-code");

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(code = self.parts.code.as_str(), cause = %cause, "request failed");
        }
        let mut response = (self.parts.status, axum::Json(legacy_body(&self.parts, None))).into_response();
        if let Ok(value) = HeaderValue::from_str(self.parts.code.as_str()) {
            response.headers_mut().insert(ERROR_CODE_HEADER, value);
        }
        response.extensions_mut().insert(self.parts);
        response
    }
}

/// `{"code": 400, "error_code": "...", "msg": "..."}` — GoTrue's original error format.
pub fn legacy_body(parts: &ErrorParts, error_id: Option<&str>) -> serde_json::Value {
    if let Some(error) = parts.oauth_error {
        return json!({ "error": error, "error_description": parts.message });
    }
    let mut body = json!({
        "code": parts.status.as_u16(),
        "error_code": parts.code.as_str(),
        "msg": parts.message,
    });
    if let Some(reasons) = &parts.weak_password_reasons {
        body["weak_password"] = json!({ "reasons": reasons });
    }
    if let (Some(id), true) = (error_id, parts.status.is_server_error()) {
        body["error_id"] = json!(id);
    }
    body
}

/// `{"code": "...", "message": "..."}` — the format of `X-Supabase-Api-Version: 2024-01-01`.
pub fn versioned_body(parts: &ErrorParts) -> serde_json::Value {
    if let Some(error) = parts.oauth_error {
        return json!({ "error": error, "error_description": parts.message });
    }
    let mut body = json!({ "code": parts.code.as_str(), "message": parts.message });
    if let Some(reasons) = &parts.weak_password_reasons {
        body["weak_password"] = json!({ "reasons": reasons });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_body_has_numeric_code_and_error_code() {
        let err = ApiError::bad_request(ErrorCode::InvalidCredentials, "Invalid login credentials");
        let body = legacy_body(&err.parts, Some("req-1"));
        assert_eq!(body["code"], 400);
        assert_eq!(body["error_code"], "invalid_credentials");
        assert_eq!(body["msg"], "Invalid login credentials");
        assert!(body.get("error_id").is_none(), "error_id is only for 5xx");
    }

    #[test]
    fn versioned_body_keeps_weak_password_reasons() {
        let err = ApiError::weak_password("Password should be at least 6 characters.", vec!["length"]);
        let body = versioned_body(&err.parts);
        assert_eq!(body["code"], "weak_password");
        assert_eq!(body["weak_password"]["reasons"][0], "length");
    }

    #[test]
    fn internal_errors_hide_the_cause() {
        let err = ApiError::internal("connection string with password=hunter2");
        assert!(!err.message().contains("hunter2"));
        let body = legacy_body(&err.parts, Some("abc"));
        assert_eq!(body["error_id"], "abc");
    }
}
