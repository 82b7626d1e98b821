//! `_auth_users` writes and reads of a user's phone number and its confirmation (issue #19).

use sqlx::PgExecutor;
use uuid::Uuid;

use super::{UserRow, user_columns};

/// The user whose number is `phone` (E.164 digits, as stored).
pub async fn find_by_phone(db: impl PgExecutor<'_>, phone: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        " from _auth_users where phone = $1 and is_sso_user = false"
    ))
    .bind(phone)
    .fetch_optional(db)
    .await
}

/// GoTrue's `ConfirmPhone`: the number is confirmed; an anonymous user becomes permanent.
pub async fn confirm_phone(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set phone_confirmed_at = coalesce(phone_confirmed_at, now()), \
             is_anonymous = false, updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// The number a phone change waits to have proven, and when its code went out.
pub async fn set_phone_change(db: impl PgExecutor<'_>, id: Uuid, phone: &str) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set phone_change = $2, phone_change_sent_at = now(), updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(phone)
    .fetch_one(db)
    .await
}

/// GoTrue's `ConfirmPhoneChange`: the pending number becomes the user's, confirmed; an
/// anonymous user becomes permanent. `app_metadata` names the phone provider when it named
/// none.
pub async fn apply_phone_change(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set phone = phone_change, phone_change = '', phone_change_sent_at = null, \
             phone_confirmed_at = now(), is_anonymous = false, \
             raw_app_meta_data = case when raw_app_meta_data ? 'provider' then raw_app_meta_data \
                 else raw_app_meta_data || '{\"provider\": \"phone\", \"providers\": [\"phone\"]}'::jsonb end, \
             updated_at = now() \
         where id = $1 and coalesce(phone_change, '') <> '' returning ",
        user_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// Hands an account whose number was never confirmed to whoever proved it
/// (`auth::phone::verify`): the number is confirmed, the password becomes `password_hash`
/// (none: the prover signs in by code), `user_metadata` is emptied, and the user is no
/// longer anonymous.
pub async fn claim_by_phone(db: impl PgExecutor<'_>, id: Uuid, password_hash: Option<&str>) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set phone_confirmed_at = coalesce(phone_confirmed_at, now()), \
             encrypted_password = $2, raw_user_meta_data = '{}'::jsonb, is_anonymous = false, updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(password_hash)
    .fetch_one(db)
    .await
}
