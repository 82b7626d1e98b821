//! The one ID-token verifier of every OpenID Connect provider: the discovery document
//! (`<issuer>/.well-known/openid-configuration`) and the key set (`jwks_uri`) are fetched and
//! cached for an hour (see [`cache::CACHE_FOR`]); a token naming a key the cached set lacks
//! fetches the set again, at most once a minute (see [`cache::REFETCH_AT_MOST_EVERY`]). A token
//! passes when an accepted asymmetric algorithm signed it with a published key, and its issuer,
//! audience (our client id), expiry and, when asked for, `nonce` are right.

/// Also the RLS API's JWKS cache uses the refetch gate.
pub(crate) mod cache;

use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use self::cache::{Cache, RefetchGate};
use super::{Endpoints, ProviderError, fetch_json};

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

/// Why an ID token was refused. For the log; a client sees one message for all of them.
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
    #[error("ID token for another audience")]
    Audience,
    #[error("ID token without the `{0}` claim")]
    MissingClaim(String),
    #[error("ID token nonce does not match")]
    Nonce,
}

/// What the token's `nonce` claim must be.
#[derive(Debug, Clone, Copy)]
pub enum ExpectedNonce<'a> {
    /// Not checked: the code flow, where Latchkey sent no nonce and the token came straight
    /// from the provider's token endpoint in answer to Latchkey's own request.
    Unchecked,
    /// Exactly this (the `id_token` grant: GoTrue compares the hash of the client's nonce).
    Exactly(&'a str),
    /// No nonce at all (the `id_token` grant without one: GoTrue refuses a token that has one).
    Absent,
}

/// The part of a discovery document Latchkey reads.
#[derive(Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: Option<String>,
}

/// Fetches and caches discovery documents and key sets, for every OIDC provider of a registry.
#[derive(Debug)]
pub struct IdTokenVerifier {
    http: reqwest::Client,
    discovery: Cache<Discovery>,
    keys: Cache<JwkSet>,
    refetches: RefetchGate,
}

impl IdTokenVerifier {
    pub fn new(http: reqwest::Client) -> Self {
        IdTokenVerifier {
            http,
            discovery: Cache::default(),
            keys: Cache::default(),
            refetches: RefetchGate::default(),
        }
    }

    async fn fetch<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        fetch_json(self.http.get(url))
            .await
            .map_err(|err| ProviderError::Metadata(err.to_string()))
    }

    /// The discovery document of `issuer`, which must name that issuer (as go-oidc, and so
    /// GoTrue, requires: a document naming another issuer is refused, not cached).
    async fn discover(&self, issuer: &str) -> Result<Arc<Discovery>, ProviderError> {
        let url = format!("{issuer}/.well-known/openid-configuration");
        if let Some(discovery) = self.discovery.get(&url) {
            return Ok(discovery);
        }
        let discovery: Discovery = self.fetch(&url).await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(ProviderError::Metadata(format!(
                "the discovery document of {issuer} names the issuer {}",
                discovery.issuer
            )));
        }
        Ok(self.discovery.put(&url, discovery))
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
    /// Without a trailing slash; the discovery document is under it.
    issuer: String,
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
            issuer,
            audiences,
        }
    }

    /// Accepts tokens whose `iss` is `issuer` too.
    pub fn also_accepting_issuer(mut self, issuer: &str) -> Oidc {
        self.accepted_issuers.push(issuer.to_owned());
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub async fn discovery(&self) -> Result<Arc<Discovery>, ProviderError> {
        self.verifier.discover(&self.issuer).await
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
    pub async fn verify(&self, token: &str, nonce: ExpectedNonce<'_>) -> Result<Value, ProviderError> {
        // Judged before any request: a token no key could verify costs the provider nothing.
        let header = header(token)?;
        let discovery = self.discovery().await?;
        let keys = self
            .verifier
            .key_set(&discovery.jwks_uri, header.kid.as_deref())
            .await?;
        Ok(self.check(token, &keys, nonce)?)
    }

    /// The checks that need no network: signature with a key of `keys`, then the claims.
    fn check(&self, token: &str, keys: &JwkSet, nonce: ExpectedNonce<'_>) -> Result<Value, IdTokenError> {
        let header = header(token)?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&self.audiences);
        validation.set_issuer(&self.accepted_issuers);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // With a `kid`, the key of that name; without one, whichever published key fits (as
        // go-oidc tries them all).
        let candidates: Vec<&Jwk> = match header.kid.as_deref() {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys.keys.iter().collect(),
        };
        let mut outcome = Err(IdTokenError::UnknownKey);
        for jwk in candidates.into_iter().filter(|jwk| fits(jwk, header.alg)) {
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            outcome = jsonwebtoken::decode::<Value>(token, &key, &validation)
                .map(|data| data.claims)
                .map_err(refusal);
            if outcome.is_ok() {
                break;
            }
        }
        let claims = outcome?;
        check_nonce(&claims, nonce)?;
        Ok(claims)
    }
}

/// The token's header, if it names an accepted algorithm.
fn header(token: &str) -> Result<jsonwebtoken::Header, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    Ok(header)
}

/// Whether a published key may verify a token signed with `alg`: a public key (never a
/// symmetric one), meant for signatures, of the algorithm it is published for.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let public = !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_));
    let for_signing = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
    let same_alg = match jwk.common.key_algorithm {
        None => true,
        Some(published) => published == KeyAlgorithm::from(alg),
    };
    public && for_signing && same_alg
}

fn refusal(err: jsonwebtoken::errors::Error) -> IdTokenError {
    match err.into_kind() {
        ErrorKind::InvalidSignature => IdTokenError::Signature,
        ErrorKind::ExpiredSignature => IdTokenError::Expired,
        ErrorKind::InvalidIssuer => IdTokenError::Issuer,
        ErrorKind::InvalidAudience => IdTokenError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => IdTokenError::MissingClaim(claim),
        ErrorKind::InvalidAlgorithm => IdTokenError::Algorithm("does not fit the key".into()),
        other => IdTokenError::Malformed(format!("{other:?}")),
    }
}

fn check_nonce(claims: &Value, expected: ExpectedNonce<'_>) -> Result<(), IdTokenError> {
    let nonce = claims.get("nonce").and_then(Value::as_str).filter(|n| !n.is_empty());
    let fine = match expected {
        ExpectedNonce::Unchecked => true,
        ExpectedNonce::Exactly(expected) => nonce == Some(expected),
        ExpectedNonce::Absent => nonce.is_none(),
    };
    if fine { Ok(()) } else { Err(IdTokenError::Nonce) }
}

#[cfg(test)]
mod tests;
