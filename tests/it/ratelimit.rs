//! Rate limiting per client address: budgets, headers, keys, admin bypass, memory.
//!
//! The limiter runs before routing, so these tests work whether or not the limited routes
//! exist yet: allowed requests are "anything but 429", refused ones are 429.

use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

const XFF: &str = "x-forwarded-for";

/// A server that keys by `X-Forwarded-For`, with extra settings.
async fn behind_proxy(settings: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For")];
    vars.extend_from_slice(settings);
    TestApp::spawn_with(&vars).await
}

fn from(app: &TestApp, method: Method, path: &str, client: &str) -> RequestBuilder {
    app.request(method, path).header(XFF, client)
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("request")
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn number(response: &Response, name: &str) -> u64 {
    header(response, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} header on {}", response.status()))
}

/// Past the limiter means the route's own answer: not a 429, and not a server error either
/// (a broken route must not count as "allowed").
pub(crate) fn assert_allowed(response: &Response, what: &str) {
    let status = response.status();
    assert!(
        status != 429 && !status.is_server_error(),
        "{what} should pass the limiter, got {status}"
    );
}

#[tokio::test]
async fn the_request_over_budget_gets_429_with_headers() {
    let app = behind_proxy(&[("GOTRUE_RATE_LIMIT_VERIFY", "2/1h")]).await;
    let client = "203.0.113.1";

    // Both mounts and every method of /verify draw from one budget.
    let first = send(from(&app, Method::GET, "/auth/v1/verify", client)).await;
    assert_allowed(&first, "first");
    assert_eq!(number(&first, "ratelimit-limit"), 2);
    assert_eq!(number(&first, "ratelimit-remaining"), 1);
    assert_eq!(number(&first, "ratelimit-reset"), 30 * 60);
    let second = send(from(&app, Method::HEAD, "/verify", client)).await;
    assert_allowed(&second, "second");
    assert_eq!(number(&second, "ratelimit-remaining"), 0);

    let refused =
        send(from(&app, Method::GET, "/auth/v1/verify", client).header("Origin", "http://localhost:3000")).await;
    assert_eq!(refused.status(), 429);
    let retry_after = number(&refused, "retry-after");
    assert!((29 * 60..=30 * 60).contains(&retry_after), "{retry_after}");
    assert_eq!(number(&refused, "ratelimit-limit"), 2);
    assert_eq!(number(&refused, "ratelimit-remaining"), 0);
    assert!(number(&refused, "ratelimit-reset") >= retry_after);
    // CORS applies to the 429 too, and a browser may read the limit headers.
    assert_eq!(header(&refused, "access-control-allow-origin"), Some("*"));
    let exposed = header(&refused, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("retry-after") && exposed.contains("ratelimit-reset"));
    let body = assert_error(refused, 429, "over_request_rate_limit").await;
    assert_eq!(body["msg"], "Request rate limit reached");

    // The versioned error format applies as to any error.
    let versioned =
        send(from(&app, Method::GET, "/verify", client).header("X-Supabase-Api-Version", "2024-01-01")).await;
    assert_eq!(versioned.status(), 429);
    let body: Value = versioned.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": "over_request_rate_limit", "message": "Request rate limit reached"})
    );

    // Another address has its own budget; other groups and unlimited routes are unaffected.
    assert_allowed(
        &send(from(&app, Method::GET, "/verify", "203.0.113.2")).await,
        "another address",
    );
    assert_allowed(&send(from(&app, Method::POST, "/otp", client)).await, "another group");
    let health = send(from(&app, Method::GET, "/health", client)).await;
    assert_eq!(health.status(), 200);
    assert!(header(&health, "ratelimit-limit").is_none());
}

