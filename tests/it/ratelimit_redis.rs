//! The Redis rate-limit store (`LATCHKEY_RATE_LIMIT_REDIS_URL`): the same verdicts and headers
//! as the in-memory store, one budget for every server on the same Redis (per client, per
//! account, and the global email budget), and what happens while Redis is away.
//!
//! Each test runs its own `redis-server` (skipped with a message when it is not installed;
//! `scripts/test.sh` installs it and makes a missing one a failure).

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{RedisServer, TestApp, assert_error, fresh_database, random_email};
use crate::ratelimit::assert_allowed;

const XFF: &str = "x-forwarded-for";

/// Servers on one database, keyed by `X-Forwarded-For`, with `settings`.
async fn servers(count: usize, settings: &[(&str, &str)]) -> Vec<TestApp> {
    let database = fresh_database().await;
    let mut vars = vec![("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For")];
    vars.extend_from_slice(settings);
    let mut apps = Vec::new();
    for _ in 0..count {
        apps.push(TestApp::spawn_on(&database, &vars).await);
    }
    apps
}

async fn send(app: &TestApp, method: Method, path: &str, client: &str, body: Option<Value>) -> Response {
    let request = app.request(method, path).header(XFF, client);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}

/// Status and the limiter's headers, to compare two stores answer for answer.
fn seen(response: &Response) -> (u16, Vec<String>) {
    let headers = [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
    ]
    .iter()
    .map(|name| {
        let value = response.headers().get(*name).and_then(|v| v.to_str().ok());
        format!("{name}={}", value.unwrap_or("-"))
    })
    .collect();
    (response.status().as_u16(), headers)
}

/// A run of requests touching one group, two groups at once (a password sign-in draws from
/// SIGN_IN_SIGN_UPS and TOKEN_REFRESH, and a refusal by the first leaves the second alone),
/// and the per-account bucket.
async fn scripted_run(app: &TestApp) -> Vec<(u16, Vec<String>)> {
    let client = "203.0.113.9";
    let token = |grant: &str| format!("/token?grant_type={grant}");
    let code = json!({"type": "email", "email": "victim@example.com", "token": "000000"});
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(seen(&send(app, Method::GET, "/verify", client, None).await));
    }
    for grant in [
        "password",
        "password",
        "refresh_token",
        "refresh_token",
        "refresh_token",
    ] {
        let response = send(app, Method::POST, &token(grant), client, Some(json!({}))).await;
        answers.push(seen(&response));
    }
    for n in 0..3 {
        let other_client = format!("198.51.100.{n}");
        let response = send(app, Method::POST, "/verify", &other_client, Some(code.clone())).await;
        answers.push(seen(&response));
    }
    answers
}

const SCRIPTED_LIMITS: [(&str, &str); 4] = [
    ("GOTRUE_RATE_LIMIT_VERIFY", "2/1h"),
    ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "1/1h"),
    ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "3/1h"),
    ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "2/1h"),
];

#[tokio::test]
async fn redis_gives_the_same_answers_and_headers_as_memory() {
    let Some(redis) = RedisServer::start("redis_gives_the_same_answers_and_headers_as_memory").await else {
        return;
    };
    let in_memory = servers(1, &SCRIPTED_LIMITS).await;
    let mut with_redis_vars = SCRIPTED_LIMITS.to_vec();
    let url = redis.url();
    with_redis_vars.push(("LATCHKEY_RATE_LIMIT_REDIS_URL", &url));
    let with_redis = servers(1, &with_redis_vars).await;

    let expected = scripted_run(&in_memory[0]).await;
    let got = scripted_run(&with_redis[0]).await;
    assert_eq!(got, expected);
    // The buckets are in Redis: the first client's verify, sign-in and refresh buckets, the
    // verify buckets of the three other clients, and the account's.
    assert_eq!(redis.keys().await, 7);
    // And the run says what it should: the third /verify and the second sign-in are refused,
    // the refused sign-in did not take from TOKEN_REFRESH (two refreshes pass, the third not),
    // the account's third code is refused whatever the client address.
    let refused: Vec<usize> = (0..got.len()).filter(|&n| got[n].0 == 429).collect();
    assert_eq!(refused, [2, 4, 7, 10], "{got:?}");
    assert!(got.iter().all(|(status, _)| *status < 500), "{got:?}");
    assert_eq!(
        got[2].1,
        [
            "ratelimit-limit=2",
            "ratelimit-remaining=0",
            "ratelimit-reset=3600",
            "retry-after=1800"
        ]
    );
}

#[tokio::test]
async fn servers_on_one_redis_share_one_budget() {
    let Some(redis) = RedisServer::start("servers_on_one_redis_share_one_budget").await else {
        return;
    };
    let url = redis.url();
    let apps = servers(
        3,
        &[
            ("GOTRUE_RATE_LIMIT_VERIFY", "4/1h"),
            ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "2/1h"),
            ("LATCHKEY_RATE_LIMIT_REDIS_URL", &url),
        ],
    )
    .await;
    // Four requests spread over three servers: the remaining count runs down across them.
    for n in 0..4 {
        let response = send(&apps[n % 3], Method::GET, "/verify", "203.0.113.1", None).await;
        assert_allowed(&response, &format!("request {n}"));
        assert_eq!(response.headers()["ratelimit-remaining"], (3 - n).to_string().as_str());
    }
    for app in &apps {
        let refused = send(app, Method::GET, "/auth/v1/verify", "203.0.113.1", None).await;
        assert_error(refused, 429, "over_request_rate_limit").await;
    }
    // Another client still has its own budget.
    assert_allowed(
        &send(&apps[0], Method::GET, "/verify", "203.0.113.2", None).await,
        "another client",
    );

    // One account's codes, guessed from a new address on each server: two in all, not six.
    let code = json!({"type": "email", "email": random_email(), "token": "000000"});
    for (n, app) in apps.iter().enumerate() {
        let client = format!("198.51.100.{n}");
        let response = send(app, Method::POST, "/verify", &client, Some(code.clone())).await;
        let expected = if n < 2 { 403 } else { 429 };
        assert_eq!(response.status(), expected, "guess {n}");
    }
}

