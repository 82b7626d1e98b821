//! `POST /invite` (mails an invitation) and `POST /admin/generate_link` (returns a
//! verification link and code without sending anything), both for admins.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::admin::Admin;
use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::UserResponse;
use crate::auth::accounts::{self, NewEmailAccount};
use crate::auth::email::{self, Action, Outgoing};
use crate::auth::password::{self, PasswordUse};
use crate::auth::proven_address;
use crate::auth::session::Client;
use crate::db::audit::{self, Action as AuditAction};
use crate::db::identities;
use crate::db::one_time_tokens::{Confirms, TokenType};
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_invite))
        .routes(routes!(generate_link))
}

const EMAIL_EXISTS: &str = "A user with this email address has already been registered";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "invitee@example.com", "data": {"team": "blue"}}))]
pub struct InviteParams {
    pub email: Option<String>,
    /// Becomes `user_metadata`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// Invite a user by email: the account is created unconfirmed and the invitation mailed;
/// verifying it (`type=invite`) signs them in.
#[utoipa::path(
    post, path = "/invite", tag = "admin",
    request_body = InviteParams,
    params(("redirect_to" = Option<String>, Query, description = "Where the invitation link leads")),
    responses(
        (status = 200, description = "The invited user", body = UserResponse),
        (status = 400, description = "Invalid email", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 422, description = "The address already has a confirmed account", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_invite(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<InviteParams>,
) -> Result<axum::Json<UserResponse>> {
    let email = accounts::normalize_email(params.email.as_deref().unwrap_or(""))?;
    let mut tx = state.db.begin().await?;
    let (user, confirms) = invitee(&mut tx, &state, &email, params.data).await?;
    let out = Outgoing {
        redirect_to: &redirect_to,
        pkce: None,
        check_frequency: false,
    };
    let sent = email::send_confirmation(&mut tx, &state.outbox, user.id, Action::Invite, &out, &confirms).await?;
    let traits = json!({ "user_id": user.id, "user_email": email });
    audit::insert(
        &mut *tx,
        admin.audit_entry(AuditAction::UserInvited, traits, &client.ip_string()),
    )
    .await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok(axum::Json(UserResponse::new(sent.user, identities)))
}

/// The invited account: a new unconfirmed one, or the existing one while still unconfirmed;
/// with what accepting the invitation confirms. An admin made a new account, so it is
/// confirmed as it is; an existing one may hold what anyone put there, so accepting proves
/// the address alone (`auth::proven_address`).
async fn invitee(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    email: &str,
    data: Option<Value>,
) -> Result<(UserRow, Confirms)> {
    match users::find_by_email(&mut *conn, email).await? {
        Some(user) if user.email_confirmed_at.is_some() => {
            Err(Error::unprocessable(ErrorCode::EmailExists, EMAIL_EXISTS))
        }
        Some(user) => Ok((user, Confirms::default())),
        None => {
            let account = NewEmailAccount {
                email,
                password_hash: None,
                user_metadata: data.filter(Value::is_object).unwrap_or_else(|| json!({})),
                confirmed: false,
            };
            let user = accounts::create_email_user(&mut *conn, &state.accounts, account)
                .await?
                .0;
            Ok((user, Confirms::Account))
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"type": "magiclink", "email": "someone@example.com"}))]
pub struct GenerateLinkParams {
    /// `signup`, `invite`, `magiclink`, `recovery`, `email_change_current` or `email_change_new`.
    #[serde(rename = "type")]
    pub link_type: Option<String>,
    pub email: Option<String>,
    pub new_email: Option<String>,
    /// Required for `signup` links of new users.
    pub password: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub redirect_to: Option<String>,
}

/// GoTrue's `GenerateLinkResponse`: the user's fields at the top level plus the link.
#[derive(Serialize, ToSchema)]
pub struct GenerateLinkResponse {
    #[serde(flatten)]
    user: UserResponse,
    action_link: String,
    email_otp: String,
    hashed_token: String,
    verification_type: String,
    redirect_to: String,
}

/// Generate a verification link without sending mail (for custom email delivery). A
/// `magiclink` for an unknown address becomes a `signup` link, as in GoTrue.
#[utoipa::path(
    post, path = "/admin/generate_link", tag = "admin",
    request_body = GenerateLinkParams,
    responses(
        (status = 200, description = "The link, the code and the user", body = GenerateLinkResponse),
        (status = 400, description = "Invalid type, email or password", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "No user with that email (recovery, email change)", body = crate::api::ErrorBody),
        (status = 422, description = "Email already registered, weak password", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn generate_link(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    RedirectTo(referrer): RedirectTo,
    Json(params): Json<GenerateLinkParams>,
) -> Result<axum::Json<GenerateLinkResponse>> {
    let email = accounts::normalize_email(params.email.as_deref().unwrap_or(""))?;
    // The body's redirect_to wins when it is allowed (GoTrue reads it from the body here).
    let redirect_to = params
        .redirect_to
        .as_deref()
        .and_then(|r| state.redirects.judge(r))
        .map_or(referrer, String::from);
    let mut link_type = params.link_type.clone().unwrap_or_default();
    let mut password = params.password.clone();
    let mut tx = state.db.begin().await?;
    let existing = users::find_by_email(&mut *tx, &email).await?;
    if existing.is_none() {
        match link_type.as_str() {
            // GoTrue turns it into a sign-up with a random password nobody knows.
            "magiclink" => {
                link_type = "signup".into();
                password = Some(random_password());
            }
            "recovery" | "email_change_current" | "email_change_new" => {
                return Err(Error::not_found(
                    ErrorCode::UserNotFound,
                    "User with this email not found",
                ));
            }
            _ => {}
        }
    }
    let ip = client.ip_string();
    let sent = match link_type.as_str() {
        "magiclink" | "recovery" => {
            let user = existing.ok_or_else(|| Error::internal("user checked above"))?;
            let action = if link_type == "magiclink" {
                Action::MagicLink
            } else {
                Action::Recovery
            };
            audit::insert(
                &mut *tx,
                audit::Entry::by_user(&user, AuditAction::UserRecoveryRequested, None, &ip),
            )
            .await?;
            email::generate(
                &mut tx,
                &state.outbox,
                &user,
                action,
                TokenType::Recovery,
                &email,
                &redirect_to,
                &Confirms::default(),
            )
            .await?
        }
        "invite" => {
            let (user, confirms) = invitee(&mut tx, &state, &email, params.data.clone()).await?;
            let traits = json!({ "user_id": user.id, "user_email": email });
            audit::insert(&mut *tx, admin.audit_entry(AuditAction::UserInvited, traits, &ip)).await?;
            email::generate(
                &mut tx,
                &state.outbox,
                &user,
                Action::Invite,
                TokenType::Confirmation,
                &email,
                &redirect_to,
                &confirms,
            )
            .await?
        }
        "signup" => {
            let (user, confirms) = signup_user(
                &mut tx,
                &state,
                existing,
                &email,
                password.as_deref(),
                params.data.clone(),
            )
            .await?;
            email::generate(
                &mut tx,
                &state.outbox,
                &user,
                Action::Confirmation,
                TokenType::Confirmation,
                &email,
                &redirect_to,
                &confirms,
            )
            .await?
        }
        "email_change_current" | "email_change_new" => {
            let user = existing.ok_or_else(|| Error::internal("user checked above"))?;
            email_change_link(
                &mut tx,
                &state,
                user,
                &link_type,
                params.new_email.as_deref(),
                &redirect_to,
            )
            .await?
        }
        other => {
            return Err(Error::validation(format!(
                "Invalid email action link type requested: {other}"
            )));
        }
    };
    let identities = identities::for_user(&mut *tx, sent.user.id).await?;
    tx.commit().await?;
    Ok(axum::Json(GenerateLinkResponse {
        user: UserResponse::new(sent.user, identities),
        action_link: sent.action_link.unwrap_or_default(),
        email_otp: sent.otp,
        hashed_token: sent.token_hash,
        verification_type: link_type,
        redirect_to,
    }))
}

/// A `signup` link: for an unconfirmed user (metadata updated) or a new one with a password;
/// with what following it confirms. A new account is the admin's making, confirmed as it is;
/// for an existing one the link confirms what the pending confirmation did
/// (`auth::proven_address`).
async fn signup_user(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    existing: Option<UserRow>,
    email: &str,
    password: Option<&str>,
    data: Option<Value>,
) -> Result<(UserRow, Confirms)> {
    let data = data.filter(Value::is_object);
    match existing {
        Some(user) if user.email_confirmed_at.is_some() => {
            Err(Error::unprocessable(ErrorCode::EmailExists, EMAIL_EXISTS))
        }
        Some(user) => {
            let confirms = proven_address::confirms_again(&mut *conn, user.id).await?;
            let user = match data {
                Some(data) => users::merge_user_metadata(&mut *conn, user.id, &data).await?,
                None => user,
            };
            Ok((user, confirms))
        }
        None => {
            let password = password
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::validation("Signup requires a valid password"))?;
            password::check_length(password, PasswordUse::New)?;
            if let Err(weak) = password::check_policy(&state.config.password, password) {
                return Err(Error::weak_password(weak.message, weak.reasons));
            }
            let hash = state.hasher.hash(password).await.map_err(Error::internal)?;
            let account = NewEmailAccount {
                email,
                password_hash: Some(&hash),
                user_metadata: data.unwrap_or_else(|| json!({})),
                confirmed: false,
            };
            let user = accounts::create_email_user(&mut *conn, &state.accounts, account)
                .await?
                .0;
            Ok((user, Confirms::Account))
        }
    }
}

/// An email-change link for one side: the current address or the new one. The change
/// completes when that token is verified (the other side has no token waiting).
async fn email_change_link(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    user: UserRow,
    link_type: &str,
    new_email: Option<&str>,
    redirect_to: &str,
) -> Result<email::Sent> {
    if link_type == "email_change_current" && !state.config.mailer.secure_email_change_enabled {
        return Err(Error::validation(
            "Enable secure email change to generate link for current email",
        ));
    }
    let new_email = accounts::normalize_email(new_email.unwrap_or(""))?;
    if users::email_taken(&mut *conn, &new_email, user.id).await? {
        return Err(Error::unprocessable(ErrorCode::EmailExists, EMAIL_EXISTS));
    }
    let user = users::set_email_change(&mut *conn, user.id, &new_email).await?;
    let (token_type, address) = if link_type == "email_change_current" {
        (TokenType::EmailChangeCurrent, user.email.clone().unwrap_or_default())
    } else {
        (TokenType::EmailChangeNew, new_email.clone())
    };
    // Only this side's token exists: drop any left from an earlier change.
    let other = if token_type == TokenType::EmailChangeCurrent {
        TokenType::EmailChangeNew
    } else {
        TokenType::EmailChangeCurrent
    };
    crate::db::one_time_tokens::delete(&mut *conn, user.id, other).await?;
    email::generate(
        conn,
        &state.outbox,
        &user,
        Action::EmailChange,
        token_type,
        &address,
        redirect_to,
        &Confirms::default(),
    )
    .await
}

fn random_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}
