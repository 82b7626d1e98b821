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
