//! `_auth_sessions`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

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

pub async fn insert(db: impl PgExecutor<'_>, session: &NewSession<'_>) -> sqlx::Result<()> {
    sqlx::query("insert into _auth_sessions (id, user_id, amr, user_agent, ip) values ($1, $2, $3, $4, $5::inet)")
        .bind(session.id)
        .bind(session.user_id)
        .bind(session.amr)
        .bind(session.user_agent)
        .bind(session.ip.map(|ip| ip.to_string()))
        .execute(db)
        .await?;
    Ok(())
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
