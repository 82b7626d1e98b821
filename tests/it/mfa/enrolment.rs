//! `POST /factors`: the secret, URI and QR code; names; who may enrol; the secret is shown
//! once.

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::{PASSWORD, access, challenge_and_verify, code, enroll, enrolled, get_user, mfa_user, stable_step};
use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email};

#[tokio::test]
async fn enrolment_returns_a_secret_an_otpauth_uri_and_an_svg_qr_code() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Laptop").await;
    let body = &factor.body;
    assert_eq!(body["type"], "totp");
    assert_eq!(body["friendly_name"], "Laptop");
    assert_eq!(factor.secret.len(), 32, "160 bits in base32");
    let uri = Url::parse(body["totp"]["uri"].as_str().unwrap()).unwrap();
    assert_eq!(uri.scheme(), "otpauth");
    assert_eq!(uri.host_str(), Some("totp"));
    // GoTrue's issuer: the site URL's host (and port) when none is given.
    assert_eq!(uri.path(), format!("/localhost:3000:{email}"));
    let query: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(get("secret"), Some(factor.secret.as_str()));
    assert_eq!(get("issuer"), Some("localhost:3000"));
    assert_eq!(
        (get("algorithm"), get("digits"), get("period")),
        (Some("SHA1"), Some("6"), Some("30"))
    );
    let qr = body["totp"]["qr_code"].as_str().unwrap();
    assert!(
        qr.starts_with("<?xml") && qr.contains("<svg") && qr.ends_with("</svg>"),
        "{qr}"
    );
    assert!(!qr.contains('#'), "usable as a data: URI as it is");

    // An issuer given at enrolment is used instead.
    let response = enroll(
        &app,
        access(&session),
        json!({ "factor_type": "totp", "friendly_name": "Other", "issuer": "Acme Corp" }),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let uri = Url::parse(body["totp"]["uri"].as_str().unwrap()).unwrap();
    assert!(uri.as_str().starts_with("otpauth://totp/Acme%20Corp:"), "{uri}");
    assert!(uri.query_pairs().any(|(k, v)| k == "issuer" && v == "Acme Corp"));

    // The new factors are listed, unverified, in GoTrue's order.
    let user = get_user(&app, access(&session)).await;
    let factors = user["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 2);
    assert_eq!(factors[0]["id"].as_str(), Some(factor.id.as_str()));
    assert_eq!(factors[0]["status"], "unverified");
    assert_eq!(factors[0]["factor_type"], "totp");
    assert_eq!(factors[0]["friendly_name"], "Laptop");
}

#[tokio::test]
async fn the_secret_is_never_shown_again() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let secret = &user.factor.secret;
    let mut seen = vec![
        serde_json::to_string(&user.aal2).unwrap(),
        serde_json::to_string(&get_user(&app, access(&user.aal2)).await).unwrap(),
        app.signed_in(&user.email, PASSWORD).await.to_string(),
    ];
    let id = user.aal2["user"]["id"].as_str().unwrap().to_owned();
    for path in [
        format!("/admin/users/{id}"),
        format!("/admin/users/{id}/factors"),
        "/admin/users".into(),
    ] {
        seen.push(admin(&app, Method::GET, &path, None).await.text().await.unwrap());
    }
    seen.push(
        admin(&app, Method::GET, "/admin/audit", None)
            .await
            .text()
            .await
            .unwrap(),
    );
    for text in &seen {
        assert!(!text.contains(secret.as_str()), "secret leaked: {text}");
    }
    // In the database it is where GoTrue keeps it, and only there.
    let mut db = app.db().await;
    let stored: String = sqlx::query_scalar("select secret from _auth_mfa_factors where id = $1::uuid")
        .bind(&user.factor.id)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(&stored, secret);
    let audit: Vec<String> = sqlx::query_scalar("select payload::text from _auth_audit_log")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(audit.iter().all(|p| !p.contains(secret.as_str())));
}

#[tokio::test]
async fn friendly_names_are_unique_per_user() {
    let app = TestApp::spawn().await;
    let alice = app.sign_up(&random_email(), PASSWORD).await;
    let bob = app.sign_up(&random_email(), PASSWORD).await;
    enrolled(&app, access(&alice), "Phone").await;
    let again = enroll(
        &app,
        access(&alice),
        json!({ "factor_type": "totp", "friendly_name": "Phone" }),
    )
    .await;
    assert_error(again, 422, "mfa_factor_name_conflict").await;
    enrolled(&app, access(&bob), "Phone").await;
    // As in GoTrue, no name is a name too: a second factor without one conflicts.
    let unnamed = json!({ "factor_type": "totp" });
    assert_eq!(enroll(&app, access(&alice), unnamed.clone()).await.status(), 200);
    assert_error(
        enroll(&app, access(&alice), unnamed).await,
        422,
        "mfa_factor_name_conflict",
    )
    .await;
}

