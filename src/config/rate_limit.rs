//! Rate-limit settings: GoTrue's `GOTRUE_RATE_LIMIT_*` variables plus Latchkey's switches.
//! What each limiter covers is in the README's "Rate limits" section and `api::ratelimit`.

use std::time::Duration;

use axum::http::HeaderName;
use ipnet::IpNet;

use super::{ConfigError, Env};

mod rate;
pub use rate::Rate;
mod redis;
use rate::{PER_5_MIN_BURST_30, PER_HOUR_BURST_N, PER_MINUTE_BURST_30, rate};
pub use redis::{RedisFailure, RedisLimits};

/// `LATCHKEY_TRUSTED_PROXIES` when unset: loopback and the private ranges, where a reverse
/// proxy in front of Latchkey usually lives (same host, Docker network, VPC).
const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// `LATCHKEY_RATE_LIMIT_ENABLED`: per-address limiting, on by default (GoTrue limits
    /// only when it is told which header carries the client address).
    pub enabled: bool,
    /// `LATCHKEY_RATE_LIMIT_LOOPBACK`: limit clients whose socket address is loopback (on by
    /// default; `false` exempts them from the per-address buckets, never an address read
    /// from a header).
    pub limit_loopback: bool,
    /// `GOTRUE_RATE_LIMIT_HEADER`: the one header trusted to carry the client address, and
    /// only on requests from `trusted_proxies`.
    pub header: Option<HeaderName>,
    /// `LATCHKEY_TRUSTED_PROXIES`: the peers whose `header` is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub token_refresh: Rate,
    pub verify: Rate,
    pub otp: Rate,
    pub sign_in_sign_ups: Rate,
    pub anonymous_users: Rate,
    /// `LATCHKEY_RATE_LIMIT_AUTHORIZE`: `GET /authorize` and `/user/identities/authorize`.
    pub authorize: Rate,
    /// `LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS`: `POST /verify` with a code, per email or
    /// phone, whatever the client address.
    pub verify_per_address: Rate,
    /// `GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY`: `POST /factors/{id}/challenge` and
    /// `/verify`, each its own bucket (as GoTrue's two limiters).
    pub mfa_challenge_and_verify: Rate,
    /// Global, not per address.
    pub email_sent: Rate,
    /// Global; read for compatibility, not used until SMS exists.
    pub sms_sent: Rate,
    /// `LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL`: how often state of idle addresses is dropped.
    pub prune_interval: Duration,
    /// `LATCHKEY_RATE_LIMIT_REDIS_URL`: one budget shared by every replica; `None` keeps the
    /// limits in this process's memory.
    pub redis: Option<RedisLimits>,
}

