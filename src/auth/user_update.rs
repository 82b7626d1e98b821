//! `PUT /user`: the signed-in user changes their metadata, password (with
//! `current_password` and the reauthentication nonce when required), email address or phone
//! number (proven by a code texted to the new number), in one transaction.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::accounts;
use crate::auth::email::{self, Action as MailAction, Outgoing};
use crate::auth::email_verify::{self, CheckedNonce, Codes};
use crate::auth::jwt::AmrEntry;
use crate::auth::outbox::{Outbox, PhoneUse};
use crate::auth::password::{self, Hasher, PasswordUse, Verification};
use crate::auth::phone::{self, send::Text};
use crate::auth::pkce::{self, Challenge};
use crate::auth::session::Client;
use crate::config::PasswordConfig;
use crate::db::Pool;
use crate::db::audit::{self, Action};
use crate::db::identities::{self, IdentityRow};
use crate::db::users::{self, UserRow};
use crate::db::{one_time_tokens, sessions};
use crate::error::{Error, ErrorCode, Result};

/// What `PUT /user` needs, and its rules.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub codes: &'a Codes,
    pub outbox: &'a Outbox,
    pub hasher: &'a Hasher,
    /// The password policy (`GOTRUE_PASSWORD_*`).
    pub policy: &'a PasswordConfig,
    /// `GOTRUE_JWT_ADMIN_ROLES`: the roles that may send `app_metadata`.
    pub admin_roles: &'a [String],
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`: a password change from a
    /// session older than 24 hours needs the nonce sent by `GET /reauthenticate`.
    pub require_reauthentication: bool,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD`.
    pub require_current_password: bool,
    /// `GOTRUE_MAILER_AUTOCONFIRM`: an anonymous user's new address applies at once.
    pub autoconfirm: bool,
}

/// The signed-in user and the session of their token.
pub struct Caller<'a> {
    pub user: &'a UserRow,
    pub session_id: Option<Uuid>,
    /// The session has passed MFA (`aal2`).
    pub aal2: bool,
}

/// What the request asks to change; `None` and blank values change nothing.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub email: Option<&'a str>,
    pub password: Option<&'a str>,
    pub current_password: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// Shallow-merged into `user_metadata`; a `null` value deletes the key.
    pub data: Option<&'a Value>,
    /// Only admins may send it (it is not applied here).
    pub app_metadata: Option<&'a Value>,
    pub phone: Option<&'a str>,
    /// `sms` or `whatsapp`: how the new number's code travels.
    pub channel: Option<&'a str>,
    /// PKCE for the email-change links.
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    /// The validated target of the email-change links.
    pub redirect_to: &'a str,
}

/// Applies `changes` to the caller's account; returns the user with their identities.
pub async fn update(
    deps: &Deps<'_>,
    caller: &Caller<'_>,
    client: &Client,
    changes: &Changes<'_>,
) -> Result<(UserRow, Vec<IdentityRow>)> {
    let challenge = check_request(deps, caller, changes)?;
    let new_phone = new_phone(deps, caller.user, changes).await?;
    let new_password_hash = new_password_hash(deps, caller, changes).await?;
    let new_email = match accounts::optional_email(changes.email)? {
        Some(email) => (Some(email.as_str()) != caller.user.email.as_deref()).then_some(email),
        None => None,
    };
    // The nonce is checked before the update's transaction, so that a wrong one stays counted
    // while the update fails and leaves nothing behind.
    let nonce = match &new_password_hash {
        Some(_) => reauthentication_nonce(deps, caller, changes.nonce).await?,
        None => None,
    };
    let ip = client.ip_string();
    let mut tx = deps.db.begin().await?;
    let mut user = caller.user.clone();
    if let Some(data) = changes.data.filter(|d| d.is_object()) {
        user = users::merge_user_metadata(&mut *tx, user.id, data).await?;
    }
    if let Some(hash) = &new_password_hash {
        user = change_password(&mut tx, deps.codes, caller, hash, nonce, &ip).await?;
    }
    if let Some(email) = &new_email {
        let out = Outgoing {
            redirect_to: changes.redirect_to,
            pkce: challenge.as_ref(),
            check_frequency: true,
        };
        user = change_email(&mut tx, deps, &user, email, &out, &ip).await?;
    }
    if let Some((phone, channel)) = &new_phone {
        user = change_phone(&mut tx, deps, &user, phone, *channel, &ip).await?;
    }
    record(&mut tx, &user, Action::UserModified, &ip).await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok((user, identities))
}

/// What can be refused before reading anything; returns the PKCE challenge.
fn check_request(deps: &Deps<'_>, caller: &Caller<'_>, changes: &Changes<'_>) -> Result<Option<Challenge>> {
    let user = caller.user;
    if changes.app_metadata.is_some_and(|v| !v.is_null()) && !deps.admin_roles.contains(&user.role) {
        return Err(Error::forbidden(
            ErrorCode::NotAdmin,
            "Updating app_metadata requires admin privileges",
        ));
    }
    check_assurance(caller, changes)?;
    if changes.data.is_some_and(|d| !d.is_null() && !d.is_object()) {
        return Err(Error::validation("data must be a JSON object"));
    }
    if changes.phone.is_some_and(|p| !p.trim().is_empty()) {
        deps.outbox.sms(PhoneUse::ChangeNumber)?;
    }
    pkce::parse_params(changes.code_challenge, changes.code_challenge_method)
}

