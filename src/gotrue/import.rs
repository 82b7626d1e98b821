//! `latchkey import-gotrue`: GoTrue's users, identities, MFA factors, sessions and refresh
//! tokens (and, on request, its audit log) into Latchkey's tables, in one transaction.
//!
//! 1. GoTrue's tables are read page by page into temporary tables (`db::gotrue::stage`);
//!    refresh tokens become hashes on the way (`tokens`), and each factor is marked with
//!    whether Latchkey can check it (`factors`).
//! 2. Users an earlier run imported are dropped from the staged rows: a second run changes
//!    nothing, and never brings back what was deleted or signed out in Latchkey since.
//! 3. The checks run and the report is printed: with `--dry-run`, or with any problem, the
//!    transaction is rolled back here and nothing has been written.
//! 4. The staged rows are written, then `--retarget` runs, then the transaction commits.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use super::factors;
use super::progress::Progress;
use super::report::{HashFormats, ImportReport, Retarget, V2Sessions};
use super::tokens::{self, GoTrueSession, V2};
use super::{Ends, connect_latchkey, connect_other, namespace, retarget};
use crate::auth::password::check_imported_hash;
use crate::config::Config;
use crate::db::gotrue::stage::{self, Hold, Staged, Table};
use crate::db::gotrue::{Schema, catalog, checks, load};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// GoTrue's database, when it is not Latchkey's.
    pub from: Option<String>,
    pub dry_run: bool,
    pub retarget: bool,
    pub audit_log: bool,
    /// Import users with a verified factor Latchkey cannot check (phone, WebAuthn, a TOTP
    /// secret it cannot read), without that factor.
    pub skip_unusable_factors: bool,
}

/// Runs the import, printing the report to `out` before anything is written. Fails, with
/// nothing written, when the report lists a problem.
pub async fn import(config: &Config, options: &ImportOptions, out: &mut dyn Write) -> anyhow::Result<ImportReport> {
    let ns = namespace(config)?;
    if options.retarget && options.from.is_some() {
        bail!("--retarget changes the database GoTrue's tables are in, which must be Latchkey's: drop --from");
    }
    let mut latchkey = connect_latchkey(config).await?;
    let mut other = match &options.from {
        Some(dsn) => Some(connect_other(dsn, "--from").await?),
        None => None,
    };
    if let Some(other) = other.as_mut() {
        // One consistent snapshot of GoTrue's tables for the whole run.
        sqlx::raw_sql("begin isolation level repeatable read, read only")
            .execute(&mut *other)
            .await?;
    }
    let mut tx = latchkey.begin().await?;
    crate::db::gotrue::migrate_in_transaction(&mut tx, &ns).await?;
    let ends = Ends {
        latchkey: &mut tx,
        other: other.as_mut(),
    };
    let mut report = stage_and_check(ends, options, &ns).await?;
    write!(out, "{report}")?;
    if options.dry_run {
        tx.rollback().await?;
        return Ok(report);
    }
    let blockers = report.blockers().len();
    if blockers > 0 {
        tx.rollback().await?;
        bail!("nothing was imported: {blockers} problems (listed above)");
    }
    let mut ends = Ends {
        latchkey: &mut tx,
        other: other.as_mut(),
    };
    let mut written = load::load_staged(ends.latchkey).await.context("writing the users")?;
    if options.audit_log {
        written.audit_log_entries = copy_audit_log(&mut ends, &source_schema(&report)).await?;
    }
    if let Retarget::Planned(plan) = &report.retarget {
        retarget::apply(&mut tx, plan, &ns).await?;
    }
    load::record_run(&mut *tx, load::Run::Import, &json!(written)).await?;
    tx.commit().await?;
    writeln!(
        out,
        "imported: {} users, {} identities, {} MFA factors, {} sessions, {} refresh tokens, {} audit log entries",
        written.users,
        written.identities,
        written.mfa_factors,
        written.sessions,
        written.refresh_tokens,
        written.audit_log_entries
    )?;
    if matches!(report.retarget, Retarget::Planned(_)) {
        writeln!(
            out,
            "retargeted: GoTrue's tables are in the schema {}",
            Schema::backup().name()
        )?;
    }
    report.written = Some(written);
    Ok(report)
}

