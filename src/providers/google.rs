//! Google, an OpenID Connect provider: the endpoints come from the discovery document of the
//! issuer, `https://accounts.google.com` unless `GOTRUE_EXTERNAL_GOOGLE_URL` names another
//! (GoTrue ignores that variable; Latchkey honours it for tests and self-hosted IdPs). The user
//! is read from the ID token of the code exchange, checked by the shared verifier
//! ([`super::oidc`]), or from the userinfo endpoint when the token response has none.

use async_trait::async_trait;
use serde_json::{Value, json};

use url::Url;

use super::oidc::{ExpectedNonce, Oidc};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup};

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GOOGLE_USERINFO: &str = "https://www.googleapis.com/userinfo/v2/me";

#[derive(Debug)]
pub(super) struct Google {
    client: OAuthClient,
    oidc: Oidc,
}

pub(super) fn build(setup: Setup<'_>) -> Box<dyn OAuthProvider> {
    let issuer = setup.config.url.as_ref().map_or(GOOGLE_ISSUER, Url::as_str);
    let issuer = issuer.trim_end_matches('/');
    let oidc = Oidc::new(
        setup.verifier.clone(),
        issuer,
        vec![setup.client.client_id().to_owned()],
    )
    // Google writes its issuer both with and without the scheme.
    .also_accepting_issuer(issuer.trim_start_matches("https://"));
    Box::new(Google {
        client: setup.client,
        oidc,
    })
}

#[async_trait]
impl OAuthProvider for Google {
    fn name(&self) -> &'static str {
        "google"
    }

    fn client(&self) -> &OAuthClient {
        &self.client
    }

    fn default_scopes(&self) -> &'static [&'static str] {
        &["email", "profile"]
    }

    fn is_oidc(&self) -> bool {
        true
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        self.oidc.endpoints().await
    }

    /// From the ID token when the token response has one, else from the userinfo endpoint.
    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        if let Some(id_token) = &tokens.id_token {
            return self.user_from_id_token(id_token, ExpectedNonce::Unchecked).await;
        }
        let discovery = self.oidc.discovery().await?;
        let url = discovery.userinfo_endpoint.as_deref().unwrap_or(GOOGLE_USERINFO);
        let claims: Value = self.client.get_json(url, &tokens.access_token).await?;
        Ok(from_claims(self.oidc.issuer(), &claims))
    }

    async fn user_from_id_token(
        &self,
        id_token: &str,
        nonce: ExpectedNonce<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let claims = self.oidc.verify(id_token, nonce).await?;
        Ok(from_claims(self.oidc.issuer(), &claims))
    }
}

/// `email_verified` may be a boolean or the string "true"; userinfo v2 calls it `verified_email`.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn from_claims(issuer: &str, claims: &Value) -> ProviderUser {
    let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
    let subject = text("sub").or_else(|| text("id")).unwrap_or_default();
    let email = text("email").map(|e| e.to_lowercase());
    let email_verified =
        email.is_some() && (truthy(claims.get("email_verified")) || truthy(claims.get("verified_email")));
    let mut identity_data = json!({
        "iss": issuer,
        "sub": subject,
        "provider_id": subject,
        "name": text("name"),
        "full_name": text("name"),
        "picture": text("picture"),
        "avatar_url": text("picture"),
        "email": email,
        "email_verified": email_verified,
        "phone_verified": false,
    });
    if let Some(hd) = text("hd") {
        identity_data["custom_claims"] = json!({ "hd": hd });
    }
    ProviderUser {
        subject,
        email,
        email_verified,
        identity_data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_flags_come_in_several_spellings() {
        let user = from_claims("i", &json!({"sub": "1", "email": "A@x.io", "email_verified": "true"}));
        assert!(user.email_verified);
        assert_eq!(user.email.as_deref(), Some("a@x.io"));
        let user = from_claims(
            "i",
            &json!({"id": "2", "email": "a@x.io", "verified_email": true, "hd": "x.io"}),
        );
        assert!(user.email_verified);
        assert_eq!(user.subject, "2");
        assert_eq!(user.identity_data["custom_claims"]["hd"], "x.io");
        assert!(!from_claims("i", &json!({"sub": "3", "email": "a@x.io"})).email_verified);
    }
}
