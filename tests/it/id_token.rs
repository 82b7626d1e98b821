//! `POST /token?grant_type=id_token` (supabase-js's `signInWithIdToken` and
//! `linkIdentity({provider, token})`) against a fake OIDC issuer: the Google fake, with its own
//! key and JWKS. Tokens are minted here, so that each check has a token that fails it alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fake_providers::{CLIENT_ID, CLIENT_SECRET, FIRST_KID, FakeProvider, sign_id_token};
use crate::helpers::{TestApp, fresh_database, random_email};

/// A second client id of the same provider (an Android app's, say).
const ANDROID_CLIENT: &str = "latchkey-android-client";

/// Latchkey with Google pointed at the fake, accepting both client ids; `extra` on top.
async fn spawn(fake: &FakeProvider, extra: &[(&str, &str)]) -> TestApp {
    let client_ids = format!("{CLIENT_ID},{ANDROID_CLIENT}");
    let mut vars = vec![
        ("GOTRUE_EXTERNAL_GOOGLE_ENABLED", "true"),
        ("GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID", client_ids.as_str()),
        ("GOTRUE_EXTERNAL_GOOGLE_SECRET", CLIENT_SECRET),
        ("GOTRUE_EXTERNAL_GOOGLE_URL", fake.url.as_str()),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_on(&fresh_database().await, &vars).await
}

/// Claims the fake issuer would put in a token for `email`.
fn claims(fake: &FakeProvider, sub: &str, email: &str, verified: bool) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": fake.url, "aud": CLIENT_ID, "sub": sub, "email": email,
        "email_verified": verified, "name": "Ada Lovelace", "iat": now, "exp": now + 600,
    })
}

fn sha256_hex(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

async fn grant(app: &TestApp, body: Value) -> Response {
    app.post_json("/auth/v1/token?grant_type=id_token", &body).await
}

/// GoTrue's OAuth-style refusal: 400 `{"error": ..., "error_description": ...}`.
async fn assert_refused(response: Response, error: &str, description: &str) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    let said = body["error_description"].as_str().unwrap_or_default();
    assert!(said.contains(description), "{body}");
}

