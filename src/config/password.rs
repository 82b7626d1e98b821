//! Passwords: GoTrue's policy for new ones and Latchkey's hashing parameters.

use super::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub min_length: usize,
    /// Character sets of which a password must contain at least one character each.
    pub required_characters: Vec<String>,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// How many password hashes may run at once (each holds `argon2_memory_kib` of memory).
    pub max_concurrent_hashes: usize,
}

pub(super) fn from_env(env: &Env, parallelism: usize) -> Result<PasswordConfig, ConfigError> {
    Ok(PasswordConfig {
        min_length: env.parse_or(&["GOTRUE_PASSWORD_MIN_LENGTH"], 6usize)?.max(6),
        required_characters: parse_required_characters(&env.string_or(&["GOTRUE_PASSWORD_REQUIRED_CHARACTERS"], "")),
        // OWASP's first recommended argon2id setting: m=19 MiB, t=2, p=1.
        argon2_memory_kib: env.parse_or(&["LATCHKEY_ARGON2_MEMORY_KIB"], 19_456u32)?,
        argon2_iterations: env.parse_or(&["LATCHKEY_ARGON2_ITERATIONS"], 2u32)?,
        argon2_parallelism: env.parse_or(&["LATCHKEY_ARGON2_PARALLELISM"], 1u32)?,
        max_concurrent_hashes: env.parse_or(&["LATCHKEY_MAX_CONCURRENT_HASHES"], parallelism)?.max(1),
    })
}

/// `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`: `:`-separated sets, `\:` escapes a colon.
fn parse_required_characters(raw: &str) -> Vec<String> {
    let mut sets = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&':') => {
                current.push(':');
                chars.next();
            }
            ':' => sets.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    sets.push(current);
    sets.retain(|s| !s.is_empty());
    sets
}
