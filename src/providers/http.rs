//! The HTTP client providers are reached with: no redirects followed (the OAuth 2 security
//! advice for token requests, and no way for a provider to send Latchkey elsewhere), GoTrue's
//! 10 s timeout, and answers read up to [`MAX_BODY_BYTES`]. The client of custom providers is
//! also guarded ([`super::url_guard`]): every URL is checked before it is requested, and its
//! DNS resolver connects to public addresses only.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use super::url_guard::{PublicOnlyResolver, UrlPolicy};

/// The largest answer read from a provider (GoTrue reads discovery documents up to 1 MiB).
/// Keys, profiles and tokens are a few kilobytes; more is a provider misbehaving.
pub const MAX_BODY_BYTES: usize = 1 << 20;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    /// `Some` for custom providers: the URLs they may reach.
    guard: Option<UrlPolicy>,
}

/// Why a request to a provider failed: the text names the cause (a status, a refused URL),
/// never a token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl Http {
    /// The client of the built-in providers, whose URLs come from the operator.
    pub fn new() -> Result<Http, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()?;
        Ok(Http { client, guard: None })
    }

    /// The client of custom providers, whose URLs come from the admin API (and from the
    /// providers' own discovery documents).
    pub fn guarded(policy: UrlPolicy) -> Result<Http, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            // A proxy would resolve the name itself, past the resolver below.
            .no_proxy();
        if !policy.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Http {
            client: builder.build()?,
            guard: Some(policy),
        })
    }

    /// A request to `url`, once the guard (if any) has accepted it.
    pub fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, HttpError> {
        if let Some(policy) = self.guard {
            policy
                .check(url)
                .map_err(|refusal| HttpError(format!("refused URL: {refusal}")))?;
        }
        Ok(self.client.request(method, url))
    }

    pub fn get(&self, url: &str) -> Result<RequestBuilder, HttpError> {
        self.request(Method::GET, url)
    }

    /// Sends `request` and reads the answer's body, whatever its status.
    pub async fn send(&self, request: RequestBuilder) -> Result<(Response, Vec<u8>), HttpError> {
        let mut response = request.send().await.map_err(describe)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpError(format!("answer larger than {MAX_BODY_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((response, body))
    }

    /// Sends `request` and reads its JSON answer; a status other than 2xx is an error.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, HttpError> {
        let (response, body) = self.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(HttpError(format!(
                "{} answered {status}",
                without_query(response.url())
            )));
        }
        serde_json::from_slice(&body).map_err(|err| {
            HttpError(format!(
                "{} answered unreadable JSON: {err}",
                without_query(response.url())
            ))
        })
    }
}

/// A reqwest error without the URL's query (which may carry a token).
fn describe(err: reqwest::Error) -> HttpError {
    HttpError(err.without_url().to_string())
}

fn without_query(url: &url::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}
