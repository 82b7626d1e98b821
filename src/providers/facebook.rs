//! Facebook (`internal/api/provider/facebook.go`): plain OAuth 2 for the redirect flow, the
//! profile from the Graph API with an `appsecret_proof`; and Facebook Login's "Limited Login"
//! ID tokens (issuer `https://www.facebook.com`) for `grant_type=id_token`, whose nonce is
//! never checked (GoTrue: the SDK sets one the app cannot pass on). Facebook vouches for every
//! address it gives. `GOTRUE_EXTERNAL_FACEBOOK_URL` moves every host (and the issuer).

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::Sha256;

use super::claims::{Claims, Email, text_at};
use super::oidc::{Oidc, TokenChecks};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

#[derive(Debug)]
pub(super) struct Facebook {
    client: OAuthClient,
    web: String,
    graph: String,
    oidc: Oidc,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let web = super::base_url(setup.config, "www.facebook.com");
    Ok(Box::new(Facebook {
        oidc: Oidc::new(setup.verifier.clone(), &web, setup.config.client_ids.clone()),
        graph: super::base_url(setup.config, "graph.facebook.com"),
        web,
        client: setup.client,
    }))
}

impl Facebook {
    /// Where the profile is read (without the proof), also the identity's issuer in GoTrue.
    fn profile_url(&self) -> String {
        format!("{}/me?fields=email,first_name,last_name,name,picture", self.graph)
    }
}

#[async_trait]
impl OAuthProvider for Facebook {
    super::basics!("facebook", ["email"]);

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints {
            authorize: format!("{}/dialog/oauth", self.web),
            token: format!("{}/oauth/access_token", self.graph),
        })
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let secret = self.client.secret().ok_or(ProviderError::NoSecret)?;
        let proof = appsecret_proof(secret.expose_secret(), &tokens.access_token);
        let url = format!("{}&appsecret_proof={proof}", self.profile_url());
        let user: Value = self.client.get_json(&url, &tokens.access_token, &[]).await?;
        let text = |key| text_at(&user, &[key]).unwrap_or_default();
        let picture = text_at(&user, &["picture", "data", "url"]).unwrap_or_default();
        let name = format!("{} {}", text("first_name"), text("last_name"));
        let mut claims = Claims::new(&self.profile_url(), text("id"));
        claims
            .text("name", name.trim())
            .text("full_name", name.trim())
            .text("nickname", text("name"))
            .text("slug", text("name"))
            .text("picture", picture)
            .text("avatar_url", picture);
        Ok(ProviderUser::new(claims, &Email::primary(Some(text("email")), true)))
    }

    fn id_token_oidc(&self) -> Option<&Oidc> {
        Some(&self.oidc)
    }

    fn skips_nonce_check(&self) -> bool {
        true
    }

    /// GoTrue's `parseFacebookIDToken`.
    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let claims = self.oidc.verify(id_token, checks).await?;
        let text = |key| text_at(&claims, &[key]).unwrap_or_default();
        let mut identity = Claims::new(text("iss"), text("sub"));
        identity.text("name", text("name")).text("picture", text("picture"));
        Ok(ProviderUser::new(identity, &Email::primary(Some(text("email")), true)))
    }
}

/// The Graph API's proof that the caller holds the app secret: HMAC-SHA256 of the access
/// token keyed with the secret, in hex.
fn appsecret_proof(secret: &str, access_token: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_is_the_hmac_of_the_token() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
