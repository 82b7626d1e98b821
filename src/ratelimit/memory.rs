//! The in-memory store: one governor keyed limiter per endpoint group, the global email
//! limiter, and the pruning that keeps memory bounded. Each process has its own budgets.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

use super::{AccountKey, Group, Limiter, Verdict};
use crate::config::{Rate, RateLimitConfig};

type KeyedLimiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

struct GroupLimiter<K: Hash + Eq + Clone> {
    group: Group,
    limit: u32,
    interval: Duration,
    limiter: KeyedLimiter<K>,
}

/// Map size (all groups together) at which a prune is started without waiting for the
/// timer. Each key costs a few dozen bytes, so this is a few MiB.
const PRUNE_AT_KEYS: usize = 100_000;
/// The map size is looked at on one check in this many (it locks every shard briefly).
const SIZE_CHECK_EVERY: u64 = 1024;

/// All limiters; cheap to clone. A background task prunes idle addresses every
/// `LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL`, and sooner when the maps grow large.
#[derive(Clone)]
pub struct MemoryLimiter(Arc<Inner>);

struct Inner {
    groups: Vec<GroupLimiter<IpAddr>>,
    /// `None` only if its rate were zero, which the configuration refuses.
    verify_per_account: Option<GroupLimiter<AccountKey>>,
    /// `None` when `GOTRUE_RATE_LIMIT_EMAIL_SENT=0`: no mail at all.
    email_sent: Option<DefaultDirectRateLimiter>,
    /// GoTrue does not count mail against the limit when autoconfirm is on.
    email_unlimited: bool,
    /// `None` when `GOTRUE_RATE_LIMIT_SMS_SENT=0`: no text message at all.
    sms_sent: Option<DefaultDirectRateLimiter>,
    checks: AtomicU64,
    prune_at: AtomicUsize,
    /// Wakes the pruning task early (map too large) or for good (limiters dropped).
    wake: Arc<Notify>,
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter").field("keys", &self.len()).finish()
    }
}

impl MemoryLimiter {
    /// Builds the limiters and, inside a tokio runtime, starts the pruning task (it ends when
    /// the last clone is dropped).
    pub fn new(config: &RateLimitConfig, mailer_autoconfirm: bool) -> MemoryLimiter {
        MemoryLimiter::with_prune_at(config, mailer_autoconfirm, PRUNE_AT_KEYS)
    }

