//! Configuration: one typed struct, read once from the environment with GoTrue's variable
//! names (a `.env` file is loaded by `main` first). Every bad value stops start-up with a
//! message naming the variable.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

mod rate_limit;
pub use rate_limit::{Rate, RateLimitConfig};
mod mail;
pub use mail::{EmailKind, MailerConfig, SmtpConfig};
mod external;
pub use external::{ExternalConfig, ProviderConfig};
mod http;
pub use http::HttpConfig;

/// The Supabase CLI's well-known development secret: published in its documentation and
/// source, so anyone can mint tokens with it. Refused outside the zero-setup mode.
pub const DEV_JWT_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

/// The shortest JWT secret accepted outside the zero-setup mode (GoTrue's documented minimum).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` / `GOTRUE_DB_DATABASE_URL`; `None` means "start a private cluster".
    pub database_url: Option<SecretString>,
    pub db_namespace: String,
    pub db_max_pool_size: u32,
    pub host: String,
    pub port: u16,
    /// `API_EXTERNAL_URL`; when unset, derived from the bound address at start-up.
    pub api_external_url: Option<Url>,
    pub site_url: Url,
    pub uri_allow_list: Vec<String>,
    pub jwt: JwtConfig,
    pub disable_signup: bool,
    pub mailer_autoconfirm: bool,
    pub external_email_enabled: bool,
    pub anonymous_users_enabled: bool,
    pub password: PasswordConfig,
    pub refresh: RefreshConfig,
    pub log_level: String,
    pub max_request_duration: Duration,
    /// Connection limits and timeouts of the HTTP listener.
    pub http: HttpConfig,
    /// `GOTRUE_SMTP_MAX_FREQUENCY`: minimum time between two mails of one kind to one user.
    pub smtp_max_frequency: Duration,
    pub rate_limit: RateLimitConfig,
    pub mailer: MailerConfig,
    /// `GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION` (at least 300 s): how long a PKCE auth
    /// code may wait for its exchange.
    pub flow_state_expiry: Duration,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`: a password change from a
    /// session older than 24 hours needs the `nonce` sent by `GET /reauthenticate`.
    pub update_password_require_reauthentication: bool,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD`: a password change through
    /// `PUT /user` needs `current_password` (not for users without one, nor from a session
    /// started by an emailed link or code).
    pub update_password_require_current_password: bool,
    /// `GOTRUE_EXTERNAL_GITHUB_*`, `GOTRUE_EXTERNAL_GOOGLE_*`: upstream OAuth providers.
    pub external: ExternalConfig,
    /// `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`.
    pub manual_linking_enabled: bool,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `GOTRUE_JWT_SECRET` as given; `startup::jwt_secret` decides whether it may be used (and
    /// makes one in the zero-setup mode).
    pub secret: Option<SecretString>,
    /// Access-token lifetime in seconds.
    pub exp: i64,
    pub aud: String,
    pub default_group_name: String,
    pub admin_roles: Vec<String>,
    pub issuer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub min_length: usize,
    /// Character sets of which a password must contain at least one character each.
    pub required_characters: Vec<String>,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// How many password hashes may run at once (each holds `argon2_memory_kib` of memory).
    pub max_concurrent_hashes: usize,
}

