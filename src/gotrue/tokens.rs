//! GoTrue's refresh tokens, turned into rows of Latchkey's `_auth_refresh_tokens`.
//!
//! Latchkey stores `hex(sha256(token))` and a per-session counter (see `auth::refresh`): the
//! token whose counter equals its session's counter is the live one. GoTrue has two formats:
//!
//! - v1: 12 random characters kept in plain text in `auth.refresh_tokens`, one row per token,
//!   chained through `parent`. Each row becomes a Latchkey row with the hash of its text.
//! - v2 (`GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION=2`): no row per token; the session
//!   holds an HMAC key (`refresh_token_hmac_key`) and the number of the last token issued
//!   (`refresh_token_counter`), and token number `n` is
//!   `base64url(0x00 ‖ session id ‖ uvarint(n) ‖ HMAC-SHA256(key, those bytes)[..16] ‖ sha256(all so far)[..4])`.
//!   The import recomputes the session's last token and the one before it (the one a client
//!   that lost a refresh response still holds; GoTrue hands it the current token again) and
//!   stores their hashes. A key encrypted with GoTrue's `GOTRUE_SECURITY_DB_ENCRYPTION_*`
//!   cannot be read: that session's clients must sign in again.
//!
//! Either way the presented plaintext hashes to a stored row, so the client's refresh works;
//! its answer is a Latchkey token (`auth::refresh::RefreshKey`), and the chain goes on in
//! Latchkey's format from there.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::refresh;

/// What the import reads of a GoTrue session (the rest goes through as it is).
#[derive(Debug, Deserialize)]
pub struct GoTrueSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub refreshed_at: Option<String>,
    pub updated_at: Option<String>,
    pub created_at: Option<String>,
    pub refresh_token_hmac_key: Option<String>,
    pub refresh_token_counter: Option<i64>,
    /// The session's v1 tokens, oldest first.
    #[serde(default)]
    pub tokens: Vec<V1Token>,
}

#[derive(Debug, Deserialize)]
pub struct V1Token {
    pub token: Option<String>,
    #[serde(default)]
    pub revoked: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// One row for `_auth_refresh_tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainToken {
    pub hash: String,
    pub counter: i64,
    pub parent: Option<String>,
    pub revoked: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// What became of a session's v2 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2 {
    /// The session never had one.
    None,
    /// Recomputed from the session's key.
    Carried,
    /// The key is encrypted or malformed: the v2 tokens cannot be recomputed.
    Unreadable,
}

/// The session's tokens in Latchkey's order, numbered from 0; the last one is the live one
/// and its number is the session's counter. Revoked v1 tokens come first, then live ones
/// (GoTrue revokes the parent in the same transaction that creates the child, so a session
/// has at most one), then the v2 tokens, which GoTrue issues only after the v1 ones.
pub fn chain(session: &GoTrueSession) -> (Vec<ChainToken>, V2) {
    let mut v1: Vec<&V1Token> = session
        .tokens
        .iter()
        .filter(|t| t.token.as_deref().is_some_and(|t| !t.is_empty()))
        .collect();
    // A stable sort keeps GoTrue's order (by id) within each group.
    v1.sort_by_key(|t| !t.revoked);
    let mut plain: Vec<(String, bool, Option<String>, Option<String>)> = v1
        .into_iter()
        .map(|t| {
            let text = t.token.clone().unwrap_or_default();
            (text, t.revoked, t.created_at.clone(), t.updated_at.clone())
        })
        .collect();
    let v2 = match (&session.refresh_token_hmac_key, session.refresh_token_counter) {
        (Some(key), Some(counter)) if counter >= 0 => match decode_key(key) {
            Some(key) => {
                // The previous token was superseded when the session was last refreshed.
                let superseded = session.refreshed_at.clone().or_else(|| session.updated_at.clone());
                if counter > 0 {
                    let previous = v2_token(&key, session.id, counter - 1);
                    plain.push((previous, true, session.created_at.clone(), superseded.clone()));
                }
                let current = v2_token(&key, session.id, counter);
                plain.push((current, false, superseded.clone(), superseded));
                V2::Carried
            }
            None => V2::Unreadable,
        },
        _ => V2::None,
    };
    let mut parent = None;
    let tokens = plain
        .into_iter()
        .enumerate()
        .map(|(counter, (text, revoked, created_at, updated_at))| {
            let hash = refresh::hash(&text);
            ChainToken {
                hash: hash.clone(),
                counter: counter as i64,
                parent: parent.replace(hash),
                revoked,
                created_at,
                updated_at,
            }
        })
        .collect();
    (tokens, v2)
}

/// The rows to stage for `tokens` of `session` (see `db::gotrue::stage`).
pub fn staged_rows(session: &GoTrueSession, tokens: &[ChainToken]) -> Vec<Value> {
    tokens
        .iter()
        .map(|t| {
            json!({
                "token_hash": t.hash,
                "session_id": session.id,
                "user_id": session.user_id,
                "counter": t.counter,
                "parent": t.parent,
                "revoked": t.revoked,
                "created_at": t.created_at,
                "updated_at": t.updated_at,
            })
        })
        .collect()
}

/// GoTrue keeps the key as unpadded base64url; an encrypted key is a JSON object instead.
fn decode_key(stored: &str) -> Option<Vec<u8>> {
    if stored.starts_with('{') {
        return None;
    }
    URL_SAFE_NO_PAD.decode(stored).ok().filter(|key| !key.is_empty())
}

