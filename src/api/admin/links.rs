//! `POST /invite` (mails an invitation) and `POST /admin/generate_link` (returns a
//! verification link and code without sending anything), both for admins.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::admin::Admin;
use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::UserResponse;
use crate::auth::links::{self, Deps, LinkRequest};
use crate::auth::session::Client;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_invite))
        .routes(routes!(generate_link))
}

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
    let email = params.email.as_deref().unwrap_or("");
    let (user, identities) = links::invite(
        &deps(&state),
        &admin.actor(&client),
        email,
        params.data.as_ref(),
        &redirect_to,
    )
    .await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
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
    // The body's redirect_to wins when it is allowed (GoTrue reads it from the body here).
    let redirect_to = params
        .redirect_to
        .as_deref()
        .and_then(|r| state.redirects.judge(r))
        .map_or(referrer, String::from);
    let request = LinkRequest {
        link_type: params.link_type.as_deref().unwrap_or(""),
        email: params.email.as_deref().unwrap_or(""),
        new_email: params.new_email.as_deref(),
        password: params.password.as_deref(),
        data: params.data.as_ref(),
        redirect_to: &redirect_to,
    };
    let link = links::generate_link(&deps(&state), &admin.actor(&client), request).await?;
    Ok(axum::Json(GenerateLinkResponse {
        user: UserResponse::new(link.sent.user, link.identities),
        action_link: link.sent.action_link.unwrap_or_default(),
        email_otp: link.sent.otp,
        hashed_token: link.sent.token_hash,
        verification_type: link.link_type.as_str().to_owned(),
        redirect_to: crate::auth::outbox::redirect_as_written(&redirect_to),
    }))
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        outbox: &state.outbox,
        accounts: &state.accounts,
        hasher: &state.hasher,
        policy: &state.config.password,
    }
}
