//! The signatures already verified with an asymmetric key, remembered by the SHA-256 of the
//! whole token (issue #24). An ES256 verification costs about 240 µs, against a few for the
//! rest of a `GET /user`; a client sends the same access token on every request for its
//! hour of life.
//!
//! Only the fact "these exact bytes carry a valid signature of a key of this ring" is kept:
//! it cannot go stale, because the ring never changes while the server runs and the bytes
//! hash to the same digest forever. Everything else is checked on every request as before:
//! the header's algorithm against the key, `exp` against the clock, and the user and session
//! in the database. HS256 tokens are not cached: their HMAC costs about as much as the hash.
//!
//! The cache is direct-mapped: a fixed number of slots, each holding one digest, chosen by
//! the digest's first bytes. A new digest overwrites the slot's old one, so the memory is
//! bounded (`SLOTS` × 32 bytes) and a flood of valid tokens only costs re-verifications.
//! Tokens that fail are never written.

use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::reasons::{JwtError, reason};

/// About 160 KiB at most, touched only as tokens arrive; more than the active tokens of a
/// large deployment's single server.
const SLOTS: usize = 4096;

pub struct VerifiedSignatures {
    slots: Box<[Mutex<Option<[u8; 32]>>]>,
}

/// The SHA-256 of a token, the key of the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    fn slot(&self) -> usize {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        (u64::from_le_bytes(first) % SLOTS as u64) as usize
    }
}

impl Default for VerifiedSignatures {
    fn default() -> Self {
        VerifiedSignatures {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl VerifiedSignatures {
    /// Whether a token with this digest was verified before.
    pub fn contains(&self, digest: &TokenDigest) -> bool {
        *self.lock(digest) == Some(digest.0)
    }

    /// Records a token whose signature (and claims) just verified.
    pub fn insert(&self, digest: &TokenDigest) {
        *self.lock(digest) = Some(digest.0);
    }

    fn lock(&self, digest: &TokenDigest) -> std::sync::MutexGuard<'_, Option<[u8; 32]>> {
        self.slots[digest.slot()].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The claims of a token whose signature and claims verified before: only `exp` can have
/// changed its verdict since (the verification left it absent or a whole number, and there
/// is no leeway and no `nbf` check, as in `keys::Verifier::new`).
pub fn claims_of_verified<T: DeserializeOwned>(token: &str) -> Result<T, JwtError> {
    #[derive(serde::Deserialize)]
    struct Expiry {
        #[serde(default)]
        exp: Option<u64>,
    }
    let malformed = || JwtError::Invalid("token is malformed".into());
    let payload = token.split('.').nth(1).ok_or_else(malformed)?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
    let expiry: Expiry = serde_json::from_slice(&json).map_err(|_| malformed())?;
    if expiry
        .exp
        .is_some_and(|exp| exp < jsonwebtoken::get_current_timestamp())
    {
        return Err(JwtError::Expired);
    }
    // Claims that do not fit `T` fail as they would have in `jsonwebtoken::decode`.
    serde_json::from_slice(&json).map_err(|err| JwtError::Invalid(reason(&err.into())))
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
    fn remembers_exact_tokens_only_and_stays_bounded() {
        let cache = VerifiedSignatures::default();
        let a = TokenDigest::of("a.b.c");
        assert!(!cache.contains(&a));
        cache.insert(&a);
        assert!(cache.contains(&a));
        assert!(!cache.contains(&TokenDigest::of("a.b.d")));
        // Many more tokens than slots: the memory stays the same, old entries are overwritten.
        for i in 0..(4 * SLOTS) {
            cache.insert(&TokenDigest::of(&format!("token-{i}")));
        }
        assert_eq!(cache.slots.len(), SLOTS);
        let last = TokenDigest::of(&format!("token-{}", 4 * SLOTS - 1));
        assert!(cache.contains(&last));
    }
}
