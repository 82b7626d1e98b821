//! GoTrue's rate syntax: a plain number of events per the variable's window, or
//! `N/duration`; read into token buckets.

use std::time::Duration;

use crate::config::{ConfigError, Env, parse_duration};

pub(super) const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
pub(super) const ONE_HOUR: Duration = Duration::from_secs(60 * 60);
pub(super) const ONE_MINUTE: Duration = Duration::from_secs(60);
/// GoTrue's bucket size for most per-address limiters (tollbooth `SetBurst(30)`), whatever
/// the configured rate.
const GOTRUE_BURST: u32 = 30;

/// A token bucket: up to `burst` requests at once, refilled at `events` per `per`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub events: f64,
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    /// How long the bucket takes to refill by one request; `None` for a rate of zero, which
    /// lets nothing through (GoTrue: `GOTRUE_RATE_LIMIT_EMAIL_SENT=0` blocks all mail).
    pub fn replenish_interval(&self) -> Option<Duration> {
        (self.events > 0.0 && self.burst > 0).then(|| self.per.div_f64(self.events))
    }
}

/// How a plain number (GoTrue's form) is read for one variable; `N/duration` always means
/// "N per duration, bursts of up to N".
pub(super) struct PlainForm {
    window: Duration,
    /// `None`: the burst is the number itself.
    burst: Option<u32>,
}

pub(super) const PER_5_MIN_BURST_30: PlainForm = PlainForm {
    window: FIVE_MINUTES,
    burst: Some(GOTRUE_BURST),
};
/// `GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY`: GoTrue divides it by 60 (per minute).
pub(super) const PER_MINUTE_BURST_30: PlainForm = PlainForm {
    window: ONE_MINUTE,
    burst: Some(GOTRUE_BURST),
};
pub(super) const PER_HOUR_BURST_N: PlainForm = PlainForm {
    window: ONE_HOUR,
    burst: None,
};

pub(super) fn rate(
    env: &Env,
    names: &[&str],
    default: f64,
    plain: &PlainForm,
    allow_zero: bool,
) -> Result<Rate, ConfigError> {
    let (var, raw) = match env.get(names) {
        Some(found) => found,
        None => return Ok(plain_rate(default, plain)),
    };
    let fail = |message: String| ConfigError {
        var: var.clone(),
        message,
    };
    let rate = parse_rate(&raw, plain).map_err(|why| fail(format!("{raw:?} {why}")))?;
    if rate.events == 0.0 && !allow_zero {
        return Err(fail(
            "must be greater than 0 (to switch per-address limiting off, set \
             LATCHKEY_RATE_LIMIT_ENABLED=false)"
                .into(),
        ));
    }
    Ok(rate)
}

/// GoTrue's syntax: a plain number of events per the variable's window (`30`, `0.5`), or
/// `N/duration` (`10/1m`, `2/1s`), where the duration takes Go's units.
fn parse_rate(raw: &str, plain: &PlainForm) -> Result<Rate, &'static str> {
    const SHAPE: &str = "is not a rate (a number like 30, or N/duration like 10/5m)";
    let rate = match raw.split_once('/') {
        Some((events, per)) => {
            let events = parse_events(events).ok_or(SHAPE)?;
            let per = parse_duration(per).filter(|d| !d.is_zero()).ok_or(SHAPE)?;
            Rate {
                events,
                per,
                burst: burst_of(events),
            }
        }
        None => plain_rate(parse_events(raw).ok_or(SHAPE)?, plain),
    };
    match rate.replenish_interval() {
        Some(interval) if interval.is_zero() => Err("is too large a rate"),
        _ => Ok(rate),
    }
}

fn parse_events(raw: &str) -> Option<f64> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0 && *n <= f64::from(u32::MAX))
}

fn plain_rate(events: f64, plain: &PlainForm) -> Rate {
    Rate {
        events,
        per: plain.window,
        burst: plain.burst.unwrap_or_else(|| burst_of(events)),
    }
}

/// A bucket holds whole requests: at least one, unless the rate is zero.
fn burst_of(events: f64) -> u32 {
    if events == 0.0 {
        0
    } else {
        // In range: `parse_events` caps events at u32::MAX.
        (events.floor() as u32).max(1)
    }
}
