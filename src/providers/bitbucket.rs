//! Bitbucket (`internal/api/provider/bitbucket.go`): plain OAuth 2; the user and their
//! addresses from the 2.0 API. `GOTRUE_EXTERNAL_BITBUCKET_URL` moves both hosts.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Bitbucket {
    client: OAuthClient,
    web: String,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Bitbucket {
        web: super::base_url(setup.config, "bitbucket.org"),
        api: format!("{}/2.0", super::base_url(setup.config, "api.bitbucket.org")),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Bitbucket {
    super::basics!("bitbucket", ["account", "email"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/site/oauth2/authorize", self.web),
            token: format!("{}/site/oauth2/access_token", self.web),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let get = |path: &str| {
            let url = format!("{}{path}", self.api);
            async move { self.client.get_json::<Value>(&url, &tokens.access_token, &[]).await }
        };
        let user = get("/user").await?;
        let addresses = get("/user/emails").await?;
        let text = |key| text_at(&user, &[key]).unwrap_or_default();
        let avatar = text_at(&user, &["avatar", "href"]).unwrap_or_default();
        let mut claims = Claims::new(&self.api, text("uuid"));
        claims
            .text("name", text("display_name"))
            .text("full_name", text("display_name"))
            .text("picture", avatar)
            .text("avatar_url", avatar);
        let emails: Vec<Email> = addresses
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some(Email {
                    address: text_at(e, &["email"]).filter(|a| !a.is_empty())?.to_owned(),
                    verified: e.get("is_confirmed").and_then(Value::as_bool).unwrap_or(false),
                    primary: e.get("is_primary").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect();
        Ok(ProviderUser::new(claims, &emails))
    }
}
