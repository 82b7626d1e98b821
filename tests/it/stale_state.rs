//! Nothing about a user or a session is remembered between requests (issue #24): the server
//! may keep what cannot go stale (a token's verified signature), never the user's state. A
//! token that has just been used — so that any cache would hold it — is refused on the very
//! next `GET /user` and refresh once its user is banned, its session signed out from another
//! one, its user deleted, or another session changed the password (which ends the others).
//! Each case runs with HS256 (the secret) and with an ES256 key set, whose verified
//! signatures the server caches.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email, refresh_token};
use crate::signing_keys::{generated, key_set};

const PASSWORD: &str = "stale-state-pw-1";

fn access(session: &Value) -> &str {
    session["access_token"].as_str().unwrap()
}

/// Signs up, then uses the session once each way (`GET /user` and a refresh), and uses the
/// refreshed access token too: returns the session in use and the user's id.
async fn session_in_use(app: &TestApp, email: &str) -> (Value, String) {
    let first = app.sign_up(email, PASSWORD).await;
    assert_eq!(app.get_auth("/user", access(&first)).await.status(), 200);
    let current = app.refreshed(refresh_token(&first)).await;
    for _ in 0..2 {
        assert_eq!(app.get_auth("/user", access(&current)).await.status(), 200);
    }
    let id = current["user"]["id"].as_str().unwrap().to_owned();
    (current, id)
}

/// The next `GET /user` with the session's access token and the next refresh with its refresh
/// token are refused with these GoTrue errors.
async fn refused(app: &TestApp, session: &Value, user_code: &str) {
    assert_error(app.get_auth("/user", access(session)).await, 403, user_code).await;
    assert_error(
        app.refresh(refresh_token(session)).await,
        400,
        "refresh_token_not_found",
    )
    .await;
}

async fn every_change_takes_effect_on_the_next_request(app: &TestApp) {
    // Banned by an admin.
    let (session, id) = session_in_use(app, &random_email()).await;
    let response = admin(
        app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "24h"})),
    )
    .await;
    assert_eq!(response.status(), 200);
    refused(app, &session, "session_not_found").await;

    // Signed out from another session (scope=others).
    let email = random_email();
    let (session, _) = session_in_use(app, &email).await;
    let other = app.signed_in(&email, PASSWORD).await;
    let response = app
        .request(Method::POST, "/logout?scope=others")
        .bearer_auth(access(&other))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    refused(app, &session, "session_not_found").await;
    assert_eq!(app.get_auth("/user", access(&other)).await.status(), 200);

    // Signed out itself (scope=local), then the same token again.
    let (session, _) = session_in_use(app, &random_email()).await;
    let response = app
        .request(Method::POST, "/logout?scope=local")
        .bearer_auth(access(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    refused(app, &session, "session_not_found").await;

    // Deleted by an admin.
    let (session, id) = session_in_use(app, &random_email()).await;
    let response = admin(app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    assert_eq!(response.status(), 200);
    refused(app, &session, "user_not_found").await;

    // The password changed in another session, which ends every other session.
    let email = random_email();
    let (session, _) = session_in_use(app, &email).await;
    let other = app.signed_in(&email, PASSWORD).await;
    let response = app
        .put_json_auth("/user", access(&other), &json!({"password": "a-new-stale-state-pw-2"}))
        .await;
    assert_eq!(response.status(), 200);
    refused(app, &session, "session_not_found").await;
    assert_eq!(app.get_auth("/user", access(&other)).await.status(), 200);
}

#[tokio::test]
async fn bans_sign_outs_deletions_and_password_changes_apply_at_once_hs256() {
    let app = TestApp::spawn().await;
    every_change_takes_effect_on_the_next_request(&app).await;
}

#[tokio::test]
async fn bans_sign_outs_deletions_and_password_changes_apply_at_once_es256() {
    let es = generated(jsonwebtoken::Algorithm::ES256);
    let app = TestApp::spawn_with(&[("GOTRUE_JWT_KEYS", &key_set(&[&es]))]).await;
    every_change_takes_effect_on_the_next_request(&app).await;
}
