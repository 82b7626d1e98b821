//! Sending the email-flow mails: a fresh one-time token is stored (replacing the previous one
//! of its kind), the `*_sent_at` column stamped, a PKCE flow recorded when asked, and the mail
//! sent — all inside the caller's transaction, so a failed send leaves nothing behind.

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::otp;
use crate::auth::outbox::Outbox;
use crate::auth::pkce::Challenge;
use crate::db::flow_state::{self, NewFlowState};
use crate::db::one_time_tokens::{self, Confirms, TokenType};
use crate::db::users::{self, SentAt, UserRow};
use crate::error::{Error, ErrorCode, Result};
use crate::mail::templates::{self, TemplateData};
use crate::mail::{Email, EmailKind};

/// The mails of the email flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirmation,
    Invite,
    MagicLink,
    Recovery,
    EmailChange,
    Reauthentication,
}

impl Action {
    fn kind(self) -> EmailKind {
        match self {
            Action::Confirmation => EmailKind::Confirmation,
            Action::Invite => EmailKind::Invite,
            Action::MagicLink => EmailKind::MagicLink,
            Action::Recovery => EmailKind::Recovery,
            Action::EmailChange => EmailKind::EmailChange,
            Action::Reauthentication => EmailKind::Reauthentication,
        }
    }

    /// The `type` of the verification link.
    pub fn link_type(self) -> &'static str {
        match self {
            Action::Confirmation => "signup",
            Action::Invite => "invite",
            Action::MagicLink => "magiclink",
            Action::Recovery => "recovery",
            Action::EmailChange => "email_change",
            Action::Reauthentication => "reauthentication",
        }
    }

    /// The `authentication_method` of the PKCE flow (the amr method of its session).
    pub fn flow_method(self) -> &'static str {
        match self {
            Action::Confirmation => "email/signup",
            Action::Invite => "invite",
            Action::MagicLink => "magiclink",
            Action::Recovery => "recovery",
            Action::EmailChange => "email_change",
            Action::Reauthentication => "reauthentication",
        }
    }

    fn sent_at(self) -> SentAt {
        match self {
            Action::Confirmation => SentAt::Confirmation,
            Action::Invite => SentAt::Invite,
            // Magic links share the recovery slot and its frequency limit, as in GoTrue.
            Action::MagicLink | Action::Recovery => SentAt::Recovery,
            Action::EmailChange => SentAt::EmailChange,
            Action::Reauthentication => SentAt::Reauthentication,
        }
    }

    fn last_sent(self, user: &UserRow) -> Option<chrono::DateTime<Utc>> {
        match self.sent_at() {
            SentAt::Confirmation => user.confirmation_sent_at,
            // Invitations are sent by an admin: no frequency limit.
            SentAt::Invite => None,
            SentAt::Recovery => user.recovery_sent_at,
            SentAt::EmailChange => user.email_change_sent_at,
            SentAt::Reauthentication => user.reauthentication_sent_at,
        }
    }

    fn token_type(self) -> TokenType {
        match self {
            Action::Confirmation | Action::Invite => TokenType::Confirmation,
            Action::MagicLink | Action::Recovery => TokenType::Recovery,
            Action::EmailChange => TokenType::EmailChangeNew,
            Action::Reauthentication => TokenType::Reauthentication,
        }
    }

    fn failure_message(self) -> &'static str {
        match self {
            Action::Confirmation => "Error sending confirmation email",
            Action::Invite => "Error sending invite email",
            Action::MagicLink => "Error sending magic link email",
            Action::Recovery => "Error sending recovery email",
            Action::EmailChange => "Error sending email change email",
            Action::Reauthentication => "Error sending reauthentication email",
        }
    }
}

/// How to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    /// The validated redirect target the link leads to after verification.
    pub redirect_to: &'a str,
    /// PKCE: the link carries a `pkce_` token and verification ends with `?code=`.
    pub pkce: Option<&'a Challenge>,
    /// Enforce `GOTRUE_SMTP_MAX_FREQUENCY` (not for the first mail of a new account).
    pub check_frequency: bool,
}

