//! Challenges and verification: a right code lifts the session to aal2 with new tokens; wrong,
//! replayed and late codes, expired and foreign challenges are refused.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    PASSWORD, access, assurance, challenge, challenge_and_verify, challenge_id, code, enrolled, fresh_code, get_user,
    mfa_user, refresh_token, stable_step, verify,
};
use crate::helpers::{TestApp, assert_error, expect_session, jwt_payload, random_email};

#[tokio::test]
async fn a_right_code_lifts_the_session_to_aal2_with_new_tokens() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    assert_eq!(assurance(&session), ("aal1".into(), vec!["password".into()]));
    let factor = enrolled(&app, access(&session), "Phone").await;

    let response = challenge(&app, access(&session), &factor.id).await;
    let challenged: Value = response.json().await.unwrap();
    assert_eq!(challenged["type"], "totp");
    let expires_at = challenged["expires_at"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now + 290..=now + 310).contains(&expires_at),
        "300 s by default: {challenged}"
    );

    let step = stable_step().await;
    let challenge = challenged["id"].as_str().unwrap();
    let lifted = expect_session(
        verify(
            &app,
            access(&session),
            &factor.id,
            challenge,
            &code(&factor.secret, step),
        )
        .await,
    )
    .await;
    let (aal, methods) = assurance(&lifted);
    assert_eq!(aal, "aal2");
    assert_eq!(methods, ["totp", "password"], "newest first");
    let claims = jwt_payload(access(&lifted));
    assert_eq!(
        claims["session_id"],
        jwt_payload(access(&session))["session_id"],
        "the same session"
    );
    let totp_at = claims["amr"][0]["timestamp"].as_i64().unwrap();
    assert!((now - 5..=chrono::Utc::now().timestamp() + 60).contains(&totp_at));
    assert_ne!(refresh_token(&lifted), refresh_token(&session));
    assert_eq!(lifted["user"]["factors"][0]["status"], "verified");

    // A refresh keeps aal2 and the methods.
    let refreshed = app.refreshed(refresh_token(&lifted)).await;
    assert_eq!(
        assurance(&refreshed),
        ("aal2".into(), vec!["totp".into(), "password".into()])
    );
    // The aal1 refresh token from before cannot be turned into an aal2 session.
    assert_error(
        app.refresh(refresh_token(&session)).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_eq!(
        get_user(&app, access(&refreshed)).await["factors"][0]["status"],
        "verified"
    );
}

#[tokio::test]
async fn a_wrong_code_changes_nothing() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    let step = stable_step().await;
    let right = code(&factor.secret, step);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let challenge = challenge_id(&app, access(&session), &factor.id).await;
    for bad in [wrong.as_str(), "abcdef", "12345", "1234567", " "] {
        let response = verify(&app, access(&session), &factor.id, &challenge, bad).await;
        assert_error(response, 422, "mfa_verification_failed").await;
    }
    assert_error(
        verify(&app, access(&session), &factor.id, &challenge, "").await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(
        get_user(&app, access(&session)).await["factors"][0]["status"],
        "unverified"
    );
    assert_eq!(assurance(&app.refreshed(refresh_token(&session)).await).0, "aal1");
    // The challenge is still usable with the right code.
    let lifted = verify(&app, access(&session), &factor.id, &challenge, &right).await;
    assert_eq!(assurance(&expect_session(lifted).await).0, "aal2");
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let used = code(&user.factor.secret, user.step);
    // The same code again, from another session of the same user, on a new challenge: refused
    // although it is still within its window (GoTrue would accept it).
    let aal1 = user.aal1(&app).await;
    let replay = challenge_and_verify(&app, access(&aal1), &user.factor.id, &used).await;
    assert_error(replay, 422, "mfa_verification_failed").await;
    // So is the code of the step before it.
    let older = code(&user.factor.secret, user.step - 1);
    let response = challenge_and_verify(&app, access(&aal1), &user.factor.id, &older).await;
    assert_error(response, 422, "mfa_verification_failed").await;
    // A newer code works.
    let (fresh, _) = fresh_code(&user.factor.secret, user.step).await;
    let response = challenge_and_verify(&app, access(&aal1), &user.factor.id, &fresh).await;
    assert_eq!(assurance(&expect_session(response).await).0, "aal2");
}

#[tokio::test]
async fn one_step_of_clock_skew_either_side() {
    let app = TestApp::spawn().await;
    for (offset, accepted) in [(-1i64, true), (1, true), (-2, false), (2, false)] {
        let session = app.sign_up(&random_email(), PASSWORD).await;
        let factor = enrolled(&app, access(&session), "Phone").await;
        let step = stable_step().await.checked_add_signed(offset).unwrap();
        let response = challenge_and_verify(&app, access(&session), &factor.id, &code(&factor.secret, step)).await;
        if accepted {
            assert_eq!(response.status(), 200, "step {offset:+}");
        } else {
            assert_error(response, 422, "mfa_verification_failed").await;
        }
    }
}

