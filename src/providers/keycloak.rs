//! Keycloak (`internal/api/provider/keycloak.go`): the realm at `GOTRUE_EXTERNAL_KEYCLOAK_URL`
//! (required; `https://<host>/realms/<realm>`), OAuth 2 with the user from its userinfo
//! endpoint (every claim beyond the standard four kept as a custom claim), and its ID tokens
//! (issuer = the realm URL) for `grant_type=id_token`.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::claims::{Claims, Email, text_at, truthy};
use super::oidc::{Oidc, TokenChecks};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Keycloak {
    client: OAuthClient,
    realm: String,
    oidc: Oidc,
    skip_nonce_check: bool,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let Some(url) = &setup.config.url else {
        return Err(SetupError {
            field: "URL",
            message: "required: the realm's URL, such as https://keycloak.example.com/realms/myrealm".into(),
        });
    };
    let realm = url.as_str().trim_end_matches('/').to_owned();
    Ok(Box::new(Keycloak {
        oidc: Oidc::new(setup.verifier.clone(), &realm, setup.config.client_ids.clone()),
        realm,
        skip_nonce_check: setup.config.skip_nonce_check,
        client: setup.client,
    }))
}

/// The userinfo claims GoTrue maps; every other one is a custom claim.
const STANDARD: [&str; 4] = ["name", "sub", "email", "email_verified"];

#[async_trait]
impl OAuthProvider for Keycloak {
    super::basics!("keycloak", ["profile", "email"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/protocol/openid-connect/auth", self.realm),
            token: format!("{}/protocol/openid-connect/token", self.realm),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let url = format!("{}/protocol/openid-connect/userinfo", self.realm);
        let info: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&info, &[key]).unwrap_or_default();
        let mut claims = Claims::new(&self.realm, text("sub"));
        claims.text("name", text("name")).text("full_name", text("name"));
        let custom: Map<String, Value> = info
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| !STANDARD.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !custom.is_empty() {
            claims.value("custom_claims", Value::Object(custom));
        }
        let verified = info.get("email_verified").and_then(Value::as_bool).unwrap_or(false);
        Ok(ProviderUser::new(
            claims,
            &Email::primary(Some(text("email")), verified),
        ))
    }

    fn id_token_oidc(&self) -> Option<&Oidc> {
        Some(&self.oidc)
    }

    fn skips_nonce_check(&self) -> bool {
        self.skip_nonce_check
    }

    /// GoTrue reads a Keycloak ID token the generic way (`parseGenericIDToken`).
    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let claims = self.oidc.verify(id_token, checks).await?;
        let email = text_at(&claims, &["email"]);
        let verified = truthy(claims.get("email_verified"));
        Ok(ProviderUser::new(
            Claims::standard(&claims),
            &Email::primary(email, verified),
        ))
    }
}
