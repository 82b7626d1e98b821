//! Textlocal: `POST https://api.textlocal.in/send`, a form (`sender`, `apikey`, `message`,
//! `numbers`), as GoTrue's `textlocal.go`. Textlocal answers HTTP 200 also when it refuses:
//! `status` says which. SMS only.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::http::{self, Auth};
use super::{Message, SmsError};
use crate::config::SmsProvider;

const PROVIDER: &str = "textlocal";
const API_BASE: &str = "https://api.textlocal.in";

#[derive(Debug, Clone)]
pub(super) struct Textlocal {
    url: Url,
    api_key: SecretString,
    sender: String,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: String,
    #[serde(default)]
    errors: Vec<Problem>,
    #[serde(default)]
    messages: Vec<Sent>,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Sent {
    /// A string in Textlocal's documentation, a number in some answers: either is kept.
    #[serde(default)]
    id: serde_json::Value,
}

impl Textlocal {
    pub(super) fn new(provider: &SmsProvider, base: Option<&Url>) -> anyhow::Result<Textlocal> {
        let SmsProvider::Textlocal { api_key, sender } = provider else {
            anyhow::bail!("not Textlocal's configuration");
        };
        Ok(Textlocal {
            url: http::endpoint(API_BASE, base, &["send"])?,
            api_key: api_key.clone(),
            sender: sender.clone(),
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, message: &Message<'_>) -> Result<String, SmsError> {
        let form = [
            ("sender", self.sender.as_str()),
            ("apikey", self.api_key.expose_secret()),
            ("message", message.body),
            ("numbers", message.to),
        ];
        let answer = http::post_form(client, PROVIDER, &self.url, Auth::InForm, &form).await?;
        let parsed: Answer = answer.json(PROVIDER)?;
        let id = match parsed.messages.first().map(|sent| &sent.id) {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => String::new(),
        };
        if parsed.status != "success" || !(200..300).contains(&answer.status) {
            // Unlike GoTrue, the message text is left out of the error (it holds the code).
            return Err(match parsed.errors.first() {
                Some(problem) => answer.refused(
                    PROVIDER,
                    &format!("{} (Textlocal code {})", problem.message, problem.code),
                ),
                None => answer.refused(PROVIDER, &format!("status {:?}", parsed.status)),
            });
        }
        Ok(id)
    }
}
