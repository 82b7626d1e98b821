//! `/settings`, the server's SMS budget, and what reaches the log.

use serde_json::{Value, json};

use super::{Phones, TEST_NUMBER, phone_app, random_number};
use crate::binary::Server;
use crate::fake_sms::FakeSms;
use crate::helpers::{TestApp, assert_error, fresh_database};

#[tokio::test]
async fn settings_report_the_phone_provider() {
    let (app, _fake) = phone_app(&[("GOTRUE_SMS_AUTOCONFIRM", "true")]).await;
    let settings: Value = app.get("/auth/v1/settings").await.json().await.unwrap();
    assert_eq!(settings["external"]["phone"], true);
    assert_eq!(settings["phone_autoconfirm"], true);
    assert_eq!(settings["sms_provider"], "twilio");
    let off = TestApp::spawn().await;
    let settings: Value = off.get("/auth/v1/settings").await.json().await.unwrap();
    assert_eq!(settings["external"]["phone"], false);
}

#[tokio::test]
async fn the_servers_sms_budget_is_shared_by_every_number() {
    let (app, fake) = phone_app(&[("GOTRUE_RATE_LIMIT_SMS_SENT", "2")]).await;
    for _ in 0..2 {
        let response = app.post_json("/auth/v1/otp", &json!({"phone": random_number()})).await;
        assert_eq!(response.status(), 200);
    }
    let phone = random_number();
    let refused = app.post_json("/auth/v1/otp", &json!({"phone": phone})).await;
    let body = assert_error(refused, 429, "over_sms_send_rate_limit").await;
    assert_eq!(body["msg"], "SMS rate limit exceeded");
    assert_eq!(fake.texts().len(), 2);
    // Nothing was left of the refused sign-up.
    let mut db = app.db().await;
    let users: i64 = sqlx::query_scalar("select count(*) from _auth_users where phone = $1")
        .bind(&phone)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 0);
    // Test numbers send nothing, so they take nothing from the budget.
    let test = app.post_json("/auth/v1/otp", &json!({"phone": TEST_NUMBER})).await;
    assert_eq!(test.status(), 200);
}

#[tokio::test]
async fn codes_and_texts_never_reach_the_log_and_numbers_are_masked() {
    let fake = Phones(FakeSms::start().await);
    let database = fresh_database().await;
    let provider_vars = fake.0.vars("twilio");
    let mut vars: Vec<(&str, &str)> = provider_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.extend([("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"), ("GOTRUE_LOG_LEVEL", "debug")]);
    let server = Server::start(database.url(), &vars);
    let client = reqwest::Client::new();
    let phone = random_number();
    let sent = client
        .post(server.url("/otp"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let code = fake.last_code(&phone);
    let verified = client
        .post(server.url("/verify"))
        .json(&json!({"type": "sms", "phone": phone, "token": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    fake.refuse(true);
    let failed = client
        .post(server.url("/otp"))
        .json(&json!({"phone": random_number()}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 422);
    server.wait_for_line(|line| line.contains("sms not sent")).await;
    let log = server.stderr().join("\n");
    assert!(log.contains("sms sent"), "the send is logged:\n{log}");
    assert!(
        log.contains(&latchkey::sms::mask_number(&phone)),
        "masked number:\n{log}"
    );
    for secret in ["Your code is", crate::fake_sms::TWILIO_AUTH_TOKEN] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
    }
    // The number and the code as whole runs of digits (a timestamp may hold the same digits).
    let runs: Vec<&str> = log.split(|c: char| !c.is_ascii_digit()).collect();
    for secret in [phone.as_str(), code.as_str()] {
        assert!(!runs.contains(&secret), "{secret} reached the log:\n{log}");
    }
}
