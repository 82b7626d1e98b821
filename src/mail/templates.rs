//! Subjects and bodies of the email-flow mails: GoTrue's defaults, overridable with
//! `GOTRUE_MAILER_SUBJECTS_*` / `GOTRUE_MAILER_TEMPLATES_*`. Templates use GoTrue's variables
//! (`{{ .ConfirmationURL }}`, `{{ .Token }}`, `{{ .TokenHash }}`, `{{ .SiteURL }}`,
//! `{{ .RedirectTo }}`, `{{ .Email }}`, `{{ .NewEmail }}`, `{{ .Data.<key> }}`) by plain
//! substitution, not Go's template language: other `{{ ... }}` actions render as nothing.
//! Values are HTML-escaped in the HTML part. The plain-text part of an overridden template
//! is derived from its HTML.

use serde_json::Value;

use super::EmailKind;
use crate::config::MailerConfig;

/// The values a template can use.
#[derive(Debug, Default)]
pub struct TemplateData<'a> {
    pub confirmation_url: &'a str,
    pub token: &'a str,
    pub token_hash: &'a str,
    pub site_url: &'a str,
    pub redirect_to: &'a str,
    pub email: &'a str,
    pub new_email: &'a str,
    pub data: Option<&'a Value>,
}

pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

pub fn render(kind: EmailKind, config: &MailerConfig, data: &TemplateData<'_>) -> Rendered {
    let subject_template = config
        .subjects
        .get(&kind)
        .map(String::as_str)
        .unwrap_or(default_subject(kind));
    let subject = substitute(subject_template, data, false);
    match config.templates.get(&kind) {
        Some(html_template) => {
            let html = substitute(html_template, data, true);
            let text = html_to_text(&html);
            Rendered { subject, html, text }
        }
        None => Rendered {
            subject,
            html: substitute(default_html(kind), data, true),
            text: substitute(default_text(kind), data, false),
        },
    }
}

fn default_subject(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Confirmation => "Confirm your email address",
        EmailKind::Invite => "You've been invited",
        EmailKind::Recovery => "Reset your password",
        EmailKind::MagicLink => "Your sign-in link",
        EmailKind::EmailChange => "Confirm your new email address",
        EmailKind::Reauthentication => "Confirm reauthentication",
    }
}

fn default_html(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Confirmation => {
            "<h2>Confirm your signup</h2>\n<p>Follow this link to confirm your user:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Confirm your mail</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::Invite => {
            "<h2>You have been invited</h2>\n<p>You have been invited to create a user on {{ .SiteURL }}. Follow this link to accept the invite:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Accept the invite</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::Recovery => {
            "<h2>Reset Password</h2>\n<p>Follow this link to reset the password for your user:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Reset Password</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::MagicLink => {
            "<h2>Magic Link</h2>\n<p>Follow this link to login:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Log In</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::EmailChange => {
            "<h2>Confirm email address change</h2>\n<p>Follow this link to confirm the update of your email address from {{ .Email }} to {{ .NewEmail }}:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Change email address</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::Reauthentication => "<h2>Confirm reauthentication</h2>\n<p>Enter the code: {{ .Token }}</p>",
    }
}

fn default_text(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Confirmation => {
            "Confirm your signup\n\nFollow this link to confirm your user:\n{{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::Invite => {
            "You have been invited\n\nYou have been invited to create a user on {{ .SiteURL }}. Follow this link to accept the invite:\n\
             {{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::Recovery => {
            "Reset Password\n\nFollow this link to reset the password for your user:\n{{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::MagicLink => {
            "Magic Link\n\nFollow this link to login:\n{{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::EmailChange => {
            "Confirm email address change\n\nFollow this link to confirm the update of your email address from {{ .Email }} to {{ .NewEmail }}:\n\
             {{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::Reauthentication => "Confirm reauthentication\n\nEnter the code: {{ .Token }}\n",
    }
}

