//! The `refresh_token` grant (GoTrue's `RefreshTokenGrant`): a rotation in one statement in
//! the common case, the decision under the session's lock otherwise.

use std::borrow::Cow;

use chrono::Utc;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::{Client, Sessions, Tokens};
use crate::auth::jwt::{AmrEntry, TokenUser};
use crate::auth::refresh::{self, Decision, Presented};
use crate::db::audit::{self, Action};
use crate::db::hot::HotPool;
use crate::db::identities::IdentityRow;
use crate::db::refresh_tokens::RotationRow;
use crate::db::users::UserRow;
use crate::db::{refresh_tokens, sessions};
use crate::error::{Error, ErrorCode};

/// A refreshed session: its tokens and its user, with the user's identities.
pub enum Refreshed {
    /// Rotated by the one statement: the user as Postgres sent it, for the answer to be
    /// written straight from it.
    Rotated { tokens: Tokens, row: RotationRow },
    /// Decided on the locking path.
    Decided {
        tokens: Tokens,
        user: Box<UserRow>,
        identities: Vec<IdentityRow>,
    },
}

/// The `refresh_token` grant.
///
/// The common case — the live token of its session, in this server's format, and no custom
/// access token hook — costs one round trip ([`rotate_live`]). Everything else takes the
/// locking path: `BEGIN`, the same read under a row lock on the session, the decision,
/// `COMMIT`. The lock serialises concurrent refreshes of one session; see `auth::refresh` for
/// why they all get the same next token (a refresh that lost the race of the one statement
/// finds its token rotated there). Tokens in other formats (imported from GoTrue, or issued
/// before this format) take the locking path once; the token they get back is in this one.
pub async fn refresh(
    hot: &HotPool,
    sessions: &Sessions,
    presented_token: &str,
    client: &Client,
) -> Result<Refreshed, Error> {
    if !refresh::looks_valid(presented_token) {
        return Err(token_not_found());
    }
    let presented_hash = refresh::hash(presented_token);
    let mut conn = hot.acquire().await?;
    if sessions.access_token_hook.is_none()
        && let Some(position) = refresh::position(presented_token)
        && let Some(refreshed) = rotate_live(&mut conn, sessions, &presented_hash, position, client).await?
    {
        conn.release().await?;
        metrics::counter!("latchkey_token_refreshes_total").increment(1);
        return Ok(refreshed);
    }
    let mut tx = conn.begin().await?;
    let found = refresh_tokens::find_and_lock_session(&mut *tx, &presented_hash)
        .await?
        .ok_or_else(token_not_found)?;
    let now = Utc::now();
    check_usable(&found, now)?;
    let presented = Presented {
        counter: found.counter,
        revoked: found.revoked,
        revoked_at: found.token_updated_at,
    };
    let rules = &sessions.rules;
    let decision = refresh::decide(
        &presented,
        found.session_counter,
        now,
        rules.reuse_interval,
        rules.rotation_enabled,
    );
    let next = next_token(&mut tx, sessions, &found, decision, &client.ip_string()).await?;
    let Some(refresh_token) = next else {
        // Committed also for a refused token: a reuse outside the interval ends the session.
        tx.commit().await?;
        conn.release().await?;
        return Err(Error::bad_request(
            ErrorCode::RefreshTokenAlreadyUsed,
            "Invalid Refresh Token: Already Used",
        ));
    };
    let amr: Vec<AmrEntry> = serde_json::from_value(found.session_amr.clone()).unwrap_or_default();
    // Minted before the commit (GoTrue's order): a custom access token hook that refuses
    // leaves the refresh token unrotated.
    let session = (found.session_id, found.session_aal.as_str());
    let tokens = sessions
        .tokens_for(
            &mut tx,
            (&found.user).into(),
            session,
            amr,
            refresh_token,
            "token_refresh",
        )
        .await?;
    tx.commit().await?;
    conn.release().await?;
    metrics::counter!("latchkey_token_refreshes_total").increment(1);
    Ok(Refreshed::Decided {
        tokens,
        user: Box::new(found.user),
        identities: found.identities.0,
    })
}

