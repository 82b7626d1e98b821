//! Subjects and bodies of the email-flow mails in Go's template language, as GoTrue has them:
//! conditionals, ranges, pipelines and functions over GoTrue's variables (`.ConfirmationURL`,
//! `.Token`, `.TokenHash`, `.SiteURL`, `.RedirectTo`, `.Email`, `.NewEmail`, `.SendingTo`,
//! `.Data` = the user's metadata), with `html/template`'s escaping (see `engine`).
//!
//! Overrides: `GOTRUE_MAILER_SUBJECTS_*` and `GOTRUE_MAILER_TEMPLATES_*` (a local file, read
//! at start-up, or a URL, fetched and cached: see `remote`). A configured template that cannot
//! be parsed stops start-up; one that cannot be fetched, or fails on a mail, gives way to the
//! built-in one. The plain-text part of a configured template is derived from its HTML.
//!
//! Where Latchkey differs: the subject is plain text. GoTrue escapes it like HTML, so a name
//! with `&` shows as `&amp;` in the subject line; Latchkey escapes it the same way and then
//! decodes the escapes, and turns line breaks and other control characters into spaces (a
//! subject is a header line).

mod builtin;
mod engine;
mod plain;
mod remote;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use url::Url;

use super::EmailKind;
use crate::config::{ConfigError, MailerConfig, TemplateFetch, TemplateSource};
use engine::Template;
pub use engine::TemplateData;
use remote::Remote;

pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// `.SiteURL` as an operator writes it: `https://app.example.com`, so that GoTrue's documented
/// `{{ .SiteURL }}/auth/confirm` has one slash (the parsed URL always ends its empty path
/// with `/`).
pub fn site_url_text(site_url: &Url) -> String {
    let text = site_url.as_str();
    match text.strip_suffix('/') {
        Some(stripped) if site_url.path() == "/" && site_url.query().is_none() => stripped.to_owned(),
        _ => text.to_owned(),
    }
}

#[derive(Debug)]
pub struct Templates {
    kinds: HashMap<EmailKind, KindTemplates>,
    fetch: TemplateFetch,
    /// Set when some template comes from a URL.
    client: Option<reqwest::Client>,
}

#[derive(Debug)]
struct KindTemplates {
    /// `GOTRUE_MAILER_SUBJECTS_*`, if set.
    subject: Option<Template>,
    builtin_subject: Template,
    builtin_html: Template,
    builtin_text: Template,
    custom: Option<Custom>,
}

#[derive(Debug)]
enum Custom {
    File(Arc<Template>),
    Url(Remote),
}

impl Templates {
    /// Compiles the built-in templates and the configured subjects and template files; a
    /// configured one that does not compile is an error naming its variable. Templates from
    /// URLs are fetched by [`Templates::start`].
    pub fn new(config: &MailerConfig) -> anyhow::Result<Templates> {
        let mut kinds = HashMap::new();
        for kind in EmailKind::ALL {
            kinds.insert(kind, KindTemplates::new(kind, config)?);
        }
        let has_urls = kinds.values().any(|k| matches!(k.custom, Some(Custom::Url(_))));
        Ok(Templates {
            kinds,
            fetch: config.template_fetch.clone(),
            client: if has_urls { Some(remote::client()?) } else { None },
        })
    }

    /// Fetches the templates configured as URLs (all at once, each within 10 s) and keeps
    /// them fresh from a background task for as long as these templates are in use. A
    /// template that cannot be fetched now is tried again later; until then the built-in
    /// one is used.
    pub async fn start(self: &Arc<Self>) {
        if self.client.is_none() {
            return;
        }
        self.refresh_due().await;
        let templates = Arc::downgrade(self);
        // The smaller interval decides how promptly a due template is fetched; never faster
        // than once a second.
        let tick = self
            .fetch
            .retry_interval
            .min(self.fetch.max_age)
            .max(Duration::from_secs(1));
        tokio::spawn(keep_fresh(templates, tick));
    }

    async fn refresh_due(&self) {
        let Some(client) = &self.client else {
            return;
        };
        let now = Instant::now();
        let due = self.kinds.values().filter_map(|k| match &k.custom {
            Some(Custom::Url(remote)) if remote.is_due(now, &self.fetch) => Some(remote.refresh(client, &self.fetch)),
            _ => None,
        });
        futures::future::join_all(due).await;
    }

