//! `_auth_refresh_tokens`: rows hold only `hex(sha256(token))`.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

pub async fn insert(
    db: impl PgExecutor<'_>,
    token_hash: &str,
    user_id: Uuid,
    session_id: Uuid,
    counter: i64,
    parent: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent) values ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(session_id)
    .bind(counter)
    .bind(parent)
    .execute(db)
    .await?;
    Ok(())
}

/// A presented refresh token with the state of its session, read under a row lock on the
/// session so that concurrent refreshes of one session run one after the other.
#[derive(Debug, Clone, FromRow)]
pub struct LockedToken {
    pub token_hash: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub counter: i64,
    pub revoked: bool,
    pub token_updated_at: DateTime<Utc>,
    pub session_counter: i64,
    pub session_not_after: Option<DateTime<Utc>>,
}

pub async fn find_and_lock_session(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<Option<LockedToken>> {
    sqlx::query_as(
        "select t.token_hash, t.user_id, t.session_id, t.counter, t.revoked, t.updated_at as token_updated_at, \
                s.refresh_token_counter as session_counter, s.not_after as session_not_after \
         from _auth_refresh_tokens t join _auth_sessions s on s.id = t.session_id \
         where t.token_hash = $1 \
         for update of s",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Revokes the session's live token(s) and records the next one, moving the session's
/// counter forward: the whole rotation in one statement.
pub async fn rotate(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    user_id: Uuid,
    parent_hash: &str,
    new_hash: &str,
    new_counter: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "with revoked as ( \
             update _auth_refresh_tokens set revoked = true, updated_at = now() \
             where session_id = $1 and revoked = false \
         ), moved as ( \
             update _auth_sessions set refresh_token_counter = $5, refreshed_at = now(), updated_at = now() \
             where id = $1 \
         ) \
         insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent) \
         values ($4, $2, $1, $5, $3)",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(parent_hash)
    .bind(new_hash)
    .bind(new_counter)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether a token with this hash is the live one of its session.
pub async fn is_live(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from _auth_refresh_tokens where token_hash = $1 and revoked = false)")
        .bind(token_hash)
        .fetch_one(db)
        .await
}
