//! The before-user-created hook (`GOTRUE_HOOK_BEFORE_USER_CREATED_*`, GoTrue's newest): every
//! new user (sign-up, anonymous, magic link or OTP, OAuth and ID token, admin, invite) is
//! shown to the hook before its row is written, so that a refusal leaves nothing behind. An
//! allow-list of email domains is the usual use. The hook refuses with GoTrue's error object
//! (`{"error": {"http_code": 403, "message": "..."}}`) or `{"decision": "reject", "message"}`.
//!
//! The after-user-created hook (`GOTRUE_HOOK_AFTER_USER_CREATED_*`) is told about a new user
//! once the transaction that made it has committed, as GoTrue's `triggerAfterUserCreated`:
//! a Postgres function runs in a transaction of its own, and an error from the hook is the
//! client's error while the user stays.

use serde_json::{Value, json};
use sqlx::PgConnection;

use uuid::Uuid;

use crate::auth::hook_user;
use crate::db::Pool;
use crate::db::users::{self, NewUser};
use crate::error::{Error, ErrorCode, Kind};
use crate::hooks::Hook;

/// The message of a `reject` decision that gives none.
pub const DEFAULT_REJECTION_MESSAGE: &str = "User creation was rejected by a hook";

/// Runs `hook` (`AccountRules::before_user_created`), if one is set, on `user` about to be inserted on `conn` (the request's
/// transaction, so a Postgres hook's own writes go with the user).
pub async fn before_user_created(
    conn: &mut PgConnection,
    hook: Option<&Hook>,
    user: &NewUser<'_>,
) -> Result<(), Error> {
    let Some(hook) = hook else {
        return Ok(());
    };
    let output = hook.call(conn, json!({ "user": user_object(user) })).await?;
    if output.get("decision").and_then(Value::as_str) == Some("reject") {
        let message = output
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(DEFAULT_REJECTION_MESSAGE);
        return Err(Error::new(
            Kind::Forbidden,
            ErrorCode::UnexpectedFailure,
            message.to_owned(),
        ));
    }
    Ok(())
}

/// Runs `hook` (`AccountRules::after_user_created`), if one is set, on the committed user
/// `user_id`, read afresh with its identities.
pub async fn after_user_created(db: &Pool, hook: Option<&Hook>, user_id: Uuid) -> Result<(), Error> {
    let Some(hook) = hook else {
        return Ok(());
    };
    let mut tx = db.begin().await?;
    let user = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or_else(|| Error::internal("new user vanished before the after-user-created hook"))?;
    let input = json!({ "user": hook_user::load(&mut tx, &user).await? });
    hook.call(&mut tx, input).await?;
    tx.commit().await?;
    Ok(())
}

/// GoTrue's answer on `/signup` (and the OTP sign-up that goes through it) when the
/// after-user-created hook fails: a 500, whatever the hook said; the user stays.
pub fn signup_hook_failed(err: Error) -> Error {
    Error::internal_with_message("Error invoking hook", err)
}

/// The user as GoTrue's user object shows it, before it exists: no identities yet, nothing
/// confirmed or signed in.
fn user_object(user: &NewUser<'_>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({
        "id": user.id,
        "aud": user.aud,
        "role": user.role,
        "email": user.email.unwrap_or_default(),
        "phone": user.phone.unwrap_or_default(),
        "app_metadata": user.app_metadata,
        "user_metadata": user.user_metadata,
        "identities": [],
        "created_at": now,
        "updated_at": now,
        "is_anonymous": user.is_anonymous,
    })
}
