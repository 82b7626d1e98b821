//! `/admin/custom-providers` and `/admin/custom-providers/{identifier}` (supabase-js's
//! `auth.admin.customProviders`): custom OAuth 2 and OpenID Connect providers, signed in with
//! as `custom:<id>`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::admin::Admin;
use crate::api::extract::{Json, Query};
use crate::api::state::AppState;
use crate::auth::custom_providers::{self, Deps, ProviderFields};
use crate::db::custom_providers::CustomProviderRow;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        providers: &state.providers,
        config: &state.config.external.custom,
    }
}

/// A custom provider, GoTrue's shape (the client secret is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomProviderResponse {
    id: Uuid,
    /// `oauth2` or `oidc`.
    provider_type: String,
    /// `custom:<id>`.
    identifier: String,
    name: String,
    client_id: String,
    acceptable_client_ids: Vec<String>,
    scopes: Vec<String>,
    pkce_enabled: bool,
    #[schema(value_type = Object)]
    attribute_mapping: Value,
    custom_claims_allowlist: Vec<String>,
    #[schema(value_type = Object)]
    authorization_params: Value,
    enabled: bool,
    email_optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery_url: Option<String>,
    skip_nonce_check: bool,
    /// OIDC: the discovery document read when the issuer was last set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    discovery_document: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    userinfo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CustomProviderRow> for CustomProviderResponse {
    fn from(row: CustomProviderRow) -> Self {
        CustomProviderResponse {
            id: row.id,
            provider_type: row.provider_type,
            identifier: row.identifier,
            name: row.name,
            client_id: row.client_id,
            acceptable_client_ids: row.acceptable_client_ids,
            scopes: row.scopes,
            pkce_enabled: row.pkce_enabled,
            attribute_mapping: row.attribute_mapping,
            custom_claims_allowlist: row.custom_claims_allowlist,
            authorization_params: row.authorization_params,
            enabled: row.enabled,
            email_optional: row.email_optional,
            issuer: row.issuer,
            discovery_url: row.discovery_url,
            skip_nonce_check: row.skip_nonce_check,
            discovery_document: row.cached_discovery,
            authorization_url: row.authorization_url,
            token_url: row.token_url,
            userinfo_url: row.userinfo_url,
            jwks_uri: row.jwks_uri,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomProviderList {
    providers: Vec<CustomProviderResponse>,
}

/// A custom provider as the admin sets it (GoTrue's `AdminCustomOAuthProviderParams`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "provider_type": "oidc", "identifier": "custom:acme", "name": "Acme SSO",
    "client_id": "latchkey", "client_secret": "s3cret", "issuer": "https://sso.acme.example"
}))]
pub struct CustomProviderParams {
    /// `oauth2` or `oidc` (create only).
    provider_type: Option<String>,
    /// `custom:<id>`: lower-case letters, digits, `:` and `-` (create only).
    identifier: Option<String>,
    name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    acceptable_client_ids: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    pkce_enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    attribute_mapping: Option<Map<String, Value>>,
    custom_claims_allowlist: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    authorization_params: Option<Map<String, Value>>,
    enabled: Option<bool>,
    email_optional: Option<bool>,
    /// OIDC: the issuer; its discovery document is read at once.
    issuer: Option<String>,
    discovery_url: Option<String>,
    skip_nonce_check: Option<bool>,
    /// OAuth 2: the endpoints.
    authorization_url: Option<String>,
    token_url: Option<String>,
    userinfo_url: Option<String>,
    jwks_uri: Option<String>,
}

