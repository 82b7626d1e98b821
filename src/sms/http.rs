//! What every gateway shares: the HTTP client, the provider's URL (moved by
//! `LATCHKEY_SMS_PROVIDER_URL`), one form POST with a bounded answer, and masking numbers in
//! whatever a provider says back.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::SmsError;

/// The most of a provider's answer read: theirs are a few hundred bytes; a broken proxy
/// streaming forever must not fill memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A client that gives up after `timeout` (connecting and answering together) and follows no
/// redirects: a provider's API answers where it is asked, and credentials must not be
/// replayed to wherever a redirect points.
pub(super) fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// `default_base` (the provider's API, hard-coded as in GoTrue) or the operator's override,
/// followed by the provider's own `path` segments, each percent-encoded so that a value from
/// the configuration (an account SID) cannot add segments, a query or a fragment.
pub(super) fn endpoint(default_base: &str, base: Option<&Url>, path: &[&str]) -> anyhow::Result<Url> {
    let mut url = match base {
        Some(base) => base.clone(),
        None => Url::parse(default_base)?,
    };
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| anyhow::anyhow!("{default_base}: not a base URL"))?;
        segments.pop_if_empty();
        segments.extend(path);
    }
    Ok(url)
}

/// How a request proves who sends it.
pub(super) enum Auth<'a> {
    /// HTTP Basic (Twilio: account SID and auth token).
    Basic(&'a str, &'a SecretString),
    /// `Authorization: <scheme> <secret>` (MessageBird: `AccessKey <key>`).
    Scheme(&'static str, &'a SecretString),
    /// Credentials travel in the form (Textlocal, Vonage).
    InForm,
}

/// A provider's answer: its status and body.
pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T`, or "could not be reached" naming what was wrong with it.
    pub fn json<T: serde::de::DeserializeOwned>(&self, provider: &'static str) -> Result<T, SmsError> {
        serde_json::from_slice(&self.body).map_err(|err| SmsError::Unreachable {
            provider,
            reason: format!("unreadable answer (HTTP {}): {err}", self.status),
        })
    }

    /// A refusal with the provider's own words (numbers masked).
    pub fn refused(&self, provider: &'static str, message: &str) -> SmsError {
        SmsError::Refused {
            provider,
            status: self.status,
            message: mask_numbers(message),
        }
    }
}

/// POSTs `form` to `url` and reads the answer, whatever its status.
pub(super) async fn post_form(
    client: &reqwest::Client,
    provider: &'static str,
    url: &Url,
    auth: Auth<'_>,
    form: &[(&str, &str)],
) -> Result<Answer, SmsError> {
    let unreachable = |err: reqwest::Error| SmsError::Unreachable {
        provider,
        // Without the URL: it names the account, and the form (not shown) holds the text.
        reason: err.without_url().to_string(),
    };
    let mut request = client.post(url.clone()).form(form);
    match auth {
        Auth::Basic(user, password) => request = request.basic_auth(user, Some(password.expose_secret())),
        Auth::Scheme(scheme, secret) => {
            let mut value = reqwest::header::HeaderValue::try_from(format!("{scheme} {}", secret.expose_secret()))
                .map_err(|_| SmsError::Unreachable {
                    provider,
                    reason: "the access key is not a valid header value".into(),
                })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        Auth::InForm => {}
    }
    let mut response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(SmsError::Unreachable {
                provider,
                reason: format!("answer longer than {MAX_ANSWER_BYTES} bytes (HTTP {status})"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

/// Hides runs of six or more digits (phone numbers; a provider may quote the number it
/// refused) but for their last three, as [`super::mask_number`] does.
pub(super) fn mask_numbers(text: &str) -> String {
    static NUMBER: LazyLock<Regex> =
        // A literal pattern: it compiles.
        LazyLock::new(|| Regex::new(r"\+?\d[\d ]{4,}\d").expect("static regex"));
    NUMBER
        .replace_all(text, |found: &regex::Captures<'_>| super::mask_number(&found[0]))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_keeps_the_providers_path() {
        let path = ["2010-04-01", "Accounts", "AC1", "Messages.json"];
        let default = endpoint("https://api.twilio.com", None, &path).unwrap();
        assert_eq!(
            default.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
        );
        let base = Url::parse("http://127.0.0.1:8080/proxy/?x=1#f").unwrap();
        let moved = endpoint("https://api.twilio.com", Some(&base), &path).unwrap();
        assert_eq!(
            moved.as_str(),
            "http://127.0.0.1:8080/proxy/2010-04-01/Accounts/AC1/Messages.json"
        );
    }

    #[test]
    fn configured_values_cannot_leave_their_segment() {
        for sid in ["../../evil", "AC1/x?y=z#w", "AC 1"] {
            let url = endpoint("https://api.twilio.com", None, &["Accounts", sid, "Messages.json"]).unwrap();
            assert_eq!(url.host_str(), Some("api.twilio.com"));
            assert!(url.path().ends_with("/Messages.json"), "{url}");
            assert_eq!(url.path_segments().unwrap().count(), 3, "{url}");
            assert!(url.query().is_none() && url.fragment().is_none(), "{url}");
        }
    }

    #[test]
    fn numbers_in_provider_messages_are_masked() {
        assert_eq!(
            mask_numbers("The 'To' number +15555550123 is not a valid phone number. Code 21211"),
            "The 'To' number +********123 is not a valid phone number. Code 21211"
        );
        assert_eq!(mask_numbers("status 29"), "status 29");
    }
}
