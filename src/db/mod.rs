//! The only place SQL lives: one module per table, functions over `PgExecutor` so that they
//! work on the pool or inside a transaction.

pub mod audit;
pub mod cleanup;
pub mod columns;
pub mod custom_providers;
pub mod flow_state;
pub mod gotrue;
pub mod hooks;
pub mod hot;
pub mod identities;
mod json_time;
pub mod mfa_challenges;
pub mod mfa_factors;
mod migrations;
pub mod one_time_tokens;
mod pool;
pub mod refresh_tokens;
pub mod sessions;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::Config;
pub use pool::Pool;

pub use migrations::pending_migrations;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Arbitrary constant naming Latchkey's migration lock (`pg_advisory_lock`).
const MIGRATION_LOCK_KEY: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// Connections idle for longer than this are pinged before use (pgx's default).
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// How long a request waits for a connection before it gets a 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// `LATCHKEY_DB_STATEMENT_CACHE=0` says `DATABASE_URL` is a pooler in transaction mode
/// (PgBouncer, Supavisor): nothing may outlive a transaction on a server connection.
pub fn behind_transaction_pooler(config: &Config) -> bool {
    config.db_statement_cache == 0
}

/// `GOTRUE_DB_MAX_POOL_SIZE` is shared between the hot-path connections ([`hot::HotPool`]) and
/// sqlx's pool for everything else: half for the hot paths, at most 4 per CPU (the database
/// runs out of cores long before that), so the total stays at the configured size. Behind a
/// transaction pooler the hot paths borrow from sqlx's pool (see `hot`), which gets it all.
pub fn hot_pool_size(config: &Config) -> u32 {
    if behind_transaction_pooler(config) {
        return 0;
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(2);
    (config.db_max_pool_size / 2).clamp(1, 4 * cpus)
}

/// Opens the pool the server runs on. Every connection gets `search_path` set to the
/// configured namespace as a start-up parameter (no extra round trip), so queries name tables
/// unqualified; behind a transaction pooler, which cannot pass that parameter on (PgBouncer
/// refuses it), the database role's own `search_path` must name the namespace (checked by
/// [`check_migrated`]).
pub fn pool(config: &Config, database_url: &str) -> anyhow::Result<Pool> {
    let pooler = behind_transaction_pooler(config);
    let mut options = connect_options(config, database_url, !pooler)?;
    if pooler {
        // Not a parameter PgBouncer knows either; Latchkey reads no floats.
        options = options.extra_float_digits(None);
    }
    let size = config.db_max_pool_size.saturating_sub(hot_pool_size(config)).max(1);
    Ok(Pool::new(sqlx_pool(options, size), pooler))
}

/// A pool straight to PostgreSQL for `latchkey migrate`, whatever the statement cache says:
/// migrations hold a session-level lock, which a transaction pooler cannot keep.
pub fn migration_pool(config: &Config, database_url: &str) -> anyhow::Result<PgPool> {
    Ok(sqlx_pool(connect_options(config, database_url, true)?, 2))
}

fn connect_options(config: &Config, database_url: &str, set_search_path: bool) -> anyhow::Result<PgConnectOptions> {
    let mut options = database_url
        .parse::<PgConnectOptions>()
        .context("DATABASE_URL is not a valid PostgreSQL connection string")?
        .application_name("latchkey")
        // 0 behind a transaction pooler: sqlx then prepares every statement unnamed, so none
        // outlives its transaction.
        .statement_cache_capacity(config.db_statement_cache)
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
    if set_search_path {
        options = options.options([("search_path", format!("{},public", config.db_namespace))]);
    }
    Ok(options)
}

fn sqlx_pool(options: PgConnectOptions, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        // sqlx pings every connection it hands out by default: one extra round trip per
        // acquire, which on `GET /user` doubled the database work. Like pgx (GoTrue's pool),
        // ping only connections that sat idle for a while; a connection that broke since its
        // last use still fails its query, which sqlx then discards from the pool.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        // Fail fast when the database is down: requests get a 503 instead of hanging.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options)
}

/// Creates the namespace and applies the migrations. Safe to run from several processes at
/// once: everything happens under one advisory lock, and applied migrations are skipped.
pub async fn migrate(pool: &PgPool, namespace: &str) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("connecting to the database")?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = async {
        // `namespace` was validated as a plain identifier by Config.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create schema if not exists \"{namespace}\""
        )))
        .execute(&mut *conn)
        .await?;
        migrations::keep_api_grants(&mut conn).await?;
        let ran = MIGRATOR.run(&mut *conn).await;
        migrations::forget_api_grants(&mut conn).await?;
        ran?;
        anyhow::Ok(())
    }
    .await;
    let unlock = sqlx::query("select pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result.context("applying migrations")?;
    unlock?;
    Ok(())
}

/// Behind a transaction pooler the server does not migrate: migrations hold a session-level
/// lock, which a pooler may release on another server connection than the one that took it.
/// Instead it checks that `latchkey migrate`, run against PostgreSQL itself, applied every
/// migration this build has, and that the role's `search_path` finds Latchkey's tables.
pub async fn check_migrated(pool: &Pool, namespace: &str) -> anyhow::Result<()> {
    let needed = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: sqlx::Result<Option<i64>> =
        sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
            .fetch_one(pool)
            .await;
    match applied {
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P01") => anyhow::bail!(
            "LATCHKEY_DB_STATEMENT_CACHE=0 (a pooler in transaction mode): Latchkey's tables are not \
             on the database role's search_path. A pooler cannot pass the search_path Latchkey \
             sets when connecting, so set it on the role: ALTER ROLE <the user in DATABASE_URL> \
             SET search_path = {namespace}, public; and run `latchkey migrate` with DATABASE_URL \
             pointing at PostgreSQL itself"
        ),
        Err(err) => Err(err).context("reading the applied migrations"),
        Ok(applied) if applied.unwrap_or(0) < needed => anyhow::bail!(
            "the database lacks migrations up to {needed} (it has {}): behind a pooler in \
             transaction mode the server does not migrate; run `latchkey migrate` with \
             DATABASE_URL pointing at PostgreSQL itself",
            applied.unwrap_or(0)
        ),
        Ok(_) => Ok(()),
    }
}

pub fn expose_url(config: &Config) -> Option<String> {
    config.database_url.as_ref().map(|u| u.expose_secret().to_owned())
}

/// Whether an error is a unique-constraint violation on `constraint`.
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation() && db.constraint() == Some(constraint),
        _ => false,
    }
}
