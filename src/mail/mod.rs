//! Outgoing mail: the `Mailer` trait with an SMTP implementation (lettre), the mail folder
//! (one `.eml` file per mail) and the log, used when no SMTP host is configured; plus the
//! templates.

pub mod folder;
pub mod message;
mod smtp;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::config::EmailKind;
use crate::config::MailerConfig;

pub use folder::FolderMailer;
pub use smtp::SmtpMailer;

/// How long one send may take, connection included, before it counts as failed.
/// Below the default request limit (`GOTRUE_API_MAX_REQUEST_DURATION`, 10 s) so that a hung SMTP
/// server produces this clear error rather than a generic timeout.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(8);

/// A rendered message, ready to send.
#[derive(Clone)]
pub struct Email {
    pub kind: EmailKind,
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
}

// Hand-written so that a stray `{:?}` can never print a token-carrying body or the address.
impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("kind", &self.kind)
            .field("to_domain", &recipient_domain(&self.to))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// Sends with the time bound of [`SEND_TIMEOUT`], whatever the implementation.
pub async fn send_bounded(mailer: &dyn Mailer, email: &Email) -> Result<(), MailError> {
    match tokio::time::timeout(SEND_TIMEOUT, mailer.send(email)).await {
        Ok(result) => result,
        Err(_) => Err(MailError(format!(
            "sending timed out after {} s",
            SEND_TIMEOUT.as_secs()
        ))),
    }
}

/// SMTP when `GOTRUE_SMTP_HOST` is set; else the mail folder when there is one (the
/// zero-setup mode's, or `LATCHKEY_MAIL_DIR`); else the log.
pub fn from_config(config: &MailerConfig) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match (&config.smtp, &config.folder) {
        (Some(smtp), _) => Arc::new(SmtpMailer::new(smtp, message::sender_mailbox(&config.sender)?)?),
        (None, Some(dir)) => Arc::new(FolderMailer::open(dir, message::sender_mailbox(&config.sender)?)?),
        (None, None) => {
            tracing::warn!(
                "GOTRUE_SMTP_HOST is not set: emails are not sent, only noted in the log \
                 (LATCHKEY_MAIL_DIR keeps them in a folder)"
            );
            Arc::new(LogMailer)
        }
    })
}

/// The part after the `@`: enough to follow mail in the logs without recording addresses.
pub fn recipient_domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Used when no SMTP server is configured. Logs the kind and the recipient's domain only:
/// the body and links carry tokens, and addresses are personal data.
#[derive(Debug)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        tracing::info!(
            kind = email.kind.as_str(),
            to_domain = recipient_domain(&email.to),
            "email not sent (no SMTP host configured)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_address_and_body() {
        let email = Email {
            kind: EmailKind::Recovery,
            to: "someone@example.com".into(),
            subject: "s".into(),
            html: "token 123456".into(),
            text: "token 123456".into(),
        };
        let shown = format!("{email:?}");
        assert!(!shown.contains("someone") && !shown.contains("123456"), "{shown}");
        assert!(shown.contains("example.com"));
    }
}
