//! Issue #21: JSON logs with GoTrue's fields (one "request completed" line per request, no
//! secret in any field), request ids, Prometheus metrics.

use std::collections::HashMap;

use reqwest::Client;
use serde_json::{Value, json};

use crate::binary::{Server, json_lines};
use crate::helpers::{TestApp, fresh_database, random_email};

const PASSWORD: &str = "a-secret-password-never-logged";

async fn post(client: &Client, server: &Server, path: &str, body: Value) -> reqwest::Response {
    client.post(server.url(path)).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn json_log_lines_hold_gotrues_fields_and_no_secret() {
    let database = fresh_database().await;
    let server = Server::start(database.url(), &[]);
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let email = random_email();
    let credentials = json!({ "email": email, "password": PASSWORD });
    let signed_up = post(&client, &server, "/auth/v1/signup", credentials.clone()).await;
    assert_eq!(signed_up.status(), 200);
    let session: Value = signed_up.json().await.unwrap();
    let refresh_token = session["refresh_token"].as_str().unwrap().to_owned();
    let wrong = json!({ "email": email, "password": "not-the-password" });
    let refused = post(&client, &server, "/token?grant_type=password", wrong).await;
    assert_eq!(refused.status(), 400);
    let refused_id = refused.headers()["x-request-id"].to_str().unwrap().to_owned();
    let link = "/auth/v1/verify?token=a-secret-token-in-the-query&type=signup";
    client.get(server.url(link)).send().await.unwrap();
    let refresh = json!({ "refresh_token": refresh_token });
    assert_eq!(
        post(&client, &server, "/token?grant_type=refresh_token", refresh)
            .await
            .status(),
        200
    );
    assert_eq!(client.get(server.url("/health")).send().await.unwrap().status(), 200);
    server
        .wait_for_line(|line| line.contains("/token") && line.contains("\"status\":200"))
        .await;

    let lines = json_lines(&server.stderr());
    let completed: Vec<&Value> = lines.iter().filter(|l| l["msg"] == "request completed").collect();
    assert_eq!(
        completed.len(),
        4,
        "one line per request, none for /health: {completed:#?}"
    );
    for line in &lines {
        assert!(line["level"].is_string() && line["msg"].is_string(), "{line}");
        let time = line["time"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|_| panic!("RFC 3339 time: {line}"));
    }
    for line in &completed {
        assert_eq!(line["component"], "api", "{line}");
        assert_eq!(line["remote_addr"], "127.0.0.1", "{line}");
        assert!(line["duration"].is_u64(), "duration in nanoseconds: {line}");
        assert!(line["request_id"].as_str().is_some_and(|id| id.len() == 36), "{line}");
        assert!(line["method"].is_string() && line["status"].is_u64(), "{line}");
    }
    let failed = completed.iter().find(|l| l["status"] == 400).unwrap();
    assert_eq!(failed["level"], "warning", "GoTrue logs 4xx at warning: {failed}");
    assert_eq!(failed["error_code"], "invalid_credentials");
    assert_eq!(failed["path"], "/token");
    assert_eq!(failed["grant_type"], "password");
    assert_eq!(failed["method"], "POST");
    assert_eq!(failed["request_id"], refused_id.as_str(), "the id the client got back");
    let verify = completed.iter().find(|l| l["path"] == "/auth/v1/verify").unwrap();
    assert!(verify.get("error_code").is_some() || verify["status"].is_u64());

    let everything = server.stderr().join("\n");
    for secret in [PASSWORD, "a-secret-token-in-the-query", &email, &refresh_token] {
        assert!(!everything.contains(secret), "{secret} reached the log:\n{everything}");
    }
    let access_token = session["access_token"].as_str().unwrap();
    assert!(!everything.contains(access_token));
}

#[tokio::test]
async fn request_ids_come_from_the_configured_proxy_header_only() {
    let app = TestApp::spawn().await;
    let forged = app
        .request(reqwest::Method::GET, "/settings")
        .header("x-request-id", "forged-id");
    let response = forged.send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "forged-id", "a client does not choose its request id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let app = TestApp::spawn_with(&[("GOTRUE_API_REQUEST_ID_HEADER", "X-Proxy-Request-Id")]).await;
    let proxied = app
        .request(reqwest::Method::GET, "/settings")
        .header("x-proxy-request-id", "edge-42");
    let response = proxied.send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "edge-42");
    let unusable = app
        .request(reqwest::Method::GET, "/settings")
        .header("x-proxy-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    let id = unusable.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "an oversized id is replaced: {id}");
}

/// `name{labels} value` lines of a Prometheus text page.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(series, value)| (series.to_owned(), value.parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn metrics_count_sign_ins_failures_refreshes_mails_and_refusals() {
    let database = fresh_database().await;
    let server = Server::start(
        database.url(),
        &[
            ("GOTRUE_METRICS_ENABLED", "true"),
            ("GOTRUE_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
            ("LATCHKEY_RATE_LIMIT_AUTHORIZE", "1/1h"),
        ],
    );
    let line = server.wait_for_line(|line| line.contains("Prometheus metrics")).await;
    let announced: Value = serde_json::from_str(&line).unwrap();
    let metrics_url = format!("http://{}/metrics", announced["address"].as_str().unwrap());
    let client = Client::new();
    let email = random_email();
    let credentials = json!({ "email": email, "password": PASSWORD });
    let session: Value = post(&client, &server, "/signup", credentials.clone())
        .await
        .json()
        .await
        .unwrap();
    post(&client, &server, "/auth/v1/token?grant_type=password", credentials).await;
    let wrong = json!({ "email": email, "password": "wrong-password" });
    assert_eq!(
        post(&client, &server, "/token?grant_type=password", wrong)
            .await
            .status(),
        400
    );
    let refresh = json!({ "refresh_token": session["refresh_token"] });
    assert_eq!(
        post(&client, &server, "/token?grant_type=refresh_token", refresh)
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&client, &server, "/recover", json!({ "email": email }))
            .await
            .status(),
        200
    );
    for _ in 0..2 {
        client
            .get(server.url("/authorize?provider=github"))
            .send()
            .await
            .unwrap();
    }

    let page = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    let found = samples(&page);
    let value = |series: &str| {
        found
            .get(series)
            .copied()
            .unwrap_or_else(|| panic!("no {series} in\n{page}"))
    };
    // The sign-up (autoconfirmed: a password session) and the sign-in.
    assert_eq!(value(r#"latchkey_sign_ins_total{method="password"}"#), 2.0);
    assert_eq!(value(r#"latchkey_sign_ups_total{method="email"}"#), 1.0);
    assert_eq!(value("latchkey_token_refreshes_total"), 1.0);
    assert_eq!(
        value(r#"latchkey_auth_failures_total{route="/token",error_code="invalid_credentials"}"#),
        1.0
    );
    assert_eq!(
        value(r#"latchkey_http_requests_total{method="POST",route="/token",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"latchkey_http_requests_total{method="POST",route="/token",status="400"}"#),
        1.0
    );
    assert_eq!(
        value(r#"latchkey_http_request_duration_seconds_count{method="POST",route="/token",status="200"}"#),
        2.0
    );
    assert_eq!(value(r#"latchkey_rate_limit_refusals_total{group="authorize"}"#), 1.0);
    assert_eq!(value(r#"latchkey_emails_sent_total{kind="recovery"}"#), 1.0);
    assert_eq!(value("latchkey_sms_sent_total"), 0.0);
    assert!(value(r#"latchkey_db_connections{pool="main",state="idle"}"#) >= 0.0);
    assert!(value(r#"latchkey_db_connections{pool="hot",state="in_use"}"#) >= 0.0);
    assert_eq!(value("latchkey_password_hashes_queued"), 0.0);
    assert!(
        !page.contains(&email) && !page.contains("provider=github"),
        "no client data in labels"
    );
}
