//! Sign-up, password sign-in, the user endpoints and access tokens.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, jwt_payload, random_email};

#[tokio::test]
async fn sign_up_with_autoconfirm_returns_a_session() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({"email": email.to_uppercase(), "password": "secret-pw", "data": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert!(session["refresh_token"].as_str().unwrap().len() >= 22);
    let user = &session["user"];
    assert_eq!(user["email"], email, "stored lower-case");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(user["user_metadata"]["name"], "Ada");
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    assert_eq!(user["identities"].as_array().unwrap().len(), 1);
    assert_eq!(user["identities"][0]["provider"], "email");
    assert_eq!(user["identities"][0]["id"], user["id"]);
    assert!(user["email_confirmed_at"].is_string() && user["last_sign_in_at"].is_string());
    assert_eq!(user["is_anonymous"], false);
    assert_eq!(user["phone"], "");

    let claims = jwt_payload(session["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["aud"], "authenticated");
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["email"], email);
    assert_eq!(claims["phone"], "");
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["amr"][0]["method"], "password");
    assert_eq!(claims["is_anonymous"], false);
    assert!(claims["session_id"].is_string() && claims["jti"].is_string());
    assert!(claims.get("iss").is_none(), "iss only when GOTRUE_JWT_ISSUER is set");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert_eq!(claims["exp"], session["expires_at"]);
}

#[tokio::test]
async fn access_tokens_follow_jwt_settings() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_JWT_EXP", "120"),
        ("GOTRUE_JWT_ISSUER", "http://issuer.test/auth/v1"),
    ])
    .await;
    let session = app.sign_up(&random_email(), "secret-pw").await;
    let claims = jwt_payload(session["access_token"].as_str().unwrap());
    assert_eq!(claims["iss"], "http://issuer.test/auth/v1");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    let other = app.sign_up(&random_email(), "secret-pw").await;
    assert_ne!(
        jwt_payload(other["access_token"].as_str().unwrap())["jti"],
        claims["jti"]
    );
}

#[tokio::test]
async fn duplicate_sign_up_with_autoconfirm_is_user_already_exists() {
    let app = TestApp::spawn().await;
    let email = random_email();
    app.sign_up(&email, "secret-pw").await;
    let response = app
        .post_json(
            "/signup",
            &json!({"email": email.to_uppercase(), "password": "other-pw"}),
        )
        .await;
    assert_error(response, 422, "user_already_exists").await;
}

