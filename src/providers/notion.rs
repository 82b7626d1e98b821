//! Notion (`internal/api/provider/notion.go`): plain OAuth 2; the user is the owner of the
//! integration's bot (`/v1/users/me`, with Notion's API version header). Notion says nothing
//! about the address being verified; GoTrue trusts it. `GOTRUE_EXTERNAL_NOTION_URL` moves the
//! host.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

const NOTION_VERSION: &str = "2021-08-16";

#[derive(Debug)]
pub(super) struct Notion {
    client: OAuthClient,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Notion {
        api: super::base_url(setup.config, "api.notion.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Notion {
    super::basics!("notion", []);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/v1/oauth/authorize", self.api),
            token: format!("{}/v1/oauth/token", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/v1/users/me", self.api);
        let headers = [("Notion-Version", NOTION_VERSION)];
        let me: Value = self.client.get_json(&url, &tokens.access_token, &headers).await?;
        let owner = |path: &[&str]| {
            let mut full = vec!["bot", "owner", "user"];
            full.extend_from_slice(path);
            text_at(&me, &full).unwrap_or_default().to_owned()
        };
        let (name, avatar) = (owner(&["name"]), owner(&["avatar_url"]));
        let mut claims = Claims::new(&self.api, &owner(&["id"]));
        claims
            .text("name", &name)
            .text("full_name", &name)
            .text("picture", &avatar)
            .text("avatar_url", &avatar);
        let email = owner(&["person", "email"]);
        Ok(ProviderUser::new(claims, &Email::primary(Some(&email), true)))
    }
}
