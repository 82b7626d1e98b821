//! Verifying a code sent by text message (`POST /verify` with `type` `sms` or `phone_change`):
//! found and counted by `auth::codes` like a mailed code (hashed, attempt-limited, single use,
//! only for the number it went to while that is still the user's), then its effect applied:
//! the number confirmed (a sign-in), or the new number of a phone change made the user's.
//!
//! A code that confirms a number the account never confirmed hands the account to whoever
//! holds the number, unless the sign-up that created the account sent it
//! (`Confirms::Account`): anyone can sign up with someone else's number and a password of
//! their own; when the owner later signs in by code, that password, the other identities and
//! every session go, as `auth::proven_address` does for addresses. GoTrue keeps them.

use serde_json::json;
use sqlx::PgConnection;

use crate::auth::codes::{self, Codes, Identifier, Matched, Purpose};
use crate::auth::identities::refresh_providers;
use crate::auth::outbox::{Outbox, PhoneUse};
use crate::db::audit::{self, Action};
use crate::db::identities::{self, IdentityRow};
use crate::db::one_time_tokens::{self, Confirms};
use crate::db::sessions;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// The `type` of a phone verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneVerifyType {
    /// `sms`: the code of a sign-up or of `/otp`.
    Sms,
    /// `phone_change`: the code sent to the new number.
    PhoneChange,
}

impl PhoneVerifyType {
    pub fn parse(raw: &str) -> Option<PhoneVerifyType> {
        match raw {
            "sms" => Some(PhoneVerifyType::Sms),
            "phone_change" => Some(PhoneVerifyType::PhoneChange),
            _ => None,
        }
    }

    fn purpose(self) -> Purpose {
        match self {
            PhoneVerifyType::Sms => Purpose::Confirmation,
            PhoneVerifyType::PhoneChange => Purpose::PhoneChange,
        }
    }
}

fn invalid() -> Error {
    Error::forbidden(ErrorCode::OtpExpired, "Token has expired or is invalid")
}

/// A code that matched, found by [`find`] for [`verify`].
#[derive(Debug)]
pub struct Found(Matched);

/// Finds the code `code` sent to `phone` (normalised), before the verification's
/// transaction: a wrong one is counted against the number's codes and stays counted. With
/// Twilio Verify the gateway made the code and says whether it is right.
pub async fn find(codes: &Codes, outbox: &Outbox, vtype: PhoneVerifyType, phone: &str, code: &str) -> Result<Found> {
    let to = Identifier::Phone(phone.to_owned());
    let purposes = [vtype.purpose()];
    // A test number's fixed code is stored like any other, whoever makes the real ones.
    let test_number = outbox.sms_settings().test_otp_for(phone, chrono::Utc::now()).is_some();
    let gateway = outbox
        .sms(PhoneUse::VerifyCode)
        .ok()
        .and_then(|texter| texter.gateway_checks_codes())
        .filter(|_| !test_number);
    let found = match gateway {
        Some(sender) => {
            let accepted = match sender.check_code(phone, code).await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(to = %crate::sms::mask_number(phone), error = %err, "the SMS gateway could not check a code");
                    false
                }
            };
            codes::find_checked_by_gateway(codes, &to, &purposes, accepted).await?
        }
        None => codes::find_by_code(codes, &to, code, &purposes).await?,
    };
    found
        // Only a code that went to a number proves one.
        .filter(|code| matches!(code.to(), Identifier::Phone(_)))
        .map(Found)
        .ok_or_else(invalid)
}

/// Uses a code found by [`find`], inside the caller's transaction; returns the user to
/// start a session for.
pub async fn verify(conn: &mut PgConnection, codes: &Codes, found: Found, ip: &str) -> Result<UserRow> {
    let Found(code) = found;
    let user = codes::lock_for_use(conn, codes, &code).await?.ok_or_else(invalid)?;
    if user.is_banned(chrono::Utc::now()) {
        return Err(Error::forbidden(ErrorCode::UserBanned, "User is banned"));
    }
    if !codes::is_usable(codes, &code, &user) {
        return Err(invalid());
    }
    let user = match code.purpose() {
        Purpose::Confirmation => confirm(conn, &user, &code, ip).await?,
        Purpose::PhoneChange => change_phone(conn, &user, ip).await?,
        _ => return Err(invalid()),
    };
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    Ok(user)
}

