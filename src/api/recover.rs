//! `POST /recover` (the password-reset mail) and `POST /resend` (the sign-up confirmation or
//! the email-change mails again): the same answer and time for every address
//! (`auth::recovery` says how).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::auth::recovery;
use crate::auth::session::Client;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_recover))
        .routes(routes!(post_resend))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "someone@example.com"}))]
pub struct RecoverParams {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
}

/// Send a password-recovery link (and code). `{}` also for unknown addresses.
#[utoipa::path(
    post, path = "/recover", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the link leads; the site or an allow-listed URL")),
    request_body = RecoverParams,
    responses(
        (status = 200, description = "{}", body = Object),
        (status = 400, description = "Invalid input, phone_provider_disabled", body = crate::api::ErrorBody),
        (status = 422, description = "sms_send_failed", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit: the server's email budget is spent (for every address); over_sms_send_rate_limit", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_recover(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<RecoverParams>,
) -> Result<axum::Json<Value>> {
    let request = request(
        &params.email,
        &params.code_challenge,
        &params.code_challenge_method,
        &redirect_to,
    );
    recovery::recover(&deps(&state), &client, &request).await?;
    Ok(axum::Json(json!({})))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"type": "signup", "email": "someone@example.com"}))]
pub struct ResendParams {
    /// `signup`, `email_change`, `sms` or `phone_change`.
    #[serde(rename = "type", default)]
    pub resend_type: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
}

/// Send the signup confirmation or the email-change mails again, or a texted code (`sms`,
/// `phone_change`). `{}` also when there is nothing to send (unknown address, already
/// confirmed, no change pending); `{"message_id": ...}` when a text went out.
#[utoipa::path(
    post, path = "/resend", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the link leads; the site or an allow-listed URL")),
    request_body = ResendParams,
    responses(
        (status = 200, description = "{}", body = Object),
        (status = 400, description = "Invalid input, phone_provider_disabled", body = crate::api::ErrorBody),
        (status = 422, description = "sms_send_failed", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit: the server's email budget is spent (for every address); over_sms_send_rate_limit", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_resend(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<ResendParams>,
) -> Result<axum::Json<Value>> {
    let request = recovery::Request {
        phone: given(&params.phone),
        ..request(
            &params.email,
            &params.code_challenge,
            &params.code_challenge_method,
            &redirect_to,
        )
    };
    let message_id = recovery::resend(&deps(&state), &client, given(&params.resend_type), &request).await?;
    Ok(axum::Json(crate::auth::phone::resend::answer(&message_id)))
}

fn deps(state: &AppState) -> recovery::Deps<'_> {
    recovery::Deps {
        db: &state.db,
        accounts: &state.accounts,
        outbox: &state.outbox,
        timing: &state.send_timing,
    }
}

fn request<'a>(
    email: &'a Option<String>,
    code_challenge: &'a Option<String>,
    code_challenge_method: &'a Option<String>,
    redirect_to: &'a str,
) -> recovery::Request<'a> {
    recovery::Request {
        email: given(email),
        phone: None,
        code_challenge: code_challenge.as_deref(),
        code_challenge_method: code_challenge_method.as_deref(),
        redirect_to,
    }
}

/// A field as these routes read it: trimmed, `None` when blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