#[derive(Debug, Clone)]
pub struct RefreshConfig {
    pub rotation_enabled: bool,
    pub reuse_interval: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars().collect())
    }

    /// Reads configuration from a map of variables (tests build one without touching the
    /// process environment).
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Config, ConfigError> {
        let env = Env(vars);
        let port = env.parse_or(&["PORT", "GOTRUE_API_PORT"], 9999u16)?;
        let secret = env
            .get(&["GOTRUE_JWT_SECRET", "JWT_SECRET"])
            .map(|(_, s)| SecretString::from(s));

        let db_namespace = env.string_or(
            &["GOTRUE_DB_NAMESPACE", "DB_NAMESPACE", "GOTRUE_DB_DB_NAMESPACE"],
            "auth",
        );
        if !is_sql_identifier(&db_namespace) {
            return Err(ConfigError {
                var: "GOTRUE_DB_NAMESPACE".into(),
                message: format!("{db_namespace:?} is not a plain lower-case SQL identifier"),
            });
        }

        let parallelism = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let config = Config {
            database_url: env
                .get(&["DATABASE_URL", "GOTRUE_DB_DATABASE_URL"])
                .map(|(_, v)| SecretString::from(v)),
            db_namespace,
            db_max_pool_size: env.parse_or(&["GOTRUE_DB_MAX_POOL_SIZE"], 20u32)?.max(1),
            host: env.string_or(&["GOTRUE_API_HOST"], "127.0.0.1"),
            port,
            api_external_url: env.url_opt(&["API_EXTERNAL_URL", "GOTRUE_API_EXTERNAL_URL"])?,
            site_url: env
                .url_opt(&["GOTRUE_SITE_URL", "SITE_URL"])?
                .unwrap_or_else(|| Url::parse("http://localhost:3000").expect("static URL parses")),
            uri_allow_list: env.list(&["GOTRUE_URI_ALLOW_LIST", "URI_ALLOW_LIST"]),
            jwt: JwtConfig {
                secret,
                exp: env.parse_or(&["GOTRUE_JWT_EXP", "JWT_EXP"], 3600i64)?,
                aud: env.string_or(&["GOTRUE_JWT_AUD", "JWT_AUD"], "authenticated"),
                default_group_name: env.string_or(
                    &["GOTRUE_JWT_DEFAULT_GROUP_NAME", "JWT_DEFAULT_GROUP_NAME"],
                    "authenticated",
                ),
                admin_roles: {
                    let roles = env.list(&["GOTRUE_JWT_ADMIN_ROLES", "JWT_ADMIN_ROLES"]);
                    if roles.is_empty() {
                        vec!["service_role".into(), "supabase_admin".into()]
                    } else {
                        roles
                    }
                },
                issuer: env.get(&["GOTRUE_JWT_ISSUER", "JWT_ISSUER"]).map(|(_, v)| v),
            },
            disable_signup: env.bool_or(&["GOTRUE_DISABLE_SIGNUP"], false)?,
            mailer_autoconfirm: env.bool_or(&["GOTRUE_MAILER_AUTOCONFIRM"], false)?,
            external_email_enabled: env.bool_or(&["GOTRUE_EXTERNAL_EMAIL_ENABLED"], true)?,
            anonymous_users_enabled: env.bool_or(&["GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED"], false)?,
            password: PasswordConfig {
                min_length: env.parse_or(&["GOTRUE_PASSWORD_MIN_LENGTH"], 6usize)?.max(6),
                required_characters: parse_required_characters(
                    &env.string_or(&["GOTRUE_PASSWORD_REQUIRED_CHARACTERS"], ""),
                ),
                // OWASP's first recommended argon2id setting: m=19 MiB, t=2, p=1.
                argon2_memory_kib: env.parse_or(&["LATCHKEY_ARGON2_MEMORY_KIB"], 19_456u32)?,
                argon2_iterations: env.parse_or(&["LATCHKEY_ARGON2_ITERATIONS"], 2u32)?,
                argon2_parallelism: env.parse_or(&["LATCHKEY_ARGON2_PARALLELISM"], 1u32)?,
                max_concurrent_hashes: env.parse_or(&["LATCHKEY_MAX_CONCURRENT_HASHES"], parallelism)?.max(1),
            },
            refresh: RefreshConfig {
                rotation_enabled: env.bool_or(&["GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED"], true)?,
                reuse_interval: env.duration_or(
                    &["GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL"],
                    Duration::from_secs(10),
                )?,
            },
            log_level: env.string_or(&["GOTRUE_LOG_LEVEL", "LOG_LEVEL"], "info"),
            max_request_duration: env.duration_or(&["GOTRUE_API_MAX_REQUEST_DURATION"], Duration::from_secs(10))?,
            http: http::from_env(&env)?,
            smtp_max_frequency: env.duration_or(&["GOTRUE_SMTP_MAX_FREQUENCY"], Duration::from_secs(60))?,
            rate_limit: rate_limit::from_env(&env)?,
            mailer: mail::from_env(&env)?,
            flow_state_expiry: env
                .duration_or(
                    &["GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION"],
                    Duration::from_secs(300),
                )?
                .max(Duration::from_secs(300)),
            update_password_require_reauthentication: env
                .bool_or(&["GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION"], false)?,
            update_password_require_current_password: env
                .bool_or(&["GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD"], false)?,
            external: external::from_env(&env)?,
            manual_linking_enabled: env.bool_or(&["GOTRUE_SECURITY_MANUAL_LINKING_ENABLED"], false)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// The zero-setup mode: no `DATABASE_URL` (a private cluster is started) and listening on
    /// the loopback interface only, so nothing beyond this machine can reach the server. Only
    /// then may the server run with a generated secret or the public development secret.
    pub fn zero_setup(&self) -> bool {
        self.database_url.is_none() && is_loopback_host(&self.host)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |var: &str, message: &str| {
            Err(ConfigError {
                var: var.into(),
                message: message.into(),
            })
        };
        if self.jwt.exp <= 0 {
            return fail("GOTRUE_JWT_EXP", "must be a positive number of seconds");
        }
        if self.password.argon2_memory_kib < 8 * self.password.argon2_parallelism.max(1)
            || self.password.argon2_iterations == 0
            || self.password.argon2_parallelism == 0
        {
            return fail("LATCHKEY_ARGON2_MEMORY_KIB", "argon2 parameters are out of range");
        }
        if self.max_request_duration.is_zero() {
            return fail("GOTRUE_API_MAX_REQUEST_DURATION", "must be positive");
        }
        Ok(())
    }
}

/// `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`: `:`-separated sets, `\:` escapes a colon.
fn parse_required_characters(raw: &str) -> Vec<String> {
    let mut sets = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&':') => {
                current.push(':');
                chars.next();
            }
            ':' => sets.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    sets.push(current);
    sets.retain(|s| !s.is_empty());
    sets
}

