//! The enabled providers, built once at start-up from `GOTRUE_EXTERNAL_<P>_*`, with the HTTP
//! client and the ID-token verifier (and so the key caches) they share.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::oidc::IdTokenVerifier;
use super::{OAuthClient, OAuthProvider, Setup, github, google};
use crate::config::ExternalConfig;

type Build = fn(Setup<'_>) -> Box<dyn OAuthProvider>;

/// Every provider Latchkey implements, by GoTrue's name (`GOTRUE_EXTERNAL_<NAME>_*`).
const IMPLEMENTED: [(&str, Build); 2] = [("github", github::build), ("google", google::build)];

/// The providers a client may sign in with.
#[derive(Debug)]
pub struct Registry {
    providers: Vec<Box<dyn OAuthProvider>>,
}

impl Registry {
    /// The enabled providers of `config`. `external_url` (`API_EXTERNAL_URL`, or the address
    /// the server bound to) makes the default redirect URI, `<external_url>/callback`.
    pub fn new(config: &ExternalConfig, external_url: &Url) -> Result<Registry, reqwest::Error> {
        // No redirects followed (the OAuth 2 security advice for token requests); GoTrue's
        // 10 s timeout.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let verifier = Arc::new(IdTokenVerifier::new(http.clone()));
        let providers = IMPLEMENTED
            .iter()
            .filter_map(|(name, build)| {
                let config = config.provider(name)?;
                let redirect_uri = match &config.redirect_uri {
                    Some(uri) => uri.to_string(),
                    None => format!("{}/callback", external_url.as_str().trim_end_matches('/')),
                };
                let client = OAuthClient::new(
                    http.clone(),
                    config.client_id.clone(),
                    config.secret.clone(),
                    redirect_uri,
                );
                Some(build(Setup {
                    config,
                    client,
                    verifier: &verifier,
                }))
            })
            .collect();
        Ok(Registry { providers })
    }

    /// The enabled provider called `name` (GoTrue's name, lower case); `None` for one that is
    /// unknown or disabled.
    pub fn get(&self, name: &str) -> Option<&dyn OAuthProvider> {
        self.providers.iter().find(|p| p.name() == name).map(|p| p.as_ref())
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::ProviderConfig;

    fn provider(redirect_uri: Option<&str>, url: Option<&str>) -> Option<ProviderConfig> {
        Some(ProviderConfig {
            client_id: "the-client".into(),
            secret: SecretString::from("the-secret"),
            redirect_uri: redirect_uri.map(|u| Url::parse(u).unwrap()),
            url: url.map(|u| Url::parse(u).unwrap()),
        })
    }

    fn build(config: ExternalConfig) -> Registry {
        Registry::new(&config, &Url::parse("https://auth.example.com/").unwrap()).unwrap()
    }

    #[test]
    fn only_enabled_providers_are_registered() {
        let registry = build(ExternalConfig {
            github: provider(None, None),
            ..ExternalConfig::default()
        });
        assert_eq!(registry.get("github").map(|p| p.name()), Some("github"));
        // Disabled, unknown, or not GoTrue's spelling: the caller's "Unsupported provider".
        for name in ["google", "twitter", "", "GitHub", "github "] {
            assert!(registry.get(name).is_none(), "{name:?}");
            assert!(!registry.is_enabled(name), "{name:?}");
        }
        assert!(build(ExternalConfig::default()).get("github").is_none());
    }

    #[test]
    fn each_provider_is_registered_under_its_own_name() {
        let registry = build(ExternalConfig {
            github: provider(None, None),
            google: provider(None, None),
            ..ExternalConfig::default()
        });
        for (name, _) in IMPLEMENTED {
            assert_eq!(registry.get(name).map(|p| p.name()), Some(name));
        }
        let github = registry.get("github").unwrap();
        assert!(!github.is_oidc());
        assert_eq!(github.default_scopes(), ["user:email"]);
        let google = registry.get("google").unwrap();
        assert!(google.is_oidc());
        assert_eq!(google.default_scopes(), ["email", "profile"]);
    }

    #[test]
    fn the_redirect_uri_is_the_configured_one_or_our_callback() {
        let registry = build(ExternalConfig {
            github: provider(None, None),
            google: provider(Some("https://app.example.com/auth/callback"), None),
            ..ExternalConfig::default()
        });
        let github = registry.get("github").unwrap().client();
        assert_eq!(github.redirect_uri(), "https://auth.example.com/callback");
        assert_eq!(github.client_id(), "the-client");
        let google = registry.get("google").unwrap().client();
        assert_eq!(google.redirect_uri(), "https://app.example.com/auth/callback");
    }

    #[tokio::test]
    async fn the_authorize_url_carries_the_client_the_flow_and_the_scopes() {
        let registry = build(ExternalConfig {
            github: provider(None, Some("https://git.example.com")),
            ..ExternalConfig::default()
        });
        let github = registry.get("github").unwrap();
        let extra = [("login".to_owned(), "ada".to_owned())];
        let url = github
            .authorize_url("flow-id", &["repo".to_owned()], &extra)
            .await
            .unwrap();
        assert_eq!(url.origin().ascii_serialization(), "https://git.example.com");
        assert_eq!(url.path(), "/login/oauth/authorize");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "the-client");
        assert_eq!(query["redirect_uri"], "https://auth.example.com/callback");
        assert_eq!(query["state"], "flow-id");
        assert_eq!(query["scope"], "user:email repo");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["login"], "ada");
        // The secret never travels in the browser.
        assert!(!url.as_str().contains("the-secret"));
    }
}