#[tokio::test]
async fn sign_up_without_autoconfirm_returns_the_user_and_hides_duplicates() {
    let app = TestApp::spawn_with(&[("GOTRUE_MAILER_AUTOCONFIRM", "false")]).await;
    let email = random_email();
    let response = app
        .post_json("/auth/v1/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert!(user.get("access_token").is_none(), "no session before confirmation");
    assert_eq!(user["email"], email);
    assert!(user["confirmation_sent_at"].is_string());
    assert!(user.get("email_confirmed_at").is_none());

    assert_error(app.sign_in(&email, "secret-pw").await, 400, "email_not_confirmed").await;

    // Confirm it behind the API's back, then sign up again: a made-up user, no error.
    let mut db = app.db().await;
    sqlx::query("update _auth_users set email_confirmed_at = now() where email = $1")
        .bind(&email)
        .execute(&mut db)
        .await
        .unwrap();
    let response = app
        .post_json("/auth/v1/signup", &json!({"email": email, "password": "another-pw"}))
        .await;
    assert_eq!(response.status(), 200);
    let fake: Value = response.json().await.unwrap();
    assert_ne!(fake["id"], user["id"]);
    assert_eq!(fake["identities"], json!([]));
    assert_eq!(fake["role"], "");
    // ... and the real account is untouched.
    assert_eq!(app.sign_in(&email, "secret-pw").await.status(), 200);
}

#[tokio::test]
async fn sign_up_validation() {
    let app = TestApp::spawn().await;
    let weak = assert_error(
        app.post_json("/signup", &json!({"email": random_email(), "password": "12345"}))
            .await,
        422,
        "weak_password",
    )
    .await;
    assert_eq!(weak["weak_password"]["reasons"], json!(["length"]));
    let response = app
        .request(reqwest::Method::POST, "/signup")
        .header("X-Supabase-Api-Version", "2024-01-01")
        .json(&json!({"email": random_email(), "password": "1"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "weak_password");
    assert_eq!(body["weak_password"]["reasons"], json!(["length"]));
    assert_error(
        app.post_json("/signup", &json!({"email": random_email()})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_json("/signup", &json!({"email": "not-an-email", "password": "secret-pw"}))
            .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_json("/signup", &json!({"email": random_email(), "password": "x".repeat(73)}))
            .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_json(
            "/signup",
            &json!({"email": random_email(), "phone": "123", "password": "secret-pw"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn password_policy_required_characters() {
    let app = TestApp::spawn_with(&[
        (
            "GOTRUE_PASSWORD_REQUIRED_CHARACTERS",
            "abcdefghijklmnopqrstuvwxyz:0123456789",
        ),
        ("GOTRUE_PASSWORD_MIN_LENGTH", "8"),
    ])
    .await;
    let weak = assert_error(
        app.post_json("/signup", &json!({"email": random_email(), "password": "ABCDEFGH"}))
            .await,
        422,
        "weak_password",
    )
    .await;
    assert_eq!(weak["weak_password"]["reasons"], json!(["characters"]));
    app.sign_up(&random_email(), "abcdefg1").await;
}

#[tokio::test]
async fn signups_can_be_disabled() {
    let app = TestApp::spawn_with(&[("GOTRUE_DISABLE_SIGNUP", "true")]).await;
    assert_error(
        app.post_json("/signup", &json!({"email": random_email(), "password": "secret-pw"}))
            .await,
        422,
        "signup_disabled",
    )
    .await;
    assert_error(app.post_json("/signup", &json!({})).await, 422, "signup_disabled").await;
}

#[tokio::test]
async fn anonymous_sign_in() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json("/auth/v1/signup", &json!({"data": {"theme": "dark"}}))
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["is_anonymous"], true);
    assert_eq!(session["user"]["email"], "");
    assert_eq!(session["user"]["app_metadata"], json!({}));
    assert_eq!(session["user"]["user_metadata"]["theme"], "dark");
    let claims = jwt_payload(session["access_token"].as_str().unwrap());
    assert_eq!(claims["is_anonymous"], true);
    assert_eq!(claims["amr"][0]["method"], "anonymous");

    let off = TestApp::spawn_with(&[("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "false")]).await;
    assert_error(
        off.post_json("/signup", &json!({})).await,
        422,
        "anonymous_provider_disabled",
    )
    .await;
}

#[tokio::test]
async fn password_sign_in_and_its_errors() {
    let app = TestApp::spawn().await;
    let email = random_email();
    app.sign_up(&email, "secret-pw").await;
    let response = app.sign_in(&email.to_uppercase(), "secret-pw").await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], email);
    assert!(session.get("weak_password").is_none());

    let wrong = assert_error(app.sign_in(&email, "wrong-pw").await, 400, "invalid_credentials").await;
    let unknown = assert_error(
        app.sign_in(&random_email(), "secret-pw").await,
        400,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong["msg"], "Invalid login credentials");
    assert_eq!(wrong["msg"], unknown["msg"]);
    assert_error(
        app.post_json("/token?grant_type=password", &json!({"password": "x"}))
            .await,
        400,
        "validation_failed",
    )
    .await;
    let unsupported = assert_error(
        app.post_json("/token?grant_type=magic", &json!({})).await,
        400,
        "invalid_credentials",
    )
    .await;
    assert_eq!(unsupported["msg"], "unsupported_grant_type");
    assert_error(app.post_json("/token", &json!({})).await, 400, "invalid_credentials").await;
}

#[tokio::test]
async fn banned_users_cannot_sign_in_or_use_tokens() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, "secret-pw").await;
    let mut db = app.db().await;
    sqlx::query("update _auth_users set banned_until = now() + interval '1 day' where email = $1")
        .bind(&email)
        .execute(&mut db)
        .await
        .unwrap();
    assert_error(app.sign_in(&email, "secret-pw").await, 400, "user_banned").await;
    assert_error(
        app.get_auth("/user", session["access_token"].as_str().unwrap()).await,
        403,
        "user_banned",
    )
    .await;
    assert_error(
        app.refresh(session["refresh_token"].as_str().unwrap()).await,
        400,
        "user_banned",
    )
    .await;
}

#[tokio::test]
async fn weak_password_is_reported_on_sign_in_when_the_policy_tightened() {
    let database = crate::helpers::fresh_database().await;
    let email = random_email();
    {
        let lax = TestApp::spawn_on(&database, &[]).await;
        lax.sign_up(&email, "short1").await;
    }
    let strict = TestApp::spawn_on(&database, &[("GOTRUE_PASSWORD_MIN_LENGTH", "10")]).await;
    let session: Value = strict.sign_in(&email, "short1").await.json().await.unwrap();
    assert_eq!(session["weak_password"]["reasons"], json!(["length"]));
    assert!(session["weak_password"]["message"].as_str().unwrap().contains("10"));
    assert!(session["access_token"].is_string());
}

#[tokio::test]
async fn imported_bcrypt_hashes_work_and_are_upgraded_to_argon2id() {
    let app = TestApp::spawn().await;
    let email = random_email();
    app.sign_up(&email, "placeholder").await;
    let go_hash = bcrypt::hash_with_result("from-gotrue", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let mut db = app.db().await;
    sqlx::query("update _auth_users set encrypted_password = $2 where email = $1")
        .bind(&email)
        .bind(&go_hash)
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(app.sign_in(&email, "from-gotrue").await.status(), 200);
    let stored: String = sqlx::query_scalar("select encrypted_password from _auth_users where email = $1")
        .bind(&email)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    assert_eq!(app.sign_in(&email, "from-gotrue").await.status(), 200);
    assert_error(app.sign_in(&email, "placeholder").await, 400, "invalid_credentials").await;
}

/// Unknown emails are checked against a dummy hash made with the current argon2id parameters:
/// a sign-in for an address nobody has costs exactly one verification at those parameters,
/// as a wrong password for a real user does (and a right one). Counted, not timed: the time
/// itself is measured by the benchmark (`bench/src/timing.rs`).
#[tokio::test]
async fn unknown_emails_cost_one_verification_like_wrong_passwords() {
    let app = TestApp::spawn().await;
    let email = random_email();
    app.sign_up(&email, "secret-pw").await;
    let hasher = &app.state.hasher;
    let attempts = [
        (email.clone(), "wrong-pw", 400),
        (random_email(), "wrong-pw", 400),
        ("not-an-address".to_owned(), "wrong-pw", 400),
        (email.clone(), "secret-pw", 200),
    ];
    for (address, password, status) in attempts {
        let before = hasher.verifications_at_current_params();
        let response = app.sign_in(&address, password).await;
        assert_eq!(response.status(), status, "{address}");
        assert_eq!(
            hasher.verifications_at_current_params() - before,
            1,
            "{address} / {password}: one argon2id verification at the current parameters"
        );
    }
}

#[tokio::test]
async fn get_user_and_token_checks() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), "secret-pw").await;
    let token = session["access_token"].as_str().unwrap();
    for path in ["/auth/v1/user", "/user"] {
        let user: Value = app.get_auth(path, token).await.json().await.unwrap();
        assert_eq!(user["id"], session["user"]["id"]);
        assert_eq!(user["identities"].as_array().unwrap().len(), 1);
    }
    assert_error(app.get("/user").await, 401, "no_authorization").await;
    assert_error(app.get_auth("/user", "garbage").await, 403, "bad_jwt").await;
    // The anon key is a valid JWT without a subject.
    assert_error(app.get_auth("/user", &app.api_key("anon")).await, 403, "bad_jwt").await;
    // Expired token.
    let now = chrono::Utc::now().timestamp();
    let expired = app
        .state
        .sessions
        .tokens()
        .keys()
        .sign(&json!({"sub": session["user"]["id"], "exp": now - 10, "role": "authenticated"}))
        .unwrap();
    assert_error(app.get_auth("/user", &expired).await, 403, "bad_jwt").await;
    // Token for a user that no longer exists.
    let ghost = app
        .state
        .sessions
        .tokens()
        .keys()
        .sign(&json!({"sub": uuid::Uuid::new_v4(), "exp": now + 60}))
        .unwrap();
    assert_error(app.get_auth("/user", &ghost).await, 403, "user_not_found").await;
}

#[tokio::test]
async fn get_user_checks_the_token_audience_as_gotrue_does() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), "secret-pw").await;
    let token = session["access_token"].as_str().unwrap();
    let get_with_aud = |aud: &'static str| {
        app.request(reqwest::Method::GET, "/auth/v1/user")
            .bearer_auth(token)
            .header("x-jwt-aud", aud)
            .send()
    };
    // The header may name the token's own audience; an empty one is no header at all.
    assert_eq!(get_with_aud("authenticated").await.unwrap().status(), 200);
    assert_eq!(get_with_aud("").await.unwrap().status(), 200);
    let refused = assert_error(get_with_aud("other-audience").await.unwrap(), 400, "validation_failed").await;
    assert_eq!(refused["msg"], "Token audience doesn't match request audience");
    // A valid token of an existing user and session, but without an audience.
    let mut claims = jwt_payload(token);
    claims.as_object_mut().unwrap().remove("aud");
    let without_aud = app.state.sessions.tokens().keys().sign(&claims).unwrap();
    assert_error(app.get_auth("/user", &without_aud).await, 400, "validation_failed").await;
    // The user and session are checked before the audience, as in GoTrue.
    assert_eq!(app.post_json_auth("/logout", token, &json!({})).await.status(), 204);
    assert_error(get_with_aud("other-audience").await.unwrap(), 403, "session_not_found").await;
}

