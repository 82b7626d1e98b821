//! The admin's view of a user's factors (`/admin/users/{id}/factors`): list, rename, delete.

use crate::db::Pool;
use serde_json::json;

use super::{amr_method, check_name_length, factor_id, factor_not_found, name_conflict};
use crate::auth::admin_users::{self, AdminActor};
use crate::db::audit::Action;
use crate::db::mfa_factors::{self, FactorRow};
use crate::db::{self as database, sessions};
use crate::error::Result;

/// The user's factors, oldest first.
pub async fn list(db: &Pool, raw_user_id: &str) -> Result<Vec<FactorRow>> {
    let user = admin_users::find(db, raw_user_id).await?;
    Ok(mfa_factors::for_user(db, user.id).await?)
}

/// Deletes the factor; the sessions that reached aal2 through it are aal1 again, as when the
/// user unenrols it. Returns the factor as it was.
pub async fn delete(db: &Pool, actor: &AdminActor<'_>, raw_user_id: &str, raw_factor_id: &str) -> Result<FactorRow> {
    let user = admin_users::find(db, raw_user_id).await?;
    let id = factor_id(raw_factor_id)?;
    let mut tx = db.begin().await?;
    let factor = mfa_factors::delete_owned(&mut *tx, id, user.id)
        .await?
        .ok_or_else(factor_not_found)?;
    sessions::downgrade_factor_sessions(&mut *tx, id, amr_method(&factor.factor_type)).await?;
    // GoTrue records this one with the user as the actor; the admin did it.
    actor
        .record(
            &mut tx,
            Action::FactorDeleted,
            json!({ "user_id": user.id, "factor_id": id }),
        )
        .await?;
    tx.commit().await?;
    Ok(factor)
}

/// Renames the factor (a blank name changes nothing, as in GoTrue; `phone` is for phone
/// factors, which Latchkey does not have).
pub async fn rename(
    db: &Pool,
    actor: &AdminActor<'_>,
    raw_user_id: &str,
    raw_factor_id: &str,
    friendly_name: Option<&str>,
) -> Result<FactorRow> {
    let user = admin_users::find(db, raw_user_id).await?;
    let id = factor_id(raw_factor_id)?;
    let name = friendly_name.filter(|n| !n.is_empty());
    if let Some(name) = name {
        check_name_length("friendly_name", name)?;
    }
    let mut tx = db.begin().await?;
    let factor = match name {
        // GoTrue lets the unique index refuse a taken name (a 500 there); a 422 here.
        Some(name) => mfa_factors::set_friendly_name(&mut *tx, id, user.id, name)
            .await
            .map_err(|err| {
                if database::is_unique_violation(&err, mfa_factors::FRIENDLY_NAME_UNIQUE) {
                    name_conflict(name)
                } else {
                    err.into()
                }
            })?,
        None => mfa_factors::find_owned(&mut *tx, id, user.id).await?,
    }
    .ok_or_else(factor_not_found)?;
    let traits = json!({ "user_id": user.id, "factor_id": id, "factor_type": factor.factor_type });
    actor.record(&mut tx, Action::FactorUpdated, traits).await?;
    tx.commit().await?;
    Ok(factor)
}
