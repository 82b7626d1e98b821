//! An [`Email`] as an Internet message (RFC 5322, built by lettre): what SMTP sends and what
//! the mail folder keeps.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::{Email, MailError};
use crate::config::Sender;

/// The `From:` of every mail; a bad address is a start-up error naming the variable.
pub fn sender_mailbox(sender: &Sender) -> anyhow::Result<Mailbox> {
    let address = sender
        .address
        .parse()
        .map_err(|err| anyhow::anyhow!("GOTRUE_SMTP_ADMIN_EMAIL is not a valid address: {err}"))?;
    Ok(Mailbox::new(sender.name.clone(), address))
}

/// The message: the HTML part with its plain-text alternative.
pub fn build(from: &Mailbox, email: &Email) -> Result<Message, MailError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|err| MailError(format!("invalid recipient address: {err}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|err| MailError(format!("building the message: {err}")))
}
