//! `GET /user` and `PUT /user`: the signed-in user reads and changes their account.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::{AuthUser, AuthUserWithIdentities};
use crate::api::extract::{Json, RequestedAudience};
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::UserResponse;
use crate::auth::accounts;
use crate::auth::email::{self, Action as MailAction, Outgoing};
use crate::auth::jwt::AmrEntry;
use crate::auth::outbox::PhoneUse;
use crate::auth::password::{self, PasswordUse, Verification};
use crate::auth::session::Client;
use crate::auth::{email_verify, jwt, pkce};
use crate::db::audit::{self, Action};
use crate::db::users::UserRow;
use crate::db::{identities, one_time_tokens, sessions, users};
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_user, put_user))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/user", tag = "user",
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 400, description = "A token whose sub or session_id is not a UUID; validation_failed when the token has no audience or not the one `X-JWT-Aud` asks for", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, unknown user or session", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_user(
    found: AuthUserWithIdentities,
    RequestedAudience(audience): RequestedAudience,
) -> Result<axum::Json<UserResponse>> {
    if !jwt::token_audience_matches(audience.as_deref(), found.auth.claims.aud.as_deref()) {
        return Err(Error::validation("Token audience doesn't match request audience"));
    }
    Ok(axum::Json(UserResponse::new(found.auth.user, found.identities)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"data": {"name": "New Name"}}))]