/// What was sent, for callers that need the token (the admin `generate_link` API).
#[derive(Debug)]
pub struct Sent {
    pub user: UserRow,
    pub otp: String,
    pub token_hash: String,
    pub action_link: Option<String>,
}

/// Issues a token for `action` and mails it. For `EmailChange` the new address must already
/// be pending in `email_change`. Locks the user row for the rest of the transaction. A
/// confirmation or invitation sent this way proves the address alone (see
/// [`send_confirmation`]).
pub async fn send(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user_id: Uuid,
    action: Action,
    out: &Outgoing<'_>,
) -> Result<Sent> {
    send_confirmation(conn, outbox, user_id, action, out, &Confirms::default()).await
}

/// [`send`] for a confirmation or invitation whose link confirms `confirms` besides the
/// address (`auth::proven_address`); for other actions `confirms` is ignored.
pub async fn send_confirmation(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user_id: Uuid,
    action: Action,
    out: &Outgoing<'_>,
    confirms: &Confirms,
) -> Result<Sent> {
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished while sending mail"))?;
    if out.check_frequency
        && let Some(wait) = otp::wait_before_resend(action.last_sent(&user), Utc::now(), outbox.max_frequency())
    {
        return Err(frequency_error(wait));
    }
    let pkce = out.pkce.filter(|_| action != Action::Reauthentication);
    if let Some(challenge) = pkce {
        flow_state::insert(
            &mut *conn,
            &NewFlowState {
                user_id: Some(user.id),
                code_challenge_method: Some(challenge.method.as_str()),
                code_challenge: Some(&challenge.challenge),
                provider_type: "email",
                authentication_method: action.flow_method(),
                referrer: Some(out.redirect_to),
                linking_target_id: None,
            },
        )
        .await?;
    }
    let current = user.email.clone().unwrap_or_default();
    let length = outbox.settings().otp_length;

    let mut emails = Vec::new();
    let sent = if action == Action::EmailChange {
        let new = user
            .email_change
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Error::internal("email change mail without a pending address"))?;
        let (otp_new, hash_new) = issue(
            &mut *conn,
            &user,
            TokenType::EmailChangeNew,
            &new,
            pkce.is_some(),
            length,
            confirms,
        )
        .await?;
        emails.push(render(
            outbox, action, &new, &current, &new, &otp_new, &hash_new, out, &user,
        ));
        if outbox.settings().secure_email_change_enabled && !current.is_empty() {
            let (otp_cur, hash_cur) = issue(
                &mut *conn,
                &user,
                TokenType::EmailChangeCurrent,
                &current,
                pkce.is_some(),
                length,
                confirms,
            )
            .await?;
            emails.push(render(
                outbox, action, &current, &current, &new, &otp_cur, &hash_cur, out, &user,
            ));
        } else {
            one_time_tokens::delete(&mut *conn, user.id, TokenType::EmailChangeCurrent).await?;
        }
        (otp_new, hash_new)
    } else {
        if current.is_empty() {
            return Err(Error::internal("email flow for a user without an email address"));
        }
        let pkce_token = pkce.is_some();
        let (otp, hash) = issue(
            &mut *conn,
            &user,
            action.token_type(),
            &current,
            pkce_token,
            length,
            confirms,
        )
        .await?;
        emails.push(render(outbox, action, &current, &current, "", &otp, &hash, out, &user));
        (otp, hash)
    };
    let user = users::stamp_sent(&mut *conn, user.id, action.sent_at()).await?;

    // GoTrue's global GOTRUE_RATE_LIMIT_EMAIL_SENT: one unit per mail, before sending. A
    // refusal rolls back the caller's transaction, so no token is left without its mail.
    for _ in &emails {
        outbox.take_budget().await?;
    }
    let mails: Vec<Email> = emails.iter().map(|(email, _)| email.clone()).collect();
    outbox.deliver(&mails, action.failure_message()).await?;
    let action_link = emails.first().and_then(|(_, link)| link.clone());
    Ok(Sent {
        user,
        otp: sent.0,
        token_hash: sent.1,
        action_link,
    })
}

