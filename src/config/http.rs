//! The HTTP listener's defences against slow and numerous clients.

use std::time::Duration;

use super::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `LATCHKEY_HEADER_READ_TIMEOUT`: how long a client may take to send a request's
    /// headers, counted from its first byte (or from the connection's opening, for the first
    /// request). A client trickling half a request is cut off after this.
    pub header_read_timeout: Duration,
    /// `LATCHKEY_IDLE_TIMEOUT`: how long a keep-alive connection may sit idle between
    /// requests before the server closes it.
    pub idle_timeout: Duration,
    /// `LATCHKEY_MAX_CONNECTIONS`: open connections at most; beyond it new connections wait
    /// in the kernel's accept queue until one closes.
    pub max_connections: usize,
    /// `LATCHKEY_HTTP_THREADS`: threads serving HTTP connections, each with its own
    /// single-threaded runtime and hot database connections (see `startup::http`). Default:
    /// one per CPU.
    pub threads: usize,
}

pub(super) fn from_env(env: &Env) -> Result<HttpConfig, ConfigError> {
    let config = HttpConfig {
        header_read_timeout: env.duration_or(&["LATCHKEY_HEADER_READ_TIMEOUT"], Duration::from_secs(10))?,
        // Above the 60 s idle timeout of common load balancers (AWS ALB, nginx's upstream
        // keepalive), so that the balancer, not Latchkey, closes an idle pooled connection
        // and never sends a request into one that is being closed.
        idle_timeout: env.duration_or(&["LATCHKEY_IDLE_TIMEOUT"], Duration::from_secs(75))?,
        max_connections: env.parse_or(&["LATCHKEY_MAX_CONNECTIONS"], 10_000usize)?,
        threads: env.parse_or(&["LATCHKEY_HTTP_THREADS"], cpus())?,
    };
    let positive = |var: &str, value: Duration| {
        if value.is_zero() {
            Err(ConfigError {
                var: var.into(),
                message: "must be positive".into(),
            })
        } else {
            Ok(())
        }
    };
    positive("LATCHKEY_HEADER_READ_TIMEOUT", config.header_read_timeout)?;
    positive("LATCHKEY_IDLE_TIMEOUT", config.idle_timeout)?;
    if !(1..=MAX_THREADS).contains(&config.threads) {
        return Err(ConfigError {
            var: "LATCHKEY_HTTP_THREADS".into(),
            message: format!("must be between 1 and {MAX_THREADS}"),
        });
    }
    if config.max_connections == 0 {
        return Err(ConfigError {
            var: "LATCHKEY_MAX_CONNECTIONS".into(),
            message: "must be at least 1".into(),
        });
    }
    Ok(config)
}

/// Far beyond any machine's cores; a typo such as `40000` should stop start-up, not spawn.
const MAX_THREADS: usize = 256;

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