/// GoTrue: once a user has a verified factor, their password, email and phone change only
/// from an aal2 session (401 `insufficient_aal`), or a stolen password would be enough to
/// take the account over and switch MFA off.
fn check_assurance(caller: &Caller<'_>, changes: &Changes<'_>) -> Result<()> {
    let user = caller.user;
    if caller.aal2 || !user.has_verified_factor() {
        return Ok(());
    }
    let password = changes.password.is_some_and(|p| !p.is_empty());
    let email = accounts::optional_email(changes.email)?.is_some_and(|e| Some(e.as_str()) != user.email.as_deref());
    let phone = changes
        .phone
        .map(str::trim)
        .is_some_and(|p| !p.is_empty() && Some(p) != user.phone.as_deref());
    if password || email || phone {
        return Err(Error::unauthorized(
            ErrorCode::InsufficientAal,
            "AAL2 session is required to update email or password when MFA is enabled.",
        ));
    }
    Ok(())
}

/// The hash of the new password, once `current_password` (when given or required), the
/// policy and "not the same as before" are satisfied.
async fn new_password_hash(deps: &Deps<'_>, caller: &Caller<'_>, changes: &Changes<'_>) -> Result<Option<String>> {
    let new_password = changes.password.filter(|p| !p.is_empty());
    let current_password = changes.current_password.filter(|p| !p.is_empty());
    // Both lengths before any hashing.
    if let Some(password) = new_password {
        password::check_length(password, PasswordUse::New)?;
    }
    if let Some(password) = current_password {
        password::check_length(password, PasswordUse::Presented)?;
    }
    check_current_password(deps, caller, current_password, new_password.is_some()).await?;
    let Some(password) = new_password else {
        return Ok(None);
    };
    password::check_new(deps.policy, password)?;
    if let Some(stored) = caller.user.encrypted_password.as_deref().filter(|s| !s.is_empty()) {
        let same = deps
            .hasher
            .verify(password, Some(stored))
            .await
            .map_err(Error::internal)?;
        if matches!(same, Verification::Valid { .. }) {
            return Err(Error::unprocessable(
                ErrorCode::SamePassword,
                "New password should be different from the old password.",
            ));
        }
    }
    Ok(Some(deps.hasher.hash(password).await.map_err(Error::internal)?))
}

/// `current_password`: when given, it must be the user's password, whatever else the request
/// changes (GoTrue checks it only when it requires it: Latchkey never ignores a wrong one).
/// With `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD`, a password change needs
/// it, as in GoTrue, unless the user has no password yet (signed up with OAuth, anonymously or
/// by invitation) or the session was started from an emailed link or code (a recovery: the
/// user has forgotten it). The check is a hash, run on the hashing threads.
async fn check_current_password(
    deps: &Deps<'_>,
    caller: &Caller<'_>,
    current_password: Option<&str>,
    changing_password: bool,
) -> Result<()> {
    let stored = caller.user.encrypted_password.as_deref().filter(|s| !s.is_empty());
    let Some(current_password) = current_password else {
        if changing_password
            && deps.require_current_password
            && stored.is_some()
            && !is_recovery_session(deps.db, caller.session_id).await?
        {
            return Err(Error::bad_request(
                ErrorCode::CurrentPasswordRequired,
                "Current password required when setting new password.",
            ));
        }
        return Ok(());
    };
    // Without a stored password this checks against the dummy hash: never valid.
    let verification = deps
        .hasher
        .verify(current_password, stored)
        .await
        .map_err(Error::internal)?;
    if !matches!(verification, Verification::Valid { .. }) {
        // GoTrue's code; its message repeats the "required" one, ours says what is wrong.
        return Err(Error::bad_request(
            ErrorCode::CurrentPasswordInvalid,
            "Current password is incorrect.",
        ));
    }
    Ok(())
}

/// GoTrue's `Session.IsRecovery`: the session was started by an emailed link or code (amr
/// `otp`, `magiclink` or `recovery`).
async fn is_recovery_session(db: &Pool, session_id: Option<Uuid>) -> Result<bool> {
    let session = match session_id {
        Some(id) => sessions::find(db, id).await?,
        None => None,
    };
    let amr: Vec<AmrEntry> = session
        .and_then(|s| serde_json::from_value(s.amr).ok())
        .unwrap_or_default();
    Ok(amr
        .iter()
        .any(|entry| matches!(entry.method.as_str(), "otp" | "magiclink" | "recovery")))
}

