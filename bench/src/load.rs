//! The HTTP scenarios: virtual clients, each on its own keep-alive connection and each with
//! its own state (an access token, or the refresh token of its own chain), sending requests
//! back to back for a fixed time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;

use crate::client::{Conn, Tokens};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /auth/v1/user` with a valid access token.
    User,
    /// `POST /auth/v1/token?grant_type=refresh_token`, each client rotating its own chain.
    Refresh,
    /// `POST /auth/v1/token?grant_type=password` over the seeded users.
    Signin,
    /// `POST /auth/v1/signup` with a new address each time (autoconfirm: returns a session).
    Signup,
    /// Admin `listUsers`: `GET /auth/v1/admin/users`, the first page of 50 (newest first).
    AdminFirst,
    /// Admin `listUsers`, the page of 50 halfway down the list (page `users / 100`).
    AdminDeep,
    /// Admin `listUsers` with `filter=user<k>@` for a random seeded user k (one match).
    AdminFilter,
    /// `GET /auth/v1/user` driven by `wrk` instead of the built-in client.
    UserWrk,
    /// The refresh grant driven by `wrk`, one chain per connection.
    RefreshWrk,
    /// `user-wrk`'s requests against `latchkey-floor` instead of the server: the same HTTP
    /// stack and statement with none of Latchkey's work, for scale (no target).
    UserFloor,
}

/// Users per page in the admin scenarios (GoTrue's default `per_page`).
pub const ADMIN_PER_PAGE: u32 = 50;

/// The page halfway down the admin list of `users` seeded users.
pub fn admin_deep_page(users: u32) -> u32 {
    (users / ADMIN_PER_PAGE / 2).max(1)
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::User => "GET /user",
            Scenario::Refresh => "refresh_token",
            Scenario::Signin => "password sign-in",
            Scenario::Signup => "sign-up",
            Scenario::AdminFirst => "listUsers first page",
            Scenario::AdminDeep => "listUsers deep page",
            Scenario::AdminFilter => "listUsers email filter",
            Scenario::UserWrk => "GET /user (wrk)",
            Scenario::RefreshWrk => "refresh_token (wrk)",
            Scenario::UserFloor => "GET /user floor (wrk)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Scenario::User => "user",
            Scenario::Refresh => "refresh",
            Scenario::Signin => "signin",
            Scenario::Signup => "signup",
            Scenario::AdminFirst => "admin_first",
            Scenario::AdminDeep => "admin_deep",
            Scenario::AdminFilter => "admin_filter",
            Scenario::UserWrk => "user_wrk",
            Scenario::RefreshWrk => "refresh_wrk",
            Scenario::UserFloor => "user_floor",
        }
    }

    /// The scenarios `wrk` drives (the others use the built-in client).
    pub fn uses_wrk(self) -> bool {
        matches!(self, Scenario::UserWrk | Scenario::RefreshWrk | Scenario::UserFloor)
    }

    /// The scenarios whose baseline is pgbench on the same SQL.
    pub fn uses_pgbench(self) -> bool {
        !matches!(self, Scenario::Signin | Scenario::Signup)
    }
}

/// What every client needs to know.
pub struct Ctx {
    pub addr: SocketAddr,
    /// The server's process, for its CPU time.
    pub server_pid: u32,
    /// Seeded users are `user1@bench.test` .. `user{users}@bench.test`.
    pub users: u32,
    pub password: String,
    /// Makes sign-up addresses unique across runs.
    pub tag: String,
    /// A service_role token for the admin scenarios.
    pub admin_token: String,
}

/// Numbers sign-up addresses: unique across clients, runs and concurrency levels.
static SIGNUPS: AtomicU64 = AtomicU64::new(0);

pub fn seeded_email(k: u32) -> String {
    format!("user{k}@bench.test")
}

struct Client {
    conn: Conn,
    idx: usize,
    sent: u64,
    access_token: String,
    refresh_token: String,
}

impl Client {
    async fn setup(scenario: Scenario, ctx: &Ctx, idx: usize) -> anyhow::Result<Client> {
        let conn = Conn::connect(ctx.addr).await?;
        let mut client = Client {
            conn,
            idx,
            sent: 0,
            access_token: String::new(),
            refresh_token: String::new(),
        };
        if matches!(scenario, Scenario::User | Scenario::Refresh) {
            client.sign_in(ctx).await?;
        }
        Ok(client)
    }

    /// Starts a session of the client's own user (untimed set-up).
    async fn sign_in(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let k = (self.idx as u32 % ctx.users) + 1;
        let tokens = self.password_grant(ctx, k).await.context("set-up sign-in")?;
        self.access_token = tokens.access_token;
        self.refresh_token = tokens.refresh_token;
        Ok(())
    }

    /// Signs in as seeded user `k`.
    async fn password_grant(&mut self, ctx: &Ctx, k: u32) -> anyhow::Result<Tokens> {
        self.conn
            .post_json(
                "/auth/v1/token?grant_type=password",
                &json!({ "email": seeded_email(k), "password": ctx.password }),
            )
            .await?
            .tokens()
    }

    async fn step(&mut self, scenario: Scenario, ctx: &Ctx) -> anyhow::Result<()> {
        self.sent += 1;
        match scenario {
            Scenario::User => {
                let reply = self.conn.get("/auth/v1/user", Some(&self.access_token)).await?;
                anyhow::ensure!(reply.status == 200, "HTTP {}", reply.status);
            }
            Scenario::Refresh => {
                let reply = self
                    .conn
                    .post_json(
                        "/auth/v1/token?grant_type=refresh_token",
                        &json!({ "refresh_token": self.refresh_token }),
                    )
                    .await?;
                self.refresh_token = reply.tokens()?.refresh_token;
            }
            Scenario::Signin => {
                // Spread the clients over the seeded users.
                let k = ((self.idx as u64 * 7919 + self.sent * 31) % u64::from(ctx.users)) as u32 + 1;
                self.password_grant(ctx, k).await?;
            }
            Scenario::Signup => {
                let email = format!("su-{}-{}@bench.test", ctx.tag, SIGNUPS.fetch_add(1, Ordering::Relaxed));
                let reply = self
                    .conn
                    .post_json("/auth/v1/signup", &json!({ "email": email, "password": ctx.password }))
                    .await?;
                reply.tokens()?;
            }
            Scenario::UserWrk | Scenario::RefreshWrk | Scenario::UserFloor => {
                anyhow::bail!("{} runs under wrk", scenario.name())
            }
            Scenario::AdminFirst | Scenario::AdminDeep | Scenario::AdminFilter => {
                let path = match scenario {
                    Scenario::AdminFirst => format!("/auth/v1/admin/users?page=1&per_page={ADMIN_PER_PAGE}"),
                    Scenario::AdminDeep => format!(
                        "/auth/v1/admin/users?page={}&per_page={ADMIN_PER_PAGE}",
                        admin_deep_page(ctx.users)
                    ),
                    _ => {
                        let k = ((self.idx as u64 * 7919 + self.sent * 104_729) % u64::from(ctx.users)) as u32 + 1;
                        format!("/auth/v1/admin/users?page=1&per_page={ADMIN_PER_PAGE}&filter=user{k}%40")
                    }
                };
                let reply = self.conn.get(&path, Some(&ctx.admin_token)).await?;
                anyhow::ensure!(reply.status == 200, "HTTP {}", reply.status);
                anyhow::ensure!(reply.body.starts_with(b"{\"users\":[{"), "no user in the page");
            }
        }
        Ok(())
    }

    /// After an error: a fresh connection, and for the stateful flows a fresh session.
    async fn recover(&mut self, scenario: Scenario, ctx: &Ctx) {
        if self.conn.reconnect().await.is_ok() && matches!(scenario, Scenario::User | Scenario::Refresh) {
            let _ = self.sign_in(ctx).await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Measurement {
    /// Requests completed inside the measurement window.
    pub requests: u64,
    /// Failed requests (set-up, warm-up and window).
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub hist: Histogram<u64>,
    /// CPU seconds used in the measurement window by the server and by this load generator.
    pub server_cpu: f64,
    pub load_cpu: f64,
}

impl Measurement {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    pub fn p50_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.50) as f64 / 1000.0
    }
    pub fn p99_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
    /// Microseconds of server CPU per request in the window.
    pub fn server_us_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.requests.max(1) as f64
    }
    /// Microseconds of load-generator CPU per request in the window.
    pub fn load_us_per_request(&self) -> f64 {
        self.load_cpu * 1e6 / self.requests.max(1) as f64
    }
}

/// What a run reports, whichever client produced the load.
#[derive(Debug, Clone)]
pub struct Summary {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub server_us_per_request: f64,
    pub load_us_per_request: f64,
}

impl Measurement {
    pub fn summary(&self) -> Summary {
        Summary {
            rps: self.rate(),
            p50_ms: self.p50_ms(),
            p99_ms: self.p99_ms(),
            errors: self.errors,
            first_error: self.first_error.clone(),
            server_us_per_request: self.server_us_per_request(),
            load_us_per_request: self.load_us_per_request(),
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs .. 60 s, 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs `clients` virtual clients: set-up (untimed), `warmup`, then `duration` of measurement.
pub async fn measure(
    scenario: Scenario,
    ctx: Arc<Ctx>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let mut setups = JoinSet::new();
    for idx in 0..clients {
        let ctx = ctx.clone();
        setups.spawn(async move { Client::setup(scenario, &ctx, idx).await });
    }
    let mut ready = Vec::with_capacity(clients);
    while let Some(joined) = setups.join_next().await {
        ready.push(joined?.context("client set-up")?);
    }

    let start = Instant::now();
    let window_start = start + warmup;
    let window_end = window_start + duration;
    let mut runs = JoinSet::new();
    for mut client in ready {
        let ctx = ctx.clone();
        runs.spawn(async move {
            let mut hist = histogram();
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < window_end {
                let t0 = Instant::now();
                let result = client.step(scenario, &ctx).await;
                let t1 = Instant::now();
                match result {
                    Ok(()) => {
                        if t1 >= window_start && t1 <= window_end {
                            let micros = (t1 - t0).as_micros().max(1) as u64;
                            let _ = hist.record(micros.min(60_000_000));
                        }
                    }
                    Err(err) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{err:#}"));
                        client.recover(scenario, &ctx).await;
                    }
                }
            }
            (hist, errors, first_error)
        });
    }
    // Both processes' CPU time over the same window as the requests.
    let cpu = |pid: u32| crate::server::cpu_seconds(pid);
    let own_pid = std::process::id();
    tokio::time::sleep_until(window_start.into()).await;
    let (server_before, load_before) = (cpu(ctx.server_pid)?, cpu(own_pid)?);
    tokio::time::sleep_until(window_end.into()).await;
    let (server_after, load_after) = (cpu(ctx.server_pid)?, cpu(own_pid)?);
    let mut total = histogram();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = runs.join_next().await {
        let (hist, e, first) = joined?;
        total.add(&hist)?;
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    Ok(Measurement {
        requests: total.len(),
        errors,
        first_error,
        seconds: duration.as_secs_f64(),
        hist: total,
        server_cpu: server_after - server_before,
        load_cpu: load_after - load_before,
    })
}
