//! `PUT /user` with `current_password`: checked whenever it is given, and required for a
//! password change with `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD=true`
//! (GoTrue's rule: not for users without a password, nor from a session started by an
//! emailed link or code). A refusal changes nothing.

use serde_json::{Value, json};

use crate::email::mail_app;
use crate::helpers::{TestApp, assert_error, random_email};

const REQUIRE: (&str, &str) = ("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD", "true");

async fn signed_up(app: &TestApp, password: &str) -> (String, String) {
    let email = random_email();
    let session = app.sign_up(&email, password).await;
    (email, session["access_token"].as_str().unwrap().to_owned())
}

/// Only `password` signs in.
async fn assert_password_is(app: &TestApp, email: &str, password: &str, not: &str) {
    assert_eq!(app.sign_in(email, password).await.status(), 200, "{password} signs in");
    assert_error(app.sign_in(email, not).await, 400, "invalid_credentials").await;
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_even_when_not_required() {
    let app = TestApp::spawn().await;
    let (email, token) = signed_up(&app, "old-password").await;
    let wrong = json!({"password": "new-password", "current_password": "not-the-password"});
    let body = assert_error(
        app.put_json_auth("/user", &token, &wrong).await,
        400,
        "current_password_invalid",
    )
    .await;
    assert_eq!(body["msg"], "Current password is incorrect.");
    // Nor with a metadata change only: a given current password is never ignored.
    let data_only = json!({"data": {"name": "x"}, "current_password": "not-the-password"});
    assert_error(
        app.put_json_auth("/user", &token, &data_only).await,
        400,
        "current_password_invalid",
    )
    .await;
    assert_password_is(&app, &email, "old-password", "new-password").await;
    // The refused update kept nothing (read from a 200: an error body has no metadata either).
    let user = crate::oauth::user_of(&app, &token).await;
    assert!(user["user_metadata"].is_object(), "{user}");
    assert!(user["user_metadata"].get("name").is_none(), "{user}");

    let right = json!({"password": "new-password", "current_password": "old-password"});
    assert_eq!(app.put_json_auth("/user", &token, &right).await.status(), 200);
    assert_password_is(&app, &email, "new-password", "old-password").await;
}

#[tokio::test]
async fn when_required_a_password_change_needs_the_current_password() {
    let app = TestApp::spawn_with(&[REQUIRE]).await;
    let (email, token) = signed_up(&app, "old-password").await;
    let body = assert_error(
        app.put_json_auth("/user", &token, &json!({"password": "new-password"}))
            .await,
        400,
        "current_password_required",
    )
    .await;
    assert_eq!(body["msg"], "Current password required when setting new password.");
    let empty = json!({"password": "new-password", "current_password": ""});
    assert_error(
        app.put_json_auth("/user", &token, &empty).await,
        400,
        "current_password_required",
    )
    .await;
    let wrong = json!({"password": "new-password", "current_password": "guess"});
    assert_error(
        app.put_json_auth("/user", &token, &wrong).await,
        400,
        "current_password_invalid",
    )
    .await;
    assert_password_is(&app, &email, "old-password", "new-password").await;

    // Other changes do not need it.
    let data_only = json!({"data": {"name": "x"}});
    assert_eq!(app.put_json_auth("/user", &token, &data_only).await.status(), 200);
    let right = json!({"password": "new-password", "current_password": "old-password"});
    assert_eq!(app.put_json_auth("/user", &token, &right).await.status(), 200);
    assert_password_is(&app, &email, "new-password", "old-password").await;
}

#[tokio::test]
async fn an_over_long_current_password_is_refused_before_hashing() {
    let app = TestApp::spawn().await;
    let (email, token) = signed_up(&app, "old-password").await;
    let long = json!({"password": "new-password", "current_password": "x".repeat(1025)});
    assert_error(
        app.put_json_auth("/user", &token, &long).await,
        400,
        "validation_failed",
    )
    .await;
    assert_password_is(&app, &email, "old-password", "new-password").await;
}

#[tokio::test]
async fn users_without_a_password_set_one_without_a_current_password() {
    let app = TestApp::spawn_with(&[REQUIRE]).await;
    let response = app.post_json("/signup", &json!({})).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap();
    let email = random_email();
    let first = json!({"email": email, "password": "first-password"});
    assert_eq!(app.put_json_auth("/user", token, &first).await.status(), 200);
    // Giving one anyway: there is none to match.
    let other = random_email();
    let anonymous: Value = app.post_json("/signup", &json!({})).await.json().await.unwrap();
    let body = json!({"email": other, "password": "first-password", "current_password": "anything"});
    assert_error(
        app.put_json_auth("/user", anonymous["access_token"].as_str().unwrap(), &body)
            .await,
        400,
        "current_password_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_session_from_a_recovery_code_sets_a_new_password_without_the_old_one() {
    let (app, sink) = mail_app(&[REQUIRE, ("GOTRUE_MAILER_AUTOCONFIRM", "true")]).await;
    let (email, password_session) = signed_up(&app, "forgotten-password").await;
    assert_eq!(app.post_json("/recover", &json!({"email": email})).await.status(), 200);
    let code = sink.last_to(&email).await.code();
    let response = app
        .post_json("/verify", &json!({"type": "recovery", "email": email, "token": code}))
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    let recovery_token = session["access_token"].as_str().unwrap();

    // The password session still needs it; the recovery session does not.
    let change = json!({"password": "new-password"});
    assert_error(
        app.put_json_auth("/user", &password_session, &change).await,
        400,
        "current_password_required",
    )
    .await;
    assert_eq!(app.put_json_auth("/user", recovery_token, &change).await.status(), 200);
    assert_password_is(&app, &email, "new-password", "forgotten-password").await;
}
