use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::config::Config;

fn config() -> MailerConfig {
    Config::from_vars(HashMap::new()).unwrap().mailer
}

fn with_template(kind: EmailKind, html: &str) -> MailerConfig {
    let mut config = config();
    config.templates.insert(
        kind,
        TemplateSource::File {
            path: "test.html".into(),
            html: html.into(),
        },
    );
    config
}

fn data(metadata: &Value) -> TemplateData<'_> {
    TemplateData {
        confirmation_url: "https://auth.test/verify?token=abc&type=signup",
        token: "123456",
        token_hash: "abc",
        site_url: "https://site.test",
        email: "a<b>@example.com",
        data: Some(metadata),
        ..TemplateData::default()
    }
}

fn render(config: &MailerConfig, kind: EmailKind, metadata: Value) -> Rendered {
    Templates::new(config).unwrap().render(kind, &data(&metadata)).unwrap()
}

#[test]
fn built_in_mails_carry_link_and_code() {
    let rendered = render(&config(), EmailKind::Confirmation, json!({}));
    assert_eq!(rendered.subject, "Confirm your email address");
    assert!(
        rendered
            .html
            .contains("href=\"https://auth.test/verify?token=abc&amp;type=signup\""),
        "{}",
        rendered.html
    );
    assert!(rendered.html.contains("123456"));
    assert!(
        rendered
            .text
            .contains("https://auth.test/verify?token=abc&type=signup\n")
    );
    assert!(rendered.text.contains("enter the code: 123456"));
}

#[test]
fn simple_substitution_templates_render_as_before() {
    let mut config = with_template(
        EmailKind::Recovery,
        "<p>Hi {{ .Email }}, <a href='{{ .ConfirmationURL }}'>reset</a> {{.Data.name}}</p>",
    );
    config
        .subjects
        .insert(EmailKind::Recovery, "Code {{.Token}} for {{ .Email }}".into());
    let rendered = render(&config, EmailKind::Recovery, json!({"name": "Ada & co"}));
    assert_eq!(rendered.subject, "Code 123456 for a<b>@example.com");
    assert!(rendered.html.contains("Hi a&lt;b&gt;@example.com"), "{}", rendered.html);
    assert!(rendered.html.contains("Ada &amp; co"));
    assert!(
        rendered
            .text
            .contains("Hi a<b>@example.com, reset ( https://auth.test/verify?token=abc&type=signup ) Ada & co"),
        "{}",
        rendered.text
    );
}

#[test]
fn conditionals_ranges_and_pipelines_follow_go() {
    // The shapes of Supabase's documented examples: a language switch on user metadata,
    // a link built from the token hash, a default with `or`, a range over a list.
    let template = r#"{{ if eq .Data.lang "fr" }}<h2>Confirmez</h2>{{ else }}<h2>Confirm</h2>{{ end }}
<a href="{{ .SiteURL }}/auth/confirm?token_hash={{ .TokenHash }}&type=email">go</a>
<p>Hello {{ or .Data.nickname "friend" }}{{ if .Data.age }}, {{ .Data.age }}{{ end }}</p>
<ul>{{ range $i, $team := .Data.teams }}<li>{{ $i }}: {{ $team | printf "%q" }}</li>{{ end }}</ul>
{{ with .Data.missing }}never{{ end }}[{{ .Data.missing }}]{{ if gt .Data.age 17.0 }}adult{{ end }}"#;
    let config = with_template(EmailKind::Confirmation, template);
    let metadata = json!({"lang": "fr", "age": 30, "teams": ["red", "blue"]});
    let html = render(&config, EmailKind::Confirmation, metadata).html;
    assert_eq!(
        html,
        "<h2>Confirmez</h2>\n<a href=\"https://site.test/auth/confirm?token_hash=abc&type=email\">go</a>\n\
         <p>Hello friend, 30</p>\n<ul><li>0: &#34;red&#34;</li><li>1: &#34;blue&#34;</li></ul>\n[]adult"
    );
    let other = render(&config, EmailKind::Confirmation, json!({"lang": "en", "age": 12})).html;
    assert!(
        other.starts_with("<h2>Confirm</h2>") && !other.contains("Confirmez"),
        "{other}"
    );
    assert!(!other.contains("adult") && other.contains("<ul></ul>"), "{other}");
}