pub(super) fn from_env(env: &Env) -> Result<RateLimitConfig, ConfigError> {
    let per_address = |names: &[&str], default: f64| rate(env, names, default, &PER_5_MIN_BURST_30, false);
    let otp = per_address(&["GOTRUE_RATE_LIMIT_OTP", "RATE_LIMIT_OTP"], 30.0)?;
    Ok(RateLimitConfig {
        enabled: env.bool_or(&["LATCHKEY_RATE_LIMIT_ENABLED"], true)?,
        limit_loopback: env.bool_or(&["LATCHKEY_RATE_LIMIT_LOOPBACK"], true)?,
        header: header(env)?,
        trusted_proxies: trusted_proxies(env)?,
        token_refresh: per_address(&["GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "RATE_LIMIT_TOKEN_REFRESH"], 150.0)?,
        verify: per_address(&["GOTRUE_RATE_LIMIT_VERIFY", "RATE_LIMIT_VERIFY"], 30.0)?,
        // The Supabase CLI turns its `sign_in_sign_ups` setting into GOTRUE_RATE_LIMIT_OTP,
        // so an operator who raised OTP expects sign-ups to follow: unset, this limiter
        // takes OTP's setting instead of capping them at a default nobody asked for.
        sign_in_sign_ups: match env.get(&["GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS"]) {
            Some(_) => per_address(&["GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS"], 30.0)?,
            None => otp,
        },
        otp,
        anonymous_users: rate(
            env,
            &["GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", "RATE_LIMIT_ANONYMOUS_USERS"],
            30.0,
            &PER_HOUR_BURST_N,
            false,
        )?,
        // Not in GoTrue, which does not limit /authorize at all; each call writes a flow-state
        // row, so it gets the default of GoTrue's nearest limiter (SSO: 30 per 5 minutes).
        authorize: per_address(&["LATCHKEY_RATE_LIMIT_AUTHORIZE"], 30.0)?,
        // Not in GoTrue. 30 an hour is plenty for a person typing a code and leaves a botnet
        // 30 guesses per address an hour, whatever the number of client addresses.
        verify_per_address: rate(
            env,
            &["LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS"],
            30.0,
            &PER_HOUR_BURST_N,
            false,
        )?,
        // GoTrue: N per minute, bursts of 30.
        mfa_challenge_and_verify: rate(
            env,
            &["GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY"],
            15.0,
            &PER_MINUTE_BURST_30,
            false,
        )?,
        email_sent: rate(
            env,
            &["GOTRUE_RATE_LIMIT_EMAIL_SENT", "RATE_LIMIT_EMAIL_SENT"],
            30.0,
            &PER_HOUR_BURST_N,
            true,
        )?,
        sms_sent: rate(
            env,
            &["GOTRUE_RATE_LIMIT_SMS_SENT", "RATE_LIMIT_SMS_SENT"],
            30.0,
            &PER_HOUR_BURST_N,
            true,
        )?,
        prune_interval: prune_interval(env)?,
        redis: redis::from_env(env)?,
    })
}

fn prune_interval(env: &Env) -> Result<Duration, ConfigError> {
    let var = "LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL";
    let every = env.duration_or(&[var], Duration::from_secs(60))?;
    if every.is_zero() {
        return Err(ConfigError {
            var: var.into(),
            message: "must be positive".into(),
        });
    }
    Ok(every)
}

fn header(env: &Env) -> Result<Option<HeaderName>, ConfigError> {
    let Some((var, value)) = env.get(&["GOTRUE_RATE_LIMIT_HEADER", "RATE_LIMIT_HEADER"]) else {
        return Ok(None);
    };
    HeaderName::from_bytes(value.as_bytes())
        .map(Some)
        .map_err(|_| ConfigError {
            var,
            message: format!("{value:?} is not an HTTP header name"),
        })
}

/// A comma-separated list of CIDR ranges (`10.0.0.0/8`, `fd00::/8`) or single addresses.
fn trusted_proxies(env: &Env) -> Result<Vec<IpNet>, ConfigError> {
    let var = "LATCHKEY_TRUSTED_PROXIES";
    let raw = env
        .get(&[var])
        .map_or_else(|| DEFAULT_TRUSTED_PROXIES.to_owned(), |(_, v)| v);
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError {
                    var: var.into(),
                    message: format!("{entry:?} is not an IP address or CIDR range (like 10.0.0.0/8)"),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::rate::{FIVE_MINUTES, ONE_HOUR, ONE_MINUTE};
    use super::*;
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<RateLimitConfig, ConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(vars).map(|c| c.rate_limit)
    }

    #[test]
    fn defaults_are_gotrues() {
        let c = config(&[]).unwrap();
        assert!(c.enabled);
        assert!(
            c.limit_loopback,
            "loopback clients are limited unless the operator opts out"
        );
        assert!(c.header.is_none());
        let trusted: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(
            trusted,
            [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7"
            ]
        );
        let five_min = |events, burst| Rate {
            events,
            per: FIVE_MINUTES,
            burst,
        };
        assert_eq!(c.token_refresh, five_min(150.0, 30));
        assert_eq!(c.verify, five_min(30.0, 30));
        assert_eq!(c.otp, five_min(30.0, 30));
        assert_eq!(c.sign_in_sign_ups, five_min(30.0, 30));
        let hourly = Rate {
            events: 30.0,
            per: ONE_HOUR,
            burst: 30,
        };
        assert_eq!(c.anonymous_users, hourly);
        assert_eq!(c.verify_per_address, hourly);
        assert_eq!(c.authorize, five_min(30.0, 30));
        assert_eq!(c.email_sent, hourly);
        assert_eq!(c.sms_sent, hourly);
        assert_eq!(c.prune_interval, Duration::from_secs(60));
        assert_eq!(
            c.mfa_challenge_and_verify,
            Rate {
                events: 15.0,
                per: ONE_MINUTE,
                burst: 30
            }
        );
        // 150 per 5 minutes: one request back every 2 seconds.
        assert_eq!(c.token_refresh.replenish_interval(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn plain_numbers_and_n_per_duration() {
        let c = config(&[
            ("GOTRUE_RATE_LIMIT_VERIFY", "2/1s"),
            ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "7.5"),
            ("GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", "5"),
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "0"),
            ("GOTRUE_RATE_LIMIT_SMS_SENT", "10/1m30s"),
            ("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For"),
            ("LATCHKEY_RATE_LIMIT_ENABLED", "false"),
            ("LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL", "250ms"),
        ])
        .unwrap();
        assert_eq!(
            c.verify,
            Rate {
                events: 2.0,
                per: Duration::from_secs(1),
                burst: 2
            }
        );
        // A plain number keeps GoTrue's fixed burst of 30, even below 30.
        assert_eq!(
            c.token_refresh,
            Rate {
                events: 7.5,
                per: FIVE_MINUTES,
                burst: 30
            }
        );
        assert_eq!(c.anonymous_users.burst, 5);
        assert_eq!(c.email_sent.replenish_interval(), None);
        assert_eq!(c.sms_sent.per, Duration::from_secs(90));
        assert_eq!(c.header.unwrap().as_str(), "x-forwarded-for");
        assert!(!c.enabled);
        assert_eq!(c.prune_interval, Duration::from_millis(250));
    }

    #[test]
    fn sign_in_sign_ups_follows_otp_unless_set() {
        let c = config(&[("GOTRUE_RATE_LIMIT_OTP", "100")]).unwrap();
        assert_eq!(c.sign_in_sign_ups, c.otp);
        let c = config(&[
            ("GOTRUE_RATE_LIMIT_OTP", "100"),
            ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "3/1m"),
        ])
        .unwrap();
        assert_eq!(c.sign_in_sign_ups.burst, 3);
        assert_eq!(c.otp.events, 100.0);
    }

    #[test]
    fn trusted_proxies_take_ranges_and_single_addresses() {
        let c = config(&[
            (
                "LATCHKEY_TRUSTED_PROXIES",
                " 192.0.2.1 , 198.51.100.0/24,2001:db8::/32,, ::1",
            ),
            ("LATCHKEY_RATE_LIMIT_LOOPBACK", "false"),
            ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "5"),
            ("LATCHKEY_RATE_LIMIT_AUTHORIZE", "3/1m"),
        ])
        .unwrap();
        let trusted: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(trusted, ["192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32", "::1/128"]);
        assert!(!c.limit_loopback);
        // A plain number is per hour, bucket of N, as for anonymous sign-ups.
        assert_eq!(
            c.verify_per_address,
            Rate {
                events: 5.0,
                per: ONE_HOUR,
                burst: 5
            }
        );
        assert_eq!(c.authorize.burst, 3);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "lots"),
            ("GOTRUE_RATE_LIMIT_VERIFY", "0"),
            ("GOTRUE_RATE_LIMIT_OTP", "-1"),
            ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "5/never"),
            ("GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", "NaN"),
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "3/0s"),
            ("GOTRUE_RATE_LIMIT_SMS_SENT", "1/2/3"),
            ("GOTRUE_RATE_LIMIT_VERIFY", "4000000000/1ns"),
            ("GOTRUE_RATE_LIMIT_HEADER", "bad header"),
            ("LATCHKEY_RATE_LIMIT_ENABLED", "sometimes"),
            ("LATCHKEY_RATE_LIMIT_PRUNE_INTERVAL", "0"),
            ("LATCHKEY_RATE_LIMIT_AUTHORIZE", "0"),
            ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "none"),
            ("LATCHKEY_RATE_LIMIT_LOOPBACK", "maybe"),
            ("GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY", "0"),
            ("GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY", "often"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("LATCHKEY_TRUSTED_PROXIES", "::1/129"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{value}: {err}");
        }
    }
}
