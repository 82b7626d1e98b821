//! How much a custom access token hook adds to sign-in and refresh: the same requests against
//! a server without a hook, with a `pg-functions://` hook and with an HTTP hook on a local
//! port, medians and 95th percentiles over many sequential requests. Not run by default
//! (timings are not assertions here):
//! `cargo test --test it hooks::latency -- --ignored --nocapture` (the dev profile optimises
//! the hashing and signing crates; add `--release` for fully optimised numbers).

use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{Receiver, WEBHOOK_SECRET};
use crate::helpers::{TestApp, expect_session, random_email};

const PASSWORD: &str = "correct horse battery staple";
const ROUNDS: usize = 200;
/// Hundreds of sign-ins from one address would otherwise meet the rate limits.
const NO_LIMITS: (&str, &str) = ("LATCHKEY_RATE_LIMIT_ENABLED", "false");

const FUNCTION: &str = "create function public.add_claims(event jsonb) returns jsonb language sql as $$
  select jsonb_build_object('claims', event->'claims' || '{\"tenant_id\": \"acme\", \"scopes\": [\"read\"]}'::jsonb)
$$";

fn summary(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(samples[samples.len() / 2]), ms(samples[samples.len() * 95 / 100]))
}

/// One user signed in on `app`, and its latest refresh token.
struct Client<'a> {
    app: &'a TestApp,
    email: String,
    refresh_token: String,
    sign_ins: Vec<Duration>,
    refreshes: Vec<Duration>,
}

impl<'a> Client<'a> {
    async fn new(app: &'a TestApp) -> Client<'a> {
        let email = random_email();
        let session = app.sign_up(&email, PASSWORD).await;
        Client {
            app,
            refresh_token: session["refresh_token"].as_str().unwrap().to_owned(),
            email,
            sign_ins: Vec::new(),
            refreshes: Vec::new(),
        }
    }

    /// One timed sign-in and one timed refresh.
    async fn round(&mut self) {
        let started = Instant::now();
        expect_session(self.app.sign_in(&self.email, PASSWORD).await).await;
        self.sign_ins.push(started.elapsed());
        let started = Instant::now();
        let session = expect_session(self.app.refresh(&self.refresh_token).await).await;
        self.refreshes.push(started.elapsed());
        self.refresh_token = session["refresh_token"].as_str().unwrap().to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn hook_latency() {
    let receiver = Receiver::start(|input: &Value| {
        let mut claims = input["claims"].clone();
        claims["tenant_id"] = json!("acme");
        axum::Json(json!({ "claims": claims })).into_response()
    })
    .await;
    let plain = TestApp::spawn_with(&[NO_LIMITS]).await;
    let pg = TestApp::spawn_with(&[
        NO_LIMITS,
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
        (
            "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
            "pg-functions://postgres/public/add_claims",
        ),
    ])
    .await;
    sqlx::raw_sql(FUNCTION).execute(&mut pg.db().await).await.unwrap();
    let http = TestApp::spawn_with(&[
        NO_LIMITS,
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI", &receiver.url),
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    let mut clients = vec![
        Client::new(&plain).await,
        Client::new(&pg).await,
        Client::new(&http).await,
    ];
    // Warm up every server (connections, caches), then interleave the three servers round by
    // round, so that whatever else the machine does weighs on all of them alike.
    for client in &mut clients {
        client.round().await;
        client.sign_ins.clear();
        client.refreshes.clear();
    }
    for _ in 0..ROUNDS {
        for client in &mut clients {
            client.round().await;
        }
    }
    let results: Vec<((f64, f64), (f64, f64))> = clients
        .into_iter()
        .map(|c| (summary(c.sign_ins), summary(c.refreshes)))
        .collect();
    let base = results[0];
    println!("{ROUNDS} requests each, interleaved; median / p95 in ms (+ median added by the hook)");
    for (name, (sign_in, refresh)) in ["no hook", "pg hook", "http hook"].into_iter().zip(results) {
        println!(
            "{name:9} sign-in {:.2} / {:.2} (+{:.2})  refresh {:.2} / {:.2} (+{:.2})",
            sign_in.0,
            sign_in.1,
            sign_in.0 - base.0.0,
            refresh.0,
            refresh.1,
            refresh.0 - base.1.0
        );
    }
}
