//! Phone sign-in and the SMS gateway: GoTrue's `GOTRUE_EXTERNAL_PHONE_ENABLED`,
//! `GOTRUE_SMS_*` and `GOTRUE_RATE_LIMIT_SMS_SENT`, plus `LATCHKEY_SMS_PROVIDER_URL` (GoTrue
//! hard-codes each provider's URL; this moves the active one to a regional endpoint, a proxy
//! or a test's fake) and GoTrue's `GOTRUE_INTERNAL_HTTP_TIMEOUT` for the calls to it.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env, Rate};

/// GoTrue's SMS template when `GOTRUE_SMS_TEMPLATE` is empty.
pub const DEFAULT_SMS_TEMPLATE: &str = "Your code is {{ .Code }}";

#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// `GOTRUE_EXTERNAL_PHONE_ENABLED` (off): sign-in with a phone number.
    pub enabled: bool,
    /// `GOTRUE_SMS_AUTOCONFIRM` (off): a phone sign-up is confirmed without a code.
    pub autoconfirm: bool,
    /// `GOTRUE_SMS_OTP_EXP` (60 s): how long a texted code lives.
    pub otp_exp: Duration,
    /// `GOTRUE_SMS_OTP_LENGTH` (6 to 10 digits, 6).
    pub otp_length: usize,
    /// `GOTRUE_SMS_MAX_FREQUENCY` (1 min): one code to one number at most this often.
    pub max_frequency: Duration,
    /// `GOTRUE_SMS_TEMPLATE` (GoTrue's "Your code is {{ .Code }}"), Go template syntax,
    /// checked at start-up.
    pub template: String,
    /// `GOTRUE_SMS_TEST_OTP` (`number:code,number:code`): numbers whose code is fixed and
    /// never sent, keyed as GoTrue stores numbers (digits, no `+`).
    pub test_otp: TestCodes,
    /// `GOTRUE_SMS_TEST_OTP_VALID_UNTIL` (RFC 3339): the test codes stop working then.
    pub test_otp_valid_until: Option<DateTime<Utc>>,
    /// `GOTRUE_RATE_LIMIT_SMS_SENT`: the server's SMS budget (read with the other limits).
    pub rate_limit_sms_sent: Rate,
    /// `GOTRUE_SMS_PROVIDER` and its credentials; `None` when unset.
    pub provider: Option<SmsProvider>,
    /// `LATCHKEY_SMS_PROVIDER_URL`: replaces the scheme, host and port (and prefixes the path)
    /// of the active provider's API; the provider's own path is kept.
    pub provider_url: Option<Url>,
    /// `GOTRUE_INTERNAL_HTTP_TIMEOUT` (10 s): the longest one call to the provider may take.
    pub timeout: Duration,
}

impl SmsConfig {
    /// GoTrue's `GetTestOTP`: the fixed code of `phone` (digits, no `+`) while test codes
    /// are valid.
    pub fn test_otp_for(&self, phone: &str, now: DateTime<Utc>) -> Option<&str> {
        if self.test_otp_valid_until.is_some_and(|until| now >= until) {
            return None;
        }
        self.test_otp.0.get(phone).map(String::as_str)
    }
}

/// `GOTRUE_SMS_TEST_OTP`'s fixed codes by number. They sign anyone in as those numbers, so
/// `Debug` (which reaches start-up logs through the configuration) shows only how many there are.
#[derive(Clone, Default)]
pub struct TestCodes(pub HashMap<String, String>);

impl fmt::Debug for TestCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TestCodes({} numbers)", self.0.len())
    }
}

/// One configured gateway and its credentials (secrets wrapped so that `Debug` hides them).
#[derive(Debug, Clone)]
pub enum SmsProvider {
    /// `twilio`: Programmable Messaging.
    Twilio {
        account_sid: String,
        auth_token: SecretString,
        /// A messaging service SID (`MG...`) or a sending number.
        message_service_sid: String,
        /// A WhatsApp content template; its variable `1` is set to the code.
        content_sid: Option<String>,
    },
    /// `twilio_verify`: Twilio makes and checks the codes.
    TwilioVerify {
        account_sid: String,
        auth_token: SecretString,
        /// The Verify service SID (`VA...`).
        message_service_sid: String,
    },
    Messagebird {
        access_key: SecretString,
        originator: String,
    },
    Textlocal {
        api_key: SecretString,
        sender: String,
    },
    Vonage {
        api_key: String,
        api_secret: SecretString,
        from: String,
    },
}

