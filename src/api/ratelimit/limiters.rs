//! The limiters themselves: one governor keyed limiter per endpoint group, the global email
//! limiter, and the pruning that keeps memory bounded. No HTTP here.

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

use crate::config::{Rate, RateLimitConfig};

/// The endpoint groups, each with its own bucket per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    TokenRefresh,
    Verify,
    Otp,
    SignInSignUps,
    AnonymousUsers,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::TokenRefresh,
        Group::Verify,
        Group::Otp,
        Group::SignInSignUps,
        Group::AnonymousUsers,
    ];

    /// The variable that sets this group's rate, to name it in logs.
    pub fn variable(self) -> &'static str {
        match self {
            Group::TokenRefresh => "GOTRUE_RATE_LIMIT_TOKEN_REFRESH",
            Group::Verify => "GOTRUE_RATE_LIMIT_VERIFY",
            Group::Otp => "GOTRUE_RATE_LIMIT_OTP",
            Group::SignInSignUps => "GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS",
            Group::AnonymousUsers => "GOTRUE_RATE_LIMIT_ANONYMOUS_USERS",
        }
    }

    fn rate(self, config: &RateLimitConfig) -> Rate {
        match self {
            Group::TokenRefresh => config.token_refresh,
            Group::Verify => config.verify,
            Group::Otp => config.otp,
            Group::SignInSignUps => config.sign_in_sign_ups,
            Group::AnonymousUsers => config.anonymous_users,
        }
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

type KeyedLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

struct GroupLimiter {
    group: Group,
    limit: u32,
    interval: Duration,
    limiter: KeyedLimiter,
}

/// Map size (all groups together) at which a prune is started without waiting for the
/// timer. Each key costs a few dozen bytes, so this is a few MiB.
const PRUNE_AT_KEYS: usize = 100_000;
/// The map size is looked at on one check in this many (it locks every shard briefly).
const SIZE_CHECK_EVERY: u64 = 1024;

/// All limiters; cheap to clone. A background task prunes idle addresses every
/// `LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL`, and sooner when the maps grow large.
#[derive(Clone)]
pub struct RateLimits(Arc<Inner>);

struct Inner {
    groups: Vec<GroupLimiter>,
    /// `None` when `GOTRUE_RATE_LIMIT_EMAIL_SENT=0`: no mail at all.
    email_sent: Option<DefaultDirectRateLimiter>,
    /// GoTrue does not count mail against the limit when autoconfirm is on.
    email_unlimited: bool,
    checks: AtomicU64,
    prune_at: AtomicUsize,
    /// Wakes the pruning task early (map too large) or for good (limiters dropped).
    wake: Arc<Notify>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("keys", &self.len()).finish()
    }
}

impl RateLimits {
    /// Builds the limiters and, inside a tokio runtime, starts the pruning task (it ends when
    /// the last clone is dropped).
    pub fn new(config: &RateLimitConfig, mailer_autoconfirm: bool) -> RateLimits {
        RateLimits::with_prune_at(config, mailer_autoconfirm, PRUNE_AT_KEYS)
    }

