//! Slack with OpenID Connect (`internal/api/provider/slack_oidc.go`, `slack_oidc`): the user
//! from Slack's userinfo method, the workspace as a custom claim.
//! `GOTRUE_EXTERNAL_SLACK_OIDC_URL` moves the host.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Slack {
    client: OAuthClient,
    host: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Slack {
        host: super::base_url(setup.config, "slack.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Slack {
    super::basics!("slack_oidc", ["profile", "email", "openid"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/openid/connect/authorize", self.host),
            token: format!("{}/api/openid.connect.token", self.host),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let api = format!("{}/api", self.host);
        let url = format!("{api}/openid.connect.userInfo");
        let info: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&info, &[key]).unwrap_or_default();
        let mut claims = Claims::new(&api, text("https://slack.com/user_id"));
        claims
            .text("name", text("name"))
            .text("full_name", text("name"))
            .text("picture", text("picture"))
            .text("avatar_url", text("picture"))
            .custom("https://slack.com/team_id", json!(text("https://slack.com/team_id")));
        let verified = info.get("email_verified").and_then(Value::as_bool).unwrap_or(false);
        Ok(ProviderUser::new(
            claims,
            &Email::primary(Some(text("email")), verified),
        ))
    }
}
