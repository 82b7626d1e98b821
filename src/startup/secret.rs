//! Which JWT secret the server may sign with (the fixed decision in DESIGN.md): outside the
//! zero-setup mode a missing, public or short `GOTRUE_JWT_SECRET` stops start-up, because
//! anyone who knows or guesses the secret can mint a `service_role` token. In the zero-setup
//! mode (private database, loopback only) a random secret is made on the first start and kept
//! under `.latchkey/`, so `cargo run` works with nothing set and still signs with a secret
//! nobody else has.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, ConfigError, DEV_JWT_SECRET, MIN_JWT_SECRET_BYTES};

/// The `JWT_SECRET` of Supabase's self-hosted `docker/.env.example`, public like the CLI's:
/// an operator who swaps GoTrue for Latchkey and kept the sample `.env` (GoTrue accepts it)
/// would let anyone mint a `service_role` token.
const SUPABASE_SAMPLE_JWT_SECRET: &str = "your-super-secret-jwt-token-with-at-least-32-characters-long";

/// The file the zero-setup mode keeps its generated secret in, inside the data directory.
pub const SECRET_FILE: &str = "jwt_secret";

/// The secret to sign with: `GOTRUE_JWT_SECRET` when it is acceptable, else (zero-setup mode
/// only) the one kept in `data_dir`, made on first use.
pub fn jwt_secret(config: &Config, data_dir: &Path) -> anyhow::Result<SecretString> {
    let zero_setup = config.zero_setup();
    match &config.jwt.secret {
        Some(secret) => match weakness(secret.expose_secret()) {
            None => Ok(secret.clone()),
            Some(weakness) if zero_setup => {
                tracing::warn!(
                    "!!! GOTRUE_JWT_SECRET {weakness}. Accepted only because this server has no \
                     DATABASE_URL and listens on loopback; anyone who knows it can mint tokens. !!!"
                );
                Ok(secret.clone())
            }
            Some(weakness) => Err(refusal(&format!("{weakness}{}", MODE_HINT)).into()),
        },
        None if zero_setup => load_or_create(data_dir),
        None => Err(refusal(&format!(
            "is not set; set a random secret of at least {MIN_JWT_SECRET_BYTES} bytes \
             (e.g. `openssl rand -base64 48`){MODE_HINT}"
        ))
        .into()),
    }
}

const MODE_HINT: &str =
    " (only a server without DATABASE_URL that listens on loopback may run without a strong secret)";

fn refusal(message: &str) -> ConfigError {
    ConfigError {
        var: "GOTRUE_JWT_SECRET".into(),
        message: message.into(),
    }
}

/// Why a secret must not sign tokens for a server others can reach, if it must not.
fn weakness(secret: &str) -> Option<String> {
    if secret == DEV_JWT_SECRET {
        Some("is the public development secret of the Supabase CLI".into())
    } else if secret == SUPABASE_SAMPLE_JWT_SECRET {
        Some("is the sample secret of Supabase's self-hosted docker/.env.example".into())
    } else if secret.len() < MIN_JWT_SECRET_BYTES {
        Some(format!(
            "is {} bytes long; at least {MIN_JWT_SECRET_BYTES} are required",
            secret.len()
        ))
    } else {
        None
    }
}

/// Reads the kept secret, or makes one: 48 random bytes, base64url (64 characters).
fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join(SECRET_FILE);
    let kept = keep_private(&path, "a random JWT secret", || {
        let random: [u8; 48] = rand::random();
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
    })?;
    let kept = kept.trim();
    if let Some(weakness) = weakness(kept) {
        anyhow::bail!(
            "{}: the kept secret {weakness}; delete the file to make a new one",
            path.display()
        );
    }
    Ok(SecretString::from(kept.to_owned()))
}

/// The content of `path`, a file only its owner may read; made with `make` (mode 0600, never
/// overwritten) when it does not exist yet. `what` names the content in the log.
pub(super) fn keep_private(
    path: &Path,
    what: &str,
    make: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let fresh = make()?;
    // `create_new`: two servers starting at once cannot both write; the loser reads.
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!("made {what} for this zero-setup server in {}", path.display());
            return Ok(fresh);
        }
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("creating {}", path.display())),
    }
    let metadata = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        // Someone loosened it: others on the machine could read it. Tighten it.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to its owner", path.display()))?;
        tracing::warn!("{} was readable by others; it is now 0600", path.display());
    }
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(vars).unwrap()
    }

    fn temp_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("latchkey-secret-{}", uuid::Uuid::new_v4().simple()))
    }

    const STRONG: &str = "a-strong-secret-that-is-longer-than-32-bytes";
    const DB: (&str, &str) = ("DATABASE_URL", "postgres://x@db/app");

    #[test]
    fn a_reachable_server_refuses_missing_public_and_short_secrets() {
        let dir = temp_dir();
        for vars in [
            vec![DB],
            vec![DB, ("GOTRUE_JWT_SECRET", DEV_JWT_SECRET)],
            vec![DB, ("JWT_SECRET", SUPABASE_SAMPLE_JWT_SECRET)],
            vec![DB, ("GOTRUE_JWT_SECRET", "only-31-bytes-long-secret-value")],
            // No DATABASE_URL, but listening beyond the machine.
            vec![("GOTRUE_API_HOST", "0.0.0.0")],
            vec![("GOTRUE_API_HOST", "0.0.0.0"), ("GOTRUE_JWT_SECRET", DEV_JWT_SECRET)],
        ] {
            let err = jwt_secret(&config(&vars), &dir).unwrap_err();
            assert!(err.to_string().contains("GOTRUE_JWT_SECRET"), "{vars:?}: {err}");
        }
        assert!(!dir.exists(), "nothing is written for a refused start");
        let ok = jwt_secret(&config(&[DB, ("GOTRUE_JWT_SECRET", STRONG)]), &dir).unwrap();
        assert_eq!(ok.expose_secret(), STRONG);
        let exactly_32 = "x".repeat(32);
        assert!(jwt_secret(&config(&[DB, ("GOTRUE_JWT_SECRET", &exactly_32)]), &dir).is_ok());
    }

    #[test]
    fn zero_setup_makes_a_private_secret_once_and_keeps_it() {
        let dir = temp_dir();
        let first = jwt_secret(&config(&[]), &dir).unwrap();
        let again = jwt_secret(&config(&[("GOTRUE_API_HOST", "localhost")]), &dir).unwrap();
        assert_eq!(first.expose_secret(), again.expose_secret());
        assert_ne!(first.expose_secret(), DEV_JWT_SECRET);
        assert!(first.expose_secret().len() >= 64);
        let file = dir.join(SECRET_FILE);
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

        // Loosened by hand: tightened again, same secret.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let third = jwt_secret(&config(&[]), &dir).unwrap();
        assert_eq!(third.expose_secret(), first.expose_secret());
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

        // Another directory, another secret.
        let other = temp_dir();
        assert_ne!(
            jwt_secret(&config(&[]), &other).unwrap().expose_secret(),
            first.expose_secret()
        );
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&other);
    }

    #[test]
    fn zero_setup_accepts_a_given_secret_even_a_weak_one() {
        let dir = temp_dir();
        let dev = jwt_secret(&config(&[("GOTRUE_JWT_SECRET", DEV_JWT_SECRET)]), &dir).unwrap();
        assert_eq!(dev.expose_secret(), DEV_JWT_SECRET);
        assert!(!dir.exists(), "a given secret is used as it is, nothing is kept");
    }
}
