//! Foundation: health, settings, error formats, limits, CORS, docs, migrations.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, fresh_database};

#[tokio::test]
async fn health_answers_under_both_mounts() {
    let app = TestApp::spawn().await;
    for path in ["/auth/v1/health", "/health"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["name"], "GoTrue");
        assert!(body["version"].is_string() && body["description"].is_string());
    }
}

#[tokio::test]
async fn jwks_lists_no_symmetric_keys() {
    let app = TestApp::spawn().await;
    let response = app.get("/auth/v1/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=600");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"keys": []}));
}

#[tokio::test]
async fn settings_reflect_the_configuration() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_DISABLE_SIGNUP", "true"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "false"),
    ])
    .await;
    let body: Value = app.get("/auth/v1/settings").await.json().await.unwrap();
    assert_eq!(body["disable_signup"], true);
    assert_eq!(body["mailer_autoconfirm"], false);
    assert_eq!(body["external"]["email"], true);
    assert_eq!(body["external"]["anonymous_users"], false);
    assert_eq!(body["external"]["phone"], false);
    assert_eq!(body["sms_provider"], "");

    let other = TestApp::spawn().await;
    let body: Value = other.get("/settings").await.json().await.unwrap();
    assert_eq!(body["disable_signup"], false);
    assert_eq!(body["mailer_autoconfirm"], true);
    assert_eq!(body["external"]["anonymous_users"], true);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_gotrue_errors() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/auth/v1/no-such-route").await, 404, "not_found").await;
    assert_error(app.get("/nope").await, 404, "not_found").await;
    assert_error(
        app.request(Method::DELETE, "/auth/v1/health").send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn versioned_error_format_is_used_when_asked_for() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::GET, "/auth/v1/nope")
        .header("X-Supabase-Api-Version", "2024-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-supabase-api-version"], "2024-01-01");
    assert_eq!(response.headers()["x-sb-error-code"], "not_found");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"code": "not_found", "message": "Not Found"}));

    // Older or unparsable versions keep the legacy format and get no version header.
    for version in ["2023-05-01", "yesterday"] {
        let response = app
            .request(Method::GET, "/auth/v1/nope")
            .header("X-Supabase-Api-Version", version)
            .send()
            .await
            .unwrap();
        assert!(response.headers().get("x-supabase-api-version").is_none());
        assert_error(response, 404, "not_found").await;
    }
}

#[tokio::test]
async fn cors_preflight_allows_what_supabase_js_sends() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::OPTIONS, "/auth/v1/token?grant_type=password")
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "apikey, authorization, content-type, x-client-info, x-supabase-api-version",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    // Any origin, never with credentials (see `hardening::cors_never_pairs_an_origin_with_credentials`).
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("access-control-allow-credentials").is_none());
    // Answered by CORS before anything else, as GoTrue's rs/cors does (README, "Logs").
    assert!(headers.get("x-request-id").is_none(), "{headers:?}");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "apikey",
        "authorization",
        "content-type",
        "x-client-info",
        "x-supabase-api-version",
    ] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
}

#[tokio::test]
async fn swagger_ui_and_openapi_are_served() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs/").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("swagger"));
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["paths"]["/health"].is_object());
    assert_eq!(spec["servers"][0]["url"], "/auth/v1");
}

/// The committed `openapi/openapi.json` must match the code. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test openapi_document_is_committed`.
#[test]
fn openapi_document_is_committed() {
    let generated = latchkey::api::openapi().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test openapi_document"
    );
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let database_url = fresh_database().await;
    // Two servers migrating the same empty database at the same moment, then a third later.
    let (a, b) = tokio::join!(
        TestApp::spawn_on(&database_url, &[]),
        TestApp::spawn_on(&database_url, &[])
    );
    let c = TestApp::spawn_on(&database_url, &[]).await;
    for app in [&a, &b, &c] {
        assert_eq!(app.get("/health").await.status(), 200);
    }
    let mut db = a.db().await;
    let applied: i64 = sqlx::query_scalar("select count(*) from auth._sqlx_migrations")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(applied as usize, latchkey::db::MIGRATOR.iter().count());
    for table in [
        "_auth_users",
        "_auth_identities",
        "_auth_sessions",
        "_auth_refresh_tokens",
        "_auth_audit_log",
    ] {
        let exists: bool = sqlx::query_scalar("select to_regclass('auth.' || $1) is not null")
            .bind(table)
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert!(exists, "{table}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::spawn().await;
    let body = format!("{{\"email\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let response = app
        .request(Method::POST, "/auth/v1/signup")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "request_entity_too_large").await;
}

#[tokio::test]
async fn bad_json_and_wrong_types_are_400s() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::POST, "/auth/v1/signup")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "bad_json").await;
    let response = app
        .post_json("/auth/v1/signup", &json!({"email": 12, "password": ["x"]}))
        .await;
    assert_error(response, 400, "validation_failed").await;
}

