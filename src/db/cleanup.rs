//! Piecemeal removal of stale rows, after GoTrue's `models.Cleanup`: each statement touches at
//! most a small batch, so one call is always quick, and a background task runs them in rounds
//! (see `crate::cleanup`).
//!
//! Every batch is picked with `for update skip locked`: rows another transaction is using (a
//! refresh in progress holds its session's lock) are left for a later round instead of being
//! waited for, so the cleanup never queues behind, or delays, a request.

use sqlx::PgExecutor;

/// One cleanup statement and the most rows it touches per run.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    pub sql: &'static str,
    /// A run that reached this many rows probably left more behind.
    pub batch: u64,
}

/// The statements, in the order they are run. The 24-hour margins are GoTrue's.
pub const STATEMENTS: [Statement; 6] = [
    // Revoked refresh tokens are only needed for reuse detection and the reuse interval
    // (seconds), so a day after their revocation they can go. A presented token that is gone
    // answers `refresh_token_not_found`, as in GoTrue.
    Statement {
        sql: "delete from _auth_refresh_tokens where id in ( \
             select id from _auth_refresh_tokens \
             where revoked and updated_at < now() - interval '24 hours' \
             limit 1000 for update skip locked)",
        batch: 1000,
    },
    // Sessions past their `not_after` can no longer be refreshed: revoke their tokens, which
    // the statement above then deletes a day later.
    Statement {
        sql: "update _auth_refresh_tokens set revoked = true, updated_at = now() where id in ( \
             select t.id from _auth_refresh_tokens t join _auth_sessions s on s.id = t.session_id \
             where s.not_after < now() - interval '24 hours' and not t.revoked \
             limit 1000 for update of t skip locked)",
        batch: 1000,
    },
    // The sessions themselves go after 72 hours, by when their tokens have mostly been deleted
    // piecemeal above; 10 at a time because each delete cascades to what is left of them.
    Statement {
        sql: "delete from _auth_sessions where id in ( \
             select id from _auth_sessions \
             where not_after < now() - interval '72 hours' \
             limit 10 for update skip locked)",
        batch: 10,
    },
    // PKCE and OAuth flow states are used within minutes
    // (`GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION`, 5 minutes by default).
    Statement {
        sql: "delete from _auth_flow_state where id in ( \
             select id from _auth_flow_state \
             where created_at < now() - interval '24 hours' \
             limit 100 for update skip locked)",
        batch: 100,
    },
    // MFA challenges are verified within minutes (`GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION`).
    Statement {
        sql: "delete from _auth_mfa_challenges where id in ( \
             select id from _auth_mfa_challenges \
             where created_at < now() - interval '24 hours' \
             limit 100 for update skip locked)",
        batch: 100,
    },
    // Factors enrolled and never verified. (Sooner, once `GOTRUE_MFA_FACTOR_EXPIRY_DURATION`
    // has passed without a challenge, the user's next enrolment removes them, as in GoTrue.)
    Statement {
        sql: "delete from _auth_mfa_factors where id in ( \
             select id from _auth_mfa_factors \
             where created_at < now() - interval '24 hours' and status = 'unverified' \
             limit 100 for update skip locked)",
        batch: 100,
    },
];

/// Runs one of [`STATEMENTS`]; returns the number of rows deleted or revoked.
pub async fn run(db: impl PgExecutor<'_>, statement: Statement) -> sqlx::Result<u64> {
    Ok(sqlx::query(statement.sql).execute(db).await?.rows_affected())
}
