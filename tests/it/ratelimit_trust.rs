//! Limits that cannot be switched off from outside (issue #14): loopback is limited, the
//! client-address header is believed only from trusted proxies and never earns an exemption,
//! the audit log and sessions record the same address as the limiter, blank emails do not
//! escape the anonymous budget, `/authorize` is limited, and a verification code is limited
//! per account whatever the client address.
//!
//! The tests connect from 127.0.0.1, a trusted proxy by default; setting
//! `LATCHKEY_TRUSTED_PROXIES` to a range without it makes the test an untrusted peer.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::Row;

use crate::fake_providers::FakeProvider;
use crate::helpers::{TestApp, assert_error, random_email};
use crate::ratelimit::assert_allowed;

const XFF: &str = "x-forwarded-for";
const HEADER_XFF: (&str, &str) = ("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For");
/// A range that does not hold 127.0.0.1: the test client is then an untrusted peer.
const UNTRUSTED_LOOPBACK: (&str, &str) = ("LATCHKEY_TRUSTED_PROXIES", "192.0.2.0/24");

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("request")
}

fn verify(app: &TestApp, client: Option<&str>) -> RequestBuilder {
    let request = app.request(Method::GET, "/verify");
    match client {
        Some(ip) => request.header(XFF, ip),
        None => request,
    }
}

#[tokio::test]
async fn loopback_clients_are_limited_by_default() {
    let app = TestApp::spawn_with(&[("GOTRUE_RATE_LIMIT_VERIFY", "1/1h")]).await;
    assert_allowed(&send(verify(&app, None)).await, "first");
    let refused = send(verify(&app, None)).await;
    assert_error(refused, 429, "over_request_rate_limit").await;
}

#[tokio::test]
async fn the_header_is_ignored_from_an_untrusted_peer() {
    let app = TestApp::spawn_with(&[("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"), HEADER_XFF, UNTRUSTED_LOOPBACK]).await;
    assert_allowed(&send(verify(&app, Some("203.0.113.1"))).await, "first");
    let spoofed = send(verify(&app, Some("203.0.113.2"))).await;
    assert_eq!(spoofed.status(), 429, "an untrusted peer cannot claim a fresh address");

    // From a trusted peer (the default ranges hold 127.0.0.1) each address has its budget.
    let app = TestApp::spawn_with(&[("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"), HEADER_XFF]).await;
    assert_allowed(&send(verify(&app, Some("203.0.113.1"))).await, "first client");
    assert_allowed(&send(verify(&app, Some("203.0.113.2"))).await, "second client");
    assert_eq!(send(verify(&app, Some("203.0.113.1"))).await.status(), 429);
    // Appended by the proxy: the right-most untrusted entry counts, not what the client wrote.
    let appended = send(verify(&app, Some("198.51.100.99, 203.0.113.1"))).await;
    assert_eq!(appended.status(), 429, "the left part is the client's own claim");
}

#[tokio::test]
async fn a_header_claiming_loopback_gets_no_exemption() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_RATE_LIMIT_VERIFY", "1/1h"),
        ("LATCHKEY_RATE_LIMIT_LOOPBACK", "false"),
        HEADER_XFF,
    ])
    .await;
    // The operator's opt-out exempts the loopback socket peer...
    for n in 0..3 {
        assert_allowed(&send(verify(&app, None)).await, &format!("loopback peer {n}"));
    }
    // ...but not an address read from the header, whatever it says.
    for claimed in ["127.0.0.1", "::1"] {
        assert_allowed(&send(verify(&app, Some(claimed))).await, claimed);
    }
    // `::ffff:127.0.0.1` is 127.0.0.1, whose budget is spent.
    for claimed in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(send(verify(&app, Some(claimed))).await.status(), 429, "{claimed}");
    }
}

/// Signs up (autoconfirm: a session) claiming `claimed` in X-Forwarded-For; returns the
/// addresses the audit log and the session recorded.
async fn recorded_ips(app: &TestApp, claimed: &str) -> (Vec<String>, String) {
    let body = json!({"email": random_email(), "password": "a-long-password-1"});
    let response = send(app.request(Method::POST, "/signup").header(XFF, claimed).json(&body)).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    let user_id: uuid::Uuid = session["user"]["id"].as_str().unwrap().parse().unwrap();
    let mut db = app.db().await;
    let audit: Vec<String> = sqlx::query_scalar("select distinct ip_address from _auth_audit_log")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let session_ip = sqlx::query("select host(ip) as ip from _auth_sessions where user_id = $1")
        .bind(user_id)
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get::<String, _>("ip");
    (audit, session_ip)
}

