//! `GET /health`, `GET /settings` and `GET /.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_health))
        .routes(routes!(get_settings))
        .routes(routes!(get_jwks))
}

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "0.1.0")]
    version: &'static str,
    #[schema(example = "GoTrue")]
    name: &'static str,
    description: &'static str,
}

/// Service health (GoTrue's shape, so existing health checks keep working).
#[utoipa::path(
    get, path = "/health", tag = "general",
    responses((status = 200, body = HealthResponse)),
    security((), ("apikey" = []))
)]
pub async fn get_health() -> Json<HealthResponse> {
    Json(HealthResponse {
        version: env!("CARGO_PKG_VERSION"),
        name: "GoTrue",
        description: "GoTrue is a user registration and authentication API",
    })
}

/// Which sign-in methods are enabled, GoTrue's list. `linkedin`, `slack` and `twitter`
/// (GoTrue's older LinkedIn and Slack sign-ins, and Twitter's OAuth 1.0a) are not implemented
/// and stay `false`; their successors are `linkedin_oidc`, `slack_oidc` and `x`. GoTrue's list
/// lacks `x`; Latchkey adds it, so that a sign-in page can tell whether to show the button.
#[derive(Serialize, ToSchema)]
pub struct ExternalProviders {
    anonymous_users: bool,
    apple: bool,
    azure: bool,
    bitbucket: bool,
    discord: bool,
    facebook: bool,
    snapchat: bool,
    figma: bool,
    fly: bool,
    github: bool,
    gitlab: bool,
    google: bool,
    keycloak: bool,
    kakao: bool,
    linkedin: bool,
    linkedin_oidc: bool,
    notion: bool,
    spotify: bool,
    slack: bool,
    slack_oidc: bool,
    workos: bool,
    twitch: bool,
    twitter: bool,
    x: bool,
    email: bool,
    phone: bool,
    zoom: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SettingsResponse {
    external: ExternalProviders,
    disable_signup: bool,
    mailer_autoconfirm: bool,
    phone_autoconfirm: bool,
    sms_provider: &'static str,
    saml_enabled: bool,
    saml_private_key_next_configured: bool,
    passkeys_enabled: bool,
}

/// Public server settings (GoTrue's `/settings`).
#[utoipa::path(
    get, path = "/settings", tag = "general",
    responses((status = 200, body = SettingsResponse)),
    security((), ("apikey" = []))
)]
pub async fn get_settings(State(state): State<AppState>) -> Json<SettingsResponse> {
    let config = &state.config;
    Json(SettingsResponse {
        external: external_providers(&state),
        disable_signup: config.disable_signup,
        mailer_autoconfirm: config.mailer_autoconfirm,
        phone_autoconfirm: false,
        sms_provider: "",
        saml_enabled: false,
        saml_private_key_next_configured: false,
        passkeys_enabled: false,
    })
}

fn external_providers(state: &AppState) -> ExternalProviders {
    let on = |name: &str| state.providers.is_enabled(name);
    let config = &state.config;
    ExternalProviders {
        anonymous_users: config.anonymous_users_enabled,
        apple: on("apple"),
        azure: on("azure"),
        bitbucket: on("bitbucket"),
        discord: on("discord"),
        facebook: on("facebook"),
        snapchat: on("snapchat"),
        figma: on("figma"),
        fly: on("fly"),
        github: on("github"),
        gitlab: on("gitlab"),
        google: on("google"),
        keycloak: on("keycloak"),
        kakao: on("kakao"),
        linkedin: false,
        linkedin_oidc: on("linkedin_oidc"),
        notion: on("notion"),
        spotify: on("spotify"),
        slack: false,
        slack_oidc: on("slack_oidc"),
        workos: on("workos"),
        twitch: on("twitch"),
        twitter: false,
        x: on("x"),
        email: config.external_email_enabled,
        phone: false,
        zoom: on("zoom"),
    }
}

#[derive(Serialize, ToSchema)]
pub struct JwksResponse {
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// Public signing keys. Tokens are signed with the HS256 secret, which is never published, so
/// the list is empty (as GoTrue's with an HS256-only setup); supabase-js then verifies tokens
/// through `GET /user`.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "general",
    responses((status = 200, body = JwksResponse)),
    security((), ("apikey" = []))
)]
pub async fn get_jwks() -> ([(axum::http::HeaderName, &'static str); 1], Json<JwksResponse>) {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=600")],
        Json(JwksResponse { keys: vec![] }),
    )
}
