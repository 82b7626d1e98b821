//! Latchkey through PgBouncer in transaction pooling mode (`LATCHKEY_DB_STATEMENT_CACHE=0`):
//! many clients at once over two server connections, with no error; and a server that cannot
//! work through the pooler says why at start-up instead of failing requests.
//!
//! Skipped with a message when `pgbouncer` is not installed (`scripts/test.sh` installs it and
//! makes a missing one a failure).

use reqwest::StatusCode;
use serde_json::json;

use sqlx::{Connection, PgConnection};

use crate::helpers::{
    PgBouncer, TestApp, TestDatabase, base_vars, expect_session, fresh_database, migrate_directly, prepare_for_pooler,
    program_or_skip, random_email,
};

/// Cheap hashing: this is about the database path, not about passwords.
const FAST_HASHING: [(&str, &str); 2] = [
    ("LATCHKEY_ARGON2_MEMORY_KIB", "256"),
    ("LATCHKEY_ARGON2_ITERATIONS", "1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_through_a_transaction_pooler_see_no_error() {
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 6;
    let database = fresh_database().await;
    let test = "many_clients_through_a_transaction_pooler_see_no_error";
    let Some(bouncer) = PgBouncer::start(&database, 2, test).await else {
        return;
    };
    let url = bouncer.url();
    let mut vars = vec![
        ("DATABASE_URL", url.as_str()),
        ("LATCHKEY_DB_STATEMENT_CACHE", "0"),
        ("LATCHKEY_RATE_LIMIT_ENABLED", "false"),
    ];
    vars.extend_from_slice(&FAST_HASHING);
    let app = TestApp::spawn_on(&database, &vars).await;

    // Sixteen clients on two server connections: every statement of every client waits for a
    // server that others just used, which is where statements prepared on one server and
    // run on another would fail.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let app = &app;
            async move {
                for _ in 0..ROUNDS {
                    client_round(app).await;
                }
            }
        })
        .collect();
    futures::future::join_all(clients).await;

    let users: i64 = sqlx::query_scalar("select count(*) from _auth_users")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(users, (CLIENTS * ROUNDS) as i64);
}

/// Sign-up, GET /user, a refresh, a password sign-in and sign-out: every kind of statement
/// the hot paths and the main pool run.
async fn client_round(app: &TestApp) {
    let email = random_email();
    let session = app.sign_up(&email, "a-long-password-1").await;
    let access = session["access_token"].as_str().unwrap();
    let user = app.get_auth("/user", access).await;
    assert_eq!(user.status(), StatusCode::OK, "{}", user.text().await.unwrap());
    let refreshed = app.refreshed(session["refresh_token"].as_str().unwrap()).await;
    let signed_in = expect_session(app.sign_in(&email, "a-long-password-1").await).await;
    assert_ne!(signed_in["refresh_token"], refreshed["refresh_token"]);
    let token = signed_in["access_token"].as_str().unwrap();
    let logout = app.post_json_auth("/logout", token, &json!({})).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
}

/// `Application::build` through `bouncer`, behind-a-pooler mode.
async fn build_through(bouncer: &PgBouncer, database: &TestDatabase) -> String {
    let mut vars = base_vars(database.url());
    vars.insert("DATABASE_URL".into(), bouncer.url());
    vars.insert("LATCHKEY_DB_STATEMENT_CACHE".into(), "0".into());
    let config = latchkey::config::Config::from_vars(vars).unwrap();
    match latchkey::startup::Application::build(config).await {
        Ok(_) => panic!("the server started"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_server_behind_a_pooler_says_what_it_needs_at_start_up() {
    let test = "a_server_behind_a_pooler_says_what_it_needs_at_start_up";
    let Some(program) = program_or_skip("pgbouncer", test) else {
        return;
    };
    // A migration missing: the server does not migrate through the pooler, it says how to.
    let database = fresh_database().await;
    prepare_for_pooler(&database).await;
    let mut admin = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query("delete from auth._sqlx_migrations where version = (select max(version) from auth._sqlx_migrations)")
        .execute(&mut admin)
        .await
        .unwrap();
    let bouncer = PgBouncer::start_unprepared(&database, 1, &program).await.unwrap();
    let error = build_through(&bouncer, &database).await;
    assert!(error.contains("run `latchkey migrate`"), "{error}");

    // Migrated, but the tables are not on the role's search_path: the statement to run.
    let database = fresh_database().await;
    migrate_directly(&database).await;
    let bouncer = PgBouncer::start_unprepared(&database, 1, &program).await.unwrap();
    let error = build_through(&bouncer, &database).await;
    assert!(error.contains("SET search_path = auth, public"), "{error}");
}
