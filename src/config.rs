//! Configuration: one typed struct, read once from the environment with GoTrue's variable
//! names (a `.env` file is loaded by `main` first). Every bad value stops start-up with a
//! message naming the variable.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

mod rate_limit;
pub use rate_limit::{Rate, RateLimitConfig, RedisFailure, RedisLimits};
mod mail;
pub use mail::{EmailKind, LinkPath, MailerConfig, Sender, SmtpConfig, TemplateFetch, TemplateSource};
mod external;
pub use external::{CustomOAuthConfig, ExternalConfig, ProviderConfig};
mod http;
pub use http::HttpConfig;
mod env;
use env::Env;
pub use env::parse_duration;
mod jwt;
pub use jwt::JwtConfig;
mod password;
pub use password::PasswordConfig;
mod observability;
pub use observability::{LogConfig, LogFormat, MetricsConfig};
mod report;
pub use report::{UnreadVariable, gotrue_variables};
mod mfa;
pub use mfa::MfaConfig;
mod hooks;
pub use hooks::{HookConfig, HookKind, HookTarget, HooksConfig};
mod sms;
pub use sms::{DEFAULT_SMS_TEMPLATE, SmsConfig, SmsProvider};

/// The Supabase CLI's well-known development secret: published in its documentation and
/// source, so anyone can mint tokens with it. Refused outside the zero-setup mode.
pub const DEV_JWT_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

