//! Phone factors (`factor_type: phone`): enrolment, a challenge texting a code through the
//! SMS provider's fake (`fake_sms`), verification to aal2, and GoTrue's refusals.

use serde_json::{Value, json};

use super::{PASSWORD, access, assurance, challenge, enroll, get_user, verify};
use crate::fake_sms::{FakeSms, Mode};
use crate::helpers::{TestApp, assert_error, expect_session, random_email};

/// The number the factors text, as typed and as stored.
const TYPED: &str = "+1 555 555 0123";
const NUMBER: &str = "15555550123";

/// A server whose phone factors send through the fake `provider`; `extra` on top.
async fn phone_app(fake: &FakeSms, provider: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(String, String)> = fake.vars(provider);
    vars.extend(
        [
            ("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true"),
            ("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "true"),
            ("GOTRUE_MFA_PHONE_MAX_FREQUENCY", "1ms"),
            ("GOTRUE_MFA_PHONE_TEMPLATE", "Your Acme code: {{ .Code }}"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_with(&borrowed).await
}

/// A signed-up user and the id of their new phone factor.
async fn enrolled_phone(app: &TestApp) -> (Value, String) {
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let response = enroll(app, access(&session), json!({ "factor_type": "phone", "phone": TYPED })).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    (session, body["id"].as_str().unwrap().to_owned())
}

async fn challenged(app: &TestApp, token: &str, factor: &str, channel: &str) -> String {
    let response = app
        .post_json_auth(
            &format!("/auth/v1/factors/{factor}/challenge"),
            token,
            &json!({ "channel": channel }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!((status.as_u16(), body["type"].as_str()), (200, Some("phone")), "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn challenge_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from _auth_mfa_challenges")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_phone_factor_is_enrolled_texted_and_verified_to_aal2() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let response = enroll(
        &app,
        access(&session),
        json!({ "factor_type": "phone", "phone": TYPED, "friendly_name": "Work phone" }),
    )
    .await;
    let enrolled: Value = response.json().await.unwrap();
    assert_eq!(enrolled["type"], "phone");
    assert_eq!(enrolled["phone"], TYPED, "GoTrue answers the number as sent");
    assert_eq!(enrolled["friendly_name"], "Work phone");
    assert!(enrolled.get("totp").is_none(), "{enrolled}");
    let factor = enrolled["id"].as_str().unwrap();

    let challenge = challenged(&app, access(&session), factor, "sms").await;
    let sent = fake.last();
    assert_eq!(
        (sent.field("To"), sent.field("Channel")),
        (format!("+{NUMBER}").as_str(), "sms")
    );
    let code = fake.code_for(NUMBER).unwrap();
    assert_eq!(sent.field("Body"), format!("Your Acme code: {code}"));
    let kept: Option<String> = sqlx::query_scalar("select otp_code from _auth_mfa_challenges")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert!(
        kept.is_some_and(|hash| hash.len() == 56 && !hash.contains(&code)),
        "kept hashed"
    );

    let aal2 = expect_session(verify(&app, access(&session), factor, &challenge, &code).await).await;
    let (aal, methods) = assurance(&aal2);
    assert_eq!(aal, "aal2");
    assert_eq!(methods.first().map(String::as_str), Some("mfa/phone"), "{methods:?}");
    let user = get_user(&app, access(&aal2)).await;
    let factors = user["factors"].as_array().unwrap();
    assert_eq!(
        (factors[0]["factor_type"].as_str(), factors[0]["status"].as_str()),
        (Some("phone"), Some("verified"))
    );
    assert_eq!(factors[0]["phone"], NUMBER);
}

#[tokio::test]
async fn wrong_replayed_and_expired_codes_are_refused() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[]).await;
    let (session, factor) = enrolled_phone(&app).await;
    let token = access(&session);

    let first = challenged(&app, token, &factor, "sms").await;
    let code = fake.code_for(NUMBER).unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_error(
        verify(&app, token, &factor, &first, wrong).await,
        422,
        "mfa_verification_failed",
    )
    .await;
    let aal2 = expect_session(verify(&app, token, &factor, &first, &code).await).await;
    // The challenge is used up: GoTrue's answer to a verified challenge.
    let replay = verify(&app, access(&aal2), &factor, &first, &code).await;
    assert_error(replay, 422, "mfa_ip_address_mismatch").await;

    let second = challenged(&app, access(&aal2), &factor, "sms").await;
    let second_code = fake.code_for(NUMBER).unwrap();
    assert_error(
        verify(&app, access(&aal2), &factor, &second, &code).await,
        422,
        "mfa_verification_failed",
    )
    .await;
    sqlx::query("update _auth_mfa_challenges set created_at = now() - interval '10 minutes' where id = $1::uuid")
        .bind(&second)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let expired = verify(&app, access(&aal2), &factor, &second, &second_code).await;
    assert_error(expired, 422, "mfa_challenge_expired").await;
}

#[tokio::test]
async fn challenges_wait_for_the_phone_max_frequency() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[("GOTRUE_MFA_PHONE_MAX_FREQUENCY", "1m")]).await;
    let (session, factor) = enrolled_phone(&app).await;
    challenged(&app, access(&session), &factor, "sms").await;
    let again = challenge(&app, access(&session), &factor).await;
    let body = assert_error(again, 429, "over_sms_send_rate_limit").await;
    assert!(body["msg"].as_str().unwrap().contains("after 6"), "{body}");
    assert_eq!(fake.received().len(), 1, "one text");
}

#[tokio::test]
async fn whatsapp_goes_through_twilio_and_a_refusal_writes_nothing() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[]).await;
    let (session, factor) = enrolled_phone(&app).await;
    let token = access(&session);
    let challenge = challenged(&app, token, &factor, "whatsapp").await;
    assert_eq!(fake.last().field("To"), format!("whatsapp:+{NUMBER}"));
    expect_session(verify(&app, token, &factor, &challenge, &fake.code_for(NUMBER).unwrap()).await).await;

    let path = format!("/auth/v1/factors/{factor}/challenge");
    let pigeon = app.post_json_auth(&path, token, &json!({ "channel": "pigeon" })).await;
    assert_error(pigeon, 400, "validation_failed").await;

    fake.set_mode(Mode::Refuse);
    let before = challenge_count(&app).await;
    let refused = app.post_json_auth(&path, token, &json!({})).await;
    let body = assert_error(refused, 422, "sms_send_failed").await;
    assert!(!body.to_string().contains(NUMBER), "{body}");
    assert_eq!(challenge_count(&app).await, before, "no challenge without a text");

    // WhatsApp only through Twilio (or the hook), as in GoTrue.
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "vonage", &[]).await;
    let (session, factor) = enrolled_phone(&app).await;
    let path = format!("/auth/v1/factors/{factor}/challenge");
    let whatsapp = app
        .post_json_auth(&path, access(&session), &json!({ "channel": "whatsapp" }))
        .await;
    assert_error(whatsapp, 400, "validation_failed").await;
    challenged(&app, access(&session), &factor, "sms").await;
    assert_eq!(
        fake.last().field("text"),
        format!("Your Acme code: {}", fake.code_for(NUMBER).unwrap())
    );
}

