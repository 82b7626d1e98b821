//! `POST /recover` (password-reset mail) and `POST /resend` (the signup confirmation or the
//! email-change mails again). Neither may tell anyone whether an address has an account, so
//! once the input is valid, every address gets the same answer in the same time:
//!
//! - `200 {}`, whether a mail went out or not: unknown address, nothing pending, or a mail of
//!   the kind sent within `GOTRUE_SMTP_MAX_FREQUENCY` (GoTrue answers that last case with a
//!   429, which only a registered address can get; Latchkey sends nothing and says nothing);
//! - `429 over_email_send_rate_limit` when the server-wide email budget
//!   (`GOTRUE_RATE_LIMIT_EMAIL_SENT`) is spent: every request takes one unit of it, mail or
//!   not, so the budget and the 429 do not depend on the address either;
//! - an answer without a mail waits as long as a recent send took (`auth::send_timing`).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::auth::accounts;
use crate::auth::email::{self, Action, Outgoing};
use crate::auth::outbox::PhoneUse;
use crate::auth::pkce;
use crate::auth::proven_address;
use crate::auth::send_timing::Route;
use crate::auth::session::Client;
use crate::db::audit::{self, Action as AuditAction};
use crate::db::one_time_tokens::Confirms;
use crate::db::users;
use crate::error::{Error, ErrorCode, Result};

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
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit: the server's email budget is spent (for every address)", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_recover(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<RecoverParams>,
) -> Result<axum::Json<Value>> {
    let started = Instant::now();
    if !state.config.external_email_enabled {
        return Err(Error::bad_request(
            ErrorCode::EmailProviderDisabled,
            "Email logins are disabled",
        ));
    }
    let raw = params.email.as_deref().map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Err(Error::validation("Password recovery requires an email"));
    }
    let email = accounts::normalize_email(raw)?;
    let challenge = pkce::parse_params(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let out = Outgoing {
        redirect_to: &redirect_to,
        pkce: challenge.as_ref(),
        check_frequency: true,
    };
    let outcome = recover(&state, &client, &email, &out).await;
    answer(&state, Route::Recover, started, outcome).await
}

async fn recover(state: &AppState, client: &Client, email: &str, out: &Outgoing<'_>) -> Result<Outcome> {
    let mut tx = state.db.begin().await?;
    let Some(user) = users::find_by_email(&mut *tx, email).await? else {
        return nothing_sent(state).await;
    };
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(&user, AuditAction::UserRecoveryRequested, None, &client.ip_string()),
    )
    .await?;
    if email::send_if_due(
        &mut tx,
        &state.outbox,
        user.id,
        Action::Recovery,
        out,
        &Confirms::default(),
    )
    .await?
    .is_none()
    {
        // Dropping the transaction rolls back the audit entry.
        return nothing_sent(state).await;
    }
    tx.commit().await?;
    Ok(Outcome::Sent)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"type": "signup", "email": "someone@example.com"}))]
pub struct ResendParams {
    /// `signup` or `email_change` (`sms`, `phone_change` need the phone provider).
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

/// Send the signup confirmation or the email-change mails again. `{}` also when there is
/// nothing to send (unknown address, already confirmed, no change pending).
#[utoipa::path(
    post, path = "/resend", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the link leads; the site or an allow-listed URL")),
    request_body = ResendParams,
    responses(
        (status = 200, description = "{}", body = Object),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit: the server's email budget is spent (for every address)", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_resend(
    State(state): State<AppState>,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<ResendParams>,
) -> Result<axum::Json<Value>> {
    let started = Instant::now();
    let action = match params.resend_type.as_deref().map(str::trim) {
        Some("signup") => Action::Confirmation,
        Some("email_change") => Action::EmailChange,
        Some("sms" | "phone_change") => match *state.outbox.sms(PhoneUse::SendCode)? {},
        _ => {
            return Err(Error::validation(
                "Missing one of these types: signup, email_change, sms, phone_change",
            ));
        }
    };
    let raw = params.email.as_deref().map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Err(Error::validation("Type provided requires an email address"));
    }
    let email = accounts::normalize_email(raw)?;
    let challenge = pkce::parse_params(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let out = Outgoing {
        redirect_to: &redirect_to,
        pkce: challenge.as_ref(),
        check_frequency: true,
    };
    let outcome = resend(&state, &email, action, &out).await;
    answer(&state, Route::Resend, started, outcome).await
}

async fn resend(state: &AppState, email: &str, action: Action, out: &Outgoing<'_>) -> Result<Outcome> {
    let mut tx = state.db.begin().await?;
    let Some(user) = users::find_by_email(&mut *tx, email).await? else {
        return nothing_sent(state).await;
    };
    let pending = match action {
        Action::Confirmation => user.email_confirmed_at.is_none(),
        _ => user.email_change.as_deref().is_some_and(|e| !e.is_empty()),
    };
    if !pending {
        return nothing_sent(state).await;
    }
    // The new link confirms what the one it replaces did.
    let confirms = match action {
        Action::Confirmation => proven_address::confirms_again(&mut tx, user.id).await?,
        _ => Confirms::default(),
    };
    if email::send_if_due(&mut tx, &state.outbox, user.id, action, out, &confirms)
        .await?
        .is_none()
    {
        return nothing_sent(state).await;
    }
    tx.commit().await?;
    Ok(Outcome::Sent)
}

/// Whether a request ended with a mail sent.
enum Outcome {
    Sent,
    NothingSent,
}

/// A request that sends nothing takes a unit of the server's email budget all the same, so
/// that `429 over_email_send_rate_limit` comes, or not, whoever the address belongs to. (A
/// secure email change, two mails, takes two: the one difference left, for a rare case.)
async fn nothing_sent(state: &AppState) -> Result<Outcome> {
    state.outbox.take_budget().await?;
    Ok(Outcome::NothingSent)
}

/// `{}`, or the error. A request that sent a mail records how long it took; any other answer
/// from here on (nothing sent, or an error) first waits as long as a recent send took.
async fn answer(
    state: &AppState,
    route: Route,
    started: Instant,
    outcome: Result<Outcome>,
) -> Result<axum::Json<Value>> {
    match outcome {
        Ok(Outcome::Sent) => state.send_timing.record_send(route, started),
        Ok(Outcome::NothingSent) | Err(_) => state.send_timing.wait_like_a_send(route, started).await,
    }
    outcome.map(|_| axum::Json(json!({})))
}
