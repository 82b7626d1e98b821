//! Kakao (`internal/api/provider/kakao.go`): OAuth 2 for the redirect flow (the client's
//! credentials go in the token request's form), the user from `/v2/user/me`; and Kakao's OpenID
//! Connect ID tokens (issuer `https://kauth.kakao.com`) for `grant_type=id_token`.
//! `GOTRUE_EXTERNAL_KAKAO_URL` moves both hosts (and the issuer).

use async_trait::async_trait;
use serde_json::Value;

use super::claims::{Claims, Email, text_at};
use super::oidc::{Oidc, TokenChecks};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Kakao {
    client: OAuthClient,
    auth: String,
    api: String,
    oidc: Oidc,
    skip_nonce_check: bool,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let auth = super::base_url(setup.config, "kauth.kakao.com");
    Ok(Box::new(Kakao {
        oidc: Oidc::new(setup.verifier.clone(), &auth, setup.config.client_ids.clone()),
        api: super::base_url(setup.config, "kapi.kakao.com"),
        auth,
        skip_nonce_check: setup.config.skip_nonce_check,
        client: setup.client.with_credentials_in_body(),
    }))
}

#[async_trait]
impl OAuthProvider for Kakao {
    super::basics!("kakao", ["account_email", "profile_image", "profile_nickname"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/oauth/authorize", self.auth),
            token: format!("{}/oauth/token", self.auth),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/v2/user/me", self.api);
        let user: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let account = |path: &[&str]| {
            let mut full = vec!["kakao_account"];
            full.extend_from_slice(path);
            text_at(&user, &full).unwrap_or_default().to_owned()
        };
        let flag = |key: &str| user["kakao_account"].get(key).and_then(Value::as_bool).unwrap_or(false);
        let nickname = account(&["profile", "nickname"]);
        let id = user.get("id").and_then(Value::as_i64).unwrap_or_default().to_string();
        let mut claims = Claims::new(&self.api, &id);
        claims
            .text("name", &nickname)
            .text("full_name", &nickname)
            .text("preferred_username", &nickname)
            .text("user_name", &nickname)
            .text("avatar_url", account(&["profile", "profile_image_url"]));
        let verified = flag("is_email_verified") && flag("is_email_valid");
        Ok(ProviderUser::new(
            claims,
            &Email::primary(Some(&account(&["email"])), verified),
        ))
    }

    fn id_token_oidc(&self) -> Option<&Oidc> {
        Some(&self.oidc)
    }

    fn skips_nonce_check(&self) -> bool {
        self.skip_nonce_check
    }

    /// GoTrue's `parseKakaoIDToken`: Kakao's ID tokens carry only addresses it verified.
    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let claims = self.oidc.verify(id_token, checks).await?;
        let text = |key| text_at(&claims, &[key]).unwrap_or_default();
        let mut identity = Claims::new(text("iss"), text("sub"));
        identity
            .text("name", text("nickname"))
            .text("preferred_username", text("nickname"))
            .text("picture", text("picture"));
        Ok(ProviderUser::new(identity, &Email::primary(Some(text("email")), true)))
    }
}
