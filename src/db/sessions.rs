//! `_auth_sessions`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::db::audit;
use crate::db::identities::identities_json;
use crate::db::users::{UserWithIdentities, user_columns};

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub aal: String,
    pub not_after: Option<DateTime<Utc>>,
    pub amr: Value,
    pub refresh_token_counter: i64,
}

pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub amr: &'a Value,
    pub user_agent: Option<&'a str>,
    pub ip: Option<std::net::IpAddr>,
}

/// Everything a new session writes, in one statement (one round trip, atomic on its own):
/// the session, its first refresh token (number 0), the audit entry, and the user's
/// `last_sign_in_at`. Returns the updated user with their identities.
pub async fn start(
    db: impl PgExecutor<'_>,
    session: &NewSession<'_>,
    refresh_token_hash: &str,
    entry: &audit::Entry<'_>,
) -> sqlx::Result<UserWithIdentities> {
    let query = sqlx::query(concat!(
        "with new_session as ( \
             insert into _auth_sessions (id, user_id, amr, user_agent, ip) values ($1, $2, $3, $4, $5::inet) \
         ), first_token as ( \
             insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter) values ($6, $2, $1, 0) \
         ), recorded as (",
        audit::insert_entry_sql!("$7", "$8", "$9"),
        ") \
         update _auth_users set last_sign_in_at = now(), updated_at = now() where id = $2 returning ",
        user_columns!(),
        ", ",
        identities_json!("_auth_users.id"),
        " as identities"
    ))
    .bind(session.id)
    .bind(session.user_id)
    .bind(session.amr)
    .bind(session.user_agent)
    .bind(session.ip.map(|ip| ip.to_string()))
    .bind(refresh_token_hash);
    entry
        .bind(query)
        .try_map(|row: PgRow| UserWithIdentities::from_row(&row))
        .fetch_one(db)
        .await
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "select id, user_id, created_at, aal, not_after, amr, refresh_token_counter from _auth_sessions where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_sessions where id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn delete_all_for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_sessions where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn delete_others(db: impl PgExecutor<'_>, user_id: Uuid, keep: Uuid) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from _auth_sessions where user_id = $1 and id <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Ends the session a refresh token (live or not) belongs to.
pub async fn delete_by_refresh_token(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from _auth_sessions where id = (select session_id from _auth_refresh_tokens where token_hash = $1)",
    )
    .bind(token_hash)
    .execute(db)
    .await?
    .rows_affected())
}
