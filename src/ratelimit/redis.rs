//! The shared store: every replica's buckets live in one Redis, so N replicas give a client one
//! budget, not N (GoTrue keeps its limits per process). Each check is one script call
//! (`gcra.lua`), atomic in Redis, with the same groups, verdicts and headers as
//! [`MemoryLimiter`]; the email budget is shared the same way.
//!
//! While Redis does not answer (refused, timed out, restarting), `LATCHKEY_RATE_LIMIT_REDIS_FAILURE`
//! decides: `open` serves requests under this process's own in-memory limits (the budget is
//! then per replica, as without Redis, never unlimited), `closed` refuses every limited request
//! with a 429. Either way never a 5xx. Each check decided without Redis counts in the metric
//! `latchkey_rate_limit_redis_failures_total`; the log says when Redis went away and when it
//! came back. After a failure, Redis is left alone for [`REST_AFTER_FAILURE`], so an outage
//! does not add a timeout to every request.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use super::{AccountKey, Group, Limiter, MemoryLimiter, Verdict};
use crate::config::{Rate, RateLimitConfig, RedisFailure, RedisLimits};

/// The longest a check waits for Redis before it is decided without it. Redis answers a
/// script like this in well under a millisecond on a healthy network.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// After a failed call, checks are decided without Redis for this long before it is tried
/// again; also the `Retry-After` of a refusal in `closed` mode.
pub const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// While Redis stays away, the error is logged again at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Every key starts with this, so Latchkey can share a Redis with other programs.
const KEY_PREFIX: &str = "latchkey:rl:";

const SCRIPT: &str = include_str!("gcra.lua");

/// A bucket as the script takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// The refill interval in microseconds, at least 1 (a rate above a million a second per
    /// key is as good as unlimited).
    interval_us: u64,
    burst: u32,
}

impl Bucket {
    /// `None` for a rate of zero, which no request passes.
    fn new(rate: Rate) -> Option<Bucket> {
        let interval = rate.replenish_interval()?;
        Some(Bucket {
            interval_us: u64::try_from(interval.as_micros()).unwrap_or(u64::MAX).max(1),
            burst: rate.burst,
        })
    }
}

pub struct RedisLimiter {
    connection: ConnectionManager,
    script: Script,
    per_client: Vec<(Group, Bucket)>,
    per_account: Option<(Group, Bucket)>,
    /// `None` when `GOTRUE_RATE_LIMIT_EMAIL_SENT=0`: no mail at all.
    email_sent: Option<Bucket>,
    /// GoTrue does not count mail against the limit when autoconfirm is on.
    email_unlimited: bool,
    /// `None` when `GOTRUE_RATE_LIMIT_SMS_SENT=0`: no text message at all.
    sms_sent: Option<Bucket>,
    on_failure: RedisFailure,
    /// This process's own limits, used in `open` mode while Redis does not answer.
    fallback: MemoryLimiter,
    health: Health,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("RedisLimiter")
            .field("on_failure", &self.on_failure)
            .field("redis_answering", &!self.health.down.load(Ordering::Relaxed))
            .finish()
    }
}

impl RedisLimiter {
    /// Connects lazily: a Redis that is down at start-up is the same as one that goes down
    /// later. Must run inside a tokio runtime (the connection manager reconnects on it).
    pub fn new(config: &RateLimitConfig, redis: &RedisLimits, mailer_autoconfirm: bool) -> anyhow::Result<Self> {
        // The URL is not repeated in the error: it may carry a password.
        let client = redis::Client::open(redis.url.expose_secret())
            .map_err(|err| anyhow::anyhow!("LATCHKEY_RATE_LIMIT_REDIS_URL is not usable ({:?})", err.kind()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(REST_AFTER_FAILURE);
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)?;
        let per_client = Group::PER_CLIENT
            .into_iter()
            .filter_map(|group| Some((group, Bucket::new(group.rate(config))?)))
            .collect();
        tracing::info!(
            on_failure = ?redis.on_failure,
            "rate limits are shared by every replica through Redis (LATCHKEY_RATE_LIMIT_REDIS_URL)"
        );
        Ok(RedisLimiter {
            connection,
            script: Script::new(SCRIPT),
            per_client,
            per_account: Bucket::new(config.verify_per_address).map(|b| (Group::VerifyPerAccount, b)),
            email_sent: Bucket::new(config.email_sent),
            email_unlimited: mailer_autoconfirm,
            sms_sent: Bucket::new(config.sms_sent),
            on_failure: redis.on_failure,
            fallback: MemoryLimiter::new(config, mailer_autoconfirm),
            health: Health::new(redis.on_failure),
        })
    }

    /// Runs the script on `keys` (one per bucket); `None` when Redis did not answer.
    async fn take(&self, keys: &[String], buckets: &[Bucket]) -> Option<Vec<Answer>> {
        if self.health.resting() {
            self.health.count_failure();
            return None;
        }
        let mut invocation = self.script.prepare_invoke();
        for (key, bucket) in keys.iter().zip(buckets) {
            invocation.key(key).arg(bucket.interval_us).arg(bucket.burst);
        }
        let mut connection = self.connection.clone();
        let called = tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async::<Vec<i64>>(&mut connection)).await;
        let failure = match called {
            Ok(Ok(numbers)) => match answers(&numbers, buckets.len()) {
                Some(answers) => {
                    self.health.answered();
                    return Some(answers);
                }
                None => format!("unexpected answer from the rate-limit script: {numbers:?}"),
            },
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
        };
        self.health.failed(&failure);
        None
    }

