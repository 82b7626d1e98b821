//! Go's template language, as GoTrue runs its mail templates: every subject and body is parsed
//! by Go's `html/template` there, so values are escaped for where they land (HTML text, an
//! attribute, a URL, a query string, a script) and a missing key prints nothing. The gotmpl
//! crate is a port of exactly that package, so templates written for GoTrue render the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::Value as GoValue;
use serde_json::Value;

/// Total `{{ range }}` iterations one mail may take: far more than any mail needs, few enough
/// that a template ranging over large user metadata cannot hold a request.
const MAX_RANGE_ITERATIONS: u64 = 10_000;

/// A parsed template whose escaping pass has run.
pub(super) struct Template(gotmpl::html::Template);

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Template").field(&self.0.name()).finish()
    }
}

impl Template {
    /// Parses `source` and tries it once on sample values, so that a template that cannot
    /// render whatever the data (a syntax error, an unknown function, HTML its escaping cannot
    /// follow) is found now, with a message that says where, rather than on a user's mail.
    /// Errors that depend on the data (comparing a metadata field that the sample lacks) are
    /// left for the mails, as in GoTrue.
    pub(super) fn compile(name: &str, source: &str) -> Result<Template, String> {
        check_blocks(source)?;
        let parsed = gotmpl::html::Template::new(name)
            .max_range_iters(MAX_RANGE_ITERATIONS)
            .parse(source)
            .map_err(|err| err.to_string())?;
        let template = Template(parsed);
        match template.execute(&sample()) {
            Err(err) if !depends_on_data(&err) => Err(err.to_string()),
            _ => Ok(template),
        }
    }

    pub(super) fn execute(&self, data: &GoValue) -> Result<String, gotmpl::TemplateError> {
        self.0.execute_to_string(data)
    }
}

fn depends_on_data(err: &gotmpl::TemplateError) -> bool {
    use gotmpl::TemplateError as E;
    !matches!(
        err,
        E::Parse { .. }
            | E::Lex { .. }
            | E::Escape { .. }
            | E::UndefinedFunction(_)
            | E::UndefinedTemplate(_)
            | E::UndefinedVariable(_)
            | E::ArgCount { .. }
    )
}

/// Every `{{ if }}`, `{{ range }}`, `{{ with }}`, `{{ define }}` and `{{ block }}` has its
/// `{{ end }}`, and no `{{ end }}` or `{{ else }}` stands outside one. Go's parser refuses
/// such a template; gotmpl's lets it through (it ends the block at the end of the text, and
/// the template at a stray `{{ end }}`), which would send half a mail.
fn check_blocks(source: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    for action in actions(source) {
        let keyword = action
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        match keyword {
            "if" | "range" | "with" | "define" | "block" => open.push(keyword),
            "end" if open.pop().is_none() => return Err("unexpected {{ end }}".into()),
            "else" if open.is_empty() => return Err("unexpected {{ else }}".into()),
            _ => {}
        }
    }
    match open.last() {
        Some(keyword) => Err(format!(
            "unexpected end of template: {{{{ {keyword} }}}} has no {{{{ end }}}}"
        )),
        None => Ok(()),
    }
}

/// The text of each action, trim markers and spaces removed; comments and the quoted
/// strings inside actions (which may hold `}}`) are skipped.
fn actions(source: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let body = &rest[start + 2..];
        let end = action_end(body).unwrap_or(body.len());
        let action = body[..end].trim_start_matches('-').trim_end_matches('-').trim();
        if !action.starts_with("/*") {
            found.push(action);
        }
        rest = body.get(end + 2..).unwrap_or("");
    }
    found
}

/// Where the `}}` closing an action's `body` is, past quoted strings and comments.
fn action_end(body: &str) -> Option<usize> {
    if body.trim_start_matches('-').trim_start().starts_with("/*") {
        let close = body.find("*/")? + 2;
        return body[close..].find("}}").map(|at| close + at);
    }
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    // A backslash escapes the next character, except in raw strings.
                    i += if bytes[i] == b'\\' && quote != b'`' { 2 } else { 1 };
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The values a template can use, under GoTrue's names.
#[derive(Debug, Default)]
pub struct TemplateData<'a> {
    pub confirmation_url: &'a str,
    pub token: &'a str,
    pub token_hash: &'a str,
    pub site_url: &'a str,
    pub redirect_to: &'a str,
    pub email: &'a str,
    pub new_email: &'a str,
    /// The address this mail goes to (GoTrue passes it to email-change mails).
    pub sending_to: &'a str,
    /// The user's metadata (`.Data`).
    pub data: Option<&'a Value>,
}

impl TemplateData<'_> {
    pub(super) fn to_value(&self) -> GoValue {
        let text = |s: &str| GoValue::String(Arc::from(s));
        let mut map: BTreeMap<Arc<str>, GoValue> = [
            ("ConfirmationURL", self.confirmation_url),
            ("Token", self.token),
            ("TokenHash", self.token_hash),
            ("SiteURL", self.site_url),
            ("RedirectTo", self.redirect_to),
            ("Email", self.email),
            ("NewEmail", self.new_email),
            ("SendingTo", self.sending_to),
        ]
        .into_iter()
        .map(|(name, value)| (Arc::from(name), text(value)))
        .collect();
        // `.Data.x` on a user without metadata prints nothing rather than failing.
        let data = match self.data {
            Some(data @ Value::Object(_)) => from_json(data),
            _ => GoValue::Map(Arc::default()),
        };
        map.insert(Arc::from("Data"), data);
        GoValue::Map(Arc::new(map))
    }
}

/// JSON as Go's `encoding/json` hands it to GoTrue's templates: every number a float64, so
/// `{{ if gt .Data.age 17.0 }}` compares as it does there.
fn from_json(value: &Value) -> GoValue {
    match value {
        Value::Null => GoValue::Nil,
        Value::Bool(b) => GoValue::Bool(*b),
        Value::Number(n) => GoValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => GoValue::String(Arc::from(s.as_str())),
        Value::Array(items) => GoValue::List(items.iter().map(from_json).collect()),
        Value::Object(fields) => GoValue::Map(Arc::new(
            fields
                .iter()
                .map(|(key, value)| (Arc::from(key.as_str()), from_json(value)))
                .collect(),
        )),
    }
}

/// Placeholder values for the trial run of [`Template::compile`] (as GoTrue checks its
/// defaults).
fn sample() -> GoValue {
    let metadata = serde_json::json!({});
    TemplateData {
        confirmation_url: "https://auth.example.com/verify?token=0123abcd&type=signup&redirect_to=https%3A%2F%2Fexample.com",
        token: "123456",
        token_hash: "0123abcd",
        site_url: "https://example.com",
        redirect_to: "https://example.com/welcome",
        email: "someone@example.com",
        new_email: "someone.new@example.com",
        sending_to: "someone@example.com",
        data: Some(&metadata),
    }
    .to_value()
}
