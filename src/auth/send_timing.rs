//! `/recover` and `/resend` answer in the same time whether or not the address has an account.
//!
//! For a known address the mail is sent inside the request (an SMTP round trip: tens to
//! hundreds of milliseconds); an unknown address, or a known one with nothing to send, used to
//! be answered at once, which told anyone who measured which addresses are registered.
//!
//! Each route keeps how long its last [`KEPT`] mail-sending requests took, from the start of
//! the handler to the commit. A request that sends nothing waits until it has taken as long as
//! one of them, drawn at random. Its time then follows the distribution of a sending request's
//! time, database round trips included, without faking any work and without holding a
//! database connection while it waits. The draw follows the mail server as it gets slower or
//! faster, within [`KEPT`] sends. Before the first send of a route, the wait is
//! [`FIRST_GUESS`].
//!
//! Moving the sending out of the request (answering every address at once) would need a queue
//! that survives restarts, and would lose the `503` a client gets today when its mail cannot
//! be sent.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How many recent send durations each route keeps.
pub const KEPT: usize = 32;

/// The wait before a route has sent any mail: a typical SMTP send to a nearby relay.
pub const FIRST_GUESS: Duration = Duration::from_millis(250);

/// How long every answer of these routes sleeps past its own end, sending or not. tokio's
/// timer wakes on whole milliseconds, and late by the runtime's latency, so a request that
/// waited for a drawn send time answered about a millisecond later, on average, than the
/// sends it imitates, which answered as soon as their mail was out (the benchmark measured
/// 2.46 against 1.57 ms with mail noted in the log). Now both end on the same kind of
/// wake-up: a deadline at least this far ahead.
pub const LAST_TICK: Duration = Duration::from_millis(1);

/// The routes whose answers must not depend on whether an address has an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Recover,
    Resend,
}

/// The recent send durations of each route.
#[derive(Debug, Default)]
pub struct SendTiming {
    recover: Mutex<Recent>,
    resend: Mutex<Recent>,
}

/// A ring of the last [`KEPT`] durations.
#[derive(Debug, Default)]
struct Recent {
    durations: Vec<Duration>,
    next: usize,
}

impl Recent {
    fn record(&mut self, took: Duration) {
        if self.durations.len() < KEPT {
            self.durations.push(took);
        } else {
            self.durations[self.next] = took;
        }
        self.next = (self.next + 1) % KEPT;
    }

    fn draw(&self, rng: &mut impl Rng) -> Duration {
        if self.durations.is_empty() {
            return FIRST_GUESS;
        }
        self.durations[rng.random_range(0..self.durations.len())]
    }
}

impl SendTiming {
    fn route(&self, route: Route) -> std::sync::MutexGuard<'_, Recent> {
        let recent = match route {
            Route::Recover => &self.recover,
            Route::Resend => &self.resend,
        };
        recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request of `route` that started at `started` has sent its mail: records how long
    /// that took, then returns [`LAST_TICK`] later.
    pub async fn record_send(&self, route: Route, started: Instant) {
        self.route(route).record(started.elapsed());
        tokio::time::sleep(LAST_TICK).await;
    }

    /// For a request of `route` that sends nothing: returns when it has taken as long as a
    /// recent send, drawn at random, and [`LAST_TICK`] (at once if it already has).
    pub async fn wait_like_a_send(&self, route: Route, started: Instant) {
        let target = self.route(route).draw(&mut rand::rng());
        tokio::time::sleep_until(started + target + LAST_TICK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_come_from_the_last_sends() {
        let mut rng = rand::rng();
        let mut recent = Recent::default();
        assert_eq!(recent.draw(&mut rng), FIRST_GUESS);
        recent.record(Duration::from_millis(7));
        assert_eq!(recent.draw(&mut rng), Duration::from_millis(7));
        // After KEPT more sends, the first one is forgotten.
        for ms in 100..100 + KEPT as u64 {
            recent.record(Duration::from_millis(ms));
        }
        assert_eq!(recent.durations.len(), KEPT);
        let drawn: Vec<Duration> = (0..2000).map(|_| recent.draw(&mut rng)).collect();
        assert!(drawn.iter().all(|d| *d >= Duration::from_millis(100)));
        // Every kept duration is drawn, so the spread is the spread of the sends.
        assert!(drawn.contains(&Duration::from_millis(100)));
        assert!(drawn.contains(&Duration::from_millis(100 + KEPT as u64 - 1)));
    }

    #[tokio::test]
    async fn waits_until_a_send_time_has_passed_since_the_start() {
        // Lower bounds only: a sleep never ends early, but may end late on a busy machine.
        let timing = SendTiming::default();
        timing.route(Route::Recover).record(Duration::from_millis(60));
        let started = Instant::now();
        timing.wait_like_a_send(Route::Recover, started).await;
        assert!(started.elapsed() >= Duration::from_millis(60) + LAST_TICK);
        // The other route has no sends yet: the first guess.
        let started = Instant::now();
        timing.wait_like_a_send(Route::Resend, started).await;
        assert!(started.elapsed() >= FIRST_GUESS + LAST_TICK);
    }
}
