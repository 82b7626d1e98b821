//! What the shared Redis limiter costs per request against the in-memory one: the refresh
//! grant (the cheapest rate-limited request, so the limiter's share is largest there) against
//! two servers that differ only in `LATCHKEY_RATE_LIMIT_REDIS_URL`, both limiting the loopback
//! load under a budget it never reaches. Runs alternate between the two servers so that the
//! neighbours' load falls on both alike.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Ctx, Scenario};
use crate::report::median;
use crate::server::{Argon2Params, Server};

/// The variables both servers get: the limiter checks every refresh from 127.0.0.1 (and the
/// clients' set-up sign-ins, which count as sign-ins and refreshes).
const LIMITED: [(&str, &str); 3] = [
    ("LATCHKEY_RATE_LIMIT_LOOPBACK", "true"),
    ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "1000000000/1s"),
    ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", "1000000000/1s"),
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct LimiterPoint {
    pub clients: usize,
    /// Per run, alternating: memory then Redis.
    pub memory_rps: Vec<f64>,
    pub redis_rps: Vec<f64>,
    pub memory_server_us: Vec<f64>,
    pub redis_server_us: Vec<f64>,
    pub memory_p50_ms: Vec<f64>,
    pub redis_p50_ms: Vec<f64>,
    pub errors: u64,
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    server_bin: &std::path::Path,
    database_url: &str,
    argon2: Argon2Params,
    extra_env: &[(String, String)],
    redis_url: &str,
    clients: &[usize],
    runs: usize,
    duration: Duration,
    base: Ctx,
) -> anyhow::Result<Vec<LimiterPoint>> {
    let mut memory_env: Vec<(String, String)> = extra_env.to_vec();
    memory_env.extend(LIMITED.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let mut redis_env = memory_env.clone();
    redis_env.push(("LATCHKEY_RATE_LIMIT_REDIS_URL".to_owned(), redis_url.to_owned()));
    let memory = Server::start(server_bin, database_url, argon2, &memory_env)?;
    let redis = Server::start(server_bin, database_url, argon2, &redis_env)?;
    crate::server::wait_healthy(memory.addr).await?;
    crate::server::wait_healthy(redis.addr).await?;
    let ctx_for = |server: &Server| {
        Arc::new(Ctx {
            addr: server.addr,
            server_pid: server.pid(),
            tag: format!("{}-limiter", base.tag),
            password: base.password.clone(),
            admin_token: base.admin_token.clone(),
            users: base.users,
        })
    };
    let (memory_ctx, redis_ctx) = (ctx_for(&memory), ctx_for(&redis));
    let mut points = Vec::new();
    for &n in clients {
        let mut point = LimiterPoint {
            clients: n,
            memory_rps: vec![],
            redis_rps: vec![],
            memory_server_us: vec![],
            redis_server_us: vec![],
            memory_p50_ms: vec![],
            redis_p50_ms: vec![],
            errors: 0,
        };
        for _ in 0..runs {
            let warmup = Duration::from_millis(500);
            let m = load::measure(Scenario::Refresh, memory_ctx.clone(), n, warmup, duration).await?;
            let r = load::measure(Scenario::Refresh, redis_ctx.clone(), n, warmup, duration).await?;
            for first in [&m.first_error, &r.first_error].into_iter().flatten() {
                eprintln!("  limiter: first error: {first}");
            }
            eprintln!(
                "limiter c={n}: memory {:.0} req/s {:.0} µs/req, redis {:.0} req/s {:.0} µs/req",
                m.rate(),
                m.server_us_per_request(),
                r.rate(),
                r.server_us_per_request()
            );
            point.memory_rps.push(m.rate());
            point.redis_rps.push(r.rate());
            point.memory_server_us.push(m.server_us_per_request());
            point.redis_server_us.push(r.server_us_per_request());
            point.memory_p50_ms.push(m.p50_ms());
            point.redis_p50_ms.push(r.p50_ms());
            point.errors += m.errors + r.errors;
        }
        points.push(point);
    }
    Ok(points)
}

pub fn markdown(points: &[LimiterPoint]) -> String {
    let mut out = String::from(
        "\nRate limiter on every refresh from 127.0.0.1, in memory vs in Redis (alternating runs, medians; \
         ratio = Redis ÷ memory):\n\n\
         | clients | memory req/s | Redis req/s | ratio | memory p50 ms | Redis p50 ms | memory CPU µs/req | Redis CPU µs/req | errors |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let ratios: Vec<f64> = p.redis_rps.iter().zip(&p.memory_rps).map(|(r, m)| r / m).collect();
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {} |",
            p.clients,
            median(p.memory_rps.clone()),
            median(p.redis_rps.clone()),
            median(ratios),
            median(p.memory_p50_ms.clone()),
            median(p.redis_p50_ms.clone()),
            median(p.memory_server_us.clone()),
            median(p.redis_server_us.clone()),
            p.errors
        );
    }
    out
}
