//! Issue #14, part 1: every hostile `redirect_to` of the shared table goes through the email
//! link path (`/otp` + the mail, `/admin/generate_link` + `GET /verify`) and the OAuth path
//! (`/authorize` → provider → `/callback`), and where it ends is judged the way a browser
//! judges it: the host of the `Location` header as the WHATWG parser (`url::Url`) reads it.

#[path = "../../src/auth/redirect/hostile.rs"]
mod hostile;

use reqwest::Method;
use reqwest::header::{HeaderValue, REFERER};
use serde_json::{Value, json};
use url::Url;

use crate::email::mail_app;
use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::{TestApp, random_email};
use crate::oauth::{location, spawn_with};
use hostile::{ALLOW_LIST, HOSTILE, SITE_URL};

const VARS: [(&str, &str); 3] = [
    ("GOTRUE_SITE_URL", SITE_URL),
    ("GOTRUE_URI_ALLOW_LIST", ALLOW_LIST),
    ("LATCHKEY_RATE_LIMIT_ENABLED", "false"),
];

/// Whether a browser following `location` lands on the site or an allow-listed host.
fn lands_on_allowed_host(location: &str) -> bool {
    let Ok(url) = Url::parse(location) else {
        return false;
    };
    let one_label_of_example_org = |host: &str| {
        host.strip_suffix(".example.org")
            .is_some_and(|label| !label.is_empty() && !label.contains('.'))
    };
    match (url.scheme(), url.host_str()) {
        ("https", Some("app.example.com")) => url.port().is_none(),
        ("https", Some(host)) => url.port().is_none() && one_label_of_example_org(host),
        ("myapp", Some("callback")) => true,
        ("http", Some("127.0.0.1" | "[::1]")) => true,
        _ => false,
    }
}

/// Where the table says the browser must go, without the fragment the server replaces.
fn expected_target(followed: Option<&str>) -> String {
    let target = followed.map_or(format!("{SITE_URL}/"), str::to_owned);
    target.split('#').next().unwrap_or_default().to_owned()
}

/// Checks one `Location`: `None` when fine, else a line for the failure report. `then` is
/// what must follow the target (`access_token=`, `error=`), or `?` for the callback's errors,
/// which also go in the query: then only the target up to its query is compared.
fn check(path: &str, input: &str, followed: Option<&str>, location: &str, then: &str) -> Option<String> {
    let target = expected_target(followed);
    let expected = if then == "?" {
        format!("{}?", target.split('?').next().unwrap_or_default())
    } else {
        format!("{target}#{then}")
    };
    let host = Url::parse(location).ok().and_then(|u| u.host_str().map(str::to_owned));
    // Enough of the Location to see where it goes, not the whole session.
    let shown: String = location.chars().take(expected.len() + 20).collect();
    (!lands_on_allowed_host(location) || !location.starts_with(&expected))
        .then(|| format!("{path}: {input:?} → host {host:?}, Location {shown}... (expected {expected}...)"))
}

fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        HOSTILE.len(),
        failures.join("\n")
    );
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    let key = app.api_key("service_role");
    let request = app.request(Method::POST, path).bearer_auth(&key).json(&body);
    request.send().await.unwrap()
}

async fn confirmed_user(app: &TestApp) -> String {
    let email = random_email();
    let body = json!({"email": email, "password": "secret-pw", "email_confirm": true});
    assert_eq!(admin_post(app, "/admin/users", body).await.status(), 200);
    email
}

fn redirect_param(link: &str) -> Option<String> {
    let link = Url::parse(link).ok()?;
    link.query_pairs()
        .find(|(k, _)| k == "redirect_to")
        .map(|(_, v)| v.into_owned())
}