impl SmsProvider {
    /// The `GOTRUE_SMS_PROVIDER` value.
    pub fn name(&self) -> &'static str {
        match self {
            SmsProvider::Twilio { .. } => "twilio",
            SmsProvider::TwilioVerify { .. } => "twilio_verify",
            SmsProvider::Messagebird { .. } => "messagebird",
            SmsProvider::Textlocal { .. } => "textlocal",
            SmsProvider::Vonage { .. } => "vonage",
        }
    }
}

impl fmt::Display for SmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(super) fn from_env(env: &Env, rate_limit_sms_sent: Rate) -> Result<SmsConfig, ConfigError> {
    let fail = |var: &str, message: String| ConfigError {
        var: var.into(),
        message,
    };
    let otp_length = env.parse_or(&["GOTRUE_SMS_OTP_LENGTH"], 6usize)?;
    if !(6..=10).contains(&otp_length) {
        return Err(fail(
            "GOTRUE_SMS_OTP_LENGTH",
            format!("{otp_length} is out of range (6 to 10)"),
        ));
    }
    let template = env.string_or(&["GOTRUE_SMS_TEMPLATE"], DEFAULT_SMS_TEMPLATE);
    check_template(&template).map_err(|message| fail("GOTRUE_SMS_TEMPLATE", message))?;
    let test_otp = match env.get(&["GOTRUE_SMS_TEST_OTP"]) {
        None => TestCodes::default(),
        Some((var, raw)) => TestCodes(test_otps(&raw).map_err(|message| fail(&var, message))?),
    };
    let test_otp_valid_until = match env.get(&["GOTRUE_SMS_TEST_OTP_VALID_UNTIL"]) {
        None => None,
        Some((var, raw)) => Some(
            DateTime::parse_from_rfc3339(&raw)
                .map_err(|_| fail(&var, format!("{raw:?} is not an RFC 3339 time (2030-01-31T00:00:00Z)")))?
                .with_timezone(&Utc),
        ),
    };
    Ok(SmsConfig {
        enabled: env.bool_or(&["GOTRUE_EXTERNAL_PHONE_ENABLED"], false)?,
        autoconfirm: env.bool_or(&["GOTRUE_SMS_AUTOCONFIRM"], false)?,
        otp_exp: env.positive_duration_or(&["GOTRUE_SMS_OTP_EXP"], Duration::from_secs(60))?,
        otp_length,
        max_frequency: env.duration_or(&["GOTRUE_SMS_MAX_FREQUENCY"], Duration::from_secs(60))?,
        template,
        test_otp,
        test_otp_valid_until,
        rate_limit_sms_sent,
        provider: provider(env)?,
        provider_url: env.url_opt(&["LATCHKEY_SMS_PROVIDER_URL"])?,
        timeout: env.positive_duration_or(&["GOTRUE_INTERNAL_HTTP_TIMEOUT"], Duration::from_secs(10))?,
    })
}

/// Parses a Go `text/template` as GoTrue does at start-up, so a broken one stops the server
/// rather than every sign-in.
pub(super) fn check_template(source: &str) -> Result<(), String> {
    gotmpl::Template::new("sms")
        .parse(source)
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// `GOTRUE_SMS_TEST_OTP`: `number:code` pairs separated by commas (envconfig's map syntax).
/// Numbers are keyed as GoTrue normalises them (no `+`, no spaces); both sides must be digits.
fn test_otps(raw: &str) -> Result<HashMap<String, String>, String> {
    let mut otps = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let Some((number, code)) = pair.split_once(':') else {
            return Err(format!("{pair:?} is not number:code"));
        };
        let number = number.trim().trim_start_matches('+').replace(' ', "");
        let code = code.trim();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&number) || number.len() > 15 || !digits(code) {
            return Err(format!("{pair:?} is not a phone number and a code of digits"));
        }
        otps.insert(number, code.to_owned());
    }
    Ok(otps)
}

