//! Email one-time tokens: the N-digit code, the hash an email link carries, expiry and the
//! per-user sending frequency. GoTrue-compatible: the link token is
//! `hex(sha224(email || otp))`, prefixed with `pkce_` for PKCE flows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha224};
use subtle::ConstantTimeEq;

/// Prefix of link tokens that belong to a PKCE flow.
pub const PKCE_PREFIX: &str = "pkce_";

/// A random code of `length` decimal digits (leading zeros kept), from the OS-seeded CSPRNG.
pub fn generate_otp(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// `hex(sha224(email || otp))`: what the link carries and what is stored.
pub fn token_hash(email: &str, otp: &str) -> String {
    let mut hasher = Sha224::new();
    hasher.update(email.as_bytes());
    hasher.update(otp.as_bytes());
    hex::encode(hasher.finalize())
}

/// The stored/link form of a token: `pkce_` + hash for PKCE flows.
pub fn with_flow_prefix(hash: &str, pkce: bool) -> String {
    if pkce {
        format!("{PKCE_PREFIX}{hash}")
    } else {
        hash.to_owned()
    }
}

/// Whether a typed-in code matches a stored token (with or without the PKCE prefix), in
/// constant time.
pub fn otp_matches(stored: &str, email: &str, otp: &str) -> bool {
    let expected = token_hash(email, otp);
    let stored = stored.strip_prefix(PKCE_PREFIX).unwrap_or(stored);
    stored.len() == expected.len() && bool::from(stored.as_bytes().ct_eq(expected.as_bytes()))
}

/// Whether a token sent at `sent_at` is past its lifetime. A token with no send time has
/// never been valid.
pub fn is_expired(sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>, lifetime: Duration) -> bool {
    match sent_at {
        None => true,
        Some(sent) => now > sent + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX),
    }
}

/// GoTrue's `GOTRUE_SMTP_MAX_FREQUENCY` rule: the same kind of mail goes to a user at most
/// once per `frequency`. Returns the whole seconds to wait (rounded up) when too early.
pub fn wait_before_resend(sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>, frequency: Duration) -> Option<i64> {
    let sent = sent_at?;
    let next = sent + chrono::Duration::from_std(frequency).unwrap_or(chrono::Duration::MAX);
    (now < next).then(|| ((next - now).num_milliseconds() + 999) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otps_have_the_configured_number_of_digits() {
        for length in 6..=10 {
            let otp = generate_otp(length);
            assert_eq!(otp.len(), length);
            assert!(otp.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_ne!(generate_otp(10), generate_otp(10));
    }

    #[test]
    fn token_hash_is_gotrue_compatible() {
        // crypto.GenerateTokenHash("someone@example.com", "123456") in GoTrue: sha224 hex.
        let hash = token_hash("someone@example.com", "123456");
        assert_eq!(hash.len(), 56);
        let mut direct = Sha224::new();
        direct.update(b"someone@example.com123456");
        assert_eq!(hash, hex::encode(direct.finalize()));
        assert_eq!(
            token_hash("", ""),
            "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"
        );
    }

    #[test]
    fn otps_match_plain_and_pkce_tokens_only() {
        let hash = token_hash("a@b.co", "000123");
        assert!(otp_matches(&hash, "a@b.co", "000123"));
        assert!(otp_matches(&with_flow_prefix(&hash, true), "a@b.co", "000123"));
        assert!(!otp_matches(&hash, "a@b.co", "000124"));
        assert!(!otp_matches(&hash, "x@b.co", "000123"));
        assert!(!otp_matches("", "a@b.co", "000123"));
    }

    #[test]
    fn expiry_counts_from_the_send_time() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        assert!(!is_expired(Some(now - chrono::Duration::minutes(59)), now, hour));
        assert!(is_expired(Some(now - chrono::Duration::minutes(61)), now, hour));
        assert!(is_expired(None, now, hour));
    }

    #[test]
    fn resend_waits_are_rounded_up() {
        let now = Utc::now();
        let minute = Duration::from_secs(60);
        assert_eq!(wait_before_resend(None, now, minute), None);
        assert_eq!(
            wait_before_resend(Some(now - chrono::Duration::seconds(61)), now, minute),
            None
        );
        assert_eq!(
            wait_before_resend(Some(now - chrono::Duration::milliseconds(500)), now, minute),
            Some(60)
        );
        assert_eq!(
            wait_before_resend(Some(now - chrono::Duration::seconds(50)), now, minute),
            Some(10)
        );
    }
}
