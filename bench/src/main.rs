//! `latchkey-bench`: drives a release Latchkey server through its hot paths and measures, in
//! the same run, the physical limits those paths have on this machine: pgbench running the
//! same SQL at the same concurrency, and raw argon2id hashing on every core. Run it through
//! `scripts/bench.sh`, which builds in release and starts a throwaway Postgres.

mod cleanup_rate;
mod client;
mod hashrate;
mod idle;
mod limiter;
mod load;
mod pgbench;
mod report;
mod seed;
mod server;
mod timing;
mod wrk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::load::{Ctx, Scenario};
use crate::pgbench::Pgbench;
use crate::report::{Point, Report, Run, ScenarioResult};
use crate::server::{Argon2Params, Server};

const PASSWORD: &str = "bench-password-123";

#[derive(Parser)]
#[command(about = "Load generator for Latchkey with a pgbench and argon2id baseline")]
struct Args {
    /// The release server binary.
    #[arg(long, default_value = "target/release/latchkey")]
    server_bin: PathBuf,
    /// A database the bench may fill (the server migrates it on start).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, default_value = "pgbench")]
    pgbench: PathBuf,
    /// The `wrk` binary for the `user-wrk` and `refresh-wrk` scenarios.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// Where results.json, results.md and throughput.svg go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// A name for this run, recorded in the results.
    #[arg(long, default_value = "bench")]
    label: String,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "user,refresh,user-wrk,user-floor,refresh-wrk,signin,admin-first,admin-deep,admin-filter,signup"
    )]
    scenarios: Vec<Scenario>,
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    clients: Vec<usize>,
    /// Seconds measured per run (after a 0.5 s warm-up).
    #[arg(long, default_value_t = 3)]
    duration: u64,
    /// Runs per scenario and concurrency; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seeded users (`user1@bench.test` ..).
    #[arg(long, default_value_t = 1000)]
    users: u32,
    /// Idle keep-alive connections for the memory scenario (0 skips it).
    #[arg(long, default_value_t = 1000)]
    idle_connections: usize,
    /// Rounds of the answer-time comparison (known vs unknown addresses; 0 skips it).
    #[arg(long, default_value_t = 50)]
    timing_rounds: usize,
    #[arg(long, default_value_t = 19_456)]
    argon2_m_kib: u32,
    #[arg(long, default_value_t = 2)]
    argon2_t: u32,
    #[arg(long, default_value_t = 1)]
    argon2_p: u32,
    /// A Redis server for the limiter comparison (memory vs Redis on the refresh grant, at
    /// the same clients and runs); without it the comparison is skipped.
    #[arg(long)]
    redis_url: Option<String>,
    /// Revoked tokens aged past 24 h for the cleanup measurement (0 skips it); at most the
    /// seeded history's 8 per user.
    #[arg(long, default_value_t = 0)]
    cleanup_backlog: u64,
    /// Seconds of refresh load during the cleanup measurement.
    #[arg(long, default_value_t = 40)]
    cleanup_seconds: u64,
    /// Refresh clients during the cleanup measurement.
    #[arg(long, default_value_t = 16)]
    cleanup_clients: usize,
    /// Extra server environment, `KEY=VALUE` (e.g. GOTRUE_DB_MAX_POOL_SIZE=8).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let argon2 = Argon2Params {
        m_kib: args.argon2_m_kib,
        t: args.argon2_t,
        p: args.argon2_p,
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let extra_env: Vec<(String, String)> = args
        .server_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--server-env {kv}: expected KEY=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&args.out)?;
    // The server runs in another directory: make the path absolute.
    let server_bin = args
        .server_bin
        .canonicalize()
        .with_context(|| format!("server binary {}", args.server_bin.display()))?;
    let start_server = || Server::start(&server_bin, &args.database_url, argon2, &extra_env);

    // The first start migrates the database; then seed it.
    {
        let server = start_server()?;
        server::wait_healthy(server.addr).await?;
        let mut conn = seed::connect(&args.database_url).await?;
        let hash = seed::argon2_hash(argon2, PASSWORD)?;
        let seeding = std::time::Instant::now();
        seed::users(&mut conn, args.users, &hash).await?;
        eprintln!(
            "seeded {} users, {} sessions, {} refresh tokens in {:.1?}",
            args.users,
            2 * u64::from(args.users),
            10 * u64::from(args.users),
            seeding.elapsed()
        );
    }

    let pgbench = Pgbench {
        binary: args.pgbench.clone(),
        database_url: args.database_url.clone(),
        work_dir: std::env::temp_dir().join(format!("latchkey-bench-{}", std::process::id())),
    };
    let duration = Duration::from_secs(args.duration);
    let tag = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let load_average_start = report::load_average();
    let mut scenarios = Vec::new();
    for &scenario in &args.scenarios {
        // A fresh server per scenario, so its VmHWM is this scenario's peak.
        let server = start_server()?;
        server::wait_healthy(server.addr).await?;
        let ctx = Arc::new(Ctx {
            addr: server.addr,
            server_pid: server.pid(),
            users: args.users,
            password: PASSWORD.to_owned(),
            tag: format!("{tag}-{}", scenario.key()),
            admin_token: server::admin_token()?,
        });
        // `user-floor` loads latchkey-floor instead, with sessions signed in on the server.
        let floor = match scenario {
            Scenario::UserFloor => Some(wrk::start_floor(&ctx, &args.database_url, argon2).await?),
            _ => None,
        };
        let measured = floor.as_ref().unwrap_or(&server);
        let mut points = Vec::new();
        for &clients in &args.clients {
            let mut runs = Vec::new();
            for run in 0..args.runs {
                let m = if scenario.uses_wrk() {
                    wrk::measure(&args.wrk, scenario, &ctx, measured, clients, duration).await?
                } else {
                    load::measure(scenario, ctx.clone(), clients, Duration::from_millis(500), duration)
                        .await?
                        .summary()
                };
                if let Some(err) = &m.first_error {
                    eprintln!("  first error: {err}");
                }
                let mut result = Run {
                    rps: m.rps,
                    p50_ms: m.p50_ms,
                    p99_ms: m.p99_ms,
                    errors: m.errors,
                    server_us_per_request: m.server_us_per_request,
                    load_us_per_request: m.load_us_per_request,
                    baseline_rate: None,
                    baseline_p50_ms: None,
                    baseline_p99_ms: None,
                    baseline_errors: 0,
                };
                match scenario {
                    _ if scenario.uses_pgbench() => {
                        let mut conn = seed::connect(&args.database_url).await?;
                        let script = match scenario {
                            Scenario::User | Scenario::UserWrk | Scenario::UserFloor => pgbench::user_script(),
                            Scenario::Refresh | Scenario::RefreshWrk => {
                                seed::refresh_chains(&mut conn, clients, args.users).await?;
                                pgbench::refresh_script()
                            }
                            _ => pgbench::admin_script(scenario),
                        };
                        drop(conn);
                        let pgbench = &pgbench;
                        let users = args.users;
                        let seconds = args.duration;
                        let name = scenario.key();
                        let b = tokio::task::block_in_place(|| pgbench.run(name, &script, clients, seconds, users))?;
                        result.baseline_rate = Some(b.tps);
                        result.baseline_p50_ms = Some(b.p50_ms);
                        result.baseline_p99_ms = Some(b.p99_ms);
                        result.baseline_errors = b.failed;
                    }
                    _ => {
                        // Same concurrency as the load, like pgbench's clients: N clients can
                        // keep at most N hashes running, and never more than one per core.
                        let threads = cores.min(clients);
                        let rate =
                            tokio::task::block_in_place(|| hashrate::hashes_per_second(argon2, threads, duration))?;
                        result.baseline_rate = Some(rate);
                    }
                }
                eprintln!(
                    "{:<16} c={:<3} run {}: {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  cpu/req server {:.0} µs load {:.0} µs  | baseline {:>8.0}/s  ratio {:.2}",
                    scenario.name(),
                    clients,
                    run + 1,
                    result.rps,
                    result.p50_ms,
                    result.p99_ms,
                    result.errors + result.baseline_errors,
                    result.server_us_per_request,
                    result.load_us_per_request,
                    result.baseline_rate.unwrap_or(f64::NAN),
                    result.baseline_rate.map_or(f64::NAN, |b| result.rps / b),
                );
                runs.push(result);
            }
            points.push(Point { clients, runs });
        }
        let (_, peak_rss_mib) = measured.memory_mib()?;
        eprintln!("{}: server peak RSS {peak_rss_mib:.1} MiB", scenario.name());
        let (baseline, target_ratio) = match scenario {
            Scenario::User => ("pgbench", 0.5),
            Scenario::Refresh => ("pgbench", 0.8),
            // Issue #24's targets, measured with a load tool that is not ours.
            Scenario::UserWrk => ("pgbench", 0.7),
            Scenario::RefreshWrk => ("pgbench", 0.9),
            Scenario::Signin => ("argon2id", 0.9),
            Scenario::Signup => ("argon2id", 0.9),
            Scenario::AdminFirst | Scenario::AdminDeep | Scenario::AdminFilter | Scenario::UserFloor => {
                ("pgbench", 0.0)
            }
        };
        scenarios.push(ScenarioResult {
            key: scenario.key(),
            name: scenario.name(),
            baseline,
            target_ratio,
            points,
            peak_rss_mib,
            load_average: report::load_average(),
        });
    }

    let idle = if args.idle_connections > 0 {
        let server = start_server()?;
        server::wait_healthy(server.addr).await?;
        let result = idle::run(server.addr, server.pid(), args.idle_connections).await?;
        eprintln!(
            "idle: {} connections, {} errors, RSS {:.1} -> {:.1} MiB (VmHWM {:.1})",
            result.connections, result.errors, result.rss_before_mib, result.rss_held_mib, result.hwm_mib
        );
        Some(result)
    } else {
        None
    };

    let timing = if args.timing_rounds > 0 {
        let mut env = extra_env.clone();
        env.extend(timing::SERVER_ENV.map(|(k, v)| (k.to_owned(), v.to_owned())));
        let server = Server::start(&server_bin, &args.database_url, argon2, &env)?;
        server::wait_healthy(server.addr).await?;
        let result = timing::run(server.addr, args.timing_rounds, args.users, &tag).await?;
        for timed in &result.requests {
            eprintln!(
                "timing: {:<24} p50 {:>7.2} ms  p90 {:>7.2} ms  unexpected {}",
                timed.name, timed.p50_ms, timed.p90_ms, timed.unexpected
            );
        }
        Some(result)
    } else {
        None
    };

    let base_ctx = || -> anyhow::Result<Ctx> {
        Ok(Ctx {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            server_pid: 0,
            users: args.users,
            password: PASSWORD.to_owned(),
            tag: tag.clone(),
            admin_token: server::admin_token()?,
        })
    };
    let limiter = match &args.redis_url {
        Some(redis_url) => {
            let points = limiter::run(
                &server_bin,
                &args.database_url,
                argon2,
                &extra_env,
                redis_url,
                &args.clients,
                args.runs,
                duration,
                base_ctx()?,
            )
            .await?;
            Some(points)
        }
        None => None,
    };
    let cleanup = if args.cleanup_backlog > 0 {
        cleanup_rate::age_backlog(&args.database_url, args.cleanup_backlog).await?;
        let result = cleanup_rate::run(
            start_server()?,
            &args.database_url,
            &base_ctx()?,
            args.cleanup_backlog,
            args.cleanup_clients,
            Duration::from_secs(args.cleanup_seconds),
        )
        .await?;
        eprintln!(
            "cleanup: {:.0} refreshes/s, {:.0} aged tokens deleted/s, {} left",
            result.refreshes_per_second, result.deleted_per_second, result.left_at_end
        );
        Some(result)
    } else {
        None
    };

    let report = Report {
        label: args.label.clone(),
        started_at_unix: tag.parse::<u64>().unwrap_or(0) / 1000,
        cores,
        load_average_start,
        duration_secs: args.duration as f64,
        runs: args.runs,
        argon2,
        server_env: args.server_env.clone(),
        scenarios,
        idle,
        timing,
        users: args.users,
        limiter,
        cleanup,
    };
    let markdown = report::markdown(&report);
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&report)?)?;
    std::fs::write(args.out.join("results.md"), &markdown)?;
    std::fs::write(args.out.join("throughput.svg"), report::svg(&report))?;
    std::fs::write(args.out.join("pgbench-user.sql"), pgbench::user_script())?;
    std::fs::write(args.out.join("pgbench-refresh.sql"), pgbench::refresh_script())?;
    println!("{markdown}");
    println!("results written to {}", args.out.display());
    Ok(())
}
