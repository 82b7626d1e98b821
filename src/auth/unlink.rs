//! Unlinking one of a user's identities (supabase-js `unlinkIdentity`), as GoTrue's
//! `DeleteIdentity` does it in one transaction: an `identity_unlinked` audit entry, the
//! identity gone, the user's email (or phone) brought in line with the identities left, and
//! `app_metadata.providers` refreshed. Any error rolls all of it back.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::identities::{refresh_providers, require_manual_linking, update_from_identities};
use crate::auth::jwt;
use crate::db::Pool;
use crate::db::audit::{self, Action};
use crate::db::identities;
use crate::db::users;
use crate::error::{Error, ErrorCode, Result};

/// `DELETE /user/identities/{identity_id}` from a signed-in user.
#[derive(Debug, Clone, Copy)]
pub struct UnlinkRequest<'a> {
    pub manual_linking_enabled: bool,
    pub mailer_autoconfirm: bool,
    pub user_id: Uuid,
    /// As the client sent it; GoTrue checks it after the settings and the audience.
    pub identity_id: &'a str,
    /// The `aud` of the caller's token, and the audience the request asks for (`X-JWT-Aud`).
    pub token_audience: Option<&'a str>,
    pub requested_audience: Option<&'a str>,
    pub ip: &'a str,
}

/// The checks of GoTrue's `DeleteIdentity`, in its order, then [`unlink`] in one transaction.
pub async fn delete_identity(db: &Pool, request: UnlinkRequest<'_>) -> Result<()> {
    require_manual_linking(request.manual_linking_enabled)?;
    if !jwt::token_audience_matches(request.requested_audience, request.token_audience) {
        return Err(Error::forbidden(
            ErrorCode::UnexpectedAudience,
            "Token audience doesn't match request audience",
        ));
    }
    // GoTrue answers 404 here, not 400 or 422.
    let identity_id = Uuid::parse_str(request.identity_id)
        .map_err(|_| Error::not_found(ErrorCode::ValidationFailed, "identity_id must be an UUID"))?;
    let mut tx = db.begin().await?;
    unlink(
        &mut tx,
        request.user_id,
        identity_id,
        request.mailer_autoconfirm,
        request.ip,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn unlink(
    conn: &mut PgConnection,
    user_id: Uuid,
    identity_id: Uuid,
    mailer_autoconfirm: bool,
    ip: &str,
) -> Result<()> {
    // Locked so that two concurrent unlinks cannot both see a second identity and leave none.
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| Error::forbidden(ErrorCode::UserNotFound, "User from sub claim in JWT does not exist"))?;
    let owned = identities::for_user(&mut *conn, user.id).await?;
    if owned.len() <= 1 {
        return Err(Error::unprocessable(
            ErrorCode::SingleIdentityNotDeletable,
            "User must have at least 1 identity after unlinking",
        ));
    }
    let Some(gone) = owned.iter().find(|i| i.id == identity_id) else {
        return Err(Error::unprocessable(
            ErrorCode::IdentityNotFound,
            "Identity doesn't exist",
        ));
    };
    audit::insert(
        &mut *conn,
        audit::Entry::identity(&user, Action::IdentityUnlinked, gone, ip),
    )
    .await?;
    identities::delete_one(&mut *conn, user.id, gone.id).await?;
    let user_id = user.id;
    if gone.provider == "phone" {
        users::clear_phone(&mut *conn, user_id).await?;
    } else {
        update_from_identities(conn, user, mailer_autoconfirm, email_conflict).await?;
    }
    refresh_providers(conn, user_id).await?;
    Ok(())
}

fn email_conflict() -> Error {
    Error::unprocessable(
        ErrorCode::EmailConflictIdentityNotDeletable,
        "Unable to unlink identity due to email conflict",
    )
}
