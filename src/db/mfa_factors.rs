//! `_auth_mfa_factors`. [`FactorRow`] is what may be shown; the secret is read only by
//! [`lock_owned`], for the code check.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

/// A factor without its secret. Also `Deserialize`: user queries bring the user's factors
/// along as a JSON array built by [`factors_json!`].
#[derive(Debug, Clone, FromRow, Deserialize)]
pub struct FactorRow {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `""` when the row has none (GoTrue writes `""`; imported rows may hold `null`).
    pub friendly_name: String,
    pub factor_type: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub phone: Option<String>,
    pub last_challenged_at: Option<DateTime<Utc>>,
    pub web_authn_aaguid: Option<Uuid>,
}

impl FactorRow {
    pub fn is_verified(&self) -> bool {
        self.status == VERIFIED
    }
}

pub const VERIFIED: &str = "verified";
pub const UNVERIFIED: &str = "unverified";

/// Everything but the secrets and the WebAuthn data.
macro_rules! factor_columns {
    () => {
        "id, user_id, coalesce(friendly_name, '') as friendly_name, factor_type, status, created_at, \
         updated_at, phone, last_challenged_at, web_authn_aaguid"
    };
}
pub(crate) use factor_columns;

/// SQL for the factors of the user whose id is the SQL expression `$user_id`, oldest first, as
/// a JSON array of [`FactorRow`] objects (`[]` when there are none), so that a query reading a
/// user brings them along in the same round trip, as GoTrue's eager loading does.
macro_rules! factors_json {
    ($user_id:literal) => {
        concat!(
            "coalesce((select json_agg(f order by f.created_at, f.id) from (select ",
            $crate::db::mfa_factors::factor_columns!(),
            " from _auth_mfa_factors where user_id = ",
            $user_id,
            ") f), '[]'::json)"
        )
    };
}
pub(crate) use factors_json;

pub struct NewFactor<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub friendly_name: &'a str,
    pub factor_type: &'a str,
    /// A TOTP factor's secret as stored: base32, or GoTrue's encrypted-string JSON.
    pub secret: Option<&'a str>,
    /// A phone factor's number (E.164 digits without `+`).
    pub phone: Option<&'a str>,
}

pub async fn insert(db: impl PgExecutor<'_>, factor: &NewFactor<'_>) -> sqlx::Result<FactorRow> {
    sqlx::query_as(concat!(
        "insert into _auth_mfa_factors (id, user_id, friendly_name, factor_type, status, secret, phone) \
         values ($1, $2, $3, $4, 'unverified', $5, $6) returning ",
        factor_columns!()
    ))
    .bind(factor.id)
    .bind(factor.user_id)
    .bind(factor.friendly_name)
    .bind(factor.factor_type)
    .bind(factor.secret)
    .bind(factor.phone)
    .fetch_one(db)
    .await
}

