//! The tokens a key ring has already verified, with their claims (issue #24). A client sends
//! the same access token on every request for its hour of life, and verifying it again each
//! time cost a tenth of a `GET /user` with HS256 (two base64 decodings and three JSON
//! parses of header and claims, and the HMAC) and about 200 µs with ES256.
//!
//! What is kept is "these exact bytes verified under this ring, and here are their claims".
//! That cannot go stale: a ring never changes (a ring fetched from a JWKS URL is a new ring
//! with a new cache), and the bytes are compared in full, so no other token can match. The
//! one part of the verdict that depends on time, `exp`, is checked against the clock on every
//! hit. Whatever depends on the database (the user, the session, a ban) is not in a token and
//! is read on every request as before.
//!
//! The cache is direct-mapped: a fixed number of slots, each holding one token, chosen by a
//! keyed hash of its bytes. A new token overwrites the slot's old one, so the memory is
//! bounded and a flood of valid tokens only costs re-verifications. Tokens that fail are never
//! written.

use std::any::Any;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

use super::reasons::{JwtError, reason};

/// An access token with its metadata is about 1 KB, so the slots hold about 2 MiB when all
/// are used (and nothing until tokens arrive): more than the active tokens of one server.
const SLOTS: usize = 2048;

pub struct VerifiedTokens {
    /// Random keys, so that no one can choose tokens that share a slot.
    hasher: RandomState,
    slots: Box<[Mutex<Option<Verified>>]>,
}

struct Verified {
    token: Box<str>,
    exp: Option<u64>,
    /// The claims as the caller that verified the token decoded them (a ring is verified
    /// into more than one claims type: the RLS API takes all claims, the server a few).
    claims: Arc<dyn Any + Send + Sync>,
}

/// What the cache knows of a token.
pub enum Lookup<T> {
    Unknown,
    Expired,
    /// Verified before, and its claims were decoded into `T`.
    Claims(T),
    /// Verified before, into another claims type.
    Verified,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens {
            hasher: RandomState::new(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl VerifiedTokens {
    pub fn lookup<T: Clone + 'static>(&self, token: &str) -> Lookup<T> {
        let slot = self.lock(token);
        let Some(entry) = slot.as_ref().filter(|entry| *entry.token == *token) else {
            return Lookup::Unknown;
        };
        if entry.exp.is_some_and(|exp| exp < jsonwebtoken::get_current_timestamp()) {
            return Lookup::Expired;
        }
        match entry.claims.downcast_ref::<T>() {
            Some(claims) => Lookup::Claims(claims.clone()),
            None => Lookup::Verified,
        }
    }

    /// Records a token whose signature and claims just verified, with the claims decoded.
    pub fn insert<T: Send + Sync + Clone + 'static>(&self, token: &str, claims: &T) {
        // It just decoded, so this cannot fail; if it did, the token is simply not kept.
        let Ok(exp) = payload(token).and_then(|payload| expiry(&payload)) else {
            return;
        };
        *self.lock(token) = Some(Verified {
            token: token.into(),
            exp,
            claims: Arc::new(claims.clone()),
        });
    }

    fn lock(&self, token: &str) -> std::sync::MutexGuard<'_, Option<Verified>> {
        let slot = (self.hasher.hash_one(token) % SLOTS as u64) as usize;
        self.slots[slot].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn malformed() -> JwtError {
    JwtError::Invalid("token is malformed".into())
}

fn payload(token: &str) -> Result<Vec<u8>, JwtError> {
    let payload = token.split('.').nth(1).ok_or_else(malformed)?;
    URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())
}

/// `exp` of a token that verified: absent or a whole number (see `keys::Verifier::new`).
fn expiry(payload: &[u8]) -> Result<Option<u64>, JwtError> {
    #[derive(serde::Deserialize)]
    struct Expiry {
        #[serde(default)]
        exp: Option<u64>,
    }
    let expiry: Expiry = serde_json::from_slice(payload).map_err(|_| malformed())?;
    Ok(expiry.exp)
}

/// The claims of a token that verified before, decoded into another type than the cached one.
pub fn claims_of_verified<T: DeserializeOwned>(token: &str) -> Result<T, JwtError> {
    // Claims that do not fit `T` fail as they would have in `jsonwebtoken::decode`.
    serde_json::from_slice(&payload(token)?).map_err(|err| JwtError::Invalid(reason(&err.into())))
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};
    use serde_json::{Value, json};

