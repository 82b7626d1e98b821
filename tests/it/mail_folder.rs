//! The mail folder of the zero-setup mode: with no SMTP host, each mail is written whole to a
//! private folder as an `.eml` file, and `latchkey mail` lists the newest with their links,
//! enough to go from sign-up to a confirmed sign-in with nothing else installed. (The server
//! here has a `DATABASE_URL` and names the folder with `LATCHKEY_MAIL_DIR`; the zero-setup
//! mode uses the same mailer with `.latchkey/mail`.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

use crate::email::{fragment, location};
use crate::helpers::{TestApp, random_email};

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latchkey-mail-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `latchkey mail <args>` in `dir` (no `.env` there), with only `vars` set.
fn latchkey_mail(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("mail")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn mail_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn sign_up_confirm_and_sign_in_with_the_mail_folder() {
    let dir = scratch_dir();
    let folder = dir.join("mail");
    let folder_var = folder.to_str().unwrap();
    let app = TestApp::spawn_with(&[
        ("LATCHKEY_MAIL_DIR", folder_var),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
    ])
    .await;

    let email = random_email();
    let password = "a-long-password";
    let signup = app
        .post_json("/auth/v1/signup", &json!({"email": email, "password": password}))
        .await;
    assert_eq!(signup.status(), 200);
    assert_eq!(app.sign_in(&email, password).await.status(), 400, "not confirmed yet");

    // One private file in a private folder, holding the whole message.
    assert_eq!(std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
    let files = mail_files(&folder);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.contains("-confirmation-") && !name.contains("example"), "{name}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains(&format!("To: {email}")), "{raw}");
    assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");

    // `latchkey mail` shows the clickable link; following it confirms and signs in.
    let listing = stdout(&latchkey_mail(&dir, &[], &[("LATCHKEY_MAIL_DIR", folder_var)]));
    assert!(listing.contains(&format!("to {email}")), "{listing}");
    assert!(listing.contains("Confirm your email address"), "{listing}");
    let link = listing
        .split_whitespace()
        .find(|word| word.starts_with(&app.url("/verify?token=")))
        .unwrap_or_else(|| panic!("no confirmation link in {listing}"));
    assert!(link.contains("&type=signup&"), "{link}");
    let tokens = fragment(&location(&app.client.get(link).send().await.unwrap()));
    assert!(tokens.contains_key("access_token"), "{tokens:?}");
    assert_eq!(app.sign_in(&email, password).await.status(), 200, "confirmed");

    // Newest first; `-n` limits the list.
    let recover = app.post_json("/auth/v1/recover", &json!({"email": email})).await;
    assert_eq!(recover.status(), 200);
    assert_eq!(mail_files(&folder).len(), 2);
    let listing = stdout(&latchkey_mail(&dir, &[], &[("LATCHKEY_MAIL_DIR", folder_var)]));
    let recovery_at = listing.find("Reset your password").expect("the recovery mail");
    let confirmation_at = listing
        .find("Confirm your email address")
        .expect("the confirmation mail");
    assert!(recovery_at < confirmation_at, "newest first: {listing}");
    assert!(listing.contains("&type=recovery&"), "{listing}");
    let newest = stdout(&latchkey_mail(&dir, &["-n", "1"], &[("LATCHKEY_MAIL_DIR", folder_var)]));
    assert!(
        newest.contains("Reset your password") && !newest.contains("Confirm your email"),
        "{newest}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn latchkey_mail_reads_the_zero_setup_folder_and_refuses_without_one() {
    let dir = scratch_dir();
    // No DATABASE_URL, loopback: the zero-setup mode, whose folder is .latchkey/mail.
    let empty = stdout(&latchkey_mail(&dir, &[], &[]));
    assert!(empty.contains("No mail in .latchkey/mail/ yet"), "{empty}");

    let server = latchkey_mail(&dir, &[], &[("DATABASE_URL", "postgres://db.invalid/app")]);
    assert!(!server.status.success());
    let error = String::from_utf8_lossy(&server.stderr);
    assert!(error.contains("LATCHKEY_MAIL_DIR"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}
