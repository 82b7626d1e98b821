//! Outgoing text messages: the SMS gateways GoTrue can send a one-time code through
//! (`GOTRUE_SMS_PROVIDER`: Twilio, Twilio Verify, MessageBird, Textlocal, Vonage), each making
//! the HTTP request GoTrue makes (`internal/api/sms_provider`). The send-SMS hook is not here:
//! it runs above, in `auth::sms_hook`, because hooks sit above this layer.
//!
//! What goes out is never logged: not the text, not the code; numbers appear masked
//! ([`mask_number`]), also inside a provider's error message.

mod http;
mod messagebird;
mod template;
mod textlocal;
mod twilio;
mod twilio_verify;
mod vonage;

use crate::config::{SmsConfig, SmsProvider};

pub use template::SmsTemplate;

/// How a code travels. GoTrue's wire names: `sms`, `whatsapp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Whatsapp,
}

impl Channel {
    /// GoTrue's name of the channel (`channel` in `/otp`, `/factors/{id}/challenge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }

    /// The channel GoTrue's wire name names, if any.
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "sms" => Some(Channel::Sms),
            "whatsapp" => Some(Channel::Whatsapp),
            _ => None,
        }
    }
}

/// One text to send.
pub struct Message<'a> {
    /// The number as GoTrue stores it: E.164 digits without `+`.
    pub to: &'a str,
    /// The rendered template, the code inside.
    pub body: &'a str,
    /// The code alone (WhatsApp content templates take it as a variable).
    pub code: &'a str,
    pub channel: Channel,
}

/// One configured gateway, with its HTTP client (timeout from `GOTRUE_INTERNAL_HTTP_TIMEOUT`).
#[derive(Debug, Clone)]
pub struct Sender {
    gateway: Gateway,
    client: reqwest::Client,
}

#[derive(Debug, Clone)]
enum Gateway {
    Twilio(twilio::Twilio),
    TwilioVerify(twilio_verify::TwilioVerify),
    Messagebird(messagebird::Messagebird),
    Textlocal(textlocal::Textlocal),
    Vonage(vonage::Vonage),
}