#[test]
fn hostile_metadata_cannot_add_markup() {
    let template = r#"<p>Hi {{ .Data.name }}</p><a href="{{ .Data.site }}">site</a><img alt="{{ .Data.name }}" title={{ .Data.name }}>
<script>var n = "{{ .Data.name }}";</script><a href="{{ .SiteURL }}/p?n={{ .Data.name }}">p</a>"#;
    let config = with_template(EmailKind::Confirmation, template);
    let hostile = "\"><script>alert(1)</script><img src=x onerror=alert(2)>";
    let html = render(
        &config,
        EmailKind::Confirmation,
        json!({"name": hostile, "site": "javascript:alert(3)"}),
    )
    .html;
    for injected in ["<script>alert", "<img src=x", "javascript:", "\"><"] {
        assert!(!html.contains(injected), "{injected} got through: {html}");
    }
    assert!(
        html.contains("<p>Hi &#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("href=\"#ZgotmplZ\""),
        "unsafe URL replaced as Go does: {html}"
    );
}

#[test]
fn subjects_are_plain_text_on_one_line() {
    let mut config = config();
    config.subjects.insert(
        EmailKind::Confirmation,
        "Welcome {{ or .Data.name \"\" }}{{ .Data.missing }}!".into(),
    );
    let templates = Templates::new(&config).unwrap();
    let metadata = json!({"name": "Tom & \"Jerry\"\r\nBcc: x@evil.test"});
    let subject = templates
        .render(EmailKind::Confirmation, &data(&metadata))
        .unwrap()
        .subject;
    assert_eq!(subject, "Welcome Tom & \"Jerry\"  Bcc: x@evil.test!");
}

#[test]
fn a_template_that_fails_on_the_data_gives_way_to_the_built_in_one() {
    let mut config = with_template(EmailKind::Recovery, "{{ if gt .Data.age 17.0 }}adult{{ end }}");
    config
        .subjects
        .insert(EmailKind::Recovery, "{{ slice .Data.age 0 99 }}".into());
    let adult = render(&config, EmailKind::Recovery, json!({"age": "not a number"}));
    assert!(
        adult.html.contains("Reset Password") && adult.html.contains("123456"),
        "{}",
        adult.html
    );
    assert_eq!(adult.subject, "Reset your password");
}

#[test]
fn broken_configured_templates_stop_start_up_naming_the_variable() {
    let unclosed = with_template(EmailKind::Invite, "{{ if .Data.x }}no end");
    let unfinished_tag = with_template(EmailKind::Invite, "<a href=\"{{ .ConfirmationURL }}");
    let unknown_function = with_template(EmailKind::Invite, "{{ shout .Email }}");
    let stray_end = with_template(EmailKind::Invite, "<p>{{ .Token }}</p>{{ end }}<p>lost</p>");
    let stray_else = with_template(EmailKind::Invite, "{{ else }}");
    let unclosed_range = with_template(EmailKind::Invite, "{{ range .Data.x }}{{ if . }}{{ end }}");
    for config in [
        unclosed,
        unfinished_tag,
        unknown_function,
        stray_end,
        stray_else,
        unclosed_range,
    ] {
        let err = Templates::new(&config).unwrap_err();
        let err = err.downcast::<ConfigError>().unwrap();
        assert_eq!(err.var, "GOTRUE_MAILER_TEMPLATES_INVITE", "{err}");
    }
    let mut bad_subject = config();
    bad_subject.subjects.insert(EmailKind::MagicLink, "{{ .Token ".into());
    let err = Templates::new(&bad_subject)
        .unwrap_err()
        .downcast::<ConfigError>()
        .unwrap();
    assert_eq!(err.var, "GOTRUE_MAILER_SUBJECTS_MAGIC_LINK");
}

#[test]
fn blocks_are_counted_past_comments_and_strings() {
    let template = r#"{{/* {{ if }} */}}{{- /* {{ end }} */ -}}{{ if eq .Data.x "}}{{ end }}" }}a{{- else if .Data.y -}}b{{ else }}{{ printf `{{ if` }}{{ end }}"#;
    let config = with_template(EmailKind::Invite, template);
    assert_eq!(render(&config, EmailKind::Invite, json!({"y": 1})).html, "b");
}

#[test]
fn site_url_reads_as_configured() {
    let text = |raw: &str| site_url_text(&Url::parse(raw).unwrap());
    assert_eq!(text("http://localhost:3000"), "http://localhost:3000");
    assert_eq!(text("http://localhost:3000/"), "http://localhost:3000");
    assert_eq!(text("https://example.com/app/"), "https://example.com/app/");
    assert_eq!(text("https://example.com/app"), "https://example.com/app");
}
