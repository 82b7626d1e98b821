//! Upstream OAuth providers (Latchkey as an OAuth client) and custom providers.
//!
//! GoTrue's names are `GOTRUE_EXTERNAL_<P>_{ENABLED,CLIENT_ID,SECRET,REDIRECT_URI,URL,
//! SKIP_NONCE_CHECK}` for every provider `<P>` (`GITHUB`, `SLACK_OIDC`, ...). They are read for
//! any `<P>` here; `providers::Registry` decides which it implements (and warns about the
//! others). HeliosDB Nano's `OAUTH_<P>_{CLIENT_ID,CLIENT_SECRET,REDIRECT_URI}` are accepted too;
//! there the presence of a client id enables the provider.

use std::collections::BTreeMap;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

#[derive(Debug, Clone, Default)]
pub struct ExternalConfig {
    /// The enabled providers by GoTrue's name, lower case (`github`, `slack_oidc`).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `GOTRUE_EXTERNAL_REDIRECTURL`: where every callback ends, overriding the flow's
    /// `redirect_to`.
    pub redirect_url: Option<Url>,
    /// `GOTRUE_EXTERNAL_IOS_BUNDLE_ID`: one more audience accepted in Apple ID tokens (a native
    /// iOS app's tokens name its bundle id).
    pub ios_bundle_id: Option<String>,
    /// `GOTRUE_CUSTOM_OAUTH_*`: providers added through the admin API.
    pub custom: CustomOAuthConfig,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `CLIENT_ID`, comma-separated as GoTrue reads it: the first is Latchkey's registration
    /// for the redirect flow; all of them are accepted as the audience of an ID token (a web
    /// client id, an Android one, an iOS bundle id, ...).
    pub client_ids: Vec<String>,
    /// `None`: the provider only signs in with ID tokens (`POST /token?grant_type=id_token`).
    pub secret: Option<SecretString>,
    /// `None`: `<API_EXTERNAL_URL>/callback`, known only once the server has bound.
    pub redirect_uri: Option<Url>,
    /// Where the provider lives when not at its public address: GitHub Enterprise, a
    /// self-hosted GitLab, Keycloak's realm, Azure's tenant, ... (and local fakes in tests).
    pub url: Option<Url>,
    /// `SKIP_NONCE_CHECK`: ID tokens are accepted whatever their `nonce` (GoTrue's escape hatch
    /// for SDKs that set a nonce the app cannot see).
    pub skip_nonce_check: bool,
}

impl ProviderConfig {
    /// The client id of the redirect flow.
    pub fn client_id(&self) -> &str {
        self.client_ids.first().map_or("", String::as_str)
    }
}

/// `GOTRUE_CUSTOM_OAUTH_*`.
#[derive(Debug, Clone)]
pub struct CustomOAuthConfig {
    /// `GOTRUE_CUSTOM_OAUTH_ENABLED` (on by default, as in GoTrue).
    pub enabled: bool,
    /// `GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS`; 0 = no limit.
    pub max_providers: u32,
    /// `GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL`: the base of custom providers' redirect URI
    /// (`<url>/callback`) when it is not `API_EXTERNAL_URL`.
    pub external_url: Option<Url>,
    /// `LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS`: accept `http://` and loopback or private
    /// addresses in custom providers' URLs. For local development and tests only.
    pub allow_private_urls: bool,
}

impl Default for CustomOAuthConfig {
    fn default() -> Self {
        CustomOAuthConfig {
            enabled: true,
            max_providers: 0,
            external_url: None,
            allow_private_urls: false,
        }
    }
}

impl ExternalConfig {
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.get(name)
    }
}

/// `GOTRUE_EXTERNAL_<P>_ENABLED` variables that name a sign-in method or a mail setting, not an
/// OAuth provider.
const NOT_PROVIDERS: [&str; 4] = ["EMAIL", "EMAIL_MAGIC_LINK", "PHONE", "ANONYMOUS_USERS"];

