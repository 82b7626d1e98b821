//! The enabled providers, built once at start-up from `GOTRUE_EXTERNAL_<P>_*`, with the HTTP
//! client and the ID-token verifier (and so the key caches) they share; and the factory of
//! custom providers, with their own guarded client.
//!
//! Adding a provider is one module and one row of [`IMPLEMENTED`].

use std::sync::Arc;

use url::Url;

use super::custom::CustomProviders;
use super::http::Http;
use super::oidc::IdTokenVerifier;
use super::url_guard::UrlPolicy;
use super::{OAuthClient, OAuthProvider, Setup, SetupError};
use crate::config::{ConfigError, ExternalConfig};

type Build = fn(Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError>;

/// One implemented provider.
struct Implemented {
    /// GoTrue's name (`GOTRUE_EXTERNAL_<NAME>_*`, `/authorize?provider=<name>`).
    name: &'static str,
    build: Build,
    /// Signs in with ID tokens (`grant_type=id_token`): may be configured without a secret.
    id_tokens: bool,
}

const fn row(name: &'static str, build: Build, id_tokens: bool) -> Implemented {
    Implemented { name, build, id_tokens }
}

/// Every provider Latchkey implements.
const IMPLEMENTED: [Implemented; 21] = [
    row("apple", super::apple::build, true),
    row("azure", super::azure::build, true),
    row("bitbucket", super::bitbucket::build, false),
    row("discord", super::discord::build, false),
    row("facebook", super::facebook::build, true),
    row("figma", super::figma::build, false),
    row("fly", super::fly::build, false),
    row("github", super::github::build, false),
    row("gitlab", super::gitlab::build, false),
    row("google", super::google::build, true),
    row("kakao", super::kakao::build, true),
    row("keycloak", super::keycloak::build, true),
    row("linkedin_oidc", super::linkedin_oidc::build, false),
    row("notion", super::notion::build, false),
    row("slack_oidc", super::slack_oidc::build, false),
    row("snapchat", super::snapchat::build, false),
    row("spotify", super::spotify::build, false),
    row("twitch", super::twitch::build, false),
    row("workos", super::workos::build, false),
    row("x", super::x::build, false),
    row("zoom", super::zoom::build, false),
];

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The providers a client may sign in with.
#[derive(Debug)]
pub struct Registry {
    providers: Vec<Arc<dyn OAuthProvider>>,
    custom: CustomProviders,
}

impl Registry {
    /// The enabled providers of `config`. `external_url` (`API_EXTERNAL_URL`, or the address
    /// the server bound to) makes the default redirect URI, `<external_url>/callback`.
    pub fn new(config: &ExternalConfig, external_url: &Url) -> Result<Registry, RegistryError> {
        let http = Http::new()?;
        let verifier = Arc::new(IdTokenVerifier::new(http.clone()));
        let callback = |base: &Url| format!("{}/callback", base.as_str().trim_end_matches('/'));
        let mut providers: Vec<Arc<dyn OAuthProvider>> = Vec::new();
        for (name, provider) in &config.providers {
            let var = |field: &str| format!("GOTRUE_EXTERNAL_{}_{field}", name.to_uppercase());
            let Some(implemented) = IMPLEMENTED.iter().find(|i| i.name == name) else {
                warn_not_implemented(name, &var("ENABLED"));
                continue;
            };
            if provider.secret.is_none() && !implemented.id_tokens {
                return Err(ConfigError {
                    var: var("SECRET"),
                    message: "required when the provider is enabled".into(),
                }
                .into());
            }
            let redirect_uri = match &provider.redirect_uri {
                Some(uri) => uri.to_string(),
                None => callback(external_url),
            };
            let client = OAuthClient::new(
                http.clone(),
                provider.client_id().to_owned(),
                provider.secret.clone(),
                redirect_uri,
            );
            let setup = Setup {
                config: provider,
                client,
                verifier: &verifier,
                ios_bundle_id: config.ios_bundle_id.as_deref(),
            };
            let built = (implemented.build)(setup).map_err(|err| ConfigError {
                var: var(err.field),
                message: err.message,
            })?;
            providers.push(Arc::from(built));
        }
        let policy = UrlPolicy {
            allow_private: config.custom.allow_private_urls,
        };
        if policy.allow_private {
            tracing::warn!(
                "LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS is on: custom providers may reach http:// and \
                 private addresses (local development and tests only)"
            );
        }
        let custom_base = config.custom.external_url.as_ref().unwrap_or(external_url);
        let custom = CustomProviders::new(Http::guarded(policy)?, policy, callback(custom_base));
        Ok(Registry { providers, custom })
    }

    /// The enabled built-in provider called `name` (GoTrue's name, lower case); `None` for one
    /// that is unknown or disabled.
    pub fn get(&self, name: &str) -> Option<Arc<dyn OAuthProvider>> {
        self.providers.iter().find(|p| p.name() == name).cloned()
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The enabled provider whose ID tokens name `issuer`.
    pub fn for_id_token_issuer(&self, issuer: &str) -> Option<Arc<dyn OAuthProvider>> {
        self.providers.iter().find(|p| p.is_id_token_issuer(issuer)).cloned()
    }

    /// Custom providers: built from their stored settings, with their own guarded client.
    pub fn custom(&self) -> &CustomProviders {
        &self.custom
    }
}

fn warn_not_implemented(name: &str, var: &str) {
    let hint = match name {
        "twitter" => "; Twitter's OAuth 2.0 sign-in is the `x` provider (GOTRUE_EXTERNAL_X_*)",
        "linkedin" => "; LinkedIn's current sign-in is `linkedin_oidc`",
        "slack" => "; Slack's current sign-in is `slack_oidc`",
        _ => "",
    };
    tracing::warn!(%var, "Latchkey does not implement the provider {name}: it stays disabled{hint}");
}

#[cfg(test)]
mod tests;
