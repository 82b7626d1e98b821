//! Templates fetched from a URL (`GOTRUE_MAILER_TEMPLATES_*=https://...`), cached as GoTrue
//! caches them: a fetched template is used for `GOTRUE_MAILER_TEMPLATE_MAX_AGE` and then
//! fetched again; a failed fetch keeps the template there was (or the built-in one, if none
//! ever came) and is retried after `GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL`.
//!
//! Unlike GoTrue, which fetches on the request that finds the cache stale, only the start-up
//! and a background task ever fetch: a request reads the cache and never waits on the
//! template server.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use url::Url;

use super::engine::Template;
use crate::config::TemplateFetch;

/// GoTrue's bound on one template fetch, connection included.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One kind's fetched template and when it was last fetched and tried.
#[derive(Debug)]
pub(super) struct Remote {
    pub(super) url: Url,
    /// For messages: `GOTRUE_MAILER_TEMPLATES_<KIND>`.
    var: String,
    state: RwLock<State>,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    pub(super) template: Option<Arc<Template>>,
    /// When `template` was fetched.
    pub(super) fetched_at: Option<Instant>,
    /// When a fetch was last tried, whatever came of it.
    pub(super) tried_at: Option<Instant>,
}

/// Whether a template in `state` should be fetched at `now`.
pub(super) fn is_due(state: &State, now: Instant, settings: &TemplateFetch) -> bool {
    let since = |at: Option<Instant>| at.map(|at| now.saturating_duration_since(at));
    let tried_recently = since(state.tried_at).is_some_and(|d| d < settings.retry_interval);
    let fresh = state.template.is_some() && since(state.fetched_at).is_some_and(|d| d < settings.max_age);
    !fresh && !tried_recently
}

impl Remote {
    pub(super) fn new(url: Url, var: String) -> Remote {
        Remote {
            url,
            var,
            state: RwLock::new(State::default()),
        }
    }

    /// The template to use now, if one was ever fetched.
    pub(super) fn current(&self) -> Option<Arc<Template>> {
        self.read_state().template
    }

    pub(super) fn is_due(&self, now: Instant, settings: &TemplateFetch) -> bool {
        is_due(&self.read_state(), now, settings)
    }

    /// Fetches and compiles the template; on success it replaces the cached one, on failure
    /// the cached one (or the built-in) stays, and the failure is logged.
    pub(super) async fn refresh(&self, client: &reqwest::Client, settings: &TemplateFetch) {
        let result = fetch(client, &self.url, settings.max_size)
            .await
            .and_then(|source| Template::compile(&self.var, &source));
        let now = Instant::now();
        let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.tried_at = Some(now);
        match result {
            Ok(template) => {
                tracing::info!(var = %self.var, url = %shown(&self.url), "mail template fetched");
                state.template = Some(Arc::new(template));
                state.fetched_at = Some(now);
            }
            Err(err) => tracing::warn!(
                var = %self.var,
                url = %shown(&self.url),
                error = %err,
                using = if state.template.is_some() { "the template fetched before" } else { "the built-in template" },
                "mail template could not be fetched"
            ),
        }
    }

    fn read_state(&self) -> State {
        // A poisoned lock only means a panic elsewhere while it was held; the state is
        // still whole (every write sets plain fields).
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The client for template fetches: GoTrue's 10 s bound.
pub(super) fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()
}

/// GETs `url`: a 200 answer of at most `max_size` bytes of UTF-8, or why not.
async fn fetch(client: &reqwest::Client, url: &Url, max_size: usize) -> Result<String, String> {
    let mut response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|err| format!("request failed: {}", err.without_url()))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    // GoTrue reads the first GOTRUE_MAILER_TEMPLATE_MAX_SIZE bytes and parses those; a cut
    // template is a broken one, so a larger answer is refused instead.
    let too_large = || format!("larger than GOTRUE_MAILER_TEMPLATE_MAX_SIZE ({max_size} bytes)");
    if response.content_length().is_some_and(|len| len > max_size as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| format!("reading the answer: {}", err.without_url()))?
    {
        if body.len() + chunk.len() > max_size {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())
}

/// The URL without credentials or query, for logs.
pub(super) fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TemplateFetch {
        TemplateFetch {
            max_size: 1000,
            max_age: Duration::from_secs(600),
            retry_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn fetched_templates_are_kept_until_they_age_and_failures_wait_for_the_retry_interval() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let template = Arc::new(Template::compile("t", "x").unwrap());
        let never = State::default();
        assert!(is_due(&never, start, &settings()), "never fetched: due at once");

        let fetched = State {
            template: Some(template),
            fetched_at: Some(start),
            tried_at: Some(start),
        };
        assert!(!is_due(&fetched, at(599), &settings()), "fresh");
        assert!(is_due(&fetched, at(600), &settings()), "aged");

        let failing = State {
            tried_at: Some(at(600)),
            ..fetched.clone()
        };
        assert!(!is_due(&failing, at(609), &settings()), "failed just now: wait");
        assert!(is_due(&failing, at(610), &settings()), "retry");

        let never_fetched = State {
            tried_at: Some(start),
            ..State::default()
        };
        assert!(!is_due(&never_fetched, at(9), &settings()));
        assert!(
            is_due(&never_fetched, at(10), &settings()),
            "built-in in use: retried every interval"
        );
    }

    #[test]
    fn logs_show_no_credentials_or_query() {
        let url = Url::parse("https://user:pw@templates.example.com:8443/t/confirm.html?sig=secret").unwrap();
        assert_eq!(shown(&url), "https://templates.example.com:8443/t/confirm.html");
    }
}