#[tokio::test]
async fn bad_enrolments_are_refused_with_gotrues_errors() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let token = access(&session);
    for (body, status, code) in [
        (json!({ "factor_type": "sms" }), 400, "validation_failed"),
        (json!({}), 400, "validation_failed"),
        (
            json!({ "factor_type": "phone", "phone": "+15551234567" }),
            422,
            "mfa_phone_enroll_not_enabled",
        ),
        (
            json!({ "factor_type": "webauthn" }),
            422,
            "mfa_webauthn_enroll_not_enabled",
        ),
        (
            json!({ "factor_type": "totp", "friendly_name": "x".repeat(256) }),
            400,
            "validation_failed",
        ),
        (
            json!({ "factor_type": "totp", "issuer": "i".repeat(256) }),
            400,
            "validation_failed",
        ),
        (json!({ "factor_type": 7 }), 400, "validation_failed"),
    ] {
        assert_error(enroll(&app, token, body).await, status, code).await;
    }
    // An issuer too long for the QR code (written twice, percent-encoded) is the request's fault.
    let unprintable = json!({ "factor_type": "totp", "issuer": "ü".repeat(255) });
    assert_error(enroll(&app, token, unprintable).await, 400, "validation_failed").await;
    // Long but allowed values work, multi-byte ones too.
    let long = json!({ "factor_type": "totp", "friendly_name": "é".repeat(255), "issuer": "u".repeat(255) });
    assert_eq!(enroll(&app, token, long).await.status(), 200);
    assert!(get_user(&app, token).await["factors"].as_array().unwrap().len() == 1);

    assert_error(
        app.post_json("/auth/v1/factors", &json!({ "factor_type": "totp" }))
            .await,
        401,
        "no_authorization",
    )
    .await;
    assert_error(
        enroll(&app, "not-a-jwt", json!({ "factor_type": "totp" })).await,
        403,
        "bad_jwt",
    )
    .await;
}

#[tokio::test]
async fn anonymous_users_cannot_use_factors() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/auth/v1/signup", &json!({})).await;
    let anonymous: Value = response.json().await.unwrap();
    let token = access(&anonymous);
    let factor = "0b6d2b5e-7f5a-4d5e-9f2a-1c2d3e4f5a6b";
    assert_error(
        enroll(&app, token, json!({ "factor_type": "totp" })).await,
        403,
        "no_authorization",
    )
    .await;
    assert_error(super::challenge(&app, token, factor).await, 403, "no_authorization").await;
    assert_error(
        super::verify(&app, token, factor, factor, "123456").await,
        403,
        "no_authorization",
    )
    .await;
    assert_error(super::unenroll(&app, token, factor).await, 403, "no_authorization").await;
}

#[tokio::test]
async fn a_second_factor_needs_aal2_once_one_is_verified() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    // Whoever has only the password must not add a factor of their own.
    let aal1 = user.aal1(&app).await;
    let response = enroll(
        &app,
        access(&aal1),
        json!({ "factor_type": "totp", "friendly_name": "Mine" }),
    )
    .await;
    assert_error(response, 403, "insufficient_aal").await;
    let second = enrolled(&app, access(&user.aal2), "Backup").await;
    assert_eq!(second.body["type"], "totp");
}

#[tokio::test]
async fn verifying_one_factor_removes_the_other_unverified_ones() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let first = enrolled(&app, access(&session), "First").await;
    let abandoned = enrolled(&app, access(&session), "Abandoned").await;
    let step = stable_step().await;
    let response = challenge_and_verify(&app, access(&session), &first.id, &code(&first.secret, step)).await;
    let aal2: Value = response.json().await.unwrap();
    let factors = get_user(&app, access(&aal2)).await["factors"]
        .as_array()
        .unwrap()
        .clone();
    let ids: Vec<&str> = factors.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.id.as_str()], "GoTrue's DeleteUnverifiedFactors");
    assert_ne!(first.id, abandoned.id);
    assert_eq!(factors[0]["status"], "verified");
}

#[tokio::test]
async fn a_repeated_sign_up_does_not_tell_whether_the_account_uses_mfa() {
    let app = TestApp::spawn_with(&[("GOTRUE_MAILER_AUTOCONFIRM", "false")]).await;
    let email = random_email();
    let response = app
        .post_json("/auth/v1/signup", &json!({ "email": email, "password": PASSWORD }))
        .await;
    assert_eq!(response.status(), 200);
    let user_id: String = {
        let mut db = app.db().await;
        sqlx::query_scalar("select id::text from _auth_users where email = $1")
            .bind(&email)
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    let created = admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{user_id}"),
        Some(json!({ "email_confirm": true })),
    )
    .await;
    assert_eq!(created.status(), 200);
    let session = app.signed_in(&email, PASSWORD).await;
    let factor = enrolled(&app, access(&session), "Phone").await;
    let step = stable_step().await;
    let verified = challenge_and_verify(&app, access(&session), &factor.id, &code(&factor.secret, step)).await;
    assert_eq!(verified.status(), 200);

    // GoTrue's fake answer to a sign-up with a taken address carried the real user's factors.
    let again = app
        .post_json(
            "/auth/v1/signup",
            &json!({ "email": email, "password": "another-pw-1" }),
        )
        .await;
    let text = again.text().await.unwrap();
    assert!(!text.contains("factors"), "{text}");
    assert!(!text.contains(&factor.id), "{text}");
}
