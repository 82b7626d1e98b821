//! Fly.io (`internal/api/provider/fly.go`): plain OAuth 2; the user from the token's info
//! (`/oauth/token/info`), with their organizations as custom claims. Fly vouches for the
//! address. `GOTRUE_EXTERNAL_FLY_URL` moves the host.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Fly {
    client: OAuthClient,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Fly {
        api: super::base_url(setup.config, "api.fly.io"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Fly {
    super::basics!("fly", ["read"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth/authorize", self.api),
            token: format!("{}/oauth/token", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/oauth/token/info", self.api);
        let info: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&info, &[key]).unwrap_or_default();
        let field = |key: &str| info.get(key).cloned().unwrap_or(Value::Null);
        let mut claims = Claims::new(&self.api, text("user_id"));
        claims
            .text("full_name", text("user_name"))
            .custom("resource_owner_id", json!(text("resource_owner_id")))
            .custom("organizations", field("organizations"))
            .custom("application", field("application"))
            .custom("scope", field("scope"))
            .custom("created_at", info.get("created_at").cloned().unwrap_or(json!(0)));
        Ok(ProviderUser::new(claims, &Email::primary(Some(text("email")), true)))
    }
}
