//! One-time codes, whatever carries them (issue #15). A code is issued for a user, a
//! [`Purpose`] and an [`Identifier`] (the email address or phone number it goes to), stored only
//! as GoTrue's hash `hex(sha224(identifier || code))` ([`hash`]), and used once: found by that
//! hash (a link) or by a typed-in code, with wrong codes counted, then locked, checked for
//! being current and unexpired, and used inside the caller's transaction ([`check`]).
//!
//! The channels decide how a code travels: `auth::email` renders links and templates, stamps
//! the `*_sent_at` column of each kind of mail and sends secure email change's two mails; an
//! SMS channel needs only a sender (`auth::outbox::Outbox::sms`, which refuses until one
//! exists).

mod check;
mod hash;
mod issue;

use std::time::Duration;

use crate::db::Pool;
use chrono::{DateTime, Utc};

use crate::auth::{accounts, phone};
use crate::config::Config;
use crate::db::one_time_tokens::TokenType;
use crate::db::users::UserRow;
use crate::error::Result;

pub use check::{
    Matched, find_by_code, find_by_hash, find_checked_by_gateway, find_users_code, find_users_code_checked_by_gateway,
    is_usable, lock_for_use,
};
pub use hash::{PKCE_PREFIX, generate, matches, token_hash, with_flow_prefix};
pub use issue::{Issued, NewCode, issue, issue_code};

/// Where a code goes, as stored in its `relates_to` and covered by its hash: an email address
/// (trimmed, lower-case) or a phone number (E.164 digits without the `+`, as GoTrue keeps it).
#[derive(Clone, PartialEq, Eq)]
pub enum Identifier {
    Email(String),
    Phone(String),
}

impl Identifier {
    /// An address as a client typed it, normalised; GoTrue's validation error otherwise.
    pub fn email(raw: &str) -> Result<Identifier> {
        accounts::normalize_email(raw).map(Identifier::Email)
    }

    /// A phone number as a client typed it, normalised; GoTrue's validation error otherwise.
    pub fn phone(raw: &str) -> Result<Identifier> {
        phone::normalize(raw).map(Identifier::Phone)
    }

    /// What a stored code's `relates_to` holds: an address has an `@`, a phone number never.
    pub fn from_stored(relates_to: &str) -> Identifier {
        if relates_to.contains('@') {
            Identifier::Email(relates_to.to_owned())
        } else {
            Identifier::Phone(relates_to.to_owned())
        }
    }

    /// Where a code for the user themself goes (the reauthentication nonce): the email
    /// address, else the phone number. GoTrue prefers the address when an account has both.
    pub fn of_user(user: &UserRow) -> Identifier {
        match user.phone.as_deref().filter(|p| !p.is_empty()) {
            Some(phone) if user.email_or_empty().is_empty() => Identifier::Phone(phone.to_owned()),
            _ => Identifier::Email(user.email_or_empty().to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Identifier::Email(address) => address,
            Identifier::Phone(digits) => digits,
        }
    }
}

/// Addresses and numbers are personal data: a stray `{:?}` shows the kind only.
impl std::fmt::Debug for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Identifier::Email(_) => "Email(..)",
            Identifier::Phone(_) => "Phone(..)",
        })
    }
}

/// What a code is for: GoTrue's one-time token kinds (`models.OneTimeTokenType`). A user has
/// at most one live code per purpose; a new one replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms the address or number of a new account (also an invitation).
    Confirmation,
    /// Signs in a known account: a password-recovery or magic link, or its code.
    Recovery,
    /// Proves the new address of an email change.
    EmailChangeNew,
    /// Proves the current address of a secure email change.
    EmailChangeCurrent,
    /// Proves the new number of a phone change.
    PhoneChange,
    /// The nonce that lets a signed-in user change their password.
    Reauthentication,
}

impl Purpose {
    pub const ALL: [Purpose; 6] = [
        Purpose::Confirmation,
        Purpose::Recovery,
        Purpose::EmailChangeNew,
        Purpose::EmailChangeCurrent,
        Purpose::PhoneChange,
        Purpose::Reauthentication,
    ];

    /// The kind a code of this purpose is stored as.
    pub fn token_type(self) -> TokenType {
        match self {
            Purpose::Confirmation => TokenType::Confirmation,
            Purpose::Recovery => TokenType::Recovery,
            Purpose::EmailChangeNew => TokenType::EmailChangeNew,
            Purpose::EmailChangeCurrent => TokenType::EmailChangeCurrent,
            Purpose::PhoneChange => TokenType::PhoneChange,
            Purpose::Reauthentication => TokenType::Reauthentication,
        }
    }

