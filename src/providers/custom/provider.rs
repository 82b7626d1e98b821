//! One custom provider: plain OAuth 2 (the user from its userinfo URL) or OpenID Connect (the
//! user from the ID token of the code exchange, else from the userinfo endpoint).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::mapping::{apply_mapping, capture_allowed};
use super::{CustomKind, CustomSettings};
use crate::providers::claims::{Claims, Email, text_at, truthy};
use crate::providers::oidc::{IdTokenVerifier, Oidc, TokenChecks};
use crate::providers::{Endpoints, OAuthClient, OAuthProvider, ProviderError, ProviderTokens, ProviderUser};

#[derive(Debug)]
pub(super) struct Custom {
    settings: CustomSettings,
    client: OAuthClient,
    /// For OpenID Connect providers.
    oidc: Option<Oidc>,
}

impl Custom {
    pub(super) fn new(settings: CustomSettings, client: OAuthClient, verifier: &Arc<IdTokenVerifier>) -> Custom {
        let oidc = match &settings.kind {
            CustomKind::Oidc { issuer, discovery_url } => {
                let mut audiences = vec![settings.client_id.clone()];
                audiences.extend(settings.acceptable_client_ids.iter().cloned());
                let oidc = Oidc::new(verifier.clone(), issuer, audiences);
                Some(match discovery_url {
                    Some(url) => oidc.with_discovery_url(url),
                    None => oidc,
                })
            }
            CustomKind::OAuth2 { .. } => None,
        };
        Custom { settings, client, oidc }
    }

    /// The user from a provider's claims (an ID token's or a userinfo answer): GoTrue's generic
    /// reading, then the allowlist and the mapping.
    fn user_from_claims(&self, raw: &Value) -> ProviderUser {
        let mut claims = Claims::standard(raw);
        capture_allowed(&mut claims, raw, &self.settings.custom_claims_allowlist);
        let claims = apply_mapping(claims, &self.settings.attribute_mapping);
        let email = claims.get("email").map(str::to_owned);
        let verified = truthy(claims.as_map().get("email_verified"));
        ProviderUser::new(claims, &Email::primary(email.as_deref(), verified))
    }

    async fn userinfo(&self, access_token: &str) -> Result<ProviderUser, ProviderError> {
        let url = match (&self.settings.kind, &self.oidc) {
            (CustomKind::OAuth2 { userinfo_url, .. }, _) => userinfo_url.clone(),
            (CustomKind::Oidc { .. }, Some(oidc)) => oidc
                .discovery()
                .await?
                .userinfo_endpoint
                .clone()
                .ok_or_else(|| ProviderError::Profile("no ID token and no userinfo endpoint".into()))?,
            (CustomKind::Oidc { .. }, None) => return Err(ProviderError::NotOidc),
        };
        let raw: Value = self.client.get_json(&url, access_token, &[]).await?;
        if text_at(&raw, &["sub"]).unwrap_or_default().is_empty() {
            return Err(ProviderError::Profile("the userinfo answer has no `sub`".into()));
        }
        Ok(self.user_from_claims(&raw))
    }
}

#[async_trait]
impl OAuthProvider for Custom {
    fn name(&self) -> &str {
        &self.settings.identifier
    }

    fn client(&self) -> &OAuthClient {
        &self.client
    }

    fn default_scopes(&self) -> Vec<String> {
        self.settings.scopes.clone()
    }

    /// GoTrue: requested scopes (space-separated, RFC 6749's way) replace the stored ones.
    fn scopes(&self, requested: &str) -> Vec<String> {
        let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
        let mut scopes = if requested.is_empty() {
            self.default_scopes()
        } else {
            requested
        };
        if self.oidc.is_some() && !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        scopes
    }

    fn authorize_params(&self) -> Vec<(String, String)> {
        self.settings.authorization_params.clone()
    }

    fn requires_pkce(&self) -> bool {
        self.settings.pkce_enabled
    }

    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        match (&self.settings.kind, &self.oidc) {
            (
                CustomKind::OAuth2 {
                    authorization_url,
                    token_url,
                    ..
                },
                _,
            ) => Ok(Endpoints {
                authorize: authorization_url.clone(),
                token: token_url.clone(),
            }),
            (_, Some(oidc)) => oidc.endpoints().await,
            (_, None) => Err(ProviderError::NotOidc),
        }
    }

    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError> {
        match (&self.oidc, &tokens.id_token) {
            (Some(oidc), Some(id_token)) => {
                Ok(self.user_from_claims(&oidc.verify(id_token, &TokenChecks::CODE_FLOW).await?))
            }
            _ => self.userinfo(&tokens.access_token).await,
        }
    }

    fn id_token_oidc(&self) -> Option<&Oidc> {
        self.oidc.as_ref()
    }

    fn skips_nonce_check(&self) -> bool {
        self.settings.skip_nonce_check
    }

    async fn user_from_id_token(
        &self,
        id_token: &str,
        checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        let oidc = self.oidc.as_ref().ok_or(ProviderError::NotOidc)?;
        Ok(self.user_from_claims(&oidc.verify(id_token, checks).await?))
    }
}
