//! `POST /signup` with a phone number and a password.

use serde_json::json;
use sqlx::Row;

use super::{confirmed_phone_user, phone_app, random_number, verify};
use crate::helpers::{TestApp, assert_error, expect_session};

#[tokio::test]
async fn a_phone_sign_up_waits_for_the_texted_code_then_signs_in() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": format!("+{} {}", &phone[..1], &phone[1..]), "password": "a-long-password", "data": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["phone"], phone.as_str(), "stored as E.164 digits without +");
    assert!(user["phone_confirmed_at"].is_null());
    assert!(user["confirmation_sent_at"].is_string());
    assert_eq!(user["app_metadata"]["provider"], "phone");
    assert_eq!(user["user_metadata"]["name"], "Ada");
    assert_eq!(user["identities"][0]["provider"], "phone");
    let texts = fake.texts();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].to, format!("+{phone}"));
    assert!(texts[0].authorized, "Basic auth with the account SID and token");
    let code = fake.last_code(&phone);
    assert_eq!(code.len(), 6);
    assert_eq!(
        texts[0].body,
        format!("Your code is {code}"),
        "GOTRUE_SMS_TEMPLATE's default"
    );
    assert!(code.bytes().all(|b| b.is_ascii_digit()));

    // Unconfirmed: the password does not sign in yet.
    let early = app
        .post_json(
            "/auth/v1/token?grant_type=password",
            &json!({"phone": phone, "password": "a-long-password"}),
        )
        .await;
    assert_error(early, 400, "phone_not_confirmed").await;

    let session = expect_session(verify(&app, "sms", &phone, &code).await).await;
    assert_eq!(session["user"]["phone"], phone.as_str());
    assert!(session["user"]["phone_confirmed_at"].is_string());
    assert_eq!(
        session["user"]["identities"][0]["identity_data"]["phone_verified"],
        true
    );
    // The code is stored hashed only.
    let mut db = app.db().await;
    let stored: i64 = sqlx::query("select count(*) from _auth_one_time_tokens")
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "used codes are gone");
}

#[tokio::test]
async fn autoconfirm_signs_a_phone_up_at_once_without_a_text() {
    let (app, fake) = phone_app(&[("GOTRUE_SMS_AUTOCONFIRM", "true")]).await;
    let phone = random_number();
    let body = json!({"phone": phone, "password": "a-long-password"});
    let session = expect_session(app.post_json("/auth/v1/signup", &body).await).await;
    assert!(session["user"]["phone_confirmed_at"].is_string());
    assert!(fake.texts().is_empty());
    let again = app.post_json("/auth/v1/signup", &body).await;
    assert_error(again, 422, "user_already_exists").await;
}

#[tokio::test]
async fn bad_numbers_and_channels_are_refused_as_gotrue_refuses_them() {
    let (app, fake) = phone_app(&[]).await;
    for bad in ["+1-555-000-1234", "0123456789", "12345678901234567", "phone", "+"] {
        let response = app
            .post_json("/auth/v1/signup", &json!({"phone": bad, "password": "a-long-password"}))
            .await;
        let body = assert_error(response, 400, "validation_failed").await;
        assert_eq!(body["msg"], "Invalid phone number format (E.164 required)", "{bad}");
    }
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": random_number(), "password": "a-long-password", "channel": "pigeon"}),
        )
        .await;
    assert_error(response, 400, "validation_failed").await;
    assert!(fake.texts().is_empty());
}

#[tokio::test]
async fn phone_sign_up_is_refused_while_the_phone_provider_is_off() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": random_number(), "password": "a-long-password"}),
        )
        .await;
    let body = assert_error(response, 400, "phone_provider_disabled").await;
    assert_eq!(body["msg"], "Phone signups are disabled");
}

#[tokio::test]
async fn a_registered_number_gets_a_made_up_user_and_no_text() {
    let (app, fake) = phone_app(&[("GOTRUE_MAILER_AUTOCONFIRM", "false")]).await;
    let phone = random_number();
    let real = confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let sent = fake.texts().len();
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": phone, "password": "another-password"}),
        )
        .await;
    assert_eq!(response.status(), 200, "the same answer as for a new number");
    let fake_user: serde_json::Value = response.json().await.unwrap();
    assert_ne!(fake_user["id"], real["user"]["id"]);
    assert_eq!(fake_user["phone"], phone.as_str());
    assert!(fake_user["phone_confirmed_at"].is_null());
    assert_eq!(fake.texts().len(), sent, "no text to the owner");
}

#[tokio::test]
async fn a_failed_text_leaves_no_user_and_no_code() {
    let (app, fake) = phone_app(&[]).await;
    fake.refuse(true);
    let phone = random_number();
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": phone, "password": "a-long-password"}),
        )
        .await;
    let body = assert_error(response, 422, "sms_send_failed").await;
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Error sending confirmation OTP to provider"),
        "{body}"
    );
    let mut db = app.db().await;
    for table in ["_auth_users", "_auth_identities", "_auth_one_time_tokens"] {
        let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
            .fetch_one(&mut db)
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 0, "{table}");
    }
    // Retried once the gateway is back, the sign-up goes through.
    fake.refuse(false);
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": phone, "password": "a-long-password"}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn someone_elses_earlier_sign_up_loses_its_password_when_the_owner_confirms() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    // An attacker signs the victim's number up with their own password, never confirms it.
    let attacker = json!({"phone": phone, "password": "attackers-password"});
    assert_eq!(app.post_json("/auth/v1/signup", &attacker).await.status(), 200);
    // The owner signs in by code: the confirmation code goes to their phone.
    assert_eq!(
        app.post_json("/auth/v1/otp", &json!({"phone": phone})).await.status(),
        200
    );
    expect_session(verify(&app, "sms", &phone, &fake.last_code(&phone)).await).await;
    let stolen = app.post_json("/auth/v1/token?grant_type=password", &attacker).await;
    assert_error(stolen, 400, "invalid_credentials").await;
}
