//! SMTP delivery with lettre: implicit TLS on port 465, otherwise STARTTLS whenever the
//! server offers it (as GoTrue's gomail does), pooled connections.

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{Email, MailError, Mailer, SEND_TIMEOUT, message};
use crate::config::SmtpConfig;

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer").finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// `from` is [`message::sender_mailbox`].
    pub fn new(config: &SmtpConfig, from: Mailbox) -> anyhow::Result<SmtpMailer> {
        let params = TlsParameters::new(config.host.clone())?;
        let tls = if config.port == 465 {
            Tls::Wrapper(params)
        } else {
            Tls::Opportunistic(params)
        };
        // `builder_dangerous` only means "no TLS policy preset": the policy is set right here.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(SEND_TIMEOUT));
        if let Some(user) = &config.user {
            let pass = config
                .pass
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = message::build(&self.from, email)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| MailError(format!("SMTP: {}", redact_addresses(&err.to_string()))))
    }
}

/// Server replies often quote the recipient (`550 <someone@example.com> rejected`); keep
/// addresses out of the logs.
fn redact_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| if word.contains('@') { "<address>" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_redacted_from_errors() {
        assert_eq!(
            super::redact_addresses("550 <someone@example.com> mailbox unavailable"),
            "550 <address> mailbox unavailable"
        );
    }
}
