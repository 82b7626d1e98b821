//! `GET /health`, `GET /health/ready` and `GET /settings`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::state::AppState;
use crate::error::{Error, ErrorCode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_health))
        .routes(routes!(get_ready))
        .routes(routes!(get_settings))
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

#[derive(Serialize, ToSchema)]
pub struct ReadyResponse {
    /// `ok`: a statement ran on the database.
    #[schema(example = "ok")]
    database: &'static str,
}

/// Readiness (not in GoTrue): `200` when the database answers, `503` while it does not, so a
/// load balancer or orchestrator sends traffic only to replicas that can serve it. `/health`
/// stays the liveness check: it answers as long as the process runs.
#[utoipa::path(
    get, path = "/health/ready", tag = "general",
    responses(
        (status = 200, body = ReadyResponse),
        (status = 503, description = "The database does not answer", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn get_ready(State(state): State<AppState>) -> Result<Json<ReadyResponse>, Error> {
    if state.readiness.check(&state.db).await {
        Ok(Json(ReadyResponse { database: "ok" }))
    } else {
        Err(Error::unavailable(
            ErrorCode::ServiceUnavailable,
            "Database is unavailable, please retry after a moment.",
        ))
    }
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
        phone_autoconfirm: config.sms.autoconfirm,
        sms_provider: config.sms.provider.as_ref().map_or("", |p| p.name()),
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
        // GoTrue reports the phone provider's switch; Latchkey says `true` only when a text
        // can actually go out (a gateway is configured), as every phone route needs one.
        phone: state.outbox.sms(crate::auth::outbox::PhoneUse::SendCode).is_ok(),
        zoom: on("zoom"),
    }
}