    /// The verdicts for `buckets` taken under `keys`, or, without Redis, what the failure mode
    /// says (`fallback` runs the in-memory check in `open` mode).
    async fn decide(
        &self,
        keys: &[String],
        groups: &[(Group, Bucket)],
        fallback: impl FnOnce(&MemoryLimiter) -> Result<Option<Verdict>, Verdict>,
    ) -> Result<Option<Verdict>, Verdict> {
        let Some(&(first, bucket)) = groups.first() else {
            return Ok(None);
        };
        let buckets: Vec<Bucket> = groups.iter().map(|(_, b)| *b).collect();
        match self.take(keys, &buckets).await {
            Some(answers) => verdicts(groups, &answers),
            None => match self.on_failure {
                RedisFailure::Open => fallback(&self.fallback),
                RedisFailure::Closed => Err(Verdict {
                    group: first,
                    limit: bucket.burst,
                    remaining: 0,
                    reset: REST_AFTER_FAILURE,
                    retry_after: Some(REST_AFTER_FAILURE),
                }),
            },
        }
    }
}

#[async_trait::async_trait]
impl Limiter for RedisLimiter {
    async fn check(&self, groups: &[Group], key: IpAddr) -> Result<Option<Verdict>, Verdict> {
        let buckets: Vec<(Group, Bucket)> = groups
            .iter()
            .filter_map(|group| self.per_client.iter().find(|(g, _)| g == group).copied())
            .collect();
        // One hash tag per client, so that all of a request's keys live in one slot should the
        // Redis ever be a cluster.
        let keys: Vec<String> = buckets
            .iter()
            .map(|(group, _)| format!("{KEY_PREFIX}{{{key}}}:{}", bucket_name(*group)))
            .collect();
        self.decide(&keys, &buckets, |memory| memory.check(groups, key)).await
    }

    async fn check_account(&self, key: AccountKey) -> Result<Option<Verdict>, Verdict> {
        let buckets: Vec<(Group, Bucket)> = self.per_account.into_iter().collect();
        let keys = [format!("{KEY_PREFIX}account:{}", hex::encode(key.0))];
        self.decide(&keys, &buckets, |memory| memory.check_verify_per_account(key))
            .await
    }

    async fn take_email(&self) -> Result<(), Option<Duration>> {
        // GoTrue's order (`mail.go`): zero refuses all mail even under autoconfirm; otherwise
        // autoconfirm skips the count.
        let bucket = self.email_sent.ok_or(None)?;
        if self.email_unlimited {
            return Ok(());
        }
        self.take_global("email_sent", bucket, |memory| memory.check_email_sent())
            .await
    }

    async fn take_sms(&self) -> Result<(), Option<Duration>> {
        let bucket = self.sms_sent.ok_or(None)?;
        self.take_global("sms_sent", bucket, |memory| memory.check_sms_sent())
            .await
    }

    /// The state this process holds: the in-memory fallback's keys (Redis expires its own).
    fn keys_held(&self) -> usize {
        self.fallback.len()
    }
}

impl RedisLimiter {
    /// One unit of a server-wide budget (`name`), shared by every replica; `fallback` is
    /// this process's own budget while Redis does not answer in `open` mode.
    async fn take_global(
        &self,
        name: &str,
        bucket: Bucket,
        fallback: impl FnOnce(&MemoryLimiter) -> Result<(), Option<Duration>>,
    ) -> Result<(), Option<Duration>> {
        let keys = [format!("{KEY_PREFIX}{name}")];
        match self.take(&keys, &[bucket]).await {
            Some(answers) => match answers.first() {
                Some(answer) if answer.allowed => Ok(()),
                Some(answer) => Err(Some(answer.retry_after)),
                None => Err(Some(REST_AFTER_FAILURE)),
            },
            None => match self.on_failure {
                RedisFailure::Open => fallback(&self.fallback),
                RedisFailure::Closed => Err(Some(REST_AFTER_FAILURE)),
            },
        }
    }
}

/// One bucket's answer from the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    allowed: bool,
    remaining: u32,
    reset: Duration,
    retry_after: Duration,
}

