//! `POST /token?grant_type=password` with a phone number.

use serde_json::json;

use super::{confirmed_phone_user, phone_app, random_number};
use crate::helpers::{TestApp, assert_error, expect_session};

#[tokio::test]
async fn a_confirmed_number_signs_in_with_its_password() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    let first = confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let body = json!({"phone": format!("+{phone}"), "password": "a-long-password"});
    let session = expect_session(app.post_json("/auth/v1/token?grant_type=password", &body).await).await;
    assert_eq!(session["user"]["id"], first["user"]["id"]);
    let wrong = json!({"phone": phone, "password": "not-the-password"});
    assert_error(
        app.post_json("/auth/v1/token?grant_type=password", &wrong).await,
        400,
        "invalid_credentials",
    )
    .await;
    // An unknown or malformed number gets the same answer.
    for unknown in [random_number(), "not-a-number".to_owned()] {
        let body = json!({"phone": unknown, "password": "a-long-password"});
        assert_error(
            app.post_json("/auth/v1/token?grant_type=password", &body).await,
            400,
            "invalid_credentials",
        )
        .await;
    }
}

#[tokio::test]
async fn phone_password_sign_in_is_refused_while_the_phone_provider_is_off() {
    let app = TestApp::spawn().await;
    let body = json!({"phone": random_number(), "password": "a-long-password"});
    let refused = app.post_json("/auth/v1/token?grant_type=password", &body).await;
    let body = assert_error(refused, 422, "phone_provider_disabled").await;
    assert_eq!(body["msg"], "Phone logins are disabled");
}
