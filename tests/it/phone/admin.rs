//! The admin API with `phone` and `phone_confirm`.

use reqwest::Method;
use serde_json::{Value, json};

use super::{phone_app, random_number};
use crate::helpers::{TestApp, assert_error, expect_session};

async fn admin(app: &TestApp, method: Method, path: &str, body: Value) -> reqwest::Response {
    app.request(method, path)
        .bearer_auth(app.api_key("service_role"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_creates_and_changes_phone_users() {
    let (app, fake) = phone_app(&[]).await;
    let phone = random_number();
    let created = admin(
        &app,
        Method::POST,
        "/admin/users",
        json!({"phone": format!("+{phone}"), "password": "a-long-password", "phone_confirm": true}),
    )
    .await;
    assert_eq!(created.status(), 200);
    let user: Value = created.json().await.unwrap();
    assert_eq!(user["phone"], phone.as_str());
    assert!(user["phone_confirmed_at"].is_string());
    assert_eq!(user["identities"][0]["provider"], "phone");
    let sign_in = json!({"phone": phone, "password": "a-long-password"});
    expect_session(app.post_json("/auth/v1/token?grant_type=password", &sign_in).await).await;

    // Unconfirmed: no password sign-in until the number is proven.
    let other = random_number();
    let pending = admin(
        &app,
        Method::POST,
        "/admin/users",
        json!({"phone": other, "password": "a-long-password"}),
    )
    .await;
    let pending: Value = pending.json().await.unwrap();
    assert!(pending["phone_confirmed_at"].is_null());
    let refused = app
        .post_json(
            "/auth/v1/token?grant_type=password",
            &json!({"phone": other, "password": "a-long-password"}),
        )
        .await;
    assert_error(refused, 400, "phone_not_confirmed").await;

    let taken = admin(&app, Method::POST, "/admin/users", json!({"phone": phone})).await;
    assert_error(taken, 422, "phone_exists").await;
    let bad = admin(&app, Method::POST, "/admin/users", json!({"phone": "+1 (555) 0100"})).await;
    assert_error(bad, 400, "validation_failed").await;

    let id = pending["id"].as_str().unwrap();
    let newer = random_number();
    let updated = admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        json!({"phone": newer, "phone_confirm": true}),
    )
    .await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["phone"], newer.as_str());
    assert!(updated["phone_confirmed_at"].is_string());
    let taken = admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        json!({"phone": phone}),
    )
    .await;
    assert_error(taken, 422, "phone_exists").await;
    assert!(fake.texts().is_empty(), "the admin API sends no text");
}