/// `127.0.0.1`, `::1`, `localhost`: addresses only this machine can connect to.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_sql_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

/// Parses GoTrue durations: a plain number of seconds (`10`) or Go's form (`10s`, `1m30s`,
/// `1h`, `500ms`).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        // `try_`: a huge value (`1e300`) is an error, not a panic.
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = Duration::ZERO;
    let mut rest = raw;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => value / 1e9,
            "us" | "µs" => value / 1e6,
            "ms" => value / 1e3,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return None,
        };
        total = total.checked_add(Duration::try_from_secs_f64(seconds).ok()?)?;
        rest = next;
    }
    Some(total)
}

/// The variables, with helpers that try several names (GoTrue accepts aliases) and turn a bad
/// value into an error naming the variable.
struct Env(HashMap<String, String>);

impl Env {
    /// The first non-empty variable among `names`, with the name that matched.
    fn get(&self, names: &[&str]) -> Option<(String, String)> {
        names.iter().find_map(|name| {
            self.0
                .get(*name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| ((*name).to_owned(), v.to_owned()))
        })
    }

    fn string_or(&self, names: &[&str], default: &str) -> String {
        self.get(names).map(|(_, v)| v).unwrap_or_else(|| default.to_owned())
    }

    fn parse_or<T: std::str::FromStr>(&self, names: &[&str], default: T) -> Result<T, ConfigError> {
        match self.get(names) {
            None => Ok(default),
            Some((var, value)) => value.parse().map_err(|_| ConfigError {
                var,
                message: format!("{value:?} is not a valid {}", short_type_name::<T>()),
            }),
        }
    }