pub struct UpdateUserParams {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Checked against the stored password when given; required for a password change when
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD` is on.
    #[serde(default)]
    pub current_password: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    /// Shallow-merged into `user_metadata`; a `null` value deletes the key.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub app_metadata: Option<Value>,
    #[serde(default)]
    pub phone: Option<String>,
    /// PKCE for the email-change links.
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
}

/// Update the signed-in user: metadata, password, or start an email change.
#[utoipa::path(
    put, path = "/user", tag = "user",
    params(("redirect_to" = Option<String>, Query, description = "Where the email-change links lead; the site or an allow-listed URL")),
    request_body = UpdateUserParams,
    responses(
        (status = 200, description = "The updated user", body = UserResponse),
        (status = 400, description = "Invalid input, reauthentication_needed, current_password_required, current_password_invalid", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, or app_metadata without admin rights", body = crate::api::ErrorBody),
        (status = 422, description = "Same or weak password, email taken, reauthentication_not_valid (also once LATCHKEY_OTP_MAX_ATTEMPTS wrong nonces killed the nonce)", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit (email change requested too soon)", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_user(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<UpdateUserParams>,
) -> Result<axum::Json<UserResponse>> {
    let config = &state.config;
    if params.app_metadata.as_ref().is_some_and(|v| !v.is_null()) && !config.jwt.admin_roles.contains(&auth.user.role) {
        return Err(Error::forbidden(
            ErrorCode::NotAdmin,
            "Updating app_metadata requires admin privileges",
        ));
    }
    if let Some(data) = params.data.as_ref().filter(|d| !d.is_null())
        && !data.is_object()
    {
        return Err(Error::validation("data must be a JSON object"));
    }
    if params.phone.as_deref().is_some_and(|p| !p.trim().is_empty()) {
        match *state.outbox.sms(PhoneUse::ChangeNumber)? {}
    }
    let challenge = pkce::parse_params(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let new_password = params.password.as_deref().filter(|p| !p.is_empty());
    let current_password = params.current_password.as_deref().filter(|p| !p.is_empty());
    // Both lengths before any hashing.
    if let Some(password) = new_password {
        password::check_length(password, PasswordUse::New)?;
    }
    if let Some(password) = current_password {
        password::check_length(password, PasswordUse::Presented)?;
    }
    check_current_password(&state, &auth, current_password, new_password.is_some()).await?;
    let new_password_hash = match new_password {
        Some(password) => Some(check_new_password(&state, &auth.user, password).await?),
        None => None,
    };
    let new_email = match params.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(raw) => {
            let email = accounts::normalize_email(raw)?;
            (Some(email.as_str()) != auth.user.email.as_deref()).then_some(email)
        }
        None => None,
    };

    // The nonce is checked before the update's transaction, so that a wrong one stays counted
    // while the update fails and leaves nothing behind.
    let nonce = match &new_password_hash {
        Some(_) => reauthentication_nonce(&state, &auth, params.nonce.as_deref()).await?,
        None => None,
    };

    let mut tx = state.db.begin().await?;
    let mut user = auth.user.clone();
    if let Some(data) = params.data.as_ref().filter(|d| d.is_object()) {
        user = users::merge_user_metadata(&mut *tx, user.id, data).await?;
    }
    if let Some(hash) = &new_password_hash {
        if let Some(nonce) = nonce {
            email_verify::use_nonce(&mut tx, &state.codes, nonce).await?;
        }
        user = users::set_password(&mut *tx, user.id, hash).await?;
        // Links and codes mailed before the change (a recovery link above all) stop working.
        one_time_tokens::delete_all_for_user(&mut *tx, user.id).await?;
        // A new password ends every other session of the user (GoTrue does the same).
        match auth.session_id {
            Some(current) => sessions::delete_others(&mut *tx, user.id, current).await?,
            None => sessions::delete_all_for_user(&mut *tx, user.id).await?,
        };
        record(&mut tx, &user, Action::UserUpdatePassword, &client).await?;
    }
    if let Some(email) = &new_email {
        if users::email_taken(&mut *tx, email, user.id).await? {
            return Err(Error::unprocessable(
                ErrorCode::EmailExists,
                "A user with this email address has already been registered",
            ));
        }
        // The change waits in `new_email` until confirmed through the links mailed to the
        // new address (and, with secure email change, to the current one too). An anonymous
        // user with autoconfirm gets the address at once, as in GoTrue.
        user = users::set_email_change(&mut *tx, user.id, email).await?;
        if user.is_anonymous && config.mailer_autoconfirm {
            user = email_verify::apply_email_change_now(&mut tx, &state.codes, &user, &client.ip_string()).await?;
        } else {
            let out = Outgoing {
                redirect_to: &redirect_to,
                pkce: challenge.as_ref(),
                check_frequency: true,
            };
            user = email::send(&mut tx, &state.outbox, user.id, MailAction::EmailChange, &out)
                .await?
                .user;
        }
    }
    record(&mut tx, &user, Action::UserModified, &client).await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
}

/// The checked reauthentication nonce, when a password change needs one.
async fn reauthentication_nonce(
    state: &AppState,
    auth: &AuthUser,
    nonce: Option<&str>,
) -> Result<Option<email_verify::CheckedNonce>> {
    if !needs_reauthentication(state, auth).await? {
        return Ok(None);
    }
    let nonce = nonce.map(str::trim).unwrap_or("");
    if nonce.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::ReauthenticationNeeded,
            "Password update requires reauthentication",
        ));
    }
    Ok(Some(email_verify::check_nonce(&state.codes, &auth.user, nonce).await?))
}

/// GoTrue's `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION` rule: a password
/// change needs the reauthentication nonce unless the session was started in the last 24 hours.
async fn needs_reauthentication(state: &AppState, auth: &AuthUser) -> Result<bool> {
    if !state.config.update_password_require_reauthentication {
        return Ok(false);
    }
    let session = match auth.session_id {
        Some(id) => sessions::find(&state.db, id).await?,
        None => None,
    };
    Ok(session.is_none_or(|s| chrono::Utc::now() > s.created_at + chrono::Duration::hours(24)))
}

/// `current_password`: when given, it must be the user's password, whatever else the request
/// changes (GoTrue checks it only when it requires it: Latchkey never ignores a wrong one).
/// With `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD`, a password change needs
/// it, as in GoTrue, unless the user has no password yet (signed up with OAuth, anonymously or
/// by invitation) or the session was started from an emailed link or code (a recovery: the
/// user has forgotten it). The check is a hash, run on the hashing threads.
async fn check_current_password(
    state: &AppState,
    auth: &AuthUser,
    current_password: Option<&str>,
    changing_password: bool,
) -> Result<()> {
    let stored = auth.user.encrypted_password.as_deref().filter(|s| !s.is_empty());
    let Some(current_password) = current_password else {
        if changing_password
            && state.config.update_password_require_current_password
            && stored.is_some()
            && !is_recovery_session(state, auth).await?
        {
            return Err(Error::bad_request(
                ErrorCode::CurrentPasswordRequired,
                "Current password required when setting new password.",
            ));
        }
        return Ok(());
    };
    // Without a stored password this checks against the dummy hash: never valid.
    let verification = state
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
async fn is_recovery_session(state: &AppState, auth: &AuthUser) -> Result<bool> {
    let session = match auth.session_id {
        Some(id) => sessions::find(&state.db, id).await?,
        None => None,
    };
    let amr: Vec<AmrEntry> = session
        .and_then(|s| serde_json::from_value(s.amr).ok())
        .unwrap_or_default();
    Ok(amr
        .iter()
        .any(|entry| matches!(entry.method.as_str(), "otp" | "magiclink" | "recovery")))
}

/// Policy and "not the same as before" (the length is checked by the caller); returns the
/// new hash.
async fn check_new_password(state: &AppState, user: &UserRow, password: &str) -> Result<String> {
    if let Err(weak) = password::check_policy(&state.config.password, password) {
        return Err(Error::weak_password(weak.message, weak.reasons));
    }
    if let Some(stored) = user.encrypted_password.as_deref().filter(|s| !s.is_empty()) {
        let same = state
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
    state.hasher.hash(password).await.map_err(Error::internal)
}

async fn record(tx: &mut sqlx::PgConnection, user: &UserRow, action: Action, client: &Client) -> Result<()> {
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(user, action, Some(json!({})), &client.ip_string()),
    )
    .await?;
    Ok(())
}
