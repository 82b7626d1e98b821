//! `_auth_refresh_tokens`: rows hold only `hex(sha256(token))`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::db::audit;
use crate::db::identities::{IdentityRow, identities_json};
use crate::db::users::{UserRow, user_columns};

/// A presented refresh token with the state of its session, read under a row lock on the
/// session so that concurrent refreshes of one session run one after the other, together with
/// everything the answer needs (the user and their identities, the session's aal and amr).
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
    pub session_aal: String,
    pub session_amr: Value,
    #[sqlx(flatten)]
    pub user: UserRow,
    pub identities: Json<Vec<IdentityRow>>,
}

/// One round trip: the token and its session (locked), the user and the user's identities.
/// A token's user always exists (tokens are deleted with their user), so the join cannot
/// lose a token. The user row is read at the statement's snapshot, like the token row.
pub async fn find_and_lock_session(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<Option<LockedToken>> {
    sqlx::query_as(concat!(
        "select l.*, ",
        user_columns!(),
        ", ",
        identities_json!("l.user_id"),
        " as identities \
         from (select t.token_hash, t.user_id, t.session_id, t.counter, t.revoked, \
                 t.updated_at as token_updated_at, s.refresh_token_counter as session_counter, \
                 s.not_after as session_not_after, s.aal as session_aal, s.amr as session_amr \
               from _auth_refresh_tokens t join _auth_sessions s on s.id = t.session_id \
               where t.token_hash = $1 \
               for update of s) l \
         join _auth_users on _auth_users.id = l.user_id"
    ))
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Rotation: every live token of the session is revoked, the session's counter moves on and
/// the new token is stored, with the audit entry that records it, in one statement.
pub async fn rotate_and_record(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    user_id: Uuid,
    parent_hash: &str,
    new_hash: &str,
    new_counter: i64,
    entry: &audit::Entry<'_>,
) -> sqlx::Result<()> {
    let query = sqlx::query(concat!(
        "with revoked as ( \
             update _auth_refresh_tokens set revoked = true, updated_at = now() \
             where session_id = $1 and revoked = false \
         ), moved as ( \
             update _auth_sessions set refresh_token_counter = $5, refreshed_at = now(), updated_at = now() \
             where id = $1 \
         ), recorded as (",
        audit::insert_entry_sql!("$6", "$7", "$8"),
        ") \
         insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent) \
         values ($4, $2, $1, $5, $3)",
    ));
    let query = query
        .bind(session_id)
        .bind(user_id)
        .bind(parent_hash)
        .bind(new_hash)
        .bind(new_counter);
    entry.bind(query).execute(db).await?;
    Ok(())
}

#[derive(Debug, FromRow)]
pub struct CurrentAndPresented {
    /// The session's current token is stored and not revoked.
    pub current_is_live: bool,
    /// The presented token is still stored.
    pub presented_exists: bool,
}

/// Whether the token hashed `current_hash` is the live one of its session, and whether the
/// token hashed `presented_hash` still exists, at this statement's snapshot (newer than the
/// locking read's, which a concurrent change of the session may have outdated).
pub async fn current_and_presented(
    db: impl PgExecutor<'_>,
    current_hash: &str,
    presented_hash: &str,
) -> sqlx::Result<CurrentAndPresented> {
    sqlx::query_as(
        "select exists (select 1 from _auth_refresh_tokens where token_hash = $1 and revoked = false) \
                    as current_is_live, \
                exists (select 1 from _auth_refresh_tokens where token_hash = $2) as presented_exists",
    )
    .bind(current_hash)
    .bind(presented_hash)
    .fetch_one(db)
    .await
}
