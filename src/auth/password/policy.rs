//! GoTrue's password policy (`GOTRUE_PASSWORD_MIN_LENGTH`,
//! `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`), and the one check every new password passes.

use super::limits::{PasswordUse, check_length};
use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// Why a password fails the policy, in GoTrue's words.
#[derive(Debug, Clone, PartialEq)]
pub struct WeakPassword {
    pub message: String,
    pub reasons: Vec<&'static str>,
}

/// The check of every password about to be hashed and stored (sign-up, `PUT /user`, admin
/// create and update, a `generate_link` sign-up), GoTrue's `checkPasswordStrength`: the
/// length limit first (`400 validation_failed`), then the policy (`422 weak_password`).
pub fn check_new(config: &PasswordConfig, password: &str) -> Result<()> {
    check_length(password, PasswordUse::New)?;
    check_policy(config, password).map_err(|weak| Error::weak_password(weak.message, weak.reasons))
}

/// The policy alone: minimum length and required character sets. Password sign-ins report
/// its verdict without refusing (GoTrue's `weak_password` in the session).
pub fn check_policy(config: &PasswordConfig, password: &str) -> Result<(), WeakPassword> {
    let mut reasons = Vec::new();
    let mut messages = Vec::new();
    if password.chars().count() < config.min_length {
        reasons.push("length");
        messages.push(format!("Password should be at least {} characters.", config.min_length));
    }
    let missing = config
        .required_characters
        .iter()
        .any(|set| !password.chars().any(|c| set.contains(c)));
    if missing {
        reasons.push("characters");
        messages.push(format!(
            "Password should contain at least one character of each: {}.",
            config.required_characters.join(", ")
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(WeakPassword {
            message: messages.join(" "),
            reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    /// The default policy: at least 6 characters, no required sets.
    fn config() -> PasswordConfig {
        crate::config::Config::from_vars(Default::default()).unwrap().password
    }

    #[test]
    fn policy_reports_gotrue_reasons() {
        let mut config = config();
        assert!(check_policy(&config, "123456").is_ok());
        let weak = check_policy(&config, "12345").unwrap_err();
        assert_eq!(weak.reasons, ["length"]);
        assert_eq!(weak.message, "Password should be at least 6 characters.");
        config.required_characters = vec!["abc".into(), "0123456789".into()];
        let weak = check_policy(&config, "xyz").unwrap_err();
        assert_eq!(weak.reasons, ["length", "characters"]);
        assert!(check_policy(&config, "a1xxxx").is_ok());
    }

    #[test]
    fn new_passwords_are_bounded_then_held_to_the_policy() {
        let config = config();
        assert!(check_new(&config, "123456").is_ok());
        let weak = check_new(&config, "12345").unwrap_err();
        assert_eq!(
            (weak.kind(), weak.code().as_str()),
            (Kind::Unprocessable, "weak_password")
        );
        // Too long is a 400 before any policy question.
        let long = check_new(&config, &"a".repeat(73)).unwrap_err();
        assert_eq!(
            (long.kind(), long.code().as_str()),
            (Kind::BadRequest, "validation_failed")
        );
    }
}