    fn bool_or(&self, names: &[&str], default: bool) -> Result<bool, ConfigError> {
        match self.get(names) {
            None => Ok(default),
            Some((var, value)) => match value.to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "yes" | "on" => Ok(true),
                "0" | "f" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    var,
                    message: format!("{value:?} is not a boolean (true/false)"),
                }),
            },
        }
    }

    fn duration_or(&self, names: &[&str], default: Duration) -> Result<Duration, ConfigError> {
        match self.get(names) {
            None => Ok(default),
            Some((var, value)) => parse_duration(&value).ok_or_else(|| ConfigError {
                var,
                message: format!("{value:?} is not a duration (seconds, or like 10s, 5m, 1h)"),
            }),
        }
    }

    fn url_opt(&self, names: &[&str]) -> Result<Option<Url>, ConfigError> {
        match self.get(names) {
            None => Ok(None),
            Some((var, value)) => match Url::parse(&value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
                _ => Err(ConfigError {
                    var,
                    message: format!("{value:?} is not an http(s) URL"),
                }),
            },
        }
    }

    fn list(&self, names: &[&str]) -> Vec<String> {
        self.get(names)
            .map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "u16" | "u32" | "u64" | "usize" => "non-negative whole number",
        "i64" => "whole number",
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_serve_a_laptop() {
        let config = Config::from_vars(HashMap::new()).unwrap();
        assert_eq!(config.port, 9999);
        assert_eq!(config.jwt.aud, "authenticated");
        assert_eq!(config.jwt.default_group_name, "authenticated");
        assert_eq!(config.jwt.admin_roles, ["service_role", "supabase_admin"]);
        assert!(config.jwt.secret.is_none());
        assert!(config.zero_setup(), "no DATABASE_URL, loopback: zero-setup");
        assert_eq!(config.jwt.exp, 3600);
        assert_eq!(config.db_namespace, "auth");
        assert_eq!(config.refresh.reuse_interval, Duration::from_secs(10));
        assert!(config.database_url.is_none());
    }

    #[test]
    fn aliases_and_values_are_read() {
        let config = Config::from_vars(vars(&[
            ("GOTRUE_DB_DATABASE_URL", "postgres://x@y/z"),
            ("GOTRUE_API_PORT", "8081"),
            ("JWT_SECRET", "s3cret"),
            ("GOTRUE_JWT_ADMIN_ROLES", "boss, admin"),
            ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
            ("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL", "0"),
            ("GOTRUE_PASSWORD_REQUIRED_CHARACTERS", "abc:ABC:\\:x"),
        ]))
        .unwrap();
        assert_eq!(config.port, 8081);
        assert_eq!(
            config
                .jwt
                .secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .as_deref(),
            Some("s3cret")
        );
        assert!(!config.zero_setup(), "a DATABASE_URL is not zero-setup");
        assert_eq!(config.jwt.admin_roles, ["boss", "admin"]);
        assert!(config.mailer_autoconfirm);
        assert_eq!(config.refresh.reuse_interval, Duration::ZERO);
        assert_eq!(config.password.required_characters, ["abc", "ABC", ":x"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("PORT", "ninety"),
            ("GOTRUE_JWT_EXP", "-5"),
            ("GOTRUE_DISABLE_SIGNUP", "maybe"),
            ("GOTRUE_SITE_URL", "not a url"),
            ("GOTRUE_DB_NAMESPACE", "auth; drop table x"),
            ("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL", "ten"),
        ] {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn zero_setup_means_no_database_url_and_loopback_only() {
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"] {
            let config = Config::from_vars(vars(&[("GOTRUE_API_HOST", host)])).unwrap();
            assert!(config.zero_setup(), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.1.5", "example.com"] {
            let config = Config::from_vars(vars(&[("GOTRUE_API_HOST", host)])).unwrap();
            assert!(!config.zero_setup(), "{host}");
        }
    }

    #[test]
    fn connection_limits_are_read_and_checked() {
        let config = Config::from_vars(vars(&[
            ("LATCHKEY_HEADER_READ_TIMEOUT", "2s"),
            ("LATCHKEY_IDLE_TIMEOUT", "30"),
            ("LATCHKEY_MAX_CONNECTIONS", "64"),
        ]))
        .unwrap();
        assert_eq!(config.http.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.http.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.http.max_connections, 64);
        for (var, value) in [
            ("LATCHKEY_HEADER_READ_TIMEOUT", "0"),
            ("LATCHKEY_IDLE_TIMEOUT", "0s"),
            ("LATCHKEY_MAX_CONNECTIONS", "0"),
            ("LATCHKEY_MAX_CONNECTIONS", "lots"),
            ("GOTRUE_API_MAX_REQUEST_DURATION", "1e300"),
        ] {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn durations_accept_go_syntax() {
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("1e300"), None, "too large: an error, not a panic");
        assert_eq!(parse_duration("1e300h"), None);
    }
}
