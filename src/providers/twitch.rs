//! Twitch (`internal/api/provider/twitch.go`): OAuth 2 (the client's credentials in the token
//! request's form, as Twitch reads them); the user from Helix's `/helix/users`, which also
//! wants the client id as a header. Twitch vouches for the address.
//! `GOTRUE_EXTERNAL_TWITCH_URL` moves both hosts.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Twitch {
    client: OAuthClient,
    id: String,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Twitch {
        id: super::base_url(setup.config, "id.twitch.tv"),
        api: super::base_url(setup.config, "api.twitch.tv"),
        client: setup.client.with_credentials_in_body(),
    }))
}

#[async_trait]
impl OAuthProvider for Twitch {
    super::basics!("twitch", ["user:read:email"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth2/authorize", self.id),
            token: format!("{}/oauth2/token", self.id),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/helix/users", self.api);
        let headers = [("Client-Id", self.client.client_id())];
        let users: Value = self.client.get_json(&url, &tokens.access_token, &headers).await?;
        let user = users
            .get("data")
            .and_then(|data| data.get(0))
            .ok_or_else(|| ProviderError::Profile("unable to find user with twitch provider".into()))?;
        let text = |key| text_at(user, &[key]).unwrap_or_default();
        let mut claims = Claims::new(&self.api, text("id"));
        claims
            .text("name", text("login"))
            .text("full_name", text("login"))
            .text("nickname", text("display_name"))
            .text("slug", text("display_name"))
            .text("picture", text("profile_image_url"))
            .text("avatar_url", text("profile_image_url"))
            .custom("broadcaster_type", json!(text("broadcaster_type")))
            .custom("description", json!(text("description")))
            .custom("type", json!(text("type")))
            .custom("offline_image_url", json!(text("offline_image_url")))
            .custom("view_count", user.get("view_count").cloned().unwrap_or(json!(0)));
        Ok(ProviderUser::new(claims, &Email::primary(Some(text("email")), true)))
    }
}