#[tokio::test]
async fn the_email_budget_is_shared_too() {
    let Some(redis) = RedisServer::start("the_email_budget_is_shared_too").await else {
        return;
    };
    let url = redis.url();
    let apps = servers(
        2,
        &[
            ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "2/1h"),
            ("LATCHKEY_RATE_LIMIT_REDIS_URL", &url),
        ],
    )
    .await;
    // Each /recover takes one mail from the server-wide budget, whether or not it sends.
    for (n, app) in [&apps[0], &apps[1]].into_iter().enumerate() {
        let body = json!({"email": random_email()});
        let response = send(app, Method::POST, "/recover", &format!("192.0.2.{n}"), Some(body)).await;
        assert_eq!(response.status(), 200, "mail {n}");
    }
    let body = json!({"email": random_email()});
    let refused = send(&apps[0], Method::POST, "/recover", "192.0.2.9", Some(body)).await;
    assert_error(refused, 429, "over_email_send_rate_limit").await;
}

/// Polls `request` until it is allowed (Redis is tried again a second after a failure).
async fn until_allowed(mut request: impl AsyncFnMut() -> Response) -> Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = request().await;
        assert!(!response.status().is_server_error(), "{}", response.status());
        if response.status() != 429 || Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_redis_open_means_local_limits_until_it_returns() {
    let Some(mut redis) = RedisServer::start("without_redis_open_means_local_limits_until_it_returns").await else {
        return;
    };
    let url = redis.url();
    let apps = servers(
        1,
        &[
            ("GOTRUE_RATE_LIMIT_VERIFY", "2/1h"),
            ("LATCHKEY_RATE_LIMIT_REDIS_URL", &url),
        ],
    )
    .await;
    let verify = async || send(&apps[0], Method::GET, "/verify", "203.0.113.5", None).await;
    let first = verify().await;
    assert_eq!(first.headers()["ratelimit-remaining"], "1");

    // Redis gone: requests are served under this server's own limits, never unlimited.
    redis.stop();
    let local = verify().await;
    assert_allowed(&local, "first request without Redis");
    assert_eq!(local.headers()["ratelimit-remaining"], "1", "a fresh local bucket");
    assert_allowed(&verify().await, "second request without Redis");
    assert_error(verify().await, 429, "over_request_rate_limit").await;
    assert_eq!(apps[0].get("/health").await.status(), 200);

    // Redis back (empty): the shared bucket decides again.
    redis.start_again().await;
    let back = until_allowed(verify).await;
    assert_allowed(&back, "after Redis returned");
    assert_eq!(back.headers()["ratelimit-remaining"], "1");
}

#[tokio::test]
async fn without_redis_closed_refuses_limited_requests_until_it_returns() {
    let Some(mut redis) = RedisServer::start("without_redis_closed_refuses_limited_requests_until_it_returns").await
    else {
        return;
    };
    let url = redis.url();
    let apps = servers(
        1,
        &[
            ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
            ("LATCHKEY_RATE_LIMIT_REDIS_URL", &url),
            ("LATCHKEY_RATE_LIMIT_REDIS_FAILURE", "closed"),
        ],
    )
    .await;
    let verify = async || send(&apps[0], Method::GET, "/verify", "203.0.113.6", None).await;
    assert_allowed(&verify().await, "with Redis");

    redis.stop();
    let refused = verify().await;
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_error(refused, 429, "over_request_rate_limit").await;
    let recover = send(
        &apps[0],
        Method::POST,
        "/recover",
        "203.0.113.7",
        Some(json!({"email": random_email()})),
    )
    .await;
    assert_error(recover, 429, "over_request_rate_limit").await;
    // Routes without a limiter do not need Redis.
    assert_eq!(apps[0].get("/settings").await.status(), 200);

    redis.start_again().await;
    assert_allowed(&until_allowed(verify).await, "after Redis returned");
}

#[tokio::test]
async fn a_redis_down_at_start_up_does_not_stop_the_server() {
    let nowhere = "unix:///tmp/latchkey-no-such-redis.sock";
    for (mode, refused) in [("open", false), ("closed", true)] {
        let apps = servers(
            1,
            &[
                ("LATCHKEY_RATE_LIMIT_REDIS_URL", nowhere),
                ("LATCHKEY_RATE_LIMIT_REDIS_FAILURE", mode),
            ],
        )
        .await;
        let response = send(&apps[0], Method::GET, "/verify", "192.0.2.1", None).await;
        if refused {
            assert_error(response, 429, "over_request_rate_limit").await;
        } else {
            assert_allowed(&response, mode);
        }
    }
}
