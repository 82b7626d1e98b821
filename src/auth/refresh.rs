//! Refresh tokens: opaque, derived, stored hashed, rotated on every use.
//!
//! Token number `n` of a session is `base32(HMAC-SHA256(K, session_id ‖ n))[..160 bits]`,
//! where `K` is derived from the server's JWT secret. The database stores only
//! `hex(sha256(token))`, so a copy of the database alone yields no usable token, but the
//! server can re-derive the *current* token of a session. That is what GoTrue's reuse rule
//! needs ("a client that lost the response to a refresh and presents the previous token gets
//! the current one again") without ever storing a token in plaintext — and it is why a burst
//! of concurrent refreshes of one token all receive the same next token instead of forking the
//! session into several live chains.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC output kept in a token (160 bits).
const TOKEN_BYTES: usize = 20;

#[derive(Clone)]
pub struct RefreshKey([u8; 32]);

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(..)")
    }
}

impl RefreshKey {
    pub fn derive(jwt_secret: &SecretString) -> RefreshKey {
        let mut mac = mac(jwt_secret.expose_secret().as_bytes());
        mac.update(b"latchkey refresh-token key v1");
        RefreshKey(mac.finalize().into_bytes().into())
    }

    /// The refresh token number `counter` of `session_id`.
    pub fn token(&self, session_id: Uuid, counter: i64) -> String {
        let mut mac = mac(&self.0);
        mac.update(session_id.as_bytes());
        mac.update(&counter.to_be_bytes());
        base32_lower(&mac.finalize().into_bytes()[..TOKEN_BYTES])
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// What is stored for a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Cheap format check before touching the database (GoTrue: "Refresh token is not valid").
pub fn looks_valid(token: &str) -> bool {
    (12..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The live token: issue the next one.
    Rotate,
    /// An already-rotated token that may still be used: answer with the session's current
    /// token (no new token, so the session keeps exactly one live chain).
    ReturnCurrent,
    /// Reuse outside the allowance: refuse, and end the session when rotation is enforced.
    Reject { revoke_session: bool },
}

pub struct Presented {
    pub counter: i64,
    pub revoked: bool,
    /// When the token was revoked (its `updated_at`).
    pub revoked_at: DateTime<Utc>,
}

/// GoTrue's rule (`tokens/service.go:RefreshTokenGrant`): the immediate parent of the live
/// token always gets the live token back; an older token gets it only within the reuse
/// interval after it was revoked; anything else is reuse.
pub fn decide(
    presented: &Presented,
    session_counter: i64,
    now: DateTime<Utc>,
    reuse_interval: std::time::Duration,
    rotation_enabled: bool,
) -> Decision {
    if !presented.revoked && presented.counter == session_counter {
        return Decision::Rotate;
    }
    if presented.counter == session_counter - 1 {
        return Decision::ReturnCurrent;
    }
    let allowance = chrono::Duration::from_std(reuse_interval).unwrap_or(chrono::Duration::MAX);
    if presented.counter < session_counter && now <= presented.revoked_at + allowance {
        return Decision::ReturnCurrent;
    }
    Decision::Reject {
        revoke_session: rotation_enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key() -> RefreshKey {
        RefreshKey::derive(&SecretString::from("a-secret-a-secret-a-secret-a-secret"))
    }

    #[test]
    fn tokens_are_deterministic_distinct_and_long() {
        let key = key();
        let session = Uuid::new_v4();
        let t0 = key.token(session, 0);
        assert_eq!(t0, key.token(session, 0));
        assert_ne!(t0, key.token(session, 1));
        assert_ne!(t0, key.token(Uuid::new_v4(), 0));
        assert_eq!(t0.len(), 32, "160 bits in base32");
        assert!(looks_valid(&t0));
        let other = RefreshKey::derive(&SecretString::from("another-secret-another-secret-xx"));
        assert_ne!(t0, other.token(session, 0), "the key depends on the server secret");
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn format_check_rejects_garbage() {
        assert!(!looks_valid(""));
        assert!(!looks_valid("short"));
        assert!(!looks_valid("has spaces in it!!"));
        assert!(!looks_valid(&"a".repeat(500)));
    }

    fn presented(counter: i64, revoked: bool, secs_ago: i64) -> Presented {
        Presented {
            counter,
            revoked,
            revoked_at: Utc::now() - chrono::Duration::seconds(secs_ago),
        }
    }

    #[test]
    fn live_token_rotates() {
        let d = decide(&presented(3, false, 0), 3, Utc::now(), Duration::from_secs(10), true);
        assert_eq!(d, Decision::Rotate);
    }

    #[test]
    fn parent_of_live_token_returns_current_at_any_time() {
        let d = decide(&presented(2, true, 3600), 3, Utc::now(), Duration::ZERO, true);
        assert_eq!(d, Decision::ReturnCurrent);
    }

    #[test]
    fn older_token_within_interval_returns_current() {
        let d = decide(&presented(1, true, 5), 3, Utc::now(), Duration::from_secs(10), true);
        assert_eq!(d, Decision::ReturnCurrent);
    }

    #[test]
    fn older_token_after_interval_is_reuse() {
        let d = decide(&presented(1, true, 11), 3, Utc::now(), Duration::from_secs(10), true);
        assert_eq!(d, Decision::Reject { revoke_session: true });
        let d = decide(&presented(1, true, 11), 3, Utc::now(), Duration::from_secs(10), false);
        assert_eq!(d, Decision::Reject { revoke_session: false });
    }
}
