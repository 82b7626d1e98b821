//! Google (`internal/api/provider/google.go`), an OpenID Connect provider: the endpoints come
//! from the discovery document of the issuer, `https://accounts.google.com` unless
//! `GOTRUE_EXTERNAL_GOOGLE_URL` names another (GoTrue ignores that variable; Latchkey honours
//! it for tests and self-hosted IdPs). The user is read from the ID token of the code exchange,
//! checked by the shared verifier ([`super::oidc`]), or from the userinfo endpoint when the
//! token response has none. ID tokens from Google One Tap or Android's Credential Manager sign
//! in through `grant_type=id_token`, for any of the configured client ids.

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at, truthy};
use super::oidc::{Oidc, TokenChecks};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GOOGLE_USERINFO: &str = "https://www.googleapis.com/userinfo/v2/me";

#[derive(Debug)]
pub(super) struct Google {
    client: OAuthClient,
    oidc: Oidc,
    skip_nonce_check: bool,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let issuer = super::base_url(setup.config, &GOOGLE_ISSUER["https://".len()..]);
    let oidc = Oidc::new(setup.verifier.clone(), &issuer, setup.config.client_ids.clone())
        // Google writes its issuer both with and without the scheme.
        .also_accepting_issuer(issuer.trim_start_matches("https://"));
    Ok(Box::new(Google {
        client: setup.client,
        oidc,
        skip_nonce_check: setup.config.skip_nonce_check,
    }))
}

#[async_trait]
impl OAuthProvider for Google {
    fn name(&self) -> &str {
        "google"
    }

    fn client(&self) -> &OAuthClient {
        &self.client
    }

    fn default_scopes(&self) -> Vec<String> {
        super::scopes(&["email", "profile"])
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        self.oidc.endpoints().await
    }

    /// From the ID token when the token response has one, else from the userinfo endpoint.
    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        if let Some(id_token) = &tokens.id_token {
            let checks = TokenChecks {
                access_token: Some(&tokens.access_token),
                ..TokenChecks::CODE_FLOW
            };
            let claims = self.oidc.verify(id_token, &checks).await?;
            return Ok(from_id_token(&claims));
        }
        let discovery = self.oidc.discovery().await?;
        let url = discovery.userinfo_endpoint.as_deref().unwrap_or(GOOGLE_USERINFO);
        let info: Value = self.client.get_json(url, &tokens.access_token, &[]).await?;
        Ok(from_userinfo(url, &info))
    }

    fn id_token_oidc(&self) -> Option<&Oidc> {
        Some(&self.oidc)
    }

    fn skips_nonce_check(&self) -> bool {
        self.skip_nonce_check
    }

    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let claims = self.oidc.verify(id_token, checks).await?;
        Ok(from_id_token(&claims))
    }
}

/// `email_verified` (ID tokens) or `verified_email` (userinfo v2), a boolean or "true".
fn verified(info: &Value) -> bool {
    truthy(info.get("email_verified")) || truthy(info.get("verified_email"))
}

/// GoTrue's `parseGoogleIDToken`: the issuer as the token writes it, `hd` as a custom claim.
fn from_id_token(claims: &Value) -> ProviderUser {
    let text = |key| text_at(claims, &[key]).unwrap_or_default();
    let mut identity = Claims::new(text("iss"), text("sub"));
    identity
        .text("name", text("name"))
        .text("full_name", text("name"))
        .text("picture", text("picture"))
        .text("avatar_url", text("picture"));
    if !text("hd").is_empty() {
        identity.custom("hd", Value::String(text("hd").to_owned()));
    }
    ProviderUser::new(identity, &Email::primary(Some(text("email")), verified(claims)))
}

/// The userinfo answer (v2's `id`, or OIDC's `sub`); GoTrue names the endpoint as the issuer.
fn from_userinfo(url: &str, info: &Value) -> ProviderUser {
    let text = |key| text_at(info, &[key]).unwrap_or_default();
    let subject = [text("sub"), text("id")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let mut identity = Claims::new(url, subject);
    identity
        .text("name", text("name"))
        .text("full_name", text("name"))
        .text("picture", text("picture"))
        .text("avatar_url", text("picture"));
    ProviderUser::new(identity, &Email::primary(Some(text("email")), verified(info)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn verified_flags_come_in_several_spellings() {
        let user = from_id_token(&json!({"iss": "i", "sub": "1", "email": "A@x.io", "email_verified": "true"}));
        assert!(user.email_verified);
        assert_eq!(user.email.as_deref(), Some("a@x.io"));
        let user =
            from_id_token(&json!({"iss": "i", "sub": "2", "email": "a@x.io", "email_verified": true, "hd": "x.io"}));
        assert_eq!(user.identity_data["custom_claims"]["hd"], "x.io");
        let user = from_userinfo("u", &json!({"id": "3", "email": "a@x.io", "verified_email": true}));
        assert!(user.email_verified);
        assert_eq!(user.subject, "3");
        assert!(!from_id_token(&json!({"sub": "4", "email": "a@x.io"})).email_verified);
    }
}
