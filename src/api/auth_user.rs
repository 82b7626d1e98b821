//! Extractors for the caller's identity: a signed-in user (GoTrue's `requireAuthentication`)
//! or an admin (`requireAdminCredentials`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::extract::bearer_token;
use crate::api::state::AppState;
use crate::auth::jwt::{IncomingClaims, JwtError};
use crate::db::users::current::{CurrentUserRow, UserView};
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Kind};

/// A request made with a valid user access token: the token verifies, its user exists and
/// is not banned, and its session (when it names one) still exists.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRow,
    pub session_id: Option<Uuid>,
    /// The assurance level of the token's session as the session row says now (`aal1`,
    /// `aal2`), not as the token claims it: an unenrolled factor downgrades the session at
    /// once. `None` without a session.
    pub session_aal: Option<String>,
    pub claims: IncomingClaims,
}

impl AuthUser {
    /// Whether the token's session has passed MFA.
    pub fn is_aal2(&self) -> bool {
        self.session_aal.as_deref() == Some("aal2")
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        AuthUser::of_token(bearer_token(parts), state).await
    }
}

impl AuthUser {
    /// [`AuthUser`]'s checks on a bearer token read by the handler (`None`: there was none).
    pub async fn of_token(token: Option<&str>, state: &AppState) -> Result<Self, Error> {
        let (claims, user_id, session_id) = token_subject(token, state)?;
        let mut conn = state.hot.acquire().await?;
        let found = users::find_with_session(&mut *conn, user_id, session_id).await?;
        conn.release().await?;
        let (found, session_aal) = match found {
            Some(f) => (Some((f.user, f.session_aal.is_some())), f.session_aal),
            None => (None, None),
        };
        let user = admit(found, session_id)?;
        Ok(AuthUser {
            user,
            session_id,
            session_aal,
            claims,
        })
    }
}

/// `GET /user`'s caller: [`AuthUser`]'s checks, made on the row as Postgres sent it
/// (`db::users::current`) instead of on a decoded [`UserRow`] (issue #24).
pub struct CurrentUser {
    row: CurrentUserRow,
    session_id: Option<Uuid>,
    pub claims: IncomingClaims,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let (claims, user_id, session_id) = token_subject(bearer_token(parts), state)?;
        let mut conn = state.hot.acquire().await?;
        let row = users::current::find(&mut *conn, user_id, session_id).await?;
        conn.release().await?;
        Ok(CurrentUser {
            row: row.ok_or_else(user_not_found)?,
            session_id,
            claims,
        })
    }
}

impl CurrentUser {
    /// The user's columns, once the session and the ban are checked.
    pub fn view(&self) -> Result<UserView<'_>, Error> {
        let user = self.row.view()?;
        check_session_and_ban(self.session_id, user.session_aal.is_some(), user.banned_until)?;
        Ok(user)
    }
}

/// The verified claims with the user id (`sub`) and session id they name.
fn token_subject(token: Option<&str>, state: &AppState) -> Result<(IncomingClaims, Uuid, Option<Uuid>), Error> {
    let claims = verified_token_claims(token, state)?;
    let sub = claims
        .sub
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::forbidden(ErrorCode::BadJwt, "invalid claim: missing sub claim"))?;
    let user_id = Uuid::parse_str(sub)
        .map_err(|_| Error::bad_request(ErrorCode::BadJwt, "invalid claim: sub claim must be a UUID"))?;
    let session_id = match claims.session_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            Uuid::parse_str(raw)
                .map_err(|_| Error::bad_request(ErrorCode::BadJwt, "invalid claim: session_id claim must be a UUID"))?,
        ),
    }
    .filter(|id| !id.is_nil());
    Ok((claims, user_id, session_id))
}

/// GoTrue's checks on what the database said: the user exists, the session (if named) is
/// theirs and still exists, and the user is not banned.
fn admit(found: Option<(UserRow, bool)>, session_id: Option<Uuid>) -> Result<UserRow, Error> {
    let (user, session_exists) = found.ok_or_else(user_not_found)?;
    check_session_and_ban(session_id, session_exists, user.banned_until)?;
    Ok(user)
}

fn user_not_found() -> Error {
    Error::forbidden(ErrorCode::UserNotFound, "User from sub claim in JWT does not exist")
}

fn check_session_and_ban(
    session_id: Option<Uuid>,
    session_exists: bool,
    banned_until: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    if session_id.is_some() && !session_exists {
        return Err(Error::forbidden(
            ErrorCode::SessionNotFound,
            "Session from session_id claim in JWT does not exist",
        ));
    }
    if users::banned_at(banned_until, Utc::now()) {
        return Err(Error::forbidden(ErrorCode::UserBanned, "User is banned"));
    }
    Ok(())
}

/// The verified claims of the request's bearer token (GoTrue's status codes: 401 without a
/// token, 403 for one that does not verify).
pub fn verified_claims(parts: &Parts, state: &AppState) -> Result<IncomingClaims, Error> {
    verified_token_claims(bearer_token(parts), state)
}

fn verified_token_claims(token: Option<&str>, state: &AppState) -> Result<IncomingClaims, Error> {
    let token = token.ok_or_else(|| {
        Error::new(
            Kind::Unauthorized,
            ErrorCode::NoAuthorization,
            "This endpoint requires a valid Bearer token",
        )
    })?;
    state.sessions.tokens().verify(token).map_err(|err| match err {
        JwtError::Expired => Error::forbidden(
            ErrorCode::BadJwt,
            "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired",
        ),
        JwtError::Invalid(reason) => Error::forbidden(
            ErrorCode::BadJwt,
            format!("invalid JWT: unable to parse or verify signature, {reason}"),
        ),
    })
}
