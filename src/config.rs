//! Configuration: one typed struct, read once from the environment with GoTrue's variable
//! names (a `.env` file is loaded by `main` first). Every bad value stops start-up with a
//! message naming the variable.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

mod rate_limit;
pub use rate_limit::{Rate, RateLimitConfig, RedisFailure, RedisLimits};
mod mail;
pub use mail::{EmailKind, MailerConfig, SmtpConfig};
mod external;
pub use external::{ExternalConfig, ProviderConfig};
mod http;
pub use http::HttpConfig;
mod env;
use env::Env;
pub use env::parse_duration;
mod jwt;
pub use jwt::JwtConfig;
mod password;
pub use password::PasswordConfig;

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
    /// `LATCHKEY_DB_STATEMENT_CACHE`: prepared statements kept per connection (sqlx's default
    /// of 100). `0` for a pooler in transaction mode (PgBouncer, Supavisor): no statement is
    /// then kept or reused across transactions.
    pub db_statement_cache: usize,
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

        let db_namespace = db_namespace(&env)?;

        let parallelism = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let config = Config {
            database_url: env
                .get(&["DATABASE_URL", "GOTRUE_DB_DATABASE_URL"])
                .map(|(_, v)| SecretString::from(v)),
            db_namespace,
            db_max_pool_size: env.parse_or(&["GOTRUE_DB_MAX_POOL_SIZE"], 20u32)?.max(1),
            db_statement_cache: env.parse_or(&["LATCHKEY_DB_STATEMENT_CACHE"], 100usize)?,
            host: env.string_or(&["GOTRUE_API_HOST"], "127.0.0.1"),
            port,
            api_external_url: env.url_opt(&["API_EXTERNAL_URL", "GOTRUE_API_EXTERNAL_URL"])?,
            site_url: env
                .url_opt(&["GOTRUE_SITE_URL", "SITE_URL"])?
                .unwrap_or_else(|| Url::parse("http://localhost:3000").expect("static URL parses")),
            uri_allow_list: env.list(&["GOTRUE_URI_ALLOW_LIST", "URI_ALLOW_LIST"]),
            jwt: jwt::from_env(&env, secret)?,
            disable_signup: env.bool_or(&["GOTRUE_DISABLE_SIGNUP"], false)?,
            mailer_autoconfirm: env.bool_or(&["GOTRUE_MAILER_AUTOCONFIRM"], false)?,
            external_email_enabled: env.bool_or(&["GOTRUE_EXTERNAL_EMAIL_ENABLED"], true)?,
            anonymous_users_enabled: env.bool_or(&["GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED"], false)?,
            password: password::from_env(&env, parallelism)?,
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

/// `GOTRUE_DB_NAMESPACE`: the schema of Latchkey's tables, named in SQL, so a plain identifier.
fn db_namespace(env: &Env) -> Result<String, ConfigError> {
    let namespace = env.string_or(
        &["GOTRUE_DB_NAMESPACE", "DB_NAMESPACE", "GOTRUE_DB_DB_NAMESPACE"],
        "auth",
    );
    if !is_sql_identifier(&namespace) {
        return Err(ConfigError {
            var: "GOTRUE_DB_NAMESPACE".into(),
            message: format!("{namespace:?} is not a plain lower-case SQL identifier"),
        });
    }
    Ok(namespace)
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
            ("LATCHKEY_DB_STATEMENT_CACHE", "off"),
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
}