async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from _auth_users")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_of_the_issuer_signs_in_for_any_configured_client_id() {
    let fake = FakeProvider::google().await;
    let app = spawn(&fake, &[]).await;
    let email = random_email();
    let mut first = claims(&fake, "g-100", &email, true);
    first["nonce"] = json!(sha256_hex("raw-nonce"));
    let token = sign_id_token(&first, FIRST_KID);

    let response = grant(
        &app,
        json!({"provider": "google", "id_token": token, "nonce": "raw-nonce"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert!(session["access_token"].is_string() && session["refresh_token"].is_string());
    let user = &session["user"];
    assert_eq!(user["email"], email.as_str());
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    assert_eq!(user["app_metadata"]["provider"], "google");
    assert_eq!(user["identities"][0]["provider"], "google");
    assert_eq!(user["identities"][0]["id"], "g-100");
    assert_eq!(user["identities"][0]["identity_data"]["full_name"], "Ada Lovelace");

    // The Android client's token, no nonce on either side: the same identity, the same user.
    let mut second = claims(&fake, "g-100", &email, true);
    second["aud"] = json!([ANDROID_CLIENT, "someone-else"]);
    let response = grant(
        &app,
        json!({"provider": "google", "id_token": sign_id_token(&second, FIRST_KID)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["user"]["id"], user["id"]);

    // The deprecated shape: issuer and client id instead of the provider's name.
    let response = grant(
        &app,
        json!({"issuer": fake.url, "client_id": CLIENT_ID, "id_token": sign_id_token(&second, FIRST_KID)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(user_count(&app).await, 1);
}

#[tokio::test]
async fn forged_foreign_and_stale_tokens_are_refused() {
    let fake = FakeProvider::google().await;
    let other_issuer = FakeProvider::google().await;
    let app = spawn(&fake, &[]).await;
    let good = claims(&fake, "g-200", &random_email(), true);
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        sign_id_token(&claims, FIRST_KID)
    };
    let now = chrono::Utc::now().timestamp();
    let signed = sign_id_token(&good, FIRST_KID);
    let (header, signature) = (signed.split('.').next().unwrap(), signed.split('.').nth(2).unwrap());
    // The payload changed after signing: another subject, the same signature.
    let mut changed = good.clone();
    changed["sub"] = json!("victim");
    let tampered = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(changed.to_string()));
    // Signed with the client secret (a key the attacker might know) instead of the issuer's key.
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
    )
    .unwrap();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let mut missing_sub = good.clone();
    missing_sub.as_object_mut().unwrap().remove("sub");
    let cases = [
        (
            "another audience",
            with("aud", json!("someone-else")),
            "Unacceptable audience in id_token: [someone-else]",
        ),
        ("another issuer", with("iss", json!(other_issuer.url)), "Bad ID token"),
        ("expired", with("exp", json!(now - 3600)), "Bad ID token"),
        ("unknown key", sign_id_token(&good, "not-published"), "Bad ID token"),
        ("tampered payload", tampered, "Bad ID token"),
        ("HS256 with the client secret", hs256, "Bad ID token"),
        ("alg none", unsigned, "Bad ID token"),
        (
            "no subject",
            sign_id_token(&missing_sub, FIRST_KID),
            "Missing sub claim in id_token",
        ),
        ("not a JWT", "not.a.jwt".to_owned(), "Bad ID token"),
    ];
    for (case, token, description) in cases {
        eprintln!("case: {case}");
        assert_refused(
            grant(&app, json!({"provider": "google", "id_token": token})).await,
            "invalid request",
            description,
        )
        .await;
    }
    // The other issuer's own token, named by its issuer: not a provider Latchkey has.
    let foreign = claims(&other_issuer, "g-200", &random_email(), true);
    let response = grant(
        &app,
        json!({"issuer": other_issuer.url, "client_id": CLIENT_ID, "id_token": sign_id_token(&foreign, FIRST_KID)}),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(user_count(&app).await, 0, "no refused token made an account");
}

#[tokio::test]
async fn the_nonce_is_the_sha256_of_what_the_client_sends() {
    let fake = FakeProvider::google().await;
    let app = spawn(&fake, &[]).await;
    let mut with_nonce = claims(&fake, "g-300", &random_email(), true);
    with_nonce["nonce"] = json!(sha256_hex("the-raw-nonce"));
    let token = sign_id_token(&with_nonce, FIRST_KID);
    let without_nonce = sign_id_token(&claims(&fake, "g-300", &random_email(), true), FIRST_KID);
    let send = |token: &str, nonce: Option<&str>| json!({"provider": "google", "id_token": token, "nonce": nonce});

    // Another nonce, or the hash itself (what the token carries, as if read from it).
    for nonce in ["another-nonce", sha256_hex("the-raw-nonce").as_str()] {
        assert_refused(
            grant(&app, send(&token, Some(nonce))).await,
            "invalid nonce",
            "Nonces mismatch",
        )
        .await;
    }
    let presence = "Passed nonce and nonce in id_token should either both exist or not.";
    assert_refused(grant(&app, send(&token, None)).await, "invalid request", presence).await;
    assert_refused(
        grant(&app, send(&without_nonce, Some("the-raw-nonce"))).await,
        "invalid request",
        presence,
    )
    .await;
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(grant(&app, send(&token, Some("the-raw-nonce"))).await.status(), 200);
}

#[tokio::test]
async fn the_nonce_check_can_be_skipped_per_provider() {
    let fake = FakeProvider::google().await;
    let app = spawn(&fake, &[("GOTRUE_EXTERNAL_GOOGLE_SKIP_NONCE_CHECK", "true")]).await;
    let mut with_nonce = claims(&fake, "g-310", &random_email(), true);
    with_nonce["nonce"] = json!("set-by-an-sdk-the-app-cannot-see");
    let token = sign_id_token(&with_nonce, FIRST_KID);
    assert_eq!(
        grant(&app, json!({"provider": "google", "id_token": token}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_access_token_sent_along_must_match_at_hash() {
    let fake = FakeProvider::google().await;
    let app = spawn(&fake, &[]).await;
    let mut with_hash = claims(&fake, "g-400", &random_email(), true);
    let digest = Sha256::digest(b"the-access-token");
    with_hash["at_hash"] = json!(URL_SAFE_NO_PAD.encode(&digest[..16]));
    let token = sign_id_token(&with_hash, FIRST_KID);
    let send = |access_token: &str| json!({"provider": "google", "id_token": token, "access_token": access_token});
    assert_refused(
        grant(&app, send("another-access-token")).await,
        "invalid request",
        "Bad ID token",
    )
    .await;
    assert_eq!(grant(&app, send("the-access-token")).await.status(), 200);
}

#[tokio::test]
async fn an_unverified_email_never_joins_the_account_holding_it() {
    let fake = FakeProvider::google().await;
    let app = spawn(&fake, &[]).await;
    let email = random_email();
    let victim = app.sign_up(&email, "victim-password-1").await;
    let victim_id = victim["user"]["id"].clone();

    let unverified = sign_id_token(&claims(&fake, "attacker", &email, false), FIRST_KID);
    let response = grant(&app, json!({"provider": "google", "id_token": unverified})).await;
    // GoTrue's answer: a separate account without the address.
    assert_eq!(response.status(), 200);
    let attacker: Value = response.json().await.unwrap();
    assert_ne!(attacker["user"]["id"], victim_id);
    assert_ne!(attacker["user"]["email"], email.as_str());
    let victim_now = app.signed_in(&email, "victim-password-1").await;
    let providers: Vec<&str> = victim_now["user"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["email"], "the victim's account gained no identity");

    // The same address, verified by the issuer: the identity joins the account.
    let verified = sign_id_token(&claims(&fake, "owner", &email, true), FIRST_KID);
    let response = grant(&app, json!({"provider": "google", "id_token": verified})).await;
    assert_eq!(response.status(), 200);
    let owner: Value = response.json().await.unwrap();
    assert_eq!(owner["user"]["id"], victim_id);
}

#[tokio::test]
async fn only_enabled_oidc_providers_take_id_tokens() {
    let fake = FakeProvider::google().await;
    let github = FakeProvider::github().await;
    let mut vars: Vec<(String, String)> = github.vars();
    vars.extend([
        ("GOTRUE_EXTERNAL_GOOGLE_ENABLED".to_owned(), "false".to_owned()),
        ("GOTRUE_EXTERNAL_GOOGLE_URL".to_owned(), fake.url.clone()),
    ]);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_on(&fresh_database().await, &pairs).await;
    let token = sign_id_token(&claims(&fake, "g-500", &random_email(), true), FIRST_KID);
    let send = |provider: &str| json!({"provider": provider, "id_token": token});

    let response = grant(&app, send("google")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "provider_disabled", "{body}");
    for provider in ["github", "myspace"] {
        let response = grant(&app, send(provider)).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["msg"],
            format!("Custom OIDC provider \"{provider}\" not allowed"),
            "{body}"
        );
    }
    assert_refused(
        grant(&app, json!({"provider": "google"})).await,
        "invalid request",
        "id_token required",
    )
    .await;
    assert_eq!(user_count(&app).await, 0);
}

#[tokio::test]
async fn link_identity_links_to_the_signed_in_user_only_with_manual_linking() {
    let fake = FakeProvider::google().await;
    let token = |sub: &str| sign_id_token(&claims(&fake, sub, &random_email(), true), FIRST_KID);
    let link = |token: String| json!({"provider": "google", "id_token": token, "link_identity": true});

    let app = spawn(&fake, &[]).await;
    let session = app.sign_up(&random_email(), "a-password-123").await;
    let access = session["access_token"].as_str().unwrap();
    let response = app
        .post_json_auth("/auth/v1/token?grant_type=id_token", access, &link(token("g-600")))
        .await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "manual_linking_disabled", "{body}");

    let app = spawn(&fake, &[("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true")]).await;
    // Without the user's token (supabase-js's anon key is not a user): refused.
    let anon = app.api_key("anon");
    let response = app
        .post_json_auth("/auth/v1/token?grant_type=id_token", &anon, &link(token("g-601")))
        .await;
    assert!(response.status().is_client_error(), "{}", response.status());
    // Without an Authorization header at all: GoTrue's OAuth-style refusal.
    let response = app
        .post_json("/auth/v1/token?grant_type=id_token", &link(token("g-601")))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error_description"], "Linking requires a valid user access token in Authorization",
        "{body}"
    );
    let session = app.sign_up(&random_email(), "a-password-123").await;
    let access = session["access_token"].as_str().unwrap();
    let response = app
        .post_json_auth("/auth/v1/token?grant_type=id_token", access, &link(token("g-602")))
        .await;
    assert_eq!(response.status(), 200);
    let linked: Value = response.json().await.unwrap();
    assert_eq!(linked["user"]["id"], session["user"]["id"]);
    let providers: Vec<&str> = linked["user"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers.len(), 2, "{providers:?}");
    assert!(providers.contains(&"google"));
}
