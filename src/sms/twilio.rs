//! Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! a form, HTTP Basic with the account SID and auth token, as GoTrue's `twilio.go`. WhatsApp
//! goes through the same endpoint with `whatsapp:` before the numbers; with
//! `GOTRUE_SMS_TWILIO_CONTENT_SID` the message is that content template, its variable `1` the
//! code (Twilio's WhatsApp authentication templates).

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::http::{self, Auth};
use super::{Channel, Message, SmsError};
use crate::config::SmsProvider;

const PROVIDER: &str = "twilio";
const API_BASE: &str = "https://api.twilio.com";

#[derive(Debug, Clone)]
pub(super) struct Twilio {
    url: Url,
    account_sid: String,
    auth_token: SecretString,
    /// A messaging service SID (`MG...`) or a sending number.
    from: String,
    content_sid: Option<String>,
}

/// A message Twilio accepted (HTTP 200/201).
#[derive(Deserialize)]
struct Accepted {
    sid: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error_code: Option<serde_json::Value>,
    #[serde(default)]
    error_message: Option<String>,
}

/// Twilio's error answer (`{"code": 21211, "message": "...", "more_info": "...", "status": 400}`).
#[derive(Deserialize)]
pub(super) struct Refusal {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

impl Refusal {
    pub(super) fn into_error(self, answer: &http::Answer, provider: &'static str) -> SmsError {
        let code = self
            .code
            .map(|code| format!(" (Twilio code {code})"))
            .unwrap_or_default();
        answer.refused(provider, &format!("{}{code}", self.message))
    }
}

impl Twilio {
    pub(super) fn new(provider: &SmsProvider, base: Option<&Url>) -> anyhow::Result<Twilio> {
        let SmsProvider::Twilio {
            account_sid,
            auth_token,
            message_service_sid,
            content_sid,
        } = provider
        else {
            anyhow::bail!("not Twilio's configuration");
        };
        Ok(Twilio {
            url: http::endpoint(
                API_BASE,
                base,
                &["2010-04-01", "Accounts", account_sid, "Messages.json"],
            )?,
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            from: message_service_sid.clone(),
            content_sid: content_sid.clone(),
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, message: &Message<'_>) -> Result<String, SmsError> {
        let to = format!("+{}", message.to);
        let channel = message.channel.as_str();
        let content_variables;
        let (to, from, mut form) = match message.channel {
            Channel::Sms => (to, self.from.clone(), vec![("Body", message.body)]),
            Channel::Whatsapp => {
                // GoTrue prefixes the sender only when it is a number, not a messaging
                // service SID.
                let from = if is_phone_number(&self.from) {
                    format!("whatsapp:{}", self.from)
                } else {
                    self.from.clone()
                };
                let form = match &self.content_sid {
                    Some(content_sid) => {
                        content_variables = serde_json::json!({ "1": message.code }).to_string();
                        vec![
                            ("ContentSid", content_sid.as_str()),
                            ("ContentVariables", content_variables.as_str()),
                        ]
                    }
                    None => vec![("Body", message.body)],
                };
                (format!("whatsapp:{to}"), from, form)
            }
        };
        form.extend([("To", to.as_str()), ("Channel", channel), ("From", from.as_str())]);
        let answer = http::post_form(
            client,
            PROVIDER,
            &self.url,
            Auth::Basic(&self.account_sid, &self.auth_token),
            &form,
        )
        .await?;
        if !matches!(answer.status, 200 | 201) {
            return Err(match answer.json::<Refusal>(PROVIDER) {
                Ok(refusal) => refusal.into_error(&answer, PROVIDER),
                Err(_) => answer.refused(PROVIDER, "no error message"),
            });
        }
        let accepted: Accepted = answer.json(PROVIDER)?;
        // Twilio may accept the request and report the message failed at once.
        if matches!(accepted.status.as_str(), "failed" | "undelivered") {
            let code = accepted.error_code.map(|code| code.to_string()).unwrap_or_default();
            let reason = accepted.error_message.unwrap_or_default();
            return Err(answer.refused(
                PROVIDER,
                &format!("message {} {}: {reason} {code}", accepted.sid, accepted.status),
            ));
        }
        Ok(accepted.sid)
    }
}

/// GoTrue's `isPhoneNumber` after `formatPhoneNumber`: digits only once `+` and spaces go.
fn is_phone_number(sender: &str) -> bool {
    let digits = sender.trim_start_matches('+').replace(' ', "");
    (2..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbers_get_the_whatsapp_prefix() {
        assert!(is_phone_number("+1 555 555 0100"));
        assert!(is_phone_number("15555550100"));
        assert!(!is_phone_number("MG0123456789abcdef0123456789abcdef"));
        assert!(!is_phone_number("+0123"));
        assert!(!is_phone_number("1"));
    }
}
