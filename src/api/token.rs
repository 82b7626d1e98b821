//! `POST /token?grant_type=...`: one handler dispatching on the grant type, as GoTrue does.
//! Also `POST /refresh {refresh_token}`, the simpler shape some HeliosDB Nano clients use.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::AuthUser;
use crate::api::current_user;
use crate::api::extract::{Authorization, Json, Query};
use crate::api::state::AppState;
use crate::api::types::{SessionResponse, WeakPasswordInfo};
use crate::auth::id_token::{self, Grant};
use crate::auth::session::{self, Client, Refreshed};
use crate::auth::sign_in;
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_token))
        .routes(routes!(post_refresh))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TokenQuery {
    /// `password`, `refresh_token`, `pkce` or `id_token`.
    #[param(example = "password")]
    pub grant_type: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "someone@example.com", "password": "a-long-password"}))]
pub struct TokenParams {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// `pkce` grant: the `?code=` the redirect carried.
    #[serde(default)]
    pub auth_code: Option<String>,
    /// `pkce` grant: the verifier whose challenge started the flow.
    #[serde(default)]
    pub code_verifier: Option<String>,
    /// `id_token` grant: the ID token the app got from the provider's SDK.
    #[serde(default)]
    pub id_token: Option<String>,
    /// `id_token` grant: the access token issued with it (checked against `at_hash`).
    #[serde(default)]
    pub access_token: Option<String>,
    /// `id_token` grant: the raw nonce; the token carries its SHA-256 (hex).
    #[serde(default)]
    pub nonce: Option<String>,
    /// `id_token` grant: `apple`, `google`, `azure`, `facebook`, `keycloak`, `kakao` or
    /// `custom:<id>`.
    #[serde(default)]
    pub provider: Option<String>,
    /// `id_token` grant, deprecated: with `issuer`, instead of `provider`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    /// `id_token` grant: link the identity to the signed-in user (bearer token) instead.
    #[serde(default)]
    pub link_identity: bool,
}

