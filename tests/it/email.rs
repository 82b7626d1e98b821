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
    let body = assert_error(
        app.post_json("/recover", &json!({"email": email})).await,
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
    // Magic links share the recovery slot.
    assert_error(
        app.post_json("/otp", &json!({"email": email})).await,
        429,
        "over_email_send_rate_limit",
    )
    .await;
    assert_eq!(sink.to(&email).len(), 1);
}

#[tokio::test]
async fn redirects_only_to_the_site_or_the_allow_list() {
    let (app, sink) = mail_app(&[("GOTRUE_URI_ALLOW_LIST", "https://*.myapp.test/**,myapp://auth")]).await;
    for (redirect, expected) in [
        ("https://evil.example.com/steal", "http://localhost:3000/"),
        (
            "https://preview.myapp.test/welcome?x=1",
            "https://preview.myapp.test/welcome?x=1",
        ),
        ("http://localhost:3000/account", "http://localhost:3000/account"),
        ("myapp://auth", "myapp://auth"),
    ] {
        let email = random_email();
        let response = app
            .request(reqwest::Method::POST, "/signup")
            .query(&[("redirect_to", redirect)])
            .json(&json!({"email": email, "password": "secret-pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let link = sink.last_to(&email).await.link();
        assert_eq!(query(&Url::parse(&link).unwrap())["redirect_to"], expected);
        // Even a link edited to carry another target cannot leave the allowed set.
        let mut tampered = Url::parse(&link).unwrap();
        let pairs: Vec<(String, String)> = tampered.query_pairs().into_owned().collect();
        tampered.query_pairs_mut().clear();
        for (key, value) in pairs {
            let value = if key == "redirect_to" {
                "https://evil.example.com/x".to_owned()
            } else {
                value
            };
            tampered.query_pairs_mut().append_pair(&key, &value);
        }
        let response = app.client.get(tampered).send().await.unwrap();
        let raw = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(!raw.contains("evil"), "{raw}");
        assert!(raw.starts_with("http://localhost:3000/#access_token="), "{raw}");
    }
    // The redirect_to header is honoured too, and errors go to the validated target.
    let response = app
        .request(reqwest::Method::GET, "/verify?token=nope&type=signup")
        .header("redirect_to", "https://a.myapp.test/cb")
        .send()
        .await
        .unwrap();
    let target = location(&response);
    assert!(
        target
            .as_str()
            .starts_with("https://a.myapp.test/cb#error=access_denied"),
        "{target}"
    );
}

#[tokio::test]
async fn verify_input_errors() {
    let (app, _sink) = mail_app(&[]).await;
    for (body, status, code) in [
        (json!({"token": "123456", "email": "a@b.co"}), 400, "validation_failed"),
        (json!({"type": "signup"}), 400, "validation_failed"),
        (
            json!({"type": "signup", "token": "1", "token_hash": "x"}),
            400,
            "validation_failed",
        ),
        (json!({"type": "signup", "token": "123456"}), 400, "validation_failed"),
        (
            json!({"type": "signup", "token": "123456", "email": "nope"}),
            422,
            "validation_failed",
        ),
        (json!({"type": "bogus", "token_hash": "x"}), 400, "validation_failed"),
        (json!({"type": "signup", "token_hash": "x"}), 403, "otp_expired"),
        (
            json!({"type": "sms", "token": "123456", "phone": "15550001"}),
            400,
            "phone_provider_disabled",
        ),
    ] {
        assert_error(app.post_json("/verify", &body).await, status, code).await;
    }
    assert_error(app.get("/verify?type=signup").await, 400, "validation_failed").await;
    assert_error(app.get("/verify?token=abc").await, 400, "validation_failed").await;
    let unknown = fragment(&location(&app.get("/verify?token=abc&type=nonsense").await));
    assert_eq!(unknown["error_code"], "validation_failed");
    assert_eq!(unknown["error"], "invalid_request");
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
