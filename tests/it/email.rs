//! Email flows against a real SMTP server on a local socket: confirmation, recovery, magic
//! link / OTP, email change, reauthentication, expiry, reuse, redirects, send frequency.

use std::collections::HashMap;

use reqwest::Response;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{TestApp, assert_error, jwt_payload, random_email};
use crate::smtp_sink::SmtpSink;

/// A server whose mail goes to a fresh sink; autoconfirm off, no send-frequency limit.
pub async fn mail_app(extra: &[(&str, &str)]) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let mut vars = vec![
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", port.as_str()),
        ("GOTRUE_SMTP_ADMIN_EMAIL", "auth@latchkey.test"),
        ("GOTRUE_SMTP_SENDER_NAME", "Latchkey"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
    ];
    vars.extend_from_slice(extra);
    (TestApp::spawn_with(&vars).await, sink)
}

pub fn location(response: &Response) -> Url {
    assert_eq!(response.status(), 303, "GET /verify answers with a 303");
    let raw = response.headers()["location"].to_str().expect("ASCII location");
    Url::parse(raw).expect("absolute location")
}

pub fn fragment(url: &Url) -> HashMap<String, String> {
    url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Signs up with confirmation required and follows the mailed link; returns the fragment.
pub async fn confirmed_user(app: &TestApp, sink: &SmtpSink, email: &str, password: &str) -> HashMap<String, String> {
    let response = app
        .post_json("/auth/v1/signup", &json!({"email": email, "password": password}))
        .await;
    assert_eq!(response.status(), 200);
    let link = sink.last_to(email).await.link();
    fragment(&location(&app.client.get(link).send().await.unwrap()))
}

#[tokio::test]
async fn signup_link_confirms_and_signs_in_once() {
    let (app, sink) = mail_app(&[]).await;
    let email = random_email();
    let response = app
        .post_json("/auth/v1/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert!(user.get("access_token").is_none(), "no session before confirmation");
    assert!(user["confirmation_sent_at"].is_string() && user["email_confirmed_at"].is_null());
    assert_error(app.sign_in(&email, "secret-pw").await, 400, "email_not_confirmed").await;

    let mail = sink.last_to(&email).await;
    assert_eq!(mail.subject(), "Confirm your email address");
    assert!(mail.header("From").unwrap().contains("auth@latchkey.test"));
    let code = mail.code();
    assert_eq!(code.len(), 6);
    assert!(mail.html().contains(&code));
    let link = mail.link();
    assert!(link.starts_with(&format!("{}/verify?token=", app.address)), "{link}");
    assert!(link.contains("type=signup") && link.contains("redirect_to="), "{link}");

    let target = location(&app.client.get(&link).send().await.unwrap());
    assert_eq!(target.origin().ascii_serialization(), "http://localhost:3000");
    let tokens = fragment(&target);
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["type"], "signup");
    assert_eq!(tokens["expires_in"], "3600");
    assert!(tokens.contains_key("expires_at") && tokens.contains_key("refresh_token") && tokens.contains_key("sb"));
    assert_eq!(jwt_payload(&tokens["access_token"])["amr"][0]["method"], "otp");
    let me: Value = app
        .get_auth("/user", &tokens["access_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email);
    assert!(me["email_confirmed_at"].is_string());
    assert_eq!(me["user_metadata"]["email_verified"], true);
    assert_eq!(me["identities"][0]["identity_data"]["email_verified"], true);
    assert_eq!(app.refresh(&tokens["refresh_token"]).await.status(), 200);
    assert_eq!(app.sign_in(&email, "secret-pw").await.status(), 200);

    // The link works once; the code of the same mail is spent too.
    let again = fragment(&location(&app.client.get(&link).send().await.unwrap()));
    assert_eq!(again["error"], "access_denied");
    assert_eq!(again["error_code"], "otp_expired");
    assert_eq!(again["error_description"], "Email link is invalid or has expired");
    assert!(!again.contains_key("access_token"));
    assert_error(
        app.post_json("/verify", &json!({"type": "signup", "email": email, "token": code}))
            .await,
        403,
        "otp_expired",
    )
    .await;
}

#[tokio::test]
async fn repeated_unconfirmed_signup_and_resend_send_a_new_confirmation() {
    let (app, sink) = mail_app(&[]).await;
    let email = random_email();
    app.post_json("/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    let first = sink.last_to(&email).await.link();
    let response = app
        .post_json("/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(sink.to(&email).len(), 2);
    let response = app
        .post_json("/resend", &json!({"type": "signup", "email": email}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let third = sink.last_to(&email).await.link();
    assert_eq!(sink.to(&email).len(), 3);
    // Only the newest token is live.
    let old = fragment(&location(&app.client.get(&first).send().await.unwrap()));
    assert_eq!(old["error_code"], "otp_expired");
    let ok = fragment(&location(&app.client.get(&third).send().await.unwrap()));
    assert!(ok.contains_key("access_token"));

    // Nothing pending (now confirmed, or unknown): 200 {} and no mail.
    for body in [
        json!({"type": "signup", "email": email}),
        json!({"type": "signup", "email": random_email()}),
        json!({"type": "email_change", "email": email}),
    ] {
        let response = app.post_json("/resend", &body).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(sink.messages().len(), 3);
    assert_error(
        app.post_json("/resend", &json!({"email": email})).await,
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn recovery_code_then_new_password() {
    let (app, sink) = mail_app(&[("GOTRUE_MAILER_AUTOCONFIRM", "true")]).await;
    let email = random_email();
    app.sign_up(&email, "old-password").await;
    assert!(sink.messages().is_empty(), "autoconfirm sends no confirmation");

    let unknown = app.post_json("/recover", &json!({"email": random_email()})).await;
    assert_eq!(unknown.status(), 200);
    assert_eq!(unknown.json::<Value>().await.unwrap(), json!({}));
    assert!(sink.messages().is_empty(), "unknown addresses get no mail");

    let response = app.post_json("/auth/v1/recover", &json!({"email": email})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let mail = sink.last_to(&email).await;
    assert_eq!(mail.subject(), "Reset your password");
    assert!(mail.link().contains("type=recovery"));

    assert_error(
        app.post_json(
            "/verify",
            &json!({"type": "recovery", "email": email, "token": "000000"}),
        )
        .await,
        403,
        "otp_expired",
    )
    .await;
    let response = app
        .post_json(
            "/verify",
            &json!({"type": "recovery", "email": email.to_uppercase(), "token": mail.code()}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(session["user"]["email"], email);
    let response = app
        .put_json_auth("/user", token, &json!({"password": "new-password"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.sign_in(&email, "new-password").await.status(), 200);
    assert_error(app.sign_in(&email, "old-password").await, 400, "invalid_credentials").await;
    assert_error(
        app.post_json(
            "/verify",
            &json!({"type": "recovery", "email": email, "token": mail.code()}),
        )
        .await,
        403,
        "otp_expired",
    )
    .await;
}

#[tokio::test]
async fn otp_signs_up_then_signs_in_with_codes() {
    let (app, sink) = mail_app(&[]).await;
    let email = random_email();
    assert_error(
        app.post_json("/otp", &json!({"email": email, "create_user": false}))
            .await,
        422,
        "otp_disabled",
    )
    .await;
    assert!(sink.messages().is_empty());

    let response = app
        .post_json("/auth/v1/otp", &json!({"email": email, "data": {"plan": "pro"}}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let mail = sink.last_to(&email).await;
    assert_eq!(
        mail.subject(),
        "Confirm your email address",
        "a new address gets the confirmation"
    );
    let response = app
        .post_json(
            "/verify",
            &json!({"type": "email", "email": email, "token": mail.code()}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["user_metadata"]["plan"], "pro");
    assert!(session["user"]["email_confirmed_at"].is_string());

    // Known and confirmed: a magic link, usable as a code or through its hash.
    app.post_json("/otp", &json!({"email": email, "create_user": false}))
        .await;
    let mail = sink.last_to(&email).await;
    assert_eq!(mail.subject(), "Your sign-in link");
    assert!(mail.link().contains("type=magiclink"));
    let response = app
        .post_json(
            "/verify",
            &json!({"type": "email", "email": email, "token": mail.code()}),
        )
        .await;
    assert_eq!(response.status(), 200);

    app.post_json("/magiclink", &json!({"email": email})).await;
    let link = Url::parse(&sink.last_to(&email).await.link()).unwrap();
    let hash = query(&link)["token"].clone();
    assert_eq!(hash.len(), 56, "hex sha224");
    assert_error(
        app.post_json(
            "/verify",
            &json!({"type": "recovery", "token_hash": hash, "email": email}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let response = app
        .post_json("/verify", &json!({"type": "magiclink", "token_hash": hash}))
        .await;
    assert_eq!(response.status(), 200);
    assert_error(
        app.post_json("/verify", &json!({"type": "magiclink", "token_hash": hash}))
            .await,
        403,
        "otp_expired",
    )
    .await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let (app, sink) = mail_app(&[("GOTRUE_MAILER_OTP_EXP", "3600")]).await;
    let email = random_email();
    app.post_json("/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    let mail = sink.last_to(&email).await;
    let mut db = app.db().await;
    sqlx::query("update _auth_users set confirmation_sent_at = now() - interval '61 minutes' where email = $1")
        .bind(&email)
        .execute(&mut db)
        .await
        .unwrap();
    let error = fragment(&location(&app.client.get(mail.link()).send().await.unwrap()));
    assert_eq!(error["error_code"], "otp_expired");
    let body = assert_error(
        app.post_json(
            "/verify",
            &json!({"type": "signup", "email": email, "token": mail.code()}),
        )
        .await,
        403,
        "otp_expired",
    )
    .await;
    assert_eq!(body["msg"], "Token has expired or is invalid");
}

#[tokio::test]
async fn send_frequency_is_limited_per_user() {
    let (app, sink) = mail_app(&[
        ("GOTRUE_SMTP_MAX_FREQUENCY", "60s"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
    ])
    .await;
    let email = random_email();
    app.sign_up(&email, "secret-pw").await;
    assert_eq!(app.post_json("/recover", &json!({"email": email})).await.status(), 200);
    // Too soon: no mail. /recover answers what any address gets (GoTrue's 429 would tell
    // that the address is registered; see recover_enumeration).
    let again = app.post_json("/recover", &json!({"email": email})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), json!({}));
    // Magic links share the recovery slot; /otp says how long to wait.
    let body = assert_error(
        app.post_json("/otp", &json!({"email": email})).await,
        429,
        "over_email_send_rate_limit",
    )
    .await;
    let message = body["msg"].as_str().unwrap();
    assert!(
        message.starts_with("For security purposes, you can only request this after ")
            && message.ends_with(" seconds."),
        "{message}"
    );
    assert_eq!(sink.to(&email).len(), 1);
}

#[tokio::test]
async fn failed_sends_leave_nothing_behind() {
    // A port nothing listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let app = TestApp::spawn_with(&[
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", &port),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
    ])
    .await;
    let email = random_email();
    let response = app
        .post_json("/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], "Error sending confirmation email");
    let mut db = app.db().await;
    let (users, tokens): (i64, i64) =
        sqlx::query_as("select (select count(*) from _auth_users), (select count(*) from _auth_one_time_tokens)")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!((users, tokens), (0, 0), "the sign-up was rolled back");
}
