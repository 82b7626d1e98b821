//! Row-level security: the crate's `Rls` API (here); the migration's roles, helpers and
//! locked-down auth tables (`rls/migration.rs`); the notes example over HTTP (`rls/notes.rs`);
//! plain SQL the way PostgREST runs it (`rls/sql.rs`); the opt-in `jwt.<claim>` settings
//! (`rls/claim_settings.rs`).
//!
//! The sign-up endpoint is not needed: user tokens are minted here with GoTrue's claim set and
//! the test secret, exactly as Latchkey would sign them.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod claim_settings;
mod jwks;
mod migration;
mod notes;
mod sql;

#[allow(dead_code)]
#[path = "../../examples/notes-api/app.rs"]
mod notes_app;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::auth::jwt::JwtKeys;
use latchkey::rls::{Rls, RlsError};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::helpers::{JWT_SECRET, TestApp};

fn keys() -> JwtKeys {
    JwtKeys::new(&SecretString::from(JWT_SECRET))
}

fn rls() -> Rls {
    Rls::with_default_roles(&SecretString::from(JWT_SECRET))
}

/// The claims of a GoTrue access token (reference §4.1) for `sub`, valid for `exp_in` seconds.
fn claims(sub: Uuid, email: &str, role: &str, exp_in: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": sub,
        "aud": "authenticated",
        "exp": now + exp_in,
        "iat": now,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"name": "Test"},
        "role": role,
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": Uuid::new_v4(),
        "is_anonymous": false,
    })
}

/// A signed access token for a signed-in user.
fn user_token(sub: Uuid, email: &str) -> String {
    keys().sign(&claims(sub, email, "authenticated", 3600)).unwrap()
}

/// A Supabase-style API key: `{"role", "iss", "iat", "exp"}`, no `sub`.
fn api_key(role: &str) -> String {
    latchkey::auth::jwt::api_key(&keys(), role, chrono::Utc::now().timestamp(), 3600).unwrap()
}

/// The tokens every refusal test tries: expired, signed with another secret, `alg: none`, and
/// a correctly signed one claiming a role outside the allow list.
fn bad_tokens(sub: Uuid) -> Vec<(&'static str, String)> {
    let expired = keys()
        .sign(&claims(sub, "a@example.com", "authenticated", -10))
        .unwrap();
    let forged = JwtKeys::new(&SecretString::from("another-secret-with-at-least-32-chars!"))
        .sign(&claims(sub, "a@example.com", "service_role", 3600))
        .unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(sub, "a@example.com", "service_role", 3600).to_string());
    let postgres = keys().sign(&claims(sub, "a@example.com", "postgres", 3600)).unwrap();
    vec![
        ("expired", expired),
        ("forged", forged),
        ("alg none", format!("{header}.{payload}.")),
        ("role postgres", postgres),
    ]
}

/// A plain pool on the test database, like a backend's (no search_path tricks).
async fn backend_pool(app: &TestApp, max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .connect(&app.database_url)
        .await
        .unwrap()
}

async fn insert_user(app: &TestApp, id: Uuid, email: &str) {
    sqlx::query(
        "insert into auth._auth_users (id, aud, role, email, encrypted_password) \
         values ($1, 'authenticated', 'authenticated', $2, '$argon2id$not-a-real-hash')",
    )
    .bind(id)
    .bind(email)
    .execute(&mut app.db().await)
    .await
    .unwrap();
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error().and_then(|db| db.code()).map(|c| c.into_owned())
}

#[tokio::test]
async fn inside_begin_the_helpers_return_the_tokens_values() {
    let app = TestApp::spawn().await;
    let pool = backend_pool(&app, 2).await;
    let rls = rls();
    let (id, email) = (Uuid::new_v4(), "ada@example.com");
    let token_claims = claims(id, email, "authenticated", 3600);
    let token = keys().sign(&token_claims).unwrap();

    let mut tx = rls.begin(&pool, &token).await.unwrap();
    let row: (
        Option<Uuid>,
        Option<String>,
        Option<String>,
        Option<Value>,
        String,
        String,
    ) = sqlx::query_as(
        "select auth.uid(), auth.role(), auth.email(), auth.jwt(), current_user::text, \
                    current_setting('request.jwt.claim.sub')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(row.0, Some(id));
    assert_eq!(row.1.as_deref(), Some("authenticated"));
    assert_eq!(row.2.as_deref(), Some(email));
    assert_eq!(row.3, Some(token_claims.clone()));
    assert_eq!(row.4, "authenticated");
    assert_eq!(row.5, id.to_string());
    // The role switch is real: the auth tables are out of reach here too.
    let err = sqlx::query("select 1 from auth._auth_users")
        .fetch_all(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"));
    drop(tx);

    let mut tx = rls.begin_anon(&pool).await.unwrap();
    let row: (Option<Uuid>, Option<String>, Option<Value>, String) =
        sqlx::query_as("select auth.uid(), auth.role(), auth.jwt(), current_user::text")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        row,
        (None, Some("anon".into()), Some(json!({"role": "anon"})), "anon".into())
    );
    tx.commit().await.unwrap();

    // A transaction the caller opened itself: verify, then apply.
    let mut tx = pool.begin().await.unwrap();
    latchkey::rls::apply(&mut tx, &rls.verify(&token).await.unwrap())
        .await
        .unwrap();
    let row: (Option<Uuid>, String) = sqlx::query_as("select auth.uid(), current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(row, (Some(id), "authenticated".into()));
    drop(tx);

    let mut tx = rls.begin(&pool, &api_key("service_role")).await.unwrap();
    let row: (Option<Uuid>, Option<String>, String) =
        sqlx::query_as("select auth.uid(), auth.role(), current_user::text")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(row, (None, Some("service_role".into()), "service_role".into()));
}

#[tokio::test]
async fn expired_forged_unsigned_and_privileged_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let pool = backend_pool(&app, 1).await;
    let rls = rls();
    for (what, token) in bad_tokens(Uuid::new_v4()) {
        let refused = rls.begin(&pool, &token).await.unwrap_err();
        match (what, &refused) {
            ("expired", RlsError::ExpiredToken) | ("forged" | "alg none", RlsError::InvalidToken(_)) => {}
            ("role postgres", RlsError::ForbiddenRole(role)) => assert_eq!(role, "postgres"),
            _ => panic!("{what}: unexpected {refused:?}"),
        }
    }
    assert!(matches!(rls.begin(&pool, "").await, Err(RlsError::MissingToken)));
}

#[tokio::test]
async fn the_role_and_claims_end_with_the_transaction() {
    let app = TestApp::spawn().await;
    // One connection: every transaction below reuses it.
    let pool = backend_pool(&app, 1).await;
    let rls = rls();
    let token = user_token(Uuid::new_v4(), "ada@example.com");

    let who = || async {
        sqlx::query_as::<_, (String, Option<Uuid>, Option<Value>)>("select current_user::text, auth.uid(), auth.jwt()")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = who().await;
    assert_eq!(before, ("postgres".into(), None, None));

    rls.begin(&pool, &token).await.unwrap().commit().await.unwrap();
    assert_eq!(who().await, before, "after commit");

    let tx = rls.begin(&pool, &token).await.unwrap();
    drop(tx); // rolled back
    assert_eq!(who().await, before, "after rollback");
}