#[tokio::test]
async fn twilio_verify_makes_and_checks_the_code() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio_verify", &[]).await;
    let (session, factor) = enrolled_phone(&app).await;
    let token = access(&session);
    let challenge = challenged(&app, token, &factor, "sms").await;
    let kept: Option<String> = sqlx::query_scalar("select otp_code from _auth_mfa_challenges")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(kept, None, "Twilio holds the code");
    let code = fake.code_for(NUMBER).unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_error(
        verify(&app, token, &factor, &challenge, wrong).await,
        422,
        "mfa_verification_failed",
    )
    .await;
    assert_eq!(fake.last().path.rsplit('/').next(), Some("VerificationCheck"));
    expect_session(verify(&app, token, &factor, &challenge, &code).await).await;
}

#[tokio::test]
async fn enrolment_follows_gotrues_rules() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    for phone in [
        json!(null),
        json!(""),
        json!("+0123"),
        json!("12345678901234567"),
        json!("phone"),
    ] {
        let response = enroll(&app, token, json!({ "factor_type": "phone", "phone": phone })).await;
        assert_error(response, 400, "validation_failed").await;
    }
    // An unverified factor for the number is replaced; a verified one refuses a second.
    let (session, first) = enrolled_phone(&app).await;
    let token = access(&session);
    let again = enroll(&app, token, json!({ "factor_type": "phone", "phone": NUMBER })).await;
    let second: Value = again.json().await.unwrap();
    let user = get_user(&app, token).await;
    assert_eq!(user["factors"].as_array().unwrap().len(), 1, "{user}");
    assert_ne!(second["id"].as_str().unwrap(), first);
    let factor = second["id"].as_str().unwrap();
    let challenge = challenged(&app, token, factor, "sms").await;
    let aal2 = expect_session(verify(&app, token, factor, &challenge, &fake.code_for(NUMBER).unwrap()).await).await;
    let third = enroll(&app, access(&aal2), json!({ "factor_type": "phone", "phone": TYPED })).await;
    assert_error(third, 422, "mfa_verified_factor_exists").await;
}