/// A user's factors, oldest first.
pub async fn for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<FactorRow>> {
    sqlx::query_as(concat!(
        "select ",
        factor_columns!(),
        " from _auth_mfa_factors where user_id = $1 order by created_at, id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// The factor `id` if `user_id` owns it.
pub async fn find_owned(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid) -> sqlx::Result<Option<FactorRow>> {
    sqlx::query_as(concat!(
        "select ",
        factor_columns!(),
        " from _auth_mfa_factors where id = $1 and user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// A factor with what checking a code needs, locked until the end of the transaction, so
/// that two verifications of one factor run one after the other (a code then works once).
#[derive(FromRow)]
pub struct LockedFactor {
    #[sqlx(flatten)]
    pub factor: FactorRow,
    pub secret: Option<String>,
    pub last_totp_time_step: Option<i64>,
}

/// Without the secret: a `{:?}` in a log line must not leak it.
impl std::fmt::Debug for LockedFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockedFactor")
            .field("factor", &self.factor)
            .field("last_totp_time_step", &self.last_totp_time_step)
            .finish_non_exhaustive()
    }
}

pub async fn lock_owned(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid) -> sqlx::Result<Option<LockedFactor>> {
    sqlx::query_as(concat!(
        "select ",
        factor_columns!(),
        ", secret, last_totp_time_step from _auth_mfa_factors where id = $1 and user_id = $2 for update"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// GoTrue's `DeleteExpiredFactors`, for one user: unverified factors older than `expiry`
/// that were never challenged.
pub async fn delete_expired(db: impl PgExecutor<'_>, user_id: Uuid, expiry: std::time::Duration) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from _auth_mfa_factors f where f.user_id = $1 and f.status <> 'verified' \
         and f.created_at + $2 * interval '1 second' < now() \
         and not exists (select 1 from _auth_mfa_challenges c where c.factor_id = f.id)",
    )
    .bind(user_id)
    .bind(expiry.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected())
}

/// The factor is verified, and `step` (TOTP factors) is the last time step whose code it
/// accepted.
pub async fn mark_verified(db: impl PgExecutor<'_>, id: Uuid, step: Option<i64>) -> sqlx::Result<()> {
    sqlx::query(
        "update _auth_mfa_factors set status = 'verified', \
         last_totp_time_step = coalesce($2, last_totp_time_step), \
         updated_at = case when status = 'verified' then updated_at else now() end where id = $1",
    )
    .bind(id)
    .bind(step)
    .execute(db)
    .await?;
    Ok(())
}

/// GoTrue's `DeleteUnverifiedFactors`: once one factor of a type is verified, the user's other
/// unverified ones of that type go.
pub async fn delete_unverified(db: impl PgExecutor<'_>, user_id: Uuid, factor_type: &str) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from _auth_mfa_factors where user_id = $1 and factor_type = $2 and status = 'unverified'")
            .bind(user_id)
            .bind(factor_type)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// GoTrue's phone enrolment: the user's unverified phone factors for `phone` go before a new
/// one is made.
pub async fn delete_unverified_phone(db: impl PgExecutor<'_>, user_id: Uuid, phone: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from _auth_mfa_factors where user_id = $1 and factor_type = 'phone' \
         and status = 'unverified' and phone = $2",
    )
    .bind(user_id)
    .bind(phone)
    .execute(db)
    .await?
    .rows_affected())
}

/// Deletes the factor; returns it as it was, or `None` if `user_id` owns no such factor.
pub async fn delete_owned(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid) -> sqlx::Result<Option<FactorRow>> {
    sqlx::query_as(concat!(
        "delete from _auth_mfa_factors where id = $1 and user_id = $2 returning ",
        factor_columns!()
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

pub async fn delete_for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_mfa_factors where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected())
}

/// The unique index on `(friendly_name, user_id)` for names that are not blank.
pub const FRIENDLY_NAME_UNIQUE: &str = "_auth_mfa_factors_user_friendly_name_unique";

pub async fn set_friendly_name(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user_id: Uuid,
    name: &str,
) -> sqlx::Result<Option<FactorRow>> {
    sqlx::query_as(concat!(
        "update _auth_mfa_factors set friendly_name = $3, updated_at = now() \
         where id = $1 and user_id = $2 returning ",
        factor_columns!()
    ))
    .bind(id)
    .bind(user_id)
    .bind(name)
    .fetch_optional(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_factor_never_shows_its_secret() {
        let now = Utc::now();
        let locked = LockedFactor {
            factor: FactorRow {
                id: Uuid::nil(),
                user_id: Uuid::nil(),
                friendly_name: "Phone".into(),
                factor_type: "totp".into(),
                status: VERIFIED.into(),
                created_at: now,
                updated_at: now,
                phone: None,
                last_challenged_at: None,
                web_authn_aaguid: None,
            },
            secret: Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
            last_totp_time_step: Some(7),
        };
        let shown = format!("{locked:?}");
        assert!(shown.contains("Phone") && shown.contains('7'), "{shown}");
        assert!(!shown.contains("JBSWY3DP"), "{shown}");
    }
}
