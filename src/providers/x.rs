//! X, formerly Twitter, with OAuth 2.0 (`internal/api/provider/x.go`, provider `x`): X wants
//! PKCE from Latchkey (the verifier is kept with the flow), the user comes from `/2/users/me`,
//! and only a `confirmed_email` counts, as vouched for. `GOTRUE_EXTERNAL_X_URL` moves both
//! hosts. (GoTrue's `twitter` provider is OAuth 1.0a, which Latchkey does not implement.)

use async_trait::async_trait;
use serde_json::{Value, json};

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

const USER_FIELDS: &str = "id,name,username,confirmed_email,profile_image_url,url,created_at";

#[derive(Debug)]
pub(super) struct X {
    client: OAuthClient,
    web: String,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(X {
        web: super::base_url(setup.config, "x.com"),
        api: super::base_url(setup.config, "api.x.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for X {
    super::basics!("x", ["users.email", "tweet.read", "users.read", "offline.access"]);

    fn requires_pkce(&self) -> bool {
        true
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/i/oauth2/authorize", self.web),
            token: format!("{}/2/oauth2/token", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/2/users/me?user.fields={USER_FIELDS}", self.api);
        let answer: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&answer, &["data", key]).unwrap_or_default();
        let username = text("username");
        let mut claims = Claims::new(&self.api, text("id"));
        claims
            .text("name", text("name"))
            .text("full_name", text("name"))
            .text("preferred_username", username)
            .text("user_name", username)
            .text("picture", text("profile_image_url"))
            .text("avatar_url", text("profile_image_url"))
            .text("profile", format!("https://x.com/{username}"))
            .text("website", text("url"))
            .custom("created_at", json!(text("created_at")));
        Ok(ProviderUser::new(
            claims,
            &Email::primary(Some(text("confirmed_email")), true),
        ))
    }
}
