//! Where one-time codes and links go out: the mailer, the server's mail budget
//! (`GOTRUE_RATE_LIMIT_EMAIL_SENT`), and what links and templates need; and the SMS sender,
//! of which there is none yet ([`Outbox::sms`]). The flows in `auth::email` decide what to
//! send; this sends it.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::config::{Config, MailerConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::mail::{self, Email, Mailer};
use crate::ratelimit::Limiter;
use crate::sms;

#[derive(Debug, Clone)]
pub struct Outbox {
    mailer: Arc<dyn Mailer>,
    budget: Arc<dyn Limiter>,
    external_url: Url,
    site_url: Url,
    settings: MailerConfig,
    max_frequency: Duration,
    /// No SMS gateway exists yet (`sms::Sender` has no variants), so this is always `None`.
    sms: Option<sms::Sender>,
}

/// What a client asked to do with a phone number. GoTrue's refusal without an SMS provider
/// depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneUse {
    /// Sign up with a phone number (`POST /signup`).
    SignUp,
    /// Set or change the user's phone number (`PUT /user`).
    ChangeNumber,
    /// Have a code sent by SMS (`POST /otp`, `POST /resend`, `GET /reauthenticate`).
    SendCode,
    /// Check a code sent by SMS (`POST /verify`).
    VerifyCode,
}

impl PhoneUse {
    /// GoTrue's message when the phone provider is off.
    fn refusal(self) -> &'static str {
        match self {
            PhoneUse::SignUp => "Phone signups are disabled",
            PhoneUse::ChangeNumber => "Phone logins are disabled",
            PhoneUse::SendCode | PhoneUse::VerifyCode => "Unsupported phone provider",
        }
    }
}

impl Outbox {
    /// `external_url` is where this server is reached (`API_EXTERNAL_URL`, or the bound
    /// address); links in mails point there.
    pub fn new(mailer: Arc<dyn Mailer>, budget: Arc<dyn Limiter>, config: &Config, external_url: Url) -> Outbox {
        Outbox {
            mailer,
            budget,
            external_url,
            site_url: config.site_url.clone(),
            settings: config.mailer.clone(),
            max_frequency: config.smtp_max_frequency,
            sms: None,
        }
    }

    /// The SMS sender for `asked`, or GoTrue's `400 phone_provider_disabled` with its message
    /// for that use when none is configured. The one place that decides whether anything
    /// about phones can go on; there is no sender yet, so callers end with `match *sender {}`.
    pub fn sms(&self, asked: PhoneUse) -> Result<&sms::Sender> {
        self.sms
            .as_ref()
            .ok_or_else(|| Error::bad_request(ErrorCode::PhoneProviderDisabled, asked.refusal()))
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

    /// The link a mail carries:
    /// `<API_EXTERNAL_URL>/verify?token=<hash>&type=<type>&redirect_to=<r>`.
    pub fn verification_link(&self, token_hash: &str, link_type: &str, redirect_to: &str) -> String {
        verification_link(&self.external_url, token_hash, link_type, redirect_to)
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

fn verification_link(external_url: &Url, token_hash: &str, link_type: &str, redirect_to: &str) -> String {
    let mut url = external_url.clone();
    let path = format!("{}/verify", external_url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_fragment(None);
    url.query_pairs_mut()
        .clear()
        .append_pair("token", token_hash)
        .append_pair("type", link_type)
        .append_pair("redirect_to", redirect_to);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_verify_under_the_external_url() {
        let base = Url::parse("https://proj.example.com/auth/v1/").unwrap();
        let link = verification_link(&base, "pkce_abc", "signup", "https://app.example.com/cb?x=1&y=2#f");
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
        let root = Url::parse("http://127.0.0.1:9999").unwrap();
        assert!(
            verification_link(&root, "h", "recovery", "x")
                .starts_with("http://127.0.0.1:9999/verify?token=h&type=recovery")
        );
    }
}