#[tokio::test]
async fn phone_factors_can_be_switched_off() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "false")]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let response = enroll(
        &app,
        access(&session),
        json!({ "factor_type": "phone", "phone": TYPED }),
    )
    .await;
    assert_error(response, 422, "mfa_phone_enroll_not_enabled").await;

    let app = phone_app(&fake, "twilio", &[("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "false")]).await;
    let (session, factor) = enrolled_phone(&app).await;
    let response = challenge(&app, access(&session), &factor).await;
    assert_error(response, 422, "mfa_phone_verify_not_enabled").await;
    assert!(fake.received().is_empty(), "nothing texted");
}

/// With the send-SMS hook on (and no SMS provider), a challenge's code goes to the hook, in
/// the challenge's transaction, as GoTrue's `{user, sms: {otp, sms_type: "mfa", phone}}`.
#[tokio::test]
async fn the_send_sms_hook_sends_phone_factor_codes() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true"),
        ("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "true"),
        ("GOTRUE_HOOK_SEND_SMS_ENABLED", "true"),
        ("GOTRUE_HOOK_SEND_SMS_URI", "pg-functions://postgres/public/send_sms"),
    ])
    .await;
    sqlx::raw_sql(
        "create table public.texts (input jsonb not null); \
         create function public.send_sms(event jsonb) returns jsonb language sql as \
         $$ insert into public.texts values (event) returning '{}'::jsonb $$;",
    )
    .execute(&mut app.db().await)
    .await
    .unwrap();
    let (session, factor) = enrolled_phone(&app).await;
    let token = access(&session);
    // Any of GoTrue's channels: the hook decides how to send.
    let challenge = challenged(&app, token, &factor, "whatsapp").await;
    let input: Value = sqlx::query_scalar("select input from public.texts")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(input["sms"]["sms_type"], "mfa");
    assert_eq!(input["sms"]["phone"], NUMBER);
    assert_eq!(input["metadata"]["name"], "send-sms");
    let code = input["sms"]["otp"].as_str().unwrap();
    let aal2 = expect_session(verify(&app, token, &factor, &challenge, code).await).await;
    assert_eq!(assurance(&aal2).0, "aal2");
}

/// A texted code is six digits: guesses at one phone factor share the factor's verify budget
/// (`LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS`), so the right code after the budget is spent is
/// refused too.
#[tokio::test]
async fn guesses_at_a_phone_code_are_budgeted_per_factor() {
    let fake = FakeSms::start().await;
    let app = phone_app(&fake, "twilio", &[("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "3/1h")]).await;
    let (session, factor) = enrolled_phone(&app).await;
    let token = access(&session);
    let challenge = challenged(&app, token, &factor, "sms").await;
    let code = fake.code_for(NUMBER).unwrap();
    let wrong = (0u32..)
        .map(|n| format!("{n:06}"))
        .filter(|guess| *guess != code)
        .take(3);
    for guess in wrong {
        assert_error(
            verify(&app, token, &factor, &challenge, &guess).await,
            422,
            "mfa_verification_failed",
        )
        .await;
    }
    let budget_spent = verify(&app, token, &factor, &challenge, &code).await;
    assert_error(budget_spent, 429, "over_request_rate_limit").await;
}
