//! The one ID-token verifier of every OpenID Connect provider: the discovery document
//! (`<issuer>/.well-known/openid-configuration`, or a configured discovery URL) and the key set
//! (`jwks_uri`) are fetched and cached for an hour (see [`cache::CACHE_FOR`]); a token naming a
//! key the cached set lacks fetches the set again, at most once a minute (see
//! [`cache::REFETCH_AT_MOST_EVERY`]). A token passes when an accepted asymmetric algorithm
//! signed it with a published key, and its issuer, expiry, audience (our client ids), `at_hash`
//! and, when asked for, `nonce` are right.

/// Also the RLS API's JWKS cache uses the refetch gate.
pub(crate) mod cache;
mod checks;

use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::cache::{Cache, RefetchGate};
pub use self::checks::{hashed_nonce, unverified_issuer};
use super::http::Http;
use super::{Endpoints, ProviderError};

/// The signature algorithms an ID token may use: the asymmetric ones. HS256 is left out on
/// purpose: with it, a token "signed" with a provider's public key (which anyone has) would
/// pass as the provider's.
const ACCEPTED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why an ID token was refused. For the log; a client sees GoTrue's messages (`auth`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("malformed ID token: {0}")]
    Malformed(String),
    #[error("ID token algorithm not accepted: {0}")]
    Algorithm(String),
    #[error("ID token signed with a key the provider does not publish")]
    UnknownKey,
    #[error("ID token signature does not verify")]
    Signature,
    #[error("ID token expired")]
    Expired,
    #[error("ID token from another issuer")]
    Issuer,
    /// The token's audiences, none of them ours.
    #[error("ID token for another audience: {0}")]
    Audience(String),
    #[error("ID token without the `{0}` claim")]
    MissingClaim(String),
    #[error("ID token at_hash does not match the access token")]
    AccessTokenHash,
    /// The client sent a nonce and the token has none, or the other way round.
    #[error("ID token nonce present on one side only")]
    NoncePresence,
    #[error("ID token nonce does not match")]
    Nonce,
}

/// What the token's `nonce` claim must be.
#[derive(Debug, Clone, Copy)]
pub enum ExpectedNonce<'a> {
    /// Not checked: the code flow, where Latchkey sent no nonce and the token came straight
    /// from the provider's token endpoint in answer to Latchkey's own request; or a provider
    /// configured to skip the check.
    Unchecked,
    /// Exactly this (the `id_token` grant: the hash of the client's nonce, [`hashed_nonce`]).
    Exactly(&'a str),
    /// No nonce at all (the `id_token` grant without one: GoTrue refuses a token that has one).
    Absent,
}

/// What the token is checked against besides its signature and issuer.
#[derive(Debug, Clone, Copy)]
pub struct TokenChecks<'a> {
    pub nonce: ExpectedNonce<'a>,
    /// The access token the client sent along (the `id_token` grant), for `at_hash`.
    pub access_token: Option<&'a str>,
}

impl TokenChecks<'_> {
    /// The code flow's: the token came from the provider's token endpoint itself.
    pub const CODE_FLOW: TokenChecks<'static> = TokenChecks {
        nonce: ExpectedNonce::Unchecked,
        access_token: None,
    };
}

/// The part of a discovery document Latchkey reads (and stores for custom providers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
}

/// Fetches and caches discovery documents and key sets, for every OIDC provider of a registry.
#[derive(Debug)]
pub struct IdTokenVerifier {
    http: Http,
    discovery: Cache<Discovery>,
    keys: Cache<JwkSet>,
    refetches: RefetchGate,
}

impl IdTokenVerifier {
    pub fn new(http: Http) -> Self {
        IdTokenVerifier {
            http,
            discovery: Cache::default(),
            keys: Cache::default(),
            refetches: RefetchGate::default(),
        }
    }