fn source_schema(report: &ImportReport) -> Schema {
    if report.source == Schema::backup().name() {
        Schema::backup()
    } else {
        Schema::gotrue()
    }
}

async fn stage_and_check(mut ends: Ends<'_>, options: &ImportOptions, ns: &Schema) -> anyhow::Result<ImportReport> {
    // After --retarget, GoTrue's own tables are in the backup schema (auth.users is a view).
    let retargeted = options.from.is_none() && catalog::is_retargeted(ends.latchkey).await?;
    let source = if retargeted { Schema::backup() } else { Schema::gotrue() };
    let missing = stage::missing_columns(ends.gotrue(), &source).await?;
    if !missing.is_empty() {
        bail!(
            "GoTrue's tables in schema {} lack {}: they are missing, or from a GoTrue older than 2024; \
             run GoTrue's own migrations (start a current GoTrue once) first",
            source.name(),
            missing.join(", ")
        );
    }
    if options.from.is_none() && !options.dry_run {
        let hold = if options.retarget && !retargeted {
            Hold::Exclusive
        } else {
            Hold::Share
        };
        stage::hold(ends.latchkey, &source, hold).await?;
    }
    stage::create_staging(ends.latchkey).await?;
    stage_table(&mut ends, &source, Table::Users).await?;
    stage_table(&mut ends, &source, Table::Identities).await?;
    let v2 = stage_sessions(&mut ends, &source).await?;
    stage_factors(&mut ends, &source).await?;
    let facts = stage::source_facts(ends.gotrue(), &source).await?;
    let audit_log_entries = match options.audit_log {
        true => Some(stage::count(ends.gotrue(), &source, Table::AuditLog).await?),
        false => None,
    };
    let already_imported = checks::drop_already_imported(ends.latchkey).await?;
    let retarget = match (options.retarget, retargeted) {
        (false, _) => Retarget::NotAsked,
        (true, true) => Retarget::AlreadyDone,
        (true, false) => Retarget::Planned(catalog::plan(ends.latchkey, &Schema::gotrue(), ns).await?),
    };
    Ok(ImportReport {
        dry_run: options.dry_run,
        source: match &options.from {
            Some(_) => "the database given as --from".to_owned(),
            None => source.name().to_owned(),
        },
        staged: checks::staged_counts(ends.latchkey).await?,
        factors: checks::staged_factors(ends.latchkey).await?,
        already_imported,
        facts,
        v2,
        hashes: hash_formats(ends.latchkey).await?,
        conflicts: checks::conflicts(ends.latchkey).await?,
        not_objects: checks::not_objects(ends.latchkey).await?,
        skip_unusable_factors: options.skip_unusable_factors,
        audit_log_entries,
        retarget,
        written: None,
    })
}

/// Copies `table` page by page into its staging table.
async fn stage_table(ends: &mut Ends<'_>, source: &Schema, table: Table) -> anyhow::Result<()> {
    let into = match table {
        Table::Users => Staged::Users,
        _ => Staged::Identities,
    };
    let total = stage::count(ends.gotrue(), source, table).await?;
    let progress = Progress::new(table.gotrue_name(), u64::try_from(total).unwrap_or(0));
    let mut after = None;
    loop {
        let rows = stage::read_page(ends.gotrue(), source, table, after).await?;
        if rows.is_empty() {
            break;
        }
        stage::stage(&mut *ends.latchkey, into, &rows).await?;
        progress.advance(rows.len());
        after = stage::last_key(&rows);
    }
    progress.finish();
    Ok(())
}

