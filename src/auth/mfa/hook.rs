//! The MFA verification attempt hook point: where GoTrue calls its
//! `GOTRUE_HOOK_MFA_VERIFICATION_ATTEMPT_*` hook, with whether the code was right, and lets
//! it reject the attempt (the user is then signed out everywhere and gets `403
//! mfa_verification_rejected`).
//!
//! The verify use case calls [`MfaVerificationHook::mfa_verification_attempt`] on every
//! attempt. [`NoHook`] lets every attempt continue, exactly as GoTrue does with the hook
//! switched off; `auth::attempt_hooks::MfaAttemptHook` calls the configured `pg-functions://`
//! or HTTPS hook.

use uuid::Uuid;

use crate::error::Error;

/// What the hook is told (GoTrue's `MFAVerificationAttemptInput`).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub user_id: Uuid,
    pub factor_id: Uuid,
    pub factor_type: &'a str,
    /// Whether the code was right (and not a replay).
    pub valid: bool,
}

/// What the hook decides (GoTrue's `MFAVerificationAttemptOutput`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Refuse the attempt; `message` is shown to the client (GoTrue's default otherwise).
    Reject {
        message: Option<String>,
    },
}

#[async_trait::async_trait]
pub trait MfaVerificationHook: std::fmt::Debug + Send + Sync {
    async fn mfa_verification_attempt(&self, attempt: &Attempt<'_>) -> Result<Decision, Error>;
}

/// No hook configured: every attempt continues.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHook;

#[async_trait::async_trait]
impl MfaVerificationHook for NoHook {
    async fn mfa_verification_attempt(&self, _: &Attempt<'_>) -> Result<Decision, Error> {
        Ok(Decision::Continue)
    }
}

/// GoTrue's message when a rejecting hook gives none (`DefaultMFAHookRejectionMessage`).
pub const DEFAULT_REJECTION_MESSAGE: &str = "Further MFA verification attempts will be rejected.";