    pub fn of(token_type: TokenType) -> Purpose {
        match token_type {
            TokenType::Confirmation => Purpose::Confirmation,
            TokenType::Recovery => Purpose::Recovery,
            TokenType::EmailChangeNew => Purpose::EmailChangeNew,
            TokenType::EmailChangeCurrent => Purpose::EmailChangeCurrent,
            TokenType::PhoneChange => Purpose::PhoneChange,
            TokenType::Reauthentication => Purpose::Reauthentication,
        }
    }

    /// When the user's code of this purpose went out: the `*_sent_at` column GoTrue stamps
    /// for it, whichever channel carried it (a phone confirmation too stamps
    /// `confirmation_sent_at`). Expiry counts from here.
    pub fn sent_at(self, user: &UserRow) -> Option<DateTime<Utc>> {
        match self {
            Purpose::Confirmation => user.confirmation_sent_at,
            Purpose::Recovery => user.recovery_sent_at,
            Purpose::EmailChangeNew | Purpose::EmailChangeCurrent => user.email_change_sent_at,
            Purpose::PhoneChange => user.phone_change_sent_at,
            Purpose::Reauthentication => user.reauthentication_sent_at,
        }
    }

    /// The user's identifier a code of this purpose sent to `to` is good for: the pending
    /// one for a change, else the one the user has now of the same kind as `to`.
    fn expected<'u>(self, user: &'u UserRow, to: &Identifier) -> Option<&'u str> {
        match (self, to) {
            (Purpose::EmailChangeNew, _) => user.email_change.as_deref(),
            (Purpose::EmailChangeCurrent, _) => user.email.as_deref(),
            (Purpose::PhoneChange, _) => user.phone_change.as_deref(),
            (_, Identifier::Email(_)) => user.email.as_deref(),
            (_, Identifier::Phone(_)) => user.phone.as_deref(),
        }
    }

    /// Whether a code sent to `to` still belongs to the user: a code is only good for the
    /// address or number it was sent to, while that is still the user's.
    pub fn is_current(self, user: &UserRow, to: &Identifier) -> bool {
        self.expected(user, to)
            .is_some_and(|current| current.eq_ignore_ascii_case(to.as_str()))
    }
}

/// What checking one-time codes needs: a pool for the short transactions that count wrong
/// codes, and the rules (`GOTRUE_MAILER_OTP_EXP`, `GOTRUE_SMS_OTP_EXP`, `LATCHKEY_OTP_MAX_ATTEMPTS`, and whether an
/// email change needs both addresses' confirmation).
#[derive(Debug, Clone)]
pub struct Codes {
    db: Pool,
    email_lifetime: Duration,
    sms_lifetime: Duration,
    max_attempts: i32,
    secure_email_change: bool,
    autoconfirm: bool,
}

impl Codes {
    pub fn new(db: Pool, config: &Config) -> Codes {
        Codes {
            db,
            email_lifetime: config.mailer.otp_exp,
            sms_lifetime: config.sms.otp_exp,
            max_attempts: config.mailer.otp_max_attempts,
            secure_email_change: config.mailer.secure_email_change_enabled,
            autoconfirm: config.mailer_autoconfirm,
        }
    }

    /// How long a code sent to `to` lives.
    pub fn lifetime(&self, to: &Identifier) -> Duration {
        match to {
            Identifier::Email(_) => self.email_lifetime,
            Identifier::Phone(_) => self.sms_lifetime,
        }
    }

    /// Secure email change (`GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED`) without autoconfirm:
    /// the current address confirms an email change as well as the new one.
    pub fn email_change_needs_both_addresses(&self) -> bool {
        self.secure_email_change && !self.autoconfirm
    }
}

/// `time + span`; `None` past the end of the calendar (a lifetime or frequency of many
/// millennia, which the settings do not forbid: such a span never ends).
fn later(time: DateTime<Utc>, span: Duration) -> Option<DateTime<Utc>> {
    time.checked_add_signed(chrono::Duration::from_std(span).ok()?)
}

/// Whether a code sent at `sent_at` is past its lifetime. A code with no send time has never
/// been valid.
pub fn is_expired(sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>, lifetime: Duration) -> bool {
    match sent_at {
        None => true,
        Some(sent) => later(sent, lifetime).is_some_and(|end| now > end),
    }
}

/// GoTrue's send-frequency rule (`GOTRUE_SMTP_MAX_FREQUENCY` for mail): a code of one kind
/// goes to a user at most once per `frequency`. Returns the whole seconds to wait (rounded
/// up) when too early.
pub fn wait_before_resend(sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>, frequency: Duration) -> Option<i64> {
    let sent = sent_at?;
    match later(sent, frequency) {
        Some(next) => (now < next).then(|| ((next - now).num_milliseconds() + 999) / 1000),
        None => Some(i64::MAX),
    }
}

#[cfg(test)]
mod tests;
