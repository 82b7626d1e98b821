//! One-time codes cannot be guessed or used twice: a burst of verifications of one valid
//! token yields one session, wrong codes are counted per token (and the count survives the
//! failed request), and a code dies after `LATCHKEY_OTP_MAX_ATTEMPTS` wrong guesses. The
//! reauthentication nonce of `PUT /user`: `otp_nonce`.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use crate::email::{fragment, location};
use crate::helpers::{TestApp, assert_error, random_email};

/// Bursts of requests from one address must not meet the per-address limits here, and 20 of
/// them must be able to run at once (each holds a database connection).
pub const BURST_SETTINGS: [(&str, &str); 3] = [
    ("GOTRUE_RATE_LIMIT_VERIFY", "100000"),
    ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "100000"),
    ("GOTRUE_DB_MAX_POOL_SIZE", "64"),
];

async fn otp_app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("GOTRUE_MAILER_AUTOCONFIRM", "false")];
    vars.extend_from_slice(&BURST_SETTINGS);
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars).await
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app
        .request(Method::POST, path)
        .bearer_auth(app.api_key("service_role"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// A confirmed user with a password; returns the user id.
async fn confirmed(app: &TestApp, email: &str) -> Uuid {
    let user = admin_post(
        app,
        "/admin/users",
        json!({"email": email, "password": "secret-pw", "email_confirm": true}),
    )
    .await;
    user["id"].as_str().unwrap().parse().unwrap()
}

/// A fresh magic-link token for `email`: (the code, the link's token hash).
async fn magic_link(app: &TestApp, email: &str) -> (String, String) {
    let link = admin_post(
        app,
        "/admin/generate_link",
        json!({"type": "magiclink", "email": email}),
    )
    .await;
    (
        link["email_otp"].as_str().unwrap().to_owned(),
        link["hashed_token"].as_str().unwrap().to_owned(),
    )
}

/// A six-digit code that is not `right`.
pub fn wrong_code(right: &str, n: u32) -> String {
    let candidate = format!("{:06}", (right.parse::<u32>().unwrap() + 1 + n) % 1_000_000);
    assert_ne!(candidate, right);
    candidate
}

async fn verify_code(app: &TestApp, verify_type: &str, email: &str, code: &str) -> reqwest::Response {
    app.post_json("/verify", &json!({"type": verify_type, "email": email, "token": code}))
        .await
}

async fn session_count(app: &TestApp, user_id: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from _auth_sessions where user_id = $1")
        .bind(user_id)
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

/// The failure count of the user's token of one kind; `None` when there is no such token.
pub async fn failed_attempts(app: &TestApp, user_id: Uuid, token_type: &str) -> Option<i32> {
    sqlx::query_scalar("select failed_attempts from _auth_one_time_tokens where user_id = $1 and token_type = $2")
        .bind(user_id)
        .bind(token_type)
        .fetch_optional(&mut app.db().await)
        .await
        .unwrap()
}

/// Runs `requests` while the test holds the user's row, until `waiters` database sessions wait
/// for a row lock (or 5 s pass, well within the 10 s a request may take): then every request has looked its token up before any can
/// finish, the widest race window there is.
pub async fn with_user_row_held<T>(app: &TestApp, user_id: Uuid, waiters: i64, requests: impl Future<Output = T>) -> T {
    let mut holder = app.db().await;
    let mut held = holder.begin().await.unwrap();
    sqlx::query("select 1 from _auth_users where id = $1 for update")
        .bind(user_id)
        .execute(&mut *held)
        .await
        .unwrap();
    let release = async {
        let mut watcher = app.db().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where datname = current_database() \
                 and wait_event_type = 'Lock' and wait_event <> 'advisory'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting >= waiters {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("only {waiting} of {waiters} requests waited for a lock");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        held.rollback().await.unwrap();
    };
    let (results, ()) = tokio::join!(requests, release);
    results
}

#[tokio::test]
async fn twenty_clicks_on_one_link_at_once_give_one_session() {
    let app = otp_app(&[]).await;
    let email = random_email();
    let user_id = confirmed(&app, &email).await;
    let (_, hash) = magic_link(&app, &email).await;

    let path = format!("/verify?type=magiclink&token={hash}&redirect_to=http://localhost:3000/");
    let responses = with_user_row_held(&app, user_id, 20, join_all((0..20).map(|_| app.get(&path)))).await;
    let fragments: Vec<_> = responses.iter().map(|r| fragment(&location(r))).collect();
    let signed_in = fragments.iter().filter(|f| f.contains_key("access_token")).count();
    let refused = fragments
        .iter()
        .filter(|f| f.get("error_code").map(String::as_str) == Some("otp_expired"))
        .count();
    assert_eq!((signed_in, refused), (1, 19), "{fragments:?}");
    assert_eq!(session_count(&app, user_id).await, 1);
}

#[tokio::test]
async fn twenty_verifications_of_one_code_at_once_give_one_session() {
    let app = otp_app(&[]).await;
    let email = random_email();
    let user_id = confirmed(&app, &email).await;
    let (code, _) = magic_link(&app, &email).await;

    let burst = join_all((0..20).map(|_| verify_code(&app, "email", &email, &code)));
    let responses = with_user_row_held(&app, user_id, 20, burst).await;
    let mut signed_in = 0;
    for response in responses {
        if response.status() == 200 {
            signed_in += 1;
        } else {
            let body = assert_error(response, 403, "otp_expired").await;
            assert_eq!(body["msg"], "Token has expired or is invalid");
        }
    }
    assert_eq!(signed_in, 1);
    assert_eq!(session_count(&app, user_id).await, 1);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code() {
    let app = otp_app(&[]).await;
    let email = random_email();
    let user_id = confirmed(&app, &email).await;
    let (code, hash) = magic_link(&app, &email).await;
    for n in 0..5 {
        assert_error(
            verify_code(&app, "email", &email, &wrong_code(&code, n)).await,
            403,
            "otp_expired",
        )
        .await;
    }
    assert_eq!(failed_attempts(&app, user_id, "recovery_token").await, None, "dead");
    // Neither the right code nor the link works any more.
    let body = assert_error(verify_code(&app, "email", &email, &code).await, 403, "otp_expired").await;
    assert_eq!(body["msg"], "Token has expired or is invalid");
    let link = app
        .post_json("/verify", &json!({"type": "magiclink", "token_hash": hash}))
        .await;
    assert_error(link, 403, "otp_expired").await;
    assert_eq!(session_count(&app, user_id).await, 0);

    // A new code works, and wrong guesses at the old one do not count against it.
    let (code, _) = magic_link(&app, &email).await;
    assert_eq!(failed_attempts(&app, user_id, "recovery_token").await, Some(0));
    assert_eq!(verify_code(&app, "magiclink", &email, &code).await.status(), 200);
}

#[tokio::test]
async fn four_wrong_codes_then_the_right_one_signs_in() {
    let app = otp_app(&[]).await;
    let email = random_email();
    let user_id = confirmed(&app, &email).await;
    let (code, _) = magic_link(&app, &email).await;
    for n in 0..4 {
        assert_error(
            verify_code(&app, "magiclink", &email, &wrong_code(&code, n)).await,
            403,
            "otp_expired",
        )
        .await;
    }
    let response = verify_code(&app, "magiclink", &email, &code).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], email);
    // A verification clears every token of the user, as before.
    let left: i64 = sqlx::query_scalar("select count(*) from _auth_one_time_tokens where user_id = $1")
        .bind(user_id)
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_error(verify_code(&app, "magiclink", &email, &code).await, 403, "otp_expired").await;
}

/// The count is stored with the token, outside the failed request's rolled-back work, and
/// only for tokens of the verification's types at the typed-in address.
#[tokio::test]
async fn wrong_codes_are_counted_per_token_type_and_the_count_persists() {
    let app = otp_app(&[]).await;
    let (email, user_id, confirmation, recovery) = unconfirmed_with_two_codes(&app).await;
    let counts = || async {
        (
            failed_attempts(&app, user_id, "confirmation_token").await,
            failed_attempts(&app, user_id, "recovery_token").await,
        )
    };
    assert_eq!(counts().await, (Some(0), Some(0)));

    let neither = (0..)
        .map(|n| wrong_code(&confirmation, n))
        .find(|c| *c != recovery)
        .unwrap();
    assert_error(verify_code(&app, "signup", &email, &neither).await, 403, "otp_expired").await;
    assert_eq!(counts().await, (Some(1), Some(0)));
    assert_error(
        verify_code(&app, "magiclink", &email, &neither).await,
        403,
        "otp_expired",
    )
    .await;
    assert_eq!(counts().await, (Some(1), Some(1)));
    assert_error(verify_code(&app, "email", &email, &neither).await, 403, "otp_expired").await;
    assert_eq!(counts().await, (Some(2), Some(2)));
    // Another address's guesses, a link hash and bad input count against nobody.
    assert_error(
        verify_code(&app, "email", &random_email(), &confirmation).await,
        403,
        "otp_expired",
    )
    .await;
    let bogus_hash = "0".repeat(56);
    assert_error(
        app.post_json("/verify", &json!({"type": "signup", "token_hash": bogus_hash}))
            .await,
        403,
        "otp_expired",
    )
    .await;
    assert_error(
        verify_code(&app, "bogus", &email, &neither).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(counts().await, (Some(2), Some(2)));

    // The address is matched as the mail was sent, whatever its case.
    let upper = email.to_uppercase();
    assert_error(verify_code(&app, "signup", &upper, &neither).await, 403, "otp_expired").await;
    assert_eq!(counts().await, (Some(3), Some(2)));
    assert_eq!(verify_code(&app, "signup", &upper, &confirmation).await.status(), 200);
}

/// A new code is a new secret: the guesses at the one it replaces do not count against it.
#[tokio::test]
async fn a_new_code_starts_with_no_failed_attempts() {
    let app = otp_app(&[]).await;
    let email = random_email();
    let signup = json!({"type": "signup", "email": email, "password": "secret-pw"});
    let first = admin_post(&app, "/admin/generate_link", signup.clone()).await;
    let user_id: Uuid = first["id"].as_str().unwrap().parse().unwrap();
    let code = first["email_otp"].as_str().unwrap();
    for n in 0..3 {
        assert_error(
            verify_code(&app, "signup", &email, &wrong_code(code, n)).await,
            403,
            "otp_expired",
        )
        .await;
    }
    assert_eq!(failed_attempts(&app, user_id, "confirmation_token").await, Some(3));
    let second = admin_post(&app, "/admin/generate_link", signup).await;
    assert_eq!(failed_attempts(&app, user_id, "confirmation_token").await, Some(0));
    let code = second["email_otp"].as_str().unwrap();
    assert_eq!(verify_code(&app, "signup", &email, code).await.status(), 200);
}

#[tokio::test]
async fn twenty_wrong_codes_at_once_kill_the_code() {
    let app = otp_app(&[]).await;
    let email = random_email();
    let user_id = confirmed(&app, &email).await;
    let (code, _) = magic_link(&app, &email).await;
    let guesses: Vec<String> = (0..20).map(|n| wrong_code(&code, n)).collect();
    let responses = join_all(guesses.iter().map(|guess| verify_code(&app, "email", &email, guess))).await;
    for response in responses {
        assert_error(response, 403, "otp_expired").await;
    }
    assert_eq!(failed_attempts(&app, user_id, "recovery_token").await, None);
    assert_error(verify_code(&app, "email", &email, &code).await, 403, "otp_expired").await;
}

#[tokio::test]
async fn the_attempt_limit_is_configurable() {
    let app = otp_app(&[("LATCHKEY_OTP_MAX_ATTEMPTS", "2")]).await;
    let email = random_email();
    let user_id = confirmed(&app, &email).await;
    let (code, _) = magic_link(&app, &email).await;
    assert_error(
        verify_code(&app, "email", &email, &wrong_code(&code, 0)).await,
        403,
        "otp_expired",
    )
    .await;
    assert_eq!(failed_attempts(&app, user_id, "recovery_token").await, Some(1));
    assert_error(
        verify_code(&app, "email", &email, &wrong_code(&code, 1)).await,
        403,
        "otp_expired",
    )
    .await;
    assert_eq!(failed_attempts(&app, user_id, "recovery_token").await, None);
    assert_error(verify_code(&app, "email", &email, &code).await, 403, "otp_expired").await;

    let (code, _) = magic_link(&app, &email).await;
    assert_error(
        verify_code(&app, "email", &email, &wrong_code(&code, 0)).await,
        403,
        "otp_expired",
    )
    .await;
    assert_eq!(verify_code(&app, "email", &email, &code).await.status(), 200);
}

/// A wrong guess never waits for a token that another transaction holds (a verification or a
/// new code in progress): it is refused at once and counted against the other tokens only,
/// so guessing cannot close a lock cycle with a verification.
#[tokio::test]
async fn wrong_codes_do_not_wait_for_a_token_in_use() {
    let app = otp_app(&[]).await;
    let (email, user_id, confirmation, recovery) = unconfirmed_with_two_codes(&app).await;
    let neither = (0..)
        .map(|n| wrong_code(&confirmation, n))
        .find(|c| *c != recovery)
        .unwrap();

    let mut holder = app.db().await;
    let mut held = holder.begin().await.unwrap();
    sqlx::query("select 1 from _auth_one_time_tokens where user_id = $1 and token_type = 'recovery_token' for update")
        .bind(user_id)
        .execute(&mut *held)
        .await
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), verify_code(&app, "email", &email, &neither))
        .await
        .expect("answered while the token is held");
    assert_error(response, 403, "otp_expired").await;
    held.rollback().await.unwrap();
    assert_eq!(failed_attempts(&app, user_id, "confirmation_token").await, Some(1));
    assert_eq!(failed_attempts(&app, user_id, "recovery_token").await, Some(0));
}

/// An unconfirmed user with both a confirmation and a magic-link code: (email, user id,
/// confirmation code, magic-link code).
async fn unconfirmed_with_two_codes(app: &TestApp) -> (String, Uuid, String, String) {
    let email = random_email();
    let signup = admin_post(
        app,
        "/admin/generate_link",
        json!({"type": "signup", "email": email, "password": "secret-pw"}),
    )
    .await;
    let user_id: Uuid = signup["id"].as_str().unwrap().parse().unwrap();
    let confirmation = signup["email_otp"].as_str().unwrap().to_owned();
    let (recovery, _) = magic_link(app, &email).await;
    (email, user_id, confirmation, recovery)
}
