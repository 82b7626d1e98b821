//! `_auth_users` writes of a user's own data: metadata, password, phone.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{UserRow, user_columns};

/// Shallow-merges `patch` into `raw_user_meta_data`; keys whose value is JSON `null` are
/// removed (GoTrue's `UpdateUserMetaData`).
pub async fn merge_user_metadata(db: impl PgExecutor<'_>, id: Uuid, patch: &Value) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set \
             raw_user_meta_data = (raw_user_meta_data || $2) \
                 - coalesce((select array_agg(key) from jsonb_each($2) where value = 'null'::jsonb), '{}'::text[]), \
             updated_at = now() \
         where id = $1 returning ",
        user_columns!(),
        ""
    ))
    .bind(id)
    .bind(patch)
    .fetch_one(db)
    .await
}

/// Shallow-merges `patch` into `raw_app_meta_data` (`null` deletes a key).
pub async fn merge_app_metadata(db: impl PgExecutor<'_>, id: Uuid, patch: &Value) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set \
             raw_app_meta_data = (raw_app_meta_data || $2) \
                 - coalesce((select array_agg(key) from jsonb_each($2) where value = 'null'::jsonb), '{}'::text[]), \
             updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(patch)
    .fetch_one(db)
    .await
}

pub async fn set_password(db: impl PgExecutor<'_>, id: Uuid, hash: &str) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set encrypted_password = $2, updated_at = now() where id = $1 returning ",
        user_columns!(),
        ""
    ))
    .bind(id)
    .bind(hash)
    .fetch_one(db)
    .await
}

/// The phone identity is gone: so are the number and its confirmation.
pub async fn clear_phone(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set phone = null, phone_confirmed_at = null, updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}
