//! `LATCHKEY_RATE_LIMIT_REDIS_URL` and `LATCHKEY_RATE_LIMIT_REDIS_FAILURE`: the store that lets
//! several replicas share one budget. Not in GoTrue, whose limits live in each process.

use secrecy::SecretString;

use crate::config::{ConfigError, Env};

const URL_VAR: &str = "LATCHKEY_RATE_LIMIT_REDIS_URL";
const FAILURE_VAR: &str = "LATCHKEY_RATE_LIMIT_REDIS_FAILURE";

/// A Redis server shared by every replica.
#[derive(Debug, Clone)]
pub struct RedisLimits {
    /// `redis://[user:password@]host[:port][/db]` or `unix:///path/to/redis.sock`. Secret: it
    /// may carry a password.
    pub url: SecretString,
    /// What a check does while Redis does not answer.
    pub on_failure: RedisFailure,
}

/// `LATCHKEY_RATE_LIMIT_REDIS_FAILURE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailure {
    /// `open` (the default): requests are served, each replica applying its own in-memory
    /// limits until Redis answers again.
    Open,
    /// `closed`: every limited request is refused with a 429 until Redis answers again.
    Closed,
}

pub(super) fn from_env(env: &Env) -> Result<Option<RedisLimits>, ConfigError> {
    let on_failure = match env.get(&[FAILURE_VAR]) {
        None => RedisFailure::Open,
        Some((_, value)) => match value.to_ascii_lowercase().as_str() {
            "open" => RedisFailure::Open,
            "closed" => RedisFailure::Closed,
            _ => {
                return Err(ConfigError {
                    var: FAILURE_VAR.into(),
                    message: format!("{value:?} is not `open` or `closed`"),
                });
            }
        },
    };
    let Some((_, url)) = env.get(&[URL_VAR]) else {
        return Ok(None);
    };
    check_url(&url)?;
    Ok(Some(RedisLimits {
        url: SecretString::from(url),
        on_failure,
    }))
}

/// The schemes the Redis client understands without TLS. The value is never repeated in the
/// message: it may hold a password.
fn check_url(raw: &str) -> Result<(), ConfigError> {
    let fail = |message: &str| ConfigError {
        var: URL_VAR.into(),
        message: message.into(),
    };
    let url = url::Url::parse(raw).map_err(|_| fail("is not a URL (like redis://127.0.0.1:6379)"))?;
    match url.scheme() {
        "redis" | "valkey" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "redis" | "valkey" => Err(fail("names no host (like redis://127.0.0.1:6379)")),
        "unix" | "redis+unix" | "valkey+unix" if !url.path().is_empty() && url.path() != "/" => Ok(()),
        "unix" | "redis+unix" | "valkey+unix" => Err(fail("names no socket path (like unix:///run/redis.sock)")),
        "rediss" | "valkeys" => Err(fail(
            "TLS to Redis is not built in; use redis:// on a private network or through a TLS tunnel",
        )),
        _ => Err(fail("must start with redis:// or unix://")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<RedisLimits>, ConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_env(&Env::new(vars))
    }

    #[test]
    fn unset_means_memory_and_open_is_the_default() {
        assert!(read(&[]).unwrap().is_none());
        let redis = read(&[(URL_VAR, "redis://:pw@10.0.0.5:6380/2")]).unwrap().unwrap();
        assert_eq!(redis.url.expose_secret(), "redis://:pw@10.0.0.5:6380/2");
        assert_eq!(redis.on_failure, RedisFailure::Open);
        let redis = read(&[(URL_VAR, "unix:///run/redis.sock"), (FAILURE_VAR, "Closed")])
            .unwrap()
            .unwrap();
        assert_eq!(redis.on_failure, RedisFailure::Closed);
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_the_password() {
        for (var, pairs) in [
            (URL_VAR, vec![(URL_VAR, "localhost:6379")]),
            (URL_VAR, vec![(URL_VAR, "http://secret-pw@cache:6379")]),
            (URL_VAR, vec![(URL_VAR, "redis://")]),
            (URL_VAR, vec![(URL_VAR, "unix://")]),
            (URL_VAR, vec![(URL_VAR, "rediss://:secret-pw@cache:6379")]),
            (FAILURE_VAR, vec![(FAILURE_VAR, "sometimes")]),
            (
                FAILURE_VAR,
                vec![(URL_VAR, "redis://cache"), (FAILURE_VAR, "fail-open")],
            ),
        ] {
            let err = read(&pairs).unwrap_err();
            assert_eq!(err.var, var, "{pairs:?}: {err}");
            assert!(!err.to_string().contains("secret-pw"), "{err}");
        }
    }
}
