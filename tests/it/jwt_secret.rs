//! No public secret in anything that listens beyond the machine (issue #14): a server with a
//! database of its own or a non-loopback address refuses to start without a strong
//! `GOTRUE_JWT_SECRET`; the zero-setup server makes a private one and keeps it.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::{TestApp, base_vars, fresh_database};
use latchkey::config::{Config, DEV_JWT_SECRET};
use latchkey::startup::{Application, SECRET_FILE};

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
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("keys")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn zero_setup_keys_are_signed_with_a_kept_private_secret() {
    let dir = std::env::temp_dir().join(format!("latchkey-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = keys(&dir, &[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = keys(&dir, &[]);
    assert_eq!(first.stdout, second.stdout, "the kept secret is reused");

    let file = dir.join(".latchkey").join(SECRET_FILE);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&file).unwrap();
    assert_ne!(secret.trim(), DEV_JWT_SECRET);

    // The printed keys verify with the kept secret, and not with the public one.
    let output = String::from_utf8(first.stdout).unwrap();
    let service_key = output
        .lines()
        .find_map(|line| line.strip_prefix("SERVICE_ROLE_KEY="))
        .expect("a service_role key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    let decode = |secret: &str| {
        jsonwebtoken::decode::<serde_json::Value>(
            service_key,
            &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
    };
    assert_eq!(decode(secret.trim()).unwrap().claims["role"], "service_role");
    assert!(decode(DEV_JWT_SECRET).is_err());

    // With a database of its own the same command needs a real secret.
    let refused = keys(&dir, &[("DATABASE_URL", "postgres://x@127.0.0.1:1/x")]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("GOTRUE_JWT_SECRET"));
    let _ = std::fs::remove_dir_all(&dir);
}
