//! `POST /signup`: email/password sign-up, and anonymous sign-in when neither email nor
//! phone is given.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Connection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::{SessionResponse, UserResponse};
use crate::auth::accounts::{self, NewEmailAccount};
use crate::auth::email::{self, Action as MailAction, Outgoing};
use crate::auth::outbox::PhoneUse;
use crate::auth::password::{self, PasswordUse};
use crate::auth::pkce;
use crate::auth::session::{self, Client};
use crate::db::audit::{self, Action};
use crate::db::one_time_tokens::Confirms;
use crate::db::users::UserRow;
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_signup))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "someone@example.com", "password": "a-long-password", "data": {"name": "Someone"}}))]
pub struct SignupParams {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Becomes `user_metadata`.
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

impl SignupParams {
    /// The email and phone as a sign-up uses them: trimmed, and `None` when blank. Neither
    /// means an anonymous sign-in. The rate limiter asks this same function which budget a
    /// sign-up draws from, so `{"email": " "}` cannot be a normal sign-up to the limiter and
    /// an anonymous one to the handler. (GoTrue does not trim: there `" "` is an email that
    /// fails validation.)
    pub fn email_and_phone(&self) -> (Option<&str>, Option<&str>) {
        fn given(value: Option<&str>) -> Option<&str> {
            value.map(str::trim).filter(|v| !v.is_empty())
        }
        (given(self.email.as_deref()), given(self.phone.as_deref()))
    }

