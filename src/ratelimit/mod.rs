//! Rate limiting, without HTTP: GoTrue's endpoint groups, the verdicts the API turns into
//! `RateLimit-*` headers and 429s, and the [`Limiter`] trait with its in-memory store
//! ([`MemoryLimiter`]), and the store several replicas share ([`RedisLimiter`]).

mod memory;
mod redis;

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

use crate::config::{Rate, RateLimitConfig};

/// Takes requests from the buckets of the groups a request draws from, and mails from the
/// server's email budget.
#[async_trait::async_trait]
pub trait Limiter: std::fmt::Debug + Send + Sync {
    /// Takes one request from each group's bucket for `key`, in order, and stops at the
    /// first refusal (so a refused request does not also drain the later, wider buckets). On
    /// success, the verdict of the bucket closest to empty (`None` when no group applies).
    async fn check(&self, groups: &[Group], key: IpAddr) -> Result<Option<Verdict>, Verdict>;

    /// Takes one request from the bucket of the account a `POST /verify` code is tried
    /// against (`Group::VerifyPerAccount`).
    async fn check_account(&self, key: AccountKey) -> Result<Option<Verdict>, Verdict>;

    /// Takes one mail from GoTrue's global `GOTRUE_RATE_LIMIT_EMAIL_SENT` budget. `Err`
    /// carries how long until another mail may go out (`None`: never, the limit is 0).
    async fn take_email(&self) -> Result<(), Option<Duration>>;

    /// Takes one text message from GoTrue's global `GOTRUE_RATE_LIMIT_SMS_SENT` budget (the
    /// caller skips it under `GOTRUE_SMS_AUTOCONFIRM`, as GoTrue does). `Err` as for mail.
    async fn take_sms(&self) -> Result<(), Option<Duration>>;

    /// How many keys the store holds (its memory), for tests and operators.
    fn keys_held(&self) -> usize;
}

/// The endpoint groups, each with its own bucket per client address, and the one bucket
/// keyed by account instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    TokenRefresh,
    Verify,
    Otp,
    SignInSignUps,
    AnonymousUsers,
    Authorize,
    /// `POST /factors/{id}/challenge`.
    MfaChallenge,
    /// `POST /factors/{id}/verify`.
    MfaVerify,
    /// Keyed by the email or phone a `POST /verify` code is tried against.
    VerifyPerAccount,
}

impl Group {
    /// The groups keyed by client address.
    pub const PER_CLIENT: [Group; 8] = [
        Group::TokenRefresh,
        Group::Verify,
        Group::Otp,
        Group::SignInSignUps,
        Group::AnonymousUsers,
        Group::Authorize,
        Group::MfaChallenge,
        Group::MfaVerify,
    ];

    /// The variable that sets this group's rate, to name it in logs.
    pub fn variable(self) -> &'static str {
        match self {
            Group::TokenRefresh => "GOTRUE_RATE_LIMIT_TOKEN_REFRESH",
            Group::Verify => "GOTRUE_RATE_LIMIT_VERIFY",
            Group::Otp => "GOTRUE_RATE_LIMIT_OTP",
            Group::SignInSignUps => "GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS",
            Group::AnonymousUsers => "GOTRUE_RATE_LIMIT_ANONYMOUS_USERS",
            Group::Authorize => "LATCHKEY_RATE_LIMIT_AUTHORIZE",
            Group::MfaChallenge | Group::MfaVerify => "GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY",
            Group::VerifyPerAccount => "LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS",
        }
    }

    pub(crate) fn rate(self, config: &RateLimitConfig) -> Rate {
        match self {
            Group::TokenRefresh => config.token_refresh,
            Group::Verify => config.verify,
            Group::Otp => config.otp,
            Group::SignInSignUps => config.sign_in_sign_ups,
            Group::AnonymousUsers => config.anonymous_users,
            Group::Authorize => config.authorize,
            // One variable, two buckets, as in GoTrue (`limiterOpts.FactorChallenge` and
            // `FactorVerify`): a challenge-and-verify takes one from each.
            Group::MfaChallenge | Group::MfaVerify => config.mfa_challenge_and_verify,
            Group::VerifyPerAccount => config.verify_per_address,
        }
    }
}

/// An email or phone as a bucket key: the first 128 bits of its SHA-256, so every key has the
/// same small size whatever was sent, and the maps hold no addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountKey([u8; 16]);

impl AccountKey {
    /// `account` must already be normalised (one spelling per account).
    pub fn new(account: &str) -> AccountKey {
        let digest = Sha256::digest(account.as_bytes());
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        AccountKey(key)
    }
}

/// What the limiter tells the client (`RateLimit-*` and `Retry-After` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub group: Group,
    /// The bucket size.
    pub limit: u32,
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until the next request can pass; `Some` only on a refusal.
    pub retry_after: Option<Duration>,
}
