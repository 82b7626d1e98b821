//! Custom providers (GoTrue's `internal/api/provider/custom_oauth.go`): OAuth 2 or OpenID
//! Connect providers an admin added through `/admin/custom-providers`, named `custom:<id>`.
//! `auth` reads their settings from the database for every flow (so every replica sees a change
//! at once) and builds one here; they reach their provider through a client of their own,
//! guarded against requests into Latchkey's network ([`super::url_guard`]), with their own
//! cache of discovery documents and keys.

mod mapping;
mod provider;

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::OAuthProvider;
use super::http::Http;
use super::oidc::{Discovery, IdTokenVerifier};
use super::url_guard::UrlPolicy;
use super::{OAuthClient, ProviderError};

pub use mapping::{BLOCKED_TARGETS, RESERVED_AUTHORIZATION_PARAMS};

/// How a custom provider is reached.
#[derive(Debug, Clone)]
pub enum CustomKind {
    /// OpenID Connect: the endpoints and keys come from the issuer's discovery document.
    Oidc {
        issuer: String,
        discovery_url: Option<String>,
    },
    /// Plain OAuth 2: explicit endpoints, the user from the userinfo URL.
    OAuth2 {
        authorization_url: String,
        token_url: String,
        userinfo_url: String,
    },
}

/// What `auth` gives this layer of a stored custom provider.
#[derive(Debug, Clone)]
pub struct CustomSettings {
    /// `custom:<id>`: the provider's name in flows and identities.
    pub identifier: String,
    pub kind: CustomKind,
    pub client_id: String,
    pub client_secret: SecretString,
    /// More audiences accepted in ID tokens (mobile apps' client ids).
    pub acceptable_client_ids: Vec<String>,
    pub scopes: Vec<String>,
    /// PKCE towards the provider.
    pub pkce_enabled: bool,
    /// Identity claim ← the provider's claim of that name (or a fixed value).
    pub attribute_mapping: Map<String, Value>,
    /// Added to every authorize URL.
    pub authorization_params: Vec<(String, String)>,
    /// The provider's claims copied as they are into `custom_claims`.
    pub custom_claims_allowlist: Vec<String>,
    pub skip_nonce_check: bool,
}

/// Builds custom providers; holds what they share.
#[derive(Debug)]
pub struct CustomProviders {
    http: Http,
    verifier: Arc<IdTokenVerifier>,
    policy: UrlPolicy,
    /// `<GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL or API_EXTERNAL_URL>/callback`.
    redirect_uri: String,
}

impl CustomProviders {
    pub(super) fn new(http: Http, policy: UrlPolicy, redirect_uri: String) -> Self {
        CustomProviders {
            verifier: Arc::new(IdTokenVerifier::new(http.clone())),
            http,
            policy,
            redirect_uri,
        }
    }

    /// The rules the URLs of custom providers must follow.
    pub fn url_policy(&self) -> UrlPolicy {
        self.policy
    }

    /// The callback URL custom providers send the browser back to.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The provider `settings` describe.
    pub fn build(&self, settings: CustomSettings) -> Arc<dyn OAuthProvider> {
        let client = OAuthClient::new(
            self.http.clone(),
            settings.client_id.clone(),
            Some(settings.client_secret.clone()),
            self.redirect_uri.clone(),
        );
        Arc::new(provider::Custom::new(settings, client, &self.verifier))
    }

    /// The discovery document at `url`, which must name `issuer`, with every endpoint a
    /// custom provider's URL may be (checked again on every request).
    pub async fn discover(&self, url: &str, issuer: &str) -> Result<Discovery, ProviderError> {
        let discovery = self.verifier.discover(url, issuer).await?;
        let endpoints = [
            Some(&discovery.authorization_endpoint),
            Some(&discovery.token_endpoint),
            Some(&discovery.jwks_uri),
            discovery.userinfo_endpoint.as_ref(),
        ];
        for endpoint in endpoints.into_iter().flatten() {
            self.policy
                .check(endpoint)
                .map_err(|refusal| ProviderError::Metadata(format!("{endpoint}: {refusal}")))?;
        }
        Ok((*discovery).clone())
    }
}
