//! The RLS example `examples/mfa-rls/aal2_only.sql`: a table readable only with an aal2
//! token, checked with the access tokens the server really issues, in the transaction
//! PostgREST would run for them.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{access, mfa_user};
use crate::helpers::{TestApp, jwt_payload};

const EXAMPLE: &str = include_str!("../../../examples/mfa-rls/aal2_only.sql");

/// The amounts of the payslips `token`'s claims may read, as PostgREST asks for them.
async fn visible_amounts(conn: &mut PgConnection, token: &str) -> Vec<i64> {
    let claims: Value = jwt_payload(token);
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("set local role authenticated")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(claims.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let amounts = sqlx::query_scalar("select amount_cents from public.payslips order by amount_cents")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    amounts
}

#[tokio::test]
async fn a_table_for_aal2_only_hides_its_rows_from_aal1_tokens() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::raw_sql(EXAMPLE).execute(&mut conn).await.unwrap();
    let owner: Uuid = jwt_payload(access(&user.aal2))["sub"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    sqlx::query("insert into public.payslips (owner, amount_cents) values ($1, 420000), ($2, 1)")
        .bind(owner)
        .bind(Uuid::new_v4())
        .execute(&mut conn)
        .await
        .unwrap();

    // The session that verified a code reads its owner's row, and only that one.
    assert_eq!(visible_amounts(&mut conn, access(&user.aal2)).await, [420_000]);
    let refreshed = app.refreshed(super::refresh_token(&user.aal2)).await;
    assert_eq!(visible_amounts(&mut conn, access(&refreshed)).await, [420_000]);
    // A password sign-in of the same user is aal1: nothing, although the user owns the row.
    let aal1 = user.aal1(&app).await;
    assert_eq!(jwt_payload(access(&aal1))["aal"], "aal1");
    assert!(visible_amounts(&mut conn, access(&aal1)).await.is_empty());
}
