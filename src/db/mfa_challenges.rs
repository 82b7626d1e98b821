//! `_auth_mfa_challenges`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub factor_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    /// `inet` read as text (`host()`), compared with the verifying client's address.
    pub ip_address: String,
    /// A phone factor's code, hashed (`auth::codes::token_hash`); `None` for TOTP factors
    /// and when the SMS provider checks the code itself.
    pub otp_code: Option<String>,
}

/// A new challenge of `factor_id` from `ip` (with a phone factor's hashed code), and the
/// factor's `last_challenged_at`, in one statement. Returns when it was created.
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    factor_id: Uuid,
    ip: IpAddr,
    otp_code: Option<&str>,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "with challenged as ( \
             update _auth_mfa_factors set last_challenged_at = now() where id = $2 \
         ) \
         insert into _auth_mfa_challenges (id, factor_id, ip_address, otp_code) values ($1, $2, $3::inet, $4) \
         returning created_at",
    )
    .bind(id)
    .bind(factor_id)
    .bind(ip.to_string())
    .bind(otp_code)
    .fetch_one(db)
    .await
}

/// The challenge `id` of `factor_id`, locked until the end of the transaction.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid, factor_id: Uuid) -> sqlx::Result<Option<ChallengeRow>> {
    sqlx::query_as(
        "select id, factor_id, created_at, verified_at, host(ip_address) as ip_address, otp_code \
         from _auth_mfa_challenges where id = $1 and factor_id = $2 for update",
    )
    .bind(id)
    .bind(factor_id)
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from _auth_mfa_challenges where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_verified(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update _auth_mfa_challenges set verified_at = now() where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
