//! `GET /user` and `PUT /user`: the signed-in user reads and changes their account.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::{AuthUser, CurrentUser};
use crate::api::current_user;
use crate::api::extract::{Json, RequestedAudience};
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::UserResponse;
use crate::auth::jwt;
use crate::auth::session::Client;
use crate::auth::user_update::{self, Caller, Changes, Deps};
use crate::error::{Error, Result};

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
pub async fn get_user(current: CurrentUser, RequestedAudience(audience): RequestedAudience) -> Result<Response> {
    // The session and ban checks come first, as when the extractor made them all.
    let user = current.view()?;
    if !jwt::token_audience_matches(audience.as_deref(), current.claims.aud.as_deref()) {
        return Err(Error::validation("Token audience doesn't match request audience"));
    }
    current_user::response(&user)
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
    /// A new number: it becomes the user's once the code texted to it is verified
    /// (`POST /verify` with `type: phone_change`).
    #[serde(default)]
    pub phone: Option<String>,
    /// `sms` (default) or `whatsapp`: how the new number's code travels.
    #[serde(default)]
    pub channel: Option<String>,
    /// PKCE for the email-change links.
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
}

/// Update the signed-in user: metadata, password, or start an email or phone change.
#[utoipa::path(
    put, path = "/user", tag = "user",
    params(("redirect_to" = Option<String>, Query, description = "Where the email-change links lead; the site or an allow-listed URL")),
    request_body = UpdateUserParams,
    responses(
        (status = 200, description = "The updated user", body = UserResponse),
        (status = 400, description = "Invalid input, reauthentication_needed, current_password_required, current_password_invalid", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, or app_metadata without admin rights", body = crate::api::ErrorBody),
        (status = 422, description = "Same or weak password, email or phone taken, reauthentication_not_valid (also once LATCHKEY_OTP_MAX_ATTEMPTS wrong nonces killed the nonce), sms_send_failed", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit / over_sms_send_rate_limit (change requested too soon)", body = crate::api::ErrorBody),
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
    let changes = Changes {
        email: params.email.as_deref(),
        password: params.password.as_deref(),
        current_password: params.current_password.as_deref(),
        nonce: params.nonce.as_deref(),
        data: params.data.as_ref(),
        app_metadata: params.app_metadata.as_ref(),
        phone: params.phone.as_deref(),
        channel: params.channel.as_deref(),
        code_challenge: params.code_challenge.as_deref(),
        code_challenge_method: params.code_challenge_method.as_deref(),
        redirect_to: &redirect_to,
    };
    let caller = Caller {
        user: &auth.user,
        session_id: auth.session_id,
        aal2: auth.is_aal2(),
    };
    let (user, identities) = user_update::update(&deps(&state), &caller, &client, &changes).await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
}

fn deps(state: &AppState) -> Deps<'_> {
    let config = &state.config;
    Deps {
        db: &state.db,
        codes: &state.codes,
        outbox: &state.outbox,
        hasher: &state.hasher,
        policy: &config.password,
        admin_roles: &config.jwt.admin_roles,
        require_reauthentication: config.update_password_require_reauthentication,
        require_current_password: config.update_password_require_current_password,
        autoconfirm: config.mailer_autoconfirm,
    }
}
