//! The after-user-created hook: told about each new user once it is committed (sign-up,
//! anonymous, OTP, invite, generated sign-up link, ID token, OAuth), not about existing users or
//! admin-made ones (GoTrue does not call it there); a failing hook is the client's error and
//! the user stays, as in GoTrue.

use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{Receiver, WEBHOOK_SECRET, ok_json};
use crate::fake_providers::{CLIENT_ID, FIRST_KID, FakeProvider, FakeUser, sign_id_token};
use crate::helpers::{TestApp, assert_error, random_email};

const PASSWORD: &str = "correct horse battery staple";

/// Keeps each input; refuses addresses at refused.example.
const RECORDING_HOOK: &str = r#"
create table public.new_users (id bigserial primary key, input jsonb not null);
create function public.after_user_created(event jsonb) returns jsonb language plpgsql as $$
begin
  if event->'user'->>'email' like '%@refused.example' then
    return jsonb_build_object('error', jsonb_build_object('http_code', 403, 'message', 'No profile for this user'));
  end if;
  insert into public.new_users (input) values (event);
  return '{}'::jsonb;
end $$;
"#;

async fn recorded(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar("select input from public.new_users order by id")
        .fetch_all(&mut app.db().await)
        .await
        .unwrap()
}

async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from auth._auth_users")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

fn admin(app: &TestApp, path: &str, body: Value) -> reqwest::RequestBuilder {
    app.request(reqwest::Method::POST, path)
        .bearer_auth(app.api_key("service_role"))
        .json(&body)
}

#[tokio::test]
async fn a_postgres_hook_hears_of_each_new_user_after_the_commit() {
    let (fake, github) = (FakeProvider::google().await, FakeProvider::github().await);
    let hook = [
        ("GOTRUE_HOOK_AFTER_USER_CREATED_ENABLED", "true"),
        (
            "GOTRUE_HOOK_AFTER_USER_CREATED_URI",
            "pg-functions://postgres/public/after_user_created",
        ),
        ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
    ];
    let app = crate::oauth::spawn_with(&[&fake, &github], &hook).await;
    sqlx::raw_sql(RECORDING_HOOK)
        .execute(&mut app.db().await)
        .await
        .unwrap();

    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let anonymous = ok_json(app.post_json("/auth/v1/signup", &json!({})).await).await;
    let otp_email = random_email();
    ok_json(app.post_json("/auth/v1/otp", &json!({"email": otp_email})).await).await;
    let invited = random_email();
    ok_json(
        admin(&app, "/auth/v1/invite", json!({"email": invited}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let linked = random_email();
    let link = json!({"type": "signup", "email": linked, "password": PASSWORD});
    ok_json(admin(&app, "/auth/v1/admin/generate_link", link).send().await.unwrap()).await;
    let now = chrono::Utc::now().timestamp();
    let google = random_email();
    let claims = json!({"iss": fake.url, "aud": CLIENT_ID, "sub": "g-after", "email": google,
        "email_verified": true, "iat": now, "exp": now + 600});
    let grant = json!({"provider": "google", "id_token": sign_id_token(&claims, FIRST_KID)});
    ok_json(app.post_json("/auth/v1/token?grant_type=id_token", &grant).await).await;
    let github_email = random_email();
    github.set_user(FakeUser::new(&github_email, true));
    let end = crate::oauth::sign_in(&app, "provider=github").await;
    assert!(end.fragment().unwrap_or_default().contains("access_token="), "{end}");

    // Existing users and admin-made ones: no call.
    app.signed_in(&email, PASSWORD).await;
    ok_json(app.post_json("/auth/v1/otp", &json!({"email": otp_email})).await).await;
    ok_json(app.post_json("/auth/v1/token?grant_type=id_token", &grant).await).await;
    crate::oauth::sign_in(&app, "provider=github").await;
    let made = json!({"email": random_email(), "password": PASSWORD});
    ok_json(admin(&app, "/auth/v1/admin/users", made).send().await.unwrap()).await;

    let calls = recorded(&app).await;
    let emails: Vec<&str> = calls
        .iter()
        .map(|input| input["user"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            email.as_str(),
            "",
            &otp_email,
            &invited,
            &linked,
            &google,
            &github_email
        ]
    );
    let first = &calls[0];
    assert_eq!(first["metadata"]["name"], "after-user-created");
    assert_eq!(first["user"]["id"], session["user"]["id"]);
    assert_eq!(first["user"]["identities"][0]["provider"], "email");
    assert!(first["user"].get("encrypted_password").is_none());
    assert_eq!(calls[1]["user"]["id"], anonymous["user"]["id"]);
    assert_eq!(calls[1]["user"]["is_anonymous"], true);
    assert_eq!(calls[5]["user"]["identities"][0]["provider"], "google");
    assert_eq!(calls[6]["user"]["identities"][0]["provider"], "github");
}

#[tokio::test]
async fn a_failing_hook_is_the_clients_error_and_the_user_stays() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_AFTER_USER_CREATED_ENABLED", "true"),
        (
            "GOTRUE_HOOK_AFTER_USER_CREATED_URI",
            "pg-functions://postgres/public/after_user_created",
        ),
    ])
    .await;
    sqlx::raw_sql(RECORDING_HOOK)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    // Sign-up answers GoTrue's 500 whatever the hook said.
    let body = json!({"email": "eve@refused.example", "password": PASSWORD});
    let error = assert_error(app.post_json("/auth/v1/signup", &body).await, 500, "unexpected_failure").await;
    assert_eq!(error["msg"], "Error invoking hook");
    assert_eq!(user_count(&app).await, 1, "the user was committed before the hook");
    // Elsewhere the hook's own status and message.
    let invite = admin(&app, "/auth/v1/invite", json!({"email": "mallory@refused.example"}));
    let error = assert_error(invite.send().await.unwrap(), 403, "unexpected_failure").await;
    assert_eq!(error["msg"], "No profile for this user");
    assert_eq!(user_count(&app).await, 2);
    assert!(recorded(&app).await.is_empty());
}

#[tokio::test]
async fn an_http_hook_gets_the_signed_new_user() {
    let receiver = Receiver::start(|_: &Value| axum::Json(json!({})).into_response()).await;
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_AFTER_USER_CREATED_ENABLED", "true"),
        ("GOTRUE_HOOK_AFTER_USER_CREATED_URI", &receiver.url),
        ("GOTRUE_HOOK_AFTER_USER_CREATED_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    app.signed_in(&email, PASSWORD).await;
    let inputs = receiver.inputs.lock().unwrap().clone();
    assert_eq!(inputs.len(), 1, "sign-up only, each call signed");
    assert_eq!(inputs[0]["metadata"]["name"], "after-user-created");
    assert_eq!(inputs[0]["user"]["id"], session["user"]["id"]);
    assert_eq!(inputs[0]["user"]["email"], email.as_str());
}
