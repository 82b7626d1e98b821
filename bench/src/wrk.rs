//! The same `GET /user` and refresh loads driven by `wrk` (Debian's package) instead of the
//! built-in client, so that the figures do not depend on our own load generator (issue #24).
//!
//! wrk runs one thread (`-t1`) with one keep-alive connection per client. The tokens come
//! from sign-ins made beforehand with the built-in client (untimed). For `GET /user` each
//! request takes the next of the clients' access tokens; for refresh a Lua pool holds one
//! refresh token per chain: a request takes one out, its answer puts the new one back, so
//! every token is used exactly once, as a client rotating its own chain does.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use crate::client::Conn;
use crate::load::{Ctx, Scenario, Summary, seeded_email};
use crate::server::{Argon2Params, Server};

/// Runs wrk for `duration` with `clients` connections, after a 1 s warm-up run on sessions of
/// its own (wrk has no warm-up of its own: without one, the first requests of a fresh server,
/// which open its database connections, would be in the percentiles). CPU per request is the
/// server's CPU time over the measured run divided by the requests wrk completed in it.
/// The sessions are signed in on `ctx`'s server; `target` is the process wrk loads (the same
/// server, or `latchkey-floor`).
pub async fn measure(
    wrk: &Path,
    scenario: Scenario,
    ctx: &Ctx,
    target: &Server,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Summary> {
    let warm_up = script(scenario, ctx, clients).await?;
    let measured = script(scenario, ctx, clients).await?;
    run(wrk, target.addr, clients, Duration::from_secs(1), &warm_up, "warm-up")?;
    let server_before = crate::server::cpu_seconds(target.pid())?;
    let text = run(wrk, target.addr, clients, duration, &measured, scenario.key())?;
    let server_after = crate::server::cpu_seconds(target.pid())?;
    let parsed = parse(&text).with_context(|| format!("reading wrk's output:\n{text}"))?;
    Ok(Summary {
        rps: parsed.rps,
        p50_ms: parsed.p50_ms,
        p99_ms: parsed.p99_ms,
        errors: parsed.errors,
        first_error: (parsed.errors > 0).then(|| format!("wrk: {} failed requests", parsed.errors)),
        server_us_per_request: (server_after - server_before) * 1e6 / parsed.requests.max(1) as f64,
        // wrk's own CPU time is not read (it has exited); its C client is as lean as pgbench's.
        load_us_per_request: f64::NAN,
    })
}

/// The Lua script of `scenario` with `clients` new sessions (untimed sign-ins).
async fn script(scenario: Scenario, ctx: &Ctx, clients: usize) -> anyhow::Result<String> {
    let mut access = Vec::with_capacity(clients);
    let mut refresh = Vec::with_capacity(clients);
    let mut conn = Conn::connect(ctx.addr).await?;
    for idx in 0..clients {
        let k = (idx as u32 % ctx.users) + 1;
        let tokens = conn
            .post_json(
                "/auth/v1/token?grant_type=password",
                &json!({ "email": seeded_email(k), "password": ctx.password }),
            )
            .await?
            .tokens()
            .context("set-up sign-in")?;
        access.push(tokens.access_token);
        refresh.push(tokens.refresh_token);
    }
    match scenario {
        Scenario::UserWrk | Scenario::UserFloor => Ok(user_script(&access)),
        Scenario::RefreshWrk => Ok(refresh_script(&refresh)),
        _ => bail!("{} is not a wrk scenario", scenario.name()),
    }
}

/// Starts `latchkey-floor` (next to this binary) for the `user-floor` scenario, answering
/// with the body `ctx`'s server gives seeded user 1, so both send the same bytes.
pub async fn start_floor(ctx: &Ctx, database_url: &str, argon2: Argon2Params) -> anyhow::Result<Server> {
    let mut conn = Conn::connect(ctx.addr).await?;
    let tokens = conn
        .post_json(
            "/auth/v1/token?grant_type=password",
            &json!({ "email": seeded_email(1), "password": ctx.password }),
        )
        .await?
        .tokens()
        .context("set-up sign-in")?;
    let user = conn.get("/auth/v1/user", Some(&tokens.access_token)).await?;
    if user.status != 200 {
        bail!("GET /user answered {}", user.status);
    }
    let floor = std::env::current_exe()?.with_file_name("latchkey-floor");
    let env = [
        ("LATCHKEY_FLOOR_STATEMENT", crate::pgbench::user_statement("$1", "$2")),
        ("LATCHKEY_FLOOR_BODY", String::from_utf8(user.body)?),
        ("LATCHKEY_FLOOR_USERS", ctx.users.to_string()),
    ]
    .map(|(key, value)| (key.to_owned(), value));
    Server::start(&floor, database_url, argon2, &env)
}

/// One wrk run; its report.
fn run(
    wrk: &Path,
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    script: &str,
    name: &str,
) -> anyhow::Result<String> {
    let script_path = std::env::temp_dir().join(format!("latchkey-bench-{}-{name}.lua", std::process::id()));
    std::fs::write(&script_path, script)?;
    let output = tokio::task::block_in_place(|| {
        Command::new(wrk)
            .args(["-t1", "--latency", "--timeout", "10s"])
            .arg(format!("-c{clients}"))
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .arg("-s")
            .arg(&script_path)
            .arg(format!("http://{addr}"))
            .output()
    })
    .with_context(|| format!("running {}", wrk.display()))?;
    let _ = std::fs::remove_file(&script_path);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&output.stderr));
    }
    Ok(text)
}