    pub fn is_anonymous(&self) -> bool {
        self.email_and_phone() == (None, None)
    }
}

/// Sign up with email and password, or sign in anonymously (no email, no phone).
///
/// With `GOTRUE_MAILER_AUTOCONFIRM` (or anonymously) the answer is a session; otherwise the
/// bare user, with the confirmation pending.
#[utoipa::path(
    post, path = "/signup", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the confirmation link leads; the site or an allow-listed URL")),
    request_body = SignupParams,
    responses(
        (status = 200, description = "A session (autoconfirm or anonymous) or the new user", body = crate::api::docs::SignupResponse),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 422, description = "Signups disabled, user exists, weak password", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit (confirmation re-sent too soon)", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_signup(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<SignupParams>,
) -> Result<Response> {
    let config = &state.config;
    if config.disable_signup {
        return Err(Error::unprocessable(
            ErrorCode::SignupDisabled,
            "Signups not allowed for this instance",
        ));
    }
    let challenge = pkce::parse_params(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let (email, phone) = params.email_and_phone();
    let data = params.data.clone().filter(|d| !d.is_null());
    if data.as_ref().is_some_and(|d| !d.is_object()) {
        return Err(Error::validation("data must be a JSON object"));
    }
    match (email, phone) {
        (None, None) => sign_in_anonymously(&state, &client, data).await,
        (Some(_), Some(_)) => Err(Error::validation(
            "Only an email address or phone number should be provided on signup.",
        )),
        (None, Some(_)) => match *state.outbox.sms(PhoneUse::SignUp)? {},
        (Some(email), None) => {
            let mail = Outgoing {
                redirect_to: &redirect_to,
                pkce: challenge.as_ref(),
                check_frequency: false,
            };
            sign_up_with_email(&state, &client, email, params.password.as_deref(), data, mail).await
        }
    }
}

async fn sign_in_anonymously(state: &AppState, client: &Client, data: Option<Value>) -> Result<Response> {
    if !state.config.anonymous_users_enabled {
        return Err(Error::unprocessable(
            ErrorCode::AnonymousProviderDisabled,
            "Anonymous sign-ins are disabled",
        ));
    }
    let mut tx = state.db.begin().await?;
    let user = accounts::create_anonymous_user(&mut tx, &state.accounts, data.unwrap_or_else(|| json!({}))).await?;
    record(
        &mut tx,
        &user,
        Action::UserSignedUp,
        json!({ "provider": "anonymous" }),
        client,
    )
    .await?;
    let (tokens, user, identities) = session::start(&mut tx, &state.sessions, &user, "anonymous", client).await?;
    tx.commit().await?;
    Ok(axum::Json(SessionResponse::new(tokens, user, identities, None)).into_response())
}

async fn sign_up_with_email(
    state: &AppState,
    client: &Client,
    raw_email: &str,
    password: Option<&str>,
    data: Option<Value>,
    mail: Outgoing<'_>,
) -> Result<Response> {
    let config = &state.config;
    if !config.external_email_enabled {
        return Err(Error::bad_request(
            ErrorCode::EmailProviderDisabled,
            "Email signups are disabled",
        ));
    }
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::validation("Signup requires a valid password"))?;
    password::check_length(password, PasswordUse::New)?;
    if let Err(weak) = password::check_policy(&config.password, password) {
        return Err(Error::weak_password(weak.message, weak.reasons));
    }
    let email = accounts::normalize_email(raw_email)?;

    let mut conn = state.hot.acquire().await?;
    let existing = crate::db::users::find_by_email(&mut *conn, &email).await?;
    conn.release();
    if let Some(existing) = existing {
        return repeated_signup(state, client, existing, password, data, mail).await;
    }

    let hash = state.hasher.hash(password).await.map_err(Error::internal)?;
    let confirmed = config.mailer_autoconfirm;
    let mut conn = state.hot.acquire().await?;
    let mut tx = conn.begin().await?;
    let (user, identities) = accounts::create_email_user(
        &mut tx,
        &state.accounts,
        NewEmailAccount {
            email: &email,
            password_hash: Some(&hash),
            user_metadata: data.unwrap_or_else(|| json!({})),
            confirmed,
        },
    )
    .await?;
    record(
        &mut tx,
        &user,
        Action::UserSignedUp,
        json!({ "provider": "email" }),
        client,
    )
    .await?;
    if !confirmed {
        // Until the address is confirmed the user cannot sign in. The mail goes out inside
        // the transaction: if sending fails, the sign-up is rolled back and can be retried.
        // Its link confirms the account as this sign-up made it, password and metadata.
        let sent = email::send_confirmation(
            &mut tx,
            &state.outbox,
            user.id,
            MailAction::Confirmation,
            &mail,
            &Confirms::Account,
        )
        .await?;
        tx.commit().await?;
        conn.release();
        return Ok(axum::Json(UserResponse::new(sent.user, identities)).into_response());
    }
    let (tokens, user, _) = session::start(&mut tx, &state.sessions, &user, "password", client).await?;
    tx.commit().await?;
    conn.release();
    Ok(axum::Json(SessionResponse::new(tokens, user, identities, None)).into_response())
}

/// Sign-up of an address that already has an account. With autoconfirm GoTrue says so
/// (`422 user_already_exists`); without it, it answers with a made-up user so that sign-up
/// does not reveal which emails are registered.
async fn repeated_signup(
    state: &AppState,
    client: &Client,
    existing: UserRow,
    password: &str,
    data: Option<Value>,
    mail: Outgoing<'_>,
) -> Result<Response> {
    let unconfirmed = !state.config.mailer_autoconfirm && existing.email_confirmed_at.is_none();
    // Hashed before the transaction, as for a new account (hashing is slow).
    let password_hash = if unconfirmed {
        Some(state.hasher.hash(password).await.map_err(Error::internal)?)
    } else {
        None
    };
    let mut tx = state.db.begin().await?;
    record(
        &mut tx,
        &existing,
        Action::UserRepeatedSignup,
        json!({ "provider": "email" }),
        client,
    )
    .await?;
    if state.config.mailer_autoconfirm {
        tx.commit().await?;
        return Err(Error::unprocessable(
            ErrorCode::UserAlreadyExists,
            "User already registered",
        ));
    }
    if unconfirmed {
        // Unconfirmed: GoTrue sends the confirmation again, no more often than
        // GOTRUE_SMTP_MAX_FREQUENCY, and returns the user as stored. Nothing changes until
        // the link is followed: then the account is handed to the mailbox owner, with the
        // password given here (`auth::proven_address`). Whoever signed up before never proved
        // the address, so their password, identities and metadata go. GoTrue keeps the first
        // password instead and drops this one: the owner would need a password reset.
        let mail = Outgoing {
            check_frequency: true,
            ..mail
        };
        let confirms = Confirms::Address { password_hash };
        let sent = email::send_confirmation(
            &mut tx,
            &state.outbox,
            existing.id,
            MailAction::Confirmation,
            &mail,
            &confirms,
        )
        .await?;
        let identities = crate::db::identities::for_user(&mut *tx, existing.id).await?;
        tx.commit().await?;
        return Ok(axum::Json(UserResponse::new(sent.user, identities)).into_response());
    }
    tx.commit().await?;
    Ok(axum::Json(obfuscated_user(state, &existing, data)).into_response())
}

/// GoTrue's `sanitizeUser`: a random id, no role, no identities, fresh timestamps.
fn obfuscated_user(state: &AppState, existing: &UserRow, data: Option<Value>) -> UserResponse {
    let now = Utc::now();
    let mut fake = existing.clone();
    fake.id = Uuid::new_v4();
    fake.role = String::new();
    fake.aud = state.config.jwt.aud.clone();
    fake.email_change = None;
    fake.created_at = now;
    fake.updated_at = now;
    fake.confirmation_sent_at = Some(now);
    fake.last_sign_in_at = None;
    fake.confirmed_at = None;
    fake.email_change_sent_at = None;
    fake.email_confirmed_at = None;
    fake.phone_confirmed_at = None;
    fake.phone = None;
    fake.banned_until = None;
    fake.raw_user_meta_data = data.unwrap_or_else(|| json!({}));
    fake.raw_app_meta_data = json!({ "provider": "email", "providers": ["email"] });
    UserResponse::new(fake, vec![])
}

async fn record(
    tx: &mut sqlx::PgConnection,
    user: &UserRow,
    action: Action,
    traits: Value,
    client: &Client,
) -> Result<()> {
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(user, action, Some(traits), &client.ip_string()),
    )
    .await?;
    Ok(())
}
