//! Races: a refresh waiting on the session while MFA lifts it, and one code sent twice at
//! once.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{PASSWORD, access, challenge_id, code, enrolled, refresh_token, stable_step, verify};
use crate::helpers::{TestApp, assert_error, jwt_payload, random_email};

/// Waits until some backend of the test database waits for a lock.
async fn someone_waits_for_a_lock(db: &mut PgConnection) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *db)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nobody waited for the lock");
}

/// A refresh with the aal1 token that reads the session after an MFA verification lifted it
/// (it waited for the session's row lock, and Postgres then hands it the new session row with
/// the old token row) must not come back with the aal2 session's token.
#[tokio::test]
async fn a_refresh_racing_the_verification_gets_no_aal2_token() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    let claims = jwt_payload(access(&session));
    let user_id: Uuid = claims["sub"].as_str().unwrap().parse().unwrap();
    let session_id: Uuid = claims["session_id"].as_str().unwrap().parse().unwrap();
    let factor_id: Uuid = factor.id.parse().unwrap();

    // The verification's transaction holds the session's lock while a refresh comes in...
    let mut verifier = app.db().await;
    let mut tx = verifier.begin().await.unwrap();
    sqlx::query("select 1 from _auth_sessions where id = $1 for update")
        .bind(session_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let stale = refresh_token(&session).to_owned();
    let racing = {
        let client = app.client.clone();
        let url = app.url("/auth/v1/token?grant_type=refresh_token");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&serde_json::json!({ "refresh_token": stale }))
                .send()
                .await
                .unwrap()
        })
    };
    let mut watcher = app.db().await;
    someone_waits_for_a_lock(&mut watcher).await;
    // ...and lifts the session, exactly as `POST /factors/{id}/verify` does.
    let lifted =
        latchkey::auth::session::raise_to_aal2(&mut tx, &app.state.sessions, user_id, session_id, factor_id, "totp")
            .await
            .unwrap();
    assert!(lifted.is_some());
    tx.commit().await.unwrap();

    let response = racing.await.unwrap();
    assert_error(response, 400, "refresh_token_not_found").await;
}

#[tokio::test]
async fn one_code_sent_twice_at_once_works_once() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    let factor = enrolled(&app, token, "Phone").await;
    let first = challenge_id(&app, token, &factor.id).await;
    let second = challenge_id(&app, token, &factor.id).await;
    let step = stable_step().await;
    let right = code(&factor.secret, step);
    let (a, b) = tokio::join!(
        verify(&app, token, &factor.id, &first, &right),
        verify(&app, token, &factor.id, &second, &right),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422]);
}

/// The lock the test takes is the one refreshes take; a refresh that does not race still works.
#[tokio::test]
async fn refreshes_after_the_verification_use_the_new_token() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    let step = stable_step().await;
    let challenge = challenge_id(&app, access(&session), &factor.id).await;
    let lifted: serde_json::Value = verify(
        &app,
        access(&session),
        &factor.id,
        &challenge,
        &code(&factor.secret, step),
    )
    .await
    .json()
    .await
    .unwrap();
    let mut db = app.db().await;
    let tokens: i64 = sqlx::query_scalar("select count(*) from _auth_refresh_tokens where session_id = $1::uuid")
        .bind(jwt_payload(access(&lifted))["session_id"].as_str().unwrap())
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(tokens, 1, "the aal1 tokens are gone, the new one is the only one");
    let first = app.refreshed(refresh_token(&lifted)).await;
    // The immediate parent still gets the current token back (the reuse rule), now aal2.
    let again = app.refreshed(refresh_token(&lifted)).await;
    assert_eq!(first["refresh_token"], again["refresh_token"]);
}