#[tokio::test]
async fn the_anon_key_is_ignored_on_public_endpoints() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let anon = app.api_key("anon");
    let response = app
        .request(reqwest::Method::POST, "/auth/v1/signup")
        .bearer_auth(&anon)
        .header("apikey", &anon)
        .json(&json!({"email": email, "password": "secret-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .request(reqwest::Method::POST, "/auth/v1/token?grant_type=password")
        .bearer_auth(&anon)
        .json(&json!({"email": email, "password": "secret-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn update_user_metadata_password_and_email() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, "secret-pw").await;
    let token = session["access_token"].as_str().unwrap();

    let user: Value = app
        .put_json_auth("/user", token, &json!({"data": {"a": 1, "b": 2}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["user_metadata"]["a"], 1);
    let user: Value = app
        .put_json_auth("/user", token, &json!({"data": {"b": null, "c": 3}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["user_metadata"]["a"], 1);
    assert!(user["user_metadata"].get("b").is_none());
    assert_eq!(user["user_metadata"]["c"], 3);

    assert_error(
        app.put_json_auth("/user", token, &json!({"app_metadata": {"role": "admin"}}))
            .await,
        403,
        "not_admin",
    )
    .await;
    assert_error(
        app.put_json_auth("/user", token, &json!({"password": "secret-pw"}))
            .await,
        422,
        "same_password",
    )
    .await;
    assert_error(
        app.put_json_auth("/user", token, &json!({"password": "123"})).await,
        422,
        "weak_password",
    )
    .await;

    // A password change keeps this session and ends the others.
    let other = app.sign_in(&email, "secret-pw").await.json::<Value>().await.unwrap();
    assert_eq!(
        app.put_json_auth("/user", token, &json!({"password": "new-secret"}))
            .await
            .status(),
        200
    );
    assert_error(app.sign_in(&email, "secret-pw").await, 400, "invalid_credentials").await;
    assert_eq!(app.sign_in(&email, "new-secret").await.status(), 200);
    assert_error(
        app.refresh(other["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_eq!(
        app.refresh(session["refresh_token"].as_str().unwrap()).await.status(),
        200
    );

    // Email change starts pending; a taken address is refused.
    let taken = random_email();
    app.sign_up(&taken, "secret-pw").await;
    assert_error(
        app.put_json_auth("/user", token, &json!({"email": taken})).await,
        422,
        "email_exists",
    )
    .await;
    let new_email = random_email();
    let user: Value = app
        .put_json_auth("/user", token, &json!({"email": new_email}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], email);
    assert_eq!(user["new_email"], new_email);
    assert!(user["email_change_sent_at"].is_string());

    let mut db = app.db().await;
    let actions: Vec<String> = sqlx::query_scalar("select payload->>'action' from _auth_audit_log order by created_at")
        .fetch_all(&mut db)
        .await
        .unwrap();
    for action in [
        "user_signedup",
        "login",
        "user_modified",
        "user_updated_password",
        "token_refreshed",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}
