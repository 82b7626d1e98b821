//! Password sizes and hash costs that could make one request keep a hashing thread busy:
//! refused with `400 validation_failed` before any hashing, and expensive stored hashes never
//! verified. bcrypt's 72-byte reading of a password, documented by a test.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email};

/// A real bcrypt hash of this password at cost 15 (about 2 s to verify), made once.
const COST_15_PASSWORD: &str = "cost-fifteen-password";
const COST_15_HASH: &str = "$2a$15$/6UdJyhtMLbQVsaVqLwAyORuYsg./gEjmtYKzDsrJNTUv7/ENp.b.";

fn bcrypt_of(password: &str) -> String {
    bcrypt::hash_with_result(password, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA)
}

#[tokio::test]
async fn sign_in_refuses_passwords_over_1024_bytes_for_any_address() {
    let app = TestApp::spawn().await;
    let email = random_email();
    app.sign_up(&email, "short-password").await;
    for address in [email.as_str(), "nobody@example.com"] {
        let body = assert_error(app.sign_in(address, &"p".repeat(1025)).await, 400, "validation_failed").await;
        assert_eq!(body["msg"], "Password cannot be longer than 1024 characters");
        // Just under the 1 MiB body limit.
        let megabyte = "p".repeat(1_000_000);
        assert_error(app.sign_in(address, &megabyte).await, 400, "validation_failed").await;
    }
    // Up to the limit, a wrong password is just a wrong password.
    assert_error(app.sign_in(&email, &"p".repeat(1024)).await, 400, "invalid_credentials").await;
    assert_eq!(app.sign_in(&email, "short-password").await.status(), 200);
}

#[tokio::test]
async fn new_passwords_keep_gotrues_72_byte_limit_on_every_path() {
    let app = TestApp::spawn().await;
    let long = "p".repeat(73);
    let too_long = |response| assert_error(response, 400, "validation_failed");
    let body = too_long(
        app.post_json("/signup", &json!({"email": random_email(), "password": long}))
            .await,
    )
    .await;
    assert_eq!(body["msg"], "Password cannot be longer than 72 characters");
    let session = app.sign_up(&random_email(), "short-password").await;
    let token = session["access_token"].as_str().unwrap();
    too_long(app.put_json_auth("/user", token, &json!({"password": long})).await).await;
    let created = json!({"email": random_email(), "password": long});
    too_long(admin(&app, Method::POST, "/admin/users", Some(created)).await).await;
    let id = session["user"]["id"].as_str().unwrap();
    let path = format!("/admin/users/{id}");
    too_long(admin(&app, Method::PUT, &path, Some(json!({"password": long}))).await).await;
    let link = json!({"type": "signup", "email": random_email(), "password": long});
    too_long(admin(&app, Method::POST, "/admin/generate_link", Some(link)).await).await;
}

#[tokio::test]
async fn imported_bcrypt_hashes_above_cost_14_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let created = json!({"email": email, "password_hash": COST_15_HASH, "email_confirm": true});
    let body = assert_error(
        admin(&app, Method::POST, "/admin/users", Some(created)).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("bcrypt cost must be between 4 and 14, not 15"),
        "{body}"
    );
    let mut db = app.db().await;
    let stored: i64 = sqlx::query_scalar("select count(*) from _auth_users where email = $1")
        .bind(&email)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    let imported = bcrypt_of("imported-pw");
    let created = json!({"email": email, "password_hash": imported, "email_confirm": true});
    let user: Value = admin(&app, Method::POST, "/admin/users", Some(created))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/admin/users/{}", user["id"].as_str().unwrap());
    let cost_31 = imported.replacen("$04$", "$31$", 1);
    let update = json!({"password_hash": cost_31});
    assert_error(
        admin(&app, Method::PUT, &path, Some(update)).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(
        app.sign_in(&email, "imported-pw").await.status(),
        200,
        "the old hash is kept"
    );
}

#[tokio::test]
async fn an_expensive_hash_put_there_by_sql_never_verifies() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, "short-password").await;
    let mut db = app.db().await;
    sqlx::query("update _auth_users set encrypted_password = $1 where id = $2::uuid")
        .bind(COST_15_HASH)
        .bind(session["user"]["id"].as_str().unwrap())
        .execute(&mut db)
        .await
        .unwrap();
    assert_error(app.sign_in(&email, COST_15_PASSWORD).await, 400, "invalid_credentials").await;
}

#[tokio::test]
async fn imported_bcrypt_hashes_read_only_the_first_72_bytes() {
    // Documented behaviour, not a choice: bcrypt ignores everything after byte 72, so a
    // password that differs only there verifies against an imported hash. New hashes are
    // argon2id and read the whole password.
    let app = TestApp::spawn().await;
    let email = random_email();
    let first_72 = "b".repeat(72);
    let created =
        json!({"email": email, "password_hash": bcrypt_of(&format!("{first_72}-original")), "email_confirm": true});
    assert_eq!(
        admin(&app, Method::POST, "/admin/users", Some(created)).await.status(),
        200
    );
    assert_eq!(
        app.sign_in(&email, &format!("{first_72}-anything-else")).await.status(),
        200
    );
    // That sign-in replaced the bcrypt hash with an argon2id hash of the password used.
    assert_error(
        app.sign_in(&email, &format!("{first_72}-original")).await,
        400,
        "invalid_credentials",
    )
    .await;
}
