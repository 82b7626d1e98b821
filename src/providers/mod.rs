//! OAuth and OpenID Connect providers: Latchkey as an OAuth client of GitHub, Google, ...
//!
//! Each provider is a small module that knows its URLs, its default scopes and how to read the
//! user it signs in; the authorization-code flow itself (authorize URL, code exchange) is the
//! same for all ([`OAuthClient`]), and so is the checking of ID tokens ([`oidc`]). The
//! [`Registry`] holds the enabled ones, built once at start-up, with the one HTTP client they
//! share.
//!
//! This layer knows nothing of accounts or of HTTP requests to Latchkey: `auth` decides what a
//! provider's answer means for an account, and maps a [`ProviderError`] to GoTrue's errors.

mod code_flow;
mod github;
mod google;
pub mod oidc;
mod registry;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use crate::config::ProviderConfig;

pub use code_flow::OAuthClient;
pub use oidc::{ExpectedNonce, IdTokenError};
pub use registry::Registry;

/// What a provider module is given to build its provider.
struct Setup<'a> {
    config: &'a ProviderConfig,
    /// Latchkey's registration there, with the shared HTTP client.
    client: OAuthClient,
    /// For OpenID Connect providers.
    verifier: &'a Arc<oidc::IdTokenVerifier>,
}

/// What the provider says about the user.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    /// The provider's subject (`_auth_identities.provider_id`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for `email`. Only then may it be linked to an account.
    pub email_verified: bool,
    /// GoTrue's identity claims (`iss`, `sub`, `name`, `avatar_url`, `email_verified`, ...),
    /// also merged into `user_metadata`.
    pub identity_data: Value,
}

/// The tokens of a code exchange. The access and refresh tokens go back to the client as
/// `provider_token` / `provider_refresh_token`; the ID token (OIDC providers) is read here.
#[derive(Clone, Default)]
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

// Hand-written so that a stray `{:?}` never prints a token.
impl std::fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the authorization-code flow of one provider takes place.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
}

/// A failure talking to a provider. The text is for the log: it names the step and the
/// cause (a status, an OAuth error code, a claim), never a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The discovery document could not be fetched or does not describe the configured issuer.
    #[error("provider metadata: {0}")]
    Metadata(String),
    /// The token endpoint refused the code or could not be reached.
    #[error("code exchange: {0}")]
    CodeExchange(String),
    /// The user's profile could not be read.
    #[error("user profile: {0}")]
    Profile(String),
    /// The ID token was refused.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The provider issues no ID tokens (it is not an OpenID Connect provider).
    #[error("the provider issues no ID tokens")]
    NotOidc,
    /// An endpoint URL in the configuration or the discovery document is not a URL.
    #[error("bad provider URL: {0}")]
    BadUrl(String),
}

/// One OAuth provider. An implementation supplies its name, its endpoints and scopes, and how
/// to read the user; the authorization-code flow comes with the trait ([`OAuthClient`]), and
/// an OpenID Connect provider checks its ID tokens with the shared verifier ([`oidc::Oidc`]).
#[async_trait]
pub trait OAuthProvider: Send + Sync + std::fmt::Debug {
    /// GoTrue's name for it: `/authorize?provider=<name>`, `_auth_identities.provider`.
    fn name(&self) -> &'static str;

    /// Latchkey's registration at the provider (client id, secret, redirect URI) and the HTTP
    /// client that reaches it.
    fn client(&self) -> &OAuthClient;

    /// Scopes always asked for; the client's `scopes` are added to them.
    fn default_scopes(&self) -> &'static [&'static str];

    /// Whether the provider speaks OpenID Connect: its ID tokens can sign a user in
    /// ([`OAuthProvider::user_from_id_token`]).
    fn is_oidc(&self) -> bool {
        false
    }

    /// The authorize and token endpoints (fixed, or read from a discovery document).
    async fn endpoints(&self) -> Result<Endpoints, ProviderError>;

    /// The user the tokens of a code exchange belong to.
    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError>;

    /// Checks an ID token of this provider (signature against its published keys, issuer,
    /// audience = our client id, expiry, `nonce`) and reads the user from its claims.
    async fn user_from_id_token(
        &self,
        _id_token: &str,
        _nonce: ExpectedNonce<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        Err(ProviderError::NotOidc)
    }

    /// The provider's authorize URL for the flow whose id is `state`: the default scopes plus
    /// `scopes`, and the `extra` query parameters the client asked to forward.
    async fn authorize_url(
        &self,
        state: &str,
        scopes: &[String],
        extra: &[(String, String)],
    ) -> Result<Url, ProviderError> {
        let endpoints = self.endpoints().await?;
        self.client()
            .authorize_url(&endpoints, self.default_scopes(), state, scopes, extra)
    }

    /// Exchanges the callback's `code` at the token endpoint.
    async fn exchange_code(&self, code: &str) -> Result<ProviderTokens, ProviderError> {
        let endpoints = self.endpoints().await?;
        self.client().exchange_code(&endpoints, code).await
    }
}

/// Sends `request` and reads its JSON answer; a status other than 2xx is an error.
async fn fetch_json<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, reqwest::Error> {
    request.send().await?.error_for_status()?.json().await
}
