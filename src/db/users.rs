//! `_auth_users`: the row, its columns, creation and the reads. The writes are grouped by
//! concern: `profile` (metadata, password, phone), `email` (the address and its
//! confirmation), `admin` (the admin API's listing, changes and deletion).

mod admin;
pub mod current;
mod email;
mod phone;
mod profile;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

pub use admin::{AdminChanges, apply_admin_changes, count, delete, list, soft_delete};
pub use email::{
    SentAt, apply_email_change, claim, clear_anonymous, confirm_email, replace_email, set_email_change,
    set_email_change_confirm_status, stamp_sent,
};
pub use phone::{apply_phone_change, claim_by_phone, confirm_phone, find_by_phone, set_phone_change};
pub use profile::{clear_phone, merge_app_metadata, merge_user_metadata, set_password};

use crate::db::identities::IdentityRow;
use crate::db::mfa_factors::FactorRow;

/// Every column a response or a decision needs (not `instance_id`, `is_super_admin`), and
/// the user's MFA factors (without secrets): like GoTrue's eagerly loaded `User`, every user
/// read knows its factors, so no response can leave them out and no rule can miss them. The
/// query must name the table `_auth_users` (not an alias).
macro_rules! user_columns {
    () => {
        concat!(
            "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, \
    confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at, \
    email_change_confirm_status, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, \
    updated_at, phone, phone_confirmed_at, phone_change, phone_change_sent_at, confirmed_at, \
    banned_until, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous, ",
            $crate::db::mfa_factors::factors_json!("_auth_users.id"),
            " as factors"
        )
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
    /// Oldest first.
    pub factors: Json<Vec<FactorRow>>,
}

impl UserRow {
    /// GoTrue's `HasMFAEnabled`: the user can reach aal2.
    pub fn has_verified_factor(&self) -> bool {
        self.factors.iter().any(FactorRow::is_verified)
    }

    pub fn is_banned(&self, now: DateTime<Utc>) -> bool {
        banned_at(self.banned_until, now)
    }

    pub fn email_or_empty(&self) -> &str {
        self.email.as_deref().unwrap_or("")
    }
}

/// Whether a user whose ban runs until `banned_until` is banned at `now` (the rule
/// `rotate_live` also writes in SQL, by the database's clock).
pub fn banned_at(banned_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    banned_until.is_some_and(|until| until > now)
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

pub async fn phone_taken(db: impl PgExecutor<'_>, phone: &str, except: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from _auth_users where phone = $1 and id <> $2)")
        .bind(phone)
        .bind(except)
        .fetch_one(db)
        .await
}

#[derive(FromRow)]
pub struct UserWithSession {
    #[sqlx(flatten)]
    pub user: UserRow,
    /// The assurance level of `session_id`, `None` when it is not one of the user's sessions.
    pub session_aal: Option<String>,
}

/// SQL for the `aal` of the session `$2` when it belongs to the user (`null` otherwise).
macro_rules! session_aal {
    () => {
        "(select s.aal from _auth_sessions s where s.id = $2 and s.user_id = _auth_users.id) as session_aal"
    };
}
pub(crate) use session_aal;

/// The user and the assurance level of `session_id` if it is one of their sessions, in one
/// round trip (every authenticated request does this).
pub async fn find_with_session(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> sqlx::Result<Option<UserWithSession>> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        ", ",
        session_aal!(),
        " from _auth_users where id = $1"
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
