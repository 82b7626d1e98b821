//! Extractors for the caller's identity: a signed-in user (GoTrue's `requireAuthentication`)
//! or an admin (`requireAdminCredentials`).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::api::extract::bearer_token;
use crate::auth::jwt::{IncomingClaims, JwtError};
use crate::db::users::{self, UserRow};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A request made with a valid user access token: the token verifies, its user exists and
/// is not banned, and its session (when it names one) still exists.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRow,
    pub session_id: Option<Uuid>,
    pub claims: IncomingClaims,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = verified_claims(parts, state)?;
        let sub = claims
            .sub
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::forbidden(ErrorCode::BadJwt, "invalid claim: missing sub claim"))?;
        let user_id = Uuid::parse_str(sub)
            .map_err(|_| ApiError::bad_request(ErrorCode::BadJwt, "invalid claim: sub claim must be a UUID"))?;
        let session_id = match claims.session_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
                ApiError::bad_request(ErrorCode::BadJwt, "invalid claim: session_id claim must be a UUID")
            })?),
        }
        .filter(|id| !id.is_nil());
        let found = users::find_with_session(&state.db, user_id, session_id)
            .await?
            .ok_or_else(|| ApiError::forbidden(ErrorCode::UserNotFound, "User from sub claim in JWT does not exist"))?;
        if session_id.is_some() && !found.session_exists {
            return Err(ApiError::forbidden(
                ErrorCode::SessionNotFound,
                "Session from session_id claim in JWT does not exist",
            ));
        }
        if found.user.is_banned(chrono::Utc::now()) {
            return Err(ApiError::forbidden(ErrorCode::UserBanned, "User is banned"));
        }
        Ok(AuthUser {
            user: found.user,
            session_id,
            claims,
        })
    }
}

/// The verified claims of the request's bearer token (GoTrue's status codes: 401 without a
/// token, 403 for one that does not verify).
pub fn verified_claims(parts: &Parts, state: &AppState) -> Result<IncomingClaims, ApiError> {
    let token = bearer_token(parts).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::NoAuthorization,
            "This endpoint requires a valid Bearer token",
        )
    })?;
    state.jwt.verify(token).map_err(|err| match err {
        JwtError::Expired => ApiError::forbidden(
            ErrorCode::BadJwt,
            "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired",
        ),
        JwtError::Invalid(reason) => ApiError::forbidden(
            ErrorCode::BadJwt,
            format!("invalid JWT: unable to parse or verify signature, {reason}"),
        ),
    })
}
