//! The password and MFA verification attempt hooks through the real routes: a lock-out after
//! N failures built as a Postgres function, an HTTP hook told of every attempt, and the MFA
//! hook point of `auth::mfa::hook` served by a real hook.

use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{Receiver, WEBHOOK_SECRET};
use crate::helpers::{TestApp, assert_error, random_email};
use crate::mfa::{self, PASSWORD};

/// Three wrong passwords lock the account: every later attempt, right or wrong, is refused
/// and signs the user out everywhere. The count lives in the hook's own table.
const LOCKOUT: &str = r#"
create table public.password_failures (user_id uuid primary key, failures int not null);
create function public.password_attempt(event jsonb) returns jsonb language plpgsql as $$
declare
  failed int;
begin
  if not (event->>'valid')::boolean then
    insert into public.password_failures values ((event->>'user_id')::uuid, 1)
      on conflict (user_id) do update set failures = password_failures.failures + 1;
  end if;
  select failures into failed from public.password_failures where user_id = (event->>'user_id')::uuid;
  if coalesce(failed, 0) >= 3 then
    return jsonb_build_object('decision', 'reject', 'message', 'Account locked', 'should_logout_user', true);
  end if;
  return jsonb_build_object('decision', 'continue');
end $$;
"#;

#[tokio::test]
async fn a_postgres_hook_locks_an_account_after_three_failures() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_ENABLED", "true"),
        (
            "GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_URI",
            "pg-functions://postgres/public/password_attempt",
        ),
    ])
    .await;
    sqlx::raw_sql(LOCKOUT).execute(&mut app.db().await).await.unwrap();
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    app.signed_in(&email, PASSWORD).await;

    for attempt in 1..=2 {
        let body = assert_error(app.sign_in(&email, "wrong password").await, 400, "invalid_credentials").await;
        assert_eq!(body["msg"], "Invalid login credentials", "attempt {attempt}");
    }
    // The third failure reaches the limit: the hook's message, and every session ends.
    let body = assert_error(app.sign_in(&email, "wrong password").await, 400, "invalid_credentials").await;
    assert_eq!(body["msg"], "Account locked");
    assert_error(
        app.refresh(mfa::refresh_token(&session)).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    // The right password no longer helps, and no session is started.
    let body = assert_error(app.sign_in(&email, PASSWORD).await, 400, "invalid_credentials").await;
    assert_eq!(body["msg"], "Account locked");
    let sessions: i64 = sqlx::query_scalar("select count(*) from auth._auth_sessions")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    // An unknown address is never reported to the hook (there is no user to count).
    assert_error(
        app.sign_in(&random_email(), "whatever").await,
        400,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn an_http_password_hook_is_told_each_attempt_and_its_message_is_shown() {
    let receiver = Receiver::start(|input: &Value| {
        let answer = match input["valid"].as_bool() {
            Some(true) => json!({ "decision": "continue" }),
            _ => json!({ "decision": "reject", "message": "Try again in an hour" }),
        };
        axum::Json(answer).into_response()
    })
    .await;
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_ENABLED", "true"),
        ("GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_URI", &receiver.url),
        ("GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    let email = random_email();
    let user = app.sign_up(&email, PASSWORD).await;
    let body = assert_error(app.sign_in(&email, "wrong password").await, 400, "invalid_credentials").await;
    assert_eq!(body["msg"], "Try again in an hour");
    app.signed_in(&email, PASSWORD).await;
    let inputs = receiver.inputs.lock().unwrap().clone();
    let told: Vec<(Value, Value)> = inputs
        .iter()
        .map(|i| (i["user_id"].clone(), i["valid"].clone()))
        .collect();
    assert_eq!(
        told,
        [
            (user["user"]["id"].clone(), json!(false)),
            (user["user"]["id"].clone(), json!(true))
        ]
    );
    assert_eq!(inputs[0]["metadata"]["name"], "password-verification");
}

#[tokio::test]
async fn an_mfa_hook_rejects_through_post_factors_verify() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_MFA_VERIFICATION_ATTEMPT_ENABLED", "true"),
        (
            "GOTRUE_HOOK_MFA_VERIFICATION_ATTEMPT_URI",
            "pg-functions://postgres/public/mfa_attempt",
        ),
    ])
    .await;
    // Rejects after a wrong code; records what it was told.
    sqlx::raw_sql(
        "create table public.mfa_attempts (user_id uuid, factor_id uuid, factor_type text, valid boolean);
         create function public.mfa_attempt(event jsonb) returns jsonb language plpgsql as $$
         begin
           insert into public.mfa_attempts values ((event->>'user_id')::uuid, (event->>'factor_id')::uuid,
             event->>'factor_type', (event->>'valid')::boolean);
           if (select count(*) from public.mfa_attempts where not valid) >= 1 then
             return '{\"decision\": \"reject\", \"message\": \"Too many MFA attempts\"}'::jsonb;
           end if;
           return '{\"decision\": \"continue\"}'::jsonb;
         end $$;",
    )
    .execute(&mut app.db().await)
    .await
    .unwrap();
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = mfa::access(&session);
    let factor = mfa::enrolled(&app, token, "Phone").await;
    let challenge = mfa::challenge_id(&app, token, &factor.id).await;
    let response = mfa::verify(&app, token, &factor.id, &challenge, "000000").await;
    let body = assert_error(response, 403, "mfa_verification_rejected").await;
    assert_eq!(body["msg"], "Too many MFA attempts");
    // The hook's record outlived the refused request; the user was signed out.
    let recorded: (i64, String) =
        sqlx::query_as("select count(*), min(factor_type) from public.mfa_attempts where not valid")
            .fetch_one(&mut app.db().await)
            .await
            .unwrap();
    assert_eq!(recorded, (1, "totp".to_owned()));
    assert_error(
        app.refresh(mfa::refresh_token(&session)).await,
        400,
        "refresh_token_not_found",
    )
    .await;
}
