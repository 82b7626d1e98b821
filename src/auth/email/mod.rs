//! The email channel of one-time codes: the mails of the email flows. A fresh code is issued
//! through `auth::codes` (replacing the previous one of its kind), the `*_sent_at` column of the
//! mail's kind stamped, a PKCE flow recorded when asked, and the mail rendered and sent — all
//! inside the caller's transaction, so a failed send leaves nothing behind.

mod letter;

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::codes::{self, Identifier, Issued, NewCode, Purpose};
use crate::auth::email_hook::HookMail;
use crate::auth::outbox::Outbox;
use crate::auth::pkce::Challenge;
use crate::config::LinkPath;
use crate::db::flow_state::{self, NewFlowState};
use crate::db::one_time_tokens::{Confirms, TokenType};
use crate::db::users::{self, SentAt, UserRow};
use crate::error::{Error, ErrorCode, Result};
use crate::mail::{Email, EmailKind};
use letter::{Draft, Letter};

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

    /// Which `GOTRUE_MAILER_URLPATHS_*` the link follows; magic links take the recovery
    /// path, as in GoTrue.
    fn link_path(self) -> LinkPath {
        match self {
            Action::Confirmation => LinkPath::Confirmation,
            Action::Invite => LinkPath::Invite,
            Action::MagicLink | Action::Recovery => LinkPath::Recovery,
            // Reauthentication mails carry a code and no link.
            Action::EmailChange | Action::Reauthentication => LinkPath::EmailChange,
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

    /// The purpose of the code the mail carries (an email change's second mail, to the
    /// current address, carries one for `EmailChangeCurrent`).
    fn purpose(self) -> Purpose {
        match self {
            Action::Confirmation | Action::Invite => Purpose::Confirmation,
            Action::MagicLink | Action::Recovery => Purpose::Recovery,
            Action::EmailChange => Purpose::EmailChangeNew,
            Action::Reauthentication => Purpose::Reauthentication,
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
    let user = lock_user(conn, user_id).await?;
    if out.check_frequency
        && let Some(wait) = codes::wait_before_resend(action.last_sent(&user), Utc::now(), outbox.max_frequency())
    {
        return Err(frequency_error(wait));
    }
    let pkce = out.pkce.filter(|_| action != Action::Reauthentication);
    if let Some(challenge) = pkce {
        record_flow(conn, &user, action, challenge, out.redirect_to).await?;
    }
    let draft = Draft {
        outbox,
        action,
        out,
        user: &user,
        pkce: pkce.is_some(),
        confirms,
    };
    let letters = draft.letters(conn).await?;
    let unstamped = user;
    let user = users::stamp_sent(&mut *conn, unstamped.id, action.sent_at()).await?;

    // GoTrue's global GOTRUE_RATE_LIMIT_EMAIL_SENT: one unit per mail, before sending (with
    // the send-email hook too, one unit per call). A refusal rolls back the caller's
    // transaction, so no code is left without its mail.
    if let Some(hook) = outbox.email_hook() {
        outbox.take_budget().await?;
        hook.send(conn, &unstamped, &hook_mail(action, out, &letters)?).await?;
    } else {
        for _ in &letters {
            outbox.take_budget().await?;
        }
        let mails: Vec<Email> = letters.iter().map(|letter| letter.mail.clone()).collect();
        outbox.deliver(&mails, action.failure_message()).await?;
    }
    // The first letter carries the code the caller asked for (the new address's, for a change).
    let Letter { issued, link, .. } = letters
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("no mail written"))?;
    Ok(Sent {
        user,
        otp: issued.code,
        token_hash: issued.hash,
        action_link: link,
    })
}

/// The request's mails as the send-email hook gets them: one call, an email change's second
/// code (to the current address) beside the first.
fn hook_mail<'a>(action: Action, out: &Outgoing<'a>, letters: &'a [Letter]) -> Result<HookMail<'a>> {
    let first = letters.first().ok_or_else(|| Error::internal("no mail written"))?;
    Ok(HookMail {
        action_type: action.link_type(),
        redirect_to: out.redirect_to,
        first: &first.issued,
        current_address: letters.get(1).map(|letter| &letter.issued),
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
    let user = lock_user(conn, user_id).await?;
    if codes::wait_before_resend(action.last_sent(&user), Utc::now(), outbox.max_frequency()).is_some() {
        return Ok(None);
    }
    // The row stays locked until the caller's transaction ends: nothing can send in between.
    send_confirmation(conn, outbox, user_id, action, out, confirms)
        .await
        .map(Some)
}

/// Issues a code for `action` without mailing it (the admin `generate_link` API): the code,
/// its hash and the link, as GoTrue returns them. `address` is the address the code belongs
/// to (the new one for `email_change_new`); `confirms` is what a confirmation code confirms
/// besides the address (ignored for other codes).
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
    // The user before its code, the order every writer of codes and `/verify` keep, so a
    // verification running at the same time cannot deadlock with this.
    users::lock(&mut *conn, user.id).await?;
    let new = NewCode {
        user_id: user.id,
        purpose: Purpose::of(token_type),
        to: &Identifier::Email(address.to_owned()),
        pkce: false,
        length: outbox.settings().otp_length,
        confirms,
    };
    let Issued { code, hash } = codes::issue(conn, &new).await?;
    let user = users::stamp_sent(&mut *conn, user.id, action.sent_at()).await?;
    let action_link = Some(outbox.verification_link(action.link_path(), &hash, action.link_type(), redirect_to));
    Ok(Sent {
        user,
        otp: code,
        token_hash: hash,
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

async fn lock_user(conn: &mut PgConnection, user_id: Uuid) -> Result<UserRow> {
    users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished while sending mail"))
}

/// The PKCE flow the link's verification ends in (`?code=` for the flow's challenge).
async fn record_flow(
    conn: &mut PgConnection,
    user: &UserRow,
    action: Action,
    challenge: &Challenge,
    redirect_to: &str,
) -> Result<()> {
    let flow = NewFlowState {
        user_id: Some(user.id),
        code_challenge_method: Some(challenge.method.as_str()),
        code_challenge: Some(&challenge.challenge),
        provider_type: "email",
        authentication_method: action.flow_method(),
        referrer: Some(redirect_to),
        linking_target_id: None,
        provider_code_verifier: None,
    };
    flow_state::insert(&mut *conn, &flow).await?;
    Ok(())
}
