//! Phone sign-in (issue #19): sign-up with a password (`phone/signup.rs`), sign-in by code and
//! `/verify` with the abuse cases (`phone/otp.rs`), password sign-in (`phone/password.rs`),
//! `/resend` (`phone/resend.rs`), the send-SMS hook and Twilio Verify (`phone/gateways.rs`), phone change and reauthentication (`phone/change.rs`), the
//! admin API (`phone/admin.rs`), settings, budgets and logs (`phone/operations.rs`).
//!
//! Texts go to the fake SMS providers of `crate::fake_sms` on 127.0.0.1:0
//! (`LATCHKEY_SMS_PROVIDER_URL`), which record each request (the real gateway's form: `To`,
//! `Body`, Basic auth) and can be told to refuse; codes are read from what they received, as
//! a phone's owner would.

mod admin;
mod change;
mod gateways;
mod operations;
mod otp;
mod password;
mod resend;
mod signup;

use serde_json::{Value, json};

use crate::fake_sms::{FakeSms, Mode};
use crate::helpers::{TestApp, expect_session};

/// A test number (`GOTRUE_SMS_TEST_OTP`) and its fixed code.
pub const TEST_NUMBER: &str = "15550001111";
pub const TEST_CODE: &str = "424242";

/// One text the fake received.
#[derive(Debug, Clone)]
pub struct Text {
    /// `To` as Twilio gets it (`+<digits>`, `whatsapp:+<digits>`).
    pub to: String,
    pub body: String,
    /// Basic auth with the configured account SID and token.
    pub authorized: bool,
}

/// The shared fake SMS provider (`crate::fake_sms`), seen as a phone's owner sees it.
#[derive(Clone)]
pub struct Phones(pub FakeSms);

impl Phones {
    pub fn texts(&self) -> Vec<Text> {
        let expected = Some((
            crate::fake_sms::TWILIO_ACCOUNT_SID.to_owned(),
            crate::fake_sms::TWILIO_AUTH_TOKEN.to_owned(),
        ));
        self.0
            .received()
            .iter()
            .map(|r| Text {
                to: r.field("To").to_owned(),
                body: r.field("Body").to_owned(),
                authorized: r.basic_auth() == expected,
            })
            .collect()
    }

    /// Answer every message from now on with the provider's refusal.
    pub fn refuse(&self, refuse: bool) {
        self.0.set_mode(if refuse { Mode::Refuse } else { Mode::Accept });
    }

    /// The code last texted to `number` (digits).
    pub fn last_code(&self, number: &str) -> String {
        self.0.code_for(number).unwrap_or_else(|| panic!("no text to {number}"))
    }

    pub fn count_to(&self, number: &str) -> usize {
        let to = format!("+{number}");
        self.texts().iter().filter(|t| t.to == to).count()
    }
}

/// A server with phone sign-in on, texting through the fake's Twilio (or `provider`);
/// `extra` overrides.
pub async fn phone_app(extra: &[(&str, &str)]) -> (TestApp, Phones) {
    phone_app_with("twilio", extra).await
}

pub async fn phone_app_with(provider: &str, extra: &[(&str, &str)]) -> (TestApp, Phones) {
    let fake = FakeSms::start().await;
    let provider_vars = fake.vars(provider);
    let test_otp = format!("{TEST_NUMBER}:{TEST_CODE}");
    let mut vars: Vec<(&str, &str)> = provider_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.extend([
        ("GOTRUE_EXTERNAL_PHONE_ENABLED", "true"),
        ("GOTRUE_SMS_TEST_OTP", test_otp.as_str()),
        ("GOTRUE_SMS_MAX_FREQUENCY", "0s"),
        ("GOTRUE_RATE_LIMIT_VERIFY", "100000"),
        ("GOTRUE_RATE_LIMIT_OTP", "100000"),
        ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "100000"),
        ("GOTRUE_RATE_LIMIT_SMS_SENT", "100000"),
    ]);
    vars.extend_from_slice(extra);
    (TestApp::spawn_with(&vars).await, Phones(fake))
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
pub async fn confirmed_phone_user(app: &TestApp, fake: &Phones, phone: &str, password: &str) -> Value {
    let signed_up = app
        .post_json("/auth/v1/signup", &json!({"phone": phone, "password": password}))
        .await;
    assert_eq!(signed_up.status(), 200);
    expect_session(verify(app, "sms", phone, &fake.last_code(phone)).await).await
}

/// A wrong nonce is refused and the texted one (`nonce`) changes the password; the session
/// must be older than a day, so that a password change needs the nonce.
pub async fn change_password_with_nonce(app: &TestApp, token: &str, nonce: &str) {
    let wrong = if nonce == "000000" { "000001" } else { "000000" };
    for (given, status) in [(wrong, 422), (nonce, 200)] {
        let body = json!({"password": "a-new-password", "nonce": given});
        let response = app.put_json_auth("/auth/v1/user", token, &body).await;
        assert_eq!(response.status(), status, "nonce {given}");
    }
}
