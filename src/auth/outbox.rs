//! Where one-time codes and links go out: the mailer, the server's mail budget
//! (`GOTRUE_RATE_LIMIT_EMAIL_SENT`), the links and the templates; and the SMS gateway with
//! its settings, template and budget (`GOTRUE_RATE_LIMIT_SMS_SENT`, [`Outbox::sms`]). The
//! flows in `auth::email` and `auth::phone` decide what to send; this sends it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::auth::email_hook::EmailHook;
use crate::config::{Config, ConfigError, LinkPath, MailerConfig, SmsConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::hooks::Hook;
use crate::mail::templates::{Rendered, TemplateData, Templates};
use crate::mail::{self, Email, EmailKind, Mailer};
use crate::ratelimit::Limiter;
use crate::sms::{self, SmsTemplate};

#[derive(Debug, Clone)]
pub struct Outbox {
    mailer: Arc<dyn Mailer>,
    budget: Arc<dyn Limiter>,
    /// Where each kind of link points, before its query (see [`link_base`]).
    link_bases: HashMap<LinkPath, Url>,
    site_url: Url,
    settings: MailerConfig,
    templates: Arc<Templates>,
    max_frequency: Duration,
    /// How codes are texted; `None` when the phone provider is off, or neither a gateway nor
    /// the send-SMS hook is configured.
    texter: Option<Texter>,
    sms_settings: Arc<SmsConfig>,
    /// `GOTRUE_SMS_TEMPLATE`, parsed once.
    sms_template: SmsTemplate,
    /// `GOTRUE_HOOK_SEND_EMAIL_*`: when set, mails go to it instead of `mailer`.
    email_hook: Option<EmailHook>,
}

/// How a code is texted: through the send-SMS hook when it is on (GoTrue then never asks the
/// gateway), else through the configured gateway.
#[derive(Debug, Clone)]
pub enum Texter {
    Hook(Hook),
    Gateway(sms::Sender),
}

impl Texter {
    /// Twilio Verify makes and checks the codes itself (never with the hook, as in GoTrue).
    pub fn gateway_checks_codes(&self) -> Option<&sms::Sender> {
        match self {
            Texter::Gateway(sender) if sender.checks_codes_itself() => Some(sender),
            _ => None,
        }
    }

    /// Whether `channel` can be used (GoTrue's `IsValidMessageChannel`: any with the hook).
    pub fn supports(&self, channel: sms::Channel) -> bool {
        match self {
            Texter::Hook(_) => true,
            Texter::Gateway(sender) => sender.supports(channel),
        }
    }
}

/// What a client asked to do with a phone number. GoTrue's refusal without an SMS provider
/// depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneUse {
    /// Sign up with a phone number (`POST /signup`).
    SignUp,
    /// Set or change the user's phone number (`PUT /user`).
    ChangeNumber,
    /// Have a code sent by SMS (`POST /otp`, `GET /reauthenticate`).
    SendCode,
    /// Have a code sent again (`POST /resend`).
    Resend,
    /// Check a code sent by SMS (`POST /verify`).
    VerifyCode,
}

impl PhoneUse {
    /// GoTrue's message when the phone provider is off.
    fn refusal(self) -> &'static str {
        match self {
            PhoneUse::SignUp => "Phone signups are disabled",
            PhoneUse::ChangeNumber | PhoneUse::Resend => "Phone logins are disabled",
            PhoneUse::SendCode | PhoneUse::VerifyCode => "Unsupported phone provider",
        }
    }
}

