//! Multi-factor authentication (`/factors`, aal2): enrolment (`mfa/enrolment.rs`), challenges
//! and verification (`mfa/verification.rs`), what aal2 guards (`mfa/assurance.rs`), the admin's
//! factor routes (`mfa/admin.rs`), limits, cleanup and settings (`mfa/limits.rs`), races
//! (`mfa/races.rs`), the verification hook point (`mfa/hook.rs`) and an aal2-only table
//! under RLS (`mfa/rls.rs`).
//!
//! Codes are computed here from the secret `POST /factors` returns, as an authenticator app
//! would.

mod admin;
mod assurance;
mod enrolment;
mod hook;
mod limits;
mod phone;
mod races;
mod rls;
mod verification;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, Response};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};

use crate::helpers::{TestApp, expect_session, jwt_payload, random_email};

pub const PASSWORD: &str = "secret-pw-123";

pub fn access(session: &Value) -> &str {
    session["access_token"].as_str().unwrap()
}

pub use crate::helpers::refresh_token;

/// The `aal` and `amr` methods of a session's access token.
pub fn assurance(session: &Value) -> (String, Vec<String>) {
    let claims = jwt_payload(access(session));
    let methods = claims["amr"]
        .as_array()
        .map(|amr| amr.iter().map(|e| e["method"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (claims["aal"].as_str().unwrap().to_owned(), methods)
}

/// A factor as `POST /factors` answered it.
pub struct Enrolled {
    pub id: String,
    pub secret: String,
    pub body: Value,
}

pub async fn enroll(app: &TestApp, token: &str, body: Value) -> Response {
    app.post_json_auth("/auth/v1/factors", token, &body).await
}

/// Enrols a TOTP factor named `name`, failing the test unless it works.
pub async fn enrolled(app: &TestApp, token: &str, name: &str) -> Enrolled {
    let response = enroll(app, token, json!({ "factor_type": "totp", "friendly_name": name })).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    Enrolled {
        id: body["id"].as_str().unwrap().to_owned(),
        secret: body["totp"]["secret"].as_str().unwrap().to_owned(),
        body,
    }
}

pub async fn challenge(app: &TestApp, token: &str, factor: &str) -> Response {
    app.post_json_auth(&format!("/auth/v1/factors/{factor}/challenge"), token, &json!({}))
        .await
}

pub async fn challenge_id(app: &TestApp, token: &str, factor: &str) -> String {
    let response = challenge(app, token, factor).await;
    let body: Value = response.json().await.unwrap();
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("challenge: {body}"))
        .to_owned()
}

pub async fn verify(app: &TestApp, token: &str, factor: &str, challenge: &str, code: &str) -> Response {
    app.post_json_auth(
        &format!("/auth/v1/factors/{factor}/verify"),
        token,
        &json!({ "challenge_id": challenge, "code": code }),
    )
    .await
}

/// supabase-js `challengeAndVerify`.
pub async fn challenge_and_verify(app: &TestApp, token: &str, factor: &str, code: &str) -> Response {
    let challenge = challenge_id(app, token, factor).await;
    verify(app, token, factor, &challenge, code).await
}

pub async fn unenroll(app: &TestApp, token: &str, factor: &str) -> Response {
    app.request(Method::DELETE, &format!("/auth/v1/factors/{factor}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn get_user(app: &TestApp, token: &str) -> Value {
    let response = app.get_auth("/auth/v1/user", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The code of 30-second step `step`, as an authenticator app computes it.
pub fn code(secret: &str, step: u64) -> String {
    let totp = Builder::new()
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    totp.generate(step * 30).to_string()
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// The current step, once at least 10 seconds of it are left (waiting for the next one if
/// not), so that the server checks the codes computed from it within the same step. The only
/// wall-clock dependence here, and one the behaviour under test is about.
pub async fn stable_step() -> u64 {
    let now = unix_now();
    let into_step = now.as_secs() % 30;
    if into_step >= 20 {
        tokio::time::sleep(Duration::from_secs(30 - into_step) + Duration::from_millis(200)).await;
    }
    unix_now().as_secs() / 30
}

/// A signed-up user with a verified TOTP factor and the aal2 session its verification
/// returned (the sign-up's session, lifted).
pub struct MfaUser {
    pub email: String,
    pub factor: Enrolled,
    pub aal2: Value,
    /// The step whose code verified the factor.
    pub step: u64,
}

pub async fn mfa_user(app: &TestApp) -> MfaUser {
    let email = random_email();
    let signup = app.sign_up(&email, PASSWORD).await;
    let factor = enrolled(app, access(&signup), "phone app").await;
    let step = stable_step().await;
    let response = challenge_and_verify(app, access(&signup), &factor.id, &code(&factor.secret, step)).await;
    let aal2 = expect_session(response).await;
    MfaUser {
        email,
        factor,
        aal2,
        step,
    }
}

impl MfaUser {
    /// A new password sign-in: an aal1 session of a user who could reach aal2.
    pub async fn aal1(&self, app: &TestApp) -> Value {
        app.signed_in(&self.email, PASSWORD).await
    }
}

/// A code newer than step `last_used` (which a factor has already accepted): the current
/// step's, or the next one's (one step of skew) while the current one is used up.
pub async fn fresh_code(secret: &str, last_used: u64) -> (String, u64) {
    let step = stable_step().await.max(last_used + 1);
    (code(secret, step), step)
}