#[tokio::test]
async fn audit_log_and_sessions_record_the_limiters_address() {
    let spoofed = "203.0.113.66";
    // No header configured: X-Forwarded-For is nobody's word.
    let app = TestApp::spawn().await;
    assert_eq!(
        recorded_ips(&app, spoofed).await,
        (vec!["127.0.0.1".to_owned()], "127.0.0.1".to_owned())
    );
    // Configured, but from an untrusted peer: still the socket address.
    let app = TestApp::spawn_with(&[HEADER_XFF, UNTRUSTED_LOOPBACK]).await;
    assert_eq!(
        recorded_ips(&app, spoofed).await,
        (vec!["127.0.0.1".to_owned()], "127.0.0.1".to_owned())
    );
    // Configured and trusted: the forwarded client, as the limiter sees it.
    let app = TestApp::spawn_with(&[HEADER_XFF]).await;
    let forwarded = format!("192.0.2.1, {spoofed}");
    assert_eq!(
        recorded_ips(&app, &forwarded).await,
        (vec![spoofed.to_owned()], spoofed.to_owned())
    );
}

#[tokio::test]
async fn blank_emails_and_phones_draw_from_the_anonymous_budget() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", "1/1h"),
        ("GOTRUE_RATE_LIMIT_OTP", "100/1h"),
    ])
    .await;
    let signup = |body: Value| send(app.request(Method::POST, "/signup").json(&body));
    let first = signup(json!({"email": " "})).await;
    assert_eq!(first.status(), 200);
    let session: Value = first.json().await.unwrap();
    assert_eq!(
        session["user"]["is_anonymous"], true,
        "the handler took it as anonymous"
    );
    for body in [
        json!({"email": "\t"}),
        json!({"phone": "  "}),
        json!({"email": "\u{a0}", "phone": "\n"}),
        json!({"email": "", "data": {"x": 1}}),
    ] {
        assert_error(signup(body.clone()).await, 429, "over_request_rate_limit").await;
    }
    let real = signup(json!({"email": random_email(), "password": "a-long-password-1"})).await;
    assert_eq!(real.status(), 200, "sign-ups with an email have their own budget");
}

#[tokio::test]
async fn authorize_is_limited_and_a_refusal_writes_no_flow_state() {
    let github = FakeProvider::github().await;
    let vars: Vec<(String, String)> = github.vars();
    let mut pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend([
        ("LATCHKEY_RATE_LIMIT_AUTHORIZE", "2/1h"),
        ("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true"),
    ]);
    let app = TestApp::spawn_with(&pairs).await;
    let authorize = |path: &str| send(app.request(Method::GET, path));
    assert_eq!(authorize("/authorize?provider=github").await.status(), 302);
    assert_eq!(authorize("/auth/v1/authorize?provider=github").await.status(), 302);
    for path in [
        "/authorize?provider=github",
        "/user/identities/authorize?provider=github",
        "/auth/v1/authorize?provider=nobody",
    ] {
        assert_error(authorize(path).await, 429, "over_request_rate_limit").await;
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from _auth_flow_state")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(rows, 2);
}

fn code(email: &str) -> Value {
    json!({"type": "email", "email": email, "token": "000000"})
}

#[tokio::test]
async fn a_code_is_limited_per_account_across_client_addresses() {
    let app = TestApp::spawn_with(&[("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "3/1h"), HEADER_XFF]).await;
    let victim = random_email();
    let from = |client: String, body: Value| send(app.request(Method::POST, "/verify").header(XFF, client).json(&body));
    // Three guesses from three addresses: wrong codes, but not limited.
    for n in 1..=3 {
        let response = from(format!("203.0.113.{n}"), code(&victim)).await;
        assert_error(response, 403, "otp_expired").await;
    }
    // A fourth address, and another spelling of the same email: the account's budget is spent.
    let refused = from("203.0.113.4".into(), code(&victim)).await;
    assert_error(refused, 429, "over_request_rate_limit").await;
    let respelled = format!("  {} ", victim.to_uppercase());
    assert_eq!(from("203.0.113.5".into(), code(&respelled)).await.status(), 429);
    // Other accounts, and token hashes (not tied to an account), are unaffected.
    assert_error(
        from("203.0.113.4".into(), code(&random_email())).await,
        403,
        "otp_expired",
    )
    .await;
    let hash = json!({"type": "email", "token_hash": "0123456789abcdef"});
    assert_allowed(&from("203.0.113.4".into(), hash).await, "a token hash");
}

#[tokio::test]
async fn the_loopback_opt_out_does_not_lift_the_per_account_limit() {
    let app = TestApp::spawn_with(&[
        ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "2/1h"),
        ("LATCHKEY_RATE_LIMIT_LOOPBACK", "false"),
    ])
    .await;
    let victim = random_email();
    let post = || send(app.request(Method::POST, "/verify").json(&code(&victim)));
    for _ in 0..2 {
        let response = post().await;
        assert!(
            response.headers().get("ratelimit-limit").is_none(),
            "the peer itself is exempt"
        );
        assert_error(response, 403, "otp_expired").await;
    }
    assert_error(post().await, 429, "over_request_rate_limit").await;
}