#[tokio::test]
async fn the_budget_refills() {
    let app = behind_proxy(&[("GOTRUE_RATE_LIMIT_VERIFY", "2/1s")]).await;
    let verify = || send(from(&app, Method::GET, "/verify", "198.51.100.7"));
    assert_allowed(&verify().await, "first");
    assert_allowed(&verify().await, "second");
    let refused = verify().await;
    assert_eq!(refused.status(), 429);
    assert_eq!(number(&refused, "retry-after"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A full second refills both requests.
    assert_allowed(&verify().await, "after the refill");
    assert_allowed(&verify().await, "after the refill, again");
}

#[tokio::test]
async fn forwarding_headers_are_only_trusted_when_configured() {
    // Not configured: every request comes from the test's socket address, whatever it claims.
    let app = TestApp::spawn_with(&[("GOTRUE_RATE_LIMIT_VERIFY", "2/1h")]).await;
    for claimed in ["192.0.2.1", "192.0.2.2"] {
        assert_allowed(&send(from(&app, Method::GET, "/verify", claimed)).await, claimed);
    }
    let spoofed = send(from(&app, Method::GET, "/verify", "192.0.2.3")).await;
    assert_eq!(spoofed.status(), 429, "a spoofed header must not give a fresh budget");

    // Configured as another header: X-Forwarded-For is still ignored, and a request without
    // the configured header falls back to the socket address.
    let app = TestApp::spawn_with(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"),
        ("GOTRUE_RATE_LIMIT_HEADER", "X-Real-IP"),
    ])
    .await;
    let real = |ip: &str| app.request(Method::GET, "/verify").header("x-real-ip", ip);
    assert_allowed(&send(real("192.0.2.10")).await, "real ip");
    assert_eq!(send(real("192.0.2.10")).await.status(), 429);
    assert_allowed(&send(real("192.0.2.11")).await, "another real ip");
    assert_allowed(
        &send(from(&app, Method::GET, "/verify", "192.0.2.10")).await,
        "no configured header: socket address",
    );
    let again = send(from(&app, Method::GET, "/verify", "192.0.2.12")).await;
    assert_eq!(again.status(), 429, "socket address budget is spent");
}

#[tokio::test]
async fn admin_calls_are_not_limited() {
    let app = TestApp::spawn_with(&[("GOTRUE_RATE_LIMIT_OTP", "1/1h")]).await;
    let admin = app.api_key("service_role");
    for n in 0..5 {
        let response = send(app.request(Method::POST, "/recover").bearer_auth(&admin)).await;
        assert_allowed(&response, &format!("admin call {n}"));
        assert!(header(&response, "ratelimit-limit").is_none());
    }
    // The anon key is not an admin key; neither is a service_role token signed elsewhere.
    let anon = app.api_key("anon");
    let post = || app.request(Method::POST, "/recover");
    assert_allowed(&send(post().bearer_auth(&anon)).await, "first anon call");
    assert_eq!(send(post().bearer_auth(&anon)).await.status(), 429);
    let forged = latchkey::auth::jwt::api_key(
        &latchkey::auth::jwt::JwtKeys::new(&"another-secret-another-secret-xxxx".to_owned().into()),
        "service_role",
        chrono::Utc::now().timestamp(),
        3600,
    )
    .unwrap();
    assert_eq!(send(post().bearer_auth(&forged)).await.status(), 429);
}

#[tokio::test]
async fn gotrues_groups_share_and_split_budgets() {
    let app = behind_proxy(&[
        ("GOTRUE_RATE_LIMIT_OTP", "3/1h"),
        ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "1/1h"),
        ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "3/1h"),
    ])
    .await;
    // /otp, /magiclink and /recover share the OTP bucket; /resend is the fourth.
    let client = "198.51.100.1";
    for path in ["/otp", "/auth/v1/magiclink", "/recover"] {
        assert_allowed(&send(from(&app, Method::POST, path, client)).await, path);
    }
    assert_eq!(send(from(&app, Method::POST, "/resend", client)).await.status(), 429);
    assert_eq!(send(from(&app, Method::PUT, "/user", client)).await.status(), 429);

    // A password sign-in takes from SIGN_IN_SIGN_UPS and TOKEN_REFRESH; refreshes only from
    // TOKEN_REFRESH, so they go on after sign-ins are refused.
    let client = "198.51.100.2";
    let token = |grant: &str| from(&app, Method::POST, &format!("/token?grant_type={grant}"), client).json(&json!({}));
    assert_allowed(&send(token("password")).await, "first sign-in");
    assert_eq!(send(token("password")).await.status(), 429);
    let refresh = send(token("refresh_token")).await;
    assert_allowed(&refresh, "refresh");
    assert_eq!(number(&refresh, "ratelimit-remaining"), 1);
    assert_allowed(&send(token("refresh_token")).await, "second refresh");
    assert_eq!(send(token("refresh_token")).await.status(), 429);
    // POST /refresh is the same refresh: no way around the budget.
    let refresh = from(&app, Method::POST, "/auth/v1/refresh", client).json(&json!({}));
    assert_eq!(send(refresh).await.status(), 429);
}

#[tokio::test]
async fn anonymous_sign_ups_have_their_own_budget() {
    let app = behind_proxy(&[
        ("GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", "1/1h"),
        ("GOTRUE_RATE_LIMIT_OTP", "5/1h"),
    ])
    .await;
    let signup = |body: Value| from(&app, Method::POST, "/signup", "198.51.100.9").json(&body);
    let anonymous = json!({"data": {"nickname": "x"}});
    assert_allowed(&send(signup(anonymous.clone())).await, "first anonymous");
    let refused = send(signup(anonymous)).await;
    assert_error(refused, 429, "over_request_rate_limit").await;
    let with_email = json!({"email": crate::helpers::random_email(), "password": "a-long-password-1"});
    assert_allowed(&send(signup(with_email)).await, "sign-up with an email");

    // Reading the body to tell them apart keeps the 1 MiB limit (the default would be 2 MiB).
    let big = json!({"email": "a@example.com", "data": {"x": "y".repeat(1536 * 1024)}});
    assert_error(send(signup(big)).await, 413, "request_entity_too_large").await;
}

