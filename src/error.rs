//! The one error type of Latchkey's use cases: GoTrue's error code, its message and the kind
//! of failure. It knows nothing of HTTP; `api::error` turns the kind into a status and renders
//! GoTrue's two JSON formats.

use std::borrow::Cow;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    OverSmsSendRateLimit => "over_sms_send_rate_limit",
    SmsSendFailed => "sms_send_failed",
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
    TooManyEnrolledMfaFactors => "too_many_enrolled_mfa_factors",
    MfaFactorNameConflict => "mfa_factor_name_conflict",
    MfaFactorNotFound => "mfa_factor_not_found",
    MfaIpAddressMismatch => "mfa_ip_address_mismatch",
    MfaChallengeExpired => "mfa_challenge_expired",
    MfaVerificationFailed => "mfa_verification_failed",
    MfaVerificationRejected => "mfa_verification_rejected",
    InsufficientAal => "insufficient_aal",
    MfaPhoneEnrollDisabled => "mfa_phone_enroll_not_enabled",
    MfaPhoneVerifyDisabled => "mfa_phone_verify_not_enabled",
    MfaTotpEnrollDisabled => "mfa_totp_enroll_not_enabled",
    MfaTotpVerifyDisabled => "mfa_totp_verify_not_enabled",
    MfaWebAuthnEnrollDisabled => "mfa_webauthn_enroll_not_enabled",
    MfaWebAuthnVerifyDisabled => "mfa_webauthn_verify_not_enabled",
    MfaVerifiedFactorExists => "mfa_verified_factor_exists",
    ProviderDisabled => "provider_disabled",
    FeatureDisabled => "feature_disabled",
    CustomProviderNotFound => "custom_provider_not_found",
    OverCustomProviderQuota => "over_custom_provider_quota",
    SamlProviderDisabled => "saml_provider_disabled",
    HookTimeout => "hook_timeout",
    HookTimeoutAfterRetry => "hook_timeout_after_retry",
    HookPayloadOverSizeLimit => "hook_payload_over_size_limit",
    HookPayloadInvalidContentType => "hook_payload_invalid_content_type",
}

/// What went wrong, in the classes GoTrue's errors fall into (`apierrors.New...Error`); the API
/// layer gives each its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or names something that cannot be used (400).
    BadRequest,
    /// No credentials where they are needed (401).
    Unauthorized,
    /// Credentials that do not allow this (403).
    Forbidden,
    NotFound,
    /// The route exists, not with this method (405).
    MethodNotAllowed,
    Conflict,
    /// The request body is over the limit (413).
    PayloadTooLarge,
    /// Well-formed, but refused by a rule (422).
    Unprocessable,
    TooManyRequests,
    /// A bug or an unexpected failure (500); the message is generic, the cause is logged.
    Internal,
    /// The database or the mail server cannot serve now; retryable (503).
    Unavailable,
    /// The request took longer than `GOTRUE_API_MAX_REQUEST_DURATION` (504).
    Timeout,
}

impl Kind {
    /// Failures of the server rather than of the request.
    pub fn is_server_error(self) -> bool {
        matches!(self, Kind::Internal | Kind::Unavailable | Kind::Timeout)
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    code: ErrorCode,
    message: Cow<'static, str>,
    weak_password_reasons: Option<Vec<&'static str>>,
    /// Set for GoTrue's OAuth-style errors (`{"error", "error_description"}`), which keep
    /// that shape whatever the API version.
    oauth_error: Option<&'static str>,
    /// The underlying cause of a server-side failure, for the log only.
    cause: Option<String>,
}

impl Error {
    pub fn new(kind: Kind, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
            weak_password_reasons: None,
            oauth_error: None,
            cause: None,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    pub fn unprocessable(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Unprocessable, code, message)
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Forbidden, code, message)
    }

    pub fn unauthorized(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Unauthorized, code, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::NotFound, code, message)
    }

    pub fn too_many_requests(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::TooManyRequests, code, message)
    }

    pub fn unavailable(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Unavailable, code, message)
    }

    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request(ErrorCode::ValidationFailed, message)
    }

    pub fn weak_password(message: impl Into<Cow<'static, str>>, reasons: Vec<&'static str>) -> Self {
        let mut err = Self::unprocessable(ErrorCode::WeakPassword, message);
        err.weak_password_reasons = Some(reasons);
        err
    }

    /// An OAuth-style 400 (`{"error": "invalid_request", "error_description": ...}`), as
    /// GoTrue answers some token-endpoint errors.
    pub fn oauth_invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::bad_request(ErrorCode::ValidationFailed, description);
        err.oauth_error = Some("invalid_request");
        err
    }

    /// An OAuth-style 400 with GoTrue's own `error` text: its `id_token` grant answers
    /// `{"error": "invalid request", "error_description": ...}` (with a space) and
    /// `"invalid nonce"`.
    pub fn oauth(error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        let mut err = Self::bad_request(ErrorCode::ValidationFailed, description);
        err.oauth_error = Some(error);
        err
    }

    /// A server-side failure: the client sees a generic message, the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut err = Self::new(
            Kind::Internal,
            ErrorCode::UnexpectedFailure,
            "Unexpected failure, please check server logs for more information",
        );
        err.cause = Some(cause.to_string());
        err
    }

    /// A server-side failure with GoTrue's own message for it (a provider that failed, say);
    /// the cause goes to the log.
    pub fn internal_with_message(message: impl Into<Cow<'static, str>>, cause: impl std::fmt::Display) -> Self {
        let mut err = Self::new(Kind::Internal, ErrorCode::UnexpectedFailure, message);
        err.cause = Some(cause.to_string());
        err
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn weak_password_reasons(&self) -> Option<&[&'static str]> {
        self.weak_password_reasons.as_deref()
    }

    pub fn oauth_error(&self) -> Option<&'static str> {
        self.oauth_error
    }

    /// The logged-only cause of a server-side failure.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}: {}", self.kind, self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
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
            _ => Error::internal(err),
        }
    }
}

/// SQLSTATEs that mean "the database cannot serve us right now" rather than a bug: connection
/// exceptions (08), operator intervention such as a shutdown or terminated backend (57P),
/// too many connections (53300), and a database not accepting connections (55000).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "55000"
}

fn database_unavailable(err: &sqlx::Error) -> Error {
    tracing::warn!(error = %err, "database unavailable");
    Error::unavailable(
        ErrorCode::ServiceUnavailable,
        "Database is unavailable, please retry after a moment.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_the_cause() {
        let err = Error::internal("connection string with password=hunter2");
        assert!(!err.message().contains("hunter2"));
        assert_eq!(err.cause(), Some("connection string with password=hunter2"));
        assert!(err.kind().is_server_error());
    }

    #[test]
    fn weak_passwords_carry_their_reasons() {
        let err = Error::weak_password("Password should be at least 6 characters.", vec!["length"]);
        assert_eq!(err.kind(), Kind::Unprocessable);
        assert_eq!(err.weak_password_reasons(), Some(&["length"][..]));
    }
}
