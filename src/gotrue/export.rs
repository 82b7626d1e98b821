//! `latchkey export-gotrue`: the way back. Latchkey's users, identities and TOTP factors are
//! written into GoTrue's tables (`auth`, the backup schema after `--retarget`, or the database
//! given as `--to`): added, updated, and removed where Latchkey deleted a user it had imported
//! (or a factor of an exported user). Factors Latchkey could never hold (phone, WebAuthn,
//! secrets it cannot read), which the import left in GoTrue's tables, stay as they are.
//!
//! What cannot go back: sessions and refresh tokens (Latchkey stores tokens hashed, GoTrue
//! needs them in plain text), so every exported user's sessions end, GoTrue's older sessions of
//! those users included; pending one-time links and codes, MFA challenges; the audit log (it
//! stays in Latchkey's `_auth_audit_log`). Password hashes go as they are: bcrypt ones
//! untouched, argon2id ones from sign-ins here, which GoTrue verifies.

use std::io::Write;
use std::sync::LazyLock;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use regex::Regex;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use super::factors;
use super::progress::Progress;
use super::{Ends, connect_latchkey, connect_other, namespace};
use crate::auth::password::bcrypt_cost;
use crate::config::Config;
use crate::db::gotrue::export::{self as sql, Plan, Table};
use crate::db::gotrue::{Schema, catalog, load, migrate_in_transaction, stage};

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// GoTrue's database, when it is not Latchkey's.
    pub to: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub plan: Plan,
    /// Hashes GoTrue verifies.
    pub verifiable: u64,
    /// Hashes GoTrue would not verify, with the reason (those users reset their password).
    pub unverifiable: Vec<(Uuid, String)>,
}

pub async fn export(config: &Config, options: &ExportOptions, out: &mut dyn Write) -> anyhow::Result<ExportReport> {
    let ns = namespace(config)?;
    let mut latchkey = connect_latchkey(config).await?;
    let mut other = match &options.to {
        Some(dsn) => Some(connect_other(dsn, "--to").await?),
        None => None,
    };
    if let Some(other) = other.as_mut() {
        sqlx::raw_sql("begin").execute(&mut *other).await?;
    }
    let mut tx = latchkey.begin().await?;
    migrate_in_transaction(&mut tx, &ns).await?;
    let retargeted = other.is_none() && catalog::is_retargeted(&mut tx).await?;
    let gotrue = if retargeted { Schema::backup() } else { Schema::gotrue() };
    let mut ends = Ends {
        latchkey: &mut tx,
        other: other.as_mut(),
    };
    let missing = stage::missing_columns(ends.gotrue(), &gotrue).await?;
    if !missing.is_empty() {
        anyhow::bail!(
            "GoTrue's tables in schema {} lack {}: create them by starting a current GoTrue once",
            gotrue.name(),
            missing.join(", ")
        );
    }
    sql::create_staging(ends.gotrue(), &gotrue).await?;
    stage_latchkey(&mut ends, Table::Users).await?;
    stage_latchkey(&mut ends, Table::Identities).await?;
    stage_latchkey(&mut ends, Table::MfaFactors).await?;
    let deleted = sql::deleted_since_import(&mut *ends.latchkey).await?;
    sql::stage_deleted(ends.gotrue(), &deleted).await?;
    let mut report = judge(&mut ends, &gotrue).await?;
    let (removed, kept): (Vec<_>, Vec<_>) = sql::factors_missing_here(ends.gotrue(), &gotrue)
        .await?
        .into_iter()
        .partition(|row| factors::unusable(row).is_none());
    let removed: Vec<Uuid> = removed
        .iter()
        .filter_map(|row| row.get("id")?.as_str()?.parse().ok())
        .collect();
    sql::stage_removed_factors(ends.gotrue(), &removed).await?;
    report.plan.mfa_factors_removed = i64::try_from(removed.len()).unwrap_or(i64::MAX);
    report.plan.mfa_factors_kept = i64::try_from(kept.len()).unwrap_or(i64::MAX);
    let clashes = sql::factor_name_clashes(ends.gotrue(), &gotrue).await?;
    print(out, &report, &gotrue, options)?;
    if !clashes.is_empty() {
        let users: Vec<String> = clashes.iter().map(Uuid::to_string).collect();
        writeln!(
            out,
            "problem: {} users have a factor named like one of their factors that stayed in GoTrue's tables \
             (phone, WebAuthn, unreadable secret); rename one of them first: {}",
            users.len(),
            users.join(", ")
        )?;
        if !options.dry_run {
            anyhow::bail!("nothing was exported: {} users with clashing factor names", users.len());
        }
        writeln!(out, "the export would stop: 1 problems")?;
    }
    if options.dry_run {
        return Ok(report);
    }
    sql::write(ends.gotrue(), &gotrue)
        .await
        .context("writing into GoTrue's tables (nothing was written)")?;
    load::record_run(&mut *ends.latchkey, load::Run::Export, &json!(report.plan)).await?;
    if let Some(other) = other.as_mut() {
        sqlx::raw_sql("commit").execute(&mut *other).await?;
    }
    tx.commit().await?;
    writeln!(out, "exported")?;
    Ok(report)
}