#[tokio::test]
async fn limiting_can_be_switched_off() {
    let app = behind_proxy(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"),
        ("LATCHKEY_RATE_LIMIT_ENABLED", "false"),
    ])
    .await;
    for n in 0..5 {
        let response = send(from(&app, Method::GET, "/verify", "192.0.2.1")).await;
        assert_allowed(&response, &format!("request {n}"));
        assert!(header(&response, "ratelimit-limit").is_none());
    }
}

/// 100 000 distinct addresses in ten waves, with a 10 ms window and pruning every 100 ms:
/// the number of addresses held stays far below the number seen instead of growing to
/// 100 000.
///
/// The requests go through the server's own router and state in process rather than over
/// TCP: the middleware stack and limiters are the same, and a debug build needs over two
/// minutes for 100 000 requests over sockets. Each carries the socket address a local proxy
/// would have, so the header is believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_many_addresses() {
    const WAVES: u32 = 10;
    const PER_WAVE: u32 = 10_000;
    const TASKS: u32 = 4;
    let app = behind_proxy(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "10/10ms"),
        ("LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL", "100ms"),
    ])
    .await;
    let router = latchkey::api::app(app.state.clone());
    let limits = app.state.limiter.clone();
    let mut peak = 0;
    let mut after_pruning = Vec::new();
    let started = Instant::now();
    for wave in 0..WAVES {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let first = 0x0a00_0000 + wave * PER_WAVE + task * (PER_WAVE / TASKS);
                tokio::spawn(send_from_addresses(
                    router.clone(),
                    limits.clone(),
                    first..first + PER_WAVE / TASKS,
                ))
            })
            .collect();
        for task in tasks {
            peak = peak.max(task.await.unwrap());
        }
        // The pruning task runs every 100 ms; give it a few ticks.
        let deadline = Instant::now() + Duration::from_secs(5);
        while limits.keys_held() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        after_pruning.push(limits.keys_held());
    }
    eprintln!(
        "{} addresses in {:?}; keys held: at most {peak}, after each wave {after_pruning:?}",
        WAVES * PER_WAVE,
        started.elapsed()
    );
    assert!(
        peak <= PER_WAVE as usize,
        "{peak} keys held: idle addresses were not dropped"
    );
    assert!(after_pruning.iter().all(|&n| n == 0), "{after_pruning:?}");
}

/// Sends one request from each address (as IPv4 numbers) through `router`; returns the most
/// keys the limiters held at any of the samples taken along the way.
async fn send_from_addresses(
    router: axum::Router,
    limits: std::sync::Arc<dyn latchkey::ratelimit::Limiter>,
    addresses: std::ops::Range<u32>,
) -> usize {
    use tower::ServiceExt;

    let mut most = 0;
    for (i, n) in addresses.enumerate() {
        let mut request = axum::http::Request::get("/auth/v1/verify")
            .header(XFF, std::net::Ipv4Addr::from(n).to_string())
            .body(axum::body::Body::empty())
            .expect("a valid request");
        let proxy = std::net::SocketAddr::from(([127, 0, 0, 1], 4711));
        request.extensions_mut().insert(axum::extract::ConnectInfo(proxy));
        let response = router.clone().oneshot(request).await.unwrap();
        assert_ne!(response.status(), 429);
        assert_eq!(response.headers()["ratelimit-limit"], "10");
        if i % 500 == 0 {
            most = most.max(limits.keys_held());
        }
    }
    most
}

/// `LATCHKEY_RATE_LIMIT_LOOPBACK=false` exempts a loopback peer (the operator's choice for a
/// local proxy that sets no header); an address forwarded by a configured header still counts.
#[tokio::test]
async fn loopback_clients_can_be_exempted_by_the_operator() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"),
        ("LATCHKEY_RATE_LIMIT_LOOPBACK", "false"),
    ])
    .await;
    for n in 0..3 {
        assert_allowed(
            &send(app.request(Method::GET, "/verify")).await,
            &format!("loopback call {n}"),
        );
    }
    // Behind a configured header the forwarded address counts, also from loopback.
    let app = TestApp::spawn_with(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"),
        ("LATCHKEY_RATE_LIMIT_LOOPBACK", "false"),
        ("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For"),
    ])
    .await;
    assert_allowed(&send(from(&app, Method::GET, "/verify", "198.51.100.7")).await, "first");
    assert_eq!(
        send(from(&app, Method::GET, "/verify", "198.51.100.7")).await.status(),
        429
    );
}