/// The victim's path: `/otp` with the hostile `redirect_to`, then the mailed link as is.
#[tokio::test]
async fn magic_links_from_otp_never_leave_the_allowed_hosts() {
    let mut vars = VARS.to_vec();
    vars.push(("GOTRUE_RATE_LIMIT_EMAIL_SENT", "100000"));
    let (app, sink) = mail_app(&vars).await;
    let email = confirmed_user(&app).await;
    let mut failures = Vec::new();
    for (input, followed) in HOSTILE {
        let sent = app.request(Method::POST, "/otp").query(&[("redirect_to", input)]);
        let response = sent.json(&json!({"email": email})).send().await.unwrap();
        assert_eq!(response.status(), 200, "{input:?}");
        let link = sink.last_to(&email).await.link();
        let in_mail = redirect_param(&link).unwrap_or_default();
        // The site URL is written as configured (no `/` after the host), as GoTrue writes it.
        let written = |url: &str| Url::parse(url).map(String::from).unwrap_or_default();
        if written(&in_mail) != written(&expected_target(*followed)) && Some(in_mail.as_str()) != *followed {
            failures.push(format!("mail: {input:?} → redirect_to={in_mail:?}"));
        }
        let response = app.client.get(&link).send().await.unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        failures.extend(check("/otp mail", input, *followed, &location, "access_token="));
    }
    assert_no_failures(&failures);
}

/// The attacker's path: a genuine link whose `redirect_to` is swapped for a hostile one,
/// and `generate_link` with the hostile value in the body.
#[tokio::test]
async fn verify_with_a_hostile_redirect_to_never_leaves_the_allowed_hosts() {
    let app = TestApp::spawn_with(&VARS).await;
    let email = confirmed_user(&app).await;
    let mut failures = Vec::new();
    for (input, followed) in HOSTILE {
        let body = json!({"type": "magiclink", "email": email, "redirect_to": input});
        let response = admin_post(&app, "/admin/generate_link", body).await;
        let link: Value = if response.status() == 400 {
            // A NUL in a JSON body is refused outright (Postgres text cannot hold one).
            assert!(input.contains('\0'), "{input:?}");
            let body = json!({"type": "magiclink", "email": email});
            admin_post(&app, "/admin/generate_link", body)
                .await
                .json()
                .await
                .unwrap()
        } else {
            assert_eq!(response.status(), 200, "{input:?}");
            let link: Value = response.json().await.unwrap();
            let judged = link["redirect_to"].as_str().unwrap_or_default();
            let in_link = redirect_param(link["action_link"].as_str().unwrap());
            if !lands_on_allowed_host(judged) || in_link.as_deref() != Some(judged) {
                failures.push(format!(
                    "generate_link: {input:?} → {judged:?}, in the link {in_link:?}"
                ));
            }
            link
        };
        let query = [
            ("token", link["hashed_token"].as_str().unwrap()),
            ("type", "magiclink"),
            ("redirect_to", input),
        ];
        let response = app.request(Method::GET, "/verify").query(&query).send().await.unwrap();
        if input.contains('\0') {
            // `/verify`'s query extractor refuses a NUL with a 400: no redirect at all.
            assert_eq!(response.status(), 400, "{input:?}");
            continue;
        }
        assert_eq!(response.status(), 303, "{input:?}");
        let location = response.headers()["location"].to_str().unwrap();
        failures.extend(check("/verify", input, *followed, location, "access_token="));
    }
    assert_no_failures(&failures);
}

/// The `redirect_to` header and the `Referer` fallback are judged the same way (only the
/// inputs that can be sent as a header value at all).
#[tokio::test]
async fn hostile_headers_never_leave_the_allowed_hosts() {
    let app = TestApp::spawn_with(&VARS).await;
    let mut failures = Vec::new();
    for (input, followed) in HOSTILE {
        // Header values cannot carry controls or non-ASCII, and the server's HTTP parser
        // trims the whitespace around them.
        let Ok(value) = HeaderValue::from_str(input) else {
            continue;
        };
        if input.trim() != *input {
            continue;
        }
        for header in ["redirect_to", REFERER.as_str()] {
            let request = app.request(Method::GET, "/verify?token=nope&type=magiclink");
            let response = request.header(header, value.clone()).send().await.unwrap();
            assert_eq!(response.status(), 303, "{input:?}");
            let location = response.headers()["location"].to_str().unwrap();
            failures.extend(check(header, input, *followed, location, "error="));
        }
    }
    assert_no_failures(&failures);
}

