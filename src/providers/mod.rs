//! OAuth and OpenID Connect providers: Latchkey as an OAuth client of GitHub, Google, Apple, ...
//!
//! Each provider is a small module that knows its URLs, its default scopes and how to read the
//! user it signs in (GoTrue's mapping to identity claims, [`claims`]); the authorization-code
//! flow itself (authorize URL, code exchange) is the same for all ([`OAuthClient`]), and so is
//! the checking of ID tokens ([`oidc`]). The [`Registry`] holds the enabled built-in ones,
//! built once at start-up, and builds custom providers (stored in the database, read by
//! `auth`) on demand.
//!
//! This layer knows nothing of accounts or of HTTP requests to Latchkey: `auth` decides what a
//! provider's answer means for an account, and maps a [`ProviderError`] to GoTrue's errors.

mod apple;
mod azure;
mod bitbucket;
pub mod claims;
mod code_flow;
pub mod custom;
mod discord;
mod facebook;
mod figma;
mod fly;
mod github;
mod gitlab;
mod google;
mod http;
mod kakao;
mod keycloak;
mod linkedin_oidc;
mod notion;
pub mod oidc;
mod registry;
mod slack_oidc;
mod snapchat;
mod spotify;
mod twitch;
pub mod url_guard;
mod workos;
mod x;
mod zoom;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::config::ProviderConfig;

pub use code_flow::{AuthorizeRequest, OAuthClient};
pub use oidc::{ExpectedNonce, IdTokenError, TokenChecks};
pub use registry::Registry;

/// What a provider module is given to build its provider.
struct Setup<'a> {
    config: &'a ProviderConfig,
    /// Latchkey's registration there, with the shared HTTP client.
    client: OAuthClient,
    /// For OpenID Connect providers.
    verifier: &'a Arc<oidc::IdTokenVerifier>,
    /// `GOTRUE_EXTERNAL_IOS_BUNDLE_ID` (Apple).
    ios_bundle_id: Option<&'a str>,
}

/// A setting a provider cannot work without, or cannot work with.
#[derive(Debug)]
struct SetupError {
    /// The variable's last part: `URL` for `GOTRUE_EXTERNAL_KEYCLOAK_URL`.
    field: &'static str,
    message: String,
}

/// What the provider says about the user. Made by [`ProviderUser::new`].
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
    /// The token response's other fields (WorkOS puts the profile there).
    pub extra: Map<String, Value>,
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
    /// No `GOTRUE_EXTERNAL_<P>_SECRET`: the provider signs in with ID tokens only.
    #[error("missing OAuth secret")]
    NoSecret,
}

/// One OAuth provider. An implementation supplies its name, its endpoints and scopes, and how
/// to read the user; the authorization-code flow comes with the trait ([`OAuthClient`]), and
/// an OpenID Connect provider checks its ID tokens with the shared verifier ([`oidc::Oidc`]).
#[async_trait]
pub trait OAuthProvider: Send + Sync + std::fmt::Debug {
    /// GoTrue's name for it: `/authorize?provider=<name>`, `_auth_identities.provider`.
    fn name(&self) -> &str;

    /// Latchkey's registration at the provider (client id, secret, redirect URI) and the HTTP
    /// client that reaches it.
    fn client(&self) -> &OAuthClient;

    /// Scopes always asked for; the client's `scopes` are added to them.
    fn default_scopes(&self) -> Vec<String>;

