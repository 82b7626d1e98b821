//! PKCE email flows (`pkce_` links, `?code=`, `grant_type=pkce`) and reauthentication.

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::email::{confirmed_user, fragment, location, mail_app, query};
use crate::helpers::{TestApp, assert_error, jwt_payload, random_email};

fn pkce_pair() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

async fn exchange(app: &TestApp, code: &str, verifier: &str) -> reqwest::Response {
    app.post_json(
        "/auth/v1/token?grant_type=pkce",
        &json!({"auth_code": code, "code_verifier": verifier}),
    )
    .await
}

#[tokio::test]
async fn pkce_signup_link_gives_a_code_for_one_exchange() {
    let (app, sink) = mail_app(&[]).await;
    let (verifier, challenge) = pkce_pair();
    let email = random_email();
    let response = app
        .post_json(
            "/signup?redirect_to=http://localhost:3000/callback",
            &json!({"email": email, "password": "secret-pw", "code_challenge": challenge, "code_challenge_method": "S256"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let link = Url::parse(&sink.last_to(&email).await.link()).unwrap();
    assert!(query(&link)["token"].starts_with("pkce_"));

    let target = location(&app.client.get(link.clone()).send().await.unwrap());
    assert_eq!(target.path(), "/callback");
    assert!(target.fragment().is_none(), "no tokens in the URL with PKCE");
    let code = query(&target)["code"].clone();
    assert_eq!(code.len(), 36, "a UUID");

    assert_error(exchange(&app, &code, "").await, 400, "validation_failed").await;
    let body = assert_error(
        exchange(&app, &code, "wrong-verifier-wrong-verifier-wrong-verifier").await,
        400,
        "bad_code_verifier",
    )
    .await;
    assert_eq!(
        body["msg"],
        "code challenge does not match previously saved code verifier"
    );
    let response = exchange(&app, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], email);
    assert!(session["user"]["email_confirmed_at"].is_string());
    assert_eq!(
        jwt_payload(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "email/signup"
    );
    assert_error(exchange(&app, &code, &verifier).await, 404, "flow_state_not_found").await;
    assert_error(
        exchange(&app, "00000000-0000-0000-0000-000000000000", &verifier).await,
        404,
        "flow_state_not_found",
    )
    .await;

    let again = location(&app.client.get(link).send().await.unwrap());
    assert_eq!(
        query(&again)["error_code"],
        "otp_expired",
        "PKCE errors also go in the query"
    );
    assert_eq!(fragment(&again)["error_code"], "otp_expired");
}

#[tokio::test]
async fn pkce_recovery_and_magic_link_and_expiry() {
    let (app, sink) = mail_app(&[("GOTRUE_MAILER_AUTOCONFIRM", "true")]).await;
    let email = random_email();
    app.sign_up(&email, "secret-pw").await;

    let (verifier, challenge) = pkce_pair();
    let response = app
        .post_json(
            "/recover",
            &json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let target = location(&app.client.get(sink.last_to(&email).await.link()).send().await.unwrap());
    let code = query(&target)["code"].clone();
    let session: Value = exchange(&app, &code, &verifier).await.json().await.unwrap();
    assert_eq!(
        jwt_payload(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "recovery"
    );

    let (verifier, challenge) = pkce_pair();
    app.post_json(
        "/otp",
        &json!({"email": email, "code_challenge": challenge, "code_challenge_method": "s256"}),
    )
    .await;
    let target = location(&app.client.get(sink.last_to(&email).await.link()).send().await.unwrap());
    let code = query(&target)["code"].clone();
    let mut db = app.db().await;
    sqlx::query("update _auth_flow_state set auth_code_issued_at = now() - interval '6 minutes' where auth_code = $1")
        .bind(&code)
        .execute(&mut db)
        .await
        .unwrap();
    assert_error(exchange(&app, &code, &verifier).await, 422, "flow_state_expired").await;

    for (challenge, method) in [("short", "s256"), (challenge.as_str(), "md5"), (challenge.as_str(), "")] {
        assert_error(
            app.post_json(
                "/otp",
                &json!({"email": email, "code_challenge": challenge, "code_challenge_method": method}),
            )
            .await,
            400,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn pkce_email_change() {
    let (app, sink) = mail_app(&[("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", "false")]).await;
    let (old, new) = (random_email(), random_email());
    let tokens = confirmed_user(&app, &sink, &old, "secret-pw").await;
    // plain: the challenge is the verifier itself.
    let (verifier, _) = pkce_pair();
    let response = app
        .put_json_auth(
            "/user",
            &tokens["access_token"],
            &json!({"email": new, "code_challenge": verifier, "code_challenge_method": "plain"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let target = location(&app.client.get(sink.last_to(&new).await.link()).send().await.unwrap());
    let code = query(&target)["code"].clone();
    let session: Value = exchange(&app, &code, &verifier).await.json().await.unwrap();
    assert_eq!(session["user"]["email"], new);
    assert_eq!(
        jwt_payload(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "email_change"
    );
}

#[tokio::test]
async fn password_change_needs_a_fresh_session_or_the_reauthentication_nonce() {
    let (app, sink) = mail_app(&[("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", "true")]).await;
    let email = random_email();
    let tokens = confirmed_user(&app, &sink, &email, "secret-pw").await;
    let access = tokens["access_token"].clone();
    // A session from the last 24 hours may change the password directly.
    assert_eq!(
        app.put_json_auth("/user", &access, &json!({"password": "second-pw"}))
            .await
            .status(),
        200
    );

    let session_id = jwt_payload(&access)["session_id"].as_str().unwrap().to_owned();
    let mut db = app.db().await;
    sqlx::query("update _auth_sessions set created_at = now() - interval '25 hours' where id = $1::uuid")
        .bind(&session_id)
        .execute(&mut db)
        .await
        .unwrap();
    assert_error(
        app.put_json_auth("/user", &access, &json!({"password": "third-pw"}))
            .await,
        400,
        "reauthentication_needed",
    )
    .await;
    let response = app.get_auth("/auth/v1/reauthenticate", &access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let mail = sink.last_to(&email).await;
    assert_eq!(mail.subject(), "Confirm reauthentication");
    let nonce = mail.code();
    assert_error(
        app.put_json_auth("/user", &access, &json!({"password": "third-pw", "nonce": "000000"}))
            .await,
        422,
        "reauthentication_not_valid",
    )
    .await;
    let response = app
        .put_json_auth("/user", &access, &json!({"password": "third-pw", "nonce": nonce}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.sign_in(&email, "third-pw").await.status(), 200);
    assert_error(
        app.put_json_auth("/user", &access, &json!({"password": "fourth-pw", "nonce": nonce}))
            .await,
        422,
        "reauthentication_not_valid",
    )
    .await;
    assert_error(app.get("/reauthenticate").await, 401, "no_authorization").await;
}
