//! `_auth_users`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::db::identities::{IdentityRow, identities_json};

/// Every column a response or a decision needs (not `instance_id`, `is_super_admin`).
macro_rules! user_columns {
    () => {
        "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, \
    confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at, \
    email_change_confirm_status, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, \
    updated_at, phone, phone_confirmed_at, phone_change, phone_change_sent_at, confirmed_at, \
    banned_until, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous"
    };
}
pub(crate) use user_columns;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub aud: String,
    pub role: String,
    pub email: Option<String>,
    pub encrypted_password: Option<String>,
    pub email_confirmed_at: Option<DateTime<Utc>>,
    pub invited_at: Option<DateTime<Utc>>,
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    pub recovery_sent_at: Option<DateTime<Utc>>,
    pub email_change: Option<String>,
    pub email_change_sent_at: Option<DateTime<Utc>>,
    pub email_change_confirm_status: i16,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub raw_app_meta_data: Value,
    pub raw_user_meta_data: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub phone: Option<String>,
    pub phone_confirmed_at: Option<DateTime<Utc>>,
    pub phone_change: Option<String>,
    pub phone_change_sent_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub banned_until: Option<DateTime<Utc>>,
    pub reauthentication_sent_at: Option<DateTime<Utc>>,
    pub is_sso_user: bool,
    pub deleted_at: Option<DateTime<Utc>>,
    pub is_anonymous: bool,
}

impl UserRow {
    pub fn is_banned(&self, now: DateTime<Utc>) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }

    pub fn email_or_empty(&self) -> &str {
        self.email.as_deref().unwrap_or("")
    }
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    pub role: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub encrypted_password: Option<&'a str>,
    pub email_confirmed: bool,
    pub phone_confirmed: bool,
    pub confirmation_sent: bool,
    pub app_metadata: &'a Value,
    pub user_metadata: &'a Value,
    pub is_anonymous: bool,
}

pub async fn insert(db: impl PgExecutor<'_>, user: &NewUser<'_>) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "insert into _auth_users (id, aud, role, email, phone, encrypted_password, email_confirmed_at, \
             confirmation_sent_at, raw_app_meta_data, raw_user_meta_data, is_anonymous, phone_confirmed_at) \
         values ($1, $2, $3, $4, $5, $6, case when $7 then now() end, case when $8 then now() end, $9, $10, $11, \
             case when $12 then now() end) \
         returning ",
        user_columns!(),
        ""
    ))
    .bind(user.id)
    .bind(user.aud)
    .bind(user.role)
    .bind(user.email)
    .bind(user.phone)
    .bind(user.encrypted_password)
    .bind(user.email_confirmed)
    .bind(user.confirmation_sent)
    .bind(user.app_metadata)
    .bind(user.user_metadata)
    .bind(user.is_anonymous)
    .bind(user.phone_confirmed)
    .fetch_one(db)
    .await
}

pub async fn find_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(concat!("select ", user_columns!(), " from _auth_users where id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Emails are compared case-insensitively (the unique index is on `lower(email)`).
pub async fn find_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        " from _auth_users where lower(email) = lower($1) and is_sso_user = false"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

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

/// Whether another user already holds `email`.
pub async fn email_taken(db: impl PgExecutor<'_>, email: &str, except: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from _auth_users where lower(email) = lower($1) and id <> $2 and is_sso_user = false)",
    )
    .bind(email)
    .bind(except)
    .fetch_one(db)
    .await
}

#[derive(FromRow)]
pub struct UserWithSession {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub session_exists: bool,
}

/// The user and whether `session_id` is one of their sessions, in one round trip (every
/// authenticated request does this).
pub async fn find_with_session(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> sqlx::Result<Option<UserWithSession>> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        ", exists (select 1 from _auth_sessions s where s.id = $2 and s.user_id = _auth_users.id) as session_exists \
         from _auth_users where id = $1"
    ))
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(db)
    .await
}

#[derive(FromRow)]
pub struct UserWithIdentities {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub identities: Json<Vec<IdentityRow>>,
}

#[derive(FromRow)]
pub struct UserWithSessionAndIdentities {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub session_exists: bool,
    pub identities: Json<Vec<IdentityRow>>,
}

