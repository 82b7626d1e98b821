//! The reauthentication nonce of `PUT /user` is a one-time code too: wrong nonces are counted
//! and kill it at `LATCHKEY_OTP_MAX_ATTEMPTS`, and a burst of password changes with one nonce
//! uses it once.

use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::email::{confirmed_user, mail_app};
use crate::helpers::{TestApp, assert_error, random_email};
use crate::otp_attempts::{BURST_SETTINGS, failed_attempts, with_user_row_held, wrong_code};
use crate::smtp_sink::SmtpSink;

/// A user whose session is older than a day, so that a password change needs the nonce.
async fn reauthentication_app() -> (TestApp, SmtpSink, String, String, Uuid) {
    let mut vars = vec![("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", "true")];
    vars.extend_from_slice(&BURST_SETTINGS);
    let (app, sink) = mail_app(&vars).await;
    let email = random_email();
    let tokens = confirmed_user(&app, &sink, &email, "secret-pw").await;
    let access = tokens["access_token"].clone();
    let user_id: Uuid =
        sqlx::query_scalar("update _auth_sessions set created_at = now() - interval '25 hours' returning user_id")
            .fetch_one(&mut app.db().await)
            .await
            .unwrap();
    (app, sink, email, access, user_id)
}

async fn request_nonce(app: &TestApp, sink: &SmtpSink, email: &str, access: &str) -> String {
    let before = sink.to(email).len();
    assert_eq!(app.get_auth("/reauthenticate", access).await.status(), 200);
    let mail = sink.last_to(email).await;
    assert_eq!(sink.to(email).len(), before + 1, "a new mail");
    mail.code()
}

/// `PUT /user` with a new password and a nonce; `with_data` also sets some user metadata.
async fn change_password(
    app: &TestApp,
    access: &str,
    password: &str,
    nonce: &str,
    with_data: bool,
) -> reqwest::Response {
    let mut body = json!({"password": password, "nonce": nonce});
    if with_data {
        body["data"] = json!({"touched": true});
    }
    app.put_json_auth("/user", access, &body).await
}

#[tokio::test]
async fn five_wrong_nonces_kill_the_nonce() {
    let (app, sink, email, access, user_id) = reauthentication_app().await;
    let nonce = request_nonce(&app, &sink, &email, &access).await;
    for n in 0..5 {
        let response = change_password(&app, &access, "second-pw", &wrong_code(&nonce, n), true).await;
        assert_error(response, 422, "reauthentication_not_valid").await;
        let expected = (n < 4).then_some(n as i32 + 1);
        assert_eq!(failed_attempts(&app, user_id, "reauthentication_token").await, expected);
    }
    let response = change_password(&app, &access, "second-pw", &nonce, true).await;
    assert_error(response, 422, "reauthentication_not_valid").await;
    // Nothing of the refused updates was kept.
    assert_eq!(app.sign_in(&email, "secret-pw").await.status(), 200);
    let me = crate::oauth::user_of(&app, &access).await;
    assert!(me["user_metadata"].is_object(), "{me}");
    assert!(me["user_metadata"].get("touched").is_none(), "{me}");

    // Four wrong guesses at a new nonce leave the right one working.
    let nonce = request_nonce(&app, &sink, &email, &access).await;
    for n in 0..4 {
        let response = change_password(&app, &access, "second-pw", &wrong_code(&nonce, n), true).await;
        assert_error(response, 422, "reauthentication_not_valid").await;
    }
    assert_eq!(
        change_password(&app, &access, "second-pw", &nonce, true).await.status(),
        200
    );
    assert_eq!(app.sign_in(&email, "second-pw").await.status(), 200);
}

#[tokio::test]
async fn twenty_password_changes_with_one_nonce_at_once_use_it_once() {
    let (app, sink, email, access, user_id) = reauthentication_app().await;
    let nonce = request_nonce(&app, &sink, &email, &access).await;
    let passwords: Vec<String> = (0..20).map(|n| format!("new-password-{n}")).collect();
    let burst = join_all(
        passwords
            .iter()
            .map(|password| change_password(&app, &access, password, &nonce, false)),
    );
    let responses = with_user_row_held(&app, user_id, 20, burst).await;
    let mut accepted = Vec::new();
    for (password, response) in passwords.iter().zip(responses) {
        if response.status() == 200 {
            accepted.push(password);
        } else {
            assert_error(response, 422, "reauthentication_not_valid").await;
        }
    }
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(app.sign_in(&email, accepted[0]).await.status(), 200);
}
