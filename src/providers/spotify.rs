//! Spotify (`internal/api/provider/spotify.go`): plain OAuth 2; the user from `/v1/me`, the
//! largest image as the avatar. Spotify does not verify addresses, so none is vouched for.
//! `GOTRUE_EXTERNAL_SPOTIFY_URL` replaces both the accounts host and the API base.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Spotify {
    client: OAuthClient,
    accounts: String,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Spotify {
        accounts: super::base_url(setup.config, "accounts.spotify.com"),
        api: super::base_url(setup.config, "api.spotify.com/v1"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Spotify {
    super::basics!("spotify", ["user-read-email"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/authorize", self.accounts),
            token: format!("{}/api/token", self.accounts),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/me", self.api);
        let user: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&user, &[key]).unwrap_or_default();
        let area = |image: &Value| {
            let side = |key: &str| image.get(key).and_then(Value::as_i64).unwrap_or(0);
            side("height") * side("width")
        };
        let images = user.get("images").and_then(Value::as_array);
        // The first of the largest, as GoTrue picks it.
        let largest = images
            .into_iter()
            .flatten()
            .fold(None::<&Value>, |best, image| match best {
                Some(best) if area(best) >= area(image) => Some(best),
                _ => Some(image),
            });
        let avatar = largest.and_then(|image| text_at(image, &["url"])).unwrap_or_default();
        let mut claims = Claims::new(&self.api, text("id"));
        claims
            .text("name", text("display_name"))
            .text("full_name", text("display_name"))
            .text("picture", avatar)
            .text("avatar_url", avatar);
        Ok(ProviderUser::new(claims, &Email::primary(Some(text("email")), false)))
    }
}
