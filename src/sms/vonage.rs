//! Vonage (Nexmo) SMS API: `POST https://rest.nexmo.com/sms/json`, a form (`from`, `to`,
//! `text`, `api_key`, `api_secret`, and `type=unicode` when the text is not ASCII), as
//! GoTrue's `vonage.go`. Vonage answers HTTP 200 also when it refuses: each message's
//! `status` is `"0"` when it was accepted. SMS only.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::http::{self, Auth};
use super::{Message, SmsError};
use crate::config::SmsProvider;

const PROVIDER: &str = "vonage";
const API_BASE: &str = "https://rest.nexmo.com";

#[derive(Debug, Clone)]
pub(super) struct Vonage {
    url: Url,
    api_key: String,
    api_secret: SecretString,
    from: String,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    messages: Vec<Sent>,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "message-id", default)]
    message_id: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "error-text", default)]
    error_text: String,
}

impl Vonage {
    pub(super) fn new(provider: &SmsProvider, base: Option<&Url>) -> anyhow::Result<Vonage> {
        let SmsProvider::Vonage {
            api_key,
            api_secret,
            from,
        } = provider
        else {
            anyhow::bail!("not Vonage's configuration");
        };
        Ok(Vonage {
            url: http::endpoint(API_BASE, base, &["sms", "json"])?,
            api_key: api_key.clone(),
            api_secret: api_secret.clone(),
            from: from.clone(),
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, message: &Message<'_>) -> Result<String, SmsError> {
        let mut form = vec![
            ("from", self.from.as_str()),
            ("to", message.to),
            ("text", message.body),
            ("api_key", self.api_key.as_str()),
            ("api_secret", self.api_secret.expose_secret()),
        ];
        if !message.body.is_ascii() {
            form.push(("type", "unicode"));
        }
        let answer = http::post_form(client, PROVIDER, &self.url, Auth::InForm, &form).await?;
        let parsed: Answer = answer.json(PROVIDER)?;
        let Some(sent) = parsed.messages.into_iter().next() else {
            return Err(answer.refused(PROVIDER, "no message in the answer"));
        };
        if sent.status != "0" {
            return Err(answer.refused(
                PROVIDER,
                &format!("{} (Vonage status {})", sent.error_text, sent.status),
            ));
        }
        Ok(sent.message_id)
    }
}