/// Replaces every `{{ .Name }}` (any spacing) with its value.
fn substitute(template: &str, data: &TemplateData<'_>, escape: bool) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expression = after[..end].trim().trim_start_matches('-').trim_end_matches('-').trim();
        let value = lookup(expression, data);
        if escape {
            out.push_str(&html_escape(&value));
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn lookup(expression: &str, data: &TemplateData<'_>) -> String {
    let value = match expression {
        ".ConfirmationURL" => data.confirmation_url,
        ".Token" => data.token,
        ".TokenHash" => data.token_hash,
        ".SiteURL" => data.site_url,
        ".RedirectTo" => data.redirect_to,
        ".Email" => data.email,
        ".NewEmail" => data.new_email,
        other => {
            return other
                .strip_prefix(".Data.")
                .and_then(|key| data.data?.get(key))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
        }
    };
    value.to_owned()
}

pub fn html_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_unescape(value: &str) -> String {
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// A readable plain-text version of an HTML body: tags dropped, block ends become line
/// breaks, each link's address follows its text.
fn html_to_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    let mut pending_href: Option<String> = None;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = &rest[open + 1..open + close];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        rest = &rest[open + close + 1..];
        match (name.as_str(), closing) {
            ("style" | "script" | "head" | "title", false) => {
                let end = format!("</{name}");
                rest = rest.find(&end).map_or("", |i| &rest[i..]);
            }
            ("a", false) => pending_href = attribute(tag, "href"),
            ("a", true) => {
                if let Some(href) = pending_href.take() {
                    text.push_str(&format!(" ( {href} )"));
                }
            }
            ("br" | "p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" | "tr" | "table", _) => {
                text.push('\n')
            }
            _ => {}
        }
    }
    text.push_str(rest);
    let text = html_unescape(&text);
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    let mut out = lines.join("\n").trim().to_owned();
    out.push('\n');
    out
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let raw = &tag[at..];
    let value = match raw.chars().next()? {
        quote @ ('"' | '\'') => raw[1..].split(quote).next()?,
        _ => raw.split_whitespace().next()?,
    };
    Some(value.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config() -> MailerConfig {
        MailerConfig {
            smtp: None,
            secure_email_change_enabled: true,
            otp_exp: std::time::Duration::from_secs(60),
            otp_length: 6,
            otp_max_attempts: 5,
            magic_link_enabled: true,
            subjects: HashMap::new(),
            templates: HashMap::new(),
        }
    }

    fn data() -> TemplateData<'static> {
        TemplateData {
            confirmation_url: "https://auth.test/verify?token=abc&type=signup",
            token: "123456",
            token_hash: "abc",
            site_url: "https://site.test",
            email: "a<b>@example.com",
            ..TemplateData::default()
        }
    }

    #[test]
    fn defaults_carry_link_and_code() {
        let rendered = render(EmailKind::Confirmation, &config(), &data());
        assert_eq!(rendered.subject, "Confirm your email address");
        assert!(
            rendered
                .html
                .contains("href=\"https://auth.test/verify?token=abc&amp;type=signup\"")
        );
        assert!(rendered.html.contains("123456"));
        assert!(rendered.text.contains("https://auth.test/verify?token=abc&type=signup"));
    }

    #[test]
    fn overrides_substitute_and_escape() {
        let mut config = config();
        config
            .subjects
            .insert(EmailKind::Recovery, "Code {{.Token}} for {{ .Email }}".into());
        config.templates.insert(
            EmailKind::Recovery,
            "<p>Hi {{ .Email }}, <a href='{{ .ConfirmationURL }}'>reset</a> {{ if .X }}{{ .Data.name }}</p>".into(),
        );
        let meta = serde_json::json!({"name": "Ada & co"});
        let data = TemplateData {
            data: Some(&meta),
            ..data()
        };
        let rendered = render(EmailKind::Recovery, &config, &data);
        assert_eq!(rendered.subject, "Code 123456 for a<b>@example.com");
        assert!(rendered.html.contains("Hi a&lt;b&gt;@example.com"), "{}", rendered.html);
        assert!(rendered.html.contains("Ada &amp; co"));
        assert!(
            rendered
                .text
                .contains("Hi a<b>@example.com, reset ( https://auth.test/verify?token=abc&type=signup )"),
            "{}",
            rendered.text
        );
    }
}
