//! `/recover` and `/resend` must not tell anyone which addresses have an account: the same
//! status and body for a known address, an unknown one, and a known one with nothing to send,
//! and an answer without a mail waits as long as a recorded send took (`auth::send_timing`).

use std::collections::HashSet;
use std::time::Duration;

use latchkey::auth::send_timing::{FIRST_GUESS, LAST_TICK, Route, SendTiming};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::admin::admin;
use crate::email::mail_app;
use crate::helpers::{TestApp, assert_error, random_email};
use crate::smtp_sink::SmtpSink;

fn recover(email: &str) -> (&'static str, Value) {
    ("/recover", json!({"email": email}))
}

fn resend(kind: &str, email: &str) -> (&'static str, Value) {
    ("/resend", json!({"type": kind, "email": email}))
}

async fn call(app: &TestApp, (path, body): &(&'static str, Value)) -> Response {
    app.post_json(path, body).await
}

/// Status and body text.
async fn answer(app: &TestApp, request: (&'static str, Value)) -> (u16, String) {
    let response = call(app, &request).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A user made by the admin API: no mail sent, email unconfirmed unless `confirmed`.
async fn known_user(app: &TestApp, confirmed: bool) -> String {
    let email = random_email();
    let user = json!({"email": email, "password": "secret-pw", "email_confirm": confirmed});
    assert_eq!(admin(app, Method::POST, "/admin/users", Some(user)).await.status(), 200);
    email
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answer() {
    let (app, sink) = mail_app(&[("GOTRUE_SMTP_MAX_FREQUENCY", "60s")]).await;
    let email = random_email();
    let signed_up = app
        .post_json("/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    assert_eq!(signed_up.status(), 200);
    let confirmed = known_user(&app, true).await;
    let unknown = random_email();
    let same = (200, "{}".to_owned());

    // A mail goes out.
    assert_eq!(answer(&app, recover(&email)).await, same);
    assert_eq!(sink.to(&email).len(), 2, "confirmation and recovery");
    // Within GOTRUE_SMTP_MAX_FREQUENCY of the last mail of its kind: nothing is sent, and
    // the answer is not GoTrue's 429, which only a registered address could get.
    assert_eq!(answer(&app, recover(&email)).await, same);
    assert_eq!(answer(&app, resend("signup", &email)).await, same);
    assert_eq!(sink.to(&email).len(), 2);
    // Nothing to send, or nobody to send it to.
    for request in [
        resend("signup", &confirmed),
        resend("email_change", &email),
        recover(&unknown),
        resend("signup", &unknown),
        resend("email_change", &unknown),
    ] {
        assert_eq!(answer(&app, request.clone()).await, same, "{request:?}");
    }
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn the_email_budget_refuses_known_and_unknown_addresses_alike() {
    // Every /recover and /resend takes one unit of the server-wide budget, mail or not.
    let (app, sink) = mail_app(&[("GOTRUE_RATE_LIMIT_EMAIL_SENT", "3")]).await;
    let (first, second) = (known_user(&app, false).await, known_user(&app, false).await);
    assert_eq!(call(&app, &recover(&first)).await.status(), 200);
    assert_eq!(call(&app, &recover(&random_email())).await.status(), 200);
    assert_eq!(call(&app, &resend("signup", &random_email())).await.status(), 200);
    for request in [
        recover(&second),
        recover(&random_email()),
        resend("signup", &second),
        resend("signup", &random_email()),
    ] {
        assert_error(call(&app, &request).await, 429, "over_email_send_rate_limit").await;
    }
    assert_eq!(sink.messages().len(), 1);
}

async fn timed(app: &TestApp, request: (&'static str, Value)) -> Duration {
    let started = std::time::Instant::now();
    let response = call(app, &request).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 200, "{request:?}");
    took
}

/// A mail server that takes longer than `FIRST_GUESS` a message: every answer that sends
/// nothing (an unknown address, or nothing to send) takes at least as long as the sends
/// recorded before it, so it waited like them and not like the first guess. Lower bounds
/// only: a wait never ends early, so a loaded machine cannot make this fail. How long the
/// waits are, exactly, is checked with a paused clock below; the times themselves are
/// measured by the benchmark (`bench/src/timing.rs`).
#[tokio::test]
async fn answers_without_mail_wait_like_the_sends_before_them() {
    const SMTP_DELAY: Duration = Duration::from_millis(400);
    assert!(SMTP_DELAY > FIRST_GUESS);
    let sink = SmtpSink::start_slow(SMTP_DELAY).await;
    let port = sink.port.to_string();
    let app = TestApp::spawn_with(&[
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", &port),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
    ])
    .await;
    let unconfirmed = known_user(&app, false).await;
    let confirmed = known_user(&app, true).await;
    // A known address: the mail goes out within the request.
    for request in [recover(&unconfirmed), resend("signup", &unconfirmed)] {
        let took = timed(&app, request.clone()).await;
        assert!(took >= SMTP_DELAY, "{request:?} sent in {took:?}");
    }
    assert_eq!(sink.to(&unconfirmed).len(), 2);
    for request in [
        recover(&random_email()),
        resend("signup", &random_email()),
        resend("signup", &confirmed),
    ] {
        let took = timed(&app, request.clone()).await;
        assert!(took >= SMTP_DELAY, "{request:?} answered in {took:?}");
    }
    assert_eq!(sink.messages().len(), 2, "nothing else was sent");
}

/// Exact, on tokio's paused clock: an answer that sends nothing ends when one of the recorded
/// send durations has passed since its own start (each of them drawn, nothing else), at once
/// if it already took longer, and after `FIRST_GUESS` on a route that has sent nothing yet.
/// Both kinds of answer then end `LAST_TICK` later, on a timer wake-up of the same kind.
#[tokio::test(start_paused = true)]
async fn a_silent_answer_ends_exactly_when_a_recorded_send_would_have() {
    let timing = SendTiming::default();
    let started = Instant::now();
    timing.wait_like_a_send(Route::Recover, started).await;
    assert_eq!(started.elapsed(), FIRST_GUESS + LAST_TICK, "before any send");

    let sends = [120, 340, 560].map(Duration::from_millis);
    for took in sends {
        let started = Instant::now();
        tokio::time::advance(took).await;
        timing.record_send(Route::Recover, started).await;
        assert_eq!(
            started.elapsed(),
            took + LAST_TICK,
            "a send answers LAST_TICK after its mail"
        );
    }
    let mut drawn = HashSet::new();
    for _ in 0..200 {
        let started = Instant::now();
        timing.wait_like_a_send(Route::Recover, started).await;
        let waited = started.elapsed() - LAST_TICK;
        assert!(sends.contains(&waited), "{waited:?} is no recorded send");
        drawn.insert(waited);
    }
    assert_eq!(drawn.len(), sends.len(), "every recorded send is drawn");

    let started = Instant::now();
    tokio::time::advance(Duration::from_secs(1)).await;
    timing.wait_like_a_send(Route::Recover, started).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "no wait once longer than any send"
    );

    let started = Instant::now();
    timing.wait_like_a_send(Route::Resend, started).await;
    assert_eq!(
        started.elapsed(),
        FIRST_GUESS + LAST_TICK,
        "each route keeps its own sends"
    );
}
