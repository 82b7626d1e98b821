//! Whether the time of an answer tells which addresses have an account: a password sign-in
//! with a wrong password for a seeded user against one for an address nobody has, and
//! `/recover` for a seeded user against an unknown address. The four requests take turns, one
//! at a time on one keep-alive connection, so that whatever else loads the machine falls on
//! all four alike. The times are reported, not judged: the integration tests check the
//! mechanisms (one argon2id verification either way; an answer without a mail waits as long
//! as a recorded send), this shows what they add up to on a real server.
//!
//! Without `GOTRUE_SMTP_HOST` the server notes mail in its log instead of sending it, so a
//! known address's `/recover` costs its database work only, and an unknown one waits as long
//! as that took.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::Conn;
use crate::load::seeded_email;

/// Settings for the server this runs against: every `/recover` may send (no per-address
/// interval, a budget no run reaches), so that the known address's answer is a send.
pub const SERVER_ENV: [(&str, &str); 2] = [
    ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
    ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "1000000"),
];

/// Rounds before the measured ones: the first `/recover` of a server has no send to wait
/// like yet, and the first requests warm the connection pool.
const WARM_UP_ROUNDS: usize = 3;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TimingResult {
    pub rounds: usize,
    pub requests: Vec<Timed>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Timed {
    pub name: &'static str,
    pub status: u16,
    pub p50_ms: f64,
    pub p90_ms: f64,
    /// Answers with another status than `status`.
    pub unexpected: u64,
}

/// One kind of request: what it sends in round `round`, and the answer it should get.
struct Kind {
    name: &'static str,
    path: &'static str,
    status: u16,
    body: fn(round: usize, users: u32, tag: &str) -> Value,
}

const WRONG_PASSWORD: &str = "not-the-bench-password";
const SIGN_IN: &str = "/auth/v1/token?grant_type=password";

/// A seeded user per round (each gets its own recovery mail).
fn known(round: usize, users: u32) -> String {
    seeded_email(round as u32 % users + 1)
}

fn unknown(round: usize, tag: &str) -> String {
    format!("nobody{round}-{tag}@bench.test")
}

const KINDS: [Kind; 4] = [
    Kind {
        name: "sign-in, wrong password",
        path: SIGN_IN,
        status: 400,
        body: |round, users, _| json!({ "email": known(round, users), "password": WRONG_PASSWORD }),
    },
    Kind {
        name: "sign-in, unknown email",
        path: SIGN_IN,
        status: 400,
        body: |round, _, tag| json!({ "email": unknown(round, tag), "password": WRONG_PASSWORD }),
    },
    Kind {
        name: "/recover, known email",
        path: "/auth/v1/recover",
        status: 200,
        body: |round, users, _| json!({ "email": known(round, users) }),
    },
    Kind {
        name: "/recover, unknown email",
        path: "/auth/v1/recover",
        status: 200,
        body: |round, _, tag| json!({ "email": unknown(round, tag) }),
    },
];

pub async fn run(addr: SocketAddr, rounds: usize, users: u32, tag: &str) -> anyhow::Result<TimingResult> {
    let mut conn = Conn::connect(addr).await?;
    let mut millis: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); KINDS.len()];
    let mut unexpected = [0u64; KINDS.len()];
    for round in 0..WARM_UP_ROUNDS + rounds {
        for (i, kind) in KINDS.iter().enumerate() {
            let body = (kind.body)(round, users, tag);
            let started = Instant::now();
            let reply = conn.post_json(kind.path, &body).await.with_context(|| kind.name)?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            if round < WARM_UP_ROUNDS {
                continue;
            }
            millis[i].push(took);
            if reply.status != kind.status {
                unexpected[i] += 1;
            }
        }
    }
    let requests = KINDS
        .iter()
        .zip(millis)
        .zip(unexpected)
        .map(|((kind, times), unexpected)| Timed {
            name: kind.name,
            status: kind.status,
            p50_ms: percentile(&times, 0.5),
            p90_ms: percentile(&times, 0.9),
            unexpected,
        })
        .collect();
    Ok(TimingResult { rounds, requests })
}

/// The `q` quantile (nearest rank) of `values`; NaN when there are none.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The results table, with the unknown ÷ known ratio of the medians for each pair.
pub fn markdown(result: &TimingResult) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "\nAnswer times that could tell who has an account ({} rounds, the four requests in turn, one at a \
         time; reported, not judged):\n\n\
         | request | status | p50 ms | p90 ms | unexpected answers |\n|---|---:|---:|---:|---:|\n",
        result.rounds
    );
    for timed in &result.requests {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {} |",
            timed.name, timed.status, timed.p50_ms, timed.p90_ms, timed.unexpected
        );
    }
    for pair in result.requests.chunks(2) {
        if let [known, unknown] = pair {
            let _ = writeln!(
                out,
                "\n{} ÷ {}: {:.2} (p50).",
                unknown.name,
                known.name,
                unknown.p50_ms / known.p50_ms
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 5.0);
        assert_eq!(percentile(&values, 0.9), 9.0);
        assert_eq!(percentile(&[3.0], 0.9), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
