//! Writing the mails of one request: each carries a fresh code issued through `auth::codes`,
//! its link and the template of the mail's kind.

use sqlx::PgConnection;

use super::{Action, Outgoing};
use crate::auth::codes::{self, Identifier, Issued, NewCode, Purpose};
use crate::auth::outbox::Outbox;
use crate::db::one_time_tokens::{self, Confirms, TokenType};
use crate::db::users::UserRow;
use crate::error::{Error, Result};
use crate::mail::Email;
use crate::mail::templates::{TemplateData, site_url_text};

/// What a mail of one request is written from.
pub(super) struct Draft<'a> {
    pub(super) outbox: &'a Outbox,
    pub(super) action: Action,
    pub(super) out: &'a Outgoing<'a>,
    /// The addressee, locked.
    pub(super) user: &'a UserRow,
    pub(super) pkce: bool,
    pub(super) confirms: &'a Confirms,
}

/// A mail ready to go, with the code it carries and its link.
pub(super) struct Letter {
    pub(super) mail: Email,
    pub(super) link: Option<String>,
    pub(super) issued: Issued,
}

impl Draft<'_> {
    /// The mails of the request, each with a fresh code: one to the user's address, or an
    /// email change's.
    pub(super) async fn letters(&self, conn: &mut PgConnection) -> Result<Vec<Letter>> {
        if self.action == Action::EmailChange {
            return self.email_change(conn).await;
        }
        let current = self.user.email_or_empty();
        if current.is_empty() {
            return Err(Error::internal("email flow for a user without an email address"));
        }
        Ok(vec![self.write(conn, self.action.purpose(), current, "").await?])
    }

    /// An email change's mails: a code to the new address (pending in `email_change`) and,
    /// with secure email change, one to the current address; without it, a current-address
    /// code left from before goes.
    async fn email_change(&self, conn: &mut PgConnection) -> Result<Vec<Letter>> {
        let new = self
            .user
            .email_change
            .as_deref()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Error::internal("email change mail without a pending address"))?;
        let current = self.user.email_or_empty();
        let mut letters = vec![self.write(conn, Purpose::EmailChangeNew, new, new).await?];
        if self.outbox.settings().secure_email_change_enabled && !current.is_empty() {
            letters.push(self.write(conn, Purpose::EmailChangeCurrent, current, new).await?);
        } else {
            one_time_tokens::delete(&mut *conn, self.user.id, TokenType::EmailChangeCurrent).await?;
        }
        Ok(letters)
    }

    /// Issues a code of `purpose` for the address `to` and writes the mail that carries it.
    /// `new_email` is the template's `{{ .NewEmail }}` (empty but for an email change).
    async fn write(&self, conn: &mut PgConnection, purpose: Purpose, to: &str, new_email: &str) -> Result<Letter> {
        let new = NewCode {
            user_id: self.user.id,
            purpose,
            to: &Identifier::Email(to.to_owned()),
            pkce: self.pkce,
            length: self.outbox.settings().otp_length,
            confirms: self.confirms,
        };
        let issued = codes::issue(conn, &new).await?;
        let (mail, link) = self.render(to, new_email, &issued)?;
        Ok(Letter { mail, link, issued })
    }

    fn render(&self, to: &str, new_email: &str, issued: &Issued) -> Result<(Email, Option<String>)> {
        let (outbox, action, out) = (self.outbox, self.action, self.out);
        let link = (action != Action::Reauthentication)
            .then(|| outbox.verification_link(action.link_path(), &issued.hash, action.link_type(), out.redirect_to));
        let site_url = site_url_text(outbox.site_url());
        let rendered = outbox.render(
            action.kind(),
            &TemplateData {
                confirmation_url: link.as_deref().unwrap_or(""),
                token: &issued.code,
                token_hash: &issued.hash,
                site_url: &site_url,
                redirect_to: out.redirect_to,
                email: self.user.email_or_empty(),
                new_email,
                // GoTrue passes the recipient to email-change mails only.
                sending_to: if action == Action::EmailChange { to } else { "" },
                data: Some(&self.user.raw_user_meta_data),
            },
        )?;
        let mail = Email {
            kind: action.kind(),
            to: to.to_owned(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
        };
        Ok((mail, link))
    }
}
