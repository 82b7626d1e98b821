//! Refresh-token rotation, reuse detection, concurrency and sign-out.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, expect_session, jwt_payload, random_email, refresh_token};

fn session_id(session: &Value) -> String {
    let claims = jwt_payload(session["access_token"].as_str().unwrap());
    claims["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session_id in {claims}"))
        .to_owned()
}

/// (live, revoked) refresh tokens in the database.
async fn token_counts(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "select count(*) filter (where not revoked), count(*) filter (where revoked) from _auth_refresh_tokens",
    )
    .fetch_one(&mut app.db().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn refresh_rotates_and_keeps_the_session() {
    let app = TestApp::spawn().await;
    let first = app.sign_up(&random_email(), "secret-pw").await;
    let second = app.refreshed(refresh_token(&first)).await;
    assert_ne!(refresh_token(&second), refresh_token(&first));
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(session_id(&second), session_id(&first));
    let claims = jwt_payload(second["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"][0]["method"], "password", "amr survives refresh");
    // The HeliosDB-style endpoint does the same: a session of the same chain.
    let response = app
        .post_json("/refresh", &json!({"refresh_token": refresh_token(&second)}))
        .await;
    let third = expect_session(response).await;
    assert_ne!(refresh_token(&third), refresh_token(&second));
    assert_eq!(session_id(&third), session_id(&first));
    // One chain: the two used tokens are revoked, only the newest is live, and it works.
    assert_eq!(token_counts(&app).await, (1, 2));
    app.refreshed(refresh_token(&third)).await;
}

#[tokio::test]
async fn refresh_errors() {
    let app = TestApp::spawn().await;
    assert_error(
        app.refresh("abcdefghijklmnopqrstuvwxyz234567").await,
        400,
        "refresh_token_not_found",
    )
    .await;
    let response = app.refresh("").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "refresh_token required"})
    );
    assert_error(app.refresh("!!").await, 400, "refresh_token_not_found").await;
}