/// Sign in with a password, exchange a refresh token for a new session, exchange a PKCE
/// auth code (with its verifier) for a session, or sign in with a provider's ID token.
#[utoipa::path(
    post, path = "/token", tag = "auth",
    params(TokenQuery),
    request_body = TokenParams,
    responses(
        (status = 200, description = "A session", body = SessionResponse),
        (status = 400, description = "Invalid credentials, unconfirmed email, bad refresh token, bad_code_verifier; id_token: a token that does not verify, another audience, a nonce that does not match, provider_disabled", body = crate::api::ErrorBody),
        (status = 401, description = "id_token with link_identity: no bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "id_token with link_identity: a bearer token that does not verify", body = crate::api::ErrorBody),
        (status = 404, description = "flow_state_not_found: unknown or used auth code", body = crate::api::ErrorBody),
        (status = 422, description = "flow_state_expired; id_token: provider_email_needs_verification, identity_already_exists", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_token(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    client: Client,
    authorization: Authorization,
    Json(params): Json<TokenParams>,
) -> Result<Response> {
    match query.grant_type.as_deref().unwrap_or("") {
        "password" => password_grant(&state, &client, params).await,
        "refresh_token" => refresh_grant(&state, &client, params.refresh_token.as_deref()).await,
        "pkce" => pkce_grant(&state, &client, &params).await,
        "id_token" => id_token_grant(&state, &client, &authorization, &params).await,
        // GoTrue answers unknown grants with invalid_credentials.
        _ => Err(Error::bad_request(
            ErrorCode::InvalidCredentials,
            "unsupported_grant_type",
        )),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefreshParams {
    pub refresh_token: Option<String>,
}

/// Rotate a refresh token (same as `/token?grant_type=refresh_token`; HeliosDB Nano's shape).
#[utoipa::path(
    post, path = "/refresh", tag = "auth",
    request_body = RefreshParams,
    responses(
        (status = 200, description = "A session", body = SessionResponse),
        (status = 400, description = "Unknown, reused or expired refresh token", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_refresh(
    State(state): State<AppState>,
    client: Client,
    Json(params): Json<RefreshParams>,
) -> Result<Response> {
    refresh_grant(&state, &client, params.refresh_token.as_deref()).await
}

async fn refresh_grant(state: &AppState, client: &Client, token: Option<&str>) -> Result<Response> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::oauth_invalid_request("refresh_token required"))?;
    match session::refresh(&state.hot, &state.sessions, token, client).await? {
        Refreshed::Rotated { tokens, row } => current_user::session_response(&tokens, &row.user()?),
        Refreshed::Decided {
            tokens,
            user,
            identities,
        } => Ok(axum::Json(SessionResponse::new(tokens, *user, identities, None)).into_response()),
    }
}

async fn password_grant(state: &AppState, client: &Client, params: TokenParams) -> Result<Response> {
    let deps = sign_in::Deps {
        hot: &state.hot,
        accounts: &state.accounts,
        sessions: &state.sessions,
        hasher: &state.hasher,
        policy: &state.config.password,
        attempt_hook: state.password_hook.as_ref(),
        phone_enabled: state.outbox.sms(crate::auth::outbox::PhoneUse::SignUp).is_ok(),
    };
    let email = given(params.email.as_deref());
    let phone = given(params.phone.as_deref());
    let password = params.password.as_deref().unwrap_or_default();
    let signed_in = sign_in::with_password(&deps, client, email, phone, password).await?;
    let weak_password = signed_in.weak_password.map(|weak| WeakPasswordInfo {
        message: weak.message,
        reasons: weak.reasons.iter().map(|r| r.to_string()).collect(),
    });
    let response = SessionResponse::new(signed_in.tokens, signed_in.user, signed_in.identities, weak_password);
    Ok(axum::Json(response).into_response())
}

async fn pkce_grant(state: &AppState, client: &Client, params: &TokenParams) -> Result<Response> {
    let mut tx = state.db.begin().await?;
    let exchanged = crate::auth::pkce::exchange(
        &mut tx,
        &state.sessions,
        state.config.flow_state_expiry,
        params.auth_code.as_deref().unwrap_or(""),
        params.code_verifier.as_deref().unwrap_or(""),
        client,
    )
    .await?;
    tx.commit().await?;
    let flow = exchanged.flow;
    let mut response = SessionResponse::new(exchanged.tokens, exchanged.user, exchanged.identities, None);
    // An OAuth flow hands back the provider's tokens, as GoTrue does (an empty one is left out).
    if flow.authentication_method == "oauth" {
        response.provider_token = Some(flow.provider_access_token.unwrap_or_default());
        response.provider_refresh_token = Some(flow.provider_refresh_token.unwrap_or_default());
    }
    Ok(axum::Json(response).into_response())
}

async fn id_token_grant(
    state: &AppState,
    client: &Client,
    authorization: &Authorization,
    params: &TokenParams,
) -> Result<Response> {
    // The user to link to, only when linking: supabase-js sends its anon key as the bearer
    // token of every other request.
    let link_to = if params.link_identity {
        let Some(token) = authorization.bearer() else {
            return Err(Error::oauth(
                "invalid request",
                "Linking requires a valid user access token in Authorization",
            ));
        };
        Some(AuthUser::of_token(Some(token), state).await?.user.id)
    } else {
        None
    };
    let deps = id_token::Deps {
        db: &state.db,
        providers: &state.providers,
        custom_providers: &state.config.external.custom,
        outbox: &state.outbox,
        accounts: &state.accounts,
        sessions: &state.sessions,
        redirects: &state.redirects,
        manual_linking_enabled: state.config.manual_linking_enabled,
    };
    let grant = Grant {
        id_token: params.id_token.as_deref().unwrap_or_default(),
        access_token: params.access_token.as_deref(),
        nonce: params.nonce.as_deref(),
        provider: params.provider.as_deref(),
        client_id: params.client_id.as_deref(),
        issuer: params.issuer.as_deref(),
        link_to,
    };
    let signed_in = id_token::sign_in(&deps, client, grant).await?;
    let response = SessionResponse::new(signed_in.tokens, signed_in.user, signed_in.identities, None);
    Ok(axum::Json(response).into_response())
}

/// A field as the grant uses it: trimmed, `None` when blank.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}
