//! GitHub (`internal/api/provider/github.go`): plain OAuth 2, the user and their addresses read
//! from the REST API. `GOTRUE_EXTERNAL_GITHUB_URL` moves the host, as for GitHub Enterprise;
//! the API is then `<URL>/api/v3` unless the URL is `api.github.com`.

use async_trait::async_trait;
use serde::Deserialize;

use super::claims::{Claims, Email};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};
use crate::config::ProviderConfig;

#[derive(Debug)]
pub(super) struct GitHub {
    client: OAuthClient,
    /// Where the browser signs in (`https://github.com`).
    web: String,
    /// The REST API (`https://api.github.com`).
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let (web, api) = hosts(setup.config);
    Ok(Box::new(GitHub {
        client: setup.client,
        web,
        api,
    }))
}

fn hosts(config: &ProviderConfig) -> (String, String) {
    match &config.url {
        None => ("https://github.com".into(), "https://api.github.com".into()),
        Some(url) => {
            let base = url.as_str().trim_end_matches('/').to_owned();
            let api = if base.ends_with("api.github.com") {
                base.clone()
            } else {
                format!("{base}/api/v3")
            };
            (base, api)
        }
    }
}

#[derive(Deserialize)]
struct GitHubUser {
    id: i64,
    #[serde(default)]
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

#[async_trait]
impl OAuthProvider for GitHub {
    fn name(&self) -> &str {
        "github"
    }

    fn client(&self) -> &OAuthClient {
        &self.client
    }

    fn default_scopes(&self) -> Vec<String> {
        super::scopes(&["user:email"])
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/login/oauth/authorize", self.web),
            token: format!("{}/login/oauth/access_token", self.web),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let api = &self.api;
        let access_token = &tokens.access_token;
        let user: GitHubUser = self.client.get_json(&format!("{api}/user"), access_token, &[]).await?;
        let emails: Vec<GitHubEmail> = self
            .client
            .get_json(&format!("{api}/user/emails"), access_token, &[])
            .await?;
        let mut claims = Claims::new(api, &user.id.to_string());
        let name = user.name.unwrap_or_default();
        claims
            .text("name", &name)
            .text("full_name", &name)
            .text("preferred_username", &user.login)
            .text("user_name", &user.login)
            .text("avatar_url", user.avatar_url.unwrap_or_default());
        let emails: Vec<Email> = emails
            .into_iter()
            .filter(|e| !e.email.is_empty())
            .map(|e| Email {
                address: e.email,
                verified: e.verified,
                primary: e.primary,
            })
            .collect();
        Ok(ProviderUser::new(claims, &emails))
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;

    fn config(url: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            client_ids: vec!["id".into()],
            secret: None,
            redirect_uri: None,
            url: url.map(|u| Url::parse(u).unwrap()),
            skip_nonce_check: false,
        }
    }

    #[test]
    fn enterprise_hosts_get_api_v3() {
        assert_eq!(
            hosts(&config(None)),
            ("https://github.com".into(), "https://api.github.com".into())
        );
        assert_eq!(
            hosts(&config(Some("https://git.example.com/"))),
            (
                "https://git.example.com".into(),
                "https://git.example.com/api/v3".into()
            )
        );
        assert_eq!(
            hosts(&config(Some("https://api.github.com"))).1,
            "https://api.github.com"
        );
    }
}
