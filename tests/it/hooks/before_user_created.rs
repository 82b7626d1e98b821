//! The before-user-created hook: an allow-list of email domains refuses sign-ups from other
//! domains on every path that creates users, and nothing is written for a refused one.

use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{Receiver, WEBHOOK_SECRET};
use crate::helpers::TestApp;

const PASSWORD: &str = "correct horse battery staple";

/// Only example.com addresses (anonymous users have none, so they are refused too).
const ALLOW_LIST: &str = r#"
create function public.allow_example_com(event jsonb) returns jsonb language sql as $$
  select case when split_part(event->'user'->>'email', '@', 2) = 'example.com' then '{}'::jsonb
    else jsonb_build_object('error', jsonb_build_object('http_code', 403,
      'message', 'Sign-ups are limited to example.com')) end
$$;
"#;

async fn counts(app: &TestApp) -> (i64, i64) {
    sqlx::query_as("select (select count(*) from auth._auth_users), (select count(*) from auth._auth_identities)")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

async fn refused(response: reqwest::Response, message: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!((status.as_u16(), body["msg"].as_str()), (403, Some(message)), "{body}");
}

#[tokio::test]
async fn a_postgres_allow_list_refuses_other_domains_on_every_path_and_writes_nothing() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_BEFORE_USER_CREATED_ENABLED", "true"),
        (
            "GOTRUE_HOOK_BEFORE_USER_CREATED_URI",
            "pg-functions://postgres/public/allow_example_com",
        ),
    ])
    .await;
    sqlx::raw_sql(ALLOW_LIST).execute(&mut app.db().await).await.unwrap();
    app.sign_up("ada@example.com", PASSWORD).await;
    assert_eq!(counts(&app).await, (1, 1));

    let message = "Sign-ups are limited to example.com";
    let signup = json!({ "email": "eve@elsewhere.org", "password": PASSWORD });
    refused(app.post_json("/auth/v1/signup", &signup).await, message).await;
    // Look-alikes of the allowed domain.
    for email in ["eve@example.com.evil.org", "eve@notexample.com"] {
        let body = json!({ "email": email, "password": PASSWORD });
        refused(app.post_json("/auth/v1/signup", &body).await, message).await;
    }
    refused(app.post_json("/auth/v1/signup", &json!({})).await, message).await; // anonymous
    refused(
        app.post_json("/auth/v1/otp", &json!({ "email": "eve@elsewhere.org" }))
            .await,
        message,
    )
    .await;
    let admin = app
        .request(reqwest::Method::POST, "/auth/v1/admin/users")
        .bearer_auth(app.api_key("service_role"))
        .json(&json!({ "email": "eve@elsewhere.org", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    refused(admin, message).await;
    assert_eq!(counts(&app).await, (1, 1), "nothing written for a refused user");
}

#[tokio::test]
async fn an_http_hook_sees_the_user_before_it_exists() {
    let receiver = Receiver::start(|input: &Value| {
        let email = input["user"]["email"].as_str().unwrap_or_default();
        let answer = match email.ends_with("@example.com") {
            true => json!({ "decision": "continue" }),
            false => json!({ "decision": "reject", "message": "Invitation only" }),
        };
        axum::Json(answer).into_response()
    })
    .await;
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_BEFORE_USER_CREATED_ENABLED", "true"),
        ("GOTRUE_HOOK_BEFORE_USER_CREATED_URI", &receiver.url),
        ("GOTRUE_HOOK_BEFORE_USER_CREATED_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    let session = app.sign_up("grace@example.com", PASSWORD).await;
    let body = json!({ "email": "mallory@elsewhere.org", "password": PASSWORD, "data": {"plan": "pro"} });
    refused(app.post_json("/auth/v1/signup", &body).await, "Invitation only").await;
    assert_eq!(counts(&app).await, (1, 1));

    let inputs = receiver.inputs.lock().unwrap().clone();
    assert_eq!(inputs.len(), 2);
    assert_eq!(
        inputs[0]["user"]["id"], session["user"]["id"],
        "the id the user then gets"
    );
    assert_eq!(inputs[0]["metadata"]["name"], "before-user-created");
    let refused_user = &inputs[1]["user"];
    assert_eq!(refused_user["email"], "mallory@elsewhere.org");
    assert_eq!(refused_user["user_metadata"]["plan"], "pro");
    assert_eq!(refused_user["app_metadata"]["provider"], "email");
    assert_eq!(refused_user["identities"], json!([]));
}
