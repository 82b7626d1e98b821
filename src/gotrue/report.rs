//! What `import-gotrue` found and did, printed before anything is written (and, after a real
//! run, with what was written). Users are named by id, never by email.

use std::fmt;

use uuid::Uuid;

use super::factors::Unusable;
use crate::db::gotrue::catalog::Plan;
use crate::db::gotrue::checks::{Conflicts, StagedCounts, StagedFactors};
use crate::db::gotrue::load::Loaded;
use crate::db::gotrue::stage::SourceFacts;

/// Password hashes of the users to import, by what Latchkey makes of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashFormats {
    /// bcrypt and argon2 hashes Latchkey verifies (and upgrades to argon2id on sign-in).
    pub usable: u64,
    /// Hashes Latchkey cannot verify, with the reason: copied as they are (the users can
    /// still recover their account, and the hash goes back to GoTrue with `export-gotrue`).
    pub unusable: Vec<(Uuid, String)>,
}

/// What became of v2 refresh tokens (see `gotrue::tokens`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2Sessions {
    pub carried: u64,
    pub unreadable: u64,
}

/// The state of `--retarget`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retarget {
    NotAsked,
    AlreadyDone,
    Planned(Plan),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Where GoTrue's tables were read: `auth`, the backup schema, or `--from`.
    pub source: String,
    pub staged: StagedCounts,
    pub factors: StagedFactors,
    pub already_imported: u64,
    pub facts: SourceFacts,
    pub v2: V2Sessions,
    pub hashes: HashFormats,
    pub conflicts: Conflicts,
    /// Users imported with `{}` for metadata or identity data that was not a JSON object.
    pub not_objects: Vec<Uuid>,
    /// `--skip-unusable-factors`: verified factors Latchkey cannot check do not stop the import.
    pub skip_unusable_factors: bool,
    /// GoTrue's audit log entries, when `--audit-log` asked for them.
    pub audit_log_entries: Option<i64>,
    pub retarget: Retarget,
    /// Filled in once the rows are written.
    pub written: Option<Loaded>,
}

/// How many ids a problem lists before "and N more".
const SHOWN: usize = 10;