/// The common case in one round trip: `None` when the token is not its session's live one
/// (or the user is banned, the session expired, or it changed between the statement's read and
/// its update); then the locking path decides, and answers with the right error. The tokens
/// are minted after the rotation: without a hook, nothing can refuse them.
async fn rotate_live(
    conn: &mut PgConnection,
    sessions: &Sessions,
    presented_hash: &str,
    position: refresh::ChainPosition,
    client: &Client,
) -> Result<Option<Refreshed>, Error> {
    let next = sessions.refresh_key.token(position.session_id, position.counter + 1);
    let row = refresh_tokens::rotate_live(
        &mut *conn,
        presented_hash,
        (position.session_id, position.counter),
        &refresh::hash(&next),
        &client.ip_string(),
    )
    .await?
    .ok_or_else(token_not_found)?;
    if !row.rotated()? {
        return Ok(None);
    }
    let read = row.claims()?;
    let amr: Vec<AmrEntry> = serde_json::from_str(read.session_amr.0.get()).unwrap_or_default();
    let user = TokenUser {
        id: read.id,
        aud: read.aud,
        role: read.role,
        email: read.email,
        phone: read.phone,
        app_metadata: Cow::Owned(read.raw_app_meta_data.0),
        user_metadata: Cow::Owned(read.raw_user_meta_data.0),
        is_anonymous: read.is_anonymous,
    };
    let session = (read.session_id, read.session_aal);
    let tokens = sessions
        .tokens_for(&mut *conn, user, session, amr, next, "token_refresh")
        .await?;
    Ok(Some(Refreshed::Rotated { tokens, row }))
}

fn token_not_found() -> Error {
    Error::bad_request(
        ErrorCode::RefreshTokenNotFound,
        "Invalid Refresh Token: Refresh Token Not Found",
    )
}

/// A banned user, or a session past its `not_after`, refreshes nothing.
fn check_usable(found: &refresh_tokens::LockedToken, now: chrono::DateTime<Utc>) -> Result<(), Error> {
    if found.user.is_banned(now) {
        return Err(Error::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    if found.session_not_after.is_some_and(|not_after| now > not_after) {
        return Err(Error::bad_request(
            ErrorCode::SessionExpired,
            "Invalid Refresh Token: Session Expired",
        ));
    }
    Ok(())
}

/// Carries out `decision` under the session's lock: the refresh token to hand out, with its
/// audit entry written, or `None` for a refused one (after ending the session when the rules
/// say a reuse must).
async fn next_token(
    tx: &mut PgConnection,
    sessions: &Sessions,
    found: &refresh_tokens::LockedToken,
    decision: Decision,
    ip: &str,
) -> Result<Option<String>, Error> {
    let refreshed = audit::Entry::by_user(&found.user, Action::TokenRefreshed, None, ip);
    match decision {
        Decision::Rotate => Ok(Some(rotate(tx, sessions, found, &refreshed).await?)),
        Decision::ReturnCurrent => {
            let current = sessions.refresh_key.token(found.session_id, found.session_counter);
            let state =
                refresh_tokens::current_and_presented(&mut *tx, &refresh::hash(&current), &found.token_hash).await?;
            // The presented token was deleted while this refresh waited for the session's
            // lock (the session row it read is the new one, its token row the old one): an
            // MFA verification withdraws every older token of its session, and none of them
            // may get the aal2 session's current token.
            if !state.presented_exists {
                return Err(token_not_found());
            }
            if state.current_is_live {
                audit::insert(&mut *tx, refreshed).await?;
                return Ok(Some(current));
            }
            // The live token was derived with another key (the JWT secret changed): move the
            // chain on instead, still leaving exactly one live token.
            Ok(Some(rotate(tx, sessions, found, &refreshed).await?))
        }
        Decision::Reject { revoke_session } => {
            if revoke_session {
                sessions::delete(&mut *tx, found.session_id).await?;
                let reason = Some(json!({ "reason": "refresh_token_reused" }));
                audit::insert(
                    &mut *tx,
                    audit::Entry::by_user(&found.user, Action::TokenRevoked, reason, ip),
                )
                .await?;
            }
            Ok(None)
        }
    }
}

/// Moves the session's chain on to its next token, recording `refreshed` in the same statement.
async fn rotate(
    tx: &mut PgConnection,
    sessions: &Sessions,
    found: &refresh_tokens::LockedToken,
    refreshed: &audit::Entry<'_>,
) -> Result<String, Error> {
    let next_counter = found.session_counter + 1;
    let token = sessions.refresh_key.token(found.session_id, next_counter);
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
