//! Inputs that scripts/fuzz.sh (schemathesis, from the OpenAPI document) found answered with a
//! 5xx, each kept here so the fix stays.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, random_email};

/// PostgreSQL refuses NUL in `text` and `jsonb` ("unsupported Unicode escape sequence"): a
/// `\u0000` in user metadata used to reach the database and come back as a 500.
#[tokio::test]
async fn nul_characters_in_json_bodies_are_a_validation_error() {
    let app = TestApp::spawn().await;
    let admin = app.api_key("service_role");

    let response = app
        .post_json_auth(
            "/auth/v1/admin/users",
            &admin,
            &json!({ "email": random_email(), "user_metadata": { "name": "a\u{0}b" } }),
        )
        .await;
    assert_error(response, 400, "validation_failed").await;

    // In a key, nested, at sign-up.
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({ "email": random_email(), "password": "a-long-password", "data": { "x": [{ "\u{0}": 1 }] } }),
        )
        .await;
    assert_error(response, 400, "validation_failed").await;

    let session = app.sign_up(&random_email(), "a-long-password").await;
    let token = session["access_token"].as_str().unwrap();
    let response = app
        .put_json_auth("/auth/v1/user", token, &json!({ "data": { "name": "\u{0}" } }))
        .await;
    assert_error(response, 400, "validation_failed").await;

    let user_id = session["user"]["id"].as_str().unwrap();
    let response = app
        .request(Method::PUT, &format!("/auth/v1/admin/users/{user_id}"))
        .bearer_auth(&admin)
        .json(&json!({ "app_metadata": { "plan": "\u{0}" } }))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "validation_failed").await;
}

/// The text `\u0000` (an escaped backslash, then `u0000`) is not a NUL and is stored as is.
#[tokio::test]
async fn an_escaped_backslash_before_u0000_is_ordinary_text() {
    let app = TestApp::spawn().await;
    let body = format!(
        r#"{{"email": "{}", "password": "a-long-password", "data": {{"note": "\\u0000"}}}}"#,
        random_email()
    );
    let response = app
        .request(Method::POST, "/auth/v1/signup")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session: serde_json::Value = response.json().await.unwrap();
    assert_eq!(session["user"]["user_metadata"]["note"], "\\u0000");
}

#[tokio::test]
async fn nul_characters_in_query_parameters_are_a_validation_error() {
    let app = TestApp::spawn().await;
    let admin = app.api_key("service_role");
    for path in [
        "/auth/v1/admin/users?filter=a%00b",
        "/auth/v1/admin/audit?query=author:%00",
    ] {
        let response = app.get_auth(path, &admin).await;
        assert_error(response, 400, "validation_failed").await;
    }
}
