//! The admin use cases of custom providers (GoTrue's `custom_oauth_admin.go`): list, create,
//! read, update and delete `_auth_custom_oauth_providers` rows, with GoTrue's checks and
//! errors. Every URL passes the server-side-request-forgery rules before it is stored
//! (`providers::url_guard`, DNS included), and an OpenID Connect provider's discovery document
//! is fetched and checked at once, so that a misconfiguration shows here and not at sign-in.

mod fields;

use crate::db::Pool;
use serde_json::Value;
use uuid::Uuid;

use crate::config::CustomOAuthConfig;
use crate::db::custom_providers::{self, CustomProviderRow};
use crate::error::{Error, ErrorCode, Result};
use crate::providers::Registry;

pub use fields::ProviderFields;

/// What the admin use cases need.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub providers: &'a Registry,
    pub config: &'a CustomOAuthConfig,
}

impl Deps<'_> {
    /// GoTrue's answer on every route while custom providers are switched off.
    fn require_enabled(&self) -> Result<()> {
        if self.config.enabled {
            Ok(())
        } else {
            Err(Error::not_found(
                ErrorCode::FeatureDisabled,
                "Custom OAuth providers are disabled",
            ))
        }
    }
}

fn not_found() -> Error {
    Error::not_found(ErrorCode::CustomProviderNotFound, "Custom OAuth provider not found")
}

/// The `{identifier}` of a route: it must carry the `custom:` prefix.
fn path_identifier(identifier: &str) -> Result<&str> {
    if identifier.is_empty() {
        return Err(Error::validation("identifier is required"));
    }
    if !identifier.starts_with("custom:") {
        return Err(Error::validation(format!(
            "identifier must start with 'custom:' prefix, e.g. 'custom:{identifier}'"
        )));
    }
    Ok(identifier)
}

/// Every provider, newest first; `provider_type` filters (`oauth2` or `oidc`).
pub async fn list(deps: &Deps<'_>, provider_type: Option<&str>) -> Result<Vec<CustomProviderRow>> {
    deps.require_enabled()?;
    let provider_type = provider_type.filter(|t| !t.is_empty());
    if provider_type.is_some_and(|t| t != "oauth2" && t != "oidc") {
        return Err(Error::validation("type must be either 'oauth2' or 'oidc'"));
    }
    Ok(custom_providers::list(deps.db, provider_type).await?)
}

pub async fn get(deps: &Deps<'_>, identifier: &str) -> Result<CustomProviderRow> {
    deps.require_enabled()?;
    let identifier = path_identifier(identifier)?;
    custom_providers::find(deps.db, identifier).await?.ok_or_else(not_found)
}

pub async fn create(deps: &Deps<'_>, fields: &ProviderFields<'_>) -> Result<CustomProviderRow> {
    deps.require_enabled()?;
    let mut row = fields.new_row(Uuid::new_v4())?;
    if deps.config.max_providers > 0 && custom_providers::count(deps.db).await? >= i64::from(deps.config.max_providers)
    {
        return Err(over_quota());
    }
    check_urls(deps, &row).await?;
    if custom_providers::find(deps.db, &row.identifier).await?.is_some() {
        return Err(identifier_taken());
    }
    if row.provider_type == "oidc" {
        row.cached_discovery = Some(discover(deps, &row).await?);
        row.discovery_cached_at = Some(chrono::Utc::now());
    }
    // The count again, under a lock: concurrent creations cannot pass the quota together.
    let mut tx = deps.db.begin().await?;
    custom_providers::lock_for_create(&mut *tx).await?;
    if deps.config.max_providers > 0 && custom_providers::count(&mut *tx).await? >= i64::from(deps.config.max_providers)
    {
        return Err(over_quota());
    }
    let created = custom_providers::insert(&mut *tx, &row)
        .await?
        .ok_or_else(identifier_taken)?;
    tx.commit().await?;
    Ok(created)
}

pub async fn update(deps: &Deps<'_>, identifier: &str, fields: &ProviderFields<'_>) -> Result<CustomProviderRow> {
    deps.require_enabled()?;
    let identifier = path_identifier(identifier)?;
    fields.check_maps()?;
    let mut row = custom_providers::find(deps.db, identifier)
        .await?
        .ok_or_else(not_found)?;
    let rediscover = fields.apply(&mut row)?;
    check_urls(deps, &row).await?;
    if rediscover {
        row.cached_discovery = Some(discover(deps, &row).await?);
        row.discovery_cached_at = Some(chrono::Utc::now());
    }
    custom_providers::update(deps.db, &row).await?.ok_or_else(not_found)
}

pub async fn delete(deps: &Deps<'_>, identifier: &str) -> Result<()> {
    deps.require_enabled()?;
    let identifier = path_identifier(identifier)?;
    if custom_providers::delete(deps.db, identifier).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

fn over_quota() -> Error {
    Error::bad_request(
        ErrorCode::OverCustomProviderQuota,
        "Maximum number of custom OAuth/OIDC providers reached",
    )
}

fn identifier_taken() -> Error {
    Error::bad_request(
        ErrorCode::Conflict,
        "A custom OAuth provider with this identifier already exists",
    )
}

/// Every URL of the provider must be `https://` and reach only public addresses.
async fn check_urls(deps: &Deps<'_>, row: &CustomProviderRow) -> Result<()> {
    let policy = deps.providers.custom().url_policy();
    let urls = [
        &row.issuer,
        &row.discovery_url,
        &row.authorization_url,
        &row.token_url,
        &row.userinfo_url,
        &row.jwks_uri,
    ];
    for url in urls.into_iter().flatten() {
        policy
            .check_resolved(url)
            .await
            .map_err(|refusal| Error::validation(refusal.to_string()))?;
    }
    Ok(())
}

/// The provider's discovery document, fetched and checked (it must name the issuer and have
/// every endpoint Latchkey needs, all of them passing the URL rules).
async fn discover(deps: &Deps<'_>, row: &CustomProviderRow) -> Result<Value> {
    let issuer = row.issuer.as_deref().unwrap_or_default();
    let url = match row.discovery_url.as_deref() {
        Some(url) => url.to_owned(),
        None => format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
    };
    let discovery = deps
        .providers
        .custom()
        .discover(&url, issuer)
        .await
        .map_err(|err| Error::validation(format!("OIDC discovery from \"{url}\" failed: {err}")))?;
    serde_json::to_value(discovery).map_err(Error::internal)
}