    fn with_prune_at(config: &RateLimitConfig, mailer_autoconfirm: bool, prune_at: usize) -> MemoryLimiter {
        let groups = Group::PER_CLIENT
            .into_iter()
            .filter_map(|group| GroupLimiter::new(group, config))
            .collect();
        let inner = Arc::new(Inner {
            groups,
            verify_per_account: GroupLimiter::new(Group::VerifyPerAccount, config),
            email_sent: quota(config.email_sent).map(|(q, ..)| RateLimiter::direct(q)),
            email_unlimited: mailer_autoconfirm,
            sms_sent: quota(config.sms_sent).map(|(q, ..)| RateLimiter::direct(q)),
            checks: AtomicU64::new(0),
            prune_at: AtomicUsize::new(prune_at),
            wake: Arc::new(Notify::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(prune_periodically(
                Arc::downgrade(&inner),
                inner.wake.clone(),
                config.prune_interval,
            ));
        }
        MemoryLimiter(inner)
    }

    /// Takes one request from each group's bucket for `key`, in order, and stops at the first
    /// refusal (so a refused request does not also drain the later, wider buckets). On
    /// success, the verdict is that of the bucket closest to empty.
    pub fn check(&self, groups: &[Group], key: IpAddr) -> Result<Option<Verdict>, Verdict> {
        self.note_check();
        let mut tightest: Option<Verdict> = None;
        for group in groups {
            let Some(limiter) = self.0.groups.iter().find(|l| l.group == *group) else {
                continue;
            };
            let verdict = limiter.check(&key)?;
            if tightest.is_none_or(|t| verdict.remaining < t.remaining) {
                tightest = Some(verdict);
            }
        }
        Ok(tightest)
    }

    /// Takes one request from the bucket of the account a `POST /verify` code is tried
    /// against.
    pub fn check_verify_per_account(&self, key: AccountKey) -> Result<Option<Verdict>, Verdict> {
        self.note_check();
        self.0.verify_per_account.as_ref().map(|l| l.check(&key)).transpose()
    }

    /// For the mailer, before each email: GoTrue's global `GOTRUE_RATE_LIMIT_EMAIL_SENT`.
    /// `Err` carries how long until another email may go out (`None`: never, the limit is 0).
    pub fn check_email_sent(&self) -> Result<(), Option<Duration>> {
        // GoTrue's order (`mail.go`): zero refuses all mail even under autoconfirm; otherwise
        // autoconfirm skips the count.
        let limiter = self.0.email_sent.as_ref().ok_or(None)?;
        if self.0.email_unlimited {
            return Ok(());
        }
        limiter
            .check()
            .map_err(|not_until| Some(not_until.wait_time_from(limiter.clock().now())))
    }

    /// Before each text message: GoTrue's global `GOTRUE_RATE_LIMIT_SMS_SENT`.
    pub fn check_sms_sent(&self) -> Result<(), Option<Duration>> {
        let limiter = self.0.sms_sent.as_ref().ok_or(None)?;
        limiter
            .check()
            .map_err(|not_until| Some(not_until.wait_time_from(limiter.clock().now())))
    }

    /// Keys held across all groups (for tests and the size trigger).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every address whose bucket has been full again for at least one refill interval.
    /// Lossless: such an address would get a full bucket anyway, so pruning never hands out
    /// extra requests.
    pub fn prune(&self) {
        self.0.prune();
    }

    fn note_check(&self) {
        let n = self.0.checks.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(SIZE_CHECK_EVERY) && self.len() >= self.0.prune_at.load(Ordering::Relaxed) {
            self.0.wake.notify_one();
        }
    }
}

impl Inner {
    fn len(&self) -> usize {
        let accounts = self.verify_per_account.as_ref().map_or(0, GroupLimiter::len);
        self.groups.iter().map(GroupLimiter::len).sum::<usize>() + accounts
    }

    fn prune(&self) {
        for limiter in &self.groups {
            limiter.prune();
        }
        if let Some(limiter) = &self.verify_per_account {
            limiter.prune();
        }
        // Addresses that are all still active cannot be dropped; wait for the map to double
        // before trying again so a large live population does not cause a prune per check.
        let left = self.len();
        self.prune_at
            .store(PRUNE_AT_KEYS.max(left.saturating_mul(2)), Ordering::Relaxed);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Ends the pruning task now instead of at its next tick.
        self.wake.notify_one();
    }
}

impl<K: Hash + Eq + Clone> GroupLimiter<K> {
    /// `None` for a rate of zero.
    fn new(group: Group, config: &RateLimitConfig) -> Option<GroupLimiter<K>> {
        let (quota, interval, limit) = quota(group.rate(config))?;
        Some(GroupLimiter {
            group,
            limit,
            interval,
            limiter: RateLimiter::keyed(quota).with_middleware(),
        })
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn check(&self, key: &K) -> Result<Verdict, Verdict> {
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(Verdict {
                    group: self.group,
                    limit: self.limit,
                    remaining,
                    reset: self.interval * self.limit.saturating_sub(remaining),
                    retry_after: None,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Err(Verdict {
                    group: self.group,
                    limit: self.limit,
                    remaining: 0,
                    reset: wait + self.interval * self.limit.saturating_sub(1),
                    retry_after: Some(wait),
                })
            }
        }
    }
}

/// The governor quota for a rate, with its refill interval and bucket size; `None` for a
/// rate of zero.
fn quota(rate: Rate) -> Option<(Quota, Duration, u32)> {
    let interval = rate.replenish_interval()?;
    let burst = NonZeroU32::new(rate.burst)?;
    let quota = Quota::with_period(interval)?.allow_burst(burst);
    Some((quota, interval, burst.get()))
}

#[async_trait::async_trait]
impl Limiter for MemoryLimiter {
    async fn check(&self, groups: &[Group], key: IpAddr) -> Result<Option<Verdict>, Verdict> {
        MemoryLimiter::check(self, groups, key)
    }

    async fn check_account(&self, key: AccountKey) -> Result<Option<Verdict>, Verdict> {
        self.check_verify_per_account(key)
    }

    async fn take_email(&self) -> Result<(), Option<Duration>> {
        self.check_email_sent()
    }

    async fn take_sms(&self) -> Result<(), Option<Duration>> {
        self.check_sms_sent()
    }

    fn keys_held(&self) -> usize {
        self.len()
    }
}

async fn prune_periodically(inner: Weak<Inner>, wake: Arc<Notify>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; nothing to prune yet
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = wake.notified() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // `retain` write-locks each shard while it walks it; off the async workers.
        let pruned = tokio::task::spawn_blocking(move || inner.prune()).await;
        if let Err(err) = pruned {
            tracing::error!(error = %err, "pruning rate-limit state failed");
        }
    }
}

#[cfg(test)]
mod tests;