/// Stages the MFA factors, each marked with why Latchkey cannot hold it (if it cannot).
async fn stage_factors(ends: &mut Ends<'_>, source: &Schema) -> anyhow::Result<()> {
    let total = stage::count(ends.gotrue(), source, Table::MfaFactors).await?;
    let progress = Progress::new("mfa_factors", u64::try_from(total).unwrap_or(0));
    let mut after = None;
    loop {
        let mut rows = stage::read_page(ends.gotrue(), source, Table::MfaFactors, after).await?;
        if rows.is_empty() {
            break;
        }
        after = stage::last_key(&rows);
        for row in &mut rows {
            let reason = factors::unusable(row).map(|r| r.code());
            if let Some(object) = row.as_object_mut() {
                object.insert("unusable".into(), json!(reason));
            }
        }
        stage::stage(&mut *ends.latchkey, Staged::MfaFactors, &rows).await?;
        progress.advance(rows.len());
    }
    progress.finish();
    Ok(())
}

/// Stages the sessions and, computed from each, its refresh tokens (hashed).
async fn stage_sessions(ends: &mut Ends<'_>, source: &Schema) -> anyhow::Result<V2Sessions> {
    let total = stage::count(ends.gotrue(), source, Table::Sessions).await?;
    let progress = Progress::new("sessions", u64::try_from(total).unwrap_or(0));
    let mut v2 = V2Sessions::default();
    let mut after = None;
    loop {
        let mut rows = stage::read_page(ends.gotrue(), source, Table::Sessions, after).await?;
        if rows.is_empty() {
            break;
        }
        after = stage::last_key(&rows);
        let mut token_rows = Vec::new();
        for row in &mut rows {
            let session: GoTrueSession =
                serde_json::from_value(row.clone()).context("reading a session of GoTrue's sessions table")?;
            let (chain, state) = tokens::chain(&session);
            match state {
                V2::Carried => v2.carried += 1,
                V2::Unreadable => v2.unreadable += 1,
                V2::None => {}
            }
            token_rows.extend(tokens::staged_rows(&session, &chain));
            strip_secrets(row, chain.len());
        }
        stage::stage(&mut *ends.latchkey, Staged::Sessions, &rows).await?;
        stage::stage(&mut *ends.latchkey, Staged::RefreshTokens, &token_rows).await?;
        progress.advance(rows.len());
    }
    progress.finish();
    Ok(v2)
}

/// The session row as staged: its counter in Latchkey's numbering, and neither GoTrue's
/// plaintext tokens nor its HMAC key (only their hashes are kept).
fn strip_secrets(row: &mut Value, tokens: usize) {
    if let Some(object) = row.as_object_mut() {
        object.remove("tokens");
        object.remove("refresh_token_hmac_key");
        object.insert("chain_counter".into(), json!(tokens.saturating_sub(1)));
    }
}

async fn hash_formats(conn: &mut PgConnection) -> anyhow::Result<HashFormats> {
    let mut formats = HashFormats::default();
    checks::for_each_password_hash(conn, |id, hash| match check_imported_hash(hash) {
        Ok(()) => formats.usable += 1,
        Err(refused) => {
            let reason = if hash.starts_with('{') {
                "is encrypted by GoTrue's database encryption (GOTRUE_SECURITY_DB_ENCRYPTION_*)".to_owned()
            } else if hash.starts_with("$fbscrypt$") {
                "is Firebase scrypt, which Latchkey does not verify".to_owned()
            } else {
                format!("is refused: {}", refused.message())
            };
            formats.unusable.push((id, reason));
        }
    })
    .await?;
    Ok(formats)
}

async fn copy_audit_log(ends: &mut Ends<'_>, source: &Schema) -> anyhow::Result<u64> {
    let total = stage::count(ends.gotrue(), source, Table::AuditLog).await?;
    let progress = Progress::new("audit_log_entries", u64::try_from(total).unwrap_or(0));
    let (mut copied, mut after) = (0, None);
    loop {
        let rows = stage::read_page(ends.gotrue(), source, Table::AuditLog, after).await?;
        if rows.is_empty() {
            break;
        }
        copied += load::copy_audit_entries(&mut *ends.latchkey, &rows).await?;
        progress.advance(rows.len());
        after = stage::last_key(&rows);
    }
    progress.finish();
    Ok(copied)
}