impl CustomProviderParams {
    fn fields(&self) -> ProviderFields<'_> {
        ProviderFields {
            provider_type: self.provider_type.as_deref(),
            identifier: self.identifier.as_deref(),
            name: self.name.as_deref(),
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            acceptable_client_ids: self.acceptable_client_ids.as_deref(),
            scopes: self.scopes.as_deref(),
            pkce_enabled: self.pkce_enabled,
            attribute_mapping: self.attribute_mapping.as_ref(),
            custom_claims_allowlist: self.custom_claims_allowlist.as_deref(),
            authorization_params: self.authorization_params.as_ref(),
            enabled: self.enabled,
            email_optional: self.email_optional,
            issuer: self.issuer.as_deref(),
            discovery_url: self.discovery_url.as_deref(),
            skip_nonce_check: self.skip_nonce_check,
            authorization_url: self.authorization_url.as_deref(),
            token_url: self.token_url.as_deref(),
            userinfo_url: self.userinfo_url.as_deref(),
            jwks_uri: self.jwks_uri.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `oauth2` or `oidc`.
    #[serde(rename = "type")]
    provider_type: Option<String>,
}

/// List the custom providers, newest first.
#[utoipa::path(
    get, path = "/admin/custom-providers", tag = "admin", params(ListQuery),
    responses(
        (status = 200, description = "`{\"providers\": [...]}`", body = CustomProviderList),
        (status = 400, description = "validation_failed: a type that is not `oauth2` or `oidc`", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "feature_disabled: `GOTRUE_CUSTOM_OAUTH_ENABLED=false`", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_providers(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<CustomProviderList>> {
    let rows = custom_providers::list(&deps(&state), query.provider_type.as_deref()).await?;
    let providers = rows.into_iter().map(CustomProviderResponse::from).collect();
    Ok(axum::Json(CustomProviderList { providers }))
}

/// Add a custom provider. An OIDC provider's discovery document is fetched and checked first;
/// every URL must be `https://` and reach a public address.
#[utoipa::path(
    post, path = "/admin/custom-providers", tag = "admin",
    request_body = CustomProviderParams,
    responses(
        (status = 201, description = "The new provider", body = CustomProviderResponse),
        (status = 400, description = "validation_failed (a missing or bad field, a refused URL, a failed discovery), conflict (the identifier is taken), over_custom_provider_quota", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "feature_disabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_provider(
    State(state): State<AppState>,
    _admin: Admin,
    Json(params): Json<CustomProviderParams>,
) -> Result<(StatusCode, axum::Json<CustomProviderResponse>)> {
    let row = custom_providers::create(&deps(&state), &params.fields()).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// One custom provider.
#[utoipa::path(
    get, path = "/admin/custom-providers/{identifier}", tag = "admin",
    params(("identifier" = String, Path, description = "`custom:<id>`")),
    responses(
        (status = 200, description = "The provider", body = CustomProviderResponse),
        (status = 400, description = "validation_failed: the identifier lacks `custom:`", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "custom_provider_not_found, feature_disabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_provider(
    State(state): State<AppState>,
    _admin: Admin,
    Path(identifier): Path<String>,
) -> Result<axum::Json<CustomProviderResponse>> {
    Ok(axum::Json(
        custom_providers::get(&deps(&state), &identifier).await?.into(),
    ))
}

/// Change a custom provider: fields left out (or empty) stay as they are; a new issuer or
/// discovery URL is discovered again.
#[utoipa::path(
    put, path = "/admin/custom-providers/{identifier}", tag = "admin",
    params(("identifier" = String, Path, description = "`custom:<id>`")),
    request_body = CustomProviderParams,
    responses(
        (status = 200, description = "The updated provider", body = CustomProviderResponse),
        (status = 400, description = "validation_failed", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "custom_provider_not_found, feature_disabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_provider(
    State(state): State<AppState>,
    _admin: Admin,
    Path(identifier): Path<String>,
    Json(params): Json<CustomProviderParams>,
) -> Result<axum::Json<CustomProviderResponse>> {
    let row = custom_providers::update(&deps(&state), &identifier, &params.fields()).await?;
    Ok(axum::Json(row.into()))
}

/// Delete a custom provider. Its users keep their identities; signing in with it stops.
#[utoipa::path(
    delete, path = "/admin/custom-providers/{identifier}", tag = "admin",
    params(("identifier" = String, Path, description = "`custom:<id>`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "validation_failed: the identifier lacks `custom:`", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "custom_provider_not_found, feature_disabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_provider(
    State(state): State<AppState>,
    _admin: Admin,
    Path(identifier): Path<String>,
) -> Result<StatusCode> {
    custom_providers::delete(&deps(&state), &identifier).await?;
    Ok(StatusCode::NO_CONTENT)
}