async fn stage_latchkey(ends: &mut Ends<'_>, table: Table) -> anyhow::Result<()> {
    let name = match table {
        Table::Users => "users",
        Table::Identities => "identities",
        Table::MfaFactors => "mfa_factors",
    };
    let progress = Progress::new(name, 0);
    let mut after = None;
    loop {
        let rows = sql::read_page(&mut *ends.latchkey, table, after).await?;
        if rows.is_empty() {
            break;
        }
        sql::stage(ends.gotrue(), table, &rows).await?;
        progress.advance(rows.len());
        after = stage::last_key(&rows);
    }
    progress.finish();
    Ok(())
}

async fn judge(ends: &mut Ends<'_>, gotrue: &Schema) -> anyhow::Result<ExportReport> {
    let plan = sql::plan(ends.gotrue(), gotrue).await?;
    let mut report = ExportReport {
        plan,
        ..ExportReport::default()
    };
    for (id, hash) in sql::password_hashes(ends.gotrue()).await? {
        match gotrue_verifies(&hash) {
            Ok(()) => report.verifiable += 1,
            Err(reason) => report.unverifiable.push((id, reason)),
        }
    }
    Ok(report)
}

fn print(out: &mut dyn Write, report: &ExportReport, gotrue: &Schema, options: &ExportOptions) -> std::io::Result<()> {
    let p = &report.plan;
    let place = match options.to {
        Some(_) => format!("the database given as --to, schema {}", gotrue.name()),
        None => format!("schema {}", gotrue.name()),
    };
    let mode = if options.dry_run {
        " (dry run: nothing is written)"
    } else {
        ""
    };
    writeln!(out, "into GoTrue's tables in {place}{mode}:")?;
    writeln!(
        out,
        "  users added {}, updated {}, removed {}",
        p.users_added, p.users_updated, p.users_deleted
    )?;
    writeln!(out, "  identities {} ({} removed)", p.identities, p.identities_removed)?;
    writeln!(
        out,
        "  MFA factors {} ({} removed; {} Latchkey could not hold left as they are)",
        p.mfa_factors, p.mfa_factors_removed, p.mfa_factors_kept
    )?;
    writeln!(
        out,
        "  password hashes GoTrue verifies {}, does not {}",
        report.verifiable,
        report.unverifiable.len()
    )?;
    for (id, reason) in report.unverifiable.iter().take(10) {
        writeln!(
            out,
            "note: user {id}: {reason}; the user resets the password after going back"
        )?;
    }
    writeln!(
        out,
        "note: sessions cannot go back (refresh tokens are stored hashed): {} sessions in GoTrue's tables end, \
         and every exported user signs in again",
        p.sessions_ended
    )?;
    writeln!(
        out,
        "note: pending email links and codes, MFA challenges, and Latchkey's audit log, stay behind"
    )
}

/// Whether GoTrue (`internal/crypto/password.go`) verifies a stored hash: bcrypt of any
/// version, argon2i/argon2id in PHC form with version 19 and `m`, `t`, `p` in that order within
/// its bounds (1 GiB, 20, 16) and no `keyid`/`data`, or Firebase scrypt.
pub fn gotrue_verifies(hash: &str) -> Result<(), String> {
    static ARGON2: LazyLock<Regex> = LazyLock::new(|| {
        // A constant pattern: it compiles.
        Regex::new(r"^\$(argon2i|argon2id)\$v=19\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$([^$]+)\$([^$]+)$")
            .expect("constant pattern")
    });
    if hash.starts_with("$2") {
        return match bcrypt_cost(hash) {
            Some(cost) if cost <= 31 => Ok(()),
            _ => Err("is not a bcrypt hash GoTrue reads".into()),
        };
    }
    if hash.starts_with("$fbscrypt$") {
        return Ok(());
    }
    let Some(parts) = ARGON2.captures(hash) else {
        return Err("is in a format GoTrue does not verify".into());
    };
    let number = |i: usize| parts[i].parse::<u64>().unwrap_or(u64::MAX);
    if number(2) > 1024 * 1024 || number(3) > 20 || number(4) > 16 {
        return Err("has argon2 parameters above GoTrue's limits (m=1 GiB, t=20, p=16)".into());
    }
    let decodes = |i: usize| STANDARD_NO_PAD.decode(&parts[i]).is_ok_and(|bytes| !bytes.is_empty());
    if !decodes(5) || !decodes(6) {
        return Err("has a salt or hash GoTrue cannot decode".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gotrue_verifies_what_its_parser_accepts() {
        let accepted = [
            "$2a$10$5HmCXxusfTiUNzKk8JuICe22PTvwH6B6H4DqSABSLxVSUMCynGd92",
            "$2b$10$dCfRCwa620bYDOQuPolfjO4R.cxx6lz7QG8wJmLZCDs75MfBrXG3m",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaA",
            "$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==,sk=ZWtleQ==$c2FsdA==$aGFzaA==",
        ];
        for hash in accepted {
            assert_eq!(gotrue_verifies(hash), Ok(()), "{hash}");
        }
        let refused = [
            "",
            "plaintext",
            "$argon2d$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$t=2,m=19456,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1,keyid=k$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=2000000,t=2,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=21,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=17$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!$aGFzaA",
            "$2a$bogus",
        ];
        for hash in refused {
            assert!(gotrue_verifies(hash).is_err(), "{hash}");
        }
    }
}
