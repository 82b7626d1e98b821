//! A JWK set fetched from a URL (a Latchkey server's `/.well-known/jwks.json`, or another
//! issuer's) and kept in memory: fetched on first use, used for ten minutes (as supabase-js
//! keeps it), and fetched again early when a token names a key the set lacks, at most once a
//! minute, so that tokens naming random keys cannot make every request a fetch.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use super::RlsError;
use crate::auth::jwt::KeyRing;
use crate::providers::oidc::cache::RefetchGate;

/// How long a fetched set is used before it is fetched again (supabase-js's `JWKS_TTL`, and
/// the `max-age` Latchkey serves it with). A key removed from the set stops verifying here
/// at most this long after.
const CACHE_FOR: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(super) struct RemoteKeys {
    url: String,
    http: reqwest::Client,
    cached: Mutex<Option<(Instant, KeyRing)>>,
    refetches: RefetchGate,
}

impl RemoteKeys {
    pub(super) fn new(url: String) -> Result<RemoteKeys, RlsError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| RlsError::KeysUnavailable(err.to_string()))?;
        Ok(RemoteKeys {
            url,
            http,
            cached: Mutex::new(None),
            refetches: RefetchGate::default(),
        })
    }

    /// The keys to verify a token naming `kid` with.
    pub(super) async fn ring(&self, kid: Option<&str>) -> Result<KeyRing, RlsError> {
        let cached = self.cached();
        let ring = match cached {
            Some(ring) => ring,
            None => self.fetch().await?,
        };
        let unknown = kid.is_some_and(|kid| !ring.knows(kid));
        if unknown && self.refetches.try_claim(&self.url, Instant::now()) {
            // Signed with a key newer than the cached set: the issuer rotated its keys.
            return self.fetch().await;
        }
        Ok(ring)
    }

    fn cached(&self) -> Option<KeyRing> {
        // Every write leaves the slot consistent, so a poisoned lock is still usable.
        let slot = self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref()
            .filter(|(fetched, _)| fetched.elapsed() < CACHE_FOR)
            .map(|(_, ring)| ring.clone())
    }

    /// Fetches the set and keeps it. A failure is not kept: the next request tries again.
    async fn fetch(&self) -> Result<KeyRing, RlsError> {
        let unavailable = |err: reqwest::Error| RlsError::KeysUnavailable(format!("{}: {err}", self.url));
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let ring = KeyRing::from_jwks(&set);
        let mut slot = self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some((Instant::now(), ring.clone()));
        Ok(ring)
    }
}
