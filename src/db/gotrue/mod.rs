//! SQL for moving a Supabase project's users between GoTrue's tables (`auth.users`,
//! `auth.identities`, ...) and Latchkey's (`src/gotrue/` drives it). GoTrue's tables are named
//! with their schema (GoTrue's own, or the backup schema `--retarget` moves them to);
//! Latchkey's are reached through the connection's search_path, as everywhere in `db`.
//!
//! - `stage`: reading GoTrue's tables page by page, into temporary tables;
//! - `checks`: what would go wrong, found in the staged rows before anything is written;
//! - `load`: staged rows into Latchkey's tables;
//! - `catalog`: what `--retarget` has to move (foreign keys, triggers, tables);
//! - `retarget`: the statements of `--retarget` and `--undo`, and their record;
//! - `export`: Latchkey's users and identities back into GoTrue's tables.

pub mod catalog;
pub mod checks;
pub mod export;
pub mod load;
pub mod retarget;
pub mod stage;

use anyhow::Context;
use sqlx::{AssertSqlSafe, PgConnection};

/// The schema GoTrue keeps its tables in.
pub const GOTRUE_SCHEMA: &str = "auth";

/// Where `--retarget` moves GoTrue's tables, and `--undo` takes them back from.
pub const BACKUP_SCHEMA: &str = "auth_gotrue_backup";

/// GoTrue's tables, as its migrations name them. `--retarget` moves those that exist aside;
/// other tables in `auth` (a project's own, say) stay where they are.
pub const GOTRUE_TABLES: &[&str] = &[
    "audit_log_entries",
    "custom_oauth_providers",
    "flow_state",
    "identities",
    "instances",
    "mfa_amr_claims",
    "mfa_challenges",
    "mfa_factors",
    "oauth_authorizations",
    "oauth_client_states",
    "oauth_clients",
    "oauth_consents",
    "one_time_tokens",
    "refresh_tokens",
    "saml_providers",
    "saml_relay_states",
    "schema_migrations",
    "sessions",
    "sso_domains",
    "sso_providers",
    "sso_sessions",
    "users",
    "webauthn_challenges",
    "webauthn_credentials",
];

/// A schema name that is a plain lower-case identifier, so it can be written into SQL as
/// `"name"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema(String);

impl Schema {
    pub fn new(name: &str) -> Option<Schema> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        (first_ok && rest_ok && name.len() < 64).then(|| Schema(name.to_owned()))
    }

    pub fn gotrue() -> Schema {
        Schema(GOTRUE_SCHEMA.to_owned())
    }

    pub fn backup() -> Schema {
        Schema(BACKUP_SCHEMA.to_owned())
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `"name"`, for SQL.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

/// Creates Latchkey's namespace and applies its migrations inside the caller's transaction
/// (sqlx runs each migration in a savepoint), so that a dry run that rolls back leaves no
/// trace, not even Latchkey's tables.
pub async fn migrate_in_transaction(conn: &mut PgConnection, ns: &Schema) -> anyhow::Result<()> {
    sqlx::query(sql(format!("create schema if not exists {}", ns.quoted())))
        .execute(&mut *conn)
        .await?;
    // As `db::migrate` does: the API roles' grants on GoTrue's tables survive the RLS migration.
    super::migrations::keep_api_grants(&mut *conn).await?;
    crate::db::MIGRATOR
        .run(&mut *conn)
        .await
        .context("applying Latchkey's migrations")?;
    super::migrations::forget_api_grants(conn).await?;
    Ok(())
}

/// SQL assembled from constants and [`Schema`] names only (never from data).
fn sql(text: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["auth", "auth_gotrue_backup", "_x1"] {
            assert!(Schema::new(good).is_some(), "{good}");
        }
        for bad in ["", "Auth", "1a", "a-b", "a\"; drop table x; --", "a b", &"a".repeat(64)] {
            assert!(Schema::new(bad).is_none(), "{bad}");
        }
    }
}