pub(super) fn from_env(env: &Env) -> Result<ExternalConfig, ConfigError> {
    let mut providers = BTreeMap::new();
    for upper in provider_names(env) {
        if let Some(config) = provider(env, &upper)? {
            providers.insert(upper.to_lowercase(), config);
        }
    }
    Ok(ExternalConfig {
        providers,
        redirect_url: env.url_opt(&["GOTRUE_EXTERNAL_REDIRECTURL"])?,
        ios_bundle_id: env.get(&["GOTRUE_EXTERNAL_IOS_BUNDLE_ID"]).map(|(_, v)| v),
        custom: CustomOAuthConfig {
            enabled: env.bool_or(&["GOTRUE_CUSTOM_OAUTH_ENABLED"], true)?,
            max_providers: env.parse_or(&["GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS"], 0u32)?,
            external_url: env.url_opt(&["GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL"])?,
            allow_private_urls: env.bool_or(&["LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS"], false)?,
        },
    })
}

/// Every `<P>` of a `GOTRUE_EXTERNAL_<P>_ENABLED` or `OAUTH_<P>_CLIENT_ID` variable.
fn provider_names(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = env
        .vars()
        .keys()
        .filter_map(|key| {
            let gotrue = key
                .strip_prefix("GOTRUE_EXTERNAL_")
                .and_then(|k| k.strip_suffix("_ENABLED"));
            gotrue.or_else(|| key.strip_prefix("OAUTH_").and_then(|k| k.strip_suffix("_CLIENT_ID")))
        })
        .filter(|name| !name.is_empty() && !NOT_PROVIDERS.contains(name) && !name.starts_with("WEB3_"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What `provider` reads of a provider: GoTrue's field, and HeliosDB's where it differs.
const PROVIDER_FIELDS: [(&str, &str); 5] = [
    ("CLIENT_ID", "CLIENT_ID"),
    ("SECRET", "CLIENT_SECRET"),
    ("REDIRECT_URI", "REDIRECT_URI"),
    ("URL", "URL"),
    ("SKIP_NONCE_CHECK", "SKIP_NONCE_CHECK"),
];

fn provider(env: &Env, upper: &str) -> Result<Option<ProviderConfig>, ConfigError> {
    let gotrue = |field: &str| format!("GOTRUE_EXTERNAL_{upper}_{field}");
    let helios = |field: &str| format!("OAUTH_{upper}_{field}");
    let enabled = match env.get(&[&gotrue("ENABLED")]) {
        Some(_) => env.bool_or(&[&gotrue("ENABLED")], false)?,
        None => env.get(&[&helios("CLIENT_ID")]).is_some(),
    };
    if !enabled {
        // The settings of a provider switched off are still Latchkey's: looked up here, so
        // the start-up report does not call them unsupported.
        for (field, helios_field) in PROVIDER_FIELDS {
            env.get(&[&gotrue(field), &helios(helios_field)]);
        }
        return Ok(None);
    }
    let client_ids: Vec<String> = env
        .get(&[&gotrue("CLIENT_ID"), &helios("CLIENT_ID")])
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if client_ids.is_empty() {
        return Err(ConfigError {
            var: gotrue("CLIENT_ID"),
            message: "required when the provider is enabled".into(),
        });
    }
    Ok(Some(ProviderConfig {
        client_ids,
        secret: env
            .get(&[&gotrue("SECRET"), &helios("CLIENT_SECRET")])
            .map(|(_, v)| SecretString::from(v)),
        redirect_uri: env.url_opt(&[&gotrue("REDIRECT_URI"), &helios("REDIRECT_URI")])?,
        url: env.url_opt(&[&gotrue("URL")])?,
        skip_nonce_check: env.bool_or(&[&gotrue("SKIP_NONCE_CHECK")], false)?,
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
            ("GOTRUE_EXTERNAL_SLACK_OIDC_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_SLACK_OIDC_CLIENT_ID", "slack"),
            ("GOTRUE_EXTERNAL_DISCORD_ENABLED", "false"),
            ("GOTRUE_EXTERNAL_DISCORD_CLIENT_ID", "d"),
            // Not providers.
            ("GOTRUE_EXTERNAL_EMAIL_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true"),
        ]))
        .unwrap();
        let github = config.provider("github").unwrap();
        assert_eq!(github.client_id(), "id");
        assert_eq!(github.url.as_ref().unwrap().as_str(), "http://127.0.0.1:1/");
        assert!(config.provider("google").is_none());
        assert!(config.provider("discord").is_none());
        // No secret: an ID-token-only provider (the registry decides whether that is enough).
        assert!(config.provider("slack_oidc").unwrap().secret.is_none());
        let names: Vec<&str> = config.providers.keys().map(String::as_str).collect();
        assert_eq!(names, ["github", "slack_oidc"]);
    }

    #[test]
    fn client_ids_are_a_comma_separated_list() {
        let config = from_env(&env(&[
            ("GOTRUE_EXTERNAL_APPLE_ENABLED", "true"),
            (
                "GOTRUE_EXTERNAL_APPLE_CLIENT_ID",
                " com.example.web , com.example.ios,,",
            ),
            ("GOTRUE_EXTERNAL_APPLE_SKIP_NONCE_CHECK", "true"),
            ("GOTRUE_EXTERNAL_IOS_BUNDLE_ID", "com.example.app"),
        ]))
        .unwrap();
        let apple = config.provider("apple").unwrap();
        assert_eq!(apple.client_ids, ["com.example.web", "com.example.ios"]);
        assert_eq!(apple.client_id(), "com.example.web");
        assert!(apple.skip_nonce_check);
        assert_eq!(config.ios_bundle_id.as_deref(), Some("com.example.app"));
    }

    #[test]
    fn helios_names_enable_by_presence() {
        let config = from_env(&env(&[
            ("OAUTH_GOOGLE_CLIENT_ID", "gid"),
            ("OAUTH_GOOGLE_CLIENT_SECRET", "gs"),
            ("OAUTH_GOOGLE_REDIRECT_URI", "https://api.example.com/callback"),
        ]))
        .unwrap();
        let google = config.provider("google").unwrap();
        assert_eq!(google.client_id(), "gid");
        assert_eq!(
            google.redirect_uri.as_ref().unwrap().as_str(),
            "https://api.example.com/callback"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, var) in [
            (
                &[("GOTRUE_EXTERNAL_GITLAB_ENABLED", "true")][..],
                "GOTRUE_EXTERNAL_GITLAB_CLIENT_ID",
            ),
            (
                &[
                    ("GOTRUE_EXTERNAL_GITLAB_ENABLED", "true"),
                    ("GOTRUE_EXTERNAL_GITLAB_CLIENT_ID", " , "),
                ][..],
                "GOTRUE_EXTERNAL_GITLAB_CLIENT_ID",
            ),
            (
                &[
                    ("GOTRUE_EXTERNAL_GITLAB_ENABLED", "true"),
                    ("GOTRUE_EXTERNAL_GITLAB_CLIENT_ID", "id"),
                    ("GOTRUE_EXTERNAL_GITLAB_URL", "gitlab.example.com"),
                ][..],
                "GOTRUE_EXTERNAL_GITLAB_URL",
            ),
            (
                &[("GOTRUE_EXTERNAL_ZOOM_ENABLED", "yes please")][..],
                "GOTRUE_EXTERNAL_ZOOM_ENABLED",
            ),
            (
                &[("GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS", "-1")][..],
                "GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS",
            ),
            (
                &[("LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS", "sure")][..],
                "LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS",
            ),
        ] {
            assert_eq!(from_env(&env(pairs)).unwrap_err().var, var);
        }
    }

    #[test]
    fn custom_providers_are_on_by_default() {
        let custom = from_env(&env(&[])).unwrap().custom;
        assert!(custom.enabled && !custom.allow_private_urls);
        assert_eq!(custom.max_providers, 0);
        let custom = from_env(&env(&[
            ("GOTRUE_CUSTOM_OAUTH_ENABLED", "false"),
            ("GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS", "3"),
        ]))
        .unwrap()
        .custom;
        assert!(!custom.enabled);
        assert_eq!(custom.max_providers, 3);
    }
}
