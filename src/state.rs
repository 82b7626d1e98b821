//! Shared application state, cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use secrecy::SecretString;
use sqlx::PgPool;
use url::Url;

use crate::api::client_ip::ClientIps;
use crate::api::ratelimit::RateLimits;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::Hasher;
use crate::auth::redirect::RedirectPolicy;
use crate::auth::refresh::RefreshKey;
use crate::auth::send_timing::SendTiming;
use crate::config::{Config, ConfigError};
use crate::db::hot::HotPool;
use crate::mail::Mailer;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub db: PgPool,
    /// Connections for the hot paths (no ping on release); see `db::hot`.
    pub hot: HotPool,
    pub config: Config,
    pub jwt: JwtKeys,
    pub refresh_key: RefreshKey,
    pub hasher: Hasher,
    /// Which `redirect_to` values may be followed: the site URL and the allow list,
    /// compiled once here.
    pub redirects: RedirectPolicy,
    /// Per-address limiters and the global email limiter.
    pub rate_limits: RateLimits,
    /// Who the client is: the rule the limiter, the audit log and sessions share.
    pub client_ips: ClientIps,
    /// `API_EXTERNAL_URL`, or the address the server bound to.
    pub external_url: Url,
    /// SMTP, or the log when no SMTP host is configured.
    pub mailer: Arc<dyn Mailer>,
    /// For calls to OAuth providers: no redirects followed (the OAuth 2 security advice for
    /// token requests), GoTrue's 10 s timeout.
    pub http: reqwest::Client,
    /// Recent durations of `/recover` and `/resend` sends, to time the answers that send
    /// nothing the same.
    pub send_timing: SendTiming,
}

impl AppState {
    /// `jwt_secret` is the one `startup::jwt_secret` chose.
    pub fn new(config: Config, db: PgPool, external_url: Url, jwt_secret: &SecretString) -> anyhow::Result<AppState> {
        let jwt = JwtKeys::new(jwt_secret);
        let refresh_key = RefreshKey::derive(jwt_secret);
        let hasher = Hasher::new(&config.password)?;
        let redirects =
            RedirectPolicy::new(config.site_url.clone(), &config.uri_allow_list).map_err(|err| ConfigError {
                var: "GOTRUE_URI_ALLOW_LIST".into(),
                message: err.to_string(),
            })?;
        let hot = HotPool::new(
            (*db.connect_options()).clone(),
            crate::db::hot_pool_size(&config),
            crate::db::ACQUIRE_TIMEOUT,
        );
        let rate_limits = RateLimits::new(&config.rate_limit, config.mailer_autoconfirm);
        let client_ips = ClientIps::new(&config.rate_limit);
        log_client_address_rule(&config.rate_limit);
        let mailer = crate::mail::from_config(&config.mailer)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(AppState(Arc::new(Shared {
            db,
            hot,
            config,
            jwt,
            refresh_key,
            hasher,
            redirects,
            rate_limits,
            client_ips,
            external_url,
            mailer,
            http,
            send_timing: SendTiming::default(),
        })))
    }
}

/// One start-up line on how clients are told apart.
fn log_client_address_rule(config: &crate::config::RateLimitConfig) {
    let trusted = || {
        let ranges: Vec<String> = config.trusted_proxies.iter().map(ToString::to_string).collect();
        ranges.join(",")
    };
    match (config.enabled, &config.header) {
        (false, _) => tracing::warn!("per-address rate limiting is off"),
        (true, None) => tracing::info!(
            "rate limiting by socket address; behind a proxy, set GOTRUE_RATE_LIMIT_HEADER \
             or every client shares the proxy's budget"
        ),
        (true, Some(header)) => tracing::info!(
            %header,
            trusted_proxies = %trusted(),
            "rate limiting by client address from header, read only from LATCHKEY_TRUSTED_PROXIES"
        ),
    }
    if config.enabled && !config.limit_loopback {
        tracing::warn!(
            "LATCHKEY_RATE_LIMIT_LOOPBACK=false: clients connecting from the loopback address are \
             not rate-limited"
        );
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