impl Outbox {
    /// `external_url` is where this server is reached (`API_EXTERNAL_URL`, or the bound
    /// address); links in mails point there (or where `GOTRUE_MAILER_URLPATHS_*` say). Fails
    /// on a configured template that does not compile, naming its variable.
    pub fn new(
        mailer: Arc<dyn Mailer>,
        budget: Arc<dyn Limiter>,
        config: &Config,
        external_url: &Url,
    ) -> anyhow::Result<Outbox> {
        let mut link_bases = HashMap::new();
        for path in LinkPath::ALL {
            let configured = config.mailer.url_paths.get(&path).map(String::as_str);
            link_bases.insert(path, link_base(external_url, path, configured)?);
        }
        Ok(Outbox {
            mailer,
            budget,
            link_bases,
            site_url: config.site_url.clone(),
            settings: config.mailer.clone(),
            templates: Arc::new(Templates::new(&config.mailer)?),
            max_frequency: config.smtp_max_frequency,
            texter: texter(config)?,
            sms_settings: Arc::new(config.sms.clone()),
            sms_template: SmsTemplate::new(&config.sms.template)?,
            email_hook: None,
        })
    }

    /// Sends every mail through the send-email hook instead of the mailer.
    pub fn with_email_hook(mut self, hook: Option<EmailHook>) -> Outbox {
        self.email_hook = hook;
        self
    }

    pub fn email_hook(&self) -> Option<&EmailHook> {
        self.email_hook.as_ref()
    }

    /// The SMS sender for `asked`, or GoTrue's `400 phone_provider_disabled` with its message
    /// for that use when none is configured. The one place that decides whether anything
    /// about phones can go on.
    pub fn sms(&self, asked: PhoneUse) -> Result<&Texter> {
        self.texter
            .as_ref()
            .ok_or_else(|| Error::bad_request(ErrorCode::PhoneProviderDisabled, asked.refusal()))
    }

    /// `GOTRUE_SMS_*`: autoconfirm, the codes' length, lifetime and frequency, the test
    /// numbers.
    pub fn sms_settings(&self) -> &SmsConfig {
        &self.sms_settings
    }

    /// The text carrying `code` (`GOTRUE_SMS_TEMPLATE`); GoTrue's 500 when it cannot render.
    pub fn sms_text(&self, code: &str) -> Result<String> {
        self.sms_template
            .render(code)
            .map_err(|err| Error::internal(format!("error generating sms template: {err}")))
    }

    /// One unit of the server's text-message budget (`GOTRUE_RATE_LIMIT_SMS_SENT`), before a
    /// message goes out; GoTrue's 429 when it is spent.
    pub async fn take_sms_budget(&self) -> Result<()> {
        self.budget
            .take_sms()
            .await
            .map_err(|_| Error::too_many_requests(ErrorCode::OverSmsSendRateLimit, "SMS rate limit exceeded"))
    }

    /// Subjects, templates, and the codes' length and lifetime.
    pub fn settings(&self) -> &MailerConfig {
        &self.settings
    }

    /// `GOTRUE_SMTP_MAX_FREQUENCY`: the same kind of mail goes to a user at most this often.
    pub fn max_frequency(&self) -> Duration {
        self.max_frequency
    }

    pub fn site_url(&self) -> &Url {
        &self.site_url
    }

    /// The link a mail carries: `<base>?token=<hash>&type=<type>&redirect_to=<r>`, where the
    /// base is `GOTRUE_MAILER_URLPATHS_<path>` resolved against `API_EXTERNAL_URL`, or
    /// `<API_EXTERNAL_URL>/verify`.
    pub fn verification_link(&self, path: LinkPath, token_hash: &str, link_type: &str, redirect_to: &str) -> String {
        // Every path has a base: `new` made one for each of `LinkPath::ALL`.
        let base = &self.link_bases[&path];
        verification_link(base, token_hash, link_type, redirect_to)
    }

    /// The templates, to fetch those configured as URLs when the server starts.
    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    /// The subject and body of a mail of `kind`.
    pub fn render(&self, kind: EmailKind, data: &TemplateData<'_>) -> Result<Rendered> {
        self.templates
            .render(kind, data)
            .map_err(|err| Error::internal(format!("rendering a {} mail: {err}", kind.as_str())))
    }

