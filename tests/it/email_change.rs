//! Email change: secure (both addresses confirm) and single confirmation, over links and codes.

use serde_json::{Value, json};
use url::Url;

use crate::email::{confirmed_user, fragment, location, mail_app, query};
use crate::helpers::{assert_error, random_email};

#[tokio::test]
async fn secure_email_change_needs_both_addresses() {
    let (app, sink) = mail_app(&[]).await;
    let (old, new) = (random_email(), random_email());
    let tokens = confirmed_user(&app, &sink, &old, "secret-pw").await;
    let access = &tokens["access_token"];

    let response = app.put_json_auth("/user", access, &json!({"email": new})).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], old);
    assert_eq!(user["new_email"], new);
    assert!(user["email_change_sent_at"].is_string());
    let to_new = sink.last_to(&new).await;
    let to_old = sink.last_to(&old).await;
    assert_eq!(to_new.subject(), "Confirm your new email address");
    assert!(to_old.text().contains(&new) && to_old.link().contains("type=email_change"));
    assert_ne!(to_new.code(), to_old.code());

    let first = location(&app.client.get(to_old.link()).send().await.unwrap());
    assert_eq!(
        fragment(&first)["message"],
        "Confirmation link accepted. Please proceed to confirm link sent to the other email"
    );
    let me: Value = app.get_auth("/user", access).await.json().await.unwrap();
    assert_eq!(me["email"], old, "not changed after one confirmation");

    let response = app
        .post_json(
            "/verify",
            &json!({"type": "email_change", "email": new, "token": to_new.code()}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], new);
    assert!(session["user"].get("new_email").is_none());
    assert_eq!(session["user"]["identities"][0]["identity_data"]["email"], new);
    assert_eq!(app.sign_in(&new, "secret-pw").await.status(), 200);
    assert_error(app.sign_in(&old, "secret-pw").await, 400, "invalid_credentials").await;
}

#[tokio::test]
async fn email_change_first_leg_over_post_and_single_confirmation_when_not_secure() {
    let (app, sink) = mail_app(&[]).await;
    let (old, new) = (random_email(), random_email());
    let tokens = confirmed_user(&app, &sink, &old, "secret-pw").await;
    app.put_json_auth("/user", &tokens["access_token"], &json!({"email": new}))
        .await;
    let hash = query(&Url::parse(&sink.last_to(&old).await.link()).unwrap())["token"].clone();
    let response = app
        .post_json("/verify", &json!({"type": "email_change", "token_hash": hash}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"msg": "Confirmation link accepted. Please proceed to confirm link sent to the other email", "code": "200"})
    );

    let (app, sink) = mail_app(&[("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", "false")]).await;
    let (old, new) = (random_email(), random_email());
    let tokens = confirmed_user(&app, &sink, &old, "secret-pw").await;
    app.put_json_auth("/user", &tokens["access_token"], &json!({"email": new}))
        .await;
    assert_eq!(
        sink.to(&old).len(),
        1,
        "only the confirmation, nothing to the old address"
    );
    let done = fragment(&location(
        &app.client.get(sink.last_to(&new).await.link()).send().await.unwrap(),
    ));
    assert_eq!(done["type"], "email_change");
    let me: Value = app.get_auth("/user", &done["access_token"]).await.json().await.unwrap();
    assert_eq!(me["email"], new);
}
