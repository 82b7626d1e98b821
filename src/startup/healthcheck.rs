//! `latchkey healthcheck`: asks the running server whether it is alive (`/health`) or ready
//! (`/health/ready`), for container health checks in images without curl or wget. The exit
//! code says it: 0 healthy, anything else not.

use std::time::Duration;

use anyhow::Context;

use crate::config::Config;

/// Below Docker's default health-check timeout (30 s) and any sensible one (3 to 5 s).
const TIMEOUT: Duration = Duration::from_secs(3);

/// Checks the server this configuration describes (`GOTRUE_API_HOST`, `PORT`) on loopback when
/// it listens on every interface, or `url` when given. `Ok` when it answered 2xx.
pub async fn healthcheck(config: &Config, ready: bool, url: Option<&str>) -> anyhow::Result<()> {
    let path = if ready { "/health/ready" } else { "/health" };
    let url = match url {
        Some(url) => url.to_owned(),
        None => format!("http://{}:{}{path}", local_host(&config.host), config.port),
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url}: no answer"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url}: {status}");
    Ok(())
}

/// Where to reach a server bound to `host` from the same machine.
fn local_host(host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare {
        "" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" => "[::1]".to_owned(),
        _ if bare.contains(':') => format!("[{bare}]"),
        _ => bare.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(local_host("0.0.0.0"), "127.0.0.1");
        assert_eq!(local_host("::"), "[::1]");
        assert_eq!(local_host("[::]"), "[::1]");
        assert_eq!(local_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(local_host("::1"), "[::1]");
        assert_eq!(local_host("auth.internal"), "auth.internal");
    }
}
