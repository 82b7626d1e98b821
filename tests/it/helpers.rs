//! Test harness: a fresh database per test in one shared cluster (`database`), and the real
//! server.

#![allow(dead_code)]

use std::collections::HashMap;

use latchkey::config::Config;
use latchkey::startup::Application;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use uuid::Uuid;

mod database;
mod pgbouncer;
mod redis;
mod services;

pub use database::{TestDatabase, fresh_database};
pub use pgbouncer::{PgBouncer, migrate_directly, prepare_for_pooler};
pub use redis::RedisServer;
pub use services::{Process, ScratchDir, free_port, program_or_skip, wait_for_port};

pub const JWT_SECRET: &str = "integration-test-secret-with-at-least-32-chars";

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub client: reqwest::Client,
    pub state: latchkey::api::state::AppState,
    stop: Option<oneshot::Sender<()>>,
    /// Kept until the server is told to stop: the database goes with the last server on it.
    database: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // `self.database` is dropped after this, so the server has been told to stop first.
    }
}

/// The variables every test server gets; tests add or override some.
pub fn base_vars(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("GOTRUE_API_HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("GOTRUE_JWT_SECRET", JWT_SECRET),
        ("GOTRUE_SITE_URL", "http://localhost:3000"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
        ("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(&fresh_database().await, overrides).await
    }

    /// Starts a server on an existing database (several servers can share one).
    pub async fn spawn_on(database: &TestDatabase, overrides: &[(&str, &str)]) -> TestApp {
        let mut vars = base_vars(database.url());
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = Config::from_vars(vars).expect("valid test config");
        let app = Application::build(config).await.expect("server builds");
        let address = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        TestApp {
            address,
            database_url: database.url().to_owned(),
            client,
            state,
            stop: Some(stop),
            database: database.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("request")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put_json_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PUT, path)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// An API key (`role` = anon, service_role, ...) signed with the test secret.
    pub fn api_key(&self, role: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        latchkey::auth::jwt::api_key(self.state.sessions.tokens().keys(), role, now, 3600).expect("sign key")
    }

    /// Signs up (autoconfirm is on by default in tests) and returns the session JSON.
    pub async fn sign_up(&self, email: &str, password: &str) -> Value {
        let response = self
            .post_json("/auth/v1/signup", &json!({ "email": email, "password": password }))
            .await;
        assert_eq!(response.status(), 200, "sign-up of {email}");
        response.json().await.expect("session JSON")
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/v1/token?grant_type=password",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/auth/v1/token?grant_type=refresh_token",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// Signs in and returns the session, failing the test unless it is one.
    pub async fn signed_in(&self, email: &str, password: &str) -> Value {
        expect_session(self.sign_in(email, password).await).await
    }

    /// Refreshes and returns the new session, failing the test unless it is one.
    pub async fn refreshed(&self, refresh_token: &str) -> Value {
        expect_session(self.refresh(refresh_token).await).await
    }

    /// Lets connections to the app's database in (`true`), or ends them and keeps them out
    /// (`false`), as a database outage would.
    pub async fn set_database_up(&self, up: bool) {
        let url = url::Url::parse(&self.database_url).expect("database URL");
        let name = url.path().trim_start_matches('/').to_owned();
        let mut admin_url = url.clone();
        admin_url.set_path("/postgres");
        let mut admin = PgConnection::connect(admin_url.as_str())
            .await
            .expect("connect as admin");
        let alter = format!("alter database {name} allow_connections {up}");
        sqlx::query(sqlx::AssertSqlSafe(alter))
            .execute(&mut admin)
            .await
            .expect("alter database");
        if !up {
            sqlx::query(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = $1 and pid <> pg_backend_pid()",
            )
            .bind(&name)
            .execute(&mut admin)
            .await
            .expect("end connections");
        }
    }

    pub async fn db(&self) -> PgConnection {
        let mut conn = PgConnection::connect(&self.database_url)
            .await
            .expect("connect to test database");
        sqlx::query("set search_path to auth, public")
            .execute(&mut conn)
            .await
            .expect("search_path");
        conn
    }
}

pub fn random_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

/// Asserts a GoTrue legacy error: status, `error_code`, and the `x-sb-error-code` header.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status for expected {code}");
    assert_eq!(
        response.headers().get("x-sb-error-code").and_then(|v| v.to_str().ok()),
        Some(code),
        "x-sb-error-code header"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["code"], status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(body["msg"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// Asserts a 200 with a GoTrue session (an access token, a refresh token, the user) and returns
/// it. Tests compare sessions with each other; without this, two error bodies compare equal.
pub async fn expect_session(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("session body is JSON");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer", "{body}");
    let access = body["access_token"].as_str().unwrap_or_default();
    assert_eq!(access.split('.').count(), 3, "access_token is a JWT: {body}");
    let refresh = body["refresh_token"].as_str().unwrap_or_default();
    assert!(!refresh.is_empty(), "refresh_token: {body}");
    assert!(body["user"]["id"].is_string(), "user: {body}");
    body
}

/// Decodes a JWT's payload without verifying it.
/// The refresh token of a session answer.
pub fn refresh_token(session: &Value) -> &str {
    session["refresh_token"].as_str().unwrap()
}

pub fn jwt_payload(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}
