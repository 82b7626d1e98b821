//! The verification attempt hooks (`GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_*`,
//! `GOTRUE_HOOK_MFA_VERIFICATION_ATTEMPT_*`): after a password or an MFA code has been
//! checked, the hook is told who tried and whether it was right, and answers
//! `{"decision": "continue" | "reject", "message", "should_logout_user"}`. That is how a
//! lock-out after N failures is built. As in GoTrue, the hook runs in a transaction of its
//! own, committed whatever the request's outcome, so that what it counts is kept when the
//! attempt fails.

use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::mfa::hook::{Attempt, Decision, MfaVerificationHook};
use crate::db::Pool;
use crate::error::Error;
use crate::hooks::Hook;

/// GoTrue's message when a rejecting password hook gives none.
pub const DEFAULT_PASSWORD_REJECTION_MESSAGE: &str = "Further password verification attempts will be rejected.";

/// The decision of an attempt hook (GoTrue's `*VerificationAttemptOutput`).
#[derive(Debug, Default, Deserialize)]
struct AttemptOutput {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    should_logout_user: bool,
}

/// What the password hook decided.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordDecision {
    Continue,
    /// Refuse the sign-in with `message`; `sign_out` ends every session of the user first.
    Reject {
        message: String,
        sign_out: bool,
    },
}

/// Tells the password hook of an attempt on `user_id` (`valid`: the password was right).
/// `conn` must not be inside the request's transaction (see the module's note).
pub async fn password_attempt(
    hook: &Hook,
    conn: &mut PgConnection,
    user_id: Uuid,
    valid: bool,
) -> Result<PasswordDecision, Error> {
    let output = decide(hook, conn, json!({ "user_id": user_id, "valid": valid })).await?;
    Ok(match output.decision.as_str() {
        "reject" => PasswordDecision::Reject {
            message: non_empty_or(output.message, DEFAULT_PASSWORD_REJECTION_MESSAGE),
            sign_out: output.should_logout_user,
        },
        _ => PasswordDecision::Continue,
    })
}

async fn decide(hook: &Hook, conn: &mut PgConnection, input: serde_json::Value) -> Result<AttemptOutput, Error> {
    let output = hook.call(conn, input).await?;
    serde_json::from_value(output).map_err(|err| Error::internal_with_message("Error unmarshaling JSON output.", err))
}

fn non_empty_or(message: String, default: &str) -> String {
    if message.is_empty() {
        default.to_owned()
    } else {
        message
    }
}

/// The MFA verification attempt hook behind the hook point of `auth::mfa::hook`.
#[derive(Debug)]
pub struct MfaAttemptHook {
    hook: Hook,
    db: Pool,
}

impl MfaAttemptHook {
    pub fn new(hook: Hook, db: Pool) -> MfaAttemptHook {
        MfaAttemptHook { hook, db }
    }
}

#[async_trait::async_trait]
impl MfaVerificationHook for MfaAttemptHook {
    async fn mfa_verification_attempt(&self, attempt: &Attempt<'_>) -> Result<Decision, Error> {
        let input = json!({
            "user_id": attempt.user_id,
            "factor_id": attempt.factor_id,
            "factor_type": attempt.factor_type,
            "valid": attempt.valid,
        });
        // Its own transaction, committed even when the attempt then fails (GoTrue calls it
        // outside the verification's transaction).
        let mut tx = self.db.begin().await?;
        let output = decide(&self.hook, &mut tx, input).await?;
        tx.commit().await?;
        Ok(match output.decision.as_str() {
            "reject" => Decision::Reject {
                message: Some(output.message).filter(|m| !m.is_empty()),
            },
            _ => Decision::Continue,
        })
    }
}
