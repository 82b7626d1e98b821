//! Moving a Supabase project's users between GoTrue's tables and Latchkey's:
//! `latchkey import-gotrue` (`import`, with `--retarget` and `--undo` in `retarget`) and
//! `latchkey export-gotrue` (`export`). The SQL is in `db::gotrue`.
//!
//! Everything one command writes happens in one transaction on Latchkey's database (and, for
//! an export elsewhere, one on GoTrue's): a failure anywhere leaves both as they were.

mod export;
mod factors;
mod import;
mod progress;
mod report;
mod retarget;
pub mod tokens;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

pub use export::{ExportOptions, ExportReport, export, gotrue_verifies};
pub use import::{ImportOptions, import};
pub use report::ImportReport;
pub use retarget::{UndoReport, undo};

use crate::config::Config;
use crate::db::gotrue::Schema;

/// Latchkey's database (`DATABASE_URL`), with the search_path every Latchkey connection has.
async fn connect_latchkey(config: &Config) -> anyhow::Result<PgConnection> {
    let url = crate::db::expose_url(config).context(
        "this command needs DATABASE_URL: the database Latchkey serves from (in the zero-setup mode, \
         import into a database of your own instead)",
    )?;
    let options: PgConnectOptions = url
        .parse::<PgConnectOptions>()
        .context("DATABASE_URL is not a valid PostgreSQL connection string")?;
    options
        .options([("search_path", format!("{},public", config.db_namespace))])
        .application_name("latchkey-gotrue")
        .connect()
        .await
        .context("connecting to DATABASE_URL")
}

/// GoTrue's database given as `--from` / `--to`.
async fn connect_other(dsn: &str, flag: &str) -> anyhow::Result<PgConnection> {
    // The connection string holds a password: never echo it.
    let options: PgConnectOptions = dsn
        .parse::<PgConnectOptions>()
        .map_err(|_| anyhow::anyhow!("{flag} is not a valid PostgreSQL connection string"))?;
    options
        .application_name("latchkey-gotrue")
        .connect()
        .await
        .with_context(|| format!("connecting to the database given as {flag}"))
}

fn namespace(config: &Config) -> anyhow::Result<Schema> {
    Schema::new(&config.db_namespace).context("GOTRUE_DB_NAMESPACE must be a plain lower-case identifier")
}

/// The two ends of a run: Latchkey's connection (inside the run's transaction) and, when
/// GoTrue's tables live in another database, a connection there.
struct Ends<'a> {
    latchkey: &'a mut PgConnection,
    other: Option<&'a mut PgConnection>,
}

impl Ends<'_> {
    /// Where GoTrue's tables are.
    fn gotrue(&mut self) -> &mut PgConnection {
        match &mut self.other {
            Some(other) => other,
            None => self.latchkey,
        }
    }
}
