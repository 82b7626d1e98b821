//! Verifying what the email flows mailed (`/verify`, the reauthentication nonce): the code or
//! link is found and checked by the channel-independent core (`auth::codes`, which counts wrong
//! codes and locks against concurrent use), then its effect applied (the address confirmed,
//! the email changed, a sign-in) and the user's one-time codes cleared, so each works once.
//!
//! Two steps, because a wrong code must be counted although the request fails: [`find`] checks
//! a typed-in code in a short transaction of its own; [`verify`], in the caller's
//! transaction, locks the user and the code and applies the effect. The nonce of `PUT /user`
//! goes the same way ([`check_nonce`], [`use_nonce`]).

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;

use crate::auth::codes::{self, Identifier, Matched, Purpose};
use crate::auth::proven_address;
use crate::db::audit::{self, Action};
use crate::db::identities;
use crate::db::one_time_tokens::{self, Confirms};
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// The rules and pool of one-time codes, under the name the email flows have always used.
pub use crate::auth::codes::Codes;

/// The `type` of an email verification (`sms` and `phone_change` need an SMS sender, which
/// does not exist yet: `auth::outbox::Outbox::sms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyType {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    EmailChange,
    /// A typed-in email code: the confirmation code, else the magic-link code.
    Email,
}

impl VerifyType {
    pub fn parse(raw: &str) -> Option<VerifyType> {
        Some(match raw {
            "signup" => VerifyType::Signup,
            "invite" => VerifyType::Invite,
            "magiclink" => VerifyType::MagicLink,
            "recovery" => VerifyType::Recovery,
            "email_change" => VerifyType::EmailChange,
            "email" => VerifyType::Email,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VerifyType::Signup => "signup",
            VerifyType::Invite => "invite",
            VerifyType::MagicLink => "magiclink",
            VerifyType::Recovery => "recovery",
            VerifyType::EmailChange => "email_change",
            VerifyType::Email => "email",
        }
    }

    fn purposes(self) -> &'static [Purpose] {
        match self {
            VerifyType::Signup | VerifyType::Invite => &[Purpose::Confirmation],
            VerifyType::MagicLink | VerifyType::Recovery => &[Purpose::Recovery],
            VerifyType::EmailChange => &[Purpose::EmailChangeNew, Purpose::EmailChangeCurrent],
            VerifyType::Email => &[Purpose::Confirmation, Purpose::Recovery],
        }
    }
}

/// What the client presented.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// The hash from an email link (`token_hash`, or `token` on `GET /verify`).
    Hash(&'a str),
    /// The code from the mail, with the (normalised) address it was sent to.
    Code { email: &'a str, code: &'a str },
}

#[derive(Debug)]
pub enum Outcome {
    /// Verified: the caller issues a session, or for a PKCE token a code of the user's
    /// newest flow among `flow_methods`.
    Verified {
        user: Box<UserRow>,
        pkce: bool,
        flow_methods: &'static [&'static str],
    },
    /// The first of the two confirmations of a secure email change.
    EmailChangeFirstLeg,
}

fn invalid(presented: Presented<'_>) -> Error {
    let message = match presented {
        Presented::Hash(_) => "Email link is invalid or has expired",
        Presented::Code { .. } => "Token has expired or is invalid",
    };
    Error::forbidden(ErrorCode::OtpExpired, message)
}

/// A code a client presented, found by [`find`] for [`verify`].
#[derive(Debug)]
pub struct Found<'a> {
    code: Matched,
    presented: Presented<'a>,
}

/// Finds the code a client presented, before the verification's transaction. A typed-in code
/// is checked in a transaction of its own (`codes::find_by_code`), so that a wrong one stays
/// counted.
pub async fn find<'a>(codes: &Codes, vtype: VerifyType, presented: Presented<'a>) -> Result<Found<'a>> {
    let purposes = vtype.purposes();
    let code = match presented {
        Presented::Hash(hash) => codes::find_by_hash(codes, hash, purposes).await?,
        Presented::Code { email, code } => {
            codes::find_by_code(codes, &Identifier::Email(email.to_owned()), code, purposes).await?
        }
    };
    // Only a code that went to an address proves one: a texted code's hash, which its holder
    // can compute, must not confirm an email.
    let code = code
        .filter(|code| matches!(code.to(), Identifier::Email(_)))
        .ok_or_else(|| invalid(presented))?;
    Ok(Found { code, presented })
}

/// Uses a code found by [`find`], inside the caller's transaction.
pub async fn verify(conn: &mut PgConnection, codes: &Codes, found: Found<'_>, ip: &str) -> Result<Outcome> {
    let Found { code, presented } = found;
    let user = codes::lock_for_use(conn, codes, &code)
        .await?
        .ok_or_else(|| invalid(presented))?;
    if user.is_banned(Utc::now()) {
        return Err(Error::forbidden(ErrorCode::UserBanned, "User is banned"));
    }
    if !codes::is_usable(codes, &code, &user) {
        return Err(invalid(presented));
    }
    let (user, flow_methods): (UserRow, &'static [&'static str]) = match code.purpose() {
        Purpose::Confirmation => (confirm(conn, &user, &code, ip).await?, &["email/signup", "invite"]),
        Purpose::Recovery => {
            let user = if user.email_confirmed_at.is_none() {
                confirm(conn, &user, &code, ip).await?
            } else {
                user
            };
            (user, &["magiclink", "recovery"])
        }
        purpose @ (Purpose::EmailChangeNew | Purpose::EmailChangeCurrent) => {
            match change_email(conn, codes, &user, purpose, ip).await? {
                Some(user) => (user, &["email_change"]),
                None => return Ok(Outcome::EmailChangeFirstLeg),
            }
        }
        Purpose::PhoneChange | Purpose::Reauthentication => return Err(invalid(presented)),
    };
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    Ok(Outcome::Verified {
        user: Box::new(user),
        pkce: code.is_pkce(),
        flow_methods,
    })
}

