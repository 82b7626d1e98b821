//! Each provider through the real server: `POST /otp` with a phone number texts a code that
//! the provider's fake receives and `/verify` accepts; the provider's refusal, or a provider
//! that hangs, is GoTrue's `422 sms_send_failed` with nothing half-written.

use std::time::{Duration, Instant};

use serde_json::json;

use super::NUMBER;
use crate::fake_sms::{FakeSms, Mode};
use crate::helpers::{TestApp, assert_error, expect_session};

const PROVIDERS: [&str; 5] = ["twilio", "twilio_verify", "messagebird", "textlocal", "vonage"];

async fn app_for(fake: &FakeSms, provider: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = fake.vars(provider);
    vars.push(("GOTRUE_EXTERNAL_PHONE_ENABLED".into(), "true".into()));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_with(&borrowed).await
}

/// Users and codes stored for `number`.
async fn stored_for(app: &TestApp, number: &str) -> (i64, i64) {
    sqlx::query_as(
        "select (select count(*) from _auth_users where phone = $1), \
                (select count(*) from _auth_one_time_tokens where relates_to = $1)",
    )
    .bind(number)
    .fetch_one(&mut app.db().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_provider_texts_the_otp_code_that_verify_accepts() {
    for provider in PROVIDERS {
        let fake = FakeSms::start().await;
        let app = app_for(&fake, provider, &[]).await;
        let sent = app
            .post_json("/auth/v1/otp", &json!({ "phone": format!("+{NUMBER}") }))
            .await;
        assert_eq!(sent.status(), 200, "{provider}: {}", sent.text().await.unwrap());
        assert_eq!(fake.received().len(), 1, "{provider}");
        let code = fake.code_for(NUMBER).unwrap_or_else(|| panic!("{provider}: no code"));
        let verify = json!({ "type": "sms", "phone": NUMBER, "token": code });
        let session = expect_session(app.post_json("/auth/v1/verify", &verify).await).await;
        assert_eq!(session["user"]["phone"], NUMBER, "{provider}");
        if provider == "twilio_verify" {
            assert!(
                fake.last().path.ends_with("/VerificationCheck"),
                "Twilio checks its own code"
            );
        }
    }
}

#[tokio::test]
async fn a_refusing_provider_is_sms_send_failed_and_writes_nothing() {
    for provider in PROVIDERS {
        let fake = FakeSms::start().await;
        let app = app_for(&fake, provider, &[]).await;
        fake.set_mode(Mode::Refuse);
        let sent = app
            .post_json("/auth/v1/otp", &json!({ "phone": format!("+{NUMBER}") }))
            .await;
        let body = assert_error(sent, 422, "sms_send_failed").await;
        assert!(
            !body.to_string().contains(NUMBER),
            "{provider}: the number unmasked in {body}"
        );
        assert_eq!(
            stored_for(&app, NUMBER).await,
            (0, 0),
            "{provider}: a user or a code was left"
        );

        // With the provider back, the same request goes through.
        fake.set_mode(Mode::Accept);
        let sent = app
            .post_json("/auth/v1/otp", &json!({ "phone": format!("+{NUMBER}") }))
            .await;
        assert_eq!(sent.status(), 200, "{provider}");
        assert_eq!(stored_for(&app, NUMBER).await, (1, 1), "{provider}");
    }
}

#[tokio::test]
async fn a_provider_that_hangs_is_cut_off_with_sms_send_failed() {
    let fake = FakeSms::start().await;
    let app = app_for(&fake, "twilio", &[("GOTRUE_INTERNAL_HTTP_TIMEOUT", "1s")]).await;
    fake.set_mode(Mode::Hang);
    let started = Instant::now();
    let sent = app
        .post_json("/auth/v1/otp", &json!({ "phone": format!("+{NUMBER}") }))
        .await;
    assert_error(sent, 422, "sms_send_failed").await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(stored_for(&app, NUMBER).await, (0, 0));
}

/// The binary's Prometheus page counts texts sent and failed, by provider.
#[tokio::test]
async fn texts_sent_and_failed_are_counted_by_provider() {
    let fake = FakeSms::start().await;
    let database = crate::helpers::fresh_database().await;
    let mut vars = fake.vars("vonage");
    vars.extend(
        [
            ("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"),
            ("GOTRUE_METRICS_ENABLED", "true"),
            ("GOTRUE_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = crate::binary::Server::start(database.url(), &borrowed);
    let line = server.wait_for_line(|line| line.contains("Prometheus metrics")).await;
    let announced: serde_json::Value = serde_json::from_str(&line).unwrap();
    let metrics_url = format!("http://{}/metrics", announced["address"].as_str().unwrap());
    let client = reqwest::Client::new();
    let otp = |number: &str| client.post(server.url("/otp")).json(&json!({ "phone": number })).send();
    assert_eq!(otp("+15555550123").await.unwrap().status(), 200);
    fake.set_mode(Mode::Refuse);
    assert_eq!(otp("+15555550124").await.unwrap().status(), 422);

    let page = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    for series in [
        r#"latchkey_sms_sent_total{provider="vonage"} 1"#,
        r#"latchkey_sms_failed_total{provider="vonage"} 1"#,
    ] {
        assert!(page.lines().any(|line| line == series), "no {series} in\n{page}");
    }
}