/// GoTrue's v2 refresh token number `counter` of `session_id` (our code, from the format
/// described in GoTrue's `internal/crypto/refresh_tokens.go`).
pub fn v2_token(key: &[u8], session_id: Uuid, counter: i64) -> String {
    let mut bytes = Vec::with_capacity(48);
    bytes.push(0);
    bytes.extend_from_slice(session_id.as_bytes());
    let mut n = u64::try_from(counter).unwrap_or(0);
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            bytes.push(low);
            break;
        }
        bytes.push(low | 0x80);
    }
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&bytes);
    bytes.extend_from_slice(&mac.finalize().into_bytes()[..16]);
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum[..4]);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = "6f1c0a52-3b7e-4d2a-9c51-2f8e7d6b5a40";
    /// bytes 0..32, as GoTrue stores a key (unpadded base64url).
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn session(tokens: Vec<V1Token>, key: Option<&str>, counter: Option<i64>) -> GoTrueSession {
        GoTrueSession {
            id: SESSION.parse().unwrap(),
            user_id: Uuid::nil(),
            refreshed_at: Some("2026-01-02T03:04:05".into()),
            updated_at: None,
            created_at: None,
            refresh_token_hmac_key: key.map(str::to_owned),
            refresh_token_counter: counter,
            tokens,
        }
    }

    fn v1(token: &str, revoked: bool) -> V1Token {
        V1Token {
            token: Some(token.into()),
            revoked,
            created_at: None,
            updated_at: None,
        }
    }

    /// Vectors computed with Python's standard library (hmac, hashlib, base64), an
    /// implementation of the format independent of this one.
    #[test]
    fn v2_tokens_match_an_independent_implementation() {
        let key = decode_key(KEY).unwrap();
        let id: Uuid = SESSION.parse().unwrap();
        let expected = [
            (0, "AG8cClI7fk0qnFEvjn1rWkAAdNITEWIEh3b689Bmb-ruzt9YcDY"),
            (3, "AG8cClI7fk0qnFEvjn1rWkADfyZ0VAcVcOqR5d4VfBBEfS7RSHM"),
            (300, "AG8cClI7fk0qnFEvjn1rWkCsAnjRtHgVK3scSQEoJ342LwccPm4k"),
        ];
        for (counter, token) in expected {
            assert_eq!(v2_token(&key, id, counter), token, "counter {counter}");
            assert!(refresh::looks_valid(token), "Latchkey's format check lets it through");
        }
    }

    #[test]
    fn v1_chain_keeps_the_live_token_last() {
        let s = session(
            vec![
                v1("aaaaaaaaaaaa", true),
                v1("bbbbbbbbbbbb", false),
                v1("cccccccccccc", true),
            ],
            None,
            None,
        );
        let (tokens, v2) = chain(&s);
        assert_eq!(v2, V2::None);
        let summary: Vec<(String, i64, bool)> = tokens.iter().map(|t| (t.hash.clone(), t.counter, t.revoked)).collect();
        assert_eq!(
            summary,
            vec![
                (refresh::hash("aaaaaaaaaaaa"), 0, true),
                (refresh::hash("cccccccccccc"), 1, true),
                (refresh::hash("bbbbbbbbbbbb"), 2, false),
            ]
        );
        assert_eq!(tokens[0].parent, None);
        assert_eq!(tokens[2].parent.as_deref(), Some(tokens[1].hash.as_str()));
        // Known SHA-256 (Python hashlib) of a GoTrue-style token: what a client presents
        // must hash to what is stored.
        let (tokens, _) = chain(&session(vec![v1("q7mzk2xv4npa", false)], None, None));
        assert_eq!(
            tokens[0].hash,
            "e23b11e9fc800a0148e4e0cca71d169d8befca3d9845e99738f523158ceff6d5"
        );
    }

    #[test]
    fn v2_session_carries_its_current_and_previous_token_after_v1_ones() {
        let s = session(vec![v1("aaaaaaaaaaaa", true)], Some(KEY), Some(3));
        let (tokens, v2) = chain(&s);
        assert_eq!(v2, V2::Carried);
        let key = decode_key(KEY).unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[1].hash, refresh::hash(&v2_token(&key, s.id, 2)));
        assert!(tokens[1].revoked);
        assert_eq!(tokens[2].hash, refresh::hash(&v2_token(&key, s.id, 3)));
        assert!(!tokens[2].revoked);
        assert_eq!(tokens[2].counter, 2);
        // The first v2 token has no predecessor.
        let (tokens, _) = chain(&session(vec![], Some(KEY), Some(0)));
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn unreadable_keys_carry_no_v2_token() {
        let encrypted = r#"{"key_id":"k","alg":"aes-gcm-hkdf","data":"AAAA","nonce":"AAAAAAAAAAAAAAAA"}"#;
        for key in [encrypted, "not base64 !!", ""] {
            let (tokens, v2) = chain(&session(vec![v1("aaaaaaaaaaaa", false)], Some(key), Some(2)));
            assert_eq!(v2, V2::Unreadable, "{key}");
            assert_eq!(tokens.len(), 1, "the v1 token still counts");
        }
        let (_, v2) = chain(&session(vec![], Some(KEY), None));
        assert_eq!(v2, V2::None, "a key without a counter was never used");
    }

    #[test]
    fn empty_v1_tokens_are_skipped() {
        let s = session(
            vec![
                v1("", false),
                V1Token {
                    token: None,
                    revoked: false,
                    created_at: None,
                    updated_at: None,
                },
            ],
            None,
            None,
        );
        assert!(chain(&s).0.is_empty());
    }
}
