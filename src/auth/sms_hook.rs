//! The send-SMS hook (`GOTRUE_HOOK_SEND_SMS_*`): when it is on, every SMS code (phone
//! sign-in, phone change, reauthentication, phone MFA) goes to the hook instead of the SMS
//! provider, and the hook sends it however it likes. The input is GoTrue's `SendSMSInput`
//! (`internal/hooks/v0hooks`): `{"metadata", "user", "sms": {"otp", "sms_type", "phone"}}`,
//! where `sms_type` is `"mfa"` for a phone factor's challenge and absent otherwise, and the
//! output an empty object (or GoTrue's `{"error": {...}}`, which becomes the client's error).

use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use crate::db::users::UserRow;
use crate::error::Error;
use crate::hooks::Hook;

/// What the hook is asked to send.
#[derive(Debug, Clone, Copy)]
pub struct SmsForHook<'a> {
    /// The one-time code.
    pub otp: &'a str,
    /// The number as stored (E.164 digits without `+`), as GoTrue passes it.
    pub phone: &'a str,
    /// A code for a phone MFA factor (`sms_type: "mfa"`).
    pub mfa: bool,
}

/// Calls `hook` (the send-SMS hook) to send `sms` to `user`. `conn` is the request's
/// transaction: a Postgres hook runs in it, so the code's row and whatever the hook writes
/// commit or roll back together. An error means the code was not sent.
pub async fn send_sms(conn: &mut PgConnection, hook: &Hook, user: &UserRow, sms: SmsForHook<'_>) -> Result<(), Error> {
    hook.call(conn, input(user, sms)).await.map(|_| ())
}

/// GoTrue's `SendSMSInput` without `metadata` (the transport adds it).
fn input(user: &UserRow, sms: SmsForHook<'_>) -> Value {
    let mut text = Map::new();
    text.insert("otp".into(), sms.otp.into());
    // GoTrue's `omitempty`: only a factor's challenge names its type.
    if sms.mfa {
        text.insert("sms_type".into(), "mfa".into());
    }
    text.insert("phone".into(), sms.phone.into());
    json!({ "user": user_object(user), "sms": text })
}

/// The user as GoTrue's `models.User` serialises it (the fields a hook can use to pick a
/// language or a sender: id, contact details, metadata, timestamps). Identities are not
/// loaded for this call, as in GoTrue's phone flows, so the list is empty.
fn user_object(user: &UserRow) -> Value {
    let mut object = json!({
        "id": user.id,
        "aud": user.aud,
        "role": user.role,
        "email": user.email.as_deref().unwrap_or_default(),
        "phone": user.phone.as_deref().unwrap_or_default(),
        "app_metadata": user.raw_app_meta_data,
        "user_metadata": user.raw_user_meta_data,
        "identities": [],
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "is_anonymous": user.is_anonymous,
    });
    let optional = [
        ("email_confirmed_at", user.email_confirmed_at),
        ("phone_confirmed_at", user.phone_confirmed_at),
        ("confirmation_sent_at", user.confirmation_sent_at),
        ("confirmed_at", user.confirmed_at),
        ("phone_change_sent_at", user.phone_change_sent_at),
        ("reauthentication_sent_at", user.reauthentication_sent_at),
        ("last_sign_in_at", user.last_sign_in_at),
    ];
    for (name, at) in optional {
        if let Some(at) = at {
            object[name] = json!(at);
        }
    }
    if let Some(new_phone) = user.phone_change.as_deref().filter(|p| !p.is_empty()) {
        object["new_phone"] = new_phone.into();
    }
    object
}