#[tokio::test]
async fn reusing_the_parent_returns_the_current_token() {
    let app = TestApp::spawn_with(&[("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let first = app.sign_up(&random_email(), "secret-pw").await;
    let t0 = refresh_token(&first);
    let second = app.refreshed(t0).await;
    // The client lost the answer and retries with the parent: it gets the same current token.
    let again = app.refreshed(t0).await;
    assert_eq!(refresh_token(&again), refresh_token(&second));
    assert_eq!(session_id(&again), session_id(&first));
    // Rotating further, the grandparent is now reuse: refused, and the session is over.
    let third = app.refreshed(refresh_token(&second)).await;
    assert_error(app.refresh(t0).await, 400, "refresh_token_already_used").await;
    assert_error(
        app.refresh(third["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_error(
        app.get_auth("/user", third["access_token"].as_str().unwrap()).await,
        403,
        "session_not_found",
    )
    .await;
}

#[tokio::test]
async fn within_the_reuse_interval_older_tokens_get_the_current_one() {
    let app = TestApp::spawn_with(&[("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL", "10")]).await;
    let first = app.sign_up(&random_email(), "secret-pw").await;
    let t0 = refresh_token(&first);
    let t1 = app.refreshed(t0).await;
    let t2 = app.refreshed(refresh_token(&t1)).await;
    assert_ne!(refresh_token(&t2), refresh_token(&t1));
    let replay = app.refreshed(t0).await;
    assert_eq!(refresh_token(&replay), refresh_token(&t2));
    // The replay handed out the current token; it made no new one.
    assert_eq!(token_counts(&app).await, (1, 2));
}

#[tokio::test]
async fn rotation_disabled_refuses_reuse_without_ending_the_session() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL", "0"),
        ("GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED", "false"),
    ])
    .await;
    let first = app.sign_up(&random_email(), "secret-pw").await;
    let t0 = refresh_token(&first);
    let t1 = app.refreshed(t0).await;
    let t2 = app.refreshed(refresh_token(&t1)).await;
    assert_error(app.refresh(t0).await, 400, "refresh_token_already_used").await;
    app.refreshed(refresh_token(&t2)).await;
}

/// 50 simultaneous refreshes of one token never fork the session: every success carries the
/// same next token, exactly one token of the session is live, and it keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_keep_one_chain() {
    // 50 refreshes at once from one address are over GoTrue's bucket of 30 for /token.
    let app = TestApp::spawn_with(&[
        // A small pool: the refreshes serialise on one row lock anyway, and opening fifty
        // connections at once on a loaded machine can outlast the 5 s acquire timeout.
        ("GOTRUE_DB_MAX_POOL_SIZE", "8"),
        ("LATCHKEY_RATE_LIMIT_ENABLED", "false"),
        // The 50 run one after another on the session's row lock; on a loaded 2-core test
        // machine the last may wait longer than the default 10 s request limit.
        ("GOTRUE_API_MAX_REQUEST_DURATION", "60s"),
    ])
    .await;
    let first = app.sign_up(&random_email(), "secret-pw").await;
    let t0 = first["refresh_token"].as_str().unwrap().to_owned();
    let mut handles = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url("/auth/v1/token?grant_type=refresh_token");
        let token = t0.clone();
        handles.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut issued = std::collections::HashSet::new();
    let mut successes = 0;
    for handle in handles {
        let (status, body) = handle.await.unwrap();
        assert_eq!(status, 200, "status {status}: {body}");
        successes += 1;
        issued.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    eprintln!(
        "concurrent refresh: {successes}/50 succeeded, {} distinct next token(s)",
        issued.len()
    );
    assert_eq!(successes, 50);
    assert_eq!(issued.len(), 1, "one chain: {issued:?}");
    let mut db = app.db().await;
    let live: i64 = sqlx::query_scalar("select count(*) from _auth_refresh_tokens where revoked = false")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(live, 1);
    let next = issued.into_iter().next().unwrap();
    assert_eq!(app.refresh(&next).await.status(), 200);
}

#[tokio::test]
async fn logout_scopes() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let a = app.sign_up(&email, "secret-pw").await;
    let b = app.signed_in(&email, "secret-pw").await;
    let c = app.signed_in(&email, "secret-pw").await;
    let token = |s: &Value| s["access_token"].as_str().unwrap().to_owned();
    let refresh = |s: &Value| s["refresh_token"].as_str().unwrap().to_owned();

    assert_error(
        app.post_json_auth("/logout?scope=everything", &token(&a), &json!({}))
            .await,
        400,
        "validation_failed",
    )
    .await;

    // others: a stays, b and c end.
    let response = app
        .request(reqwest::Method::POST, "/auth/v1/logout?scope=others")
        .bearer_auth(token(&a))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_error(app.refresh(&refresh(&b)).await, 400, "refresh_token_not_found").await;
    assert_error(app.refresh(&refresh(&c)).await, 400, "refresh_token_not_found").await;
    let a2 = app.refreshed(&refresh(&a)).await;

    // local: only this session.
    let d = app.signed_in(&email, "secret-pw").await;
    let response = app
        .request(reqwest::Method::POST, "/logout?scope=local")
        .bearer_auth(token(&a2))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_error(app.get_auth("/user", &token(&a2)).await, 403, "session_not_found").await;
    assert_eq!(app.get_auth("/user", &token(&d)).await.status(), 200);

    // global (default): everything.
    let e = app.signed_in(&email, "secret-pw").await;
    let response = app
        .request(reqwest::Method::POST, "/logout")
        .bearer_auth(token(&d))
        .header("content-type", "application/json;charset=UTF-8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_error(app.refresh(&refresh(&e)).await, 400, "refresh_token_not_found").await;
    assert_error(app.get_auth("/user", &token(&e)).await, 403, "session_not_found").await;
    assert_error(
        app.request(reqwest::Method::POST, "/logout").send().await.unwrap(),
        401,
        "no_authorization",
    )
    .await;
}

#[tokio::test]
async fn logout_by_refresh_token_without_bearer() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let a = app.sign_up(&email, "secret-pw").await;
    let b = app.signed_in(&email, "secret-pw").await;
    let response = app
        .post_json("/logout", &json!({"refresh_token": a["refresh_token"]}))
        .await;
    assert_eq!(response.status(), 204);
    assert_error(
        app.refresh(a["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_eq!(
        app.refresh(b["refresh_token"].as_str().unwrap()).await.status(),
        200,
        "other sessions stay"
    );
}

/// When the database stops accepting connections requests fail fast with a 503, and the
/// server recovers by itself once it is back.
#[tokio::test]
async fn database_outage_gives_503_and_recovers() {
    let app = TestApp::spawn().await;
    let email = random_email();
    app.sign_up(&email, "secret-pw").await;
    app.set_database_up(false).await;
    let started = std::time::Instant::now();
    let response = app.sign_in(&email, "secret-pw").await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "fails fast");
    app.set_database_up(true).await;
    let mut recovered = false;
    for _ in 0..20 {
        if app.sign_in(&email, "secret-pw").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(recovered, "the server recovers without a restart");
}

/// Sign-in, refresh and `GET /user` read the user's identities in the same statement as the
/// rest (a JSON aggregate): they must come out exactly as the sign-up wrote them.
#[tokio::test]
async fn every_session_answer_carries_the_same_identities() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let signed_up = app.sign_up(&email, "secret-pw").await;
    let identities = signed_up["user"]["identities"].clone();
    assert_eq!(identities.as_array().unwrap().len(), 1);
    assert!(identities[0]["created_at"].is_string() && identities[0]["identity_data"]["email"] == email);

    let signed_in = app.signed_in(&email, "secret-pw").await;
    assert_eq!(signed_in["user"]["identities"], identities);
    assert_ne!(
        signed_in["user"]["last_sign_in_at"], signed_up["user"]["last_sign_in_at"],
        "a new session stamps last_sign_in_at"
    );
    let refreshed = app.refreshed(refresh_token(&signed_in)).await;
    assert_eq!(refreshed["user"]["identities"], identities);
    assert_eq!(
        refreshed["user"]["last_sign_in_at"],
        signed_in["user"]["last_sign_in_at"]
    );
    let response = app.get_auth("/user", refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["identities"], identities);
    assert_eq!(user, refreshed["user"]);

    // Each new session and each refresh is in the audit log, written with it.
    let mut db = app.db().await;
    let actions: Vec<String> = sqlx::query_scalar(
        "select payload ->> 'action' from auth._auth_audit_log where payload ->> 'actor_username' = $1 \
         order by 1",
    )
    .bind(&email)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(actions, ["login", "login", "token_refreshed", "user_signedup"]);
}