    /// The subject and both parts of a mail of `kind`.
    pub fn render(&self, kind: EmailKind, data: &TemplateData<'_>) -> Result<Rendered, String> {
        let templates = self
            .kinds
            .get(&kind)
            .ok_or_else(|| format!("no templates for {} mail", kind.as_str()))?;
        let values = data.to_value();
        templates.render(kind, &values)
    }
}

/// Refreshes due templates every `tick` until the templates are dropped (the server stopped).
async fn keep_fresh(templates: Weak<Templates>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(templates) = templates.upgrade() else {
            return;
        };
        templates.refresh_due().await;
    }
}

impl KindTemplates {
    fn new(kind: EmailKind, config: &MailerConfig) -> anyhow::Result<KindTemplates> {
        let name = |part: &str| format!("{} {part}", kind.as_str());
        let subject = match config.subjects.get(&kind) {
            Some(source) => Some(
                Template::compile(&name("subject"), source)
                    .map_err(|err| invalid(format!("GOTRUE_MAILER_SUBJECTS_{}", kind.env_suffix()), err))?,
            ),
            None => None,
        };
        let var = format!("GOTRUE_MAILER_TEMPLATES_{}", kind.env_suffix());
        let custom = match config.templates.get(&kind) {
            None => None,
            Some(TemplateSource::File { path, html }) => Some(Custom::File(Arc::new(
                Template::compile(path, html).map_err(|err| invalid(var, err))?,
            ))),
            Some(TemplateSource::Url(url)) => Some(Custom::Url(Remote::new(url.clone(), var))),
        };
        Ok(KindTemplates {
            subject,
            builtin_subject: Template::compile(&name("subject"), builtin::subject(kind)).map_err(builtin_broken)?,
            builtin_html: Template::compile(&name("body"), builtin::html(kind)).map_err(builtin_broken)?,
            builtin_text: Template::compile(&name("text"), builtin::text(kind)).map_err(builtin_broken)?,
            custom,
        })
    }

    fn render(&self, kind: EmailKind, values: &gotmpl::Value) -> Result<Rendered, String> {
        let configured = self.subject.as_ref().map(|subject| subject.execute(values));
        let subject = match configured {
            Some(Ok(subject)) => subject,
            failed_or_none => {
                if failed_or_none.is_some() {
                    template_failed(kind, "GOTRUE_MAILER_SUBJECTS");
                }
                self.builtin_subject.execute(values).map_err(|e| e.to_string())?
            }
        };
        // A header line: no line break, no other control character.
        let subject = plain::decode_entities(&subject).replace(|c: char| c.is_control(), " ");
        let custom = match &self.custom {
            Some(Custom::File(template)) => Some(template.clone()),
            Some(Custom::Url(remote)) => remote.current(),
            None => None,
        };
        if let Some(template) = custom {
            match template.execute(values) {
                Ok(html) => {
                    let text = plain::html_to_text(&html);
                    return Ok(Rendered { subject, html, text });
                }
                Err(_) => template_failed(kind, "GOTRUE_MAILER_TEMPLATES"),
            }
        }
        let html = self.builtin_html.execute(values).map_err(|e| e.to_string())?;
        let text = self.builtin_text.execute(values).map_err(|e| e.to_string())?;
        Ok(Rendered {
            subject,
            html,
            text: plain::decode_entities(&text),
        })
    }
}

/// A configured template failed on this mail's values. The error is not logged: it may
/// quote the values, and they carry the code and the address. The start-up check ran the
/// template on sample values, so this is a failure that depends on the data (comparing a
/// metadata field of another type, for example).
fn template_failed(kind: EmailKind, var_prefix: &str) {
    tracing::warn!(
        var = %format!("{var_prefix}_{}", kind.env_suffix()),
        "the configured template failed on this mail's values; the built-in one was used"
    );
}

fn invalid(var: String, message: String) -> anyhow::Error {
    ConfigError { var, message }.into()
}

fn builtin_broken(message: String) -> anyhow::Error {
    anyhow::anyhow!("a built-in mail template does not compile: {message}")
}

#[cfg(test)]
mod tests;