/// Why a message did not go out (or a code could not be checked); the caller answers GoTrue's
/// `sms_send_failed`. The messages hold no code and only masked numbers.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider answered, and said no.
    #[error("{provider} refused the message (HTTP {status}): {message}")]
    Refused {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// No usable answer: the connection failed, timed out, or the answer made no sense.
    #[error("{provider} could not be reached: {reason}")]
    Unreachable { provider: &'static str, reason: String },
    /// The gateway cannot send on this channel (GoTrue: WhatsApp with Twilio only).
    #[error("{provider} cannot send by {channel}")]
    UnsupportedChannel {
        provider: &'static str,
        channel: &'static str,
    },
}

impl Sender {
    /// The sender for phone sign-in: `None` when `GOTRUE_EXTERNAL_PHONE_ENABLED` is off or no
    /// `GOTRUE_SMS_PROVIDER` is set.
    pub fn from_config(config: &SmsConfig) -> anyhow::Result<Option<Sender>> {
        if !config.enabled {
            return Ok(None);
        }
        Sender::for_provider(config)
    }

    /// The configured provider whether or not phone sign-in is on: phone MFA factors send
    /// their codes through it too (GoTrue does not ask `GOTRUE_EXTERNAL_PHONE_ENABLED` there).
    pub fn for_provider(config: &SmsConfig) -> anyhow::Result<Option<Sender>> {
        let Some(provider) = &config.provider else {
            return Ok(None);
        };
        let base = config.provider_url.as_ref();
        let gateway = match provider {
            SmsProvider::Twilio { .. } => Gateway::Twilio(twilio::Twilio::new(provider, base)?),
            SmsProvider::TwilioVerify { .. } => {
                Gateway::TwilioVerify(twilio_verify::TwilioVerify::new(provider, base)?)
            }
            SmsProvider::Messagebird { .. } => Gateway::Messagebird(messagebird::Messagebird::new(provider, base)?),
            SmsProvider::Textlocal { .. } => Gateway::Textlocal(textlocal::Textlocal::new(provider, base)?),
            SmsProvider::Vonage { .. } => Gateway::Vonage(vonage::Vonage::new(provider, base)?),
        };
        Ok(Some(Sender {
            gateway,
            client: http::client(config.timeout)?,
        }))
    }

    /// Which `GOTRUE_SMS_PROVIDER` this is.
    pub fn provider(&self) -> &'static str {
        match &self.gateway {
            Gateway::Twilio(_) => "twilio",
            Gateway::TwilioVerify(_) => "twilio_verify",
            Gateway::Messagebird(_) => "messagebird",
            Gateway::Textlocal(_) => "textlocal",
            Gateway::Vonage(_) => "vonage",
        }
    }

    /// Sends `message`; the provider's message id on success.
    pub async fn send(&self, message: &Message<'_>) -> Result<String, SmsError> {
        let provider = self.provider();
        if !self.supports(message.channel) {
            return Err(SmsError::UnsupportedChannel {
                provider,
                channel: message.channel.as_str(),
            });
        }
        let sent = match &self.gateway {
            Gateway::Twilio(twilio) => twilio.send(&self.client, message).await,
            Gateway::TwilioVerify(verify) => verify.send(&self.client, message).await,
            Gateway::Messagebird(messagebird) => messagebird.send(&self.client, message).await,
            Gateway::Textlocal(textlocal) => textlocal.send(&self.client, message).await,
            Gateway::Vonage(vonage) => vonage.send(&self.client, message).await,
        };
        let counter = if sent.is_ok() { SENT_METRIC } else { FAILED_METRIC };
        metrics::counter!(counter, "provider" => provider).increment(1);
        let to = mask_number(message.to);
        match &sent {
            Ok(id) => tracing::info!(provider, to, channel = message.channel.as_str(), message_id = %id, "sms sent"),
            Err(err) => tracing::warn!(provider, to, channel = message.channel.as_str(), error = %err, "sms not sent"),
        }
        sent
    }

    /// Whether this gateway can send on `channel`: WhatsApp only through Twilio and Twilio
    /// Verify, as in GoTrue (`IsValidMessageChannel`).
    pub fn supports(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => true,
            Channel::Whatsapp => matches!(self.gateway, Gateway::Twilio(_) | Gateway::TwilioVerify(_)),
        }
    }

    /// Twilio Verify makes and checks the codes itself: nothing is stored and `/verify` asks
    /// [`Sender::check_code`].
    pub fn checks_codes_itself(&self) -> bool {
        matches!(self.gateway, Gateway::TwilioVerify(_))
    }

    /// Asks the provider whether `code` is the one it sent to `to` (Twilio Verify; the other
    /// gateways never see a code they did not get from us, so they say no). `Ok(false)` for a
    /// wrong, expired or already used code; an error when the provider could not answer.
    pub async fn check_code(&self, to: &str, code: &str) -> Result<bool, SmsError> {
        let Gateway::TwilioVerify(verify) = &self.gateway else {
            return Ok(false);
        };
        let checked = verify.check(&self.client, to, code).await;
        let to = mask_number(to);
        match &checked {
            Ok(approved) => tracing::info!(provider = self.provider(), to, approved, "sms code checked"),
            Err(err) => tracing::warn!(provider = self.provider(), to, error = %err, "sms code not checked"),
        }
        checked
    }
}

/// `to` for the logs: all but the last three digits hidden (`+*********123`), enough to tell
/// two messages apart without giving the number away.
pub fn mask_number(to: &str) -> String {
    let digits: Vec<char> = to.chars().filter(char::is_ascii_digit).collect();
    let shown = if digits.len() > 6 { 3 } else { 0 };
    let hidden = digits.len() - shown;
    let mut masked = String::with_capacity(digits.len() + 1);
    masked.push('+');
    masked.extend(std::iter::repeat_n('*', hidden));
    masked.extend(&digits[hidden..]);
    masked
}

/// Prometheus counters of texts handed to the provider and of those it refused or did not
/// answer, by `provider` (described with the other metrics in `telemetry`).
pub const SENT_METRIC: &str = "latchkey_sms_sent_total";
pub const FAILED_METRIC: &str = "latchkey_sms_failed_total";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_but_for_three_digits() {
        assert_eq!(mask_number("15555550123"), "+********123");
        assert_eq!(mask_number("+44 7700 900123"), "+*********123");
        assert_eq!(mask_number("12345"), "+*****", "short numbers are hidden whole");
        assert_eq!(mask_number(""), "+");
    }

    #[test]
    fn channels_have_gotrues_names() {
        for channel in [Channel::Sms, Channel::Whatsapp] {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        assert_eq!(Channel::parse("SMS"), None);
        assert_eq!(Channel::parse("telegram"), None);
    }
}
