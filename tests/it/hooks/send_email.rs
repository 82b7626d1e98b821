//! The send-email hook: every mail of the email flows goes to the hook, in GoTrue's
//! `{user, email_data}` shape, and SMTP gets nothing; the codes it carries verify; a hook that
//! refuses leaves nothing written; the server's mail budget still applies.

use axum::response::IntoResponse;
use serde_json::{Value, json};
use sha2::{Digest, Sha224};

use super::{Receiver, WEBHOOK_SECRET, ok_json};
use crate::email::mail_app;
use crate::helpers::{TestApp, assert_error, random_email};

const PASSWORD: &str = "correct horse battery staple";

/// Keeps every input in `public.sent_emails`; refuses addresses at blocked.example.
const RECORDING_HOOK: &str = r#"
create table public.sent_emails (id bigserial primary key, input jsonb not null);
create function public.send_email(event jsonb) returns jsonb language plpgsql as $$
begin
  if event->'user'->>'email' like '%@blocked.example' then
    return jsonb_build_object('error', jsonb_build_object('http_code', 400, 'message', 'Mail to this domain is not allowed'));
  end if;
  insert into public.sent_emails (input) values (event);
  return '{}'::jsonb;
end $$;
"#;

const POSTGRES_HOOK: &[(&str, &str)] = &[
    ("GOTRUE_HOOK_SEND_EMAIL_ENABLED", "true"),
    (
        "GOTRUE_HOOK_SEND_EMAIL_URI",
        "pg-functions://postgres/public/send_email",
    ),
];

/// GoTrue's token hash: hex SHA-224 of the address followed by the code.
fn token_hash(address: &str, code: &str) -> String {
    hex::encode(Sha224::digest(format!("{address}{code}")))
}

async fn sent(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar("select input from public.sent_emails order by id")
        .fetch_all(&mut app.db().await)
        .await
        .unwrap()
}

async fn last_sent(app: &TestApp) -> Value {
    sent(app).await.pop().expect("the hook was called")
}

/// The fields every input carries, whatever the mail.
fn assert_common(input: &Value, app: &TestApp, email: &str, action: &str) {
    assert_eq!(input["metadata"]["name"], "send-email");
    assert_eq!(input["user"]["email"], email);
    assert!(input["user"].get("encrypted_password").is_none(), "{input}");
    let data = &input["email_data"];
    assert_eq!(data["email_action_type"], action, "{input}");
    assert_eq!(
        data["site_url"],
        app.address.as_str(),
        "the API's URL, as GoTrue sends it"
    );
    assert_eq!(data["redirect_to"], "http://localhost:3000", "{action}");
    let token = data["token"].as_str().unwrap();
    assert!(token.len() == 6 && token.bytes().all(|b| b.is_ascii_digit()), "{token}");
}

#[tokio::test]
async fn a_postgres_hook_gets_every_mail_and_smtp_gets_none() {
    let (app, sink) = mail_app(POSTGRES_HOOK).await;
    sqlx::raw_sql(RECORDING_HOOK)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let email = random_email();

    // Sign-up: the confirmation code, and its hash as GoTrue computes it.
    let signup = ok_json(
        app.post_json(
            "/auth/v1/signup",
            &json!({"email": email, "password": PASSWORD, "data": {"lang": "fr"}}),
        )
        .await,
    )
    .await;
    let input = last_sent(&app).await;
    assert_common(&input, &app, &email, "signup");
    assert_eq!(input["user"]["id"], signup["id"]);
    assert_eq!(input["user"]["user_metadata"]["lang"], "fr");
    assert_eq!(input["user"]["identities"][0]["provider"], "email");
    let data = &input["email_data"];
    assert_eq!(data["token_hash"], token_hash(&email, data["token"].as_str().unwrap()));
    assert_eq!((&data["token_new"], &data["token_hash_new"]), (&json!(""), &json!("")));
    let session = ok_json(
        app.post_json("/verify", &json!({"type": "signup", "token_hash": data["token_hash"]}))
            .await,
    )
    .await;
    let access = session["access_token"].as_str().unwrap().to_owned();

    // Recovery: the code verifies with the address.
    ok_json(app.post_json("/recover", &json!({"email": email})).await).await;
    let input = last_sent(&app).await;
    assert_common(&input, &app, &email, "recovery");
    let data = &input["email_data"];
    assert_eq!(data["token_hash"], token_hash(&email, data["token"].as_str().unwrap()));
    ok_json(
        app.post_json(
            "/verify",
            &json!({"type": "recovery", "email": email, "token": data["token"]}),
        )
        .await,
    )
    .await;

    // Magic link.
    ok_json(app.post_json("/otp", &json!({"email": email})).await).await;
    let input = last_sent(&app).await;
    assert_common(&input, &app, &email, "magiclink");
    let data = &input["email_data"];
    assert_eq!(data["token_hash"], token_hash(&email, data["token"].as_str().unwrap()));
    ok_json(
        app.post_json(
            "/verify",
            &json!({"type": "magiclink", "token_hash": data["token_hash"]}),
        )
        .await,
    )
    .await;

    // Secure email change: one call for both addresses, with GoTrue's swapped pairs.
    let new = random_email();
    let calls_before = sent(&app).await.len();
    ok_json(app.put_json_auth("/user", &access, &json!({"email": new})).await).await;
    let all = sent(&app).await;
    assert_eq!(all.len(), calls_before + 1, "one call for both mails");
    let input = all.last().unwrap();
    assert_common(input, &app, &email, "email_change");
    assert_eq!(input["user"]["new_email"], new.as_str());
    let data = &input["email_data"];
    let (current_code, new_code) = (data["token"].as_str().unwrap(), data["token_new"].as_str().unwrap());
    assert_ne!(current_code, new_code);
    assert_eq!(
        data["token_hash"],
        token_hash(&new, new_code),
        "hash of the new address"
    );
    assert_eq!(
        data["token_hash_new"],
        token_hash(&email, current_code),
        "hash of the current address"
    );
    ok_json(
        app.post_json(
            "/verify",
            &json!({"type": "email_change", "email": email, "token": current_code}),
        )
        .await,
    )
    .await;
    let changed = ok_json(
        app.post_json(
            "/verify",
            &json!({"type": "email_change", "email": new, "token": new_code}),
        )
        .await,
    )
    .await;
    assert_eq!(changed["user"]["email"], new.as_str());

    // Reauthentication and an invitation.
    let access = changed["access_token"].as_str().unwrap();
    ok_json(app.get_auth("/reauthenticate", access).await).await;
    assert_common(&last_sent(&app).await, &app, &new, "reauthentication");
    let invited = random_email();
    let response = app
        .request(reqwest::Method::POST, "/auth/v1/invite")
        .bearer_auth(app.api_key("service_role"))
        .json(&json!({"email": invited}))
        .send()
        .await
        .unwrap();
    ok_json(response).await;
    assert_common(&last_sent(&app).await, &app, &invited, "invite");

    assert_eq!(sent(&app).await.len(), 6);
    assert!(sink.messages().is_empty(), "SMTP got nothing while the hook is on");
}