/// Where the zero-setup mode keeps its private PostgreSQL cluster, secrets and mail.
pub const DEV_DATA_DIR: &str = ".latchkey";

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
    /// `GOTRUE_LOG_LEVEL`, `LATCHKEY_LOG_FORMAT`.
    pub log: LogConfig,
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
    /// `GOTRUE_EXTERNAL_<PROVIDER>_*`: upstream OAuth providers; `GOTRUE_CUSTOM_OAUTH_*`.
    pub external: ExternalConfig,
    /// `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`.
    pub manual_linking_enabled: bool,
    /// `GOTRUE_METRICS_*`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `GOTRUE_API_REQUEST_ID_HEADER`.
    pub request_id_header: Option<axum::http::HeaderName>,
    /// What the start-up report says, one warning a line: set variables nothing reads,
    /// localhost defaults on a server others can reach, settings Latchkey cannot honour.
    pub warnings: Vec<String>,
    /// `GOTRUE_MFA_*`: TOTP factors.
    pub mfa: MfaConfig,
    /// `GOTRUE_HOOK_*`: the auth hooks that are switched on.
    pub hooks: HooksConfig,
    /// `GOTRUE_EXTERNAL_PHONE_ENABLED`, `GOTRUE_SMS_*`: phone sign-in and the SMS gateway.
    pub sms: SmsConfig,
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

    /// Reads only the variables `wanted` keeps, the others taking their defaults: for the
    /// commands that do not serve (`keys`, `migrate`, `healthcheck`), so that a bad value of an
    /// unrelated setting does not stop them.
    pub fn from_env_only(wanted: impl Fn(&str) -> bool) -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars().filter(|(name, _)| wanted(name)).collect())
    }

    /// `GOTRUE_LOG_LEVEL` and `LATCHKEY_LOG_FORMAT` alone, for setting up the logs before
    /// anything else is read.
    pub fn log_from_env() -> Result<LogConfig, ConfigError> {
        observability::log_config(&Env::new(std::env::vars().collect()))
    }

    /// Reads configuration from a map of variables (tests build one without touching the
    /// process environment).
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Config, ConfigError> {
        Config::read(Env::new(vars)).map(|(config, _)| config)
    }

    /// The configuration, and the name of every variable looked up for it.
    fn read(env: Env) -> Result<(Config, BTreeSet<String>), ConfigError> {
        let port = env.parse_or(&["PORT", "GOTRUE_API_PORT"], 9999u16)?;
        let secret = env
            .get(&["GOTRUE_JWT_SECRET", "JWT_SECRET"])
            .map(|(_, s)| SecretString::from(s));

        let db_namespace = db_namespace(&env)?;

        let parallelism = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let host = env.string_or(&["GOTRUE_API_HOST"], "127.0.0.1");
        let mut warnings = Vec::new();
        let metrics = observability::metrics_config(&env, &host, &mut warnings)?;
        db_driver(&env)?;
        let rate_limit = rate_limit::from_env(&env)?;
        let sms = sms::from_env(&env, rate_limit.sms_sent)?;
        let mut config = Config {
            database_url: env
                .get(&["DATABASE_URL", "GOTRUE_DB_DATABASE_URL"])
                .map(|(_, v)| SecretString::from(v)),
            db_namespace,
            db_max_pool_size: env.parse_or(&["GOTRUE_DB_MAX_POOL_SIZE"], 20u32)?.max(1),
            db_statement_cache: env.parse_or(&["LATCHKEY_DB_STATEMENT_CACHE"], 100usize)?,
            host,
            port,
            api_external_url: env.url_opt(&[
                "API_EXTERNAL_URL",
                "GOTRUE_API_EXTERNAL_URL",
                "GOTRUE_API_API_EXTERNAL_URL",
            ])?,
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
            log: observability::log_config(&env)?,
            max_request_duration: env.duration_or(&["GOTRUE_API_MAX_REQUEST_DURATION"], Duration::from_secs(10))?,
            http: http::from_env(&env)?,
            smtp_max_frequency: env.duration_or(&["GOTRUE_SMTP_MAX_FREQUENCY"], Duration::from_secs(60))?,
            rate_limit,
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
            metrics,
            request_id_header: observability::request_id_header(&env)?,
            warnings: Vec::new(),
            mfa: mfa::from_env(&env)?,
            hooks: hooks::from_env(&env)?,
            sms,
        };
        config.validate()?;
        // With nothing else installed, mail lands beside the private database, where
        // `latchkey mail` reads it.
        if config.mailer.folder.is_none() && config.zero_setup() {
            config.mailer.folder = Some(std::path::Path::new(DEV_DATA_DIR).join("mail"));
        }
        warnings.extend(localhost_defaults(&env, &config.host));
        let unread = report::unread_variables(env.vars(), &env.names_read());
        warnings.extend(unread.iter().map(UnreadVariable::warning));
        config.warnings = warnings;
        Ok((config, env.names_read()))
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
        // GoTrue answers a 500 to every challenge then; better said once, at start-up.
        let sends_sms = self.sms.provider.is_some() || self.hooks.send_sms.is_some();
        for (var, on) in [
            ("GOTRUE_MFA_PHONE_ENROLL_ENABLED", self.mfa.phone_enroll_enabled),
            ("GOTRUE_MFA_PHONE_VERIFY_ENABLED", self.mfa.phone_verify_enabled),
        ] {
            if on && !sends_sms {
                return fail(var, "phone factors need GOTRUE_SMS_PROVIDER or the send-SMS hook");
            }
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

/// `GOTRUE_DB_DRIVER` (set by Supabase's compose file): GoTrue's only driver is `postgres`,
/// and so is Latchkey's.
fn db_driver(env: &Env) -> Result<(), ConfigError> {
    match env.get(&["GOTRUE_DB_DRIVER", "DB_DRIVER"]) {
        Some((var, value)) if !value.eq_ignore_ascii_case("postgres") => Err(ConfigError {
            var,
            message: format!("{value:?} is not supported; Latchkey runs on PostgreSQL (postgres)"),
        }),
        _ => Ok(()),
    }
}

/// On a server others can reach, links and redirects that point at `localhost` work for
/// nobody: the warnings for the two URLs left at their laptop defaults.
fn localhost_defaults(env: &Env, host: &str) -> Vec<String> {
    if is_loopback_host(host) {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    if env.get(&["GOTRUE_SITE_URL", "SITE_URL"]).is_none() {
        warnings.push(format!(
            "GOTRUE_SITE_URL is not set: redirects go to http://localhost:3000, although the server \
             listens on {host}; set it to your app's URL"
        ));
    }
    if env
        .get(&[
            "API_EXTERNAL_URL",
            "GOTRUE_API_EXTERNAL_URL",
            "GOTRUE_API_API_EXTERNAL_URL",
        ])
        .is_none()
    {
        warnings.push(format!(
            "API_EXTERNAL_URL is not set: email links and OAuth callbacks use this server's own \
             address (localhost when it listens on {host}); set it to the URL clients reach it at"
        ));
    }
    warnings
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
            ("LATCHKEY_HTTP_THREADS", "3"),
        ]))
        .unwrap();
        assert_eq!(config.http.threads, 3);
        assert_eq!(config.http.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.http.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.http.max_connections, 64);
        for (var, value) in [
            ("LATCHKEY_HEADER_READ_TIMEOUT", "0"),
            ("LATCHKEY_IDLE_TIMEOUT", "0s"),
            ("LATCHKEY_MAX_CONNECTIONS", "0"),
            ("LATCHKEY_MAX_CONNECTIONS", "lots"),
            ("LATCHKEY_HTTP_THREADS", "0"),
            ("LATCHKEY_HTTP_THREADS", "40000"),
            ("GOTRUE_API_MAX_REQUEST_DURATION", "1e300"),
        ] {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn localhost_defaults_are_reported_on_a_reachable_server() {
        let warnings = |pairs: &[(&str, &str)]| Config::from_vars(vars(pairs)).unwrap().warnings;
        let open = warnings(&[("GOTRUE_API_HOST", "0.0.0.0")]);
        assert!(
            open.iter().any(|w| w.starts_with("GOTRUE_SITE_URL is not set")),
            "{open:?}"
        );
        assert!(
            open.iter().any(|w| w.starts_with("API_EXTERNAL_URL is not set")),
            "{open:?}"
        );
        let set = warnings(&[
            ("GOTRUE_API_HOST", "0.0.0.0"),
            ("GOTRUE_SITE_URL", "https://app.example.com"),
            ("API_EXTERNAL_URL", "https://auth.example.com"),
        ]);
        assert!(set.is_empty(), "{set:?}");
        assert!(warnings(&[]).is_empty(), "a laptop's defaults are right on a laptop");
    }

    #[test]
    fn metrics_take_gotrues_variables() {
        let config = Config::from_vars(HashMap::new()).unwrap();
        assert!(!config.metrics.enabled);
        let config = Config::from_vars(vars(&[
            ("GOTRUE_METRICS_ENABLED", "true"),
            ("GOTRUE_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "9464"),
            ("GOTRUE_API_HOST", "0.0.0.0"),
        ]))
        .unwrap();
        assert_eq!(
            config.metrics,
            MetricsConfig {
                enabled: true,
                host: "0.0.0.0".into(),
                port: 9464
            }
        );
        let prefixed = Config::from_vars(vars(&[
            ("GOTRUE_METRICS_ENABLED", "true"),
            ("GOTRUE_METRICS_OTEL_EXPORTER_PROMETHEUS_HOST", "10.0.0.5"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "10.0.0.6"),
        ]))
        .unwrap();
        assert_eq!(
            (prefixed.metrics.host.as_str(), prefixed.metrics.port),
            ("10.0.0.5", 9100)
        );
        let otel = Config::from_vars(vars(&[
            ("GOTRUE_METRICS_ENABLED", "true"),
            ("GOTRUE_METRICS_EXPORTER", "opentelemetry"),
        ]))
        .unwrap();
        assert!(!otel.metrics.enabled);
        assert!(otel.warnings.iter().any(|w| w.contains("GOTRUE_METRICS_EXPORTER")));
        for (var, value) in [
            ("GOTRUE_METRICS_EXPORTER", "statsd"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "99999"),
            ("GOTRUE_LOG_LEVEL", "loud"),
            ("LATCHKEY_LOG_FORMAT", "xml"),
            ("GOTRUE_API_REQUEST_ID_HEADER", "bad header"),
            ("GOTRUE_DB_DRIVER", "mysql"),
        ] {
            let err = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    /// The names of the variables read with every optional feature on (SMTP, metrics, the
    /// providers), so that the ones read only then count too.
    fn names_read_with_every_feature_on() -> BTreeSet<String> {
        // Every provider Latchkey implements, named (off: its settings are looked up anyway).
        let providers = [
            "APPLE",
            "AZURE",
            "BITBUCKET",
            "DISCORD",
            "FACEBOOK",
            "FIGMA",
            "FLY",
            "GITLAB",
            "KAKAO",
            "KEYCLOAK",
            "LINKEDIN_OIDC",
            "NOTION",
            "SLACK_OIDC",
            "SNAPCHAT",
            "SPOTIFY",
            "TWITCH",
            "WORKOS",
            "X",
            "ZOOM",
        ]
        .map(|p| (format!("GOTRUE_EXTERNAL_{p}_ENABLED"), "false".to_owned()));
        let mut all = vars(&[
            ("GOTRUE_SMTP_HOST", "mail"),
            ("GOTRUE_METRICS_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_GITHUB_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_GITHUB_CLIENT_ID", "id"),
            ("GOTRUE_EXTERNAL_GITHUB_SECRET", "s"),
            ("GOTRUE_EXTERNAL_GOOGLE_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID", "id"),
            ("GOTRUE_EXTERNAL_GOOGLE_SECRET", "s"),
        ]);
        all.extend(providers);
        let (_, read) = Config::read(Env::new(all)).unwrap();
        read
    }

    #[test]
    fn a_provider_switched_off_keeps_its_settings_without_warnings() {
        let config = Config::from_vars(vars(&[
            ("GOTRUE_EXTERNAL_APPLE_ENABLED", "false"),
            ("GOTRUE_EXTERNAL_APPLE_CLIENT_ID", "id"),
            ("GOTRUE_EXTERNAL_APPLE_SECRET", "s"),
            ("GOTRUE_EXTERNAL_APPLE_SKIP_NONCE_CHECK", "true"),
            ("GOTRUE_EXTERNAL_APPLE_REDIRECT_URI", "not even a URL"),
        ]))
        .unwrap();
        assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
    }

    /// The names `report::READ_WHEN_ENABLED` excuses are really read once their feature is on.
    #[test]
    fn variables_read_only_when_enabled_are_read_then() {
        let read = names_read_with_every_feature_on();
        for name in report::READ_WHEN_ENABLED {
            assert!(read.contains(*name), "{name} is not read");
        }
    }

    /// Prints the GoTrue settings Latchkey does not support, the ones the start-up report
    /// would name (for the README and release notes):
    /// `cargo test --lib print_unsupported_gotrue_settings -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints a list"]
    fn print_unsupported_gotrue_settings() {
        let read = names_read_with_every_feature_on();
        let unsupported: Vec<&str> = gotrue_variables().filter(|name| !read.contains(*name)).collect();
        assert!(!unsupported.contains(&"GOTRUE_SITE_URL") && unsupported.contains(&"GOTRUE_SECURITY_CAPTCHA_PROVIDER"));
        println!(
            "{} of GoTrue's {} variables are not supported:",
            unsupported.len(),
            gotrue_variables().count()
        );
        for name in unsupported {
            println!("{name}");
        }
    }

    /// Every variable Latchkey reads, set to values that break naive parsing: an error naming
    /// it or a working configuration, never a panic.
    #[test]
    fn no_value_makes_reading_panic() {
        let (_, read) = Config::read(Env::new(vars(&[("GOTRUE_SMTP_HOST", "mail")]))).unwrap();
        let nasty = [
            "1e300",
            "1e15",
            "-1",
            "NaN",
            "inf",
            "-0",
            "0",
            "",
            " ",
            "18446744073709551616",
            "x",
            "1h1e9s",
            "🙂",
            "a,b,,c",
            "::",
            "http://",
            "true",
            "2562048h",
        ];
        for name in read {
            for value in nasty {
                let vars = vars(&[("GOTRUE_SMTP_HOST", "mail"), (name.as_str(), value)]);
                let read = std::panic::catch_unwind(|| Config::from_vars(vars));
                assert!(read.is_ok(), "{name}={value:?} panics");
            }
        }
    }

    /// `.env.example` documents variables Latchkey reads: copied as it is, it gives a working
    /// configuration and not one warning about an unread variable.
    #[test]
    fn the_example_env_file_is_read_whole() {
        let example = include_str!("../.env.example");
        let pairs: HashMap<String, String> = example
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        assert!(pairs.len() > 50, "{}", pairs.len());
        let config = Config::from_vars(pairs).unwrap();
        assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
    }
}
