//! `POST /resend` with `type` `sms` or `phone_change`, and `GET /reauthenticate` for a user
//! whose only address is a number: a code by text message again (GoTrue's `Resend` and
//! `Reauthenticate`, phone branches).

use serde_json::json;

use super::send::{self, Text};
use crate::auth::outbox::{Outbox, PhoneUse};
use crate::auth::proven_address;
use crate::auth::session::Client;
use crate::db::Pool;
use crate::db::audit::{self, Action};
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};
use crate::sms::Channel;

/// What a phone code is sent again for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// `sms`: the confirmation code of a number not confirmed yet.
    Sms,
    /// `phone_change`: the code for the pending new number.
    PhoneChange,
}

/// Whose code: the user of a number, or (for `phone_change`) of an email address.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// As typed: normalised here.
    Phone(&'a str),
    /// Normalised.
    Email(&'a str),
}

/// `POST /resend` of a texted code. An unknown holder, a confirmed number (`sms`) or no
/// pending change (`phone_change`) get `{}` and nothing is sent, as in GoTrue; otherwise the
/// gateway's message id. `phone_change` finds the user by their current number (or address),
/// as GoTrue does, and texts the new one.
pub async fn resend(db: &Pool, outbox: &Outbox, client: &Client, kind: Resend, holder: Holder<'_>) -> Result<String> {
    outbox.sms(PhoneUse::Resend)?;
    let phone = match holder {
        Holder::Phone(raw) => Some(super::normalize(raw)?),
        Holder::Email(_) => None,
    };
    let mut tx = db.begin().await?;
    let found = match (holder, &phone) {
        (_, Some(phone)) => users::find_by_phone(&mut *tx, phone).await?,
        (Holder::Email(email), None) => users::find_by_email(&mut *tx, email).await?,
        (Holder::Phone(_), None) => None,
    };
    let Some(user) = found else {
        return Ok(String::new());
    };
    let sent = match kind {
        Resend::Sms if user.phone_confirmed_at.is_some() => return Ok(String::new()),
        Resend::Sms => {
            let phone = user.phone.clone().unwrap_or_default();
            let ip = client.ip_string();
            let requested = audit::Entry::by_user(&user, Action::UserRecoveryRequested, None, &ip);
            audit::insert(&mut *tx, requested).await?;
            // Confirms what the pending code did (or the number alone).
            let confirms = proven_address::confirms_again(&mut tx, user.id).await?;
            send::send_code(
                &mut tx,
                outbox,
                user.id,
                Text::Confirmation,
                &phone,
                Channel::Sms,
                &confirms,
            )
            .await?
        }
        Resend::PhoneChange => {
            let Some(new_phone) = user.phone_change.clone().filter(|p| !p.is_empty()) else {
                return Ok(String::new());
            };
            let confirms = Default::default();
            send::send_code(
                &mut tx,
                outbox,
                user.id,
                Text::PhoneChange,
                &new_phone,
                Channel::Sms,
                &confirms,
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(sent.message_id)
}

/// `GET /reauthenticate` for a user without an email address: the nonce goes to their
/// (confirmed) number. Returns the gateway's message id.
pub async fn reauthenticate(db: &Pool, outbox: &Outbox, client: &Client, user: &UserRow) -> Result<String> {
    outbox.sms(PhoneUse::SendCode)?;
    let phone = user.phone.clone().unwrap_or_default();
    if user.phone_confirmed_at.is_none() {
        return Err(Error::unprocessable(
            ErrorCode::PhoneNotConfirmed,
            "Please verify your phone first.",
        ));
    }
    let mut tx = db.begin().await?;
    let ip = client.ip_string();
    let requested = audit::Entry::by_user(user, Action::UserReauthenticateRequested, None, &ip);
    audit::insert(&mut *tx, requested).await?;
    let confirms = Default::default();
    let sent = send::send_code(
        &mut tx,
        outbox,
        user.id,
        Text::Reauthentication,
        &phone,
        Channel::Sms,
        &confirms,
    )
    .await?;
    tx.commit().await?;
    Ok(sent.message_id)
}

/// GoTrue's answer to `/resend` and `/reauthenticate`: `{}`, or the message id when a text
/// went out.
pub fn answer(message_id: &str) -> serde_json::Value {
    if message_id.is_empty() {
        json!({})
    } else {
        json!({ "message_id": message_id })
    }
}
