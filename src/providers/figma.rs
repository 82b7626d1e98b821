//! Figma (`internal/api/provider/figma.go`): plain OAuth 2; the user from `/v1/me`. Figma
//! vouches for the address. `GOTRUE_EXTERNAL_FIGMA_URL` moves both hosts.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Figma {
    client: OAuthClient,
    web: String,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Figma {
        web: super::base_url(setup.config, "www.figma.com"),
        api: super::base_url(setup.config, "api.figma.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Figma {
    super::basics!("figma", ["current_user:read"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth", self.web),
            token: format!("{}/v1/oauth/token", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/v1/me", self.api);
        let user: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&user, &[key]).unwrap_or_default();
        let mut claims = Claims::new(&self.api, text("id"));
        claims
            .text("name", text("handle"))
            .text("full_name", text("handle"))
            .text("avatar_url", text("img_url"));
        Ok(ProviderUser::new(claims, &Email::primary(Some(text("email")), true)))
    }
}