/// `GOTRUE_SMS_PROVIDER` and its credentials. Every provider's variables are read (so none is
/// reported as unread); the active one's must all be set, as GoTrue's `Validate` requires.
fn provider(env: &Env) -> Result<Option<SmsProvider>, ConfigError> {
    let read = |name: &str| env.get(&[name]).map(|(_, v)| v);
    let twilio = [
        "GOTRUE_SMS_TWILIO_ACCOUNT_SID",
        "GOTRUE_SMS_TWILIO_AUTH_TOKEN",
        "GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID",
    ]
    .map(read);
    let content_sid = read("GOTRUE_SMS_TWILIO_CONTENT_SID");
    let verify = [
        "GOTRUE_SMS_TWILIO_VERIFY_ACCOUNT_SID",
        "GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN",
        "GOTRUE_SMS_TWILIO_VERIFY_MESSAGE_SERVICE_SID",
    ]
    .map(read);
    let messagebird = ["GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY", "GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR"].map(read);
    let textlocal = ["GOTRUE_SMS_TEXTLOCAL_API_KEY", "GOTRUE_SMS_TEXTLOCAL_SENDER"].map(read);
    let vonage = [
        "GOTRUE_SMS_VONAGE_API_KEY",
        "GOTRUE_SMS_VONAGE_API_SECRET",
        "GOTRUE_SMS_VONAGE_FROM",
    ]
    .map(read);
    let Some((var, name)) = env.get(&["GOTRUE_SMS_PROVIDER"]) else {
        return Ok(None);
    };
    let provider = match name.as_str() {
        "twilio" => {
            let [sid, token, service] =
                required(twilio, "TWILIO", &["ACCOUNT_SID", "AUTH_TOKEN", "MESSAGE_SERVICE_SID"])?;
            SmsProvider::Twilio {
                account_sid: sid,
                auth_token: token.into(),
                message_service_sid: service,
                content_sid,
            }
        }
        "twilio_verify" => {
            let [sid, token, service] = required(
                verify,
                "TWILIO_VERIFY",
                &["ACCOUNT_SID", "AUTH_TOKEN", "MESSAGE_SERVICE_SID"],
            )?;
            SmsProvider::TwilioVerify {
                account_sid: sid,
                auth_token: token.into(),
                message_service_sid: service,
            }
        }
        "messagebird" => {
            let [key, originator] = required(messagebird, "MESSAGEBIRD", &["ACCESS_KEY", "ORIGINATOR"])?;
            SmsProvider::Messagebird {
                access_key: key.into(),
                originator,
            }
        }
        "textlocal" => {
            let [key, sender] = required(textlocal, "TEXTLOCAL", &["API_KEY", "SENDER"])?;
            SmsProvider::Textlocal {
                api_key: key.into(),
                sender,
            }
        }
        "vonage" => {
            let [key, secret, from] = required(vonage, "VONAGE", &["API_KEY", "API_SECRET", "FROM"])?;
            SmsProvider::Vonage {
                api_key: key,
                api_secret: secret.into(),
                from,
            }
        }
        other => {
            return Err(ConfigError {
                var,
                message: format!(
                    "{other:?} is not an SMS provider (twilio, twilio_verify, messagebird, textlocal, vonage)"
                ),
            });
        }
    };
    Ok(Some(provider))
}

/// The values of a provider's variables, or an error naming the first one missing.
fn required<const N: usize>(
    values: [Option<String>; N],
    provider: &str,
    suffixes: &[&str; N],
) -> Result<[String; N], ConfigError> {
    let mut found = Vec::with_capacity(N);
    for (value, suffix) in values.into_iter().zip(suffixes) {
        let var = format!("GOTRUE_SMS_{provider}_{suffix}");
        found.push(value.ok_or_else(|| ConfigError {
            message: format!("required when GOTRUE_SMS_PROVIDER is {}", provider.to_ascii_lowercase()),
            var,
        })?);
    }
    // Exactly N pushed above, one per value.
    Ok(found
        .try_into()
        .unwrap_or_else(|_| unreachable!("one value per variable")))
}

#[cfg(test)]
mod tests;
