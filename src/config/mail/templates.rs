//! What the mails look like and where their links point: `GOTRUE_MAILER_URLPATHS_*`,
//! `GOTRUE_MAILER_SUBJECTS_*`, `GOTRUE_MAILER_TEMPLATES_*` and `GOTRUE_MAILER_TEMPLATE_*`.

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use super::EmailKind;
use crate::config::{ConfigError, Env};

/// The four link paths GoTrue lets an operator set (`GOTRUE_MAILER_URLPATHS_*`). Magic links
/// take the recovery path, as in GoTrue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkPath {
    Invite,
    Confirmation,
    Recovery,
    EmailChange,
}

impl LinkPath {
    pub const ALL: [LinkPath; 4] = [
        LinkPath::Invite,
        LinkPath::Confirmation,
        LinkPath::Recovery,
        LinkPath::EmailChange,
    ];

    pub fn env_var(self) -> &'static str {
        match self {
            LinkPath::Invite => "GOTRUE_MAILER_URLPATHS_INVITE",
            LinkPath::Confirmation => "GOTRUE_MAILER_URLPATHS_CONFIRMATION",
            LinkPath::Recovery => "GOTRUE_MAILER_URLPATHS_RECOVERY",
            LinkPath::EmailChange => "GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE",
        }
    }
}

/// Where the HTML template of one kind of mail comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateSource {
    /// Fetched over HTTP and cached, with the built-in template while it cannot be had (GoTrue).
    Url(Url),
    /// A local file, read at start-up (Latchkey's addition: GoTrue fetches URLs only).
    File { path: String, html: String },
}

/// How fetched templates are bounded and cached (GoTrue's `GOTRUE_MAILER_TEMPLATE_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFetch {
    /// `GOTRUE_MAILER_TEMPLATE_MAX_SIZE`: bytes; a larger answer is refused.
    pub max_size: usize,
    /// `GOTRUE_MAILER_TEMPLATE_MAX_AGE`: a fetched template is fetched again after this long.
    pub max_age: Duration,
    /// `GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL`: how soon a failed fetch is tried again.
    pub retry_interval: Duration,
}

pub(super) fn url_paths(env: &Env) -> Result<HashMap<LinkPath, String>, ConfigError> {
    let mut paths = HashMap::new();
    for kind in LinkPath::ALL {
        let Some((var, value)) = env.get(&[kind.env_var()]) else {
            continue;
        };
        // GoTrue resolves the value against API_EXTERNAL_URL as a URL reference; check here
        // that it is one (a path, or an absolute http(s) URL), so no link can be broken later.
        let probe = Url::parse("http://external.invalid/").and_then(|base| base.join(&value));
        if !probe.is_ok_and(|url| matches!(url.scheme(), "http" | "https")) {
            return Err(ConfigError {
                var,
                message: format!("{value:?} is neither a path (like /auth/v1/verify) nor an http(s) URL"),
            });
        }
        paths.insert(kind, value);
    }
    Ok(paths)
}

pub(super) fn subjects(env: &Env) -> HashMap<EmailKind, String> {
    EmailKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let var = format!("GOTRUE_MAILER_SUBJECTS_{}", kind.env_suffix());
            env.get(&[&var]).map(|(_, subject)| (kind, subject))
        })
        .collect()
}

/// `GOTRUE_MAILER_TEMPLATES_*`: an http(s) URL is kept for fetching; anything else names a
/// local file, read now.
pub(super) fn sources(env: &Env) -> Result<HashMap<EmailKind, TemplateSource>, ConfigError> {
    let mut sources = HashMap::new();
    for kind in EmailKind::ALL {
        let var = format!("GOTRUE_MAILER_TEMPLATES_{}", kind.env_suffix());
        let Some((_, value)) = env.get(&[&var]) else {
            continue;
        };
        let source = match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => TemplateSource::Url(url),
            _ => read_file(&var, value)?,
        };
        sources.insert(kind, source);
    }
    Ok(sources)
}

