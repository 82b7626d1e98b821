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

/// Extreme floats in metadata (seed 44711731): Postgres keeps `-1.7976931348623157e308` as an
/// exact 309-digit numeric and prints it that way; serde_json's fast float parsing rounded
/// that to infinity ("number out of range") when the row was read back, a 500. serde_json's
/// `float_roundtrip` parses it exactly.
#[tokio::test]
async fn extreme_floats_in_metadata_round_trip() {
    let app = TestApp::spawn().await;
    let data = json!({ "min": -1.797_693_134_862_315_7e308, "big": -1.423_415_051_584_526_9e172, "tiny": 6.524_215_729_015_589e-286 });
    let response = app.post_json("/auth/v1/signup", &json!({ "data": data })).await;
    assert_eq!(response.status(), 200);
    let session: serde_json::Value = response.json().await.unwrap();
    assert_eq!(session["user"]["user_metadata"], data);
    let token = session["access_token"].as_str().unwrap();
    let user: serde_json::Value = app.get_auth("/auth/v1/user", token).await.json().await.unwrap();
    assert_eq!(user["user_metadata"], data);
}

/// `PUT /admin/users/{id}` checks that the new address is free before it writes; another
/// transaction taking the address in between made the write hit the unique index, a 500
/// (seed 44711731). Now it is the same 422 as the check's.
#[tokio::test]
async fn an_admin_update_that_loses_the_race_for_an_address_is_a_422() {
    use sqlx::Connection;
    let app = TestApp::spawn().await;
    let admin = app.api_key("service_role");
    let first = app.sign_up(&random_email(), "a-long-password").await;
    let second = app.sign_up(&random_email(), "a-long-password").await;
    let wanted = random_email();

    // Another transaction takes the address and holds it, uncommitted: the check cannot see it.
    let mut other = app.db().await;
    let mut tx = other.begin().await.unwrap();
    sqlx::query("update _auth_users set email = $1 where id = $2::uuid")
        .bind(&wanted)
        .bind(second["user"]["id"].as_str().unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    let path = format!("/auth/v1/admin/users/{}", first["user"]["id"].as_str().unwrap());
    let update = app
        .request(Method::PUT, &path)
        .bearer_auth(&admin)
        .json(&json!({ "email": wanted }))
        .send();
    let commit = async {
        // Long enough for the update to pass its check and wait on the index.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        tx.commit().await.unwrap();
    };
    let (response, ()) = tokio::join!(update, commit);
    assert_error(response.unwrap(), 422, "email_exists").await;
}
