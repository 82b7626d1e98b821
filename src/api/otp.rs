//! `POST /otp` and `POST /magiclink`: passwordless sign-in by email or phone. A known,
//! confirmed address gets a magic link (with a code), a known number a code by text message;
//! an unknown one is signed up (unless `create_user: false`) and gets the confirmation mail or
//! code, which signs in just the same.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::auth::magic_link;
use crate::auth::phone;
use crate::auth::phone::signup::{self as phone_signup, OtpRequest};
use crate::auth::session::Client;
use crate::error::{Error, Result};

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

/// Send a magic link and one-time code by email, or a code by SMS / WhatsApp (signing the
/// address or number up when new).
#[utoipa::path(
    post, path = "/otp", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the link leads; the site or an allow-listed URL")),
    request_body = OtpParams,
    responses(
        (status = 200, description = "Sent: {} (mail, or a new number's code), or {\"message_id\": ...} (a text to a known number)", body = Object),
        (status = 400, description = "Invalid input, phone_provider_disabled", body = crate::api::ErrorBody),
        (status = 422, description = "otp_disabled (create_user false and unknown address), signups or magic links disabled, sms_send_failed", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit, over_sms_send_rate_limit", body = crate::api::ErrorBody),
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
        (None, Some(phone)) => return send_sms_otp(&state, &client, phone, &params).await,
        (None, None) => return Err(Error::validation("An email address or phone number is required")),
        (Some(_), None) if params.channel.as_deref().is_some_and(|c| !c.trim().is_empty()) => {
            return Err(Error::validation("Channel should only be specified with Phone OTP"));
        }
        (Some(email), None) => email,
    };
    let create_user = params.create_user.unwrap_or(true);
    magic_link(&state, &client, &redirect_to, email, &params, create_user).await
}

/// A code by text message; `{"message_id": ...}` when one went to a known number.
async fn send_sms_otp(
    state: &AppState,
    client: &Client,
    raw_phone: &str,
    params: &OtpParams,
) -> Result<axum::Json<Value>> {
    let create_user = params.create_user.unwrap_or(true);
    if !create_user {
        // GoTrue judges the number before anything else when it must not sign up.
        phone::normalize(raw_phone)?;
    }
    let deps = phone_signup::Deps {
        db: &state.db,
        accounts: &state.accounts,
        outbox: &state.outbox,
        sessions: &state.sessions,
    };
    let request = OtpRequest {
        phone: raw_phone,
        channel: params.channel.as_deref(),
        create_user,
        data: params.data.as_ref().filter(|d| d.is_object()),
    };
    let message_id = phone_signup::send_otp(&deps, client, &request).await?;
    Ok(axum::Json(phone::resend::answer(&message_id)))
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

/// The one call: the handlers differ only in how they read the address.
async fn magic_link(
    state: &AppState,
    client: &Client,
    redirect_to: &str,
    email: &str,
    params: &OtpParams,
    create_user: bool,
) -> Result<axum::Json<Value>> {
    let deps = magic_link::Deps {
        db: &state.db,
        accounts: &state.accounts,
        outbox: &state.outbox,
    };
    let request = magic_link::Request {
        email,
        create_user,
        data: params.data.as_ref(),
        code_challenge: params.code_challenge.as_deref(),
        code_challenge_method: params.code_challenge_method.as_deref(),
        redirect_to,
    };
    magic_link::send(&deps, client, &request).await?;
    Ok(axum::Json(json!({})))
}