    use super::*;
    use crate::auth::jwt::{JwtKeys, KeySettings, jwk};

    fn es256_keys() -> JwtKeys {
        let key = jwk::generate(jsonwebtoken::Algorithm::ES256).unwrap();
        let set = SecretString::from(format!("[{}]", key.expose_secret()));
        JwtKeys::from_settings(&KeySettings {
            secret: &SecretString::from("a-secret-that-is-long-enough-for-hs256"),
            secret_kid: None,
            private_keys: Some(&set),
            valid_methods: None,
            secret_still_verifies: false,
        })
        .unwrap()
    }

    #[test]
    fn a_remembered_signature_still_expires_and_other_bytes_are_verified_afresh() {
        let keys = es256_keys();
        let now = chrono::Utc::now().timestamp();
        let token = keys.sign(&json!({"sub": "abc", "exp": now + 1})).unwrap();
        assert_eq!(keys.verify::<Value>(&token).unwrap()["sub"], "abc");
        // Remembered now: the same bytes pass without a signature check...
        assert_eq!(keys.verify::<Value>(&token).unwrap()["sub"], "abc");
        // ...but its signature on other claims is checked, and fails.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims =
            URL_SAFE_NO_PAD.encode(json!({"sub": "abc", "exp": now + 3600, "role": "service_role"}).to_string());
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert!(matches!(keys.verify::<Value>(&forged), Err(JwtError::Invalid(_))));
        // Remembered or not, it expires on time.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(matches!(keys.verify::<Value>(&token), Err(JwtError::Expired)));
    }

    #[test]
    fn a_remembered_hs256_token_expires_and_serves_every_claims_type() {
        let keys = JwtKeys::from_settings(&KeySettings {
            secret: &SecretString::from("a-secret-that-is-long-enough-for-hs256"),
            secret_kid: None,
            private_keys: None,
            valid_methods: None,
            secret_still_verifies: false,
        })
        .unwrap();
        let now = chrono::Utc::now().timestamp();
        let token = keys
            .sign(&json!({"sub": "abc", "role": "authenticated", "exp": now + 1}))
            .unwrap();
        assert_eq!(keys.verify::<Value>(&token).unwrap()["sub"], "abc");
        // Remembered as a `Value`; another type decodes the same verified bytes.
        let map = keys.verify::<serde_json::Map<String, Value>>(&token).unwrap();
        assert_eq!(map["role"], "authenticated");
        // A changed signature or payload is not the remembered token.
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(keys.verify::<Value>(&tampered), Err(JwtError::Invalid(_))));
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(matches!(keys.verify::<Value>(&token), Err(JwtError::Expired)));
        assert!(matches!(keys.verify::<Map>(&token), Err(JwtError::Expired)));
    }

    type Map = serde_json::Map<String, Value>;

    #[test]
    fn remembers_exact_tokens_only_and_stays_bounded() {
        let cache = VerifiedTokens::default();
        let a = "eyJ4IjoxfQ.eyJleHAiOm51bGx9.c2ln";
        assert!(matches!(cache.lookup::<u32>(a), Lookup::Unknown));
        cache.insert(a, &7u32);
        assert!(matches!(cache.lookup::<u32>(a), Lookup::Claims(7)));
        assert!(matches!(cache.lookup::<String>(a), Lookup::Verified));
        assert!(matches!(
            cache.lookup::<u32>("eyJ4IjoxfQ.eyJleHAiOm51bGx9.c2lm"),
            Lookup::Unknown
        ));
        // A token whose payload has no readable `exp` is not kept.
        cache.insert("a.b.c", &1u32);
        assert!(matches!(cache.lookup::<u32>("a.b.c"), Lookup::Unknown));
        // Many more tokens than slots: the memory stays the same, old entries are overwritten.
        let token = |i: usize| format!("eyJ4IjoxfQ.eyJleHAiOm51bGx9.{i}");
        for i in 0..(4 * SLOTS) {
            cache.insert(&token(i), &i);
        }
        assert_eq!(cache.slots.len(), SLOTS);
        assert!(matches!(cache.lookup::<usize>(&token(4 * SLOTS - 1)), Lookup::Claims(n) if n == 4 * SLOTS - 1));
    }
}
