//! `POST /otp` and `POST /magiclink`: passwordless sign-in by email. A known, confirmed
//! address gets a magic link (with a code); an unknown one is signed up (unless
//! `create_user: false`) and gets the confirmation mail, which signs in just the same.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::auth::accounts::{self, NewEmailAccount};
use crate::auth::email::{self, Action, Outgoing};
use crate::auth::outbox::PhoneUse;
use crate::auth::pkce::{self, Challenge};
use crate::auth::session::Client;
use crate::db::audit::{self, Action as AuditAction};
use crate::db::one_time_tokens::Confirms;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_otp))
        .routes(routes!(post_magiclink))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "someone@example.com", "create_user": true}))]
pub struct OtpParams {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// Sign up unknown addresses (default true).
    #[serde(default)]
    pub create_user: Option<bool>,
    /// `user_metadata` of a new user.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
}

/// Send a magic link and one-time code by email (signing the address up when new).
#[utoipa::path(
    post, path = "/otp", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the link leads; the site or an allow-listed URL")),
    request_body = OtpParams,
    responses(
        (status = 200, description = "Mail sent: {}", body = Object),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 422, description = "otp_disabled (create_user false and unknown address), signups or magic links disabled", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_otp(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<OtpParams>,
) -> Result<axum::Json<Value>> {
    let email = params.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let phone = params.phone.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let email = match (email, phone) {
        (Some(_), Some(_)) => {
            return Err(Error::validation(
                "Only an email address or phone number should be provided",
            ));
        }
        (None, Some(_)) => match *state.outbox.sms(PhoneUse::SendCode)? {},
        (None, None) => return Err(Error::validation("An email address or phone number is required")),
        (Some(email), None) => email,
    };
    let create_user = params.create_user.unwrap_or(true);
    magic_link(&state, &client, &redirect_to, email, &params, create_user).await
}

/// Send a magic link by email (legacy form of `/otp`).
#[utoipa::path(
    post, path = "/magiclink", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the link leads; the site or an allow-listed URL")),
    request_body = OtpParams,
    responses(
        (status = 200, description = "Mail sent: {}", body = Object),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_magiclink(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<OtpParams>,
) -> Result<axum::Json<Value>> {
    let email = params.email.as_deref().unwrap_or("").trim();
    if email.is_empty() {
        return Err(Error::validation("Password recovery requires an email"));
    }
    magic_link(&state, &client, &redirect_to, email, &params, true).await
}

async fn magic_link(
    state: &AppState,
    client: &Client,
    redirect_to: &str,
    raw_email: &str,
    params: &OtpParams,
    create_user: bool,
) -> Result<axum::Json<Value>> {
    let config = &state.config;
    if !config.external_email_enabled {
        return Err(Error::unprocessable(
            ErrorCode::EmailProviderDisabled,
            "Email logins are disabled",
        ));
    }
    if !config.mailer.magic_link_enabled {
        return Err(Error::unprocessable(
            ErrorCode::EmailProviderDisabled,
            "Login with magic link is disabled",
        ));
    }
    let email = accounts::normalize_email(raw_email)?;
    let challenge = pkce::parse_params(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let data = params.data.clone().filter(|d| !d.is_null());
    if data.as_ref().is_some_and(|d| !d.is_object()) {
        return Err(Error::validation("data must be a JSON object"));
    }
    let out = |check_frequency| Outgoing {
        redirect_to,
        pkce: challenge.as_ref(),
        check_frequency,
    };
    let mut tx = state.db.begin().await?;
    let user = match users::find_by_email(&mut *tx, &email).await? {
        // Unlike the other email endpoints this one says that the address is unknown: the
        // caller asked not to create users (GoTrue does the same).
        None if !create_user => {
            return Err(Error::unprocessable(
                ErrorCode::OtpDisabled,
                "Signups not allowed for otp",
            ));
        }
        None => sign_up(&mut tx, state, client, &email, data, &challenge, redirect_to).await?,
        Some(user) if user.email_confirmed_at.is_none() => {
            // Not confirmed yet: the confirmation mail is the sign-in link. It proves the
            // address alone, so whatever someone else set on the account goes when it is
            // followed (`auth::proven_address`), a password too.
            email::send(&mut tx, &state.outbox, user.id, Action::Confirmation, &out(true)).await?;
            None
        }
        Some(user) => Some(user),
    };
    if let Some(user) = user {
        record(&mut tx, &user, client).await?;
        email::send(&mut tx, &state.outbox, user.id, Action::MagicLink, &out(true)).await?;
    }
    tx.commit().await?;
    Ok(axum::Json(json!({})))
}

/// A passwordless sign-up. With autoconfirm the new user is confirmed and returned (to get a
/// magic link); otherwise the confirmation mail goes out and `None` is returned.
async fn sign_up(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    client: &Client,
    email: &str,
    data: Option<Value>,
    challenge: &Option<Challenge>,
    redirect_to: &str,
) -> Result<Option<UserRow>> {
    let config = &state.config;
    if config.disable_signup {
        return Err(Error::unprocessable(
            ErrorCode::SignupDisabled,
            "Signups not allowed for this instance",
        ));
    }
    let (user, _) = accounts::create_email_user(
        &mut *tx,
        &state.accounts,
        NewEmailAccount {
            email,
            password_hash: None,
            user_metadata: data.unwrap_or_else(|| json!({})),
            confirmed: config.mailer_autoconfirm,
        },
    )
    .await?;
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(
            &user,
            AuditAction::UserSignedUp,
            Some(json!({ "provider": "email" })),
            &client.ip_string(),
        ),
    )
    .await?;
    if config.mailer_autoconfirm {
        return Ok(Some(user));
    }
    let out = Outgoing {
        redirect_to,
        pkce: challenge.as_ref(),
        check_frequency: false,
    };
    // The link confirms the account as this sign-up made it, metadata included.
    email::send_confirmation(
        &mut *tx,
        &state.outbox,
        user.id,
        Action::Confirmation,
        &out,
        &Confirms::Account,
    )
    .await?;
    Ok(None)
}

async fn record(tx: &mut sqlx::PgConnection, user: &UserRow, client: &Client) -> Result<()> {
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(user, AuditAction::UserRecoveryRequested, None, &client.ip_string()),
    )
    .await?;
    Ok(())
}
