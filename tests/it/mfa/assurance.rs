//! What aal2 guards, where GoTrue guards it: password, email and phone changes, unenrolling a
//! verified factor; and what a password sign-in of an MFA user looks like.

use serde_json::json;

use super::{
    PASSWORD, access, assurance, challenge_and_verify, enrolled, fresh_code, get_user, mfa_user, refresh_token,
    unenroll,
};
use crate::helpers::{TestApp, assert_error, expect_session, random_email};

#[tokio::test]
async fn a_password_sign_in_of_an_mfa_user_is_aal1_and_lists_the_verified_factor() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let session = user.aal1(&app).await;
    assert_eq!(assurance(&session), ("aal1".into(), vec!["password".into()]));
    // supabase-js derives nextLevel = aal2 from the verified factor in the session's user.
    let factors = session["user"]["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0]["status"], "verified");
    assert_eq!(factors[0]["id"].as_str(), Some(user.factor.id.as_str()));
    // A refresh of an aal1 session stays aal1.
    let refreshed = app.refreshed(refresh_token(&session)).await;
    assert_eq!(assurance(&refreshed).0, "aal1");
    // The aal2 session is untouched by the new sign-in.
    assert_eq!(assurance(&app.refreshed(refresh_token(&user.aal2)).await).0, "aal2");
}

#[tokio::test]
async fn sensitive_changes_need_aal2_once_mfa_is_on() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let aal1 = user.aal1(&app).await;
    let token = access(&aal1);
    for change in [
        json!({ "password": "a-new-password-1" }),
        json!({ "email": random_email() }),
        json!({ "phone": "15557654321" }),
    ] {
        let response = app.put_json_auth("/auth/v1/user", token, &change).await;
        assert_error(response, 401, "insufficient_aal").await;
    }
    // Metadata, and "changes" to what is already there, need no aal2.
    let same = json!({ "email": user.email.to_uppercase(), "data": { "theme": "dark" } });
    let response = app.put_json_auth("/auth/v1/user", token, &same).await;
    assert_eq!(response.status(), 200);
    // From the aal2 session the password changes.
    let response = app
        .put_json_auth(
            "/auth/v1/user",
            access(&user.aal2),
            &json!({ "password": "a-new-password-1" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.sign_in(&user.email, "a-new-password-1").await.status(), 200);
}

#[tokio::test]
async fn users_without_a_verified_factor_change_freely() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    enrolled(&app, access(&session), "Not yet verified").await;
    let response = app
        .put_json_auth(
            "/auth/v1/user",
            access(&session),
            &json!({ "password": "a-new-password-1" }),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unenrolling_a_verified_factor_needs_aal2_and_downgrades_its_sessions() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let aal1 = user.aal1(&app).await;
    let refused = unenroll(&app, access(&aal1), &user.factor.id).await;
    assert_error(refused, 422, "insufficient_aal").await;
    assert_eq!(
        get_user(&app, access(&aal1)).await["factors"].as_array().unwrap().len(),
        1
    );

    let response = unenroll(&app, access(&user.aal2), &user.factor.id).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "id": user.factor.id }));
    // The session that reached aal2 through the factor is aal1 again, without `totp`.
    let refreshed = app.refreshed(refresh_token(&user.aal2)).await;
    assert_eq!(assurance(&refreshed), ("aal1".into(), vec!["password".into()]));
    let me = get_user(&app, access(&refreshed)).await;
    assert!(me.get("factors").is_none(), "left out when none: {me}");
    // MFA is off: the aal1 session may change the password now.
    let response = app
        .put_json_auth(
            "/auth/v1/user",
            access(&aal1),
            &json!({ "password": "a-new-password-1" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    // (The password change ended the other sessions; the one that made it remains.)
    assert_error(
        unenroll(&app, access(&aal1), &user.factor.id).await,
        404,
        "mfa_factor_not_found",
    )
    .await;
}

#[tokio::test]
async fn an_unverified_factor_goes_from_an_aal1_session() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Abandoned").await;
    assert_eq!(unenroll(&app, access(&session), &factor.id).await.status(), 200);
    assert!(get_user(&app, access(&session)).await.get("factors").is_none());
}

#[tokio::test]
async fn a_second_verification_after_sign_in_lifts_the_new_session() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let aal1 = user.aal1(&app).await;
    let (code, _) = fresh_code(&user.factor.secret, user.step).await;
    let lifted = expect_session(challenge_and_verify(&app, access(&aal1), &user.factor.id, &code).await).await;
    assert_eq!(
        assurance(&lifted),
        ("aal2".into(), vec!["totp".into(), "password".into()])
    );
    // Both sessions are aal2 now: neither was ended.
    assert_eq!(assurance(&app.refreshed(refresh_token(&user.aal2)).await).0, "aal2");
}