    /// One unit of the server's mail budget, for each mail before it goes out, or for a
    /// request that sends none but must not be told apart (`/recover`, `/resend`).
    pub async fn take_budget(&self) -> Result<()> {
        self.budget
            .take_email()
            .await
            .map_err(|_| Error::too_many_requests(ErrorCode::OverEmailSendRateLimit, "email rate limit exceeded"))
    }

    /// Sends `emails` at once; `failure` is GoTrue's message when one cannot be sent (503,
    /// retryable; the cause goes to the log with the recipient's domain only).
    pub async fn deliver(&self, emails: &[Email], failure: &'static str) -> Result<()> {
        let results =
            futures::future::join_all(emails.iter().map(|email| mail::send_bounded(&*self.mailer, email))).await;
        for (email, result) in emails.iter().zip(results) {
            if let Err(err) = result {
                tracing::error!(
                    kind = email.kind.as_str(),
                    to_domain = mail::recipient_domain(&email.to),
                    error = %err,
                    "sending mail failed"
                );
                return Err(Error::unavailable(ErrorCode::ServiceUnavailable, failure));
            }
        }
        Ok(())
    }
}

/// How phone sign-in texts codes: nothing while `GOTRUE_EXTERNAL_PHONE_ENABLED` is off; the
/// send-SMS hook when it is on; else the `GOTRUE_SMS_PROVIDER` gateway, if any.
fn texter(config: &Config) -> anyhow::Result<Option<Texter>> {
    if !config.sms.enabled {
        return Ok(None);
    }
    if let Some(hook) = &config.hooks.send_sms {
        return Ok(Some(Texter::Hook(Hook::new(hook)?)));
    }
    Ok(sms::Sender::from_config(&config.sms)?.map(Texter::Gateway))
}

/// Where links of `path` point. With `GOTRUE_MAILER_URLPATHS_*` set, GoTrue's rule: the value
/// is a URL reference resolved against `API_EXTERNAL_URL` (RFC 3986), so `/auth/v1/verify`
/// replaces its path, `verify` goes beside its last segment, and a full URL stands alone.
/// Unset, Latchkey appends `/verify` to `API_EXTERNAL_URL`'s path where GoTrue's default
/// `/verify` would replace it: the same link for an external URL without a path, and a
/// working one for `https://example.com/auth/v1`.
fn link_base(external_url: &Url, path: LinkPath, configured: Option<&str>) -> anyhow::Result<Url> {
    let Some(configured) = configured else {
        let mut url = external_url.clone();
        url.set_path(&format!("{}/verify", external_url.path().trim_end_matches('/')));
        url.set_query(None);
        url.set_fragment(None);
        return Ok(url);
    };
    match external_url.join(configured) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(ConfigError {
            var: path.env_var().into(),
            message: format!("{configured:?} does not make a link from {external_url}"),
        }
        .into()),
    }
}

/// `base` with GoTrue's three parameters first, then any query the configured path had.
fn verification_link(base: &Url, token_hash: &str, link_type: &str, redirect_to: &str) -> String {
    let mut url = base.clone();
    let mut query = format!(
        "token={}&type={}&redirect_to={}",
        escape(token_hash),
        escape(link_type),
        redirect_param(redirect_to)
    );
    if let Some(extra) = base.query().filter(|q| !q.is_empty()) {
        query.push('&');
        query.push_str(extra);
    }
    url.set_query(Some(&query));
    url.to_string()
}

/// A judged redirect target as GoTrue shows it in links and in `generate_link`'s answer: a URL
/// with an empty path without the `/` the parser adds (`http://localhost:3000`), as an
/// operator writes `GOTRUE_SITE_URL`.
pub fn redirect_as_written(redirect_to: &str) -> String {
    match Url::parse(redirect_to) {
        Ok(url) => crate::mail::templates::site_url_text(&url),
        Err(_) => redirect_to.to_owned(),
    }
}

