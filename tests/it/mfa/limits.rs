//! GoTrue's MFA settings: the switches, the factor limits, the rate limit of challenges and
//! verifications, and the removal of factors never verified.

use serde_json::json;

use super::{
    PASSWORD, access, challenge, challenge_id, code, enroll, enrolled, get_user, mfa_user, stable_step, verify,
};
use crate::helpers::{TestApp, assert_error, random_email};

#[tokio::test]
async fn totp_enrolment_and_verification_can_be_switched_off() {
    let app = TestApp::spawn_with(&[("GOTRUE_MFA_TOTP_ENROLL_ENABLED", "false")]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let response = enroll(&app, access(&session), json!({ "factor_type": "totp" })).await;
    assert_error(response, 422, "mfa_totp_enroll_not_enabled").await;

    let app = TestApp::spawn_with(&[("GOTRUE_MFA_TOTP_VERIFY_ENABLED", "false")]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    assert_error(
        challenge(&app, access(&session), &factor.id).await,
        422,
        "mfa_totp_verify_not_enabled",
    )
    .await;
    let unknown_challenge = "0b6d2b5e-7f5a-4d5e-9f2a-1c2d3e4f5a6b";
    let response = verify(&app, access(&session), &factor.id, unknown_challenge, "123456").await;
    assert_error(response, 422, "mfa_totp_verify_not_enabled").await;
}

#[tokio::test]
async fn enrolled_factors_are_capped() {
    let app = TestApp::spawn_with(&[("GOTRUE_MFA_MAX_ENROLLED_FACTORS", "2")]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    enrolled(&app, access(&session), "One").await;
    let two = enrolled(&app, access(&session), "Two").await;
    let third = enroll(
        &app,
        access(&session),
        json!({ "factor_type": "totp", "friendly_name": "Three" }),
    )
    .await;
    assert_error(third, 422, "too_many_enrolled_mfa_factors").await;
    // Unenrolling one makes room again.
    assert_eq!(super::unenroll(&app, access(&session), &two.id).await.status(), 200);
    enrolled(&app, access(&session), "Three").await;
}

#[tokio::test]
async fn verified_factors_are_capped() {
    let app = TestApp::spawn_with(&[("GOTRUE_MFA_MAX_VERIFIED_FACTORS", "1")]).await;
    let user = mfa_user(&app).await;
    let response = enroll(
        &app,
        access(&user.aal2),
        json!({ "factor_type": "totp", "friendly_name": "Second" }),
    )
    .await;
    assert_error(response, 422, "too_many_enrolled_mfa_factors").await;
}

#[tokio::test]
async fn challenges_and_verifications_are_rate_limited_apart() {
    let app = TestApp::spawn_with(&[("GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY", "2/1h")]).await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    let factor = enrolled(&app, token, "Phone").await;
    let first = challenge_id(&app, token, &factor.id).await;
    challenge_id(&app, token, &factor.id).await;
    let limited = challenge(&app, token, &factor.id).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, 429, "over_request_rate_limit").await;
    // Verifications have their own bucket, as in GoTrue: two wrong codes, then 429 even for
    // the right one.
    for _ in 0..2 {
        let response = verify(&app, token, &factor.id, &first, "000000").await;
        assert_eq!(response.status(), 422);
    }
    let step = stable_step().await;
    let response = verify(&app, token, &factor.id, &first, &code(&factor.secret, step)).await;
    assert_error(response, 429, "over_request_rate_limit").await;
    // Enrolment and unenrolment are not limited (GoTrue neither).
    for name in ["a", "b", "c"] {
        enrolled(&app, token, name).await;
    }
}

#[tokio::test]
async fn guesses_at_one_factor_from_many_addresses_share_one_budget() {
    // Each client address has its own MFA budget; the factor's budget is shared by all (the
    // one of POST /verify codes). A botnet gets three guesses an hour here, not three each.
    let app = TestApp::spawn_with(&[
        ("LATCHKEY_RATE_LIMIT_VERIFY_PER_ADDRESS", "3/1h"),
        ("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For"),
    ])
    .await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    let factor = enrolled(&app, token, "Phone").await;
    // A challenge answers only from the address that asked for it (GoTrue's rule), so each
    // address asks for its own.
    let from = |n: u8, path: String, body: serde_json::Value| {
        let app = &app;
        async move {
            app.request(reqwest::Method::POST, &format!("/auth/v1/factors/{path}"))
                .header("x-forwarded-for", format!("203.0.113.{n}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("request")
        }
    };
    let guess = |n: u8, factor_id: String, code: String| async move {
        let challenge: serde_json::Value = from(n, format!("{factor_id}/challenge"), json!({}))
            .await
            .json()
            .await
            .expect("a challenge");
        let challenge = challenge["id"].as_str().expect("challenge id").to_owned();
        from(
            n,
            format!("{factor_id}/verify"),
            json!({ "challenge_id": challenge, "code": code }),
        )
        .await
    };
    for n in 1..=3 {
        let response = guess(n, factor.id.clone(), "000000".into()).await;
        assert_error(response, 422, "mfa_verification_failed").await;
    }
    // A fourth address, even with the right code and the id in capitals: the factor's budget
    // is spent.
    let step = stable_step().await;
    let refused = guess(4, factor.id.to_uppercase(), code(&factor.secret, step)).await;
    assert_error(refused, 429, "over_request_rate_limit").await;
    // Another factor (another user's) is not affected.
    let other = app.sign_up(&random_email(), PASSWORD).await;
    let other_factor = enrolled(&app, access(&other), "Phone").await;
    let other_challenge = challenge_id(&app, access(&other), &other_factor.id).await;
    let response = verify(
        &app,
        access(&other),
        &other_factor.id,
        &other_challenge,
        &code(&other_factor.secret, step),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn factors_never_verified_expire() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    let stale = enrolled(&app, token, "Stale").await;
    let challenged = enrolled(&app, token, "Challenged").await;
    challenge_id(&app, token, &challenged.id).await;
    let fresh = enrolled(&app, token, "Fresh").await;
    let mut db = app.db().await;
    sqlx::query("update _auth_mfa_factors set created_at = now() - interval '301 seconds' where id::text in ($1, $2)")
        .bind(&stale.id)
        .bind(&challenged.id)
        .execute(&mut db)
        .await
        .unwrap();
    // GoTrue's DeleteExpiredFactors at the next enrolment: past GOTRUE_MFA_FACTOR_EXPIRY_DURATION
    // (300 s) and never challenged.
    enrolled(&app, token, "Next").await;
    let names: Vec<String> = get_user(&app, token).await["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["friendly_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Challenged", "Fresh", "Next"]);
    assert_ne!(fresh.id, stale.id);

    // The background cleanup: unverified factors and challenges after a day (GoTrue's margins).
    let user = mfa_user(&app).await;
    sqlx::query("update _auth_mfa_factors set created_at = now() - interval '25 hours'")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("update _auth_mfa_challenges set created_at = now() - interval '25 hours'")
        .execute(&mut db)
        .await
        .unwrap();
    latchkey::cleanup::clean_all(&app.state.db).await.unwrap();
    let left: Vec<String> = sqlx::query_scalar("select id::text from _auth_mfa_factors")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(left, [user.factor.id.as_str()], "only the verified factor is kept");
    let challenges: i64 = sqlx::query_scalar("select count(*) from _auth_mfa_challenges")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(challenges, 0);
}
