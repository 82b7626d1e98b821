//! Custom OAuth/OIDC providers: `/admin/custom-providers` (supabase-js's
//! `auth.admin.customProviders`), the server-side-request-forgery rules for their URLs, and
//! signing in as `custom:<id>` (redirect flow and `grant_type=id_token`) against a fake issuer.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::fake_providers::{CLIENT_ID, CLIENT_SECRET, FIRST_KID, FakeProvider, FakeUser, sign_id_token};
use crate::helpers::{TestApp, assert_error, fresh_database, random_email};
use crate::oauth::{pairs, sign_in, user_of};

const ALLOW_PRIVATE: (&str, &str) = ("LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS", "true");

async fn spawn(vars: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_on(&fresh_database().await, vars).await
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut request = app
        .request(method, &format!("/auth/v1/admin/custom-providers{path}"))
        .bearer_auth(app.api_key("service_role"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// An OIDC provider whose issuer is the fake.
fn oidc_provider(identifier: &str, issuer: &str) -> Value {
    json!({
        "provider_type": "oidc", "identifier": identifier, "name": "Acme SSO",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": issuer,
    })
}

async fn listed(app: &TestApp) -> Vec<Value> {
    let response = admin(app, Method::GET, "", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["providers"].as_array().unwrap().clone()
}

#[tokio::test]
async fn admins_manage_custom_providers_in_gotrue_shapes() {
    let fake = FakeProvider::google().await;
    let app = spawn(&[ALLOW_PRIVATE]).await;

    let response = admin(&app, Method::POST, "", Some(oidc_provider("custom:acme", &fake.url))).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["identifier"], "custom:acme");
    assert_eq!(created["provider_type"], "oidc");
    assert_eq!(created["issuer"], fake.url.as_str());
    assert_eq!(created["discovery_document"]["issuer"], fake.url.as_str());
    assert!(created.get("client_secret").is_none(), "{created}");
    assert!(!created.to_string().contains(CLIENT_SECRET));

    // The identifier is taken; another needs the `custom:` prefix.
    let again = admin(&app, Method::POST, "", Some(oidc_provider("custom:acme", &fake.url))).await;
    assert_error(again, 400, "conflict").await;
    let unprefixed = admin(&app, Method::POST, "", Some(oidc_provider("acme2", &fake.url))).await;
    assert_eq!(unprefixed.status(), 400);

    let response = admin(&app, Method::PUT, "/custom:acme", Some(json!({"name": "Acme"}))).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "Acme");
    assert_eq!(updated["client_id"], CLIENT_ID);
    let one: Value = admin(&app, Method::GET, "/custom:acme", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], "Acme");
    assert_eq!(listed(&app).await.len(), 1);

    // Not for anyone but an admin.
    let anon = app
        .request(Method::GET, "/auth/v1/admin/custom-providers")
        .bearer_auth(app.api_key("anon"))
        .send()
        .await
        .unwrap();
    assert_error(anon, 403, "not_admin").await;

    assert_eq!(admin(&app, Method::DELETE, "/custom:acme", None).await.status(), 204);
    let gone = admin(&app, Method::GET, "/custom:acme", None).await;
    assert_error(gone, 404, "custom_provider_not_found").await;
    assert!(listed(&app).await.is_empty());
}

/// Refused by the URL rules themselves (not by a failed request to the URL).
async fn assert_refused_url(response: Response, url: &str) {
    let body = assert_error(response, 400, "validation_failed").await;
    let message = body["msg"].as_str().unwrap();
    assert!(message.contains("URL"), "{url}: {message}");
}

#[tokio::test]
async fn urls_must_be_https_and_public_unless_private_urls_are_allowed() {
    let fake = FakeProvider::google().await;
    let app = spawn(&[]).await;
    let refused = [
        fake.url.clone(),
        "https://127.0.0.1/".into(),
        "https://127.1/".into(),
        "https://0x7f000001/".into(),
        "https://localhost/".into(),
        "https://[::1]/".into(),
        "https://[::ffff:127.0.0.1]/".into(),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://10.0.0.1/".into(),
        "https://192.168.1.1/".into(),
        "https://user:pass@example.com/".into(),
        "ftp://example.com/".into(),
    ];
    for url in &refused {
        let response = admin(&app, Method::POST, "", Some(oidc_provider("custom:evil", url))).await;
        assert_refused_url(response, url).await;
        let oauth2 = json!({
            "provider_type": "oauth2", "identifier": "custom:evil2", "name": "Evil",
            "client_id": "c", "client_secret": "s",
            // A public address, written as one: no DNS needed (the tests have no network).
            "authorization_url": "https://93.184.215.14/authorize",
            "token_url": url, "userinfo_url": "https://93.184.215.14/userinfo",
        });
        let response = admin(&app, Method::POST, "", Some(oauth2)).await;
        assert_refused_url(response, url).await;
    }
    assert!(listed(&app).await.is_empty(), "nothing refused was stored");

    // Switched off: every route answers GoTrue's feature_disabled.
    let off = spawn(&[("GOTRUE_CUSTOM_OAUTH_ENABLED", "false"), ALLOW_PRIVATE]).await;
    let response = admin(&off, Method::POST, "", Some(oidc_provider("custom:acme", &fake.url))).await;
    assert_error(response, 404, "feature_disabled").await;
}

#[tokio::test]
async fn the_number_of_custom_providers_can_be_capped() {
    let fake = FakeProvider::google().await;
    let app = spawn(&[ALLOW_PRIVATE, ("GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS", "1")]).await;
    let first = admin(&app, Method::POST, "", Some(oidc_provider("custom:one", &fake.url))).await;
    assert_eq!(first.status(), 201);
    let second = admin(&app, Method::POST, "", Some(oidc_provider("custom:two", &fake.url))).await;
    assert_error(second, 400, "over_custom_provider_quota").await;
}

#[tokio::test]
async fn a_custom_oidc_provider_signs_in_by_redirect_and_by_id_token() {
    let fake = FakeProvider::google().await;
    let app = spawn(&[ALLOW_PRIVATE]).await;
    let response = admin(&app, Method::POST, "", Some(oidc_provider("custom:acme", &fake.url))).await;
    assert_eq!(response.status(), 201);

    let email = random_email();
    let profile = FakeUser::new(&email, true);
    fake.set_user(profile.clone());
    let end = sign_in(&app, "provider=custom:acme&redirect_to=http://localhost:3000/welcome").await;
    let fragment = pairs(end.fragment());
    assert!(fragment.contains_key("access_token"), "{end}");
    let asked = fake.last_authorize();
    assert!(asked["scope"].split(' ').any(|s| s == "openid"), "{asked:?}");
    assert_eq!(asked["code_challenge_method"], "S256", "PKCE towards the provider");
    let user = user_of(&app, &fragment["access_token"]).await;
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["app_metadata"]["provider"], "custom:acme");
    assert_eq!(user["identities"][0]["provider"], "custom:acme");
    assert_eq!(user["identities"][0]["id"], profile.id.as_str());

    // The same identity from a native app's ID token.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": fake.url, "aud": CLIENT_ID, "sub": profile.id, "email": email,
        "email_verified": true, "iat": now, "exp": now + 600,
    });
    let body = json!({"provider": "custom:acme", "id_token": sign_id_token(&claims, FIRST_KID)});
    let response = app.post_json("/auth/v1/token?grant_type=id_token", &body).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["id"], user["id"]);

    // Disabled by the admin: neither way in.
    let response = admin(&app, Method::PUT, "/custom:acme", Some(json!({"enabled": false}))).await;
    assert_eq!(response.status(), 200);
    let response = app.post_json("/auth/v1/token?grant_type=id_token", &body).await;
    assert_error(response, 400, "provider_disabled").await;
    let response = app.get("/auth/v1/authorize?provider=custom:acme").await;
    assert_eq!(response.status(), 400);
    let unknown = app.get("/auth/v1/authorize?provider=custom:nobody").await;
    assert_eq!(unknown.status(), 400);
}
