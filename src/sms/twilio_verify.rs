//! Twilio Verify: Twilio makes the code, texts it, and checks it, as GoTrue's
//! `twilio_verify.go`. Sending starts a verification (`POST /v2/Services/{sid}/Verifications`,
//! `To` and `Channel`); checking asks `POST /v2/Services/{sid}/VerificationCheck` (`To`,
//! `Code`). HTTP Basic with the account SID and auth token. The message text is Twilio's, so
//! `GOTRUE_SMS_TEMPLATE` does not apply.

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::http::{self, Auth};
use super::twilio::Refusal;
use super::{Message, SmsError};
use crate::config::SmsProvider;

const PROVIDER: &str = "twilio_verify";
const API_BASE: &str = "https://verify.twilio.com";

#[derive(Debug, Clone)]
pub(super) struct TwilioVerify {
    start_url: Url,
    check_url: Url,
    account_sid: String,
    auth_token: SecretString,
}

#[derive(Deserialize)]
struct Verification {
    sid: String,
}

#[derive(Deserialize)]
struct VerificationCheck {
    #[serde(default)]
    status: String,
    #[serde(default)]
    valid: bool,
}

impl TwilioVerify {
    pub(super) fn new(provider: &SmsProvider, base: Option<&Url>) -> anyhow::Result<TwilioVerify> {
        let SmsProvider::TwilioVerify {
            account_sid,
            auth_token,
            message_service_sid,
        } = provider
        else {
            anyhow::bail!("not Twilio Verify's configuration");
        };
        let url = |last| http::endpoint(API_BASE, base, &["v2", "Services", message_service_sid, last]);
        Ok(TwilioVerify {
            start_url: url("Verifications")?,
            check_url: url("VerificationCheck")?,
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
        })
    }

    /// Starts a verification: Twilio sends its own code; the answer is the verification SID.
    pub(super) async fn send(&self, client: &reqwest::Client, message: &Message<'_>) -> Result<String, SmsError> {
        // Unlike Programmable Messaging, Verify takes the bare number whatever the channel.
        let to = format!("+{}", message.to);
        let form = [("To", to.as_str()), ("Channel", message.channel.as_str())];
        let answer = self.post(client, &self.start_url, &form).await?;
        Ok(answer.json::<Verification>(PROVIDER)?.sid)
    }

    /// Whether `code` is the one Twilio sent to `to`. Twilio answers 404 when no verification
    /// is pending for the number (never started, expired, already approved, or too many
    /// attempts): that is a wrong code, not a failure.
    pub(super) async fn check(&self, client: &reqwest::Client, to: &str, code: &str) -> Result<bool, SmsError> {
        let to = format!("+{to}");
        let form = [("To", to.as_str()), ("Code", code)];
        match self.post(client, &self.check_url, &form).await {
            Ok(answer) => {
                let check: VerificationCheck = answer.json(PROVIDER)?;
                Ok(check.status == "approved" && check.valid)
            }
            Err(SmsError::Refused { status: 404, .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// POSTs `form`; a status other than 200 or 201 is Twilio's refusal.
    async fn post(&self, client: &reqwest::Client, url: &Url, form: &[(&str, &str)]) -> Result<http::Answer, SmsError> {
        let answer = http::post_form(
            client,
            PROVIDER,
            url,
            Auth::Basic(&self.account_sid, &self.auth_token),
            form,
        )
        .await?;
        if matches!(answer.status, 200 | 201) {
            return Ok(answer);
        }
        Err(match answer.json::<Refusal>(PROVIDER) {
            Ok(refusal) => refusal.into_error(&answer, PROVIDER),
            Err(_) => answer.refused(PROVIDER, "no error message"),
        })
    }
}