/// The script's flat list of numbers, four per bucket looked at: all buckets when every one
/// allowed the request, up to the refusing one otherwise. `None` for any other shape.
fn answers(numbers: &[i64], buckets: usize) -> Option<Vec<Answer>> {
    if numbers.is_empty() || !numbers.len().is_multiple_of(4) || numbers.len() > 4 * buckets {
        return None;
    }
    let micros = |n: i64| Some(Duration::from_micros(u64::try_from(n).ok()?));
    let answers: Option<Vec<Answer>> = numbers
        .chunks_exact(4)
        .map(|n| {
            Some(Answer {
                allowed: n[0] == 1,
                remaining: u32::try_from(n[1]).ok()?,
                reset: micros(n[2])?,
                retry_after: micros(n[3])?,
            })
        })
        .collect();
    let answers = answers?;
    // Only the last bucket looked at may refuse, and it must when the script stopped early.
    let stopped_early = answers.len() < buckets;
    let refusals = answers.iter().filter(|a| !a.allowed).count();
    let last_refused = answers.last().is_some_and(|a| !a.allowed);
    (refusals == usize::from(last_refused) && (!stopped_early || last_refused)).then_some(answers)
}

/// What the middleware is told: the first refusal, or the verdict of the bucket closest to
/// empty (as [`MemoryLimiter::check`] decides).
fn verdicts(groups: &[(Group, Bucket)], answers: &[Answer]) -> Result<Option<Verdict>, Verdict> {
    let mut tightest: Option<Verdict> = None;
    for ((group, bucket), answer) in groups.iter().zip(answers) {
        let verdict = Verdict {
            group: *group,
            limit: bucket.burst,
            remaining: answer.remaining,
            reset: answer.reset,
            retry_after: (!answer.allowed).then_some(answer.retry_after),
        };
        if !answer.allowed {
            return Err(verdict);
        }
        if tightest.is_none_or(|t| verdict.remaining < t.remaining) {
            tightest = Some(verdict);
        }
    }
    Ok(tightest)
}

/// A group's part of its keys: stable, since replicas of different versions share them.
fn bucket_name(group: Group) -> &'static str {
    match group {
        Group::TokenRefresh => "token_refresh",
        Group::Verify => "verify",
        Group::Otp => "otp",
        Group::SignInSignUps => "sign_in_sign_ups",
        Group::AnonymousUsers => "anonymous_users",
        Group::Authorize => "authorize",
        Group::MfaChallenge => "mfa_challenge",
        Group::MfaVerify => "mfa_verify",
        Group::VerifyPerAccount => "verify_per_account",
    }
}

/// Whether Redis answers, when to try it again, and the log lines and metric of an outage.
struct Health {
    on_failure: RedisFailure,
    started: Instant,
    down: AtomicBool,
    /// Milliseconds after `started` before which Redis is not tried.
    rest_until_ms: AtomicU64,
    /// Milliseconds after `started` of the last error line.
    logged_at_ms: AtomicU64,
    /// Checks decided without Redis in the current outage.
    failures: AtomicU64,
}

impl Health {
    fn new(on_failure: RedisFailure) -> Health {
        Health {
            on_failure,
            started: Instant::now(),
            down: AtomicBool::new(false),
            rest_until_ms: AtomicU64::new(0),
            logged_at_ms: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn resting(&self) -> bool {
        self.now_ms() < self.rest_until_ms.load(Ordering::Relaxed)
    }

    fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("latchkey_rate_limit_redis_failures_total").increment(1);
    }

    fn failed(&self, error: &str) {
        self.count_failure();
        let now = self.now_ms();
        let rest = u64::try_from(REST_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX);
        self.rest_until_ms.store(now.saturating_add(rest), Ordering::Relaxed);
        let first = !self.down.swap(true, Ordering::Relaxed);
        let logged_at = self.logged_at_ms.load(Ordering::Relaxed);
        let log_again = now.saturating_sub(logged_at) >= u64::try_from(LOG_EVERY.as_millis()).unwrap_or(0);
        if (first || log_again)
            && self
                .logged_at_ms
                .compare_exchange(logged_at, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let consequence = match self.on_failure {
                RedisFailure::Open => "each replica applies its own in-memory limits until it answers",
                RedisFailure::Closed => "every rate-limited request is refused with 429 until it answers",
            };
            let failures = self.failures.load(Ordering::Relaxed);
            tracing::error!(
                error,
                failures,
                "the Redis rate-limit store (LATCHKEY_RATE_LIMIT_REDIS_URL) does not answer: {consequence} \
                 (LATCHKEY_RATE_LIMIT_REDIS_FAILURE)"
            );
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            let failures = self.failures.swap(0, Ordering::Relaxed);
            tracing::warn!(
                failures,
                "the Redis rate-limit store answers again: limits are shared again"
            );
        }
    }
}

#[cfg(test)]
mod tests;