#[tokio::test]
async fn a_refusing_hook_is_the_clients_error_and_writes_nothing() {
    let (app, sink) = mail_app(POSTGRES_HOOK).await;
    sqlx::raw_sql(RECORDING_HOOK)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let body = json!({"email": "eve@blocked.example", "password": PASSWORD});
    let error = assert_error(app.post_json("/auth/v1/signup", &body).await, 400, "unexpected_failure").await;
    assert_eq!(error["msg"], "Mail to this domain is not allowed");
    let users: i64 = sqlx::query_scalar("select count(*) from auth._auth_users")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(users, 0, "the sign-up rolled back");

    // A recovery for an existing user: refused, and no code or stamp is left behind.
    let made = json!({"email": "eve@blocked.example", "password": PASSWORD, "email_confirm": true});
    let response = app
        .request(reqwest::Method::POST, "/auth/v1/admin/users")
        .bearer_auth(app.api_key("service_role"))
        .json(&made)
        .send()
        .await
        .unwrap();
    ok_json(response).await;
    let error = assert_error(
        app.post_json("/recover", &json!({"email": "eve@blocked.example"}))
            .await,
        400,
        "unexpected_failure",
    )
    .await;
    assert_eq!(error["msg"], "Mail to this domain is not allowed");
    let (codes, stamped): (i64, bool) = sqlx::query_as(
        "select (select count(*) from auth._auth_one_time_tokens), \
                (select recovery_sent_at is not null from auth._auth_users)",
    )
    .fetch_one(&mut app.db().await)
    .await
    .unwrap();
    assert_eq!((codes, stamped), (0, false), "the recovery rolled back");
    assert!(sent(&app).await.is_empty() && sink.messages().is_empty());
}

#[tokio::test]
async fn an_http_hook_gets_signed_mail_and_its_errors_reach_the_client() {
    let receiver = Receiver::start(|input: &Value| {
        if input["user"]["email"]
            .as_str()
            .unwrap_or_default()
            .ends_with("@blocked.example")
        {
            let refusal = json!({"error": {"http_code": 429, "message": "Too many mails to that domain"}});
            return axum::Json(refusal).into_response();
        }
        axum::Json(json!({})).into_response()
    })
    .await;
    let (app, sink) = mail_app(&[
        ("GOTRUE_HOOK_SEND_EMAIL_ENABLED", "true"),
        ("GOTRUE_HOOK_SEND_EMAIL_URI", &receiver.url),
        ("GOTRUE_HOOK_SEND_EMAIL_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    let email = random_email();
    let signup = ok_json(
        app.post_json("/auth/v1/signup", &json!({"email": email, "password": PASSWORD}))
            .await,
    )
    .await;
    let input = receiver.inputs.lock().unwrap().last().cloned().unwrap();
    assert_common(&input, &app, &email, "signup");
    assert_eq!(input["user"]["id"], signup["id"]);
    let session = ok_json(
        app.post_json(
            "/verify",
            &json!({"type": "signup", "email": email, "token": input["email_data"]["token"]}),
        )
        .await,
    )
    .await;
    assert_eq!(session["user"]["email"], email.as_str());

    let body = json!({"email": "eve@blocked.example", "password": PASSWORD});
    let error = assert_error(app.post_json("/auth/v1/signup", &body).await, 429, "unexpected_failure").await;
    assert_eq!(error["msg"], "Too many mails to that domain");
    let users: i64 = sqlx::query_scalar("select count(*) from auth._auth_users")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(users, 1, "the refused sign-up rolled back");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn the_servers_mail_budget_still_applies() {
    let mut vars = POSTGRES_HOOK.to_vec();
    vars.push(("GOTRUE_RATE_LIMIT_EMAIL_SENT", "1"));
    let (app, _sink) = mail_app(&vars).await;
    sqlx::raw_sql(RECORDING_HOOK)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let first = json!({"email": random_email(), "password": PASSWORD});
    ok_json(app.post_json("/auth/v1/signup", &first).await).await;
    let second = json!({"email": random_email(), "password": PASSWORD});
    assert_error(
        app.post_json("/auth/v1/signup", &second).await,
        429,
        "over_email_send_rate_limit",
    )
    .await;
    assert_eq!(sent(&app).await.len(), 1, "the hook is not called over the budget");
}
