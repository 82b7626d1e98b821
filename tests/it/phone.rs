//! Phone sign-in (issue #19): sign-up with a password (`phone/signup.rs`), sign-in by code and
//! `/verify` with the abuse cases (`phone/otp.rs`), password sign-in (`phone/password.rs`),
//! `/resend` (`phone/resend.rs`), phone change and reauthentication (`phone/change.rs`), the
//! admin API (`phone/admin.rs`), settings, budgets and logs (`phone/operations.rs`).
//!
//! Texts go to a fake of Twilio's Messages API on 127.0.0.1:0 (`LATCHKEY_SMS_PROVIDER_URL`),
//! which records each request (the real gateway's form: `To`, `Body`, Basic auth) and can be
//! told to refuse; codes are read from the recorded texts, as a phone's owner would.

mod admin;
mod change;
mod operations;
mod otp;
mod password;
mod resend;
mod signup;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_session};

pub const ACCOUNT_SID: &str = "ACtest0000000000000000000000000000";
const AUTH_TOKEN: &str = "twilio-auth-token-for-tests";
/// A test number (`GOTRUE_SMS_TEST_OTP`) and its fixed code.
pub const TEST_NUMBER: &str = "15550001111";
pub const TEST_CODE: &str = "424242";

/// One text the fake received.
#[derive(Debug, Clone)]
pub struct Text {
    /// `To` as Twilio gets it (`+<digits>`).
    pub to: String,
    pub body: String,
    pub authorized: bool,
}

#[derive(Default)]
struct Inner {
    texts: Vec<Text>,
    refuse: bool,
}

/// The fake Twilio Messages API.
#[derive(Clone, Default)]
pub struct FakeTwilio(Arc<Mutex<Inner>>);

impl FakeTwilio {
    pub async fn start() -> (FakeTwilio, String) {
        let fake = FakeTwilio::default();
        let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json");
        let app = Router::new().route(&path, post(messages)).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, url)
    }

    pub fn texts(&self) -> Vec<Text> {
        self.0.lock().unwrap().texts.clone()
    }

    /// Answer every message from now on with Twilio's 400 refusal.
    pub fn refuse(&self, refuse: bool) {
        self.0.lock().unwrap().refuse = refuse;
    }

    /// The code in the last text to `number` (digits).
    pub fn last_code(&self, number: &str) -> String {
        let to = format!("+{number}");
        let text = self
            .texts()
            .into_iter()
            .rev()
            .find(|t| t.to == to)
            .unwrap_or_else(|| panic!("no text to {number}"));
        text.body.trim_start_matches("Your code is ").to_owned()
    }

    pub fn count_to(&self, number: &str) -> usize {
        let to = format!("+{number}");
        self.texts().iter().filter(|t| t.to == to).count()
    }
}

async fn messages(
    State(fake): State<FakeTwilio>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"));
    let mut inner = fake.0.lock().unwrap();
    if inner.refuse {
        let refusal = json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400});
        return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
    }
    inner.texts.push(Text {
        to: form.get("To").cloned().unwrap_or_default(),
        body: form.get("Body").cloned().unwrap_or_default(),
        authorized,
    });
    let sid = format!("SM{:032}", inner.texts.len());
    (StatusCode::CREATED, axum::Json(json!({"sid": sid, "status": "queued"}))).into_response()
}

/// A server with phone sign-in on, texting through the fake; `extra` overrides.
pub async fn phone_app(extra: &[(&str, &str)]) -> (TestApp, FakeTwilio) {
    let (fake, url) = FakeTwilio::start().await;
    let test_otp = format!("{TEST_NUMBER}:{TEST_CODE}");
    let mut vars = vec![
        ("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"),
        ("GOTRUE_SMS_PROVIDER", "twilio"),
        ("GOTRUE_SMS_TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("GOTRUE_SMS_TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID", "MGtest"),
        ("LATCHKEY_SMS_PROVIDER_URL", url.as_str()),
        ("GOTRUE_SMS_TEST_OTP", test_otp.as_str()),
        ("GOTRUE_SMS_MAX_FREQUENCY", "0s"),
        ("GOTRUE_RATE_LIMIT_VERIFY", "100000"),
        ("GOTRUE_RATE_LIMIT_OTP", "100000"),
        ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "100000"),
        ("GOTRUE_RATE_LIMIT_SMS_SENT", "100000"),
    ];
    vars.extend_from_slice(extra);
    (TestApp::spawn_with(&vars).await, fake)
}

/// A fresh random number (E.164 digits) in a range no test fixes.
pub fn random_number() -> String {
    format!("1555{:07}", rand::random::<u32>() % 10_000_000)
}

/// `POST /verify` with a texted code.
pub async fn verify(app: &TestApp, kind: &str, phone: &str, code: &str) -> reqwest::Response {
    app.post_json("/auth/v1/verify", &json!({"type": kind, "phone": phone, "token": code}))
        .await
}

/// Signs a number up with a password and confirms it with the texted code; the session.
pub async fn confirmed_phone_user(app: &TestApp, fake: &FakeTwilio, phone: &str, password: &str) -> Value {
    let signed_up = app
        .post_json("/auth/v1/signup", &json!({"phone": phone, "password": password}))
        .await;
    assert_eq!(signed_up.status(), 200);
    expect_session(verify(app, "sms", phone, &fake.last_code(phone)).await).await
}
