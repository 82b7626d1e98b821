//! `/sso`: SAML single sign-on, which Latchkey does not offer. GoTrue with SAML off answers every
//! route of this family with `404 saml_provider_disabled` ("SAML 2.0 is disabled") before it
//! reads the request; clients (supabase-py's `sign_in_with_sso`, supabase-js's
//! `signInWithSSO`) show that message, so Latchkey gives the same answer instead of a bare 404.
//! Like the router's own 404, these routes are not in the OpenAPI document: nothing is served.

use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;

use crate::api::state::AppState;
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/sso", post(saml_disabled))
        .route("/sso/saml/metadata", get(saml_disabled))
        .route("/sso/saml/acs", post(saml_disabled))
}

async fn saml_disabled() -> Result<()> {
    Err(Error::not_found(
        ErrorCode::SamlProviderDisabled,
        "SAML 2.0 is disabled",
    ))
}