/// The issue's link: the `redirect_to` decodes to `https://evil%2Ecom\@x.example.org/`, which
/// passed `https://*.example.org/**` and sent the session to evil.com. Also sent unencoded,
/// as typed into an address bar.
#[tokio::test]
async fn the_reported_magic_link_no_longer_sends_the_session_to_evil_com() {
    let app = TestApp::spawn_with(&VARS).await;
    let email = confirmed_user(&app).await;
    for redirect_to in [
        r"https://evil%252Ecom%5C@x.example.org/",
        r"https://evil%2Ecom\@x.example.org/",
    ] {
        let body = json!({"type": "magiclink", "email": email});
        let link: Value = admin_post(&app, "/admin/generate_link", body)
            .await
            .json()
            .await
            .unwrap();
        let token = link["hashed_token"].as_str().unwrap();
        let response = app
            .get(&format!(
                "/verify?token={token}&type=magiclink&redirect_to={redirect_to}"
            ))
            .await;
        let location = response.headers()["location"].to_str().unwrap();
        let browser = Url::parse(location).unwrap();
        assert_eq!(browser.host_str(), Some("app.example.com"), "{redirect_to}: {location}");
        assert!(
            location.starts_with("https://app.example.com/#access_token="),
            "{location}"
        );
    }
}

/// `/authorize?redirect_to=<hostile>` → provider → `/callback`, signing in and refused by the
/// provider: both end on an allowed host.
#[tokio::test]
async fn oauth_callbacks_never_leave_the_allowed_hosts() {
    let fake = FakeProvider::github().await;
    fake.set_user(FakeUser::new(&random_email(), true));
    let app = spawn_with(&[&fake], &VARS).await;
    let mut failures = Vec::new();
    for (input, followed) in HOSTILE {
        for denied in [false, true] {
            if denied {
                fake.deny_next("access_denied");
            }
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("provider", "github")
                .append_pair("redirect_to", input)
                .finish();
            let provider = location(&app.get(&format!("/authorize?{query}")).await, 302);
            let callback = location(&app.client.get(&provider).send().await.unwrap(), 302);
            let end = location(&app.client.get(&callback).send().await.unwrap(), 302);
            let then = if denied { "?" } else { "access_token=" };
            failures.extend(check("/callback", input, *followed, &end, then));
        }
    }
    assert_no_failures(&failures);
}

/// A pattern that does not compile stops start-up with an error naming the variable.
#[tokio::test]
async fn a_bad_allow_list_pattern_stops_start_up() {
    let database = crate::helpers::fresh_database().await;
    let mut vars = crate::helpers::base_vars(database.url());
    vars.insert("GOTRUE_URI_ALLOW_LIST".into(), "https://{a,b.example.org/**".into());
    let config = latchkey::config::Config::from_vars(vars).unwrap();
    let err = latchkey::startup::Application::build(config).await.err().unwrap();
    assert!(format!("{err:#}").contains("GOTRUE_URI_ALLOW_LIST"), "{err:#}");
}

/// A flow stored with an unjudged referrer (written before this check existed) is judged
/// again at `/callback`: the session still goes to the site.
#[tokio::test]
async fn a_stored_referrer_is_judged_again_at_the_callback() {
    let fake = FakeProvider::github().await;
    fake.set_user(FakeUser::new(&random_email(), true));
    let app = spawn_with(&[&fake], &VARS).await;
    let provider = location(&app.get("/authorize?provider=github").await, 302);
    let hostile = r"https://evil%2Ecom\@x.example.org/";
    sqlx::query("update auth._auth_flow_state set referrer = $1")
        .bind(hostile)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let callback = location(&app.client.get(&provider).send().await.unwrap(), 302);
    let end = location(&app.client.get(&callback).send().await.unwrap(), 302);
    assert_eq!(Url::parse(&end).unwrap().host_str(), Some("app.example.com"), "{end}");
    assert!(end.starts_with("https://app.example.com/#access_token="), "{end}");
}
