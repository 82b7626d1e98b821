//! The server under test: a release `latchkey` process started by the bench, so that its
//! memory (`/proc/<pid>/status`) is that of exactly this process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

pub const JWT_SECRET: &str = "latchkey-bench-secret-with-at-least-32-characters";

/// A service_role token signed with [`JWT_SECRET`], as Supabase's service key is, for the
/// admin scenarios. It expires in a day: a bench run is shorter.
pub fn admin_token() -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = serde_json::json!({ "role": "service_role", "iat": now, "exp": now + 86_400 });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )?)
}

/// argon2id parameters, passed to the server and used for the raw hashing baseline.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Argon2Params {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `binary` on a free port and waits for its "listening" line.
    pub fn start(
        binary: &Path,
        database_url: &str,
        argon2: Argon2Params,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Server> {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            // A directory without a .env file: only the variables below configure the server.
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", database_url)
            .env("GOTRUE_API_HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("GOTRUE_JWT_SECRET", JWT_SECRET)
            .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
            .env("GOTRUE_LOG_LEVEL", "warn")
            // The load comes from 127.0.0.1, which is rate-limited by default; exempting the
            // loopback peer keeps the limiter's middleware in the measured path, as before.
            .env("LATCHKEY_RATE_LIMIT_LOOPBACK", "false")
            .env("LATCHKEY_ARGON2_MEMORY_KIB", argon2.m_kib.to_string())
            .env("LATCHKEY_ARGON2_ITERATIONS", argon2.t.to_string())
            .env("LATCHKEY_ARGON2_PARALLELISM", argon2.p.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("the server exited before it was listening");
            };
            if let Some(rest) = line?.strip_prefix("latchkey listening on http://") {
                break rest.trim().parse::<SocketAddr>()?;
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) in MiB.
    pub fn memory_mib(&self) -> anyhow::Result<(f64, f64)> {
        memory_mib(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (VmRSS, VmHWM) of `pid` in MiB, from `/proc/<pid>/status`.
pub fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing from /proc/{pid}/status"))?;
        let kib: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Waits until `GET /health` answers (the server is listening once it printed its address,
/// this only guards against a slow first connection).
pub async fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    for _ in 0..50 {
        if let Ok(mut conn) = crate::client::Conn::connect(addr).await
            && let Ok(reply) = conn.get("/health", None).await
            && reply.status == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server at {addr} does not answer /health")
}

/// CPU time (user + system, all threads) that process `pid` has used so far, in seconds, from
/// `/proc/<pid>/stat`. Linux counts it in USER_HZ ticks, which are 1/100 s on every
/// architecture it runs on; over a 3 s window that is precise enough for a per-request cost.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    let after_name = stat.rsplit_once(')').context("malformed /proc/<pid>/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the name.
    let ticks =
        |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).context("short /proc/<pid>/stat")?.parse::<f64>()?) };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