fn read_file(var: &str, path: String) -> Result<TemplateSource, ConfigError> {
    match std::fs::read_to_string(&path) {
        Ok(html) => Ok(TemplateSource::File { path, html }),
        Err(err) => {
            // GoTrue would fetch a path like this from GOTRUE_SITE_URL; say how to get that.
            let hint = if path.starts_with('/') {
                " (GoTrue fetches such a path from GOTRUE_SITE_URL: write the full http(s) URL for that)"
            } else {
                ""
            };
            Err(ConfigError {
                var: var.to_owned(),
                message: format!("cannot read template file {path:?}: {err}{hint}"),
            })
        }
    }
}

pub(super) fn fetch_settings(env: &Env) -> Result<TemplateFetch, ConfigError> {
    let max_size: usize = env.parse_or(&["GOTRUE_MAILER_TEMPLATE_MAX_SIZE"], 1_000_000usize)?;
    if max_size == 0 {
        return Err(ConfigError {
            var: "GOTRUE_MAILER_TEMPLATE_MAX_SIZE".into(),
            message: "must be positive".into(),
        });
    }
    Ok(TemplateFetch {
        max_size,
        max_age: env.positive_duration_or(&["GOTRUE_MAILER_TEMPLATE_MAX_AGE"], Duration::from_secs(600))?,
        retry_interval: env
            .positive_duration_or(&["GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL"], Duration::from_secs(10))?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn url_paths_are_paths_or_http_urls() {
        let config = with(&[
            ("GOTRUE_MAILER_URLPATHS_CONFIRMATION", "/auth/v1/verify"),
            ("GOTRUE_MAILER_URLPATHS_RECOVERY", "https://app.example.com/reset"),
            ("GOTRUE_MAILER_URLPATHS_INVITE", "verify?source=invite"),
        ])
        .unwrap();
        let paths = &config.mailer.url_paths;
        assert_eq!(paths[&LinkPath::Confirmation], "/auth/v1/verify");
        assert_eq!(paths[&LinkPath::Recovery], "https://app.example.com/reset");
        assert_eq!(paths[&LinkPath::Invite], "verify?source=invite");
        assert!(!paths.contains_key(&LinkPath::EmailChange));
        for bad in ["javascript:alert(1)", "mailto:a@b.c", "http://[::1", "data:text/html,x"] {
            let err = with(&[("GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE", bad)]).unwrap_err();
            assert_eq!(err.var, "GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE", "{bad}: {err}");
        }
    }

    #[test]
    fn templates_are_urls_or_readable_files() {
        let config = with(&[(
            "GOTRUE_MAILER_TEMPLATES_INVITE",
            "https://templates.example.com/invite.html",
        )])
        .unwrap();
        assert_eq!(
            config.mailer.templates[&EmailKind::Invite],
            TemplateSource::Url(Url::parse("https://templates.example.com/invite.html").unwrap())
        );
        let err = with(&[("GOTRUE_MAILER_TEMPLATES_RECOVERY", "/no/such/template.html")]).unwrap_err();
        assert_eq!(err.var, "GOTRUE_MAILER_TEMPLATES_RECOVERY");
        assert!(err.message.contains("GOTRUE_SITE_URL"), "{err}");
    }

    #[test]
    fn fetch_settings_have_gotrue_defaults_and_must_be_positive() {
        let config = Config::from_vars(HashMap::new()).unwrap();
        let fetch = &config.mailer.template_fetch;
        assert_eq!(fetch.max_size, 1_000_000);
        assert_eq!(fetch.max_age, Duration::from_secs(600));
        assert_eq!(fetch.retry_interval, Duration::from_secs(10));
        for (var, value) in [
            ("GOTRUE_MAILER_TEMPLATE_MAX_SIZE", "0"),
            ("GOTRUE_MAILER_TEMPLATE_MAX_SIZE", "big"),
            ("GOTRUE_MAILER_TEMPLATE_MAX_AGE", "0s"),
            ("GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL", "0"),
        ] {
            assert_eq!(with(&[(var, value)]).unwrap_err().var, var, "{var}={value}");
        }
    }
}
