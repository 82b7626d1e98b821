//! Does the cleanup task keep up with the refreshes? Every refresh revokes one token, which the
//! cleanup may delete 24 hours later; so at a steady 1 000 refreshes a second it must delete at
//! least 1 000 tokens a second, while that load runs. The bench ages `backlog` of the seeded
//! history's revoked tokens past the 24 hours, starts a fresh server (its cleanup task starts
//! with it) and drives the refresh grant with `clients` clients, counting the aged tokens once
//! a second from another connection. The deletion rate is taken from the first to the last
//! sample in which tokens went (the task's first statement runs 10 s after start).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{self, Ctx, Scenario};
use crate::seed;
use crate::server::Server;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CleanupRate {
    pub backlog: u64,
    pub seconds: f64,
    pub refreshes_per_second: f64,
    pub refresh_errors: u64,
    /// Aged revoked tokens deleted per second, between the first and the last sample that
    /// saw fewer of them than the one before.
    pub deleted_per_second: f64,
    pub left_at_end: u64,
    /// (seconds since the server started, aged revoked tokens left).
    pub samples: Vec<(f64, u64)>,
}

const AGED: &str =
    "select count(*) from _auth_refresh_tokens where revoked and updated_at < now() - interval '24 hours'";

pub async fn run(
    server: Server,
    database_url: &str,
    base: &Ctx,
    backlog: u64,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<CleanupRate> {
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        addr: server.addr,
        server_pid: server.pid(),
        tag: format!("{}-cleanup", base.tag),
        password: base.password.clone(),
        admin_token: base.admin_token.clone(),
        users: base.users,
    });
    let load = tokio::spawn(load::measure(Scenario::Refresh, ctx, clients, Duration::ZERO, duration));
    let mut conn = seed::connect(database_url).await?;
    let mut samples = Vec::new();
    while !load.is_finished() {
        let left: i64 = sqlx::query_scalar(AGED).fetch_one(&mut conn).await?;
        samples.push((started.elapsed().as_secs_f64(), left as u64));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let measured = load.await??;
    if let Some(err) = &measured.first_error {
        eprintln!("  cleanup: first refresh error: {err}");
    }
    drop(server);
    let falling: Vec<usize> = (1..samples.len())
        .filter(|&i| samples[i].1 < samples[i - 1].1)
        .collect();
    let deleted_per_second = match (falling.first(), falling.last()) {
        (Some(&first), Some(&last)) => {
            let (t0, n0) = samples[first - 1];
            let (t1, n1) = samples[last];
            (n0 - n1) as f64 / (t1 - t0)
        }
        _ => 0.0,
    };
    Ok(CleanupRate {
        backlog,
        seconds: duration.as_secs_f64(),
        refreshes_per_second: measured.rate(),
        refresh_errors: measured.errors,
        deleted_per_second,
        left_at_end: samples.last().map_or(backlog, |s| s.1),
        samples,
    })
}

/// Ages `backlog` revoked tokens of the seeded history past the cleanup's 24-hour margin.
pub async fn age_backlog(database_url: &str, backlog: u64) -> anyhow::Result<()> {
    let mut conn = seed::connect(database_url).await?;
    sqlx::query(
        "update _auth_refresh_tokens set updated_at = now() - interval '25 hours' where id in ( \
         select id from _auth_refresh_tokens where revoked and token_hash like 'seed-%' \
         and updated_at > now() - interval '24 hours' limit $1)",
    )
    .bind(backlog as i64)
    .execute(&mut conn)
    .await?;
    sqlx::raw_sql("vacuum analyze _auth_refresh_tokens")
        .execute(&mut conn)
        .await?;
    Ok(())
}

pub fn markdown(result: &CleanupRate) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nCleanup under refresh load: {} revoked tokens aged past 24 h; over {:.0} s of refreshes at {:.0}/s \
         ({} errors) the cleanup task deleted {:.0} of them per second; {} left at the end.",
        result.backlog,
        result.seconds,
        result.refreshes_per_second,
        result.refresh_errors,
        result.deleted_per_second,
        result.left_at_end
    );
    out
}