/// [`send`] for `/recover` and `/resend`: when a mail of this kind went to the user within
/// `GOTRUE_SMTP_MAX_FREQUENCY`, nothing is sent and the answer is `None` instead of GoTrue's
/// 429, which would tell anyone that the address has an account.
pub async fn send_if_due(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user_id: Uuid,
    action: Action,
    out: &Outgoing<'_>,
    confirms: &Confirms,
) -> Result<Option<Sent>> {
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished while sending mail"))?;
    let now = Utc::now();
    if otp::wait_before_resend(action.last_sent(&user), now, outbox.max_frequency()).is_some() {
        return Ok(None);
    }
    // The row stays locked until the caller's transaction ends: nothing can send in between.
    send_confirmation(conn, outbox, user_id, action, out, confirms)
        .await
        .map(Some)
}

/// Issues a token for `action` without mailing it (the admin `generate_link` API): the code,
/// its hash and the link, as GoTrue returns them. `address` is the address the token belongs
/// to (the new one for `email_change_new`); `confirms` is what a confirmation token confirms
/// besides the address (ignored for other tokens).
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user: &UserRow,
    action: Action,
    token_type: TokenType,
    address: &str,
    redirect_to: &str,
    confirms: &Confirms,
) -> Result<Sent> {
    // The user before its token, the order every writer of tokens and `/verify` keep, so a
    // verification running at the same time cannot deadlock with this.
    users::lock(&mut *conn, user.id).await?;
    let length = outbox.settings().otp_length;
    let (otp, token_hash) = issue(&mut *conn, user, token_type, address, false, length, confirms).await?;
    let user = users::stamp_sent(&mut *conn, user.id, action.sent_at()).await?;
    let action_link = Some(outbox.verification_link(&token_hash, action.link_type(), redirect_to));
    Ok(Sent {
        user,
        otp,
        token_hash,
        action_link,
    })
}

/// GoTrue's per-user send-frequency error.
pub fn frequency_error(wait_seconds: i64) -> Error {
    Error::too_many_requests(
        ErrorCode::OverEmailSendRateLimit,
        format!("For security purposes, you can only request this after {wait_seconds} seconds."),
    )
}

/// A new code for `address`, stored as its (flow-prefixed) hash. Returns (otp, stored hash).
/// A confirmation token also records what it confirms: always written, so that a new token
/// never inherits what the one it replaces confirmed.
async fn issue(
    conn: &mut PgConnection,
    user: &UserRow,
    token_type: TokenType,
    address: &str,
    pkce: bool,
    length: usize,
    confirms: &Confirms,
) -> Result<(String, String)> {
    let code = otp::generate_otp(length);
    let hash = otp::with_flow_prefix(&otp::token_hash(address, &code), pkce);
    if token_type == TokenType::Confirmation {
        one_time_tokens::upsert_confirmation(&mut *conn, user.id, &hash, address, confirms).await?;
    } else {
        one_time_tokens::upsert(&mut *conn, user.id, token_type, &hash, address).await?;
    }
    Ok((code, hash))
}

#[allow(clippy::too_many_arguments)]
fn render(
    outbox: &Outbox,
    action: Action,
    to: &str,
    email: &str,
    new_email: &str,
    code: &str,
    hash: &str,
    out: &Outgoing<'_>,
    user: &UserRow,
) -> (Email, Option<String>) {
    let link = (action != Action::Reauthentication)
        .then(|| outbox.verification_link(hash, action.link_type(), out.redirect_to));
    let site_url = outbox.site_url().to_string();
    let rendered = templates::render(
        action.kind(),
        outbox.settings(),
        &TemplateData {
            confirmation_url: link.as_deref().unwrap_or(""),
            token: code,
            token_hash: hash,
            site_url: &site_url,
            redirect_to: out.redirect_to,
            email,
            new_email,
            data: Some(&user.raw_user_meta_data),
        },
    );
    (
        Email {
            kind: action.kind(),
            to: to.to_owned(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
        },
        link,
    )
}
