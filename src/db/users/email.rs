//! `_auth_users` writes of the email flows: sends stamped, confirmations, email changes, and
//! an unconfirmed account handed to whoever proved its address.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{UserRow, user_columns};

/// Starts an email change: the new address waits in `email_change` until confirmed.
/// `email_change_sent_at` is stamped when the mails go out (`auth::email::send`).
pub async fn set_email_change(db: impl PgExecutor<'_>, id: Uuid, new_email: &str) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set email_change = $2, email_change_confirm_status = 0, updated_at = now() \
         where id = $1 returning ",
        user_columns!(),
        ""
    ))
    .bind(id)
    .bind(new_email)
    .fetch_one(db)
    .await
}

/// The `*_sent_at` column stamped when a mail of one kind goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentAt {
    Confirmation,
    Recovery,
    EmailChange,
    Reauthentication,
    Invite,
}

pub async fn stamp_sent(db: impl PgExecutor<'_>, id: Uuid, which: SentAt) -> sqlx::Result<UserRow> {
    // One static statement per column: no SQL is built from input.
    let sql = match which {
        SentAt::Confirmation => concat!(
            "update _auth_users set confirmation_sent_at = now(), updated_at = now() where id = $1 returning ",
            user_columns!()
        ),
        SentAt::Recovery => concat!(
            "update _auth_users set recovery_sent_at = now(), updated_at = now() where id = $1 returning ",
            user_columns!()
        ),
        SentAt::EmailChange => concat!(
            "update _auth_users set email_change_sent_at = now(), updated_at = now() where id = $1 returning ",
            user_columns!()
        ),
        SentAt::Reauthentication => concat!(
            "update _auth_users set reauthentication_sent_at = now(), updated_at = now() where id = $1 returning ",
            user_columns!()
        ),
        SentAt::Invite => concat!(
            "update _auth_users set invited_at = coalesce(invited_at, now()), confirmation_sent_at = now(), \
             updated_at = now() where id = $1 returning ",
            user_columns!()
        ),
    };
    sqlx::query_as(sql).bind(id).fetch_one(db).await
}

/// GoTrue's `User.Confirm`: the email is confirmed and `user_metadata.email_verified` set.
pub async fn confirm_email(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set email_confirmed_at = coalesce(email_confirmed_at, now()), \
             raw_user_meta_data = raw_user_meta_data || '{\"email_verified\": true}'::jsonb, updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// An anonymous user who now has a confirmed email is a permanent user.
pub async fn clear_anonymous(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set is_anonymous = false, updated_at = now() where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// First of two confirmations of a secure email change.
pub async fn set_email_change_confirm_status(db: impl PgExecutor<'_>, id: Uuid, status: i16) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set email_change_confirm_status = $2, updated_at = now() where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(status)
    .fetch_one(db)
    .await
}

/// GoTrue's `ConfirmEmailChange`: the pending address becomes the email (confirmed), the
/// user stops being anonymous.
pub async fn apply_email_change(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set email = email_change, email_change = null, email_change_confirm_status = 0, \
             email_confirmed_at = coalesce(email_confirmed_at, now()), is_anonymous = false, \
             raw_app_meta_data = case when raw_app_meta_data ? 'provider' then raw_app_meta_data \
                 else raw_app_meta_data || '{\"provider\": \"email\", \"providers\": [\"email\"]}'::jsonb end, \
             updated_at = now() \
         where id = $1 and email_change is not null returning ",
        user_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// A new primary email taken over from one of the user's identities (GoTrue's
/// `UpdateUserEmailFromIdentities`, `None` for an identity without one). Mails sent and
/// changes started for the old address no longer count (GoTrue's `ClearAllPendingTokens`; the
/// token rows themselves are in `_auth_one_time_tokens`). Unless `confirmed`, the address is
/// no longer confirmed and `user_metadata.email_verified` turns false.
pub async fn replace_email(
    db: impl PgExecutor<'_>,
    id: Uuid,
    email: Option<&str>,
    confirmed: bool,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set email = $2, \
             email_confirmed_at = case when $3 then email_confirmed_at end, \
             raw_user_meta_data = case when $3 then raw_user_meta_data \
                 else raw_user_meta_data || '{\"email_verified\": false}'::jsonb end, \
             confirmation_sent_at = null, recovery_sent_at = null, email_change = null, \
             email_change_sent_at = null, email_change_confirm_status = 0, phone_change = null, \
             phone_change_sent_at = null, reauthentication_sent_at = null, updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(email)
    .bind(confirmed)
    .fetch_one(db)
    .await
}

/// Hands an unconfirmed account to whoever proved its address (`auth::proven_address`): the
/// address is confirmed, the password and `user_metadata` replaced, and the user is no longer
/// anonymous.
pub async fn claim(
    db: impl PgExecutor<'_>,
    id: Uuid,
    password_hash: Option<&str>,
    user_metadata: &Value,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set email_confirmed_at = coalesce(email_confirmed_at, now()), \
             encrypted_password = $2, raw_user_meta_data = $3 || '{\"email_verified\": true}'::jsonb, \
             is_anonymous = false, updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(password_hash)
    .bind(user_metadata)
    .fetch_one(db)
    .await
}
