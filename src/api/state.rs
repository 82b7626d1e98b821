//! Shared application state, cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use crate::db::Pool;
use secrecy::SecretString;
use url::Url;

use crate::api::client_ip::ClientIps;
use crate::auth::accounts::AccountRules;
use crate::auth::attempt_hooks::MfaAttemptHook;
use crate::auth::codes::Codes;
use crate::auth::email_hook::EmailHook;
use crate::auth::jwt::{JwtKeys, TokenIssuer};
use crate::auth::mfa::phone::PhoneCodes;
use crate::auth::mfa::{MfaVerificationHook, NoHook};
use crate::auth::outbox::Outbox;
use crate::auth::password::Hasher;
use crate::auth::redirect::RedirectPolicy;
use crate::auth::refresh::RefreshKey;
use crate::auth::send_timing::SendTiming;
use crate::auth::session::Sessions;
use crate::config::{Config, ConfigError};
use crate::db::hot::HotPool;
use crate::hooks::Hook;
use crate::providers::Registry;
use crate::ratelimit::{Limiter, MemoryLimiter, RedisLimiter};

#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub db: Pool,
    /// Connections for the hot paths (no ping on release); see `db::hot`.
    pub hot: HotPool,
    pub config: Config,
    /// The rules for new accounts (audience, role, sign-up, autoconfirm).
    pub accounts: AccountRules,
    /// Checking one-time codes and links.
    pub codes: Codes,
    /// Access tokens (minted and verified) and refresh-token rotation.
    pub sessions: Sessions,
    pub hasher: Hasher,
    /// Which `redirect_to` values may be followed: the site URL and the allow list,
    /// compiled once here.
    pub redirects: RedirectPolicy,
    /// Per-address limiters and the global email limiter.
    pub limiter: Arc<dyn Limiter>,
    /// Who the client is: the rule the limiter, the audit log and sessions share.
    pub client_ips: ClientIps,
    /// `API_EXTERNAL_URL`, or the address the server bound to.
    pub external_url: Url,
    /// Where mails go out: SMTP, or the log when no SMTP host is configured.
    pub outbox: Outbox,
    /// The enabled OAuth providers, with the HTTP client and key caches they share.
    pub providers: Registry,
    /// Recent durations of `/recover` and `/resend` sends, to time the answers that send
    /// nothing the same.
    pub send_timing: SendTiming,
    /// The last answer of the readiness check (`GET /health/ready`).
    pub readiness: crate::api::readiness::Readiness,
    /// `GOTRUE_HOOK_MFA_VERIFICATION_ATTEMPT_*`, or `NoHook` (`auth::mfa::hook`).
    pub mfa_hook: Arc<dyn MfaVerificationHook>,
    /// How phone factors' codes go out (`GOTRUE_MFA_PHONE_*`, the SMS provider or hook).
    pub mfa_phone: PhoneCodes,
    /// `GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_*`.
    pub password_hook: Option<Hook>,
}

impl AppState {
    /// `jwt_secret` and `keys` are the ones `startup::jwt_keys` chose.
    pub fn new(
        config: Config,
        db: Pool,
        external_url: Url,
        jwt_secret: &SecretString,
        keys: JwtKeys,
    ) -> anyhow::Result<AppState> {
        let sessions = Sessions::new(
            TokenIssuer::new(keys, &config.jwt),
            RefreshKey::derive(jwt_secret),
            config.refresh.clone(),
        )
        .with_access_token_hook(config.hooks.custom_access_token.as_ref().map(Hook::new).transpose()?);
        let hasher = Hasher::new(&config.password)?;
        let redirects =
            RedirectPolicy::new(config.site_url.clone(), &config.uri_allow_list).map_err(|err| ConfigError {
                var: "GOTRUE_URI_ALLOW_LIST".into(),
                message: err.to_string(),
            })?;
        let hot = HotPool::new(
            &db,
            crate::db::hot_pool_size(&config),
            config.http.threads,
            crate::db::ACQUIRE_TIMEOUT,
        );
        let limiter = limiter(&config)?;
        let client_ips = ClientIps::new(&config.rate_limit);
        log_client_address_rule(&config.rate_limit);
        let mailer: Arc<dyn crate::mail::Mailer> = if config.hooks.send_email.is_some() {
            // Nothing goes through SMTP: no warning about a missing SMTP host.
            tracing::info!("GOTRUE_HOOK_SEND_EMAIL_ENABLED: every mail goes to the send-email hook, none through SMTP");
            Arc::new(crate::mail::LogMailer)
        } else {
            crate::mail::from_config(&config.mailer)?
        };
        let mailer = crate::telemetry::CountingMailer::wrap(mailer);
        let accounts = AccountRules::from_config(&config).with_user_hooks(
            config.hooks.before_user_created.as_ref().map(Hook::new).transpose()?,
            config.hooks.after_user_created.as_ref().map(Hook::new).transpose()?,
        );
        let codes = Codes::new(db.clone(), &config);
        let email_hook = config.hooks.send_email.as_ref().map(Hook::new).transpose()?;
        let outbox = Outbox::new(mailer, limiter.clone(), &config, &external_url)?
            .with_email_hook(email_hook.map(|hook| EmailHook::new(hook, &external_url, &config.site_url)));
        let providers = Registry::new(&config.external, &external_url)?;
        let hooks = &config.hooks;
        let password_hook = hooks
            .password_verification_attempt
            .as_ref()
            .map(Hook::new)
            .transpose()?;
        let mfa_hook: Arc<dyn MfaVerificationHook> = match &hooks.mfa_verification_attempt {
            Some(hook) => Arc::new(MfaAttemptHook::new(Hook::new(hook)?, db.clone())),
            None => Arc::new(NoHook),
        };
        let mfa_phone = PhoneCodes::new(&config)?;
        Ok(AppState(Arc::new(Shared {
            db,
            hot,
            config,
            accounts,
            codes,
            sessions,
            hasher,
            redirects,
            limiter,
            client_ips,
            external_url,
            outbox,
            providers,
            send_timing: SendTiming::default(),
            readiness: Default::default(),
            mfa_hook,
            mfa_phone,
            password_hook,
        })))
    }
}

/// The rate-limit store: Redis when `LATCHKEY_RATE_LIMIT_REDIS_URL` names one (every replica
/// shares the budgets), this process's memory otherwise.
fn limiter(config: &Config) -> anyhow::Result<Arc<dyn Limiter>> {
    let limits = &config.rate_limit;
    Ok(match &limits.redis {
        Some(redis) => Arc::new(RedisLimiter::new(limits, redis, config.mailer_autoconfirm)?),
        None => Arc::new(MemoryLimiter::new(limits, config.mailer_autoconfirm)),
    })
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
