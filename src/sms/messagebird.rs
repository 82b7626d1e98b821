//! MessageBird: `POST https://rest.messagebird.com/messages`, a form (`originator`, `body`,
//! `recipients`, `type=sms`, `datacoding=unicode`), `Authorization: AccessKey <key>`, as
//! GoTrue's `messagebird.go`. SMS only.

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::http::{self, Auth};
use super::{Message, SmsError};
use crate::config::SmsProvider;

const PROVIDER: &str = "messagebird";
const API_BASE: &str = "https://rest.messagebird.com";

#[derive(Debug, Clone)]
pub(super) struct Messagebird {
    url: Url,
    access_key: SecretString,
    originator: String,
}

#[derive(Deserialize)]
struct Accepted {
    id: String,
    recipients: Recipients,
}

#[derive(Deserialize)]
struct Recipients {
    #[serde(rename = "totalSentCount", default)]
    total_sent_count: u64,
}

/// `{"errors": [{"code": 2, "description": "...", "parameter": "access_key"}]}`.
#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    errors: Vec<RefusalItem>,
}

#[derive(Deserialize)]
struct RefusalItem {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    description: String,
}

impl Messagebird {
    pub(super) fn new(provider: &SmsProvider, base: Option<&Url>) -> anyhow::Result<Messagebird> {
        let SmsProvider::Messagebird { access_key, originator } = provider else {
            anyhow::bail!("not MessageBird's configuration");
        };
        Ok(Messagebird {
            url: http::endpoint(API_BASE, base, &["messages"])?,
            access_key: access_key.clone(),
            originator: originator.clone(),
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, message: &Message<'_>) -> Result<String, SmsError> {
        let form = [
            ("originator", self.originator.as_str()),
            ("body", message.body),
            ("recipients", message.to),
            ("type", "sms"),
            ("datacoding", "unicode"),
        ];
        let answer = http::post_form(
            client,
            PROVIDER,
            &self.url,
            Auth::Scheme("AccessKey", &self.access_key),
            &form,
        )
        .await?;
        if !(200..300).contains(&answer.status) {
            let refusal = answer.json::<Refusal>(PROVIDER).ok();
            let first = refusal.as_ref().and_then(|r| r.errors.first());
            return Err(match first {
                Some(item) => answer.refused(
                    PROVIDER,
                    &format!("{} (MessageBird code {})", item.description, item.code),
                ),
                None => answer.refused(PROVIDER, "no error message"),
            });
        }
        let accepted: Accepted = answer.json(PROVIDER)?;
        if accepted.recipients.total_sent_count == 0 {
            return Err(answer.refused(PROVIDER, "total sent count is 0"));
        }
        Ok(accepted.id)
    }
}
