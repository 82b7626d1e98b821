//! Phone change through `PUT /user` (proven by a code to the new number) and reauthentication
//! by text for a user without an email address.

use serde_json::json;

use super::{confirmed_phone_user, phone_app, random_number, verify};
use crate::helpers::{assert_error, expect_session};

#[tokio::test]
async fn a_new_number_replaces_the_old_one_only_once_its_code_is_verified() {
    let (app, fake) = phone_app(&[]).await;
    let (phone, new_phone) = (random_number(), random_number());
    let session = confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let token = session["access_token"].as_str().unwrap();
    let response = app
        .put_json_auth("/auth/v1/user", token, &json!({"phone": format!("+{new_phone}")}))
        .await;
    assert_eq!(response.status(), 200);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        user["phone"],
        phone.as_str(),
        "the old number stays until the new one is proven"
    );
    assert_eq!(user["new_phone"], new_phone.as_str());
    assert!(user["phone_change_sent_at"].is_string());
    assert_eq!(fake.count_to(&new_phone), 1, "the code goes to the new number");
    let code = fake.last_code(&new_phone);

    // Unverified, the new number does not sign in, the old one still does.
    let old = json!({"phone": phone, "password": "a-long-password"});
    expect_session(app.post_json("/auth/v1/token?grant_type=password", &old).await).await;
    let new = json!({"phone": new_phone, "password": "a-long-password"});
    assert_error(
        app.post_json("/auth/v1/token?grant_type=password", &new).await,
        400,
        "invalid_credentials",
    )
    .await;
    // The code proves the new number only, as a phone change.
    assert_error(verify(&app, "sms", &new_phone, &code).await, 403, "otp_expired").await;
    assert_error(verify(&app, "phone_change", &phone, &code).await, 403, "otp_expired").await;

    let changed = expect_session(verify(&app, "phone_change", &new_phone, &code).await).await;
    assert_eq!(changed["user"]["phone"], new_phone.as_str());
    assert!(changed["user"]["new_phone"].as_str().is_none_or(str::is_empty));
    let identity = &changed["user"]["identities"][0];
    assert_eq!(identity["identity_data"]["phone"], new_phone.as_str());
    expect_session(app.post_json("/auth/v1/token?grant_type=password", &new).await).await;
    assert_error(
        app.post_json("/auth/v1/token?grant_type=password", &old).await,
        400,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn a_number_another_user_has_cannot_be_taken() {
    let (app, fake) = phone_app(&[]).await;
    let (mine, theirs, free) = (random_number(), random_number(), random_number());
    let me = confirmed_phone_user(&app, &fake, &mine, "a-long-password").await;
    confirmed_phone_user(&app, &fake, &theirs, "a-long-password").await;
    let token = me["access_token"].as_str().unwrap();
    let taken = app
        .put_json_auth("/auth/v1/user", token, &json!({"phone": theirs}))
        .await;
    let body = assert_error(taken, 422, "phone_exists").await;
    assert_eq!(body["msg"], "A user with this phone number has already been registered");

    // A number that someone takes between the request and the code: refused at the code.
    let started = app.put_json_auth("/auth/v1/user", token, &json!({"phone": free})).await;
    assert_eq!(started.status(), 200);
    let code = fake.last_code(&free);
    confirmed_phone_user(&app, &fake, &free, "a-long-password").await;
    assert_error(verify(&app, "phone_change", &free, &code).await, 422, "phone_exists").await;
    let bad = app
        .put_json_auth("/auth/v1/user", token, &json!({"phone": "12-34"}))
        .await;
    assert_error(bad, 400, "validation_failed").await;
}

#[tokio::test]
async fn an_email_user_adds_a_number_and_gets_a_phone_identity() {
    let (app, fake) = phone_app(&[]).await;
    let session = app.sign_up(&crate::helpers::random_email(), "a-long-password").await;
    let token = session["access_token"].as_str().unwrap();
    let phone = random_number();
    assert_eq!(
        app.put_json_auth("/auth/v1/user", token, &json!({"phone": phone}))
            .await
            .status(),
        200
    );
    let changed = expect_session(verify(&app, "phone_change", &phone, &fake.last_code(&phone)).await).await;
    let providers: Vec<&str> = changed["user"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert!(
        providers.contains(&"phone") && providers.contains(&"email"),
        "{providers:?}"
    );
    assert!(changed["user"]["phone_confirmed_at"].is_string());
}

#[tokio::test]
async fn a_phone_only_user_reauthenticates_by_text() {
    let (app, fake) = phone_app(&[("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", "true")]).await;
    let phone = random_number();
    let session = confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let token = session["access_token"].as_str().unwrap();
    // A session older than a day needs the nonce for a new password.
    let mut db = app.db().await;
    sqlx::query("update _auth_sessions set created_at = now() - interval '25 hours'")
        .execute(&mut db)
        .await
        .unwrap();
    let needed = app
        .put_json_auth("/auth/v1/user", token, &json!({"password": "a-new-password"}))
        .await;
    assert_error(needed, 400, "reauthentication_needed").await;
    let response = app.get_auth("/auth/v1/reauthenticate", token).await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<serde_json::Value>().await.unwrap()["message_id"].is_string());
    super::change_password_with_nonce(&app, token, &fake.last_code(&phone)).await;
    let new = json!({"phone": phone, "password": "a-new-password"});
    expect_session(app.post_json("/auth/v1/token?grant_type=password", &new).await).await;
}