fn ids(list: &[Uuid]) -> String {
    let shown: Vec<String> = list.iter().take(SHOWN).map(Uuid::to_string).collect();
    let more = list.len().saturating_sub(SHOWN);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl ImportReport {
    /// Problems that stop the import (nothing is written while there is one).
    pub fn blockers(&self) -> Vec<String> {
        let c = &self.conflicts;
        let mut found = Vec::new();
        let mut add = |list: &[Uuid], what: &str| {
            if !list.is_empty() {
                found.push(format!("{} users {what}: {}", list.len(), ids(list)));
            }
        };
        add(&c.id_taken, "have an id a Latchkey user already has");
        add(
            &c.duplicate_email,
            "share an email (ignoring case) with another user; give each its own first",
        );
        add(&c.duplicate_phone, "share a phone number with another user");
        add(
            &c.identity_taken,
            "have a provider identity that belongs to another Latchkey user",
        );
        add(
            &c.factor_id_taken,
            "have an MFA factor whose id a Latchkey user's factor already has",
        );
        if !self.skip_unusable_factors {
            add(
                &c.unusable_verified_factor,
                &format!(
                    "have a verified MFA factor Latchkey cannot check ({}); imported without it, {} of them \
                     would sign in with no second factor at all. Have them remove it in GoTrue, or pass \
                     --skip-unusable-factors to import them without it (it stays in GoTrue's tables)",
                    self.unusable_reasons(true),
                    self.factors.left_without_mfa
                ),
            );
        }
        if let Retarget::Planned(plan) = &self.retarget {
            found.extend(plan.blockers.iter().map(|b| format!("--retarget: {b}")));
        }
        found
    }

    /// Things to know that do not stop the import.
    pub fn warnings(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (id, reason) in self.hashes.unusable.iter().take(SHOWN) {
            found.push(format!(
                "user {id}: password hash {reason}; copied as it is, the user signs in after a password reset"
            ));
        }
        let more = self.hashes.unusable.len().saturating_sub(SHOWN);
        if more > 0 {
            found.push(format!("{more} more users with a password hash Latchkey cannot verify"));
        }
        if !self.not_objects.is_empty() {
            found.push(format!(
                "{} users have metadata or identity data that is not a JSON object (GoTrue cannot read it \
                 either); imported with {{}} there: {}",
                self.not_objects.len(),
                ids(&self.not_objects)
            ));
        }
        if self.v2.unreadable > 0 {
            found.push(format!(
                "{} sessions keep their v2 refresh-token key encrypted (GOTRUE_SECURITY_DB_ENCRYPTION_*): \
                 their v2 tokens cannot be carried over, those clients sign in again",
                self.v2.unreadable
            ));
        }
        if self.facts.tokens_without_session > 0 {
            found.push(format!(
                "{} live refresh tokens from before GoTrue had sessions (2022) are not imported: those clients sign in again",
                self.facts.tokens_without_session
            ));
        }
        if self.staged.sso_users > 0 {
            found.push(format!(
                "{} SSO (SAML) users are imported but cannot sign in: Latchkey has no SSO",
                self.staged.sso_users
            ));
        }
        let unverified = self.unusable_reasons(false);
        if !unverified.is_empty() {
            found.push(format!(
                "unverified MFA factors Latchkey cannot check are not imported ({unverified}); they protect \
                 nothing yet, and their users enrol again"
            ));
        }
        let skipped = &self.conflicts.unusable_verified_factor;
        if self.skip_unusable_factors && !skipped.is_empty() {
            found.push(format!(
                "--skip-unusable-factors: {} users are imported without their verified {}; {} of them sign in \
                 with no second factor until they enrol a TOTP factor: {}",
                skipped.len(),
                self.unusable_reasons(true),
                self.factors.left_without_mfa,
                ids(skipped)
            ));
        }
        if self.factors.sessions_lowered > 0 {
            found.push(format!(
                "{} sessions reached aal2 through a factor that is not imported: they are imported at aal1",
                self.factors.sessions_lowered
            ));
        }
        found
    }

    /// "2 phone factors (...), 1 TOTP factors whose secret ..." for the verified (or the
    /// unverified) factors Latchkey cannot check.
    fn unusable_reasons(&self, verified: bool) -> String {
        let parts: Vec<String> = self
            .factors
            .unusable
            .iter()
            .filter(|(_, v, _)| *v == verified)
            .map(|(reason, _, count)| format!("{count} {}", Unusable::describe(reason)))
            .collect();
        parts.join(", ")
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.staged;
        let mode = if self.dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        };
        writeln!(f, "GoTrue's tables in {}{mode}:", self.source)?;
        writeln!(
            f,
            "  users to import          {} ({} anonymous)",
            s.users, s.anonymous_users
        )?;
        writeln!(
            f,
            "  already imported         {} (left as Latchkey has them)",
            self.already_imported
        )?;
        writeln!(f, "  identities               {}", s.identities)?;
        writeln!(f, "  sessions                 {}", s.sessions)?;
        writeln!(
            f,
            "  refresh tokens (hashed)  {} ({} sessions on v2 tokens)",
            s.refresh_tokens, self.v2.carried
        )?;
        writeln!(
            f,
            "  password hashes usable   {} (bcrypt/argon2), unusable {}",
            self.hashes.usable,
            self.hashes.unusable.len()
        )?;
        let left_behind: i64 = self.factors.unusable.iter().map(|(_, _, count)| count).sum();
        writeln!(
            f,
            "  MFA factors (TOTP)       {} ({} verified); {} Latchkey cannot check stay in GoTrue's tables",
            self.factors.usable, self.factors.usable_verified, left_behind
        )?;
        if let Some(entries) = self.audit_log_entries {
            writeln!(f, "  audit log entries        {entries}")?;
        }
        match &self.retarget {
            Retarget::NotAsked => {}
            Retarget::AlreadyDone => writeln!(f, "--retarget: already done in this database")?,
            Retarget::Planned(plan) => {
                writeln!(f, "--retarget:")?;
                writeln!(f, "  tables moved to the backup schema  {}", plan.tables.join(", "))?;
                for key in &plan.foreign_keys {
                    writeln!(f, "  foreign key {} on {} → Latchkey's users", key.name, key.table)?;
                }
                for trigger in &plan.triggers {
                    writeln!(f, "  trigger {} → re-created on Latchkey's users", trigger.name)?;
                }
                writeln!(f, "  read-only views auth.users, auth.identities, auth.sessions")?;
            }
        }
        let blockers = self.blockers();
        for blocker in &blockers {
            writeln!(f, "problem: {blocker}")?;
        }
        for warning in self.warnings() {
            writeln!(f, "note: {warning}")?;
        }
        match (&self.written, self.dry_run, blockers.is_empty()) {
            (Some(w), _, _) => writeln!(
                f,
                "imported: {} users, {} identities, {} MFA factors, {} sessions, {} refresh tokens, {} audit log entries",
                w.users, w.identities, w.mfa_factors, w.sessions, w.refresh_tokens, w.audit_log_entries
            ),
            (None, true, true) => writeln!(f, "no problems: the import would go ahead"),
            (None, true, false) => writeln!(f, "the import would stop: {} problems", blockers.len()),
            (None, false, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut() {
        let list: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
        assert!(ids(&list).ends_with("and 2 more"));
        assert_eq!(ids(&list[..1]), list[0].to_string());
    }
}
