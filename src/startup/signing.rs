//! Which keys sign and verify access tokens: `GOTRUE_JWT_KEYS` when it is given; in the
//! zero-setup mode with nothing configured, an ES256 key made on the first start and kept
//! beside the secret in `.latchkey/`, so that `cargo run` signs like a new Supabase project;
//! otherwise HS256 with the secret, as before.

use std::path::Path;

use jsonwebtoken::Algorithm;
use secrecy::SecretString;

use super::secret::{jwt_secret, keep_private};
use crate::auth::jwt::{JwtKeys, KeySettings, jwk};
use crate::config::Config;

/// The file the zero-setup mode keeps its generated signing key in (a `GOTRUE_JWT_KEYS` value).
pub const KEYS_FILE: &str = "jwt_keys.json";

/// The secret (for HS256 tokens and the refresh-token key) and the keys of this server.
pub fn jwt_keys(config: &Config, data_dir: &Path) -> anyhow::Result<(SecretString, JwtKeys)> {
    let secret = jwt_secret(config, data_dir)?;
    // Only when nothing is configured: an operator who set a secret expects HS256 tokens that
    // the same secret verifies elsewhere (PostgREST's PGRST_JWT_SECRET), as before.
    let generated = match (&config.jwt.keys, &config.jwt.secret) {
        (None, None) if config.zero_setup() => Some(load_or_create(data_dir)?),
        _ => None,
    };
    let keys = JwtKeys::from_settings(&KeySettings {
        secret: &secret,
        secret_kid: config.jwt.key_id.as_deref(),
        private_keys: config.jwt.keys.as_ref().or(generated.as_ref()),
        valid_methods: config.jwt.valid_methods.as_deref(),
        // API keys printed before the key existed were signed with the kept secret.
        secret_still_verifies: generated.is_some(),
    })?;
    Ok((secret, keys))
}

/// The kept key set, or a new one with one ES256 signing key.
fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretString> {
    let kept = keep_private(&data_dir.join(KEYS_FILE), "an ES256 signing key", || {
        let key = jwk::generate(Algorithm::ES256).map_err(anyhow::Error::msg)?;
        Ok(format!("[{}]", secrecy::ExposeSecret::expose_secret(&key)))
    })?;
    Ok(SecretString::from(kept))
}
