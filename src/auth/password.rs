//! Password hashing and the password policy.
//!
//! New hashes are argon2id with the configured (OWASP by default) parameters. Stored bcrypt
//! (`$2a$`/`$2b$`/`$2y$`, GoTrue's format) and argon2 PHC hashes verify too, and are reported
//! as needing a rehash so the caller can upgrade them after a successful sign-in.
//! Hashing runs on the blocking pool, never on the async executor, and a semaphore bounds how
//! many hashes run at once: each argon2 hash holds its memory cost (19 MiB by default), so
//! a flood of sign-ins queues instead of exhausting memory or starving other requests.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordConfig;

/// GoTrue's limit (bcrypt's), kept so clients see the same validation.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Upper bounds for parameters of imported argon2 hashes, so a hostile hash cannot make a
/// single verification allocate gigabytes.
const MAX_IMPORTED_M_COST: u32 = 256 * 1024;
const MAX_IMPORTED_T_COST: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    Valid { needs_rehash: bool },
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not exist so that the
    /// answer takes as long as for a real user.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", &self.params).finish()
    }
}

impl Hasher {
    pub fn new(config: &PasswordConfig) -> Result<Hasher, HashError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| HashError::Hash(e.to_string()))?;
        let dummy_password: [u8; 16] = rand::random();
        let dummy_hash = argon2id(&params)
            .hash_password(&dummy_password)
            .map_err(|e| HashError::Hash(e.to_string()))?
            .to_string();
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(config.max_concurrent_hashes)),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move || {
            argon2id(&params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await?
    }

    /// Checks `password` against `stored`; `None` (unknown user, or a user without a password)
    /// is checked against the dummy hash and is always `Invalid`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verification, HashError> {
        let (stored, real) = match stored {
            Some(hash) if !hash.is_empty() => (hash.to_owned(), true),
            _ => (self.dummy_hash.to_string(), false),
        };
        let password = password.to_owned();
        let params = self.params.clone();
        let verification = self.run(move || verify_blocking(&params, &password, &stored)).await?;
        Ok(if real { verification } else { Verification::Invalid })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        // The semaphore is never closed, so acquiring only fails if that invariant breaks.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?;
        Ok(tokio::task::spawn_blocking(work).await?)
    }
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn verify_blocking(current: &Params, password: &str, stored: &str) -> Verification {
    if stored.starts_with("$2") {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Valid { needs_rehash: true },
            _ => Verification::Invalid,
        };
    }
    let Ok(hash) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return Verification::Invalid;
    };
    if params.m_cost() > MAX_IMPORTED_M_COST || params.t_cost() > MAX_IMPORTED_T_COST {
        return Verification::Invalid;
    }
    let algorithm = hash.algorithm.as_str();
    if !matches!(algorithm, "argon2id" | "argon2i" | "argon2d") {
        return Verification::Invalid;
    }
    // The verifier reads algorithm, version and parameters from the stored hash itself.
    match Argon2::default().verify_password(password.as_bytes(), &hash) {
        Ok(()) => {
            let up_to_date = algorithm == "argon2id"
                && hash.version == Some(0x13)
                && params.m_cost() == current.m_cost()
                && params.t_cost() == current.t_cost()
                && params.p_cost() == current.p_cost();
            Verification::Valid {
                needs_rehash: !up_to_date,
            }
        }
        Err(_) => Verification::Invalid,
    }
}

/// Why a password fails the policy, in GoTrue's words.
#[derive(Debug, Clone, PartialEq)]
pub struct WeakPassword {
    pub message: String,
    pub reasons: Vec<&'static str>,
}

/// GoTrue's `checkPasswordStrength`: minimum length and required character sets.
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

    fn config() -> PasswordConfig {
        PasswordConfig {
            min_length: 6,
            required_characters: vec![],
            // Small parameters keep the unit tests fast; production uses the OWASP ones.
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: 2,
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = Hasher::new(&config()).unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert_eq!(
            hasher.verify("correct horse", Some(&hash)).await.unwrap(),
            Verification::Valid { needs_rehash: false }
        );
        assert_eq!(
            hasher.verify("wrong", Some(&hash)).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = Hasher::new(&config()).unwrap();
        assert_eq!(hasher.verify("anything", None).await.unwrap(), Verification::Invalid);
        assert_eq!(hasher.verify("", Some("")).await.unwrap(), Verification::Invalid);
    }

    #[tokio::test]
    async fn gotrue_bcrypt_hashes_verify_and_ask_for_rehash() {
        let hasher = Hasher::new(&config()).unwrap();
        let go_style = bcrypt::hash_with_result("secret123", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        assert!(go_style.starts_with("$2a$"));
        assert_eq!(
            hasher.verify("secret123", Some(&go_style)).await.unwrap(),
            Verification::Valid { needs_rehash: true }
        );
        assert_eq!(
            hasher.verify("nope", Some(&go_style)).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn argon2_hashes_with_other_parameters_ask_for_rehash() {
        let hasher = Hasher::new(&config()).unwrap();
        let old = argon2id(&Params::new(32, 2, 1, None).unwrap())
            .hash_password(b"pw-123456")
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify("pw-123456", Some(&old)).await.unwrap(),
            Verification::Valid { needs_rehash: true }
        );
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 1, 1, None).unwrap())
            .hash_password(b"pw-123456")
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify("pw-123456", Some(&argon2i)).await.unwrap(),
            Verification::Valid { needs_rehash: true }
        );
    }

    #[tokio::test]
    async fn garbage_hashes_do_not_verify() {
        let hasher = Hasher::new(&config()).unwrap();
        for stored in [
            "plaintext",
            "$argon2id$broken",
            "$2a$10$short",
            "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        ] {
            assert_eq!(
                hasher.verify("plaintext", Some(stored)).await.unwrap(),
                Verification::Invalid,
                "{stored}"
            );
        }
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
}
