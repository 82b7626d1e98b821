//! Size and cost limits on passwords and on imported hashes, checked before any hashing, so
//! that no input can make one request keep a hashing thread busy for long.
//!
//! bcrypt reads only the first 72 bytes of a password: a stored bcrypt hash (imported from
//! GoTrue) accepts any password whose first 72 bytes are right, whatever follows. GoTrue
//! therefore refuses new passwords longer than 72 bytes, and so does Latchkey, although new
//! hashes are argon2id (which reads the whole password): a password accepted here keeps
//! working if the data goes back to GoTrue. A password that is only checked against a stored
//! hash (sign-in, `current_password`) may be longer, for users whose old system allowed it,
//! up to [`MAX_PRESENTED_PASSWORD_BYTES`]; GoTrue has no such limit.

use std::str::FromStr;

use argon2::Params;
use argon2::password_hash::phc::PasswordHash;

use crate::error::{Error, Result};

/// GoTrue's limit for a new password (bcrypt's 72 bytes; GoTrue says "characters").
pub const MAX_NEW_PASSWORD_BYTES: usize = 72;

/// The longest password checked against a stored hash. Far above any real password, low
/// enough that copying and pre-hashing it costs nothing.
pub const MAX_PRESENTED_PASSWORD_BYTES: usize = 1024;

/// The highest bcrypt cost verified. Each step doubles the work: cost 10 (GoTrue's) takes
/// about a tenth of a second, 14 more than a second, 31 (the format's maximum) days.
pub const MAX_BCRYPT_COST: u32 = 14;

/// The lowest cost the bcrypt crate computes.
const MIN_BCRYPT_COST: u32 = 4;

/// Upper bounds for parameters of imported argon2 hashes, so a hostile hash cannot make a
/// single verification allocate gigabytes.
pub(super) const MAX_IMPORTED_M_COST: u32 = 256 * 1024;
pub(super) const MAX_IMPORTED_T_COST: u32 = 16;

/// What a password is for, which sets its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordUse {
    /// Hashed and stored: sign-up, `PUT /user`, admin create and update, `generate_link`.
    New,
    /// Checked against a stored hash: sign-in, `current_password`.
    Presented,
}

/// Refuses a password longer than its use allows, with GoTrue's `400 validation_failed`.
/// Call it before any hashing.
pub fn check_length(password: &str, usage: PasswordUse) -> Result<()> {
    let max = match usage {
        PasswordUse::New => MAX_NEW_PASSWORD_BYTES,
        PasswordUse::Presented => MAX_PRESENTED_PASSWORD_BYTES,
    };
    if password.len() > max {
        return Err(Error::validation(format!(
            "Password cannot be longer than {max} characters"
        )));
    }
    Ok(())
}

/// The cost of a bcrypt hash (`$2a$NN$...`), when the bcrypt crate can parse the hash.
pub fn bcrypt_cost(hash: &str) -> Option<u32> {
    bcrypt::HashParts::from_str(hash).ok().map(|parts| parts.get_cost())
}

/// Whether argon2 parameters are within the bounds verification accepts.
pub(super) fn argon2_params_allowed(params: &Params) -> bool {
    params.m_cost() <= MAX_IMPORTED_M_COST && params.t_cost() <= MAX_IMPORTED_T_COST
}

/// Checks an imported `password_hash` (admin create and update): a bcrypt hash
/// (`$2a$`/`$2b$`/`$2y$`) with a cost of at most [`MAX_BCRYPT_COST`], or an argon2i/argon2id
/// PHC string within the bounds verification accepts. Anything else would never verify, or
/// would cost too much to verify, so it is refused with `400 validation_failed` rather than
/// stored.
pub fn check_imported_hash(hash: &str) -> Result<()> {
    if ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| hash.starts_with(prefix)) {
        let cost = bcrypt_cost(hash).ok_or_else(invalid_format)?;
        if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost) {
            return Err(Error::validation(format!(
                "Invalid password hash: the bcrypt cost must be between {MIN_BCRYPT_COST} and {MAX_BCRYPT_COST}, not {cost}"
            )));
        }
        return Ok(());
    }
    if hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$") {
        let params = PasswordHash::new(hash)
            .ok()
            .filter(|parsed| parsed.salt.is_some() && parsed.hash.is_some())
            .and_then(|parsed| Params::try_from(&parsed).ok())
            .ok_or_else(invalid_format)?;
        if !argon2_params_allowed(&params) {
            return Err(Error::validation(format!(
                "Invalid password hash: argon2 parameters above m={MAX_IMPORTED_M_COST},t={MAX_IMPORTED_T_COST}"
            )));
        }
        return Ok(());
    }
    Err(invalid_format())
}

