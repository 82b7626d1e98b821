//! `POST /otp` with a phone number, and `POST /verify` with `type: sms`: the codes' protections.

use std::time::Duration;

use serde_json::json;

use super::{TEST_CODE, TEST_NUMBER, confirmed_phone_user, phone_app, random_number, verify};
use crate::helpers::{assert_error, expect_session};

#[tokio::test]
async fn a_known_number_signs_in_with_a_texted_code() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    let first = confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let response = app
        .post_json("/auth/v1/otp", &json!({"phone": format!("+{phone}")}))
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["message_id"].as_str().unwrap().starts_with("SM"), "{body}");
    let session = expect_session(verify(&app, "sms", &phone, &fake.last_code(&phone)).await).await;
    assert_eq!(session["user"]["id"], first["user"]["id"]);
    let amr = &session["user"]["app_metadata"];
    assert_eq!(amr["provider"], "phone");
}

#[tokio::test]
async fn an_unknown_number_is_signed_up_unless_create_user_is_false() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    let refused = app
        .post_json("/auth/v1/otp", &json!({"phone": phone, "create_user": false}))
        .await;
    let body = assert_error(refused, 422, "otp_disabled").await;
    assert_eq!(body["msg"], "Signups not allowed for otp");
    assert!(fake.texts().is_empty());

    let response = app
        .post_json("/auth/v1/otp", &json!({"phone": phone, "data": {"plan": "free"}}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({}));
    let session = expect_session(verify(&app, "sms", &phone, &fake.last_code(&phone)).await).await;
    assert_eq!(session["user"]["phone"], phone.as_str());
    assert_eq!(session["user"]["user_metadata"]["plan"], "free");
    // No password was set: none signs in.
    let password = app
        .post_json(
            "/auth/v1/token?grant_type=password",
            &json!({"phone": phone, "password": ""}),
        )
        .await;
    assert_eq!(password.status(), 400);
}

#[tokio::test]
async fn wrong_replayed_foreign_and_expired_codes_are_refused() {
    let (app, fake) = phone_app(&[("GOTRUE_SMS_OTP_EXP", "2")]).await;
    let (phone, other) = (random_number(), random_number());
    confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    confirmed_phone_user(&app, &fake, &other, "a-long-password").await;
    app.post_json("/auth/v1/otp", &json!({"phone": phone})).await;
    let code = fake.last_code(&phone);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = assert_error(verify(&app, "sms", &phone, wrong).await, 403, "otp_expired").await;
    assert_eq!(refused["msg"], "Token has expired or is invalid");
    // The code is good only for the number it went to.
    assert_error(verify(&app, "sms", &other, &code).await, 403, "otp_expired").await;
    // Nor for another type.
    assert_error(verify(&app, "phone_change", &phone, &code).await, 403, "otp_expired").await;
    expect_session(verify(&app, "sms", &phone, &code).await).await;
    // Used once.
    assert_error(verify(&app, "sms", &phone, &code).await, 403, "otp_expired").await;

    app.post_json("/auth/v1/otp", &json!({"phone": phone})).await;
    let late = fake.last_code(&phone);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_error(verify(&app, "sms", &phone, &late).await, 403, "otp_expired").await;
}

#[tokio::test]
async fn a_code_dies_after_too_many_wrong_guesses() {
    let (app, fake) = phone_app(&[("LATCHKEY_OTP_MAX_ATTEMPTS", "3")]).await;
    let phone = random_number();
    confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    app.post_json("/auth/v1/otp", &json!({"phone": phone})).await;
    let code = fake.last_code(&phone);
    let guesses: Vec<String> = (1..)
        .map(|n| format!("{n:06}"))
        .filter(|g| *g != code)
        .take(3)
        .collect();
    for guess in &guesses {
        assert_error(verify(&app, "sms", &phone, guess).await, 403, "otp_expired").await;
    }
    assert_error(verify(&app, "sms", &phone, &code).await, 403, "otp_expired").await;
}

#[tokio::test]
async fn codes_go_out_no_more_often_than_the_max_frequency() {
    let (app, fake) = phone_app(&[("GOTRUE_SMS_MAX_FREQUENCY", "60s")]).await;
    let phone = random_number();
    assert_eq!(
        app.post_json("/auth/v1/otp", &json!({"phone": phone})).await.status(),
        200
    );
    let again = app.post_json("/auth/v1/otp", &json!({"phone": phone})).await;
    let body = assert_error(again, 429, "over_sms_send_rate_limit").await;
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("For security purposes, you can only request this after"),
        "{body}"
    );
    assert_eq!(fake.count_to(&phone), 1);
}

#[tokio::test]
async fn test_numbers_get_their_fixed_code_and_no_text() {
    let (app, fake) = phone_app(&[]).await;
    let response = app.post_json("/auth/v1/otp", &json!({"phone": TEST_NUMBER})).await;
    assert_eq!(response.status(), 200);
    expect_session(verify(&app, "sms", TEST_NUMBER, TEST_CODE).await).await;
    let response = app.post_json("/auth/v1/otp", &json!({"phone": TEST_NUMBER})).await;
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["message_id"],
        "test-otp"
    );
    expect_session(verify(&app, "sms", TEST_NUMBER, TEST_CODE).await).await;
    assert!(fake.texts().is_empty(), "nothing is sent to a test number");
}

#[tokio::test]
async fn test_codes_stop_working_after_their_validity() {
    let (app, fake) = phone_app(&[("GOTRUE_SMS_TEST_OTP_VALID_UNTIL", "2020-01-01T00:00:00Z")]).await;
    assert_eq!(
        app.post_json("/auth/v1/otp", &json!({"phone": TEST_NUMBER}))
            .await
            .status(),
        200
    );
    assert_eq!(fake.count_to(TEST_NUMBER), 1, "a real code is texted");
    assert_error(verify(&app, "sms", TEST_NUMBER, TEST_CODE).await, 403, "otp_expired").await;
    expect_session(verify(&app, "sms", TEST_NUMBER, &fake.last_code(TEST_NUMBER)).await).await;
}

#[tokio::test]
async fn otp_input_is_judged_as_gotrue_judges_it() {
    let (app, fake) = phone_app(&[]).await;
    let bad = app.post_json("/auth/v1/otp", &json!({"phone": "555-0100"})).await;
    assert_error(bad, 400, "validation_failed").await;
    let channel = app
        .post_json("/auth/v1/otp", &json!({"phone": random_number(), "channel": "fax"}))
        .await;
    assert_error(channel, 400, "validation_failed").await;
    let email_channel = app
        .post_json("/auth/v1/otp", &json!({"email": "a@example.com", "channel": "sms"}))
        .await;
    let body = assert_error(email_channel, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Channel should only be specified with Phone OTP");
    let verify_bad = verify(&app, "sms", "not-a-number", "123456").await;
    assert_error(verify_bad, 400, "validation_failed").await;
    // WhatsApp goes through Twilio.
    let phone = random_number();
    let whatsapp = app
        .post_json("/auth/v1/otp", &json!({"phone": phone, "channel": "whatsapp"}))
        .await;
    assert_eq!(whatsapp.status(), 200);
    assert_eq!(fake.texts().last().unwrap().to, format!("whatsapp:+{phone}"));
}
