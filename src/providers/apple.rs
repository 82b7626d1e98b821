//! Sign in with Apple (`internal/api/provider/apple.go`), an OpenID Connect provider.
//!
//! Apple's quirks, as GoTrue handles them:
//! - the client secret is a JWT the developer signs with their Apple key (it expires after at
//!   most six months); `GOTRUE_EXTERNAL_APPLE_SECRET` holds it and it is sent as it is, in the
//!   token request's form (Apple reads no HTTP Basic credentials);
//! - the authorize URL asks for `response_mode=form_post`: Apple posts the code to
//!   `POST /callback`;
//! - the user's name comes only with the first sign-in, as the posted `user` field
//!   (`{"name": {"firstName", "lastName"}, "email"}`), never in the ID token;
//! - ID tokens name `https://appleid.apple.com` or `https://account.apple.com` as issuer;
//!   native apps' tokens have their bundle id as audience (`GOTRUE_EXTERNAL_IOS_BUNDLE_ID`, or
//!   one of the comma-separated client ids).
//!
//! GoTrue ignores `GOTRUE_EXTERNAL_APPLE_URL`; Latchkey reads it as the issuer instead of
//! Apple's, so that the flow can be tested against a local fake.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::claims::{Claims, Email, text_at, truthy};
use super::oidc::{Oidc, TokenChecks};
use super::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser, Setup, SetupError};

const APPLE_ISSUER: &str = "https://appleid.apple.com";
const OTHER_APPLE_ISSUER: &str = "https://account.apple.com";

#[derive(Debug)]
pub(super) struct Apple {
    client: OAuthClient,
    /// Checks ID tokens of the redirect flow: for our (first) client id only, as GoTrue.
    code_flow: Oidc,
    /// Checks ID tokens of native apps: any configured client id or the iOS bundle id.
    native: Oidc,
    skip_nonce_check: bool,
}

pub(super) fn build(setup: Setup<'_>) -> Result<Box<dyn OAuthProvider>, SetupError> {
    let issuer = super::base_url(setup.config, &APPLE_ISSUER["https://".len()..]);
    let oidc = |audiences: Vec<String>| {
        let oidc = Oidc::new(setup.verifier.clone(), &issuer, audiences);
        if setup.config.url.is_none() {
            oidc.also_accepting_issuer(OTHER_APPLE_ISSUER)
        } else {
            oidc
        }
    };
    let mut audiences = setup.config.client_ids.clone();
    audiences.extend(setup.ios_bundle_id.map(str::to_owned));
    Ok(Box::new(Apple {
        code_flow: oidc(vec![setup.client.client_id().to_owned()]),
        native: oidc(audiences),
        client: setup.client.with_credentials_in_body(),
        skip_nonce_check: setup.config.skip_nonce_check,
    }))
}

/// The posted `user` field.
#[derive(Deserialize)]
struct PostedUser {
    #[serde(default)]
    name: PostedName,
}

#[derive(Deserialize, Default)]
struct PostedName {
    #[serde(default, rename = "firstName")]
    first_name: String,
    #[serde(default, rename = "lastName")]
    last_name: String,
}

#[async_trait]
impl OAuthProvider for Apple {
    super::basics!("apple", ["email", "name"]);

    fn authorize_params(&self) -> Vec<(String, String)> {
        vec![("response_mode".into(), "form_post".into())]
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        self.code_flow.endpoints().await
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| ProviderError::Profile("Apple's token response has no ID token".into()))?;
        let checks = TokenChecks {
            access_token: Some(&tokens.access_token),
            ..TokenChecks::CODE_FLOW
        };
        Ok(from_id_token(&self.code_flow.verify(id_token, &checks).await?))
    }

    /// GoTrue's `ParseUser`: the name of the first sign-in. An unreadable field only costs the
    /// name (GoTrue fails the sign-in).
    fn read_callback_user(&self, user: &mut ProviderUser, posted: &str) -> Result<(), ProviderError> {
        let Ok(posted) = serde_json::from_str::<PostedUser>(posted) else {
            tracing::info!("Apple posted a `user` field that is not the expected JSON; the name is left out");
            return Ok(());
        };
        let name = format!("{} {}", posted.name.first_name, posted.name.last_name);
        let name = name.trim();
        if let (Value::Object(data), false) = (&mut user.identity_data, name.is_empty()) {
            data.insert("name".into(), json!(name));
            data.insert("full_name".into(), json!(name));
        }
        Ok(())
    }

    fn id_token_oidc(&self) -> Option<&Oidc> {
        Some(&self.native)
    }

    fn skips_nonce_check(&self) -> bool {
        self.skip_nonce_check
    }

    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        Ok(from_id_token(&self.native.verify(id_token, checks).await?))
    }
}

/// GoTrue's `parseAppleIDToken`: Apple vouches for the address it gives (a relay address
/// when the user hides theirs); `is_private_email`, `auth_time` and `transfer_sub` are kept.
fn from_id_token(claims: &Value) -> ProviderUser {
    let text = |key| text_at(claims, &[key]).unwrap_or_default();
    let mut identity = Claims::new(text("iss"), text("sub"));
    if let Some(private) = claims.get("is_private_email") {
        identity.custom("is_private_email", json!(truthy(Some(private))));
    }
    if let Some(auth_time) = claims.get("auth_time").filter(|t| t.is_number()) {
        identity.custom("auth_time", auth_time.clone());
    }
    if !text("transfer_sub").is_empty() {
        identity.custom("transfer_sub", json!(text("transfer_sub")));
    }
    ProviderUser::new(identity, &Email::primary(Some(text("email")), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_vouches_for_its_addresses_and_keeps_its_claims() {
        let user = from_id_token(&json!({
            "iss": APPLE_ISSUER, "sub": "001.abc", "email": "x@privaterelay.appleid.com",
            "is_private_email": "true", "auth_time": 1700000000, "email_verified": "false",
        }));
        assert!(user.email_verified);
        assert_eq!(
            user.identity_data["custom_claims"],
            json!({"is_private_email": true, "auth_time": 1700000000})
        );
        assert!(!from_id_token(&json!({"iss": APPLE_ISSUER, "sub": "2"})).email_verified);
    }
}
