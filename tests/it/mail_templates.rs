//! What the mails say and where their links point, as GoTrue has it: `GOTRUE_MAILER_URLPATHS_*`
//! in sent mail and in `generate_link`, Go templates (`{{ if }}`, `{{ range }}`, escaping) from
//! files and from URLs (fetched at start-up, cached, refreshed, with the built-in template while
//! the URL fails).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use latchkey::mail::EmailKind;
use latchkey::mail::templates::TemplateData;
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::email::{fragment, location, mail_app};
use crate::helpers::random_email;

async fn admin_link(app: &crate::helpers::TestApp, body: Value) -> Value {
    let response = app
        .request(Method::POST, "/auth/v1/admin/generate_link")
        .bearer_auth(app.api_key("service_role"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn path_and_query(link: &str) -> (String, String) {
    let url = Url::parse(link).unwrap();
    (url.path().to_owned(), url.query().unwrap_or("").to_owned())
}

#[tokio::test]
async fn url_paths_shape_mailed_and_generated_links() {
    let (app, sink) = mail_app(&[
        // Supabase's self-hosted values (Kong serves GoTrue under /auth/v1).
        ("GOTRUE_MAILER_URLPATHS_CONFIRMATION", "/auth/v1/verify"),
        ("GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE", "/auth/v1/verify"),
        // A query of its own follows GoTrue's three parameters.
        ("GOTRUE_MAILER_URLPATHS_RECOVERY", "/auth/v1/verify?via=mail"),
        ("GOTRUE_MAILER_URLPATHS_INVITE", "https://app.example.test/accept"),
    ])
    .await;

    // Sent mail: the link has the configured path, and it works.
    let email = random_email();
    let signup = json!({"email": email, "password": "a-long-password"});
    assert_eq!(app.post_json("/signup", &signup).await.status(), 200);
    let link = sink.last_to(&email).await.link();
    assert!(link.starts_with(&app.url("/auth/v1/verify?token=")), "{link}");
    let tokens = fragment(&location(&app.client.get(&link).send().await.unwrap()));
    assert!(tokens.contains_key("access_token"), "the link confirms: {tokens:?}");

    assert_eq!(app.post_json("/recover", &json!({"email": email})).await.status(), 200);
    let recovery = sink.last_to(&email).await.link();
    let (path, query) = path_and_query(&recovery);
    assert_eq!(path, "/auth/v1/verify");
    assert!(query.starts_with("token=") && query.ends_with("&via=mail"), "{query}");
    assert!(query.contains("&type=recovery&redirect_to="), "{query}");
    let tokens = fragment(&location(&app.client.get(&recovery).send().await.unwrap()));
    assert_eq!(tokens["type"], "recovery");

    // generate_link's action_link: the same rule, each type with its path.
    let invited = admin_link(&app, json!({"type": "invite", "email": random_email()})).await;
    let invite_link = invited["action_link"].as_str().unwrap();
    assert!(
        invite_link.starts_with("https://app.example.test/accept?token="),
        "{invite_link}"
    );
    assert!(invite_link.contains("&type=invite&"), "{invite_link}");

    let magic = admin_link(&app, json!({"type": "magiclink", "email": email})).await;
    let (path, query) = path_and_query(magic["action_link"].as_str().unwrap());
    assert_eq!(path, "/auth/v1/verify");
    assert!(
        query.contains("&type=magiclink&") && query.ends_with("&via=mail"),
        "{query}"
    );

    let signup_link = admin_link(
        &app,
        json!({"type": "signup", "email": random_email(), "password": "a-long-password"}),
    )
    .await;
    assert_eq!(
        path_and_query(signup_link["action_link"].as_str().unwrap()).0,
        "/auth/v1/verify"
    );
    let change = admin_link(
        &app,
        json!({"type": "email_change_new", "email": email, "new_email": random_email()}),
    )
    .await;
    let change_link = change["action_link"].as_str().unwrap().to_owned();
    assert_eq!(path_and_query(&change_link).0, "/auth/v1/verify");
    assert_eq!(
        location(&app.client.get(&change_link).send().await.unwrap()).path(),
        "/"
    );
}

fn template_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latchkey-templates-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// In the shape of Supabase's documented examples: a language switch on user metadata, a
/// link built from the token hash, and a range.
const CONFIRMATION: &str = r#"{{ if eq .Data.lang "fr" }}<h2>Confirmez votre adresse</h2>{{ else }}<h2>Confirm your address</h2>{{ end }}
<p>Bonjour {{ .Data.name }}</p>
<ul>{{ range .Data.teams }}<li>{{ . }}</li>{{ end }}</ul>
<p><a href="{{ .SiteURL }}/auth/confirm?token_hash={{ .TokenHash }}&type=email">Confirmer</a></p>
<p><a href="{{ .ConfirmationURL }}">{{ .Email }}</a> {{ .Token }}</p>"#;

#[tokio::test]
async fn go_templates_render_conditionals_ranges_and_escape_metadata() {
    let path = template_file("confirmation.html", CONFIRMATION);
    let (app, sink) = mail_app(&[
        ("GOTRUE_MAILER_TEMPLATES_CONFIRMATION", path.to_str().unwrap()),
        (
            "GOTRUE_MAILER_SUBJECTS_CONFIRMATION",
            r#"{{ if eq .Data.lang "fr" }}Bienvenue{{ else }}Welcome{{ end }} {{ .Data.name }}"#,
        ),
    ])
    .await;
    let email = random_email();
    let hostile = "<img src=x onerror=alert(1)>\r\nBcc: attacker@evil.test";
    let body = json!({
        "email": email,
        "password": "a-long-password",
        "data": {"lang": "fr", "name": hostile, "teams": ["red", "blue"]},
    });
    assert_eq!(app.post_json("/signup", &body).await.status(), 200);
    let mail = sink.last_to(&email).await;

    let html = mail.html();
    assert!(html.starts_with("<h2>Confirmez votre adresse</h2>"), "{html}");
    assert!(!html.contains("Confirm your address"), "one branch only: {html}");
    assert!(html.contains("<ul><li>red</li><li>blue</li></ul>"), "{html}");
    assert!(
        html.contains("href=\"http://localhost:3000/auth/confirm?token_hash="),
        "{html}"
    );
    // The metadata is text, as Go's html/template makes it: no tag gets into the mail.
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("Bonjour &lt;img src=x onerror=alert(1)&gt;"), "{html}");

    // The text part is derived from the HTML, with the verification link.
    let link = mail.link();
    let tokens = fragment(&location(&app.client.get(&link).send().await.unwrap()));
    assert!(tokens.contains_key("access_token"));

    // The subject is one plain line: no header can be added through the metadata.
    let subject = mail.subject();
    assert!(subject.starts_with("Bienvenue"), "{subject}");
    assert_eq!(mail.header("Bcc"), None, "{}", mail.raw);
    assert_eq!(mail.to, [email]);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// A template server whose answer the test changes; it counts the requests.
#[derive(Clone, Default)]
struct TemplateServer {
    answer: Arc<Mutex<(u16, String)>>,
    hits: Arc<Mutex<usize>>,
}

impl TemplateServer {
    async fn start(status: u16, body: &str) -> (TemplateServer, String) {
        let server = TemplateServer::default();
        server.serve(status, body);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/template.html", get(answer))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, format!("{address}/template.html"))
    }

    fn serve(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

async fn answer(State(server): State<TemplateServer>) -> (StatusCode, String) {
    *server.hits.lock().unwrap() += 1;
    let (status, body) = server.answer.lock().unwrap().clone();
    (StatusCode::from_u16(status).unwrap(), body)
}

#[tokio::test]
async fn templates_from_urls_are_fetched_at_start_up_and_cached() {
    let (server, url) = TemplateServer::start(
        200,
        "<p>Fetched for {{ .Email }}: <a href=\"{{ .ConfirmationURL }}\">go</a></p>",
    )
    .await;
    let (app, sink) = mail_app(&[
        ("GOTRUE_MAILER_TEMPLATES_CONFIRMATION", url.as_str()),
        // Nothing listens there: the built-in template is used.
        ("GOTRUE_MAILER_TEMPLATES_RECOVERY", "http://127.0.0.1:9/recovery.html"),
    ])
    .await;
    assert_eq!(server.hits(), 1, "fetched once, before the first request");

    for _ in 0..2 {
        let email = random_email();
        let signup = json!({"email": email, "password": "a-long-password"});
        assert_eq!(app.post_json("/signup", &signup).await.status(), 200);
        let mail = sink.last_to(&email).await;
        assert!(
            mail.html().starts_with(&format!("<p>Fetched for {email}:")),
            "{}",
            mail.html()
        );
        let tokens = fragment(&location(&app.client.get(mail.link()).send().await.unwrap()));
        assert!(tokens.contains_key("access_token"));

        assert_eq!(app.post_json("/recover", &json!({"email": email})).await.status(), 200);
        assert!(
            sink.last_to(&email).await.html().contains("Reset Password"),
            "built-in recovery"
        );
    }
    assert_eq!(server.hits(), 1, "requests read the cache");
}

/// What a confirmation mail's body says now.
fn confirmation_html(app: &crate::helpers::TestApp) -> String {
    let data = TemplateData {
        token: "123456",
        ..TemplateData::default()
    };
    app.state.outbox.render(EmailKind::Confirmation, &data).unwrap().html
}

async fn wait_for_html(app: &crate::helpers::TestApp, expected: &str) {
    // About time itself: the refresh runs every second here; 30 s is a generous bound.
    for _ in 0..300 {
        if confirmation_html(app) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still {:?}, waited for {expected:?}", confirmation_html(app));
}

#[tokio::test]
async fn a_failing_template_url_is_retried_and_a_stale_template_refetched() {
    let (server, url) = TemplateServer::start(503, "down").await;
    let (app, _sink) = mail_app(&[
        ("GOTRUE_MAILER_TEMPLATES_CONFIRMATION", url.as_str()),
        ("GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL", "1s"),
        ("GOTRUE_MAILER_TEMPLATE_MAX_AGE", "2s"),
    ])
    .await;
    assert!(
        confirmation_html(&app).contains("Confirm your signup"),
        "built-in while the URL fails"
    );

    server.serve(200, "<p>v1 {{ .Token }}</p>");
    wait_for_html(&app, "<p>v1 123456</p>").await;
    server.serve(200, "<p>v2 {{ .Token }}</p>");
    wait_for_html(&app, "<p>v2 123456</p>").await;

    // A template that stops parsing keeps the one there was.
    server.serve(200, "<p>{{ if .Token }}broken</p>");
    let hits = server.hits();
    for _ in 0..300 {
        if server.hits() > hits + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.hits() > hits + 1, "fetched again");
    assert_eq!(confirmation_html(&app), "<p>v2 123456</p>");
}
