//! `POST /signup`: email or phone sign-up with a password, and anonymous sign-in when neither
//! email nor phone is given.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Json;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::{SessionResponse, UserResponse};
use crate::auth::session::Client;
use crate::auth::signup::{self, Deps, SignUp, SignedUp};
use crate::error::Result;

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

/// Sign up with email or phone and a password, or sign in anonymously (no email, no phone).
///
/// With `GOTRUE_MAILER_AUTOCONFIRM` / `GOTRUE_SMS_AUTOCONFIRM` (or anonymously) the answer is
/// a session; otherwise the bare user, with the confirmation (a mail, or a code by text
/// message) pending.
#[utoipa::path(
    post, path = "/signup", tag = "auth",
    params(("redirect_to" = Option<String>, Query, description = "Where the confirmation link leads; the site or an allow-listed URL")),
    request_body = SignupParams,
    responses(
        (status = 200, description = "A session (autoconfirm or anonymous) or the new user", body = crate::api::docs::SignupResponse),
        (status = 400, description = "Invalid input, phone_provider_disabled", body = crate::api::ErrorBody),
        (status = 422, description = "Signups disabled, user exists, weak password, sms_send_failed", body = crate::api::ErrorBody),
        (status = 429, description = "over_email_send_rate_limit / over_sms_send_rate_limit (confirmation re-sent too soon)", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_signup(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Json(params): Json<SignupParams>,
) -> Result<Response> {
    let (email, phone) = params.email_and_phone();
    let request = SignUp {
        email,
        phone,
        password: params.password.as_deref(),
        data: params.data.as_ref(),
        code_challenge: params.code_challenge.as_deref(),
        code_challenge_method: params.code_challenge_method.as_deref(),
        channel: params.channel.as_deref(),
        redirect_to: &redirect_to,
    };
    Ok(match signup::sign_up(&deps(&state), &client, &request).await? {
        SignedUp::Session {
            tokens,
            user,
            identities,
        } => axum::Json(SessionResponse::new(tokens, user, identities, None)).into_response(),
        SignedUp::Pending { user, identities } => axum::Json(UserResponse::new(user, identities)).into_response(),
    })
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        hot: &state.hot,
        accounts: &state.accounts,
        outbox: &state.outbox,
        sessions: &state.sessions,
        hasher: &state.hasher,
        policy: &state.config.password,
    }
}
