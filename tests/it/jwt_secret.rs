//! No public secret in anything that listens beyond the machine (issue #14): a server with a
//! database of its own or a non-loopback address refuses to start without a strong
//! `GOTRUE_JWT_SECRET`; the zero-setup server makes a private one and keeps it.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::{TestApp, base_vars, fresh_database};
use latchkey::config::{Config, DEV_JWT_SECRET};
use latchkey::startup::{Application, KEYS_FILE, SECRET_FILE};

async fn build_error(secret: Option<&str>) -> String {
    let database = fresh_database().await;
    let mut vars = base_vars(database.url());
    match secret {
        Some(secret) => vars.insert("GOTRUE_JWT_SECRET".into(), secret.into()),
        None => vars.remove("GOTRUE_JWT_SECRET"),
    };
    let config = Config::from_vars(vars).unwrap();
    match Application::build(config).await {
        Ok(_) => panic!("a server with DATABASE_URL started with secret {secret:?}"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn a_server_with_its_own_database_refuses_missing_public_and_short_secrets() {
    for secret in [None, Some(DEV_JWT_SECRET), Some("0123456789abcdef0123456789abcde")] {
        let error = build_error(secret).await;
        assert!(error.contains("GOTRUE_JWT_SECRET"), "{secret:?}: {error}");
    }
    // 32 bytes are enough.
    let app = TestApp::spawn_with(&[("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef")]).await;
    assert_eq!(app.get("/health").await.status(), 200);
}

/// `latchkey keys` run in `dir` with only `vars` in its environment.
fn keys(dir: &std::path::Path, vars: &[(&str, &str)]) -> std::process::Output {
    latchkey_keys(dir, &[], vars)
}

/// `latchkey keys <args>` run in `dir` with only `vars` in its environment.
pub(crate) fn latchkey_keys(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("keys")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

/// The `SERVICE_ROLE_KEY=` line of `latchkey keys`' output.
pub(crate) fn service_key(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("SERVICE_ROLE_KEY="))
        .expect("a service_role key")
        .to_owned()
}

fn decode(
    token: &str,
    alg: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::DecodingKey,
) -> jsonwebtoken::errors::Result<serde_json::Value> {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map(|data| data.claims)
}

#[test]
fn zero_setup_keys_are_signed_with_a_kept_private_key() {
    let dir = std::env::temp_dir().join(format!("latchkey-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = service_key(&keys(&dir, &[]));
    let second = service_key(&keys(&dir, &[]));
    let header = |token: &str| jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(
        header(&first).alg,
        jsonwebtoken::Algorithm::ES256,
        "a new Supabase project signs ES256"
    );
    assert_eq!(header(&first).kid, header(&second).kid, "the kept key is reused");

    // Both the secret and the key are kept, readable by their owner only.
    let kept = dir.join(".latchkey");
    for file in [SECRET_FILE, KEYS_FILE] {
        let mode = std::fs::metadata(kept.join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let secret = std::fs::read_to_string(kept.join(SECRET_FILE)).unwrap();
    assert_ne!(secret.trim(), DEV_JWT_SECRET);

    // The printed keys verify with the kept key's public half, and not with a secret.
    let set: Vec<jsonwebtoken::jwk::Jwk> =
        serde_json::from_str(&std::fs::read_to_string(kept.join(KEYS_FILE)).unwrap()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].common.key_id, header(&first).kid);
    let public = jsonwebtoken::DecodingKey::from_jwk(&set[0]).unwrap();
    let claims = decode(&first, jsonwebtoken::Algorithm::ES256, &public).unwrap();
    assert_eq!(claims["role"], "service_role");
    for secret in [secret.trim(), DEV_JWT_SECRET] {
        let hs = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
        assert!(decode(&first, jsonwebtoken::Algorithm::HS256, &hs).is_err());
    }

    // A secret given by the operator keeps HS256 (what PGRST_JWT_SECRET verifies elsewhere).
    let other = std::env::temp_dir().join(format!("latchkey-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&other).unwrap();
    let strong = "a-strong-secret-that-is-longer-than-32-bytes";
    let hs256 = service_key(&keys(&other, &[("GOTRUE_JWT_SECRET", strong)]));
    let hs = jsonwebtoken::DecodingKey::from_secret(strong.as_bytes());
    assert!(decode(&hs256, jsonwebtoken::Algorithm::HS256, &hs).is_ok());
    assert!(!other.join(".latchkey").join(KEYS_FILE).exists());
    let _ = std::fs::remove_dir_all(&other);

    // With a database of its own the same command needs a real secret.
    let refused = keys(&dir, &[("DATABASE_URL", "postgres://x@127.0.0.1:1/x")]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("GOTRUE_JWT_SECRET"));
    let _ = std::fs::remove_dir_all(&dir);
}
