//! The HTTP transport: a POST of the JSON input, signed per Standard Webhooks with every
//! configured secret, under GoTrue's rules (`v0http`): one deadline for the whole call (5 s),
//! up to 3 attempts, 2 s between attempts after a connection failure, a retry on 429/503
//! that carries `Retry-After`, and a JSON answer of at most 200 KB.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use standardwebhooks::Webhook;
use url::Url;

use crate::error::{Error, ErrorCode};

/// Timeouts and retries of HTTP hooks; GoTrue's values by default.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// The whole call, every attempt included.
    pub deadline: Duration,
    pub attempts: u32,
    /// The wait after a failed connection before the next attempt.
    pub backoff: Duration,
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            deadline: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_secs(2),
            max_response_bytes: 200 * 1024,
        }
    }
}

#[derive(Clone)]
pub(super) struct HttpHook {
    url: Url,
    signers: std::sync::Arc<Vec<Webhook>>,
    client: reqwest::Client,
    limits: HttpLimits,
}

impl std::fmt::Debug for HttpHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpHook({})", self.url.host_str().unwrap_or_default())
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Result<Value, Error>),
    /// Try again (after `wait`), if attempts remain.
    Retry {
        wait: Duration,
        cause: String,
    },
}

impl HttpHook {
    pub(super) fn new(url: Url, secrets: &[SecretString], limits: HttpLimits) -> anyhow::Result<HttpHook> {
        let signers = secrets
            .iter()
            .map(|secret| Webhook::new(secret.expose_secret()))
            .collect::<Result<Vec<_>, _>>()?;
        let client = reqwest::Client::builder()
            // A redirect would carry the signed user data to wherever the hook points it.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(limits.deadline)
            .build()?;
        Ok(HttpHook {
            url,
            signers: std::sync::Arc::new(signers),
            client,
            limits,
        })
    }

    pub(super) async fn call(&self, input: &Value) -> Result<Value, Error> {
        let body = serde_json::to_vec(input).map_err(Error::internal)?;
        match tokio::time::timeout(self.limits.deadline, self.attempts(&body)).await {
            Ok(result) => result,
            Err(_) => Err(Error::unprocessable(
                ErrorCode::HookTimeout,
                format!(
                    "Failed to reach hook within maximum time of {:.6} seconds",
                    self.limits.deadline.as_secs_f64()
                ),
            )),
        }
    }

    async fn attempts(&self, body: &[u8]) -> Result<Value, Error> {
        let mut last_cause = String::new();
        for attempt in 0..self.limits.attempts {
            match self.attempt(body).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { wait, cause } => {
                    tracing::warn!(attempt, cause = %cause, "hook attempt failed");
                    last_cause = cause;
                    if attempt + 1 < self.limits.attempts {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        tracing::warn!(cause = %last_cause, "hook unreachable after every attempt");
        Err(Error::unprocessable(
            ErrorCode::HookTimeoutAfterRetry,
            "Failed to reach hook after maximum retries",
        ))
    }

    async fn attempt(&self, body: &[u8]) -> Attempt {
        let (id, timestamp) = (uuid::Uuid::new_v4().to_string(), chrono::Utc::now().timestamp());
        let signature = match self.signatures(&id, timestamp, body) {
            Ok(signature) => signature,
            Err(err) => return Attempt::Done(Err(err)),
        };
        let sent = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                return Attempt::Retry {
                    wait: self.limits.backoff,
                    cause: err.without_url().to_string(),
                };
            }
        };
        let status = response.status().as_u16();
        match status {
            200 | 202 | 204 => Attempt::Done(self.read_output(response).await),
            429 | 503 if response.headers().contains_key("retry-after") => Attempt::Retry {
                wait: self.limits.backoff,
                cause: format!("status {status} with Retry-After"),
            },
            429 | 503 => Attempt::Done(Err(hook_failed("Service currently unavailable due to hook", status))),
            400 => Attempt::Done(Err(hook_failed("Invalid payload sent to hook", status))),
            401 => Attempt::Done(Err(hook_failed("Hook requires authorization token", status))),
            _ => Attempt::Done(Err(hook_failed(
                format!("Unexpected status code returned from hook: {status}"),
                status,
            ))),
        }
    }

    /// One `v1,<base64>` signature per secret, space-separated as Standard Webhooks
    /// specifies (GoTrue joins them with ", ", which the reference verifiers read only the
    /// last of); receivers accept the call if any one matches, so secrets can be rotated.
    fn signatures(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, Error> {
        let signed = self
            .signers
            .iter()
            .map(|signer| signer.sign(id, timestamp, body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::internal)?;
        Ok(signed.join(" "))
    }

    async fn read_output(&self, mut response: reqwest::Response) -> Result<Value, Error> {
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(content_type) = content_type else {
            if response.status().as_u16() == 204 {
                return Ok(Value::Null);
            }
            return Err(invalid_content_type(
                "Invalid Content-Type: Missing Content-Type header".into(),
            ));
        };
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(invalid_content_type(format!(
                "Invalid JSON response. Received content-type: {content_type}"
            )));
        }
        let limit = self.limits.max_response_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| hook_failed_io(&err))? {
            if body.len() + chunk.len() > limit {
                return Err(Error::unprocessable(
                    ErrorCode::HookPayloadOverSizeLimit,
                    format!("Payload size exceeded size limit of {limit} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body)
            .map_err(|err| Error::internal_with_message("Error unmarshaling JSON output.", err))
    }
}

fn invalid_content_type(message: String) -> Error {
    Error::bad_request(ErrorCode::HookPayloadInvalidContentType, message)
}

/// The hook answered in a way that is a fault of the hook: GoTrue's 500 with its message.
fn hook_failed(message: impl Into<std::borrow::Cow<'static, str>>, status: u16) -> Error {
    Error::internal_with_message(message, format!("hook answered HTTP {status}"))
}

fn hook_failed_io(err: &reqwest::Error) -> Error {
    Error::internal_with_message("Error reading the hook's answer", err.to_string())
}

#[cfg(test)]
mod tests;
