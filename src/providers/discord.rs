//! Discord (`internal/api/provider/discord.go`): plain OAuth 2; the user from `/users/@me`.
//! `GOTRUE_EXTERNAL_DISCORD_URL` moves the host (`https://discord.com`).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Discord {
    client: OAuthClient,
    api: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Discord {
        api: format!("{}/api", super::base_url(setup.config, "discord.com")),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Discord {
    super::basics!("discord", ["email", "identify"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth2/authorize", self.api),
            token: format!("{}/oauth2/token", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/users/@me", self.api);
        let user: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        Ok(from_user(&self.api, &user))
    }
}

/// GoTrue's mapping: `name` is `username#discriminator`, the avatar URL is built from the
/// avatar hash (animated ones are GIFs) or, without one, Discord's default avatars.
fn from_user(api: &str, user: &Value) -> ProviderUser {
    let text = |key| text_at(user, &[key]).unwrap_or_default();
    let (id, username, discriminator) = (text("id"), text("username"), text("discriminator"));
    let avatar = match text("avatar") {
        "" => {
            // GoTrue fails on a discriminator that is not a number; the first default avatar
            // will do.
            let index = discriminator.parse::<u64>().unwrap_or(0) % 5;
            format!("https://cdn.discordapp.com/embed/avatars/{index}.png")
        }
        hash => {
            let extension = if hash.starts_with("a_") { "gif" } else { "png" };
            format!("https://cdn.discordapp.com/avatars/{id}/{hash}.{extension}")
        }
    };
    let mut claims = Claims::new(api, id);
    claims
        .text("name", format!("{username}#{discriminator}"))
        .text("full_name", username)
        .text("picture", &avatar)
        .text("avatar_url", &avatar)
        .custom("global_name", json!(text("global_name")));
    let verified = user.get("verified").and_then(Value::as_bool).unwrap_or(false);
    ProviderUser::new(claims, &Email::primary(Some(text("email")), verified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatars_are_built_as_discord_serves_them() {
        let user = |avatar: &str, discriminator: &str| {
            from_user(
                "api",
                &json!({"id": "80", "username": "ada", "discriminator": discriminator, "avatar": avatar}),
            )
            .identity_data["avatar_url"]
                .clone()
        };
        assert_eq!(user("abc", "0"), "https://cdn.discordapp.com/avatars/80/abc.png");
        assert_eq!(user("a_abc", "0"), "https://cdn.discordapp.com/avatars/80/a_abc.gif");
        assert_eq!(user("", "1337"), "https://cdn.discordapp.com/embed/avatars/2.png");
        assert_eq!(user("", ""), "https://cdn.discordapp.com/embed/avatars/0.png");
    }
}
