//! `_auth_identities`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::db::json_time;

/// Also `Deserialize`: queries that return a user with their identities in one round trip
/// carry them as a JSON array built by [`identities_json!`].
#[derive(Debug, Clone, FromRow, Deserialize)]
pub struct IdentityRow {
    pub id: Uuid,
    pub provider_id: String,
    pub user_id: Uuid,
    pub identity_data: Value,
    pub provider: String,
    #[serde(default, deserialize_with = "json_time::opt")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "json_time::one")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::one")]
    pub updated_at: DateTime<Utc>,
    pub email: Option<String>,
}

macro_rules! identity_columns {
    () => {
        "id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email"
    };
}
pub(crate) use identity_columns;

/// SQL for the identities of the user whose id is the SQL expression `$user_id`, oldest
/// first, as a JSON array of [`IdentityRow`] objects (`[]` when there are none): lets a query
/// that reads a user bring their identities along instead of a second round trip.
macro_rules! identities_json {
    ($user_id:literal) => {
        concat!(
            "coalesce((select json_agg(i order by i.created_at, i.id) from (select ",
            $crate::db::identities::identity_columns!(),
            " from _auth_identities where user_id = ",
            $user_id,
            ") i), '[]'::json)"
        )
    };
}
pub(crate) use identities_json;

pub async fn insert(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    provider: &str,
    provider_id: &str,
    identity_data: &Value,
) -> sqlx::Result<IdentityRow> {
    sqlx::query_as(concat!(
        "insert into _auth_identities (provider_id, user_id, identity_data, provider, last_sign_in_at) \
         values ($1, $2, $3, $4, now()) returning ",
        identity_columns!(),
        ""
    ))
    .bind(provider_id)
    .bind(user_id)
    .bind(identity_data)
    .bind(provider)
    .fetch_one(db)
    .await
}

/// A user's identities, oldest first (GoTrue orders `app_metadata.providers` this way).
pub async fn for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<IdentityRow>> {
    sqlx::query_as(concat!(
        "select ",
        identity_columns!(),
        " from _auth_identities where user_id = $1 order by created_at, id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Identities of several users at once (the admin list), oldest first.
pub async fn for_users(db: impl PgExecutor<'_>, user_ids: &[Uuid]) -> sqlx::Result<Vec<IdentityRow>> {
    sqlx::query_as(concat!(
        "select ",
        identity_columns!(),
        " from _auth_identities where user_id = any($1) order by created_at, id"
    ))
    .bind(user_ids)
    .fetch_all(db)
    .await
}

pub async fn delete_for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_identities where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected())
}

/// Marks the user's `email` identity for `email` as verified (on email confirmation).
pub async fn mark_email_verified(db: impl PgExecutor<'_>, user_id: Uuid, email: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update _auth_identities set identity_data = identity_data || '{\"email_verified\": true}'::jsonb, \
             updated_at = now() \
         where user_id = $1 and provider = 'email' and email = lower($2)",
    )
    .bind(user_id)
    .bind(email)
    .execute(db)
    .await?
    .rows_affected())
}

/// Points the user's `email` identity at a new address (an email change or an admin edit);
/// returns whether there was one to update.
pub async fn set_email(db: impl PgExecutor<'_>, user_id: Uuid, email: &str, verified: bool) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "update _auth_identities set identity_data = identity_data || jsonb_build_object('email', $2::text, \
             'email_verified', $3::boolean), updated_at = now() \
         where user_id = $1 and provider = 'email'",
    )
    .bind(user_id)
    .bind(email)
    .bind(verified)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// Points the user's `phone` identity at `phone`, verified; returns whether there was one.
pub async fn set_phone(db: impl PgExecutor<'_>, user_id: Uuid, phone: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "update _auth_identities set identity_data = identity_data || jsonb_build_object('phone', $2::text, \
             'phone_verified', true), updated_at = now() \
         where user_id = $1 and provider = 'phone'",
    )
    .bind(user_id)
    .bind(phone)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// The identity a provider's subject belongs to, locked for the update that follows.
pub async fn find_for_update(
    db: impl PgExecutor<'_>,
    provider: &str,
    provider_id: &str,
) -> sqlx::Result<Option<IdentityRow>> {
    sqlx::query_as(concat!(
        "select ",
        identity_columns!(),
        " from _auth_identities where provider = $1 and provider_id = $2 for update"
    ))
    .bind(provider)
    .bind(provider_id)
    .fetch_optional(db)
    .await
}

/// A new sign-in through an existing identity: the provider's current claims replace the old.
pub async fn refresh_data(db: impl PgExecutor<'_>, id: Uuid, identity_data: &Value) -> sqlx::Result<IdentityRow> {
    sqlx::query_as(concat!(
        "update _auth_identities set identity_data = $2, last_sign_in_at = now(), updated_at = now() \
         where id = $1 returning ",
        identity_columns!()
    ))
    .bind(id)
    .bind(identity_data)
    .fetch_one(db)
    .await
}

/// The user's `email` identity (the oldest, should an import have left several), locked for
/// the update that follows.
pub async fn email_identity_for_update(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<IdentityRow>> {
    sqlx::query_as(concat!(
        "select ",
        identity_columns!(),
        " from _auth_identities where user_id = $1 and provider = 'email' order by created_at, id limit 1 for update"
    ))
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Deletes every identity of a user but `keep`; returns the deleted ones.
pub async fn delete_all_except(db: impl PgExecutor<'_>, user_id: Uuid, keep: Uuid) -> sqlx::Result<Vec<IdentityRow>> {
    sqlx::query_as(concat!(
        "delete from _auth_identities where user_id = $1 and id <> $2 returning ",
        identity_columns!()
    ))
    .bind(user_id)
    .bind(keep)
    .fetch_all(db)
    .await
}

/// Deletes one identity of a user; returns whether it existed.
pub async fn delete_one(db: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("delete from _auth_identities where user_id = $1 and id = $2")
            .bind(user_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected()
            > 0,
    )
}