    fn with_prune_at(config: &RateLimitConfig, mailer_autoconfirm: bool, prune_at: usize) -> RateLimits {
        let groups = Group::ALL
            .into_iter()
            .filter_map(|group| {
                let rate = group.rate(config);
                let (quota, interval, limit) = quota(rate)?;
                let limiter = RateLimiter::keyed(quota).with_middleware();
                Some(GroupLimiter {
                    group,
                    limit,
                    interval,
                    limiter,
                })
            })
            .collect();
        let inner = Arc::new(Inner {
            groups,
            email_sent: quota(config.email_sent).map(|(q, ..)| RateLimiter::direct(q)),
            email_unlimited: mailer_autoconfirm,
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
        RateLimits(inner)
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

    /// Keys held across all groups (for tests and the size trigger).
    pub fn len(&self) -> usize {
        self.0.groups.iter().map(|l| l.limiter.len()).sum()
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
    fn prune(&self) {
        for limiter in &self.groups {
            limiter.limiter.retain_recent();
            limiter.limiter.shrink_to_fit();
        }
        // Addresses that are all still active cannot be dropped; wait for the map to double
        // before trying again so a large live population does not cause a prune per check.
        let left: usize = self.groups.iter().map(|l| l.limiter.len()).sum();
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

impl GroupLimiter {
    fn check(&self, key: &IpAddr) -> Result<Verdict, Verdict> {
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
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::config::Config;

    fn limits(pairs: &[(&str, &str)]) -> RateLimits {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::from_vars(vars).unwrap();
        RateLimits::new(&config.rate_limit, config.mailer_autoconfirm)
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn the_bucket_empties_and_reports_what_is_left() {
        let limits = limits(&[("GOTRUE_RATE_LIMIT_VERIFY", "3/1h")]);
        let verify = [Group::Verify];
        let first = limits.check(&verify, ip(1)).unwrap().unwrap();
        assert_eq!((first.limit, first.remaining), (3, 2));
        assert_eq!(first.reset, Duration::from_secs(20 * 60));
        limits.check(&verify, ip(1)).unwrap();
        limits.check(&verify, ip(1)).unwrap();
        let refused = limits.check(&verify, ip(1)).unwrap_err();
        assert_eq!(refused.remaining, 0);
        let wait = refused.retry_after.unwrap();
        assert!(wait > Duration::from_secs(19 * 60) && wait <= Duration::from_secs(20 * 60));
        // Another address, and another group, have their own buckets.
        assert!(limits.check(&verify, ip(2)).is_ok());
        assert!(limits.check(&[Group::Otp], ip(1)).is_ok());
    }

    #[test]
    fn a_chain_stops_at_the_first_refusal_and_reports_the_tightest() {
        let limits = limits(&[
            ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "1/1h"),
            ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "5/1h"),
        ]);
        let chain = [Group::SignInSignUps, Group::TokenRefresh];
        let ok = limits.check(&chain, ip(1)).unwrap().unwrap();
        assert_eq!((ok.group, ok.remaining), (Group::SignInSignUps, 0));
        let refused = limits.check(&chain, ip(1)).unwrap_err();
        assert_eq!(refused.group, Group::SignInSignUps);
        // The refusal did not take from TOKEN_REFRESH: 4 of 5 are left.
        let refresh = limits.check(&[Group::TokenRefresh], ip(1)).unwrap().unwrap();
        assert_eq!(refresh.remaining, 3);
    }

    #[test]
    fn pruning_drops_idle_addresses_only() {
        let limits = limits(&[
            ("GOTRUE_RATE_LIMIT_VERIFY", "1000/10ms"),
            ("GOTRUE_RATE_LIMIT_OTP", "1/1h"),
        ]);
        for n in 0..5_000 {
            limits.check(&[Group::Verify], ip(n)).unwrap();
        }
        limits.check(&[Group::Otp], ip(7)).unwrap();
        assert_eq!(limits.len(), 5_001);
        std::thread::sleep(Duration::from_millis(30));
        limits.prune();
        // The verify buckets refilled and went; the empty OTP bucket must stay, or address 7
        // would get a fresh request.
        assert_eq!(limits.len(), 1);
        assert!(limits.check(&[Group::Otp], ip(7)).is_err());
    }

    #[tokio::test]
    async fn a_large_map_is_pruned_without_waiting_for_the_timer() {
        let config = Config::from_vars(
            [
                ("GOTRUE_RATE_LIMIT_VERIFY", "1000/10ms"),
                ("LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL", "1h"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        )
        .unwrap();
        let limits = RateLimits::with_prune_at(&config.rate_limit, false, 1000);
        for n in 0..SIZE_CHECK_EVERY as u32 {
            limits.check(&[Group::Verify], ip(n)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // This check looks at the size (1025 keys, over 1000) and wakes the pruning task.
        limits.check(&[Group::Verify], ip(u32::MAX)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while limits.len() > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The idle 1024 went (the newest may have gone too, once idle).
        assert!(limits.len() <= 1, "{} keys left", limits.len());
    }

    #[test]
    fn email_limit_is_global_and_zero_blocks_everything() {
        let limits = limits(&[
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "2"),
            ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ]);
        assert!(limits.check_email_sent().is_ok());
        assert!(limits.check_email_sent().is_ok());
        let wait = limits.check_email_sent().unwrap_err().unwrap();
        assert!(wait > Duration::from_secs(29 * 60), "{wait:?}");

        let blocked = super::tests::limits(&[("GOTRUE_RATE_LIMIT_EMAIL_SENT", "0")]);
        assert_eq!(blocked.check_email_sent(), Err(None));
        let autoconfirm = |value| {
            super::tests::limits(&[
                ("GOTRUE_RATE_LIMIT_EMAIL_SENT", value),
                ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
            ])
        };
        assert_eq!(autoconfirm("0").check_email_sent(), Err(None));
        let unlimited = autoconfirm("1");
        assert!((0..5).all(|_| unlimited.check_email_sent().is_ok()));
    }
}