/// GoTrue's `signupVerify` / `User.Confirm`, and for an unconfirmed account whatever proving
/// its address does to it (`auth::proven_address`). Only a confirmation token confirms more
/// than the address; a magic link or recovery link proves the address alone.
async fn confirm(conn: &mut PgConnection, user: &UserRow, code: &Matched, ip: &str) -> Result<UserRow> {
    let confirms = match code.purpose() {
        Purpose::Confirmation => one_time_tokens::confirms_of(&mut *conn, code.id())
            .await?
            .unwrap_or_default(),
        _ => Confirms::default(),
    };
    proven_address::confirm_by_mail(conn, user, confirms, ip).await
}

/// GoTrue's `emailChangeVerify`. `None` when this was the first of two confirmations.
async fn change_email(
    conn: &mut PgConnection,
    codes: &Codes,
    user: &UserRow,
    side: Purpose,
    ip: &str,
) -> Result<Option<UserRow>> {
    let other = if side == Purpose::EmailChangeNew {
        Purpose::EmailChangeCurrent
    } else {
        Purpose::EmailChangeNew
    };
    // With secure email change both addresses must confirm. (GoTrue decides this from the
    // confirm status alone; checking that the other token exists also copes with a setting
    // changed between sending and clicking.)
    if codes.email_change_needs_both_addresses()
        && !user.email_or_empty().is_empty()
        && one_time_tokens::find_for_user(&mut *conn, user.id, other.token_type())
            .await?
            .is_some()
    {
        one_time_tokens::delete(&mut *conn, user.id, side.token_type()).await?;
        users::set_email_change_confirm_status(&mut *conn, user.id, 1).await?;
        return Ok(None);
    }
    let new_email = user.email_change.clone().unwrap_or_default();
    if users::email_taken(&mut *conn, &new_email, user.id).await? {
        return Err(Error::unprocessable(
            ErrorCode::EmailExists,
            "A user with this email address has already been registered",
        ));
    }
    record(conn, user, Action::UserModified, ip).await?;
    let changed = users::apply_email_change(&mut *conn, user.id).await?;
    if !identities::set_email(&mut *conn, user.id, &new_email, true).await? {
        // An anonymous user adding an address gets an email identity, as in GoTrue.
        let claims = json!({
            "sub": user.id.to_string(),
            "email": new_email,
            "email_verified": true,
            "phone_verified": false,
        });
        identities::insert(&mut *conn, user.id, "email", &user.id.to_string(), &claims).await?;
    }
    Ok(Some(changed))
}

/// Applies the pending `email_change` at once (an anonymous user adding an address while
/// autoconfirm is on).
pub async fn apply_email_change_now(
    conn: &mut PgConnection,
    codes: &Codes,
    user: &UserRow,
    ip: &str,
) -> Result<UserRow> {
    let changed = change_email(conn, codes, user, Purpose::EmailChangeNew, ip)
        .await?
        .ok_or_else(|| Error::internal("autoconfirmed email change asked for a second confirmation"))?;
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    Ok(changed)
}

/// A reauthentication nonce whose code matched, for [`use_nonce`].
#[derive(Debug)]
pub struct CheckedNonce(Matched);

fn nonce_not_valid() -> Error {
    Error::unprocessable(ErrorCode::ReauthenticationNotValid, "Nonce has expired or is invalid")
}

/// Checks the `nonce` of `PUT /user` (GoTrue's `verifyReauthentication`), the code mailed by
/// `GET /reauthenticate`, before the update's transaction and like a typed-in code in [`find`]:
/// guesses one at a time, a wrong one counted against the nonce (which dies at the limit),
/// committed whatever the outcome.
///
/// `gateway`: the SMS gateway when it makes and checks codes itself (Twilio Verify); a nonce
/// texted to a phone-only user is then checked by asking it, as GoTrue does.
pub async fn check_nonce(
    codes: &Codes,
    user: &UserRow,
    nonce: &str,
    gateway: Option<&crate::sms::Sender>,
) -> Result<CheckedNonce> {
    let to = Identifier::of_user(user);
    let purpose = Purpose::Reauthentication;
    let found = match (&to, gateway) {
        (Identifier::Phone(phone), Some(gateway)) => {
            let accepted = gateway.check_code(phone, nonce.trim()).await.unwrap_or(false);
            codes::find_users_code_checked_by_gateway(codes, user.id, purpose, accepted).await?
        }
        _ => codes::find_users_code(codes, user.id, purpose, &to, nonce.trim()).await?,
    };
    found.map(CheckedNonce).ok_or_else(nonce_not_valid)
}

/// Uses a nonce checked by [`check_nonce`] inside the update's transaction: it must still be
/// live, for the current address, and unexpired. Used once.
pub async fn use_nonce(conn: &mut PgConnection, codes: &Codes, nonce: CheckedNonce) -> Result<()> {
    let CheckedNonce(code) = nonce;
    let user = codes::lock_for_use(conn, codes, &code)
        .await?
        .ok_or_else(nonce_not_valid)?;
    if !codes::is_usable(codes, &code, &user) {
        return Err(nonce_not_valid());
    }
    one_time_tokens::delete(&mut *conn, user.id, Purpose::Reauthentication.token_type()).await?;
    Ok(())
}

async fn record(conn: &mut PgConnection, user: &UserRow, action: Action, ip: &str) -> Result<()> {
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(user, action, Some(json!({ "provider": "email" })), ip),
    )
    .await?;
    Ok(())
}
