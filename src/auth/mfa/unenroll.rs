//! `DELETE /factors/{id}`: the user removes one of their factors. A verified factor needs an
//! aal2 session, or a stolen password alone would switch MFA off.

use serde_json::json;
use uuid::Uuid;

use super::{Caller, Deps, amr_method, factor_id, factor_not_found};
use crate::auth::session::Client;
use crate::db::audit::{self, Action};
use crate::db::{mfa_factors, sessions};
use crate::error::{Error, ErrorCode, Result};

/// Returns the id of the factor removed.
pub async fn unenroll(deps: &Deps<'_>, caller: &Caller<'_>, client: &Client, raw_factor_id: &str) -> Result<Uuid> {
    let session_id = caller.session()?;
    let id = factor_id(raw_factor_id)?;
    let user = caller.user;
    let mut tx = deps.db.begin().await?;
    // Factor first, then session: the order verification takes its locks in.
    let factor = mfa_factors::lock_owned(&mut *tx, id, user.id)
        .await?
        .ok_or_else(factor_not_found)?
        .factor;
    let session = sessions::lock(&mut *tx, session_id, user.id).await?.ok_or_else(|| {
        Error::forbidden(
            ErrorCode::SessionNotFound,
            "Session from session_id claim in JWT does not exist",
        )
    })?;
    // GoTrue answers 422 here (and 403 for the same rule at enrolment).
    if factor.is_verified() && session.aal != "aal2" {
        return Err(Error::unprocessable(
            ErrorCode::InsufficientAal,
            "AAL2 required to unenroll verified factor",
        ));
    }
    mfa_factors::delete_owned(&mut *tx, id, user.id).await?;
    let traits = json!({ "factor_id": id, "factor_status": factor.status, "session_id": session_id });
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(user, Action::FactorUnenrolled, Some(traits), &client.ip_string()),
    )
    .await?;
    sessions::downgrade_factor_sessions(&mut *tx, id, amr_method(&factor.factor_type)).await?;
    tx.commit().await?;
    Ok(id)
}
