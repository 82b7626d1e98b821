//! The piecemeal database cleanup (`latchkey::cleanup`): only rows past their margins go, and
//! the live refresh chain keeps working.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use latchkey::auth::refresh::hash;
use latchkey::cleanup::clean_all;

use crate::helpers::{TestApp, jwt_payload, random_email};

fn token(session: &Value) -> &str {
    session["refresh_token"].as_str().unwrap()
}

fn session_id(session: &Value) -> Uuid {
    jwt_payload(session["access_token"].as_str().unwrap())["session_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `Some(revoked)` for a stored token, `None` once it is gone.
async fn token_state(db: &mut PgConnection, token: &str) -> Option<bool> {
    sqlx::query_scalar("select revoked from _auth_refresh_tokens where token_hash = $1")
        .bind(hash(token))
        .fetch_optional(db)
        .await
        .unwrap()
}

async fn exists(db: &mut PgConnection, sql: &'static str, id: Uuid) -> bool {
    sqlx::query_scalar::<_, bool>(sql).bind(id).fetch_one(db).await.unwrap()
}

async fn set_not_after(db: &mut PgConnection, session: Uuid, hours_ago: i32) {
    sqlx::query("update _auth_sessions set not_after = now() - make_interval(hours => $2) where id = $1")
        .bind(session)
        .bind(hours_ago)
        .execute(db)
        .await
        .unwrap();
}

async fn insert_flow_state(db: &mut PgConnection, hours_ago: i32) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into _auth_flow_state (id, auth_code, provider_type, authentication_method, created_at) \
         values ($1, $2, 'email', 'magiclink', now() - make_interval(hours => $3))",
    )
    .bind(id)
    .bind(Uuid::new_v4().to_string())
    .bind(hours_ago)
    .execute(db)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn cleanup_removes_only_stale_rows() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let mut db = app.db().await;

    // One chain t0 -> t1 -> t2; t0 was revoked a day and an hour ago, t1 just now.
    let first = app.sign_up(&email, "secret-pw").await;
    let second: Value = app.refresh(token(&first)).await.json().await.unwrap();
    let third: Value = app.refresh(token(&second)).await.json().await.unwrap();
    sqlx::query("update _auth_refresh_tokens set updated_at = now() - interval '25 hours' where token_hash = $1")
        .bind(hash(token(&first)))
        .execute(&mut db)
        .await
        .unwrap();

    // A session that ended 25 hours ago, and one that ended 73 hours ago.
    let ended: Value = app.sign_in(&email, "secret-pw").await.json().await.unwrap();
    set_not_after(&mut db, session_id(&ended), 25).await;
    let long_ended: Value = app.sign_in(&email, "secret-pw").await.json().await.unwrap();
    set_not_after(&mut db, session_id(&long_ended), 73).await;

    let stale_flow = insert_flow_state(&mut db, 25).await;
    let fresh_flow = insert_flow_state(&mut db, 23).await;

    // The count is not checked: on a slow machine the server's own task may have run a
    // statement meanwhile. The rows are what matters.
    clean_all(&app.state.db).await.unwrap();

    assert_eq!(
        token_state(&mut db, token(&first)).await,
        None,
        "stale revoked token deleted"
    );
    assert_eq!(
        token_state(&mut db, token(&second)).await,
        Some(true),
        "recently revoked token kept"
    );
    assert_eq!(
        token_state(&mut db, token(&third)).await,
        Some(false),
        "live token untouched"
    );

    assert_eq!(
        token_state(&mut db, token(&ended)).await,
        Some(true),
        "ended session's token revoked"
    );
    let session_sql = "select exists (select 1 from _auth_sessions where id = $1)";
    assert!(
        exists(&mut db, session_sql, session_id(&ended)).await,
        "kept for 72 hours"
    );
    assert!(!exists(&mut db, session_sql, session_id(&long_ended)).await);
    assert_eq!(
        token_state(&mut db, token(&long_ended)).await,
        None,
        "deleted with its session"
    );

    let flow_sql = "select exists (select 1 from _auth_flow_state where id = $1)";
    assert!(!exists(&mut db, flow_sql, stale_flow).await);
    assert!(exists(&mut db, flow_sql, fresh_flow).await);

    // Nothing left to do, and the live chain still refreshes.
    assert_eq!(clean_all(&app.state.db).await.unwrap(), 0);
    assert_eq!(app.refresh(token(&third)).await.status(), 200);
}

#[tokio::test]
async fn every_cleanup_statement_can_find_its_rows_through_an_index() {
    let app = TestApp::spawn().await;
    let mut db = app.db().await;
    // With sequential scans priced out, the planner still picks one when no index fits, so a
    // plan without a Seq Scan shows each batch can be found without reading the whole table.
    sqlx::query("set enable_seqscan = off").execute(&mut db).await.unwrap();
    for statement in latchkey::db::cleanup::STATEMENTS {
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("explain {}", statement.sql)))
            .fetch_all(&mut db)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "{}\n{plan}", statement.sql);
        // Nor a whole index read in place of the table: the scan that picks the batch must be
        // bounded by the statement's time condition.
        assert!(
            plan.contains("Index Cond: (updated_at <")
                || plan.contains("Index Cond: (not_after <")
                || plan.contains("Index Cond: (created_at <"),
            "{}\n{plan}",
            statement.sql
        );
    }
}
