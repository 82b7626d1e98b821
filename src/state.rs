//! Shared application state, cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use sqlx::PgPool;
use url::Url;

use crate::api::ratelimit::RateLimits;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::Hasher;
use crate::auth::refresh::RefreshKey;
use crate::auth::send_timing::SendTiming;
use crate::config::Config;
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
    /// Per-address limiters and the global email limiter.
    pub rate_limits: RateLimits,
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
    pub fn new(config: Config, db: PgPool, external_url: Url) -> anyhow::Result<AppState> {
        let jwt = JwtKeys::new(&config.jwt.secret);
        let refresh_key = RefreshKey::derive(&config.jwt.secret);
        let hasher = Hasher::new(&config.password)?;
        let hot = HotPool::new(
            (*db.connect_options()).clone(),
            crate::db::hot_pool_size(&config),
            crate::db::ACQUIRE_TIMEOUT,
        );
        let rate_limits = RateLimits::new(&config.rate_limit, config.mailer_autoconfirm);
        match (&config.rate_limit.enabled, &config.rate_limit.header) {
            (false, _) => tracing::warn!("per-address rate limiting is off"),
            (true, None) => tracing::info!(
                "rate limiting by socket address; behind a proxy, set GOTRUE_RATE_LIMIT_HEADER \
                 or every client shares the proxy's budget"
            ),
            (true, Some(header)) => {
                tracing::info!(%header, "rate limiting by client address from header")
            }
        }
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
            rate_limits,
            external_url,
            mailer,
            http,
            send_timing: SendTiming::default(),
        })))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
