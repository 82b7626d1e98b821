//! The send-SMS hook at the level of the function the outbox calls
//! (`auth::sms_hook::send_sms`): GoTrue's input reaches a `pg-functions://` hook and a signed
//! HTTP hook, and a hook's refusal becomes the caller's error.

use std::collections::HashMap;

use axum::Json;
use axum::response::IntoResponse;
use latchkey::auth::sms_hook::{SmsForHook, send_sms};
use latchkey::config::Config;
use latchkey::db::users::{self, NewUser, UserRow};
use latchkey::error::Kind;
use latchkey::hooks::Hook;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::hooks::{Receiver, WEBHOOK_SECRET};

const RECORDER: &str = r#"
create table public.sms_hook_calls (input jsonb not null);
create function public.send_sms(event jsonb) returns jsonb language plpgsql as $$
begin
  if event->'sms'->>'phone' = '15555550000' then
    return jsonb_build_object('error', jsonb_build_object('http_code', 400, 'message', 'No texts to that number'));
  end if;
  insert into public.sms_hook_calls values (event);
  return '{}'::jsonb;
end $$;
"#;

/// The hook `uri` configured as the server would read it.
fn hook(uri: &str) -> Hook {
    let vars: HashMap<String, String> = [
        ("GOTRUE_HOOK_SEND_SMS_ENABLED", "true"),
        ("GOTRUE_HOOK_SEND_SMS_URI", uri),
        ("GOTRUE_HOOK_SEND_SMS_SECRETS", WEBHOOK_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Hook::new(Config::from_vars(vars).unwrap().hooks.send_sms.as_ref().unwrap()).unwrap()
}

async fn phone_user(conn: &mut PgConnection, phone: &str) -> UserRow {
    let metadata = json!({"locale": "fr"});
    let app_metadata = json!({"provider": "phone", "providers": ["phone"]});
    let user = NewUser {
        id: Uuid::new_v4(),
        aud: "authenticated",
        role: "authenticated",
        email: None,
        phone: Some(phone),
        encrypted_password: None,
        email_confirmed: false,
        phone_confirmed: false,
        confirmation_sent: true,
        app_metadata: &app_metadata,
        user_metadata: &metadata,
        is_anonymous: false,
    };
    users::insert(&mut *conn, &user).await.unwrap()
}

#[tokio::test]
async fn a_postgres_send_sms_hook_gets_gotrues_input_in_the_transaction() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_SEND_SMS_ENABLED", "true"),
        ("GOTRUE_HOOK_SEND_SMS_URI", "pg-functions://postgres/public/send_sms"),
    ])
    .await;
    let mut conn = app.db().await;
    sqlx::raw_sql(RECORDER).execute(&mut conn).await.unwrap();
    let hook = hook("pg-functions://postgres/public/send_sms");
    let user = phone_user(&mut conn, "15555550123").await;

    let sms = SmsForHook {
        otp: "123456",
        phone: "15555550123",
        mfa: false,
    };
    send_sms(&mut conn, &hook, &user, sms).await.unwrap();
    send_sms(&mut conn, &hook, &user, SmsForHook { mfa: true, ..sms })
        .await
        .unwrap();
    let inputs: Vec<(Value,)> = sqlx::query_as("select input from public.sms_hook_calls")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let [(sign_in,), (mfa,)] = &inputs[..] else {
        panic!("{inputs:?}")
    };
    assert_eq!(sign_in["sms"], json!({"otp": "123456", "phone": "15555550123"}));
    assert_eq!(sign_in["metadata"]["name"], "send-sms");
    assert_eq!(sign_in["user"]["id"], json!(user.id));
    assert_eq!(sign_in["user"]["phone"], "15555550123");
    assert_eq!(sign_in["user"]["user_metadata"]["locale"], "fr");
    assert_eq!(mfa["sms"]["sms_type"], "mfa");

    // A hook's own refusal is the caller's error, and nothing is recorded.
    let refused = send_sms(
        &mut conn,
        &hook,
        &user,
        SmsForHook {
            phone: "15555550000",
            ..sms
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        (refused.kind(), refused.message()),
        (Kind::BadRequest, "No texts to that number")
    );
}

#[tokio::test]
async fn an_http_send_sms_hook_gets_a_signed_call() {
    let app = TestApp::spawn().await;
    let mut conn = app.db().await;
    let receiver = Receiver::start(|input: &Value| {
        if input["sms"]["phone"] == "15555550000" {
            return Json(json!({"error": {"http_code": 422, "message": "Number blocked"}})).into_response();
        }
        Json(json!({})).into_response()
    })
    .await;
    let hook = hook(&receiver.url);
    let user = phone_user(&mut conn, "15555550123").await;
    let sms = SmsForHook {
        otp: "987654",
        phone: "15555550123",
        mfa: false,
    };
    send_sms(&mut conn, &hook, &user, sms).await.unwrap();
    let input = receiver.inputs.lock().unwrap()[0].clone();
    assert_eq!(input["sms"], json!({"otp": "987654", "phone": "15555550123"}));
    assert_eq!(input["user"]["id"], json!(user.id));

    let refused = send_sms(
        &mut conn,
        &hook,
        &user,
        SmsForHook {
            phone: "15555550000",
            ..sms
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        (refused.kind(), refused.message()),
        (Kind::Unprocessable, "Number blocked"),
        "{refused:?}"
    );
}
