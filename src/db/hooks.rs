//! Calling a `pg-functions://` hook: the operator's function, run inside the caller's
//! transaction so that what it reads and writes commits or rolls back with the request.

use std::time::Duration;

use serde_json::Value;
use sqlx::{Connection, PgConnection};

/// Calls `function` (already quoted and schema-qualified by `config::hooks`, never built
/// from request data) with `input`, under a statement timeout of `timeout`. Runs in a
/// savepoint (or its own transaction when the caller has none), so that a function that
/// raises leaves the caller's transaction usable and undoes only its own writes.
pub async fn call_function(
    conn: &mut PgConnection,
    function: &str,
    input: &Value,
    timeout: Duration,
) -> Result<Option<Value>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    // `SET LOCAL` takes no bind parameters; the number is ours.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "set local statement_timeout = {}",
        timeout.as_millis()
    )))
    .execute(&mut *tx)
    .await?;
    let output: Option<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select {function}($1::jsonb)::jsonb")))
        .bind(input)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::raw_sql("set local statement_timeout to default")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(output)
}