/// [`find_with_session`] plus the user's identities, still one round trip (`GET /user`).
pub async fn find_with_session_and_identities(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> sqlx::Result<Option<UserWithSessionAndIdentities>> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        ", exists (select 1 from _auth_sessions s where s.id = $2 and s.user_id = _auth_users.id) as session_exists, ",
        identities_json!("_auth_users.id"),
        " as identities from _auth_users where id = $1"
    ))
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(db)
    .await
}

/// The user row, locked until the end of the transaction (one email flow at a time per user,
/// so that the send-frequency check cannot be raced).
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        " from _auth_users where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(db)
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

/// `%filter%` for `ilike ... escape '\'`: `%`, `_` and `\` in the filter match themselves.
/// GoTrue passes them on as wildcards, so its `filter=%` lists everyone and `filter=_` matches
/// any single character; an admin UI that forwards what a person typed should not do that.
fn contains_pattern(filter: &str) -> String {
    let mut pattern = String::with_capacity(filter.len() + 2);
    pattern.push('%');
    for c in filter.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of users for the admin list, newest first unless `ascending`, optionally
/// filtered by a case-insensitive substring of the email or `full_name` (GoTrue's `filter`).
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: Option<&str>,
    ascending: bool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<UserRow>> {
    let sql = if ascending {
        concat!(
            "select ",
            user_columns!(),
            " from _auth_users where $1::text is null or email ilike $1 escape '\\' \
             or raw_user_meta_data ->> 'full_name' ilike $1 escape '\\' \
             order by created_at asc, id limit $2 offset $3"
        )
    } else {
        concat!(
            "select ",
            user_columns!(),
            " from _auth_users where $1::text is null or email ilike $1 escape '\\' \
             or raw_user_meta_data ->> 'full_name' ilike $1 escape '\\' \
             order by created_at desc, id limit $2 offset $3"
        )
    };
    sqlx::query_as(sql)
        .bind(filter.map(contains_pattern))
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await
}

pub async fn count(db: impl PgExecutor<'_>, filter: Option<&str>) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from _auth_users where $1::text is null or email ilike $1 escape '\\' \
         or raw_user_meta_data ->> 'full_name' ilike $1 escape '\\'",
    )
    .bind(filter.map(contains_pattern))
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

/// Admin changes applied as they are given; `None` leaves a column alone.
#[derive(Debug, Default)]
pub struct AdminChanges<'a> {
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub role: Option<&'a str>,
    pub confirm_email: bool,
    pub confirm_phone: bool,
    /// `Some(None)` lifts a ban.
    pub banned_until: Option<Option<chrono::DateTime<chrono::Utc>>>,
}

pub async fn apply_admin_changes(
    db: impl PgExecutor<'_>,
    id: Uuid,
    changes: &AdminChanges<'_>,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set \
             email = coalesce($2, email), \
             phone = coalesce($3, phone), \
             role = coalesce($4, role), \
             email_confirmed_at = case when $5 then coalesce(email_confirmed_at, now()) else email_confirmed_at end, \
             phone_confirmed_at = case when $6 then coalesce(phone_confirmed_at, now()) else phone_confirmed_at end, \
             banned_until = case when $7 then $8 else banned_until end, \
             updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(changes.email)
    .bind(changes.phone)
    .bind(changes.role)
    .bind(changes.confirm_email)
    .bind(changes.confirm_phone)
    .bind(changes.banned_until.is_some())
    .bind(changes.banned_until.flatten())
    .fetch_one(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_users where id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected())
}

/// GoTrue's soft delete: the row stays (for foreign keys and history) but can no longer sign
/// in, and its email and phone are freed.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update _auth_users set email = null, phone = null, encrypted_password = null, \
             raw_app_meta_data = '{}'::jsonb, raw_user_meta_data = '{}'::jsonb, \
             deleted_at = now(), updated_at = now() \
         where id = $1",
    )
    .bind(id)
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn phone_taken(db: impl PgExecutor<'_>, phone: &str, except: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from _auth_users where phone = $1 and id <> $2)")
        .bind(phone)
        .bind(except)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_wildcards_are_escaped() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern("%"), r"%\%%");
        assert_eq!(contains_pattern("a_b"), r"%a\_b%");
        assert_eq!(contains_pattern(r"c:\x"), r"%c:\\x%");
        assert_eq!(contains_pattern("é%"), r"%é\%%");
    }
}
