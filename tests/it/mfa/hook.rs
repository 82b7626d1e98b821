//! The MFA verification attempt hook point: the verify use case tells the hook every attempt
//! and obeys its decision. These tests plug test hooks into the use case directly; the real
//! hook through `POST /factors/{id}/verify` is in `hooks::attempts`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use latchkey::auth::mfa::hook::{Attempt, Decision, MfaVerificationHook};
use latchkey::auth::mfa::{Caller, Deps, verify};
use latchkey::auth::session::Client;
use latchkey::error::{Error, ErrorCode};
use uuid::Uuid;

use super::{PASSWORD, access, challenge_id, code, enrolled, get_user, refresh_token, stable_step};
use crate::helpers::{TestApp, assert_error, jwt_payload, random_email};

/// Remembers what it was told and answers `decision`.
#[derive(Debug)]
struct TestHook {
    decision: Decision,
    seen: Mutex<Vec<(Uuid, Uuid, String, bool)>>,
}

#[async_trait::async_trait]
impl MfaVerificationHook for TestHook {
    async fn mfa_verification_attempt(&self, attempt: &Attempt<'_>) -> Result<Decision, Error> {
        self.seen.lock().unwrap().push((
            attempt.user_id,
            attempt.factor_id,
            attempt.factor_type.to_owned(),
            attempt.valid,
        ));
        Ok(self.decision.clone())
    }
}

fn hook(decision: Decision) -> TestHook {
    TestHook {
        decision,
        seen: Mutex::new(Vec::new()),
    }
}

/// Calls the verify use case as `POST /factors/{id}/verify` would, from 127.0.0.1.
async fn verify_with(
    app: &TestApp,
    hook: &TestHook,
    token: &str,
    factor: &str,
    challenge: &str,
    code: &str,
) -> Result<(), Error> {
    let claims = jwt_payload(token);
    let user_id: Uuid = claims["sub"].as_str().unwrap().parse().unwrap();
    let user = latchkey::db::users::find_by_id(&app.state.db, user_id)
        .await
        .unwrap()
        .unwrap();
    let deps = Deps {
        db: &app.state.db,
        sessions: &app.state.sessions,
        config: &app.state.config.mfa,
        site_url: &app.state.config.site_url,
        hook,
        phone: &app.state.mfa_phone,
    };
    let caller = Caller {
        user: &user,
        session_id: claims["session_id"].as_str().map(|s| s.parse().unwrap()),
    };
    let client = Client {
        ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        user_agent: None,
    };
    verify::verify(&deps, &caller, &client, factor, Some(challenge.parse().unwrap()), code)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn the_hook_is_told_every_attempt_and_may_let_it_continue() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    let factor = enrolled(&app, token, "Phone").await;
    let challenge = challenge_id(&app, token, &factor.id).await;
    let step = stable_step().await;
    let listening = hook(Decision::Continue);
    let wrong = verify_with(&app, &listening, token, &factor.id, &challenge, "000000").await;
    assert_eq!(wrong.unwrap_err().code(), ErrorCode::MfaVerificationFailed);
    verify_with(
        &app,
        &listening,
        token,
        &factor.id,
        &challenge,
        &code(&factor.secret, step),
    )
    .await
    .unwrap();
    let user: Uuid = jwt_payload(token)["sub"].as_str().unwrap().parse().unwrap();
    let factor_id: Uuid = factor.id.parse().unwrap();
    let seen = listening.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (user, factor_id, "totp".to_owned(), false),
            (user, factor_id, "totp".to_owned(), true),
        ]
    );
}

#[tokio::test]
async fn a_rejecting_hook_signs_the_user_out_everywhere() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let elsewhere = app.signed_in(&email, PASSWORD).await;
    let token = access(&session);
    let factor = enrolled(&app, token, "Phone").await;
    let challenge = challenge_id(&app, token, &factor.id).await;
    let step = stable_step().await;
    let right = code(&factor.secret, step);

    let rejecting = hook(Decision::Reject { message: None });
    let err = verify_with(&app, &rejecting, token, &factor.id, &challenge, &right)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::MfaVerificationRejected);
    assert_eq!(err.message(), "Further MFA verification attempts will be rejected.");
    for signed_out in [&session, &elsewhere] {
        assert_error(
            app.refresh(refresh_token(signed_out)).await,
            400,
            "refresh_token_not_found",
        )
        .await;
    }
    // Nothing was verified.
    let again = app.signed_in(&email, PASSWORD).await;
    assert_eq!(
        get_user(&app, access(&again)).await["factors"][0]["status"],
        "unverified"
    );

    let with_message = hook(Decision::Reject {
        message: Some("Too many attempts".into()),
    });
    let challenge = challenge_id(&app, access(&again), &factor.id).await;
    let err = verify_with(&app, &with_message, access(&again), &factor.id, &challenge, &right)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Too many attempts");
}