/// The checked reauthentication nonce, when a password change needs one: GoTrue's
/// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION` rule, unless the session was
/// started in the last 24 hours.
async fn reauthentication_nonce(
    deps: &Deps<'_>,
    caller: &Caller<'_>,
    nonce: Option<&str>,
) -> Result<Option<CheckedNonce>> {
    if !deps.require_reauthentication {
        return Ok(None);
    }
    let session = match caller.session_id {
        Some(id) => sessions::find(deps.db, id).await?,
        None => None,
    };
    if session.is_some_and(|s| Utc::now() <= s.created_at + Duration::hours(24)) {
        return Ok(None);
    }
    let nonce = nonce.map(str::trim).unwrap_or("");
    if nonce.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::ReauthenticationNeeded,
            "Password update requires reauthentication",
        ));
    }
    // Twilio Verify made a texted nonce and checks it; never a test number's fixed one.
    let phone = caller.user.phone.as_deref().unwrap_or("");
    let test_number = deps.outbox.sms_settings().test_otp_for(phone, Utc::now()).is_some();
    let gateway = deps
        .outbox
        .sms(PhoneUse::SendCode)
        .ok()
        .and_then(|texter| texter.gateway_checks_codes())
        .filter(|_| !test_number);
    Ok(Some(
        email_verify::check_nonce(deps.codes, caller.user, nonce, gateway).await?,
    ))
}

/// The new password, with what it ends: the nonce, links and codes mailed before (a recovery
/// link above all), and every other session of the user (GoTrue does the same).
async fn change_password(
    conn: &mut PgConnection,
    codes: &Codes,
    caller: &Caller<'_>,
    hash: &str,
    nonce: Option<CheckedNonce>,
    ip: &str,
) -> Result<UserRow> {
    let user_id = caller.user.id;
    if let Some(nonce) = nonce {
        email_verify::use_nonce(&mut *conn, codes, nonce).await?;
    }
    let user = users::set_password(&mut *conn, user_id, hash).await?;
    one_time_tokens::delete_all_for_user(&mut *conn, user_id).await?;
    match caller.session_id {
        Some(current) => sessions::delete_others(&mut *conn, user_id, current).await?,
        None => sessions::delete_all_for_user(&mut *conn, user_id).await?,
    };
    record(conn, &user, Action::UserUpdatePassword, ip).await?;
    Ok(user)
}

/// A new address. The change waits in `new_email` until confirmed through the links mailed
/// to the new address (and, with secure email change, to the current one too). An anonymous
/// user with autoconfirm gets the address at once, as in GoTrue.
async fn change_email(
    conn: &mut PgConnection,
    deps: &Deps<'_>,
    user: &UserRow,
    email: &str,
    out: &Outgoing<'_>,
    ip: &str,
) -> Result<UserRow> {
    if users::email_taken(&mut *conn, email, user.id).await? {
        return Err(accounts::email_exists());
    }
    let user = users::set_email_change(&mut *conn, user.id, email).await?;
    if user.is_anonymous && deps.autoconfirm {
        return email_verify::apply_email_change_now(conn, deps.codes, &user, ip).await;
    }
    Ok(email::send(conn, deps.outbox, user.id, MailAction::EmailChange, out)
        .await?
        .user)
}

/// The new number (normalised) and the channel of its code, when the request changes it; a
/// number another account has is refused (`phone_exists`), as in GoTrue.
async fn new_phone(
    deps: &Deps<'_>,
    user: &UserRow,
    changes: &Changes<'_>,
) -> Result<Option<(String, crate::sms::Channel)>> {
    let Some(phone) = phone::optional(changes.phone)?.filter(|p| Some(p.as_str()) != user.phone.as_deref()) else {
        return Ok(None);
    };
    let channel = phone::channel(changes.channel)?;
    if users::phone_taken(deps.db, &phone, user.id).await? {
        return Err(accounts::phone_exists());
    }
    Ok(Some((phone, channel)))
}

/// A new number. It waits in `phone_change` until the code texted to it is verified
/// (`type: phone_change`); the current number stays the user's until then. With
/// `GOTRUE_SMS_AUTOCONFIRM` it applies at once, as in GoTrue.
async fn change_phone(
    conn: &mut PgConnection,
    deps: &Deps<'_>,
    user: &UserRow,
    phone: &str,
    channel: crate::sms::Channel,
    ip: &str,
) -> Result<UserRow> {
    if deps.outbox.sms_settings().autoconfirm {
        users::set_phone_change(&mut *conn, user.id, phone).await?;
        return phone::verify::apply_phone_change_now(conn, user.id, ip).await;
    }
    let confirms = Default::default();
    let sent = phone::send::send_code(conn, deps.outbox, user.id, Text::PhoneChange, phone, channel, &confirms).await?;
    Ok(sent.user)
}

async fn record(conn: &mut PgConnection, user: &UserRow, action: Action, ip: &str) -> Result<()> {
    audit::insert(conn, audit::Entry::by_user(user, action, Some(json!({})), ip)).await?;
    Ok(())
}
