//! `/recover` and `/resend` must not tell anyone which addresses have an account: the same
//! status, body and (statistically) time for a known address, an unknown one, and a known one
//! with nothing to send.

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{Value, json};

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

/// The times one kind of request took, one call per round.
struct Timed {
    name: &'static str,
    times: Vec<Duration>,
}

impl Timed {
    fn median(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }
}

async fn timed(app: &TestApp, request: (&'static str, Value)) -> Duration {
    let started = Instant::now();
    let response = call(app, &request).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 200, "{request:?}");
    took
}

#[tokio::test]
async fn known_and_unknown_addresses_take_the_same_time() {
    // This test is about time itself. A mail server that takes 150 ms a message made a known
    // address slow and an unknown one fast; now every answer without a mail waits as long as
    // a recent send took. Medians over many interleaved requests, compared with a generous
    // factor, so that a loaded machine does not make it flaky.
    const ROUNDS: usize = 11;
    let sink = SmtpSink::start_slow(Duration::from_millis(150)).await;
    let port = sink.port.to_string();
    let app = TestApp::spawn_with(&[
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", &port),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
        ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "100000"),
        ("LATCHKEY_RATE_LIMIT_LOOPBACK", "false"),
    ])
    .await;
    let unconfirmed = known_user(&app, false).await;
    let confirmed = known_user(&app, true).await;
    // A few sends first, as a running server has made.
    for _ in 0..3 {
        timed(&app, recover(&unconfirmed)).await;
        timed(&app, resend("signup", &unconfirmed)).await;
    }

    let mut recover_known = Timed {
        name: "/recover, known",
        times: vec![],
    };
    let mut recover_unknown = Timed {
        name: "/recover, unknown",
        times: vec![],
    };
    let mut resend_known = Timed {
        name: "/resend, known",
        times: vec![],
    };
    let mut resend_unknown = Timed {
        name: "/resend, unknown",
        times: vec![],
    };
    let mut resend_nothing = Timed {
        name: "/resend, already confirmed",
        times: vec![],
    };
    for _ in 0..ROUNDS {
        recover_known.times.push(timed(&app, recover(&unconfirmed)).await);
        recover_unknown.times.push(timed(&app, recover(&random_email())).await);
        resend_known
            .times
            .push(timed(&app, resend("signup", &unconfirmed)).await);
        resend_unknown
            .times
            .push(timed(&app, resend("signup", &random_email())).await);
        resend_nothing
            .times
            .push(timed(&app, resend("signup", &confirmed)).await);
    }
    assert_eq!(
        sink.to(&unconfirmed).len(),
        6 + 2 * ROUNDS,
        "every known request sent mail"
    );
    assert!(sink.to(&confirmed).is_empty());

    for (known, others) in [
        (&recover_known, vec![&recover_unknown]),
        (&resend_known, vec![&resend_unknown, &resend_nothing]),
    ] {
        let sending = known.median();
        assert!(sending >= Duration::from_millis(150), "{}: {sending:?}", known.name);
        for other in others {
            let silent = other.median();
            assert!(
                silent >= sending / 2 && silent <= sending * 2,
                "median {:?} for {}, {:?} for {}",
                silent,
                other.name,
                sending,
                known.name
            );
        }
    }
}
