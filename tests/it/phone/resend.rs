//! `POST /resend` with `type` `sms` and `phone_change`.

use serde_json::json;

use super::{confirmed_phone_user, phone_app, random_number, verify};
use crate::helpers::{assert_error, expect_session};

#[tokio::test]
async fn the_sign_up_code_is_sent_again_and_the_old_one_dies() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    let body = json!({"phone": phone, "password": "a-long-password"});
    assert_eq!(app.post_json("/auth/v1/signup", &body).await.status(), 200);
    let first = fake.last_code(&phone);
    let response = app
        .post_json("/auth/v1/resend", &json!({"type": "sms", "phone": phone}))
        .await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(answer["message_id"].is_string(), "{answer}");
    let second = fake.last_code(&phone);
    assert_eq!(fake.count_to(&phone), 2);
    if first != second {
        assert_error(verify(&app, "sms", &phone, &first).await, 403, "otp_expired").await;
    }
    expect_session(verify(&app, "sms", &phone, &second).await).await;
    // Confirmed now: nothing more to send, the same empty answer as for an unknown number.
    for number in [phone.clone(), random_number()] {
        let response = app
            .post_json("/auth/v1/resend", &json!({"type": "sms", "phone": number}))
            .await;
        assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({}));
    }
    assert_eq!(fake.count_to(&phone), 2);
}

#[tokio::test]
async fn resend_keeps_to_the_max_frequency_and_judges_its_input() {
    let (app, fake) = phone_app(&[("GOTRUE_SMS_MAX_FREQUENCY", "60s")]).await;
    let phone = random_number();
    let body = json!({"phone": phone, "password": "a-long-password"});
    assert_eq!(app.post_json("/auth/v1/signup", &body).await.status(), 200);
    let again = app
        .post_json("/auth/v1/resend", &json!({"type": "sms", "phone": phone}))
        .await;
    assert_error(again, 429, "over_sms_send_rate_limit").await;
    assert_eq!(fake.count_to(&phone), 1);
    let no_phone = app
        .post_json("/auth/v1/resend", &json!({"type": "sms", "email": "a@example.com"}))
        .await;
    let body = assert_error(no_phone, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Type provided requires a phone number");
    let bad = app
        .post_json("/auth/v1/resend", &json!({"type": "sms", "phone": "12-34"}))
        .await;
    assert_error(bad, 400, "validation_failed").await;
}

#[tokio::test]
async fn a_pending_phone_change_code_is_sent_again_to_the_new_number() {
    let (app, fake) = phone_app(&[]).await;
    let (phone, new_phone) = (random_number(), random_number());
    let session = confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let token = session["access_token"].as_str().unwrap();
    let changed = app
        .put_json_auth("/auth/v1/user", token, &json!({"phone": new_phone}))
        .await;
    assert_eq!(changed.status(), 200);
    let response = app
        .post_json("/auth/v1/resend", &json!({"type": "phone_change", "phone": phone}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.count_to(&new_phone), 2);
    let session = expect_session(verify(&app, "phone_change", &new_phone, &fake.last_code(&new_phone)).await).await;
    assert_eq!(session["user"]["phone"], new_phone.as_str());
}
