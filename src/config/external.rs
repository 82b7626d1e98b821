//! Upstream OAuth providers (Latchkey as an OAuth client): GitHub and Google.
//!
//! GoTrue's names are `GOTRUE_EXTERNAL_<P>_{ENABLED,CLIENT_ID,SECRET,REDIRECT_URI,URL}`.
//! HeliosDB Nano's `OAUTH_<P>_{CLIENT_ID,CLIENT_SECRET,REDIRECT_URI}` are accepted too; there the
//! presence of a client id enables the provider.

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

#[derive(Debug, Clone, Default)]
pub struct ExternalConfig {
    pub github: Option<ProviderConfig>,
    pub google: Option<ProviderConfig>,
    /// `GOTRUE_EXTERNAL_REDIRECTURL`: where every callback ends, overriding the flow's
    /// `redirect_to`.
    pub redirect_url: Option<Url>,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub client_id: String,
    pub secret: SecretString,
    /// `None`: `<API_EXTERNAL_URL>/callback`, known only once the server has bound.
    pub redirect_uri: Option<Url>,
    /// GitHub: the GitHub Enterprise (or fake) host. Google: the OIDC issuer whose discovery
    /// document is read (GoTrue ignores this for Google; Latchkey allows it for self-hosted
    /// IdPs and tests).
    pub url: Option<Url>,
}

impl ExternalConfig {
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        match name {
            "github" => self.github.as_ref(),
            "google" => self.google.as_ref(),
            _ => None,
        }
    }
}

pub(super) fn from_env(env: &Env) -> Result<ExternalConfig, ConfigError> {
    Ok(ExternalConfig {
        github: provider(env, "GITHUB")?,
        google: provider(env, "GOOGLE")?,
        redirect_url: env.url_opt(&["GOTRUE_EXTERNAL_REDIRECTURL"])?,
    })
}

fn provider(env: &Env, upper: &str) -> Result<Option<ProviderConfig>, ConfigError> {
    let gotrue = |field: &str| format!("GOTRUE_EXTERNAL_{upper}_{field}");
    let helios = |field: &str| format!("OAUTH_{upper}_{field}");
    let client_id = env.get(&[&gotrue("CLIENT_ID"), &helios("CLIENT_ID")]).map(|(_, v)| v);
    let enabled = match env.get(&[&gotrue("ENABLED")]) {
        Some(_) => env.bool_or(&[&gotrue("ENABLED")], false)?,
        None => env.get(&[&helios("CLIENT_ID")]).is_some(),
    };
    if !enabled {
        return Ok(None);
    }
    let missing = |field: &str| ConfigError {
        var: gotrue(field),
        message: "required when the provider is enabled".into(),
    };
    let client_id = client_id.ok_or_else(|| missing("CLIENT_ID"))?;
    let secret = env
        .get(&[&gotrue("SECRET"), &helios("CLIENT_SECRET")])
        .map(|(_, v)| SecretString::from(v))
        .ok_or_else(|| missing("SECRET"))?;
    Ok(Some(ProviderConfig {
        client_id,
        secret,
        redirect_uri: env.url_opt(&[&gotrue("REDIRECT_URI"), &helios("REDIRECT_URI")])?,
        url: env.url_opt(&[&gotrue("URL")])?,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn gotrue_names_enable_with_the_flag() {
        let config = from_env(&env(&[
            ("GOTRUE_EXTERNAL_GITHUB_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_GITHUB_CLIENT_ID", "id"),
            ("GOTRUE_EXTERNAL_GITHUB_SECRET", "s"),
            ("GOTRUE_EXTERNAL_GITHUB_URL", "http://127.0.0.1:1"),
            ("GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID", "not enabled"),
        ]))
        .unwrap();
        let github = config.github.unwrap();
        assert_eq!(github.client_id, "id");
        assert_eq!(github.url.unwrap().as_str(), "http://127.0.0.1:1/");
        assert!(config.google.is_none());
    }

    #[test]
    fn helios_names_enable_by_presence() {
        let config = from_env(&env(&[
            ("OAUTH_GOOGLE_CLIENT_ID", "gid"),
            ("OAUTH_GOOGLE_CLIENT_SECRET", "gs"),
            ("OAUTH_GOOGLE_REDIRECT_URI", "https://api.example.com/callback"),
        ]))
        .unwrap();
        let google = config.google.unwrap();
        assert_eq!(google.client_id, "gid");
        assert_eq!(
            google.redirect_uri.unwrap().as_str(),
            "https://api.example.com/callback"
        );
    }

    #[test]
    fn enabled_without_a_secret_is_an_error() {
        let err = from_env(&env(&[
            ("GOTRUE_EXTERNAL_GITHUB_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_GITHUB_CLIENT_ID", "id"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "GOTRUE_EXTERNAL_GITHUB_SECRET");
    }
}
