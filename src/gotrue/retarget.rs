//! `--retarget` and `--undo`.
//!
//! `--retarget` (in the import's transaction): the project's foreign keys that reference
//! `auth.users` are dropped, GoTrue's tables move to `auth_gotrue_backup`, the keys come back
//! referencing `<namespace>._auth_users` (validated: every row must point at an imported
//! user), the project's triggers on `auth.users` are re-created on `_auth_users` (the
//! originals, now on the backup table, are switched off), and read-only views `auth.users`,
//! `auth.identities` and `auth.sessions` take the tables' place. Each step is recorded with
//! what undoes it.
//!
//! `--undo` replays that record backwards, then removes from Latchkey the users GoTrue's
//! tables hold, so that a later import starts afresh. It refuses while Latchkey holds what
//! GoTrue's tables lack (users who signed up here, or anything recorded in the audit log since
//! the last import or export): `export-gotrue` first.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::{connect_latchkey, namespace};
use crate::config::Config;
use crate::db::gotrue::catalog::{self, Plan};
use crate::db::gotrue::retarget::{self as ddl, Step};
use crate::db::gotrue::{Schema, load, migrate_in_transaction, stage};

pub async fn apply(conn: &mut PgConnection, plan: &Plan, ns: &Schema) -> anyhow::Result<()> {
    let (gotrue, backup) = (Schema::gotrue(), Schema::backup());
    ddl::create_backup_schema(conn)
        .await
        .context("creating the backup schema (it must not exist yet)")?;
    for key in &plan.foreign_keys {
        ddl::drop_foreign_key(conn, key)
            .await
            .with_context(|| key_context(&key.name, &key.table))?;
    }
    for table in &plan.tables {
        ddl::move_table(conn, &gotrue, table, &backup)
            .await
            .with_context(|| format!("moving {}.{table} aside", gotrue.name()))?;
    }
    for key in &plan.foreign_keys {
        ddl::add_foreign_key(conn, &key.table, &key.name, &key.retargeted)
            .await
            .with_context(|| {
                format!(
                    "{} (does a row refer to a user that is not imported?)",
                    key_context(&key.name, &key.table)
                )
            })?;
    }
    for trigger in &plan.triggers {
        ddl::move_trigger(conn, trigger, ns)
            .await
            .with_context(|| format!("re-creating trigger {} on Latchkey's users", trigger.name))?;
    }
    ddl::create_views(conn, &gotrue, ns)
        .await
        .context("creating the views auth.users, auth.identities, auth.sessions")?;
    Ok(())
}

fn key_context(name: &str, table: &str) -> String {
    format!("pointing foreign key {name} on {table} at Latchkey's users")
}

/// What `--undo` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoReport {
    /// The retarget steps replayed backwards.
    pub steps: Vec<Step>,
    /// Users removed from Latchkey's tables (they are in GoTrue's).
    pub users_removed: u64,
}

pub async fn undo(config: &Config, dry_run: bool, out: &mut dyn Write) -> anyhow::Result<UndoReport> {
    let ns = namespace(config)?;
    let mut conn = connect_latchkey(config).await?;
    let mut tx = conn.begin().await?;
    migrate_in_transaction(&mut tx, &ns).await?;
    let retargeted = catalog::is_retargeted(&mut tx).await?;
    let gotrue_tables = if retargeted { Schema::backup() } else { Schema::gotrue() };
    if !stage::missing_columns(&mut *tx, &gotrue_tables).await?.is_empty() {
        bail!(
            "there is nothing to undo: GoTrue's tables are not in schema {}",
            gotrue_tables.name()
        );
    }
    refuse_if_latchkey_is_ahead(&mut tx, &gotrue_tables).await?;
    let steps = if retargeted {
        ddl::steps(&mut tx).await?
    } else {
        Vec::new()
    };
    let mut report = UndoReport {
        steps: steps.clone(),
        users_removed: 0,
    };
    for step in &steps {
        writeln!(
            out,
            "undo: {} {} ({})",
            step.kind.replace('_', " "),
            step.name,
            step.object
        )?;
    }
    if retargeted {
        undo_retarget(&mut tx, &steps).await?;
    }
    // Only now that the project's keys point at GoTrue's users again: deleting Latchkey's
    // copies must not cascade into the project's tables.
    report.users_removed = load::forget_gotrue_users(&mut tx, &Schema::gotrue()).await?;
    writeln!(
        out,
        "undo: {} users removed from Latchkey (GoTrue's tables hold them)",
        report.users_removed
    )?;
    if dry_run {
        tx.rollback().await?;
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(report);
    }
    load::record_run(
        &mut *tx,
        load::Run::Undo,
        &json!({ "users_removed": report.users_removed }),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

async fn refuse_if_latchkey_is_ahead(conn: &mut PgConnection, gotrue_tables: &Schema) -> anyhow::Result<()> {
    let missing = load::users_missing_in_gotrue(&mut *conn, gotrue_tables).await?;
    if missing > 0 {
        bail!(
            "{missing} Latchkey users are not in GoTrue's tables (they signed up through Latchkey): \
             run `latchkey export-gotrue` first, or they would be lost"
        );
    }
    if let Some(since) = load::last_sync(&mut *conn).await? {
        let events = load::activity_since(&mut *conn, since).await?;
        if events > 0 {
            bail!(
                "Latchkey has recorded {events} audit events since the last import or export (sign-ins, \
                 sign-ups, changes): run `latchkey export-gotrue` first, so that GoTrue's tables hold them"
            );
        }
    }
    Ok(())
}

/// Replays the record backwards: views, triggers, keys, tables, keys again.
async fn undo_retarget(conn: &mut PgConnection, steps: &[Step]) -> anyhow::Result<()> {
    let (gotrue, backup) = (Schema::gotrue(), Schema::backup());
    let of_kind = |kind: &'static str| steps.iter().rev().filter(move |s| s.kind == kind);
    ddl::drop_views(conn, &gotrue)
        .await
        .context("dropping the compatibility views")?;
    for step in of_kind("trigger") {
        ddl::restore_trigger(conn, step)
            .await
            .with_context(|| format!("restoring trigger {}", step.name))?;
    }
    for step in of_kind("foreign_key") {
        ddl::drop_constraint(conn, &step.object, &step.name)
            .await
            .with_context(|| format!("dropping foreign key {} on {}", step.name, step.object))?;
    }
    for step in of_kind("table") {
        ddl::move_table(conn, &backup, &step.name, &gotrue)
            .await
            .with_context(|| format!("moving {} back to {}", step.name, gotrue.name()))?;
    }
    for step in of_kind("foreign_key") {
        ddl::add_foreign_key(conn, &step.object, &step.name, &step.original)
            .await
            .with_context(|| {
                format!(
                    "restoring foreign key {} on {} (a row refers to a user only Latchkey has?)",
                    step.name, step.object
                )
            })?;
    }
    ddl::drop_backup_schema(conn)
        .await
        .context("dropping the backup schema (something else was put in it?)")?;
    Ok(())
}
