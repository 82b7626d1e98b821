//! Differences from GoTrue that client libraries' own test suites notice (issue #25): each
//! test here failed before its fix.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email};

const IDENTITY_CLAIMS: [&str; 4] = ["sub", "email", "email_verified", "phone_verified"];

fn has_identity_claims(metadata: &Value) -> bool {
    IDENTITY_CLAIMS.iter().any(|claim| metadata.get(claim).is_some())
}

#[tokio::test]
async fn admin_made_accounts_keep_exactly_the_metadata_given() {
    let app = TestApp::spawn().await;
    let created = admin(
        &app,
        Method::POST,
        "/auth/v1/admin/users",
        Some(
            json!({"email": random_email(), "password": "secret-pw", "email_confirm": true,
                    "user_metadata": {"name": "Ada"}}),
        ),
    )
    .await;
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["user_metadata"], json!({"name": "Ada"}));
    // The identity keeps its claims.
    assert_eq!(created["identities"][0]["identity_data"]["email_verified"], true);

    let path = format!("/auth/v1/admin/users/{}", created["id"].as_str().unwrap());
    let updated = admin(
        &app,
        Method::PUT,
        &path,
        Some(json!({"user_metadata": {"team": "blue"}})),
    )
    .await;
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["user_metadata"], json!({"name": "Ada", "team": "blue"}));

    let without_metadata = admin(
        &app,
        Method::POST,
        "/auth/v1/admin/users",
        Some(json!({"phone": "15550001234", "phone_confirm": true})),
    )
    .await;
    let without_metadata: Value = without_metadata.json().await.unwrap();
    assert_eq!(without_metadata["user_metadata"], json!({}));

    let link = admin(
        &app,
        Method::POST,
        "/auth/v1/admin/generate_link",
        Some(
            json!({"type": "signup", "email": random_email(), "password": "secret-pw",
                    "data": {"plan": "pro"}}),
        ),
    )
    .await;
    assert_eq!(link.status(), 200);
    let link: Value = link.json().await.unwrap();
    assert_eq!(link["user_metadata"], json!({"plan": "pro"}));

    // A self-service sign-up still merges the identity's claims, as GoTrue's `/signup` does.
    let session = app.sign_up(&random_email(), "secret-pw").await;
    assert!(has_identity_claims(&session["user"]["user_metadata"]), "{session}");
}

#[tokio::test]
async fn links_carry_redirect_to_as_gotrue_writes_it() {
    let app = TestApp::spawn_with(&[("GOTRUE_URI_ALLOW_LIST", "https://app.example.com/**")]).await;
    let link_with = |redirect_to: Option<&str>| {
        let mut body = json!({"type": "magiclink", "email": random_email()});
        if let Some(redirect_to) = redirect_to {
            body["redirect_to"] = json!(redirect_to);
        }
        let app = &app;
        async move {
            let response = admin(app, Method::POST, "/auth/v1/admin/generate_link", Some(body)).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["action_link"].as_str().unwrap().to_owned()
        }
    };
    // The site URL as configured (`http://localhost:3000`, no `/` added), unescaped.
    assert!(link_with(None).await.ends_with("&redirect_to=http://localhost:3000"));
    assert!(
        link_with(Some("https://app.example.com/welcome"))
            .await
            .ends_with("&redirect_to=https://app.example.com/welcome")
    );
    // Escaped where the query would otherwise split it.
    assert!(
        link_with(Some("https://app.example.com/cb?a=1&b=2"))
            .await
            .ends_with("&redirect_to=https%3A%2F%2Fapp.example.com%2Fcb%3Fa%3D1%26b%3D2")
    );
}

#[tokio::test]
async fn email_addresses_are_checked_with_gotrue_s_format() {
    let app = TestApp::spawn().await;
    for bad in ["xx:;x@x.x", "a(b)@c.de", "a@b_c.de", "a@-b.de"] {
        let response = app
            .post_json("/signup", &json!({"email": bad, "password": "secret-pw"}))
            .await;
        let body = assert_error(response, 400, "validation_failed").await;
        assert_eq!(body["msg"], "Unable to validate email address: invalid format", "{bad}");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    let response = app
        .post_json("/signup", &json!({"email": long, "password": "secret-pw"}))
        .await;
    let body = assert_error(response, 400, "validation_failed").await;
    assert_eq!(body["msg"], "An email address is too long");

    // A host of one label, as GoTrue accepts it.
    let local = format!("u{}", uuid::Uuid::new_v4().simple());
    let session = app.sign_up(&format!("{local}@localhost"), "secret-pw").await;
    assert_eq!(session["user"]["email"], format!("{local}@localhost"));
}

#[tokio::test]
async fn single_sign_on_answers_that_saml_is_disabled() {
    let app = TestApp::spawn().await;
    // What supabase-py's `sign_in_with_sso` sends; the answer comes before the body is read.
    let body = json!({"domain": "google", "skip_http_redirect": true,
                      "gotrue_meta_security": {"captcha_token": null}, "redirect_to": null});
    for (method, path) in [
        (Method::POST, "/auth/v1/sso"),
        (Method::POST, "/sso"),
        (Method::GET, "/auth/v1/sso/saml/metadata"),
        (Method::POST, "/auth/v1/sso/saml/acs"),
    ] {
        let response = app.request(method, path).json(&body).send().await.unwrap();
        let error = assert_error(response, 404, "saml_provider_disabled").await;
        assert_eq!(error["msg"], "SAML 2.0 is disabled", "{path}");
    }
    // The 2024-01-01 format, which supabase-py asks for.
    let response = app
        .request(Method::POST, "/auth/v1/sso")
        .header("X-Supabase-Api-Version", "2024-01-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "saml_provider_disabled");
    assert_eq!(error["message"], "SAML 2.0 is disabled");
}

#[tokio::test]
async fn sign_ups_check_the_password_before_the_provider() {
    // As GoTrue's `validateSignupParams`: whichever provider is asked for, enabled or not, a
    // missing or weak password is named first (supabase-py raises AuthWeakPasswordError).
    let app = TestApp::spawn_with(&[("GOTRUE_EXTERNAL_EMAIL_ENABLED", "false")]).await;
    for body in [
        json!({"email": random_email(), "password": "123"}),
        json!({"phone": "15551234567", "password": "123"}),
        json!({"email": random_email(), "phone": "15551234567", "password": "123"}),
    ] {
        let error = assert_error(app.post_json("/signup", &body).await, 422, "weak_password").await;
        assert_eq!(error["weak_password"]["reasons"], json!(["length"]), "{body}");
    }
    let error = assert_error(
        app.post_json("/signup", &json!({"phone": "15551234567"})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(error["msg"], "Signup requires a valid password");
    // With a good password, the disabled provider is named.
    assert_error(
        app.post_json("/signup", &json!({"email": random_email(), "password": "secret-pw"}))
            .await,
        400,
        "email_provider_disabled",
    )
    .await;
}