fn invalid_format() -> Error {
    Error::validation("Invalid password hash format: bcrypt or argon2 expected")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bcrypt_with_cost(cost: u32) -> String {
        // The cost is two digits at bytes 4..6; the rest of a real (cheap) hash stays valid.
        let real = bcrypt::hash_with_result("pw", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        format!("{}{cost:02}{}", &real[..4], &real[6..])
    }

    #[test]
    fn lengths_are_limited_by_use() {
        let at = |n: usize| "a".repeat(n);
        assert!(check_length(&at(72), PasswordUse::New).is_ok());
        assert!(check_length(&at(73), PasswordUse::New).is_err());
        assert!(check_length(&at(1024), PasswordUse::Presented).is_ok());
        assert!(check_length(&at(1025), PasswordUse::Presented).is_err());
        // Bytes, not characters: 37 two-byte characters are 74 bytes.
        assert!(check_length(&"é".repeat(37), PasswordUse::New).is_err());
        let refused = check_length(&at(1025), PasswordUse::Presented).unwrap_err();
        assert_eq!(refused.kind(), crate::error::Kind::BadRequest);
        assert_eq!(refused.code().as_str(), "validation_failed");
    }

    #[test]
    fn bcrypt_costs_are_read_from_the_hash() {
        assert_eq!(bcrypt_cost(&bcrypt_with_cost(10)), Some(10));
        assert_eq!(bcrypt_cost(&bcrypt_with_cost(31)), Some(31));
        assert_eq!(bcrypt_cost("$2a$10$short"), None);
        assert_eq!(bcrypt_cost(&bcrypt_with_cost(10).replace("$10$", "$1x$")), None);
        assert_eq!(bcrypt_cost("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA"), None);
    }

    #[test]
    fn imported_hashes_are_checked_before_they_are_stored() {
        let argon2 = |m: u32, t: u32| {
            argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                Params::new(m, t, 1, None).unwrap(),
            )
        };
        use argon2::PasswordHasher as _;
        let cheap_argon2 = argon2(64, 1).hash_password(b"pw").unwrap().to_string();
        let accepted = [
            bcrypt_with_cost(4),
            bcrypt_with_cost(10),
            bcrypt_with_cost(14),
            cheap_argon2.clone(),
        ];
        for hash in &accepted {
            assert!(check_imported_hash(hash).is_ok(), "{hash}");
        }
        let y = bcrypt_with_cost(10).replacen("$2a$", "$2y$", 1);
        assert!(check_imported_hash(&y).is_ok());

        let too_expensive = cheap_argon2.replace("m=64,t=1", &format!("m=64,t={}", MAX_IMPORTED_T_COST + 1));
        let refused = [
            (bcrypt_with_cost(15), "the bcrypt cost must be between 4 and 14, not 15"),
            (bcrypt_with_cost(31), "not 31"),
            (bcrypt_with_cost(3), "not 3"),
            (too_expensive, "argon2 parameters above"),
            ("$2a$10$short".to_owned(), "bcrypt or argon2 expected"),
            (
                bcrypt_with_cost(10).replacen("$2a$", "$2x$", 1),
                "bcrypt or argon2 expected",
            ),
            ("$argon2id$broken".to_owned(), "bcrypt or argon2 expected"),
            (
                "$argon2d$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
                "bcrypt or argon2 expected",
            ),
            ("plaintext".to_owned(), "bcrypt or argon2 expected"),
        ];
        for (hash, message) in refused {
            let error = check_imported_hash(&hash).unwrap_err();
            assert_eq!(error.kind(), crate::error::Kind::BadRequest, "{hash}");
            assert_eq!(error.code().as_str(), "validation_failed");
            assert!(error.message().contains(message), "{hash}: {}", error.message());
        }
    }
}
