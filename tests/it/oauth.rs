//! Sign-in with GitHub and Google against local fakes: `/authorize` → provider → `/callback`,
//! followed by hand (redirects are not followed automatically) the way a browser would.

use std::collections::HashMap;

use base64::Engine;
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::{TestApp, TestDatabase, assert_error, fresh_database, random_email};

const VERIFIER: &str = "an-oauth-code-verifier-that-is-long-enough-for-pkce-rules";

fn challenge() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

pub(crate) async fn spawn_with(fakes: &[&FakeProvider], extra: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_vars(&fresh_database().await, &vars(fakes, extra)).await
}

fn vars(fakes: &[&FakeProvider], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = fakes.iter().flat_map(|f| f.vars()).collect();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

trait SpawnVars {
    async fn spawn_vars(database: &TestDatabase, vars: &[(String, String)]) -> TestApp;
}

impl SpawnVars for TestApp {
    async fn spawn_vars(database: &TestDatabase, vars: &[(String, String)]) -> TestApp {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        TestApp::spawn_on(database, &pairs).await
    }
}

pub(crate) fn location(response: &Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "{:?}", response.headers());
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub(crate) fn pairs(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `/authorize` → the provider's authorize page; returns the provider's redirect to `/callback`.
pub(crate) async fn to_callback(app: &TestApp, query: &str) -> String {
    let provider_url = location(&app.get(&format!("/authorize?{query}")).await, 302);
    location(&app.client.get(&provider_url).send().await.unwrap(), 302)
}

/// The whole round trip; returns where the browser ends up.
pub(crate) async fn sign_in(app: &TestApp, query: &str) -> url::Url {
    let callback = to_callback(app, query).await;
    url::Url::parse(&location(&app.client.get(&callback).send().await.unwrap(), 302)).unwrap()
}

pub(crate) async fn user_of(app: &TestApp, access_token: &str) -> Value {
    let response = app.get_auth("/user", access_token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn implicit_flow_puts_the_session_and_provider_token_in_the_fragment() {
    for github in [true, false] {
        let fake = if github {
            FakeProvider::github().await
        } else {
            FakeProvider::google().await
        };
        let provider = if github { "github" } else { "google" };
        let email = random_email();
        let profile = FakeUser::new(&email, true);
        fake.set_user(profile.clone());
        let app = spawn_with(&[&fake], &[]).await;

        let end = sign_in(
            &app,
            &format!("provider={provider}&redirect_to=http://localhost:3000/welcome&scopes=repo&prompt=consent"),
        )
        .await;
        assert_eq!(&end.as_str()[..30], "http://localhost:3000/welcome#");
        let fragment = pairs(end.fragment());
        for key in [
            "access_token",
            "expires_at",
            "expires_in",
            "refresh_token",
            "provider_token",
            "sb",
        ] {
            assert!(fragment.contains_key(key), "{provider}: {key} in {fragment:?}");
        }
        assert_eq!(fragment["token_type"], "bearer");
        assert!(fragment["provider_token"].starts_with("provider-access-"));
        assert_eq!(fragment["provider_refresh_token"].is_empty(), github);

        // Scopes join the provider's defaults; unknown parameters are forwarded; the state is a flow id.
        let asked = fake.last_authorize();
        let default_scope = if github { "user:email" } else { "email profile" };
        assert_eq!(asked["scope"], format!("{default_scope} repo"));
        assert_eq!(asked["prompt"], "consent");
        assert!(uuid::Uuid::parse_str(&asked["state"]).is_ok());
        assert!(!asked.contains_key("provider") && !asked.contains_key("redirect_to"));

        let user = user_of(&app, &fragment["access_token"]).await;
        assert_eq!(user["email"], email.as_str());
        assert!(user["email_confirmed_at"].is_string(), "{user}");
        assert_eq!(user["app_metadata"]["provider"], provider);
        assert_eq!(user["user_metadata"]["full_name"], "Ada Lovelace");
        assert_eq!(user["identities"][0]["provider"], provider);
        assert_eq!(user["identities"][0]["id"], profile.id.as_str());
        assert_eq!(
            crate::helpers::jwt_payload(&fragment["access_token"])["amr"][0]["method"],
            "oauth"
        );

        // Signing in again reuses the identity.
        let again = pairs(sign_in(&app, &format!("provider={provider}")).await.fragment());
        assert_eq!(user_of(&app, &again["access_token"]).await["id"], user["id"]);
    }
}

#[tokio::test]
async fn pkce_flow_returns_a_code_and_the_exchange_returns_provider_tokens() {
    for github in [true, false] {
        let fake = if github {
            FakeProvider::github().await
        } else {
            FakeProvider::google().await
        };
        let provider = if github { "github" } else { "google" };
        if !github {
            fake.without_id_token(); // the userinfo path; the ID-token path is covered above
        }
        fake.set_user(FakeUser::new(&random_email(), true));
        let app = spawn_with(&[&fake], &[]).await;

        let query = format!(
            "provider={provider}&redirect_to=http://localhost:3000/cb&code_challenge={}&code_challenge_method=s256",
            challenge()
        );
        let end = sign_in(&app, &query).await;
        assert!(end.as_str().starts_with("http://localhost:3000/cb?code="), "{end}");
        let code = pairs(end.query())["code"].clone();

        let app = &app;
        let exchange = |verifier: &'static str| {
            let body = json!({ "auth_code": code, "code_verifier": verifier });
            async move { app.post_json("/token?grant_type=pkce", &body).await }
        };
        assert_error(
            exchange("a-wrong-verifier-that-is-long-enough-to-be-valid-here").await,
            400,
            "bad_code_verifier",
        )
        .await;
        let response = exchange(VERIFIER).await;
        assert_eq!(response.status(), 200);
        let session: Value = response.json().await.unwrap();
        assert!(
            session["provider_token"]
                .as_str()
                .unwrap()
                .starts_with("provider-access-")
        );
        // GitHub hands out no refresh token: GoTrue leaves the empty field out (`omitempty`).
        match session.get("provider_refresh_token") {
            None => assert!(github, "{session}"),
            Some(token) => assert!(token.as_str().unwrap().starts_with("provider-refresh-"), "{session}"),
        }
        assert_eq!(session["user"]["identities"][0]["provider"], provider);
        // The code works once.
        assert_error(exchange(VERIFIER).await, 404, "flow_state_not_found").await;
    }
}

async fn assert_state_error(response: Response, code: &str) {
    let to = url::Url::parse(&location(&response, 303)).unwrap();
    assert_eq!(to.host_str(), Some("localhost"));
    let query = pairs(to.query());
    assert_eq!(query["error"], "invalid_request");
    assert_eq!(query["error_code"], code, "{to}");
    let fragment = pairs(to.fragment());
    assert_eq!(fragment["error_code"], code);
    assert!(fragment.contains_key("sb"));
}

#[tokio::test]
async fn states_work_once_and_only_for_their_own_flow() {
    let github = FakeProvider::github().await;
    let google = FakeProvider::google().await;
    github.set_user(FakeUser::new(&random_email(), true));
    google.set_user(FakeUser::new(&random_email(), true));
    let app = spawn_with(&[&github, &google], &[]).await;

    // Implicit: the flow is gone after use.
    let callback = to_callback(&app, "provider=github").await;
    assert!(location(&app.client.get(&callback).send().await.unwrap(), 302).contains("#access_token="));
    assert_state_error(app.client.get(&callback).send().await.unwrap(), "bad_oauth_state").await;

    // PKCE: the flow waits for its exchange but its state is spent.
    let callback = to_callback(
        &app,
        &format!(
            "provider=github&code_challenge={}&code_challenge_method=s256",
            challenge()
        ),
    )
    .await;
    assert!(location(&app.client.get(&callback).send().await.unwrap(), 302).contains("?code="));
    assert_state_error(
        app.client.get(&callback).send().await.unwrap(),
        "flow_state_already_used",
    )
    .await;

    assert_state_error(app.get("/callback?code=x&state=not-a-uuid").await, "bad_oauth_state").await;
    let random = uuid::Uuid::new_v4();
    assert_state_error(
        app.get(&format!("/callback?code=x&state={random}")).await,
        "bad_oauth_state",
    )
    .await;
    assert_state_error(app.get("/callback?code=x").await, "bad_oauth_callback").await;

    // A GitHub code presented with a Google flow's state: exchanged at Google, which refuses it.
    let github_callback = url::Url::parse(&to_callback(&app, "provider=github").await).unwrap();
    let google_callback = url::Url::parse(&to_callback(&app, "provider=google").await).unwrap();
    let code = &pairs(github_callback.query())["code"];
    let state = &pairs(google_callback.query())["state"];
    let end = location(&app.get(&format!("/callback?code={code}&state={state}")).await, 302);
    let fragment = pairs(url::Url::parse(&end).unwrap().fragment());
    assert_eq!(fragment["error"], "server_error", "{end}");
    assert!(!fragment.contains_key("access_token"));
}

#[tokio::test]
async fn an_unverified_provider_email_never_takes_over_an_account() {
    let github = FakeProvider::github().await;
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&github, &google], &[]).await;
    let email = random_email();
    let owner = app.sign_up(&email, "correct horse battery").await;
    let owner_id = owner["user"]["id"].as_str().unwrap().to_owned();

    github.set_user(FakeUser::new(&email, false));
    let fragment = pairs(sign_in(&app, "provider=github").await.fragment());
    let stranger = user_of(&app, &fragment["access_token"]).await;
    assert_ne!(stranger["id"], owner_id.as_str());
    assert_eq!(stranger["email"], "", "{stranger}");
    assert!(stranger["identities"][0]["identity_data"]["email"].is_null());
    assert_eq!(app.sign_in(&email, "correct horse battery").await.status(), 200);

    // Verified by the provider: the identity joins the owner's account.
    google.set_user(FakeUser::new(&email, true));
    let fragment = pairs(sign_in(&app, "provider=google").await.fragment());
    let linked = user_of(&app, &fragment["access_token"]).await;
    assert_eq!(linked["id"], owner_id.as_str());
    let providers: Vec<&str> = linked["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["email", "google"]);
    assert_eq!(linked["app_metadata"]["providers"], json!(["email", "google"]));
    let audited: Vec<Value> =
        sqlx::query_scalar("select payload from _auth_audit_log where payload->>'action' = 'identity_linked'")
            .fetch_all(&mut app.db().await)
            .await
            .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["actor_id"], owner_id.as_str());
    assert_eq!(audited[0]["traits"]["provider"], "google");
    assert!(linked["identities"][1]["identity_id"].is_string(), "{linked}");
    assert_eq!(
        audited[0]["traits"]["identity_id"],
        linked["identities"][1]["identity_id"]
    );
}

#[tokio::test]
async fn a_new_unverified_email_needs_verification_and_provider_errors_pass_through() {
    let github = FakeProvider::github().await;
    let app = spawn_with(&[&github], &[]).await;
    github.set_user(FakeUser::new(&random_email(), false));
    let end = sign_in(&app, "provider=github&redirect_to=http://localhost:3000/x").await;
    let fragment = pairs(end.fragment());
    assert_eq!(fragment["error"], "access_denied", "{end}");
    assert_eq!(fragment["error_code"], "provider_email_needs_verification");
    // Signing in again does not get around the confirmation.
    let again = pairs(sign_in(&app, "provider=github").await.fragment());
    assert_eq!(again["error_code"], "provider_email_needs_verification");
    assert!(!again.contains_key("access_token"));

    github.deny_next("access_denied");
    let end = sign_in(&app, "provider=github&redirect_to=http://localhost:3000/x").await;
    assert!(
        end.as_str().starts_with("http://localhost:3000/x?error=access_denied"),
        "{end}"
    );
    assert_eq!(
        pairs(end.fragment())["error_description"],
        "The user has denied your application access."
    );
}

#[tokio::test]
async fn a_flow_started_before_a_restart_finishes_after_it() {
    let github = FakeProvider::github().await;
    github.set_user(FakeUser::new(&random_email(), true));
    let database = fresh_database().await;
    let first = TestApp::spawn_vars(&database, &vars(&[&github], &[])).await;
    let callback =
        url::Url::parse(&to_callback(&first, "provider=github&redirect_to=http://localhost:3000/back").await).unwrap();
    let redirect_uri = first.url("/callback");
    drop(first);

    // The provider's redirect URI is fixed in production; here it is the first server's.
    let second = TestApp::spawn_vars(
        &database,
        &vars(&[&github], &[("GOTRUE_EXTERNAL_GITHUB_REDIRECT_URI", &redirect_uri)]),
    )
    .await;
    let end = location(
        &second.get(&format!("/callback?{}", callback.query().unwrap())).await,
        302,
    );
    assert!(end.starts_with("http://localhost:3000/back#access_token="), "{end}");
}

#[tokio::test]
async fn unknown_providers_are_refused_and_settings_list_the_enabled_ones() {
    let github = FakeProvider::github().await;
    let app = spawn_with(&[&github], &[]).await;
    for provider in ["twitter", "google", ""] {
        let body = assert_error(
            app.get(&format!("/authorize?provider={provider}")).await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(body["msg"], format!("Unsupported provider: {provider}"));
    }
    let settings: Value = app.get("/settings").await.json().await.unwrap();
    assert_eq!(settings["external"]["github"], true);
    assert_eq!(settings["external"]["google"], false);
}

#[tokio::test]
async fn a_posted_callback_finishes_the_flow_like_a_get() {
    let github = FakeProvider::github().await;
    github.set_user(FakeUser::new(&random_email(), true));
    let app = spawn_with(&[&github], &[]).await;
    let callback = url::Url::parse(&to_callback(&app, "provider=github").await).unwrap();
    let response = app
        .client
        .post(app.url("/callback"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(callback.query().unwrap().to_owned())
        .send()
        .await
        .unwrap();
    assert!(location(&response, 302).starts_with("http://localhost:3000/#access_token="));
}

#[tokio::test]
async fn google_metadata_is_fetched_once_and_again_when_the_keys_rotate() {
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&google], &[]).await;
    let signed_in = |end: url::Url| pairs(end.fragment()).contains_key("access_token");
    google.set_user(FakeUser::new(&random_email(), true));
    assert!(signed_in(sign_in(&app, "provider=google").await));
    assert!(signed_in(sign_in(&app, "provider=google").await));
    // Two sign-ins need the discovery document four times (at /authorize and at /callback)
    // and the keys twice; each was fetched once.
    assert_eq!(google.metadata_requests(), (1, 1));

    // Google signs with a key the cached set does not have: the set is fetched again.
    google.rotate_key("test-key-2");
    assert!(signed_in(sign_in(&app, "provider=google").await));
    assert_eq!(google.metadata_requests(), (1, 2));
    assert!(signed_in(sign_in(&app, "provider=google").await));
    assert_eq!(google.metadata_requests(), (1, 2));
}