fn lua_list(tokens: &[String]) -> String {
    let quoted: Vec<String> = tokens.iter().map(|t| format!("{t:?}")).collect();
    format!("{{{}}}", quoted.join(", "))
}

fn user_script(tokens: &[String]) -> String {
    format!(
        r#"local tokens = {}
local i = 0
wrk.method = "GET"
wrk.path = "/auth/v1/user"
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, {{["Authorization"] = "Bearer " .. tokens[i]}})
end
"#,
        lua_list(tokens)
    )
}

fn refresh_script(tokens: &[String]) -> String {
    // wrk calls `request` once before the run to check the script (`script_verify_request`):
    // the last entry of the pool is for that call.
    let mut pool = tokens.to_vec();
    pool.push("checked-by-wrk".to_owned());
    format!(
        r#"local pool = {}
wrk.method = "POST"
wrk.path = "/auth/v1/token?grant_type=refresh_token"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local token = table.remove(pool) or "lost"
  return wrk.format(nil, nil, nil, '{{"refresh_token":"' .. token .. '"}}')
end
response = function(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token) end
end
"#,
        lua_list(&pool)
    )
}

#[derive(Debug, PartialEq)]
struct Parsed {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// The figures of wrk's report (`--latency`).
fn parse(text: &str) -> anyhow::Result<Parsed> {
    let mut parsed = Parsed {
        requests: 0,
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rate] => parsed.rps = rate.parse()?,
            ["50%", latency] => parsed.p50_ms = millis(latency)?,
            ["99%", latency] => parsed.p99_ms = millis(latency)?,
            [count, "requests", "in", ..] => parsed.requests = count.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => parsed.errors += count.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                for count in rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()) {
                    parsed.errors += count;
                }
            }
            _ => {}
        }
    }
    if parsed.requests == 0 || parsed.rps.is_nan() || parsed.p50_ms.is_nan() {
        bail!("no request count, rate or latency distribution");
    }
    Ok(parsed)
}

/// wrk's latencies: `628.00us`, `2.34ms`, `1.02s`.
fn millis(text: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("latency {text:?} without a unit")
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let report = "Running 3s test @ http://127.0.0.1:4000
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  512.00us   9.80ms   80.00%
    Req/Sec     7.61k   300.00     8.00k    70.00%
  Latency Distribution
     50%    1.98ms
     75%    2.30ms
     90%    2.70ms
     99%  850.00us
  22830 requests in 3.00s, 20.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   7609.33
Transfer/sec:      6.67MB
";
        assert_eq!(
            parse(report).unwrap(),
            Parsed {
                requests: 22830,
                rps: 7609.33,
                p50_ms: 1.98,
                p99_ms: 0.85,
                errors: 7,
            }
        );
        assert!(parse("garbage").is_err());
    }
}
