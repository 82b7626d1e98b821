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

/// A session's refresh-token counter and authentication methods, read under the row lock
/// that refreshes take, so that an MFA upgrade and a refresh of one session run one after
/// the other.
#[derive(Debug, FromRow)]
pub struct LockedSession {
    pub aal: String,
    pub refresh_token_counter: i64,
    pub amr: Value,
}

pub async fn lock(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid) -> sqlx::Result<Option<LockedSession>> {
    sqlx::query_as(
        "select aal, refresh_token_counter, amr from _auth_sessions where id = $1 and user_id = $2 for update",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// An MFA verification: the session is `aal2` through `factor_id` with the methods `amr`.
/// Every refresh token it had is deleted and `token_hash` (number `counter`) becomes its only
/// one, so that a refresh token handed out before the verification can never return an aal2
/// session (GoTrue moves the counter on by two for the same reason). One statement.
pub async fn upgrade_to_aal2(
    db: impl PgExecutor<'_>,
    session: Uuid,
    user_id: Uuid,
    factor_id: Uuid,
    amr: &Value,
    token_hash: &str,
    counter: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "with dropped as ( \
             delete from _auth_refresh_tokens where session_id = $1 \
         ), upgraded as ( \
             update _auth_sessions set aal = 'aal2', factor_id = $3, amr = $4, \
                 refresh_token_counter = $6, updated_at = now() \
             where id = $1 \
         ) \
         insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter) values ($5, $2, $1, $6)",
    )
    .bind(session)
    .bind(user_id)
    .bind(factor_id)
    .bind(amr)
    .bind(token_hash)
    .bind(counter)
    .execute(db)
    .await?;
    Ok(())
}

/// GoTrue's `InvalidateSessionsWithAALLessThan(aal2)`, after a successful verification: the
/// user's sessions that have not passed MFA end.
pub async fn delete_below_aal2(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from _auth_sessions where user_id = $1 and aal not in ('aal2', 'aal3')")
            .bind(user_id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// GoTrue's `DowngradeSessionsToAAL1`, when a factor goes: the sessions that reached aal2
/// through it are aal1 again, without the factor's method in their `amr`.
pub async fn downgrade_factor_sessions(db: impl PgExecutor<'_>, factor_id: Uuid, method: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update _auth_sessions set aal = 'aal1', factor_id = null, updated_at = now(), \
             amr = coalesce((select jsonb_agg(e.entry order by e.n) \
                             from jsonb_array_elements(amr) with ordinality as e(entry, n) \
                             where e.entry ->> 'method' is distinct from $2), '[]'::jsonb) \
         where factor_id = $1",
    )
    .bind(factor_id)
    .bind(method)
    .execute(db)
    .await?
    .rows_affected())
}
