//! The pool the rest of the code runs statements on: sqlx's pool, with one difference behind a
//! pooler in transaction mode (PgBouncer, Supavisor; `LATCHKEY_DB_STATEMENT_CACHE=0`).
//!
//! sqlx runs a statement it has not prepared before in two round trips: Parse and Sync (to
//! learn the parameter and column types), then Bind, Execute and Sync. Outside a transaction,
//! a transaction pooler is free to give the server connection to another client after the
//! first Sync, so the Bind may reach another server, where the unnamed statement is missing
//! or, worse, is another client's statement (seen with PgBouncer 1.18: "bind message supplies
//! 1 parameters, but prepared statement \"\" requires 2"). Inside a transaction the pooler
//! keeps the server, so there a statement run on its own is wrapped in `BEGIN` and `COMMIT`.
//! Explicit transactions (`begin`) need nothing more.

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgPool, Postgres, SqlStr, Transaction};

#[derive(Clone, Debug)]
pub struct Pool {
    inner: PgPool,
    /// Each statement run on the pool itself gets its own transaction.
    statements_in_transactions: bool,
}

impl Pool {
    /// `behind_transaction_pooler`: see the module documentation.
    pub fn new(inner: PgPool, behind_transaction_pooler: bool) -> Pool {
        Pool {
            inner,
            statements_in_transactions: behind_transaction_pooler,
        }
    }

    pub async fn begin(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.inner.begin().await
    }

    /// sqlx's pool itself, for callers that hold one connection for several statements in
    /// their own transaction (see `db::hot`).
    pub fn sqlx(&self) -> &PgPool {
        &self.inner
    }

    pub fn behind_transaction_pooler(&self) -> bool {
        self.statements_in_transactions
    }
}

impl<'p> Executor<'p> for &'p Pool {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Either<PgQueryResult, PgRow>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.statements_in_transactions {
            return self.inner.fetch_many(query);
        }
        // Collected inside the transaction, then handed out: every caller here reads a few
        // rows at most.
        let all = async move {
            let mut tx = self.inner.begin().await?;
            let items: Vec<_> = (&mut *tx).fetch_many(query).try_collect().await?;
            tx.commit().await?;
            let items = items.into_iter().map(Ok::<_, sqlx::Error>);
            Ok::<_, sqlx::Error>(futures::stream::iter(items))
        };
        futures::stream::once(all).try_flatten().boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<PgRow>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.statements_in_transactions {
            return self.inner.fetch_optional(query);
        }
        Box::pin(async move {
            let mut tx = self.inner.begin().await?;
            let row = (&mut *tx).fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e>(self, sql: SqlStr, parameters: &'e [PgTypeInfo]) -> BoxFuture<'e, sqlx::Result<PgStatement>>
    where
        'p: 'e,
    {
        self.inner.prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, sqlx::Result<Describe<Postgres>>>
    where
        'p: 'e,
    {
        self.inner.describe(sql)
    }
}
