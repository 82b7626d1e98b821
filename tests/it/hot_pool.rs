//! The hot-path connections (`db::hot`): handed back without a ping when released, pinged
//! (which flushes a queued rollback) when dropped half-way.

use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{TestApp, random_email};

async fn backend_pid(conn: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("pg_backend_pid()")
}

#[tokio::test]
async fn a_released_connection_is_reused_as_it_is() {
    let app = TestApp::spawn().await;
    let mut conn = app.state.hot.acquire().await.unwrap();
    let first = backend_pid(&mut conn).await;
    conn.release().await.unwrap();
    let mut conn = app.state.hot.acquire().await.unwrap();
    assert_eq!(backend_pid(&mut conn).await, first);
    conn.release().await.unwrap();
}

#[tokio::test]
async fn a_connection_dropped_inside_a_transaction_is_rolled_back_and_unlocked() {
    let app = TestApp::spawn().await;
    let signed_up: Value = app.sign_up(&random_email(), "secret-pw").await;
    let id: Uuid = signed_up["user"]["id"].as_str().unwrap().parse().unwrap();
    {
        // What a cancelled request leaves behind: an open transaction holding a row lock.
        let mut conn = app.state.hot.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("update _auth_users set role = 'changed' where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let mut db = app.db().await;
    sqlx::query("set lock_timeout = '5s'").execute(&mut db).await.unwrap();
    let role: String = sqlx::query_scalar("select role from _auth_users where id = $1 for update")
        .bind(id)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        role, "authenticated",
        "the update was rolled back and its lock released"
    );
    // The connection went back to the pool after its ping and still works.
    let mut conn = app.state.hot.acquire().await.unwrap();
    assert!(backend_pid(&mut conn).await > 0);
    conn.release().await.unwrap();
}

/// Each HTTP thread keeps hot connections of its own (a socket is served by the runtime that
/// opened it): requests over new connections, handed to the threads in turn and made one after
/// another, leave one idle hot connection per thread, where one shared set would keep one.
#[tokio::test]
async fn each_http_thread_reuses_its_own_hot_connection() {
    let app = TestApp::spawn_with(&[("LATCHKEY_HTTP_THREADS", "3")]).await;
    let signed_up: Value = app.sign_up(&random_email(), "secret-pw").await;
    let token = signed_up["access_token"].as_str().unwrap().to_owned();
    for _ in 0..6 {
        // A client of its own: a new connection, so the next thread in turn.
        let response = reqwest::Client::new()
            .get(app.url("/user"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let stats = app.state.hot.stats();
    assert_eq!((stats.idle, stats.in_use), (3, 0), "{stats:?}");
}
