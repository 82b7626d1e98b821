//! Sessions: starting one (new session row, first refresh token, access token), refreshing
//! one (rotation under a row lock), and minting access tokens.

use std::net::IpAddr;

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::jwt::{AccessClaims, AmrEntry, new_jti};
use crate::auth::refresh::{self, Decision, Presented};
use crate::db::audit::{self, Action};
use crate::db::sessions::{NewSession, SessionRow};
use crate::db::users::UserRow;
use crate::db::{refresh_tokens, sessions, users};
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
/// `password`, `anonymous`, `otp`, ...). Runs inside the caller's transaction; returns the
/// user with `last_sign_in_at` updated.
pub async fn start(
    conn: &mut PgConnection,
    state: &AppState,
    user: &UserRow,
    method: &str,
    client: &Client,
) -> Result<(Tokens, UserRow), ApiError> {
    let session_id = Uuid::new_v4();
    let amr = vec![AmrEntry {
        method: method.to_owned(),
        timestamp: Utc::now().timestamp(),
    }];
    let amr_json = serde_json::to_value(&amr).map_err(ApiError::internal)?;
    sessions::insert(
        &mut *conn,
        &NewSession {
            id: session_id,
            user_id: user.id,
            amr: &amr_json,
            user_agent: client.user_agent.as_deref(),
            ip: client.ip,
        },
    )
    .await?;
    let refresh_token = state.refresh_key.token(session_id, 0);
    refresh_tokens::insert(&mut *conn, &refresh::hash(&refresh_token), user.id, session_id, 0, None).await?;
    let user = users::touch_last_sign_in(&mut *conn, user.id).await?;
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(
            &user,
            Action::Login,
            Some(json!({ "provider": provider_of(&user) })),
            &client.ip_string(),
        ),
    )
    .await?;
    let tokens = mint(state, &user, session_id, "aal1", amr, refresh_token)?;
    Ok((tokens, user))
}

/// The `refresh_token` grant. Concurrent refreshes of one session are serialised by a row
/// lock on the session; see `auth::refresh` for why they all get the same next token.
pub async fn refresh(state: &AppState, presented_token: &str, client: &Client) -> Result<(Tokens, UserRow), ApiError> {
    if !refresh::looks_valid(presented_token) {
        return Err(ApiError::bad_request(
            ErrorCode::RefreshTokenNotFound,
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    }
    let presented_hash = refresh::hash(presented_token);
    let mut tx = state.db.begin().await?;
    let Some(found) = refresh_tokens::find_and_lock_session(&mut *tx, &presented_hash).await? else {
        return Err(ApiError::bad_request(
            ErrorCode::RefreshTokenNotFound,
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    };
    let now = Utc::now();
    let user = users::find_by_id(&mut *tx, found.user_id).await?.ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::SessionNotFound,
            "Invalid Refresh Token: No Valid Session Found",
        )
    })?;
    if user.is_banned(now) {
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
    let refresh_token = match decision {
        Decision::Rotate => rotate(&mut tx, state, &found, found.session_counter + 1).await?,
        Decision::ReturnCurrent => {
            let current = state.refresh_key.token(found.session_id, found.session_counter);
            if refresh_tokens::is_live(&mut *tx, &refresh::hash(&current)).await? {
                current
            } else {
                // The live token was derived with another key (the JWT secret changed):
                // move the chain on instead, still leaving exactly one live token.
                rotate(&mut tx, state, &found, found.session_counter + 1).await?
            }
        }
        Decision::Reject { revoke_session } => {
            if revoke_session {
                sessions::delete(&mut *tx, found.session_id).await?;
                audit::insert(
                    &mut *tx,
                    audit::Entry::by_user(
                        &user,
                        Action::TokenRevoked,
                        Some(json!({ "reason": "refresh_token_reused" })),
                        &client.ip_string(),
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
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(&user, Action::TokenRefreshed, None, &client.ip_string()),
    )
    .await?;
    let session = sessions::find(&mut *tx, found.session_id)
        .await?
        .ok_or_else(|| ApiError::internal("session vanished while locked"))?;
    tx.commit().await?;
    let tokens = mint(state, &user, session.id, &session.aal, amr_of(&session), refresh_token)?;
    Ok((tokens, user))
}

async fn rotate(
    tx: &mut PgConnection,
    state: &AppState,
    found: &refresh_tokens::LockedToken,
    next_counter: i64,
) -> Result<String, ApiError> {
    let token = state.refresh_key.token(found.session_id, next_counter);
    refresh_tokens::rotate(
        &mut *tx,
        found.session_id,
        found.user_id,
        &found.token_hash,
        &refresh::hash(&token),
        next_counter,
    )
    .await?;
    Ok(token)
}

fn amr_of(session: &SessionRow) -> Vec<AmrEntry> {
    serde_json::from_value(session.amr.clone()).unwrap_or_default()
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
