//! Counts the mails the outbox sends: a [`Mailer`] that wraps the configured one, so the
//! count covers every sender (SMTP, or whatever takes its place) without each one knowing.

use std::sync::Arc;

use async_trait::async_trait;

use super::metrics::{EMAILS_FAILED, EMAILS_SENT, email_kind};
use crate::mail::{Email, EmailKind, MailError, Mailer};

/// `latchkey_emails_sent_total` and `latchkey_emails_failed_total`, by kind of mail.
#[derive(Debug)]
pub struct CountingMailer(Arc<dyn Mailer>);

impl CountingMailer {
    pub fn wrap(inner: Arc<dyn Mailer>) -> Arc<dyn Mailer> {
        Arc::new(CountingMailer(inner))
    }
}

#[async_trait]
impl Mailer for CountingMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let mut outcome = Outcome {
            kind: email.kind,
            sent: None,
        };
        let result = self.0.send(email).await;
        outcome.sent = Some(result.is_ok());
        result
    }
}

/// Counted when dropped, so that a send abandoned half-way (the caller's timeout) counts as
/// failed rather than not at all.
struct Outcome {
    kind: EmailKind,
    sent: Option<bool>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let name = if self.sent == Some(true) {
            EMAILS_SENT
        } else {
            EMAILS_FAILED
        };
        metrics::counter!(name, "kind" => email_kind(self.kind)).increment(1);
    }
}