    /// The scopes of one flow from `/authorize?scopes=`: GoTrue splits them on commas and
    /// adds them to the defaults.
    fn scopes(&self, requested: &str) -> Vec<String> {
        let mut scopes = self.default_scopes();
        scopes.extend(
            requested
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        scopes
    }

    /// Query parameters the provider's authorize URL always carries (Apple's
    /// `response_mode=form_post`, a custom provider's `authorization_params`).
    fn authorize_params(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether the provider wants PKCE from Latchkey (X does; custom providers may).
    fn requires_pkce(&self) -> bool {
        false
    }

    /// The authorize and token endpoints (fixed, or read from a discovery document).
    async fn endpoints(&self) -> Result<Endpoints, ProviderError>;

    /// The user the tokens of a code exchange belong to.
    async fn user(&self, tokens: &ProviderTokens) -> Result<ProviderUser, ProviderError>;

    /// What the provider posted to the callback besides the code, read into the user (Apple
    /// sends the user's name as the `user` form field, on the first sign-in only).
    fn read_callback_user(&self, _user: &mut ProviderUser, _posted: &str) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The verifier of the provider's ID tokens when it takes them (`grant_type=id_token`):
    /// [`OAuthProvider::accepts_id_tokens`] and [`OAuthProvider::is_id_token_issuer`] follow
    /// from it. `None` for providers without ID tokens.
    fn id_token_oidc(&self) -> Option<&oidc::Oidc> {
        None
    }

    /// Whether [`OAuthProvider::user_from_id_token`] is implemented (`grant_type=id_token`).
    fn accepts_id_tokens(&self) -> bool {
        self.id_token_oidc().is_some()
    }

    /// Checks an ID token the client got from the provider (signature against its published
    /// keys, issuer, audience = one of our client ids, expiry, `at_hash` against
    /// `access_token`, and the `nonce`, as `nonce` says, unless the provider skips that check)
    /// and reads the user from its claims.
    async fn user_from_id_token(
        &self,
        _id_token: &str,
        _checks: &TokenChecks<'_>,
    ) -> Result<ProviderUser, ProviderError> {
        Err(ProviderError::NotOidc)
    }

    /// Whether this provider's ID tokens name `issuer` (for the `id_token` grant's deprecated
    /// `issuer` parameter).
    fn is_id_token_issuer(&self, issuer: &str) -> bool {
        self.id_token_oidc().is_some_and(|oidc| oidc.accepts_issuer(issuer))
    }

    /// Whether the nonce of ID tokens is not checked (`GOTRUE_EXTERNAL_<P>_SKIP_NONCE_CHECK`;
    /// always for Facebook's Limited Login tokens, as in GoTrue).
    fn skips_nonce_check(&self) -> bool {
        false
    }

    /// The provider's authorize URL for the flow whose id is `state`.
    async fn authorize_url(
        &self,
        state: &str,
        requested_scopes: &str,
        forwarded: &[(String, String)],
        code_verifier: Option<&str>,
    ) -> Result<Url, ProviderError> {
        let endpoints = self.endpoints().await?;
        let mut params = self.authorize_params();
        params.extend(forwarded.iter().cloned());
        let request = AuthorizeRequest {
            state,
            scopes: self.scopes(requested_scopes),
            params,
            code_verifier,
        };
        self.client().authorize_url(&endpoints, &request)
    }

    /// Exchanges the callback's `code` at the token endpoint (with the PKCE verifier of the
    /// flow, when the provider asked for one).
    async fn exchange_code(&self, code: &str, code_verifier: Option<&str>) -> Result<ProviderTokens, ProviderError> {
        let endpoints = self.endpoints().await?;
        self.client().exchange_code(&endpoints, code, code_verifier).await
    }
}

/// The base URL of a provider: `GOTRUE_EXTERNAL_<P>_URL` without its trailing slash, or
/// `https://<default_host>` (GoTrue's `chooseHost`).
fn base_url(config: &ProviderConfig, default_host: &str) -> String {
    match &config.url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => format!("https://{default_host}"),
    }
}

/// `scopes` as owned strings.
fn scopes(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

/// The trait methods every provider module spells the same way: GoTrue's name, the client,
/// the default scopes.
macro_rules! basics {
    ($name:literal, [$($scope:literal),* $(,)?]) => {
        fn name(&self) -> &str {
            $name
        }

        fn client(&self) -> &super::OAuthClient {
            &self.client
        }

        fn default_scopes(&self) -> Vec<String> {
            vec![$($scope.to_owned()),*]
        }
    };
}
use basics;
