//! Which provider a name stands for: a built-in one the registry has enabled, or `custom:<id>`,
//! read from `_auth_custom_oauth_providers` for every flow (so a change made on one replica
//! holds on every other at once).

use std::sync::Arc;

use crate::db::Pool;
use serde_json::Value;

use crate::config::CustomOAuthConfig;
use crate::db::custom_providers::{self, CustomProviderRow};
use crate::error::Result;
use crate::providers::custom::{CustomKind, CustomSettings};
use crate::providers::{OAuthProvider, Registry};

/// The prefix of custom providers' names.
pub const CUSTOM_PREFIX: &str = "custom:";

/// Why a name gives no provider to sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No built-in provider of that name is enabled.
    Unknown,
    /// `GOTRUE_CUSTOM_OAUTH_ENABLED=false`.
    CustomProvidersDisabled,
    /// No custom provider of that name.
    CustomNotFound,
    /// The custom provider exists and is disabled.
    CustomDisabled,
}

impl Unavailable {
    /// GoTrue's reason, as `/authorize` words it after "Unsupported provider: ".
    pub fn reason(&self, name: &str) -> String {
        match self {
            Unavailable::Unknown => name.to_owned(),
            Unavailable::CustomProvidersDisabled => "custom OAuth providers are disabled".into(),
            Unavailable::CustomNotFound => format!("custom provider {name} not found"),
            Unavailable::CustomDisabled => format!("custom provider {name} is disabled"),
        }
    }
}

/// The provider called `name` (lower case), or why there is none to use.
pub async fn find(
    db: &Pool,
    registry: &Registry,
    custom: &CustomOAuthConfig,
    name: &str,
) -> Result<std::result::Result<Arc<dyn OAuthProvider>, Unavailable>> {
    if !name.starts_with(CUSTOM_PREFIX) {
        return Ok(registry.get(name).ok_or(Unavailable::Unknown));
    }
    if !custom.enabled {
        return Ok(Err(Unavailable::CustomProvidersDisabled));
    }
    let Some(row) = custom_providers::find(db, name).await? else {
        return Ok(Err(Unavailable::CustomNotFound));
    };
    if !row.enabled {
        return Ok(Err(Unavailable::CustomDisabled));
    }
    Ok(Ok(registry.custom().build(settings(&row))))
}

/// What the providers layer needs of a stored custom provider.
pub fn settings(row: &CustomProviderRow) -> CustomSettings {
    let kind = match row.provider_type.as_str() {
        "oidc" => CustomKind::Oidc {
            issuer: row.issuer.clone().unwrap_or_default(),
            discovery_url: row.discovery_url.clone().filter(|url| !url.is_empty()),
        },
        // The table's checks make these present for `oauth2` rows.
        _ => CustomKind::OAuth2 {
            authorization_url: row.authorization_url.clone().unwrap_or_default(),
            token_url: row.token_url.clone().unwrap_or_default(),
            userinfo_url: row.userinfo_url.clone().unwrap_or_default(),
        },
    };
    let authorization_params = row
        .authorization_params
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect();
    CustomSettings {
        identifier: row.identifier.clone(),
        kind,
        client_id: row.client_id.clone(),
        client_secret: row.client_secret.clone(),
        acceptable_client_ids: row.acceptable_client_ids.clone(),
        scopes: row.scopes.clone(),
        pkce_enabled: row.pkce_enabled,
        attribute_mapping: match &row.attribute_mapping {
            Value::Object(map) => map.clone(),
            _ => Default::default(),
        },
        authorization_params,
        custom_claims_allowlist: row.custom_claims_allowlist.clone(),
        skip_nonce_check: row.skip_nonce_check,
    }
}
