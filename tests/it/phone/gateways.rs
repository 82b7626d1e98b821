//! Phone sign-in through the send-SMS hook (instead of the gateway) and through Twilio Verify
//! (which makes and checks the codes itself).

use serde_json::{Value, json};

use super::{phone_app, phone_app_with, random_number, verify};
use crate::helpers::{assert_error, expect_session};

const RECORDER: &str = r#"
create table public.texts (phone text not null, otp text not null, input jsonb not null);
create function public.send_sms(event jsonb) returns jsonb language plpgsql as $$
begin
  if event->'sms'->>'phone' like '1555999%' then
    return jsonb_build_object('error', jsonb_build_object('http_code', 500, 'message', 'no route to that number'));
  end if;
  insert into public.texts values (event->'sms'->>'phone', event->'sms'->>'otp', event);
  return '{}'::jsonb;
end $$;
"#;

#[tokio::test]
async fn the_send_sms_hook_gets_the_code_instead_of_the_gateway() {
    let (app, fake) = phone_app(&[
        ("GOTRUE_HOOK_SEND_SMS_ENABLED", "true"),
        ("GOTRUE_HOOK_SEND_SMS_URI", "pg-functions://postgres/public/send_sms"),
    ])
    .await;
    let mut db = app.db().await;
    sqlx::raw_sql(RECORDER).execute(&mut db).await.unwrap();
    let phone = random_number();
    let response = app
        .post_json("/auth/v1/otp", &json!({"phone": phone, "channel": "whatsapp"}))
        .await;
    assert_eq!(response.status(), 200);
    let (otp, input): (String, Value) = sqlx::query_as("select otp, input from public.texts where phone = $1")
        .bind(&phone)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(input["user"]["phone"], phone.as_str());
    assert!(input["sms"].get("sms_type").is_none());
    assert!(fake.texts().is_empty(), "the gateway is not asked");
    expect_session(verify(&app, "sms", &phone, &otp).await).await;

    // The hook's refusal is the client's answer, and the sign-up is not kept.
    let refused = random_number().replacen("1555", "1555999", 1)[..11].to_owned();
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"phone": refused, "password": "a-long-password"}),
        )
        .await;
    assert_eq!(response.status(), 500);
    let users: i64 = sqlx::query_scalar("select count(*) from _auth_users where phone = $1")
        .bind(&refused)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn twilio_verify_makes_and_checks_the_codes() {
    let (app, fake) = phone_app_with("twilio_verify", &[]).await;
    let phone = random_number();
    let body = json!({"phone": phone, "password": "a-long-password"});
    assert_eq!(app.post_json("/auth/v1/signup", &body).await.status(), 200);
    let code = fake.last_code(&phone);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_error(verify(&app, "sms", &phone, wrong).await, 403, "otp_expired").await;
    let session = expect_session(verify(&app, "sms", &phone, &code).await).await;
    assert!(session["user"]["phone_confirmed_at"].is_string());
    // Used once, whatever the gateway says.
    assert_error(verify(&app, "sms", &phone, &code).await, 403, "otp_expired").await;
    // What Latchkey stored is no code anyone was sent.
    let mut db = app.db().await;
    let stored: i64 = sqlx::query_scalar("select count(*) from _auth_one_time_tokens")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn twilio_verify_checks_a_phone_users_reauthentication_nonce() {
    let (app, fake) = phone_app_with(
        "twilio_verify",
        &[("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", "true")],
    )
    .await;
    let phone = random_number();
    let session = super::confirmed_phone_user(&app, &fake, &phone, "a-long-password").await;
    let token = session["access_token"].as_str().unwrap();
    let mut db = app.db().await;
    sqlx::query("update _auth_sessions set created_at = now() - interval '25 hours'")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(app.get_auth("/auth/v1/reauthenticate", token).await.status(), 200);
    super::change_password_with_nonce(&app, token, &fake.last_code(&phone)).await;
}
