//! GitLab (`internal/api/provider/gitlab.go`): plain OAuth 2 against gitlab.com or a
//! self-hosted instance (`GOTRUE_EXTERNAL_GITLAB_URL`); the user and their addresses from the
//! v4 API. The account's own address is the primary one, vouched for once GitLab confirmed it;
//! the other listed addresses count as unverified, as in GoTrue.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct GitLab {
    client: OAuthClient,
    host: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(GitLab {
        host: super::base_url(setup.config, "gitlab.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for GitLab {
    super::basics!("gitlab", ["read_user"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth/authorize", self.host),
            token: format!("{}/oauth/token", self.host),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let get = |path: &str| {
            let url = format!("{}/api/v4{path}", self.host);
            async move { self.client.get_json::<Value>(&url, &tokens.access_token, &[]).await }
        };
        let user = get("/user").await?;
        let listed = get("/user/emails").await?;
        let text = |key| text_at(&user, &[key]).unwrap_or_default();
        let id = user.get("id").and_then(Value::as_i64).unwrap_or_default().to_string();
        let mut claims = Claims::new(&self.host, &id);
        claims
            .text("name", text("name"))
            .text("full_name", text("name"))
            .text("picture", text("avatar_url"))
            .text("avatar_url", text("avatar_url"));
        let mut emails: Vec<Email> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| text_at(e, &["email"]).filter(|a| !a.is_empty()))
            .map(|address| Email {
                address: address.to_owned(),
                verified: false,
                primary: false,
            })
            .collect();
        let confirmed = user
            .get("confirmed_at")
            .is_some_and(|at| at.as_str().is_some_and(|s| !s.is_empty()));
        emails.extend(Email::primary(Some(text("email")), confirmed));
        Ok(ProviderUser::new(claims, &emails))
    }
}
