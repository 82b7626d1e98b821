//! Manual linking and unlinking of identities (supabase-js `linkIdentity` / `unlinkIdentity`).

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::admin::admin;
use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::jwt_payload;
use crate::helpers::{TestApp, assert_error, random_email};
use crate::oauth::{location, pairs, spawn_with, user_of};
use crate::smtp_sink::SmtpSink;

const MANUAL_LINKING: (&str, &str) = ("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true");
const PASSWORD: &str = "correct horse battery";

/// Links `who` at `fake` (named `provider`) to the user of `token`, the way supabase-js
/// `linkIdentity` does; returns where the browser ends up.
pub(crate) async fn link(app: &TestApp, fake: &FakeProvider, provider: &str, token: &str, who: FakeUser) -> String {
    fake.set_user(who);
    let response = app
        .request(
            Method::GET,
            &format!("/user/identities/authorize?provider={provider}&skip_http_redirect=true"),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let provider_url = response.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = location(&app.client.get(&provider_url).send().await.unwrap(), 302);
    location(&app.client.get(&callback).send().await.unwrap(), 302)
}

pub(crate) async fn unlink(app: &TestApp, token: &str, identity_id: &str) -> Response {
    app.request(Method::DELETE, &format!("/user/identities/{identity_id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub(crate) fn identity_id(user: &Value, provider: &str) -> String {
    user["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} identity in {user}"))["identity_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn identities_link_and_unlink_under_gotrue_rules() {
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&google], &[MANUAL_LINKING]).await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap();
    // Another address at Google: this is manual linking, not linking by email.
    let end = link(&app, &google, "google", token, FakeUser::new(&random_email(), true)).await;
    assert!(end.contains("#access_token="), "{end}");
    let user = user_of(&app, token).await;
    assert_eq!(user["email"], email.as_str());

    // The same Google account cannot be linked to a second user.
    let other = app.sign_up(&random_email(), PASSWORD).await;
    let response = app
        .request(Method::GET, "/user/identities/authorize?provider=google")
        .bearer_auth(other["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = location(&app.client.get(location(&response, 302)).send().await.unwrap(), 302);
    let end = location(&app.client.get(&callback).send().await.unwrap(), 302);
    let error = fragment(&end);
    assert_eq!(error["error_code"], "identity_already_exists", "{end}");
    assert_eq!(error["error_description"], "Identity is already linked to another user");

    assert_error(
        unlink(&app, token, &uuid::Uuid::new_v4().to_string()).await,
        422,
        "identity_not_found",
    )
    .await;
    // GoTrue: 404 validation_failed, not 400 or 422.
    let body = assert_error(unlink(&app, token, "not-a-uuid").await, 404, "validation_failed").await;
    assert_eq!(body["msg"], "identity_id must be an UUID");
    // GoTrue's audience check, before anything is looked up: the token must name the audience
    // `X-JWT-Aud` asks for, and must have one at all.
    let google_identity = identity_id(&user, "google");
    let response = app
        .request(Method::DELETE, &format!("/user/identities/{google_identity}"))
        .bearer_auth(token)
        .header("x-jwt-aud", "another-audience")
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 403, "unexpected_audience").await;
    assert_eq!(body["msg"], "Token audience doesn't match request audience");
    let mut claims = jwt_payload(token);
    claims.as_object_mut().unwrap().remove("aud");
    let without_aud = app.state.sessions.tokens().keys().sign(&claims).unwrap();
    assert_error(
        unlink(&app, &without_aud, &google_identity).await,
        403,
        "unexpected_audience",
    )
    .await;
    let response = unlink(&app, token, &identity_id(&user, "google")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    assert_error(
        unlink(&app, token, &identity_id(&user, "email")).await,
        422,
        "single_identity_not_deletable",
    )
    .await;
    assert_eq!(
        user_of(&app, token).await["app_metadata"]["providers"],
        json!(["email"])
    );

    let locked = spawn_with(&[&google], &[]).await;
    let session = locked.sign_up(&random_email(), PASSWORD).await;
    let locked_token = session["access_token"].as_str().unwrap();
    let response = unlink(&locked, locked_token, &uuid::Uuid::new_v4().to_string()).await;
    assert_error(response, 404, "manual_linking_disabled").await;
    let response = locked
        .request(Method::GET, "/user/identities/authorize?provider=google")
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "manual_linking_disabled").await;
}

/// An admin-made user with a password, signed in; returns the access token.
async fn admin_user(app: &TestApp, account: Value) -> String {
    let email = account["email"].as_str().unwrap().to_owned();
    let mut body = account;
    body["password"] = json!(PASSWORD);
    let response = admin(app, Method::POST, "/admin/users", Some(body)).await;
    assert_eq!(response.status(), 200);
    let session: Value = app.sign_in(&email, PASSWORD).await.json().await.unwrap();
    session["access_token"].as_str().unwrap().to_owned()
}

async fn one_time_tokens(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar("select count(*) from _auth_one_time_tokens where user_id = $1::uuid")
        .bind(user_id)
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn unlinking_the_identity_with_the_users_email_moves_it_to_another_identity() {
    let google = FakeProvider::google().await;
    let github = FakeProvider::github().await;
    // Without autoconfirm, an address no provider verified cannot stay confirmed.
    let app = spawn_with(
        &[&google, &github],
        &[MANUAL_LINKING, ("GOTRUE_MAILER_AUTOCONFIRM", "false")],
    )
    .await;
    let email = random_email();
    let token = admin_user(&app, json!({"email": email, "email_confirm": true})).await;
    let (unverified, verified) = (random_email(), random_email());
    link(&app, &github, "github", &token, FakeUser::new(&unverified, false)).await;
    link(&app, &google, "google", &token, FakeUser::new(&verified, true)).await;
    // A recovery link for the old address must not survive the change.
    assert_eq!(app.post_json("/recover", &json!({"email": email})).await.status(), 200);
    let user = user_of(&app, &token).await;
    let user_id = user["id"].as_str().unwrap();
    assert!(user["recovery_sent_at"].is_string(), "{user}");
    assert_eq!(one_time_tokens(&app, user_id).await, 1);

    let email_identity = identity_id(&user, "email");
    assert_eq!(unlink(&app, &token, &email_identity).await.status(), 200);
    // The verified Google address wins over the older, unverified GitHub one.
    let user = user_of(&app, &token).await;
    assert_eq!(user["email"], verified.as_str());
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    assert!(user.get("recovery_sent_at").is_none(), "{user}");
    assert_eq!(one_time_tokens(&app, user_id).await, 0);
    assert_eq!(user["app_metadata"]["provider"], "github");
    assert_eq!(user["app_metadata"]["providers"], json!(["github", "google"]));

    let entries: Value = admin(&app, Method::GET, "/admin/audit?query=action:identity_unlinked", None)
        .await
        .json()
        .await
        .unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let payload = &entries[0]["payload"];
    assert_eq!(payload["log_type"], "user");
    assert_eq!(payload["actor_id"], user_id);
    assert_eq!(payload["actor_username"], email.as_str());
    assert_eq!(
        payload["traits"],
        json!({"identity_id": email_identity, "provider": "email", "provider_id": user_id})
    );

    // Only the unverified address is left: it becomes the email, unconfirmed.
    assert_eq!(unlink(&app, &token, &identity_id(&user, "google")).await.status(), 200);
    let user = user_of(&app, &token).await;
    assert_eq!(user["email"], unverified.as_str());
    assert!(user.get("email_confirmed_at").is_none(), "{user}");
    assert_eq!(user["user_metadata"]["email_verified"], false);
    assert_eq!(user["app_metadata"]["providers"], json!(["github"]));
}

#[tokio::test]
async fn an_identity_whose_loss_would_leave_a_taken_email_stays() {
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&google], &[MANUAL_LINKING]).await;
    let taken = random_email();
    app.sign_up(&taken, PASSWORD).await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let token = session["access_token"].as_str().unwrap();
    link(&app, &google, "google", token, FakeUser::new(&taken, true)).await;
    let user = user_of(&app, token).await;

    let body = assert_error(
        unlink(&app, token, &identity_id(&user, "email")).await,
        422,
        "email_conflict_identity_not_deletable",
    )
    .await;
    assert_eq!(body["msg"], "Unable to unlink identity due to email conflict");
    let after = user_of(&app, token).await;
    assert_eq!(after["email"], email.as_str());
    assert_eq!(after["identities"].as_array().unwrap().len(), 2);
    let logged: i64 =
        sqlx::query_scalar("select count(*) from _auth_audit_log where payload->>'action' = 'identity_unlinked'")
            .fetch_one(&mut app.db().await)
            .await
            .unwrap();
    assert_eq!(logged, 0, "the audit entry is rolled back with the rest");

    // The email identity keeps the address, so Google's may go.
    assert_eq!(unlink(&app, token, &identity_id(&user, "google")).await.status(), 200);
    assert_eq!(user_of(&app, token).await["email"], email.as_str());
}

#[tokio::test]
async fn unlinking_the_phone_or_the_only_email_identity_clears_that_contact() {
    let app = TestApp::spawn_with(&[MANUAL_LINKING]).await;
    let account =
        |phone: &str| json!({"email": random_email(), "phone": phone, "email_confirm": true, "phone_confirm": true});
    let token = admin_user(&app, account("+1 555 0100 123")).await;
    let user = user_of(&app, &token).await;
    assert_eq!(unlink(&app, &token, &identity_id(&user, "phone")).await.status(), 200);
    let after = user_of(&app, &token).await;
    assert_eq!(after["phone"], "");
    assert!(after.get("phone_confirmed_at").is_none(), "{after}");
    assert_eq!(after["email"], user["email"]);
    assert_eq!(after["app_metadata"]["providers"], json!(["email"]));

    // The phone identity has no email: the user is left without one.
    let token = admin_user(&app, account("+1 555 0100 124")).await;
    let user = user_of(&app, &token).await;
    assert_eq!(unlink(&app, &token, &identity_id(&user, "email")).await.status(), 200);
    let after = user_of(&app, &token).await;
    assert_eq!(after["email"], "");
    assert!(after.get("email_confirmed_at").is_none(), "{after}");
    assert_eq!(after["user_metadata"]["email_verified"], false);
    assert_eq!(after["phone"], "15550100124");
    assert_eq!(after["app_metadata"]["provider"], "phone");
    assert_eq!(after["app_metadata"]["providers"], json!(["phone"]));
}

fn fragment(end: &str) -> std::collections::HashMap<String, String> {
    pairs(url::Url::parse(end).unwrap().fragment())
}

/// An anonymous user's access token.
async fn anonymous(app: &TestApp) -> String {
    let response = app.post_json("/signup", &json!({})).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `identity_linked` audit entries, newest first.
async fn linked_entries(app: &TestApp) -> Vec<Value> {
    let response = admin(app, Method::GET, "/admin/audit?query=action:identity_linked", None).await;
    response.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

#[tokio::test]
async fn an_anonymous_user_who_links_a_verified_email_takes_it_and_is_no_longer_anonymous() {
    let github = FakeProvider::github().await;
    let app = spawn_with(&[&github], &[MANUAL_LINKING]).await;
    let token = anonymous(&app).await;
    let email = random_email();
    let account = FakeUser::new(&email, true);
    let end = link(&app, &github, "github", &token, account.clone()).await;
    let session = fragment(&end);
    assert_eq!(jwt_payload(&session["access_token"])["is_anonymous"], false, "{end}");

    let user = user_of(&app, &token).await;
    assert_eq!(user["email"], email.as_str());
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    assert_eq!(user["user_metadata"]["email_verified"], true);
    assert_eq!(user["is_anonymous"], false);
    assert_eq!(user["app_metadata"]["provider"], "github");
    assert_eq!(user["app_metadata"]["providers"], json!(["github"]));

    let entries = linked_entries(&app).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let payload = &entries[0]["payload"];
    assert_eq!(payload["log_type"], "user");
    assert_eq!(payload["actor_id"], user["id"]);
    // The entry is written as the identity joins, before the user has an email.
    assert_eq!(payload["actor_username"], "");
    assert_eq!(
        payload["traits"],
        json!({"identity_id": identity_id(&user, "github"), "provider": "github", "provider_id": account.id})
    );

    // The same GitHub account again, for the same user.
    let error = fragment(&link(&app, &github, "github", &token, account).await);
    assert_eq!(error["error_code"], "identity_already_exists");
    assert_eq!(error["error_description"], "Identity is already linked");
    assert_eq!(linked_entries(&app).await.len(), 1);
}

#[tokio::test]
async fn an_unverified_email_is_mailed_a_confirmation_and_the_identity_stays_linked() {
    let github = FakeProvider::github().await;
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let app = spawn_with(
        &[&github],
        &[
            MANUAL_LINKING,
            ("GOTRUE_SMTP_HOST", "127.0.0.1"),
            ("GOTRUE_SMTP_PORT", &port),
            ("GOTRUE_SMTP_ADMIN_EMAIL", "auth@latchkey.test"),
            ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ],
    )
    .await;
    let token = anonymous(&app).await;
    let email = random_email();
    let end = link(&app, &github, "github", &token, FakeUser::new(&email, false)).await;
    // As GoTrue's callback has it: in the query and the fragment, a 422 named server_error.
    let end = url::Url::parse(&end).unwrap();
    let query = pairs(end.query());
    let error = pairs(end.fragment());
    assert_eq!(error["error"], "server_error", "{end}");
    assert_eq!(error["error_code"], "email_not_confirmed");
    assert_eq!(
        error["error_description"],
        "Unverified email with github. A confirmation email has been sent to your github email"
    );
    assert!(error.contains_key("sb"));
    assert_eq!(query["error"], error["error"]);
    assert_eq!(query["error_code"], error["error_code"]);
    assert_eq!(query["error_description"], error["error_description"]);
    assert!(!error.contains_key("access_token"));

    // Refused, yet committed: the identity, the unconfirmed email and the audit entry stay.
    let user = user_of(&app, &token).await;
    identity_id(&user, "github");
    assert_eq!(user["email"], email.as_str());
    assert!(user.get("email_confirmed_at").is_none(), "{user}");
    assert_eq!(user["is_anonymous"], true);
    assert_eq!(user["app_metadata"]["providers"], json!(["github"]));
    assert_eq!(linked_entries(&app).await.len(), 1);

    // The mailed link confirms the address.
    let link = sink.last_to(&email).await.link();
    assert_eq!(app.client.get(link).send().await.unwrap().status(), 303);
    assert!(user_of(&app, &token).await["email_confirmed_at"].is_string());
}

#[tokio::test]
async fn an_email_another_account_holds_is_not_taken_and_nothing_is_linked() {
    let github = FakeProvider::github().await;
    let app = spawn_with(&[&github], &[MANUAL_LINKING]).await;
    let taken = random_email();
    app.sign_up(&taken, PASSWORD).await;
    let token = anonymous(&app).await;
    let error = fragment(&link(&app, &github, "github", &token, FakeUser::new(&taken, true)).await);
    assert_eq!(error["error_code"], "email_exists");
    assert_eq!(
        error["error_description"],
        "A user with this email address has already been registered"
    );
    let user = user_of(&app, &token).await;
    assert_eq!(user["email"], "");
    assert_eq!(user["identities"], json!([]));
    assert!(linked_entries(&app).await.is_empty());
}