#[tokio::test]
async fn an_expired_challenge_is_refused_and_deleted() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    let challenge = challenge_id(&app, access(&session), &factor.id).await;
    let mut db = app.db().await;
    // Five minutes (GoTrue's default and minimum) and a second.
    sqlx::query("update _auth_mfa_challenges set created_at = now() - interval '301 seconds' where id = $1::uuid")
        .bind(&challenge)
        .execute(&mut db)
        .await
        .unwrap();
    let step = stable_step().await;
    let right = code(&factor.secret, step);
    let response = verify(&app, access(&session), &factor.id, &challenge, &right).await;
    let body = assert_error(response, 422, "mfa_challenge_expired").await;
    assert!(body["msg"].as_str().unwrap().contains(&challenge), "{body}");
    let left: i64 = sqlx::query_scalar("select count(*) from _auth_mfa_challenges where id = $1::uuid")
        .bind(&challenge)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(left, 0, "deleted, as in GoTrue");
    let again = verify(&app, access(&session), &factor.id, &challenge, &right).await;
    assert_error(again, 422, "mfa_factor_not_found").await;
    // A challenge just inside its five minutes still works.
    let fresh = challenge_id(&app, access(&session), &factor.id).await;
    sqlx::query("update _auth_mfa_challenges set created_at = now() - interval '280 seconds' where id = $1::uuid")
        .bind(&fresh)
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(
        verify(&app, access(&session), &factor.id, &fresh, &right)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_challenge_is_bound_to_its_factor_address_and_single_use() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    let factor = enrolled(&app, token, "Phone").await;
    let other = enrolled(&app, token, "Other").await;
    let step = stable_step().await;
    let right = code(&factor.secret, step);

    // A challenge of another factor, an unknown one, none at all.
    let foreign = challenge_id(&app, token, &other.id).await;
    assert_error(
        verify(&app, token, &factor.id, &foreign, &right).await,
        422,
        "mfa_factor_not_found",
    )
    .await;
    let unknown = Uuid::new_v4().to_string();
    assert_error(
        verify(&app, token, &factor.id, &unknown, &right).await,
        422,
        "mfa_factor_not_found",
    )
    .await;
    let no_challenge = app
        .post_json_auth(
            &format!("/auth/v1/factors/{}/verify", factor.id),
            token,
            &json!({ "code": right }),
        )
        .await;
    assert_error(no_challenge, 422, "mfa_factor_not_found").await;
    let not_uuid = app
        .post_json_auth(
            &format!("/auth/v1/factors/{}/verify", factor.id),
            token,
            &json!({ "challenge_id": "nope", "code": right }),
        )
        .await;
    assert_error(not_uuid, 400, "validation_failed").await;

    // Asked for from another address (as if by whoever holds the token elsewhere).
    let challenge = challenge_id(&app, token, &factor.id).await;
    let mut db = app.db().await;
    sqlx::query("update _auth_mfa_challenges set ip_address = '203.0.113.9' where id = $1::uuid")
        .bind(&challenge)
        .execute(&mut db)
        .await
        .unwrap();
    assert_error(
        verify(&app, token, &factor.id, &challenge, &right).await,
        422,
        "mfa_ip_address_mismatch",
    )
    .await;

    // Verified once, a challenge is spent.
    let challenge = challenge_id(&app, token, &factor.id).await;
    let lifted = expect_session(verify(&app, token, &factor.id, &challenge, &right).await).await;
    let (next, _) = fresh_code(&factor.secret, step).await;
    let again = verify(&app, access(&lifted), &factor.id, &challenge, &next).await;
    assert_error(again, 422, "mfa_ip_address_mismatch").await;
}

#[tokio::test]
async fn factors_of_other_users_are_not_found() {
    let app = TestApp::spawn().await;
    let alice = app.sign_up(&random_email(), PASSWORD).await;
    let bob = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&alice), "Alice's phone").await;
    let challenge = challenge_id(&app, access(&alice), &factor.id).await;
    let step = stable_step().await;
    let right = code(&factor.secret, step);
    let token = access(&bob);
    assert_error(
        super::challenge(&app, token, &factor.id).await,
        404,
        "mfa_factor_not_found",
    )
    .await;
    assert_error(
        verify(&app, token, &factor.id, &challenge, &right).await,
        404,
        "mfa_factor_not_found",
    )
    .await;
    assert_error(
        super::unenroll(&app, token, &factor.id).await,
        404,
        "mfa_factor_not_found",
    )
    .await;
    for bad in ["not-a-uuid", "00000000-0000-0000-0000-00000000000g"] {
        assert_error(super::challenge(&app, token, bad).await, 404, "validation_failed").await;
        assert_error(super::unenroll(&app, token, bad).await, 404, "validation_failed").await;
    }
    // Bob learnt nothing and changed nothing: Alice's code still works for Alice.
    assert_eq!(
        verify(&app, access(&alice), &factor.id, &challenge, &right)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_verification_ends_the_users_sessions_still_at_aal1() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let elsewhere = app.signed_in(&email, PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    let step = stable_step().await;
    let lifted = challenge_and_verify(&app, access(&session), &factor.id, &code(&factor.secret, step)).await;
    let lifted = expect_session(lifted).await;
    // GoTrue's InvalidateSessionsWithAALLessThan(aal2).
    assert_error(
        app.refresh(refresh_token(&elsewhere)).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_error(
        app.get_auth("/auth/v1/user", access(&elsewhere)).await,
        403,
        "session_not_found",
    )
    .await;
    assert_eq!(app.refresh(refresh_token(&lifted)).await.status(), 200);
}
