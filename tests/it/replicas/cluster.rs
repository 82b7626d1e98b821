//! Three Latchkey processes (the real binary) on one database through PgBouncer in
//! transaction mode, sharing rate limits through Redis, behind HAProxy; with the GitHub fake
//! and an SMTP sink beside them.
//!
//! HAProxy sets `X-Real-IP` to the client's address (the replicas trust it from 127.0.0.1),
//! adds `X-Served-By` (the replica's name) to each answer, checks `/health` every 250 ms, and
//! retries a request on another replica only when it could not connect: a request that was
//! in flight on a replica that dies is answered 502, never sent twice.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::fake_providers::FakeProvider;
use crate::helpers::{
    JWT_SECRET, PgBouncer, Process, RedisServer, ScratchDir, TestDatabase, free_port, fresh_database, program_or_skip,
    wait_for_port,
};
use crate::smtp_sink::SmtpSink;

pub const REPLICAS: usize = 3;

pub struct Cluster {
    pub database: TestDatabase,
    pub redis: RedisServer,
    pub sink: SmtpSink,
    pub github: FakeProvider,
    pub replicas: Vec<Replica>,
    /// HAProxy's address, also every replica's `API_EXTERNAL_URL`.
    pub balancer: String,
    /// Follows no redirects: the tests look at each one.
    pub client: reqwest::Client,
    _bouncer: PgBouncer,
    _haproxy: Process,
    dir: ScratchDir,
}

pub struct Replica {
    pub url: String,
    process: Process,
    log: PathBuf,
}

impl Replica {
    /// SIGKILL: no graceful shutdown, requests in flight are cut off.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

impl Cluster {
    /// `None` (the test is skipped with a message) when PgBouncer, Redis or HAProxy is not
    /// installed. `settings` are added to every replica's environment.
    pub async fn start(test: &str, settings: &[(&str, &str)]) -> Option<Cluster> {
        let haproxy = program_or_skip("haproxy", test)?;
        let redis = RedisServer::start(test).await?;
        let database = fresh_database().await;
        let bouncer = PgBouncer::start(&database, 10, test).await?;
        let sink = SmtpSink::start().await;
        let github = FakeProvider::github().await;
        let dir = ScratchDir::new("replicas");
        let balancer_port = free_port();
        let balancer = format!("http://127.0.0.1:{balancer_port}");
        let mut env = replica_env(&bouncer, &redis, &sink, &github, &balancer);
        env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut replicas = Vec::new();
        for n in 0..REPLICAS {
            replicas.push(Replica::start(&dir, n, &env).await);
        }
        let haproxy = start_haproxy(&haproxy, &dir, balancer_port, &replicas).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(90))
            .build()
            .expect("HTTP client");
        Some(Cluster {
            database,
            redis,
            sink,
            github,
            replicas,
            balancer,
            client,
            _bouncer: bouncer,
            _haproxy: haproxy,
            dir,
        })
    }

    /// A direct connection to the database (not through the pooler).
    pub async fn db(&self) -> PgConnection {
        let mut conn = PgConnection::connect(self.database.url()).await.expect("connect");
        sqlx::query("set search_path to auth, public")
            .execute(&mut conn)
            .await
            .expect("search_path");
        conn
    }

    /// The replicas' logs, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for replica in &self.replicas {
            let log = std::fs::read_to_string(&replica.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            all.push_str(&format!("--- {}\n", replica.log.display()));
            all.extend(tail.into_iter().rev().map(|l| format!("{l}\n")));
        }
        all.push_str(&std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default());
        all
    }
}

fn replica_env(
    bouncer: &PgBouncer,
    redis: &RedisServer,
    sink: &SmtpSink,
    github: &FakeProvider,
    balancer: &str,
) -> Vec<(String, String)> {
    let lots = "100000/1h";
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", bouncer.url().as_str()),
        ("LATCHKEY_DB_STATEMENT_CACHE", "0"),
        ("GOTRUE_DB_MAX_POOL_SIZE", "6"),
        ("GOTRUE_JWT_SECRET", JWT_SECRET),
        ("GOTRUE_API_HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("API_EXTERNAL_URL", balancer),
        ("GOTRUE_SITE_URL", "http://localhost:3000"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", sink.port.to_string().as_str()),
        ("GOTRUE_SMTP_ADMIN_EMAIL", "auth@latchkey.test"),
        ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
        ("GOTRUE_API_MAX_REQUEST_DURATION", "60s"),
        ("LATCHKEY_RATE_LIMIT_REDIS_URL", redis.url().as_str()),
        ("GOTRUE_RATE_LIMIT_HEADER", "X-Real-IP"),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32"),
        // The one limit the tests run into; the others are out of the way of the load.
        ("GOTRUE_RATE_LIMIT_VERIFY", "6/1h"),
        ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", lots),
        ("GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS", lots),
        ("GOTRUE_RATE_LIMIT_OTP", lots),
        ("LATCHKEY_RATE_LIMIT_AUTHORIZE", lots),
        // Cheap hashing: the load is about the database and the replicas, not argon2.
        ("LATCHKEY_ARGON2_MEMORY_KIB", "256"),
        ("LATCHKEY_ARGON2_ITERATIONS", "1"),
        ("GOTRUE_LOG_LEVEL", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.extend(github.vars());
    env
}

impl Replica {
    /// Starts the debug binary and waits for the line naming its port.
    async fn start(dir: &ScratchDir, n: usize, env: &[(String, String)]) -> Replica {
        let log = dir.path().join(format!("replica-{n}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .arg("serve")
            // Only what the test gives it: not the test run's DATABASE_URL, not a .env file.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("replica log"));
        let mut process = Process::spawn(&mut command, "latchkey");
        let stdout = process.take_stdout().expect("piped stdout");
        let port = tokio::task::spawn_blocking(move || listening_port(stdout))
            .await
            .expect("reader thread");
        let Some(port) = port else {
            process.kill();
            panic!(
                "replica {n} did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        wait_for_port(port, &mut process, "latchkey").await;
        Replica {
            url: format!("http://127.0.0.1:{port}"),
            process,
            log,
        }
    }
}

/// The port in `latchkey listening on http://127.0.0.1:<port>`; then keeps reading, so the
/// process never blocks on a full pipe.
fn listening_port(stdout: std::process::ChildStdout) -> Option<u16> {
    let mut lines = BufReader::new(stdout).lines();
    let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
        let address = line.strip_prefix("latchkey listening on http://")?;
        address.rsplit(':').next()?.trim().parse().ok()
    });
    std::thread::spawn(move || lines.for_each(drop));
    port
}

async fn start_haproxy(program: &std::path::Path, dir: &ScratchDir, port: u16, replicas: &[Replica]) -> Process {
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(n, r)| format!("    server r{n} {} check\n", r.url.trim_start_matches("http://")))
        .collect();
    let config = format!(
        "global\n    maxconn 2000\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 90s\n    timeout server 90s\n\
         \x20   timeout check 1s\n    retries 3\n    option redispatch\n\
         frontend front\n    bind 127.0.0.1:{port}\n    http-request set-header X-Real-IP %[src]\n\
         \x20   http-response set-header X-Served-By %s\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /health\n\
         \x20   default-server inter 250ms fall 1 rise 1\n{servers}"
    );
    let config_file = dir.path().join("haproxy.cfg");
    std::fs::write(&config_file, config).expect("write haproxy.cfg");
    let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy log");
    let mut process = Process::spawn(
        Command::new(program)
            .arg("-db")
            .arg("-f")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(log),
        "haproxy",
    );
    wait_for_port(port, &mut process, "haproxy").await;
    process
}
