//! HTTP API: one module per GoTrue endpoint family, merged here and mounted both under
//! `/auth/v1` (what supabase-js calls) and at the root (what a gateway like Kong forwards).

pub mod admin;
pub mod auth_user;
pub mod client_ip;
pub mod current_user;
pub mod docs;
pub mod error;
pub mod external;
pub mod extract;
pub mod factors;
pub mod health;
pub mod identities;
pub mod logout;
pub mod middleware;
pub mod observe;
pub mod otp;
pub mod ratelimit;
pub mod readiness;
pub mod reauthenticate;
pub mod recover;
pub mod redirect;
pub mod signup;
pub mod sso;
pub mod state;
mod timestamp;
pub mod token;
pub mod types;
pub mod user;
pub mod verify;
pub mod well_known;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::api::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey",
        description = "A GoTrue-compatible (Supabase Auth) authentication API. Every route is served under \
            /auth/v1 and at the root.",
        license(name = "MIT")
    ),
    servers((url = "/auth/v1", description = "this server, as supabase-js calls it")),
    modifiers(&SecuritySchemes),
    tags(
        (name = "general", description = "Health and settings"),
        (name = "auth", description = "Sign up, sign in, refresh, sign out, email links and codes"),
        (name = "user", description = "The signed-in user"),
        (name = "admin", description = "User administration (service_role key)"),
        (name = "mfa", description = "Multi-factor authentication: TOTP factors, challenges, aal2"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

pub use docs::ErrorBody;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apikey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("apikey"))),
        );
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(signup::router())
        .merge(token::router())
        .merge(logout::router())
        .merge(user::router())
        .merge(admin::router())
        .merge(otp::router())
        .merge(recover::router())
        .merge(verify::router())
        .merge(reauthenticate::router())
        .merge(external::router())
        .merge(identities::router())
        .merge(well_known::router())
        .merge(factors::router())
        .merge(sso::router())
}

/// The OpenAPI document generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::complete(api_routes().split_for_parts().1)
}

/// The whole application: routes, Swagger UI and the middleware stack.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api_routes().split_for_parts();
    let routes = Router::new()
        .nest("/auth/v1", api.clone())
        .merge(api)
        .merge(docs::swagger_ui(docs::complete(openapi)))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed);

    routes
        .layer(
            ServiceBuilder::new()
                // Outermost, as GoTrue's rs/cors around its router: a preflight is answered
                // here, without a request id or log line.
                .layer(middleware::cors())
                .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::per_request,
                )),
        )
        .with_state(state)
}