    async fn fetch<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        let metadata = |err: super::http::HttpError| ProviderError::Metadata(err.to_string());
        self.http
            .json(self.http.get(url).map_err(metadata)?)
            .await
            .map_err(metadata)
    }

    /// The discovery document at `url`, which must name `issuer` (as go-oidc, and so GoTrue,
    /// requires: a document naming another issuer is refused, not cached).
    pub async fn discover(&self, url: &str, issuer: &str) -> Result<Arc<Discovery>, ProviderError> {
        if let Some(discovery) = self.discovery.get(url) {
            return Ok(discovery);
        }
        let discovery: Discovery = self.fetch(url).await?;
        if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ProviderError::Metadata(format!(
                "the discovery document of {issuer} names the issuer {}",
                discovery.issuer
            )));
        }
        Ok(self.discovery.put(url, discovery))
    }

    /// The key set at `url`; fetched again when it lacks `kid` and the last such fetch of
    /// this set is a minute old.
    async fn key_set(&self, url: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, ProviderError> {
        let keys = match self.keys.get(url) {
            Some(keys) => keys,
            None => self.keys.put(url, self.fetch(url).await?),
        };
        let rotated = kid.is_some_and(|kid| keys.find(kid).is_none());
        if rotated && self.refetches.try_claim(url, Instant::now()) {
            // Signed with a key newer than the cached set: the provider rotated its keys.
            return Ok(self.keys.put(url, self.fetch(url).await?));
        }
        Ok(keys)
    }
}

/// One OpenID Connect provider as the verifier sees it: its issuer and our client ids there.
#[derive(Debug, Clone)]
pub struct Oidc {
    verifier: Arc<IdTokenVerifier>,
    /// Without a trailing slash.
    issuer: String,
    /// Where the discovery document is: `<issuer>/.well-known/openid-configuration` unless
    /// configured otherwise.
    discovery_url: String,
    /// The `iss` values its tokens may carry: the issuer, and any other spelling the provider
    /// is known to use.
    accepted_issuers: Vec<String>,
    /// The `aud` values a token may carry: Latchkey's client ids at the provider.
    audiences: Vec<String>,
}

impl Oidc {
    pub fn new(verifier: Arc<IdTokenVerifier>, issuer: &str, audiences: Vec<String>) -> Oidc {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Oidc {
            verifier,
            accepted_issuers: vec![issuer.clone()],
            discovery_url: format!("{issuer}/.well-known/openid-configuration"),
            issuer,
            audiences,
        }
    }

    /// Accepts tokens whose `iss` is `issuer` too.
    pub fn also_accepting_issuer(mut self, issuer: &str) -> Oidc {
        self.accepted_issuers.push(issuer.to_owned());
        self
    }

    /// Reads the discovery document at `url` instead of under the issuer.
    pub fn with_discovery_url(mut self, url: &str) -> Oidc {
        self.discovery_url = url.to_owned();
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether tokens naming `issuer` are this provider's.
    pub fn accepts_issuer(&self, issuer: &str) -> bool {
        self.accepted_issuers.iter().any(|accepted| accepted == issuer)
    }

    pub async fn discovery(&self) -> Result<Arc<Discovery>, ProviderError> {
        self.verifier.discover(&self.discovery_url, &self.issuer).await
    }

    /// The endpoints of the code flow, from the discovery document.
    pub async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        let discovery = self.discovery().await?;
        Ok(Endpoints {
            authorize: discovery.authorization_endpoint.clone(),
            token: discovery.token_endpoint.clone(),
        })
    }

    /// The claims of `token` once it has passed every check.
    pub async fn verify(&self, token: &str, checks: &TokenChecks<'_>) -> Result<Value, ProviderError> {
        // Judged before any request: a token no key could verify costs the provider nothing.
        let header = checks::header(token)?;
        let discovery = self.discovery().await?;
        let keys = self
            .verifier
            .key_set(&discovery.jwks_uri, header.kid.as_deref())
            .await?;
        Ok(self.check(token, &keys, checks)?)
    }

    /// The checks that need no network: signature with a key of `keys`, then the claims.
    fn check(&self, token: &str, keys: &JwkSet, checks: &TokenChecks<'_>) -> Result<Value, IdTokenError> {
        let header = checks::header(token)?;
        let mut validation = Validation::new(header.alg);
        // The audience is checked below, after the signature and expiry, as GoTrue does.
        validation.validate_aud = false;
        validation.set_issuer(&self.accepted_issuers);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // With a `kid`, the key of that name; without one, whichever published key fits (as
        // go-oidc tries them all).
        let candidates: Vec<&Jwk> = match header.kid.as_deref() {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys.keys.iter().collect(),
        };
        let mut outcome = Err(IdTokenError::UnknownKey);
        for jwk in candidates.into_iter().filter(|jwk| checks::fits(jwk, header.alg)) {
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            outcome = jsonwebtoken::decode::<Value>(token, &key, &validation)
                .map(|data| data.claims)
                .map_err(checks::refusal);
            if outcome.is_ok() {
                break;
            }
        }
        let claims = outcome?;
        checks::check_access_token_hash(&claims, header.alg, checks.access_token)?;
        checks::check_audience(&claims, &self.audiences)?;
        checks::check_nonce(&claims, checks.nonce)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
