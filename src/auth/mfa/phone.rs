//! Phone factors (GoTrue's `factor_type: phone`): a challenge texts a code (by SMS or
//! WhatsApp) through the send-SMS hook when it is on, else the SMS provider, and keeps only
//! its hash in the challenge (GoTrue keeps `otp_code` in clear); verifying compares the hash.
//! With Twilio Verify the provider makes and checks the code, and the challenge holds none.

use sqlx::PgConnection;

use crate::auth::codes::{self, Identifier};
use crate::auth::phone::{self as numbers, INVALID_CHANNEL};
use crate::auth::sms_hook::{self, SmsForHook};
use crate::config::Config;
use crate::db::users::UserRow;
use crate::error::{Error, ErrorCode, Result};
use crate::hooks::Hook;
use crate::sms::{self, Channel, Message, SmsTemplate};

/// The factor type of phone factors (GoTrue's `models.Phone`).
pub const PHONE: &str = "phone";
/// The `amr` method a phone factor's verification records.
pub const PHONE_METHOD: &str = "mfa/phone";

/// How phone factors' codes go out.
#[derive(Debug)]
pub struct PhoneCodes {
    gateway: Option<sms::Sender>,
    hook: Option<Hook>,
    template: SmsTemplate,
    length: usize,
}

impl PhoneCodes {
    /// From `GOTRUE_SMS_PROVIDER` (phone sign-in need not be on), the send-SMS hook and
    /// `GOTRUE_MFA_PHONE_*`.
    pub fn new(config: &Config) -> anyhow::Result<PhoneCodes> {
        Ok(PhoneCodes {
            gateway: sms::Sender::for_provider(&config.sms)?,
            hook: config.hooks.send_sms.as_ref().map(Hook::new).transpose()?,
            template: SmsTemplate::new(&config.mfa.phone_template)?,
            length: config.mfa.phone_otp_length,
        })
    }

    /// The channel a challenge asked for (`sms` when none), if it can be used: with the hook
    /// any of GoTrue's two, else what the provider supports (GoTrue's `IsValidMessageChannel`).
    pub fn channel(&self, asked: Option<&str>) -> Result<Channel> {
        let channel = numbers::channel(asked)?;
        let usable = self.hook.is_some() || self.gateway.as_ref().is_some_and(|g| g.supports(channel));
        if !usable {
            return Err(Error::validation(INVALID_CHANNEL));
        }
        Ok(channel)
    }

    /// Whether the provider (Twilio Verify) makes and checks the codes: no hash is kept then.
    fn provider_checks_codes(&self) -> bool {
        self.hook.is_none() && self.gateway.as_ref().is_some_and(sms::Sender::checks_codes_itself)
    }

    /// Texts a new code to `phone` and returns what the challenge keeps: the code's hash, or
    /// `None` when the provider checks codes itself. `conn` is the challenge's transaction (a
    /// Postgres hook runs in it). Nothing is kept when sending fails.
    pub async fn send(
        &self,
        conn: &mut PgConnection,
        user: &UserRow,
        phone: &str,
        channel: Channel,
    ) -> Result<Option<String>> {
        let code = codes::generate(self.length);
        if let Some(hook) = &self.hook {
            let sms = SmsForHook {
                otp: &code,
                phone,
                mfa: true,
            };
            sms_hook::send_sms(conn, hook, user, sms).await?;
        } else {
            let gateway = self.gateway.as_ref().ok_or_else(no_sender)?;
            let body = self.template.render(&code).map_err(Error::internal)?;
            let message = Message {
                to: phone,
                body: &body,
                code: &code,
                channel,
            };
            gateway.send(&message).await.map_err(|err| {
                Error::unprocessable(
                    ErrorCode::SmsSendFailed,
                    format!("Error sending mfa OTP to provider: {err}"),
                )
            })?;
        }
        Ok((!self.provider_checks_codes()).then(|| codes::token_hash(&Identifier::Phone(phone.to_owned()), &code)))
    }

    /// Whether `code` is the one a challenge of `phone` sent: against the kept hash, or by
    /// asking the provider when it made the code. GoTrue answers `403 otp_expired` when the
    /// provider cannot be asked.
    pub async fn check(&self, phone: &str, kept: Option<&str>, code: &str) -> Result<bool> {
        match kept {
            Some(hash) => Ok(codes::matches(hash, &Identifier::Phone(phone.to_owned()), code)),
            None if self.provider_checks_codes() => {
                let gateway = self.gateway.as_ref().ok_or_else(no_sender)?;
                gateway
                    .check_code(phone, code)
                    .await
                    .map_err(|_| Error::forbidden(ErrorCode::OtpExpired, "Token has expired or is invalid"))
            }
            // A challenge without a code (made while Twilio Verify was the provider, or
            // imported): nothing can match it.
            None => Ok(false),
        }
    }
}

/// Start-up refuses phone factors without a provider or hook (`Config::validate`).
fn no_sender() -> Error {
    Error::internal("phone factors without an SMS provider")
}
