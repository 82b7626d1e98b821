//! Snapchat (`internal/api/provider/snapchat.go`): plain OAuth 2; the user from Snap Kit's
//! GraphQL-style `/v1/me`. Snapchat vouches for the address it gives (usually none).
//! `GOTRUE_EXTERNAL_SNAPCHAT_URL` moves both hosts.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

/// GoTrue's issuer for Snapchat identities (its token URL).
const SNAPCHAT_ISSUER: &str = "https://accounts.snapchat.com/accounts/oauth2/token";
const PROFILE_QUERY: &str = "{me { externalId displayName bitmoji { avatar id } email } }";

#[derive(Debug)]
pub(super) struct Snapchat {
    client: OAuthClient,
    accounts: String,
    kit: String,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    Ok(Box::new(Snapchat {
        accounts: super::base_url(setup.config, "accounts.snapchat.com"),
        kit: super::base_url(setup.config, "kit.snapchat.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for Snapchat {
    super::basics!(
        "snapchat",
        [
            "https://auth.snapchat.com/oauth2/api/user.external_id",
            "https://auth.snapchat.com/oauth2/api/user.display_name",
            "https://auth.snapchat.com/oauth2/api/user.bitmoji.avatar",
        ]
    );

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/accounts/oauth2/auth", self.accounts),
            token: format!("{}/accounts/oauth2/token", self.accounts),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let mut url =
            url::Url::parse(&format!("{}/v1/me", self.kit)).map_err(|e| ProviderError::BadUrl(e.to_string()))?;
        url.query_pairs_mut().append_pair("query", PROFILE_QUERY);
        let answer: Value = self.client.get_json(url.as_str(), &tokens.access_token, &[]).await?;
        let me = |path: &[&str]| {
            let mut full = vec!["data", "me"];
            full.extend_from_slice(path);
            text_at(&answer, &full).unwrap_or_default().to_owned()
        };
        let (name, avatar) = (me(&["displayName"]), me(&["bitmoji", "avatar"]));
        let mut claims = Claims::new(SNAPCHAT_ISSUER, &me(&["externalId"]));
        claims
            .text("name", &name)
            .text("full_name", &name)
            .text("slug", &name)
            .text("picture", &avatar)
            .text("avatar_url", &avatar);
        Ok(ProviderUser::new(claims, &Email::primary(Some(&me(&["email"])), true)))
    }
}
