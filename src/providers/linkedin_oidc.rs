//! LinkedIn with OpenID Connect (`internal/api/provider/linkedin_oidc.go`, `linkedin_oidc`):
//! the user is read from the ID token of the code exchange (issuer
//! `https://www.linkedin.com/oauth`), whose `email_verified` is a string. The endpoints are
//! under `https://api.linkedin.com`, as GoTrue has them. `GOTRUE_EXTERNAL_LINKEDIN_OIDC_URL`
//! moves them and, in Latchkey, the issuer too (GoTrue keeps LinkedIn's), so that the flow can
//! be tested against a local fake.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at, truthy};
use super::oidc::{Oidc, TokenChecks};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

const LINKEDIN_ISSUER: &str = "https://www.linkedin.com/oauth";

#[derive(Debug)]
pub(super) struct LinkedIn {
    client: OAuthClient,
    api: String,
    oidc: Oidc,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let issuer = match &setup.config.url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => LINKEDIN_ISSUER.to_owned(),
    };
    Ok(Box::new(LinkedIn {
        oidc: Oidc::new(
            setup.verifier.clone(),
            &issuer,
            vec![setup.client.client_id().to_owned()],
        ),
        api: super::base_url(setup.config, "api.linkedin.com"),
        client: setup.client,
    }))
}

#[async_trait]
impl OAuthProvider for LinkedIn {
    super::basics!("linkedin_oidc", ["openid", "email", "profile"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth/v2/authorization", self.api),
            token: format!("{}/oauth/v2/accessToken", self.api),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| ProviderError::Profile("LinkedIn's token response has no ID token".into()))?;
        let checks = TokenChecks {
            access_token: Some(&tokens.access_token),
            ..TokenChecks::CODE_FLOW
        };
        Ok(from_id_token(&self.oidc.verify(id_token, &checks).await?))
    }
}

/// GoTrue's `parseLinkedinIDToken`: the name from the given and family names.
fn from_id_token(claims: &Value) -> ProviderUser {
    let text = |key| text_at(claims, &[key]).unwrap_or_default();
    let name = format!("{} {}", text("given_name"), text("family_name"));
    let mut identity = Claims::new(text("iss"), text("sub"));
    identity
        .text("name", name.trim())
        .text("given_name", text("given_name"))
        .text("family_name", text("family_name"))
        .text("locale", text("locale"))
        .text("picture", text("picture"));
    let verified = truthy(claims.get("email_verified"));
    ProviderUser::new(identity, &Email::primary(Some(text("email")), verified))
}
