//! The code itself: N random digits, and GoTrue's hash of it, `hex(sha224(identifier || code))`,
//! which is all that is stored and what a link carries (prefixed with `pkce_` for PKCE flows).

use rand::Rng;
use sha2::{Digest, Sha224};
use subtle::ConstantTimeEq;

use super::Identifier;

/// Prefix of stored hashes (and link tokens) that belong to a PKCE flow.
pub const PKCE_PREFIX: &str = "pkce_";

/// A random code of `length` decimal digits (leading zeros kept), from the OS-seeded CSPRNG.
pub fn generate(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// GoTrue's `crypto.GenerateTokenHash`: `hex(sha224(identifier || code))`, over the address or
/// the phone's digits exactly as stored.
pub fn token_hash(to: &Identifier, code: &str) -> String {
    let mut hasher = Sha224::new();
    hasher.update(to.as_str().as_bytes());
    hasher.update(code.as_bytes());
    hex::encode(hasher.finalize())
}

/// The stored (and link) form of a hash: `pkce_` + hash for PKCE flows.
pub fn with_flow_prefix(hash: &str, pkce: bool) -> String {
    if pkce {
        format!("{PKCE_PREFIX}{hash}")
    } else {
        hash.to_owned()
    }
}

/// Whether a typed-in code for `to` matches a stored hash (with or without the PKCE prefix),
/// in constant time.
pub fn matches(stored: &str, to: &Identifier, code: &str) -> bool {
    let expected = token_hash(to, code);
    let stored = stored.strip_prefix(PKCE_PREFIX).unwrap_or(stored);
    stored.len() == expected.len() && bool::from(stored.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(address: &str) -> Identifier {
        Identifier::Email(address.to_owned())
    }

    #[test]
    fn codes_have_the_configured_number_of_digits() {
        for length in 6..=10 {
            let code = generate(length);
            assert_eq!(code.len(), length);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_ne!(generate(10), generate(10));
    }

    #[test]
    fn hashes_are_gotrues_for_email_and_phone() {
        // crypto.GenerateTokenHash(identifier, "123456") in GoTrue; the expected values were
        // computed apart from this code (Python's hashlib.sha224 over the concatenation).
        assert_eq!(
            token_hash(&email("someone@example.com"), "123456"),
            "1507abaa2b62935ba214464943d343562becb81fa1a7560a6566a44d"
        );
        // A phone is hashed as GoTrue stores it: E.164 digits without the `+`.
        assert_eq!(
            token_hash(&Identifier::Phone("15551234567".into()), "123456"),
            "2c808f037c26239c5147d936c705c10a604a804181b145320b463f0c"
        );
        let mut direct = Sha224::new();
        direct.update(b"15551234567654321");
        assert_eq!(
            token_hash(&Identifier::Phone("15551234567".into()), "654321"),
            hex::encode(direct.finalize())
        );
        assert_eq!(
            token_hash(&email(""), ""),
            "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"
        );
    }

    #[test]
    fn codes_match_plain_and_pkce_hashes_of_their_identifier_only() {
        let hash = token_hash(&email("a@b.co"), "000123");
        assert!(matches(&hash, &email("a@b.co"), "000123"));
        assert!(matches(&with_flow_prefix(&hash, true), &email("a@b.co"), "000123"));
        assert!(!matches(&hash, &email("a@b.co"), "000124"));
        assert!(!matches(&hash, &email("x@b.co"), "000123"));
        assert!(!matches("", &email("a@b.co"), "000123"));
        let phone = Identifier::Phone("4915112345678".into());
        let phone_hash = token_hash(&phone, "424242");
        assert!(matches(&phone_hash, &phone, "424242"));
        assert!(!matches(
            &phone_hash,
            &Identifier::Phone("4915112345679".into()),
            "424242"
        ));
    }
}
