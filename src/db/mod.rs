//! The only place SQL lives: one module per table, functions over `PgExecutor` so that they
//! work on the pool or inside a transaction.

pub mod audit;
pub mod cleanup;
pub mod flow_state;
pub mod gotrue;
pub mod hot;
pub mod identities;
pub mod one_time_tokens;
pub mod refresh_tokens;
pub mod sessions;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::Config;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Arbitrary constant naming Latchkey's migration lock (`pg_advisory_lock`).
const MIGRATION_LOCK_KEY: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// Connections idle for longer than this are pinged before use (pgx's default).
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// How long a request waits for a connection before it gets a 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// `GOTRUE_DB_MAX_POOL_SIZE` is shared between the hot-path connections ([`hot::HotPool`]) and
/// sqlx's pool for everything else: half for the hot paths, at most 4 per CPU (the database
/// runs out of cores long before that), so the total stays at the configured size.
pub fn hot_pool_size(config: &Config) -> u32 {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(2);
    (config.db_max_pool_size / 2).clamp(1, 4 * cpus)
}

/// Opens the pool. Every connection gets `search_path` set to the configured namespace as a
/// start-up parameter (no extra round trip), so queries name tables unqualified.
pub fn pool(config: &Config, database_url: &str) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = database_url
        .parse::<PgConnectOptions>()
        .context("DATABASE_URL is not a valid PostgreSQL connection string")?
        .options([("search_path", format!("{},public", config.db_namespace))])
        .application_name("latchkey")
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
    Ok(PgPoolOptions::new()
        .max_connections(config.db_max_pool_size.saturating_sub(hot_pool_size(config)).max(1))
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
        .connect_lazy_with(options))
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
        MIGRATOR.run(&mut *conn).await?;
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
