//! Plain SQL, no Latchkey code at query time: what PostgREST sends for a request must isolate
//! users under the example's policies, and the legacy per-claim setting must work too.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::notes::Notes;
use super::{claims, sqlstate, user_token};

async fn connect(notes: &Notes) -> PgConnection {
    PgConnection::connect(&notes.app.database_url).await.unwrap()
}

/// The owners of the notes visible to `sql` (a series of statements, then a final query).
async fn visible_owners(conn: &mut PgConnection, setup: &[String]) -> Vec<Uuid> {
    let mut tx = conn.begin().await.unwrap();
    for statement in setup {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let owners = sqlx::query_scalar("select owner from public.notes order by created_at")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    owners
}

#[tokio::test]
async fn postgrest_style_sql_isolates_users() {
    let notes = Notes::spawn().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    notes.create(&user_token(alice, "alice@example.com"), "a").await;
    notes.create(&user_token(bob, "bob@example.com"), "b").await;
    notes.create(&user_token(bob, "bob@example.com"), "b2").await;
    let mut conn = connect(&notes).await;

    // Exactly PostgREST's transaction prelude: SET LOCAL ROLE, then the claims as JSON.
    let as_user = |id: Uuid| {
        let payload: Value = claims(id, "someone@example.com", "authenticated", 3600);
        vec![
            "set local role authenticated".to_owned(),
            format!(
                "select set_config('request.jwt.claims', '{}', true)",
                payload.to_string().replace('\'', "''")
            ),
        ]
    };
    assert_eq!(visible_owners(&mut conn, &as_user(alice)).await, [alice]);
    assert_eq!(visible_owners(&mut conn, &as_user(bob)).await, [bob, bob]);
    assert!(visible_owners(&mut conn, &as_user(Uuid::new_v4())).await.is_empty());

    // Older PostgREST: one setting per claim. auth.uid() reads request.jwt.claim.sub first.
    let legacy = vec![
        "set local role authenticated".to_owned(),
        format!("set local request.jwt.claim.sub = '{bob}'"),
    ];
    assert_eq!(visible_owners(&mut conn, &legacy).await, [bob, bob]);
    let mut tx = conn.begin().await.unwrap();
    for statement in &legacy {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let uid: Option<Uuid> = sqlx::query_scalar("select auth.uid()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(uid, Some(bob));
    tx.rollback().await.unwrap();

    // anon: granted select, but no policy matches it.
    let anon = vec![
        "set local role anon".to_owned(),
        r#"select set_config('request.jwt.claims', '{"role":"anon"}', true)"#.to_owned(),
    ];
    assert!(visible_owners(&mut conn, &anon).await.is_empty());

    // with check: Alice cannot write a note in Bob's name, even with plain SQL.
    let mut tx = conn.begin().await.unwrap();
    for statement in &as_user(alice) {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let err = sqlx::query("insert into public.notes (owner, body) values ($1, 'forged')")
        .bind(bob)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{err}");
    assert!(err.to_string().contains("row-level security"), "{err}");
}