/// A few hundred malformed requests across every route: never a 5xx, always GoTrue error JSON.
#[tokio::test]
async fn malformed_requests_never_get_5xx() {
    let app = TestApp::spawn().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut paths: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    paths.extend([
        "/nope".into(),
        "/admin/users/not-a-uuid".into(),
        "/token".into(),
        "/verify".into(),
    ]);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"string\"".to_vec(),
        br#"{"email": 1, "password": {}, "data": "x", "refresh_token": 5}"#.to_vec(),
        br#"{"email": "a@b.c", "password": "\u0000\u0000"}"#.to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        format!(
            r#"{{"email":"{}@x.io","password":"{}"}}"#,
            "e".repeat(300),
            "p".repeat(100)
        )
        .into_bytes(),
    ];
    let tokens = [
        "",
        "Bearer",
        "Bearer not.a.jwt",
        "Basic abc",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        &format!("Bearer {}", app.api_key("anon")),
    ];
    let mut count = 0;
    for path in &paths {
        for prefix in ["", "/auth/v1"] {
            let url = format!("{prefix}{path}?grant_type=password&type=signup&scope=bogus&page=x&per_page=-1");
            for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
                for (i, body) in bodies.iter().enumerate() {
                    let mut request = app.request(method.clone(), &url).body(body.clone());
                    if i % 2 == 0 {
                        request = request.header("content-type", "application/json");
                    }
                    let token = tokens[(count) % tokens.len()];
                    if !token.is_empty() {
                        request = request.header("authorization", token);
                    }
                    if count % 3 == 0 {
                        request = request.header("X-Supabase-Api-Version", "2024-01-01");
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    count += 1;
                    assert!(!status.is_server_error(), "{method} {url} body#{i}: {status}");
                    if status.is_client_error() {
                        let body: Value = response
                            .json()
                            .await
                            .unwrap_or_else(|_| panic!("{method} {url}: JSON error"));
                        // GoTrue error JSON: {code, ...}, or its OAuth-style {error, error_description}.
                        assert!(
                            body.get("code").is_some() || body.get("error_description").is_some(),
                            "{method} {url}: {body}"
                        );
                    }
                }
            }
        }
    }
    assert!(count >= 300, "sent {count}");
}

#[test]
fn bad_configuration_names_the_variable() {
    let mut vars = std::collections::HashMap::new();
    vars.insert("GOTRUE_JWT_EXP".to_owned(), "soon".to_owned());
    let err = latchkey::config::Config::from_vars(vars).unwrap_err();
    assert!(err.to_string().contains("GOTRUE_JWT_EXP"), "{err}");
}

/// The zero-setup cluster: initialised on first start, data reused on the next, stopped when
/// dropped. Root-safe (runs PostgreSQL as the `postgres` user when we are root).
#[tokio::test]
async fn private_cluster_keeps_its_data_across_restarts() {
    use sqlx::Connection;
    let dir = std::env::temp_dir().join(format!("latchkey-devdb-{}", uuid::Uuid::new_v4().simple()));
    let start = {
        let dir = dir.clone();
        move || latchkey::devdb::DevCluster::start(&dir).unwrap()
    };
    let cluster = tokio::task::spawn_blocking(start.clone()).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres")).await.unwrap();
    sqlx::raw_sql("create table kept (x int); insert into kept values (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    tokio::task::spawn_blocking(move || drop(cluster)).await.unwrap();

    let cluster = tokio::task::spawn_blocking(start).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres")).await.unwrap();
    let x: i32 = sqlx::query_scalar("select x from kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(x, 42);
    conn.close().await.unwrap();
    let port = cluster.port();
    tokio::task::spawn_blocking(move || drop(cluster)).await.unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stopped on drop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
