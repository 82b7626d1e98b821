//! `GET /user`'s read, the hottest authenticated route (issue #24). It gets the user, the
//! assurance level of the token's session and the identities in one round trip, and it keeps
//! the answer as Postgres sent it. Strings are borrowed from the row. The JSON columns
//! (metadata, `identity_data`) stay as their text, with no `serde_json::Value` built. Parsing
//! them into values and writing them out again was the largest part of the request.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

use super::{session_aal, user_columns};
use crate::db::columns::{Columns, read_in_order};
use crate::db::identities::identities_json;
use crate::db::json_time;
use crate::db::mfa_factors::FactorRow;

/// The row of [`find`]; [`CurrentUserRow::view`] reads it.
pub struct CurrentUserRow(PgRow);

/// The user `user_id` with the assurance level of `session_id` if it is one of their
/// sessions, and their identities.
pub async fn find(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> sqlx::Result<Option<CurrentUserRow>> {
    let row = sqlx::query(concat!(
        "select ",
        user_columns!(),
        ", ",
        session_aal!(),
        ", ",
        identities_json!("_auth_users.id"),
        " as identities from _auth_users where id = $1"
    ))
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(CurrentUserRow))
}

impl CurrentUserRow {
    pub fn view(&self) -> sqlx::Result<UserView<'_>> {
        UserView::read(&self.0)
    }
}

/// The columns a response needs, borrowed from the row (`UserRow`'s, read the cheap way).
pub struct UserView<'r> {
    pub id: Uuid,
    pub aud: &'r str,
    pub role: &'r str,
    pub email: Option<&'r str>,
    pub email_confirmed_at: Option<DateTime<Utc>>,
    pub invited_at: Option<DateTime<Utc>>,
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    pub recovery_sent_at: Option<DateTime<Utc>>,
    pub email_change: Option<&'r str>,
    pub email_change_sent_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// The `jsonb` text as Postgres writes it (see [`crate::db::users::current`]).
    pub raw_app_meta_data: Json<&'r RawValue>,
    pub raw_user_meta_data: Json<&'r RawValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub phone: Option<&'r str>,
    pub phone_confirmed_at: Option<DateTime<Utc>>,
    pub phone_change: Option<&'r str>,
    pub phone_change_sent_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub banned_until: Option<DateTime<Utc>>,
    pub reauthentication_sent_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub is_anonymous: bool,
    /// Decoded as everywhere: most users have none, and then it costs nothing.
    pub factors: Json<Vec<FactorRow>>,
    /// The assurance level of the token's session, `None` when it is not one of theirs.
    pub session_aal: Option<&'r str>,
    pub identities: Json<Vec<IdentityView<'r>>>,
}

impl<'r> UserView<'r> {
    /// Reads a row with `user_columns!()`, then `identities`, and a `session_aal`. The
    /// user's columns are read in their order ([`Columns`]).
    pub fn read(row: &'r PgRow) -> sqlx::Result<Self> {
        let mut user = Columns::of(row);
        read_in_order!(user: id, aud, role, email, email_confirmed_at, invited_at, confirmation_sent_at);
        read_in_order!(user: recovery_sent_at, email_change, email_change_sent_at, last_sign_in_at);
        read_in_order!(user: raw_app_meta_data, raw_user_meta_data, created_at, updated_at, phone);
        read_in_order!(user: phone_confirmed_at, phone_change, phone_change_sent_at, confirmed_at);
        read_in_order!(user: banned_until, reauthentication_sent_at, deleted_at, is_anonymous, factors);
        read_in_order!(user: identities);
        Ok(UserView {
            id,
            aud,
            role,
            email,
            email_confirmed_at,
            invited_at,
            confirmation_sent_at,
            recovery_sent_at,
            email_change,
            email_change_sent_at,
            last_sign_in_at,
            raw_app_meta_data,
            raw_user_meta_data,
            created_at,
            updated_at,
            phone,
            phone_confirmed_at,
            phone_change,
            phone_change_sent_at,
            confirmed_at,
            banned_until,
            reauthentication_sent_at,
            deleted_at,
            is_anonymous,
            factors,
            // Before the user's columns in a refresh's row, after them in `GET /user`'s.
            session_aal: row.try_get("session_aal")?,
            identities,
        })
    }
}

/// An identity (`IdentityRow`) borrowed from the row's JSON.
#[derive(Deserialize)]
pub struct IdentityView<'r> {
    pub id: Uuid,
    #[serde(borrow)]
    pub provider_id: Cow<'r, str>,
    pub user_id: Uuid,
    #[serde(borrow)]
    pub identity_data: &'r RawValue,
    #[serde(borrow)]
    pub provider: Cow<'r, str>,
    #[serde(default, deserialize_with = "json_time::opt")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "json_time::one")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::one")]
    pub updated_at: DateTime<Utc>,
    #[serde(borrow)]
    pub email: Option<Cow<'r, str>>,
}
