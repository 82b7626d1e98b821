//! Refresh tokens: derived, stored hashed, rotated on every use.
//!
//! Token number `n` of a session is `base64url(V ‖ session_id ‖ n ‖ HMAC-SHA256(K, V ‖ session_id ‖ n)[..160 bits])`,
//! with `V` the format's version byte, `n` as 8 big-endian bytes, and `K` derived from the
//! server's JWT secret. The database stores only `hex(sha256(token))`, so a copy of the
//! database alone yields no usable token, but the server can re-derive the *current* token of a
//! session. That is what GoTrue's reuse rule needs ("a client that lost the response to a
//! refresh and presents the previous token gets the current one again") without ever storing a
//! token in plaintext — and it is why a burst of concurrent refreshes of one token all receive
//! the same next token instead of forking the session into several live chains.
//!
//! The session and the number are readable in the token (as in GoTrue's v2 refresh tokens), so
//! the server can derive the next token before reading anything, and rotate in one statement
//! ([`position`]). They reveal nothing the access token does not: its `session_id` claim names
//! the session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The first byte of a token in this format. Not 0, GoTrue's v2 version byte, so that an
/// imported GoTrue token is never read as one of ours.
const VERSION: u8 = 1;
/// Version, session id and number: what the MAC covers.
const HEADER_BYTES: usize = 1 + 16 + 8;
/// Bytes of HMAC output kept in a token (160 bits).
const MAC_BYTES: usize = 20;
const TOKEN_BYTES: usize = HEADER_BYTES + MAC_BYTES;

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
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[0] = VERSION;
        bytes[1..17].copy_from_slice(session_id.as_bytes());
        bytes[17..HEADER_BYTES].copy_from_slice(&counter.to_be_bytes());
        let mut mac = mac(&self.0);
        mac.update(&bytes[..HEADER_BYTES]);
        bytes[HEADER_BYTES..].copy_from_slice(&mac.finalize().into_bytes()[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// Where a token says it stands in its session's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPosition {
    pub session_id: Uuid,
    pub counter: i64,
}

/// The session and number written in a token of this format; `None` for any other string
/// (GoTrue's tokens, imported, and Latchkey's earlier ones).
///
/// The MAC is not checked, because the position is only a claim: a refresh uses it only when
/// the stored row of the token's hash has this very session and number. A row is found only
/// for a token the server issued, whose bytes, position included, the hash covers. Checking
/// it here would also turn away the live tokens of a server whose JWT secret changed, which
/// the stored hashes still accept.
pub fn position(token: &str) -> Option<ChainPosition> {
    let mut bytes = [0u8; TOKEN_BYTES];
    if token.len() != TOKEN_BYTES / 3 * 4 {
        return None;
    }
    match URL_SAFE_NO_PAD.decode_slice(token, &mut bytes) {
        Ok(TOKEN_BYTES) if bytes[0] == VERSION => {}
        _ => return None,
    }
    let session_id = Uuid::from_slice(&bytes[1..17]).ok()?;
    let counter = i64::from_be_bytes(bytes[17..HEADER_BYTES].try_into().ok()?);
    // Below the largest number, so that the next one exists: the server never gets near it,
    // but a made-up token could name it.
    (0..i64::MAX)
        .contains(&counter)
        .then_some(ChainPosition { session_id, counter })
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// What is stored for a token.
pub fn hash(token: &str) -> String {
    // Into a buffer: `hex::encode` collects its digits one `char` at a time.
    let mut digits = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut digits).expect("32 bytes take 64 digits");
    String::from_utf8_lossy(&digits).into_owned()
}

/// Cheap format check before touching the database (GoTrue: "Refresh token is not valid").
pub fn looks_valid(token: &str) -> bool {
    (12..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
        assert_eq!(t0.len(), 60, "45 bytes in base64url");
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
    fn a_token_names_its_session_and_number() {
        let session = Uuid::new_v4();
        for counter in [0, 1, 255, 1 << 40, i64::MAX - 1] {
            let token = key().token(session, counter);
            assert_eq!(
                position(&token),
                Some(ChainPosition {
                    session_id: session,
                    counter
                })
            );
        }
    }

    #[test]
    fn other_strings_name_no_position() {
        let token = key().token(Uuid::new_v4(), 7);
        // Earlier Latchkey tokens (base32, 32 characters), GoTrue's v1 (12 characters).
        assert_eq!(position("mzxw6ytboimzxw6ytboimzxw6ytboimz"), None);
        assert_eq!(position("abcdefghijkl"), None);
        // Another version byte: GoTrue's v2 tokens start with 0.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[0] = 0;
        assert_eq!(position(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        // A negative number, the largest (which has no next), one character more or less, a
        // character outside base64url.
        bytes[0] = VERSION;
        bytes[17] = 0x80;
        assert_eq!(position(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        assert_eq!(position(&key().token(Uuid::new_v4(), i64::MAX)), None);
        assert_eq!(position(&token[1..]), None);
        assert_eq!(position(&format!("{token}A")), None);
        assert_eq!(position(&format!("{}=", &token[1..])), None);
        assert_eq!(position(&token.replacen(&token[..1], "+", 1)), None);
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
