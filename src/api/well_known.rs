//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: the public keys
//! that verify this server's tokens, and where to find them (GoTrue's `api/jwks.go`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, header};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_jwks))
        .routes(routes!(get_openid_configuration))
}

/// Both documents may be cached for ten minutes, as GoTrue serves them. A rotation publishes
/// the new key (verify-only) at least that long before it signs.
const CACHEABLE: [(HeaderName, &str); 1] = [(header::CACHE_CONTROL, "public, max-age=600")];

#[derive(Serialize, ToSchema)]
pub struct JwksResponse {
    /// Public JWKs (`kty`, `crv`/`n`/`e`, `x`/`y`, `use: sig`, `alg`, `kid`,
    /// `key_ops: ["verify"]`).
    #[schema(value_type = Vec<Object>)]
    keys: Vec<jsonwebtoken::jwk::Jwk>,
}

/// The public keys of every asymmetric key in `GOTRUE_JWT_KEYS`, the signing key and those
/// that only verify. Symmetric keys (and the HS256 secret) are never listed, so the list is
/// empty for a server that signs with its secret: supabase-js then verifies through
/// `GET /user`.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "general",
    responses((status = 200, body = JwksResponse)),
    security((), ("apikey" = []))
)]
pub async fn get_jwks(State(state): State<AppState>) -> ([(HeaderName, &'static str); 1], Json<JwksResponse>) {
    let keys = state.sessions.tokens().keys().public_keys().keys.clone();
    (CACHEABLE, Json(JwksResponse { keys }))
}

#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    /// `GOTRUE_JWT_ISSUER`, or where this server is reached (`API_EXTERNAL_URL`).
    #[schema(example = "http://localhost:9999")]
    issuer: String,
    #[schema(example = "http://localhost:9999/.well-known/jwks.json")]
    jwks_uri: String,
}

/// Discovery: the issuer and the URL of its keys, for verifiers that start from the issuer.
/// Latchkey is no OAuth 2.1 / OpenID provider, so the document names no authorization, token
/// or userinfo endpoint (newer GoTrue lists those of its OAuth server).
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "general",
    responses((status = 200, body = OpenIdConfiguration)),
    security((), ("apikey" = []))
)]
pub async fn get_openid_configuration(
    State(state): State<AppState>,
) -> ([(HeaderName, &'static str); 1], Json<OpenIdConfiguration>) {
    let base = state.external_url.as_str().trim_end_matches('/');
    // GoTrue derives `jwks_uri` from the issuer, which is empty unless GOTRUE_JWT_ISSUER is
    // set; the external URL is where the keys really are, whatever the issuer says.
    let issuer = state.config.jwt.issuer.clone().unwrap_or_else(|| base.to_owned());
    (
        CACHEABLE,
        Json(OpenIdConfiguration {
            issuer,
            jwks_uri: format!("{base}/.well-known/jwks.json"),
        }),
    )
}
