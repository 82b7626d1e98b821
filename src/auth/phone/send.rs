//! The SMS channel of one-time codes (GoTrue's `sendPhoneConfirmation`): a fresh code is
//! issued through `auth::codes` (replacing the previous one of its kind), the `*_sent_at`
//! column stamped, and the code sent, all inside the caller's transaction, so that a gateway
//! failure leaves neither a code nor a new user behind. The one place that sends a code by
//! text message.

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::codes::{self, Identifier, NewCode, Purpose};
use crate::auth::outbox::{Outbox, PhoneUse, Texter};
use crate::auth::sms_hook::{self, SmsForHook};
use crate::db::one_time_tokens::Confirms;
use crate::db::users::{self, SentAt, UserRow};
use crate::error::{Error, ErrorCode, Result};
use crate::sms::{Channel, Message};

/// Digits of the stored stand-in for a code a gateway makes itself: as hard to guess as a
/// refresh token.
const UNUSABLE_CODE_DIGITS: usize = 40;

/// The texts of the phone flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// Confirms the number of an account, or signs in by code (`/otp`): GoTrue sends a
    /// confirmation code for both.
    Confirmation,
    /// Proves the new number of a phone change; the number goes into `phone_change`.
    PhoneChange,
    /// The nonce of `PUT /user` for a user without an email address.
    Reauthentication,
}

impl Text {
    fn purpose(self) -> Purpose {
        match self {
            Text::Confirmation => Purpose::Confirmation,
            Text::PhoneChange => Purpose::PhoneChange,
            Text::Reauthentication => Purpose::Reauthentication,
        }
    }

    /// GoTrue's name for it, in the `sms_send_failed` message.
    fn otp_type(self) -> &'static str {
        match self {
            Text::Confirmation => "confirmation",
            Text::PhoneChange => "phone_change",
            Text::Reauthentication => "reauthentication",
        }
    }
}

/// What was sent: the user as stamped, and the gateway's message id (`test-otp` for a test
/// number, GoTrue's value), which `/otp` and `/resend` answer with.
#[derive(Debug)]
pub struct SentText {
    pub user: UserRow,
    pub message_id: String,
}

/// Issues a code of `text` for the user and sends it to `to` (E.164 digits) by `channel`.
/// Locks the user row. Refused with GoTrue's 429 within `GOTRUE_SMS_MAX_FREQUENCY` of the
/// previous one of its kind, or when the server's SMS budget is spent; a gateway failure is
/// GoTrue's `422 sms_send_failed`. `confirms`: what a confirmation code confirms besides the
/// number (`auth::phone::verify`).
pub async fn send_code(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user_id: Uuid,
    text: Text,
    to: &str,
    channel: Channel,
    confirms: &Confirms,
) -> Result<SentText> {
    let texter = outbox.sms(PhoneUse::SendCode)?;
    let settings = outbox.sms_settings();
    let user = users::lock(&mut *conn, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished while sending a text message"))?;
    let now = Utc::now();
    // Before the test numbers, as in GoTrue, so that they behave like real ones.
    if let Some(wait) = codes::wait_before_resend(text.purpose().sent_at(&user), now, settings.max_frequency) {
        return Err(Error::too_many_requests(
            ErrorCode::OverSmsSendRateLimit,
            format!("For security purposes, you can only request this after {wait} seconds."),
        ));
    }
    if !texter.supports(channel) {
        return Err(Error::validation(super::INVALID_CHANNEL));
    }
    let test_code = settings.test_otp_for(to, now);
    let user = match text {
        Text::Confirmation => users::stamp_sent(&mut *conn, user.id, SentAt::Confirmation).await?,
        Text::PhoneChange => users::set_phone_change(&mut *conn, user.id, to).await?,
        Text::Reauthentication => users::stamp_sent(&mut *conn, user.id, SentAt::Reauthentication).await?,
    };
    let identifier = Identifier::Phone(to.to_owned());
    let new = NewCode {
        user_id: user.id,
        purpose: text.purpose(),
        to: &identifier,
        pkce: false,
        length: settings.otp_length,
        confirms,
    };
    let Some(code) = test_code else {
        // Twilio Verify makes its own code and checks it (`auth::phone::verify`); the stored
        // one, long and never sent anywhere, only keeps it single-use and expiring.
        let issued = match texter.gateway_checks_codes() {
            Some(_) => codes::issue_code(&mut *conn, &new, codes::generate(UNUSABLE_CODE_DIGITS)).await?,
            None => codes::issue(&mut *conn, &new).await?,
        };
        // GoTrue counts texts against the server's budget unless numbers are autoconfirmed.
        if !settings.autoconfirm {
            outbox.take_sms_budget().await?;
        }
        let message_id = match texter {
            Texter::Hook(hook) => {
                // A Postgres hook runs in this transaction: its writes and the code go together.
                let sms = SmsForHook {
                    otp: &issued.code,
                    phone: to,
                    mfa: false,
                };
                sms_hook::send_sms(conn, hook, &user, sms).await?;
                String::new()
            }
            Texter::Gateway(sender) => {
                let body = outbox.sms_text(&issued.code)?;
                let message = Message {
                    to,
                    body: &body,
                    code: &issued.code,
                    channel,
                };
                // The sender logs the outcome, the number masked, never the text.
                sender.send(&message).await.map_err(|err| {
                    Error::unprocessable(
                        ErrorCode::SmsSendFailed,
                        format!("Error sending {} OTP to provider: {err}", text.otp_type()),
                    )
                })?
            }
        };
        return Ok(SentText { user, message_id });
    };
    // A test number: its fixed code, stored hashed like any other; nothing is sent.
    codes::issue_code(&mut *conn, &new, code.to_owned()).await?;
    Ok(SentText {
        user,
        message_id: "test-otp".to_owned(),
    })
}
