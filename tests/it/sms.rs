//! The SMS gateways against the fake of each provider's API (`fake_sms`): the request each
//! provider receives, its answers, its refusals as `SmsError`. Gateway-level tests call
//! `latchkey::sms` directly with a configuration read from the same variables the server reads.

mod attacks;
mod end_to_end;
mod hook;
mod messagebird;
mod textlocal;
mod twilio;
mod twilio_verify;
mod vonage;

use std::collections::HashMap;

use latchkey::config::Config;
use latchkey::sms::{Channel, Message, Sender, SmsError};

use crate::fake_sms::{FakeSms, Mode};

/// The number every gateway test texts (GoTrue's storage form: digits, no `+`).
pub const NUMBER: &str = "15555550123";

/// The sender `provider` makes from the fake's variables and `extra` ones.
pub fn sender(fake: &FakeSms, provider: &str, extra: &[(&str, &str)]) -> Sender {
    let mut vars: HashMap<String, String> = fake.vars(provider).into_iter().collect();
    vars.insert("GOTRUE_EXTERNAL_PHONE_ENABLED".into(), "true".into());
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(vars).unwrap();
    Sender::from_config(&config.sms).unwrap().expect("a sender")
}

/// A message carrying `code` to [`NUMBER`].
pub fn message<'a>(body: &'a str, code: &'a str, channel: Channel) -> Message<'a> {
    Message {
        to: NUMBER,
        body,
        code,
        channel,
    }
}

/// The error `provider` gives when the fake is in `mode` (with `extra` variables): a refusal
/// with HTTP `status`, naming the provider and holding neither the code nor the number.
/// Returns its message.
pub async fn refusal(fake: &FakeSms, provider: &str, mode: Mode, extra: &[(&str, &str)], status: u16) -> String {
    fake.set_mode(mode);
    let sent = sender(fake, provider, extra)
        .send(&message("Your code is 123456", "123456", Channel::Sms))
        .await;
    fake.set_mode(Mode::Accept);
    let err = sent.unwrap_err();
    match &err {
        SmsError::Refused {
            provider: named,
            status: answered,
            ..
        } if *named == provider && *answered == status => {}
        _ => panic!("{provider}: {err:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains("123456") && !text.contains(NUMBER), "{text}");
    text
}
