//! Issue #21, running Latchkey: readiness, `latchkey healthcheck`, the start-up report,
//! commands that read only what they use, `serve --no-migrate`, bounded shutdown, and the
//! RLS migration leaving other objects' grants alone.

use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

use crate::binary::{self, Server, json_lines};
use crate::helpers::{TestApp, TestDatabase, base_vars, fresh_database};

/// Asks until `path` answers `status` (readiness answers are reused for a second).
async fn eventually_status(app: &TestApp, path: &str, status: u16) -> Value {
    for _ in 0..60 {
        let response = app.get(path).await;
        if response.status() == status {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{path} never answered {status}");
}

// Multi-threaded: the server in this process answers while the test waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_database_is_down_and_liveness_does_not() {
    let app = TestApp::spawn().await;
    let ready = app.get("/auth/v1/health/ready").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        serde_json::json!({ "database": "ok" })
    );

    app.set_database_up(false).await;
    let body = eventually_status(&app, "/health/ready", 503).await;
    assert_eq!(body["error_code"], "service_unavailable", "{body}");
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "liveness does not depend on the database"
    );
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let not_ready = binary::run(&["healthcheck", "--ready"], "", &[("PORT", &port)]);
    assert!(
        !not_ready.status.success(),
        "healthcheck --ready fails while the database is down"
    );
    let alive = binary::run(&["healthcheck"], "", &[("PORT", &port)]);
    assert!(alive.status.success(), "{alive:?}");

    app.set_database_up(true).await;
    eventually_status(&app, "/health/ready", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exit_code_says_whether_the_server_answers() {
    let app = TestApp::spawn().await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    // An unrelated bad value does not stop the check.
    let unrelated = ("GOTRUE_RATE_LIMIT_OTP", "lots");
    let ok = binary::run(&["healthcheck"], "", &[("PORT", &port), unrelated]);
    assert!(ok.status.success(), "{ok:?}");
    let by_url = binary::run(&["healthcheck", "--url", &app.url("/health")], "", &[]);
    assert!(by_url.status.success(), "{by_url:?}");
    let ready = binary::run(&["healthcheck", "--ready"], "", &[("PORT", &port)]);
    assert!(ready.status.success(), "{ready:?}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let down = binary::run(&["healthcheck"], "", &[("PORT", &closed_port)]);
    assert!(!down.status.success(), "nothing listens there");
    let not_found = binary::run(&["healthcheck", "--url", &app.url("/no-such-route")], "", &[]);
    assert!(!not_found.status.success(), "a 404 is not healthy");
}

#[tokio::test]
async fn the_start_up_report_names_each_unsupported_variable_once() {
    let database = fresh_database().await;
    let server = Server::start(
        database.url(),
        &[
            ("GOTRUE_SECURITY_CAPTCHA_PROVIDER", "turnstile"),
            ("GOTRUE_SECURITY_CAPTCHA_SECRET", "a-captcha-secret"),
            ("GOTRUE_SECURITY_CAPTCHA_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_PHONE_ENABLED", "false"),
            ("GOTRUE_SMTP_HOTS", "mail.example.com"),
            ("GOTRUE_DB_DRIVER", "postgres"),
        ],
    );
    server.wait_for_line(|line| line.contains("GOTRUE_SMTP_HOTS")).await;
    let lines = json_lines(&server.stderr());
    let warnings: Vec<&str> = lines
        .iter()
        .filter(|line| line["level"] == "warning")
        .filter_map(|line| line["msg"].as_str())
        .collect();
    for (name, gotrue) in [
        ("GOTRUE_SECURITY_CAPTCHA_PROVIDER", true),
        ("GOTRUE_SECURITY_CAPTCHA_SECRET", true),
        ("GOTRUE_SECURITY_CAPTCHA_ENABLED", true),
        ("GOTRUE_SMTP_HOTS", false),
    ] {
        let about: Vec<&&str> = warnings.iter().filter(|w| w.starts_with(&format!("{name} "))).collect();
        assert_eq!(about.len(), 1, "{name}: {warnings:#?}");
        assert_eq!(about[0].contains("misspelt"), !gotrue, "{}", about[0]);
    }
    for quiet in ["GOTRUE_EXTERNAL_PHONE_ENABLED", "GOTRUE_DB_DRIVER", "GOTRUE_JWT_SECRET"] {
        assert!(!warnings.iter().any(|w| w.contains(quiet)), "{quiet}: {warnings:#?}");
    }
    let everything = server.stderr().join("\n");
    assert!(!everything.contains("a-captcha-secret") && !everything.contains("turnstile\""));
}

#[tokio::test]
async fn commands_that_do_not_serve_ignore_unrelated_variables() {
    let unrelated = [("GOTRUE_RATE_LIMIT_OTP", "lots"), ("GOTRUE_SITE_URL", "not a url")];
    let openapi = binary::run(&["openapi"], "", &unrelated);
    assert!(openapi.status.success(), "{openapi:?}");
    let document: Value = serde_json::from_slice(&openapi.stdout).unwrap();
    assert!(document["paths"]["/token"].is_object());

    let keys = binary::run(&["keys"], "postgres://x@db.example/app", &unrelated);
    assert!(keys.status.success(), "{keys:?}");
    assert!(String::from_utf8_lossy(&keys.stdout).contains("SERVICE_ROLE_KEY="));
    // What keys does read still has to be right.
    let bad_exp = binary::run(&["keys"], "postgres://x@db.example/app", &[("GOTRUE_JWT_EXP", "-5")]);
    assert!(!bad_exp.status.success());
    assert!(String::from_utf8_lossy(&bad_exp.stderr).contains("GOTRUE_JWT_EXP"));
}

#[tokio::test]
async fn bad_values_stop_start_up_with_a_message_not_a_panic() {
    for (var, value) in [
        ("GOTRUE_API_MAX_REQUEST_DURATION", "1e300"),
        ("GOTRUE_LOG_LEVEL", "chatty"),
        ("GOTRUE_METRICS_EXPORTER", "statsd"),
        ("PORT", "99999"),
    ] {
        let output = binary::run(&["serve"], "postgres://x@127.0.0.1:1/none", &[(var, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(var) && !stderr.contains("panicked"),
            "{var}={value}: {stderr}"
        );
    }
}

/// Timeouts past what the clock can hold mean "never", not a panic on every connection.
#[tokio::test]
async fn timeouts_beyond_the_clock_do_not_panic() {
    let database = fresh_database().await;
    let huge = "1e19";
    let server = Server::start(
        database.url(),
        &[("LATCHKEY_HEADER_READ_TIMEOUT", huge), ("LATCHKEY_IDLE_TIMEOUT", huge)],
    );
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client.get(server.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stderr = server.stderr().join("\n");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn serve_no_migrate_refuses_a_database_without_the_migrations() {
    let database = fresh_database().await;
    let vars = base_vars(database.url());
    let config = latchkey::config::Config::from_vars(vars.clone()).unwrap();
    let no_migrate = latchkey::startup::BuildOptions { migrate: false };
    let refused = latchkey::startup::Application::build_with(config, no_migrate).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("latchkey migrate"), "{message}");
    assert!(!has_table(&database, "_auth_users").await, "nothing was migrated");

    let migrated = binary::run(&["migrate"], database.url(), &[]);
    assert!(migrated.status.success(), "{migrated:?}");
    let config = latchkey::config::Config::from_vars(vars).unwrap();
    let app = latchkey::startup::Application::build_with(config, no_migrate)
        .await
        .unwrap();
    drop(app);
}

async fn has_table(database: &TestDatabase, table: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(database.url()).await.unwrap();
    sqlx::query_scalar("select to_regclass($1) is not null")
        .bind(format!("auth.{table}"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// A project's own objects in the `auth` schema (as in a Supabase database) keep the grants
/// the API roles had on them; Latchkey's tables get none.
#[tokio::test]
async fn migrations_leave_other_objects_grants_alone() {
    let database = fresh_database().await;
    let mut conn = sqlx::PgConnection::connect(database.url()).await.unwrap();
    for statement in [
        "create schema auth",
        "do $$ begin create role authenticated nologin; exception when duplicate_object then null; end $$",
        "do $$ begin create role service_role nologin; exception when duplicate_object then null; end $$",
        "do $$ begin create role anon nologin; exception when duplicate_object then null; end $$",
        "create table auth.profiles (id int)",
        "grant select, insert on auth.profiles to authenticated",
        "create sequence auth.tickets",
        "grant usage on sequence auth.tickets to service_role",
        "create view auth.names as select 1 as n",
        "grant select on auth.names to anon",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let _app = TestApp::spawn_on(&database, &[]).await;
    let kept: (bool, bool, bool, bool) = sqlx::query_as(
        "select has_table_privilege('authenticated', 'auth.profiles', 'select'), \
                has_table_privilege('authenticated', 'auth.profiles', 'insert'), \
                has_sequence_privilege('service_role', 'auth.tickets', 'usage'), \
                has_table_privilege('anon', 'auth.names', 'select')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        kept,
        (true, true, true, true),
        "grants on objects that are not Latchkey's"
    );
    let latchkeys: bool = sqlx::query_scalar(
        "select has_table_privilege('authenticated', 'auth._auth_users', 'select') \
             or has_table_privilege('service_role', 'auth._auth_refresh_tokens', 'select')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!latchkeys, "Latchkey's own tables stay closed to the API roles");
}

/// A client that sends half a request and waits cannot hold shutdown for longer than the
/// request timeout plus a margin.
#[tokio::test]
async fn shutdown_does_not_wait_for_stuck_connections() {
    use tokio::io::AsyncWriteExt;

    let database = fresh_database().await;
    let mut vars = base_vars(database.url());
    vars.insert("GOTRUE_API_MAX_REQUEST_DURATION".into(), "1s".into());
    vars.insert("LATCHKEY_HEADER_READ_TIMEOUT".into(), "300s".into());
    let config = latchkey::config::Config::from_vars(vars).unwrap();
    let app = latchkey::startup::Application::build(config).await.unwrap();
    let address = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let mut stuck = tokio::net::TcpStream::connect(address).await.unwrap();
    stuck.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut slow_reader = tokio::net::TcpStream::connect(address).await.unwrap();
    let big = "GET /docs/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20);
    slow_reader.write_all(big.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let _ = stop.send(());
    // Generous: about 2 s are expected (1 s timeout + 1 s margin); before, it waited for the
    // header timeout (300 s) or forever for the reader.
    let finished = tokio::time::timeout(Duration::from_secs(20), server).await;
    assert!(finished.is_ok(), "shutdown waited for stuck connections");
    drop((stuck, slow_reader));
}