/// GoTrue's `ConfirmPhone`, and for a number the account never confirmed, whatever proving it
/// does (see the module's comment).
async fn confirm(conn: &mut PgConnection, user: &UserRow, code: &Matched, ip: &str) -> Result<UserRow> {
    let confirms = one_time_tokens::confirms_of(&mut *conn, code.id())
        .await?
        .unwrap_or_default();
    let claim = match confirms {
        _ if user.phone_confirmed_at.is_some() => None,
        Confirms::Account => None,
        Confirms::Address { password_hash } => Some(password_hash),
    };
    let traits = json!({ "provider": "phone" });
    let Some(password_hash) = claim else {
        audit::insert(
            &mut *conn,
            audit::Entry::by_user(user, Action::UserSignedUp, Some(traits), ip),
        )
        .await?;
        let confirmed = users::confirm_phone(&mut *conn, user.id).await?;
        identities::set_phone(&mut *conn, user.id, confirmed.phone.as_deref().unwrap_or("")).await?;
        return Ok(confirmed);
    };
    let phone = user.phone.clone().unwrap_or_default();
    let identity = phone_identity(conn, user, &phone).await?;
    let removed = identities::delete_all_except(&mut *conn, user.id, identity.id).await?;
    let ended_sessions = sessions::delete_all_for_user(&mut *conn, user.id).await?;
    users::claim_by_phone(&mut *conn, user.id, password_hash.as_deref()).await?;
    let claimed = refresh_providers(conn, user.id).await?;
    for identity in &removed {
        audit::insert(
            &mut *conn,
            audit::Entry::identity(&claimed, Action::IdentityUnlinked, identity, ip),
        )
        .await?;
    }
    let traits = json!({
        "provider": "phone",
        "ended_sessions": ended_sessions,
        "password_removed": user.encrypted_password.is_some() && user.encrypted_password != password_hash,
    });
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(&claimed, Action::UserSignedUp, Some(traits), ip),
    )
    .await?;
    Ok(claimed)
}

/// The account's `phone` identity with nothing in it but the proven number, made if missing.
async fn phone_identity(conn: &mut PgConnection, user: &UserRow, phone: &str) -> Result<IdentityRow> {
    let claims = phone_claims(user, phone);
    let existing = identities::for_user(&mut *conn, user.id)
        .await?
        .into_iter()
        .find(|identity| identity.provider == "phone");
    Ok(match existing {
        Some(identity) => identities::refresh_data(&mut *conn, identity.id, &claims).await?,
        None => identities::insert(&mut *conn, user.id, "phone", &user.id.to_string(), &claims).await?,
    })
}

fn phone_claims(user: &UserRow, phone: &str) -> serde_json::Value {
    json!({
        "sub": user.id.to_string(),
        "phone": phone,
        "email_verified": false,
        "phone_verified": true,
    })
}

/// Applies the pending `phone_change` at once (`GOTRUE_SMS_AUTOCONFIRM`), in the caller's
/// transaction.
pub async fn apply_phone_change_now(conn: &mut PgConnection, user_id: uuid::Uuid, ip: &str) -> Result<UserRow> {
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished while changing its number"))?;
    change_phone(conn, &user, ip).await
}

/// GoTrue's `ConfirmPhoneChange`: the pending number becomes the user's, unless another
/// account took it meanwhile (`phone_exists`); the phone identity follows, made if missing.
async fn change_phone(conn: &mut PgConnection, user: &UserRow, ip: &str) -> Result<UserRow> {
    let new_phone = user.phone_change.clone().unwrap_or_default();
    if users::phone_taken(&mut *conn, &new_phone, user.id).await? {
        return Err(crate::auth::accounts::phone_exists());
    }
    audit::insert(&mut *conn, audit::Entry::by_user(user, Action::UserModified, None, ip)).await?;
    users::apply_phone_change(&mut *conn, user.id)
        .await
        .map_err(crate::auth::accounts::address_taken)?;
    if !identities::set_phone(&mut *conn, user.id, &new_phone).await? {
        let claims = phone_claims(user, &new_phone);
        identities::insert(&mut *conn, user.id, "phone", &user.id.to_string(), &claims).await?;
    }
    refresh_providers(conn, user.id).await
}
