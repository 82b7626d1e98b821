//! The before-user-created hook (`GOTRUE_HOOK_BEFORE_USER_CREATED_*`, GoTrue's newest): every
//! new user (sign-up, anonymous, magic link or OTP, OAuth and ID token, admin, invite) is
//! shown to the hook before its row is written, so that a refusal leaves nothing behind. An
//! allow-list of email domains is the usual use. The hook refuses with GoTrue's error object
//! (`{"error": {"http_code": 403, "message": "..."}}`) or `{"decision": "reject", "message"}`.

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::db::users::NewUser;
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
