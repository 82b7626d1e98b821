//! Sessions: starting one (new session row, first refresh token, access token), refreshing
//! one (rotation under a row lock), and minting access tokens.

use std::net::IpAddr;

use chrono::Utc;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::auth::jwt::{AccessClaims, AmrEntry, new_jti};
use crate::auth::refresh::{self, Decision, Presented};
use crate::db::audit::{self, Action};
use crate::db::identities::IdentityRow;
use crate::db::sessions::NewSession;
use crate::db::users::UserRow;
use crate::db::{refresh_tokens, sessions};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The tokens of a session, ready to be sent.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub expires_at: i64,
}

/// Who asked, for the session row and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn ip_string(&self) -> String {
        self.ip.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// Starts a session for `user` signed in with `method` (GoTrue's amr method names:
/// `password`, `anonymous`, `otp`, ...): one statement, run on the caller's connection or
/// transaction. Returns the user with `last_sign_in_at` updated, and their identities.
pub async fn start(
    conn: &mut PgConnection,
    state: &AppState,
    user: &UserRow,
    method: &str,
    client: &Client,
) -> Result<(Tokens, UserRow, Vec<IdentityRow>), ApiError> {
    let session_id = Uuid::new_v4();
    let amr = vec![AmrEntry {
        method: method.to_owned(),
        timestamp: Utc::now().timestamp(),
    }];
    let amr_json = serde_json::to_value(&amr).map_err(ApiError::internal)?;
    let refresh_token = state.refresh_key.token(session_id, 0);
    let ip = client.ip_string();
    let started = sessions::start(
        &mut *conn,
        &NewSession {
            id: session_id,
            user_id: user.id,
            amr: &amr_json,
            user_agent: client.user_agent.as_deref(),
            ip: client.ip,
        },
        &refresh::hash(&refresh_token),
        &audit::Entry::by_user(user, Action::Login, Some(json!({ "provider": provider_of(user) })), &ip),
    )
    .await?;
    let tokens = mint(state, &started.user, session_id, "aal1", amr, refresh_token)?;
    Ok((tokens, started.user, started.identities.0))
}

/// The `refresh_token` grant. Concurrent refreshes of one session are serialised by a row
/// lock on the session; see `auth::refresh` for why they all get the same next token.
/// Returns the user's identities too (read under the lock, for the response).
///
/// The common case costs four round trips: `BEGIN`, the locking read (token, session, user,
/// identities), the rotation with its audit entry, `COMMIT`.
pub async fn refresh(
    state: &AppState,
    presented_token: &str,
    client: &Client,
) -> Result<(Tokens, UserRow, Vec<IdentityRow>), ApiError> {
    if !refresh::looks_valid(presented_token) {
        return Err(ApiError::bad_request(
            ErrorCode::RefreshTokenNotFound,
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    }
    let presented_hash = refresh::hash(presented_token);
    let mut conn = state.hot.acquire().await?;
    let mut tx = conn.begin().await?;
    let Some(found) = refresh_tokens::find_and_lock_session(&mut *tx, &presented_hash).await? else {
        return Err(ApiError::bad_request(
            ErrorCode::RefreshTokenNotFound,
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    };
    let now = Utc::now();
    if found.user.is_banned(now) {
        return Err(ApiError::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    if found.session_not_after.is_some_and(|not_after| now > not_after) {
        return Err(ApiError::bad_request(
            ErrorCode::SessionExpired,
            "Invalid Refresh Token: Session Expired",
        ));
    }
    let presented = Presented {
        counter: found.counter,
        revoked: found.revoked,
        revoked_at: found.token_updated_at,
    };
    let config = &state.config.refresh;
    let decision = refresh::decide(
        &presented,
        found.session_counter,
        now,
        config.reuse_interval,
        config.rotation_enabled,
    );
    let ip = client.ip_string();
    let refreshed = audit::Entry::by_user(&found.user, Action::TokenRefreshed, None, &ip);
    let refresh_token = match decision {
        Decision::Rotate => rotate(&mut tx, state, &found, &refreshed).await?,
        Decision::ReturnCurrent => {
            let current = state.refresh_key.token(found.session_id, found.session_counter);
            if refresh_tokens::is_live(&mut *tx, &refresh::hash(&current)).await? {
                audit::insert(&mut *tx, refreshed).await?;
                current
            } else {
                // The live token was derived with another key (the JWT secret changed):
                // move the chain on instead, still leaving exactly one live token.
                rotate(&mut tx, state, &found, &refreshed).await?
            }
        }
        Decision::Reject { revoke_session } => {
            if revoke_session {
                sessions::delete(&mut *tx, found.session_id).await?;
                audit::insert(
                    &mut *tx,
                    audit::Entry::by_user(
                        &found.user,
                        Action::TokenRevoked,
                        Some(json!({ "reason": "refresh_token_reused" })),
                        &ip,
                    ),
                )
                .await?;
                tx.commit().await?;
            }
            return Err(ApiError::bad_request(
                ErrorCode::RefreshTokenAlreadyUsed,
                "Invalid Refresh Token: Already Used",
            ));
        }
    };
    tx.commit().await?;
    conn.release();
    let amr: Vec<AmrEntry> = serde_json::from_value(found.session_amr).unwrap_or_default();
    let tokens = mint(
        state,
        &found.user,
        found.session_id,
        &found.session_aal,
        amr,
        refresh_token,
    )?;
    Ok((tokens, found.user, found.identities.0))
}

/// Moves the session's chain on to its next token, recording `refreshed` in the same statement.
async fn rotate(
    tx: &mut PgConnection,
    state: &AppState,
    found: &refresh_tokens::LockedToken,
    refreshed: &audit::Entry<'_>,
) -> Result<String, ApiError> {
    let next_counter = found.session_counter + 1;
    let token = state.refresh_key.token(found.session_id, next_counter);
    refresh_tokens::rotate_and_record(
        &mut *tx,
        found.session_id,
        found.user_id,
        &found.token_hash,
        &refresh::hash(&token),
        next_counter,
        refreshed,
    )
    .await?;
    Ok(token)
}

/// Signs an access token for a session.
pub fn mint(
    state: &AppState,
    user: &UserRow,
    session_id: Uuid,
    aal: &str,
    amr: Vec<AmrEntry>,
    refresh_token: String,
) -> Result<Tokens, ApiError> {
    let now = Utc::now().timestamp();
    let expires_in = state.config.jwt.exp;
    let claims = AccessClaims {
        iss: state.config.jwt.issuer.clone(),
        sub: user.id.to_string(),
        aud: user.aud.clone(),
        exp: now + expires_in,
        iat: now,
        email: user.email.clone().unwrap_or_default(),
        phone: user.phone.clone().unwrap_or_default(),
        app_metadata: user.raw_app_meta_data.clone(),
        user_metadata: user.raw_user_meta_data.clone(),
        role: user.role.clone(),
        aal: aal.to_owned(),
        amr,
        session_id: session_id.to_string(),
        is_anonymous: user.is_anonymous,
        jti: new_jti(),
    };
    let access_token = state.jwt.sign(&claims).map_err(ApiError::internal)?;
    Ok(Tokens {
        access_token,
        refresh_token,
        expires_in,
        expires_at: now + expires_in,
    })
}

fn provider_of(user: &UserRow) -> String {
    user.raw_app_meta_data
        .get("provider")
        .and_then(|p| p.as_str())
        .unwrap_or("anonymous")
        .to_owned()
}
