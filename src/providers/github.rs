//! GitHub (`internal/api/provider/github.go`): plain OAuth 2, the user and their addresses read
//! from the REST API. `GOTRUE_EXTERNAL_GITHUB_URL` moves the host, as for GitHub Enterprise;
//! the API is then `<URL>/api/v3` unless the URL is `api.github.com`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup};
use crate::config::ProviderConfig;

#[derive(Debug)]
pub(super) struct GitHub {
    client: OAuthClient,
    /// Where the browser signs in (`https://github.com`).
    web: String,
    /// The REST API (`https://api.github.com`).
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Box<dyn OAuthProvider> {
    let (web, api) = hosts(setup.config);
    Box::new(GitHub {
        client: setup.client,
        web,
        api,
    })
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
    fn name(&self) -> &'static str {
        "github"
    }

    fn client(&self) -> &OAuthClient {
        &self.client
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["user:email"]
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
        let user: GitHubUser = self.client.get_json(&format!("{api}/user"), access_token).await?;
        let emails: Vec<GitHubEmail> = self
            .client
            .get_json(&format!("{api}/user/emails"), access_token)
            .await?;
        // GoTrue takes the primary address, else the last one listed.
        let chosen = emails.iter().find(|e| e.primary).or(emails.last());
        let email = chosen.map(|e| e.email.to_lowercase());
        let email_verified = chosen.is_some_and(|e| e.verified);
        let subject = user.id.to_string();
        let identity_data = json!({
            "iss": api,
            "sub": subject,
            "provider_id": subject,
            "name": user.name,
            "full_name": user.name,
            "user_name": user.login,
            "preferred_username": user.login,
            "avatar_url": user.avatar_url,
            "email": email,
            "email_verified": email_verified,
            "phone_verified": false,
        });
        Ok(ProviderUser {
            subject,
            email,
            email_verified,
            identity_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use url::Url;

    use super::*;

    fn config(url: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            client_id: "id".into(),
            secret: SecretString::from("s"),
            redirect_uri: None,
            url: url.map(|u| Url::parse(u).unwrap()),
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