fn escape(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `redirect_to` as GoTrue writes it into a link: as it is, unless it holds `&`, `=` or `#`,
/// then escaped. Latchkey escapes as well whatever would not come back unchanged from the
/// query (`+`, `%`, `'`, `;`, spaces, anything beyond ASCII), where GoTrue's link would change
/// or lose the target.
fn redirect_param(redirect_to: &str) -> String {
    let redirect_to = redirect_as_written(redirect_to);
    let plain = redirect_to
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?@!$()*,".contains(&b));
    if plain { redirect_to } else { escape(&redirect_to) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(external: &str, configured: Option<&str>) -> Url {
        link_base(&Url::parse(external).unwrap(), LinkPath::Confirmation, configured).unwrap()
    }

    #[test]
    fn links_point_at_verify_under_the_external_url() {
        let under_path = base("https://proj.example.com/auth/v1/", None);
        let link = verification_link(
            &under_path,
            "pkce_abc",
            "signup",
            "https://app.example.com/cb?x=1&y=2#f",
        );
        let parsed = Url::parse(&link).unwrap();
        assert_eq!(parsed.path(), "/auth/v1/verify");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("token".into(), "pkce_abc".into()),
                ("type".into(), "signup".into()),
                ("redirect_to".into(), "https://app.example.com/cb?x=1&y=2#f".into()),
            ]
        );
        let root = base("http://127.0.0.1:9999", None);
        assert!(
            verification_link(&root, "h", "recovery", "x")
                .starts_with("http://127.0.0.1:9999/verify?token=h&type=recovery")
        );
    }

    #[test]
    fn redirect_to_is_written_as_gotrue_writes_it() {
        // As it is, and the site URL as configured (no `/` after the host).
        assert_eq!(redirect_param("http://localhost:3000/"), "http://localhost:3000");
        assert_eq!(
            redirect_param("https://app.example.com/welcome"),
            "https://app.example.com/welcome"
        );
        assert_eq!(
            redirect_param("https://app.example.com/a/"),
            "https://app.example.com/a/"
        );
        assert_eq!(redirect_param("myapp://callback?next"), "myapp://callback?next");
        // Escaped when GoTrue escapes (`&`, `=`, `#`) and when the query would change it.
        assert_eq!(
            redirect_param("https://app.example.com/cb?x=1&y=2#f"),
            "https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1%26y%3D2%23f"
        );
        for changed_by_the_query in [
            "https://a.example/b+c",
            "https://a.example/%2F",
            "https://a.example/x;y",
        ] {
            let link = verification_link(
                &base("http://localhost:9999", None),
                "h",
                "signup",
                changed_by_the_query,
            );
            let parsed = Url::parse(&link).unwrap();
            let redirect = parsed.query_pairs().find(|(k, _)| k == "redirect_to").unwrap().1;
            assert_eq!(redirect, changed_by_the_query);
        }
    }

    #[test]
    fn configured_paths_resolve_as_gotrue_resolves_them() {
        let link =
            |external: &str, configured: &str| verification_link(&base(external, Some(configured)), "h", "signup", "r");
        // Supabase's self-hosted .env, behind Kong.
        assert_eq!(
            link("http://localhost:8000", "/auth/v1/verify"),
            "http://localhost:8000/auth/v1/verify?token=h&type=signup&redirect_to=r"
        );
        // An absolute path replaces the external URL's path (RFC 3986, Go's ResolveReference).
        assert_eq!(
            link("https://api.example.com/auth/v1", "/verify"),
            "https://api.example.com/verify?token=h&type=signup&redirect_to=r"
        );
        // A relative one goes beside the last segment.
        assert_eq!(
            link("https://api.example.com/auth/v1/", "verify"),
            "https://api.example.com/auth/v1/verify?token=h&type=signup&redirect_to=r"
        );
        // A full URL stands alone; its own query follows GoTrue's three parameters.
        assert_eq!(
            link("http://localhost:9999", "https://app.example.com/confirm?lang=fr"),
            "https://app.example.com/confirm?token=h&type=signup&redirect_to=r&lang=fr"
        );
    }
}
