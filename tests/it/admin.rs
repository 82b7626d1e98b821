//! The admin API with service_role keys.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, random_email};

pub(crate) async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let key = app.api_key("service_role");
    let mut request = app.request(method, path).bearer_auth(&key).header("apikey", &key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `GET /admin/audit?query=...` as the admin.
async fn audit(app: &TestApp, query: &str) -> Value {
    let response = admin(app, Method::GET, &format!("/admin/audit?query={query}"), None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn admin_routes_need_an_admin_token() {
    let app = TestApp::spawn().await;
    let user = app.sign_up(&random_email(), "secret-pw").await;
    for path in [
        "/admin/users",
        "/auth/v1/admin/users",
        "/admin/audit",
        "/admin/users/00000000-0000-0000-0000-000000000000",
    ] {
        assert_error(app.get(path).await, 401, "no_authorization").await;
        assert_error(app.get_auth(path, &app.api_key("anon")).await, 403, "not_admin").await;
        assert_error(
            app.get_auth(path, user["access_token"].as_str().unwrap()).await,
            403,
            "not_admin",
        )
        .await;
        assert_error(app.get_auth(path, "forged.token.here").await, 403, "bad_jwt").await;
    }
    // Another admin role from GOTRUE_JWT_ADMIN_ROLES works too (auth-js tests use this shape).
    let now = chrono::Utc::now().timestamp();
    let supabase_admin = app
        .state
        .sessions
        .tokens()
        .keys()
        .sign(&json!({"sub": "1234567890", "role": "supabase_admin", "exp": now + 60}))
        .unwrap();
    assert_eq!(app.get_auth("/admin/users", &supabase_admin).await.status(), 200);
    // A service key without `exp` (minted by hand or by older tooling) is accepted, as GoTrue
    // checks `exp` only when a token carries one.
    let without_exp = app
        .state
        .sessions
        .tokens()
        .keys()
        .sign(&json!({"role": "service_role"}))
        .unwrap();
    assert_eq!(app.get_auth("/admin/users", &without_exp).await.status(), 200);
}

#[tokio::test]
async fn create_get_update_delete() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let response = admin(
        &app,
        Method::POST,
        "/auth/v1/admin/users",
        Some(json!({"email": email, "password": "secret-pw", "email_confirm": true,
                    "user_metadata": {"name": "Grace"}, "app_metadata": {"plan": "pro"}})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["email"], email);
    assert!(user["email_confirmed_at"].is_string());
    assert_eq!(user["app_metadata"]["provider"], "email");
    assert_eq!(user["app_metadata"]["plan"], "pro");
    assert_eq!(user["user_metadata"]["name"], "Grace");
    assert_eq!(user["identities"][0]["provider"], "email");
    assert_error(
        admin(&app, Method::POST, "/admin/users", Some(json!({"email": email}))).await,
        422,
        "email_exists",
    )
    .await;
    assert_error(
        admin(&app, Method::POST, "/admin/users", Some(json!({"password": "x"}))).await,
        400,
        "validation_failed",
    )
    .await;

    let session: Value = app.sign_in(&email, "secret-pw").await.json().await.unwrap();
    let fetched: Value = admin(&app, Method::GET, &format!("/admin/users/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["id"], id);
    assert_error(
        admin(&app, Method::GET, "/admin/users/not-a-uuid", None).await,
        404,
        "validation_failed",
    )
    .await;
    assert_error(
        admin(
            &app,
            Method::GET,
            &format!("/admin/users/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await,
        404,
        "user_not_found",
    )
    .await;

    let updated: Value = admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"user_metadata": {"name": null, "team": "a"}, "app_metadata": {"plan": "free"}})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(updated["user_metadata"].get("name").is_none());
    assert_eq!(updated["user_metadata"]["team"], "a");
    assert_eq!(updated["app_metadata"]["plan"], "free");
    assert_eq!(
        app.refresh(session["refresh_token"].as_str().unwrap()).await.status(),
        200,
        "metadata changes keep sessions"
    );

    // A new password ends every session.
    let session: Value = app.sign_in(&email, "secret-pw").await.json().await.unwrap();
    assert_eq!(
        admin(
            &app,
            Method::PUT,
            &format!("/admin/users/{id}"),
            Some(json!({"password": "newer-secret"}))
        )
        .await
        .status(),
        200
    );
    assert_error(
        app.refresh(session["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_eq!(app.sign_in(&email, "newer-secret").await.status(), 200);

    // Ban ends sessions and blocks sign-in; `none` lifts it.
    let session: Value = app.sign_in(&email, "newer-secret").await.json().await.unwrap();
    let banned: Value = admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "24h"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(banned["banned_until"].is_string());
    assert_error(
        app.refresh(session["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_error(app.sign_in(&email, "newer-secret").await, 400, "user_banned").await;
    admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"ban_duration": "none"})),
    )
    .await;
    let session: Value = app.sign_in(&email, "newer-secret").await.json().await.unwrap();

    // Deleting ends everything.
    let response = admin(&app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    assert_error(
        app.refresh(session["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_error(
        admin(&app, Method::GET, &format!("/admin/users/{id}"), None).await,
        404,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn soft_delete_frees_the_email_and_keeps_the_row() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let session = app.sign_up(&email, "secret-pw").await;
    let id = session["user"]["id"].as_str().unwrap();
    let response = admin(
        &app,
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(json!({"should_soft_delete": true})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let user: Value = admin(&app, Method::GET, &format!("/admin/users/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(user["deleted_at"].is_string());
    assert_eq!(user["email"], "");
    assert_error(
        app.refresh(session["refresh_token"].as_str().unwrap()).await,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_error(app.sign_in(&email, "secret-pw").await, 400, "invalid_credentials").await;
    app.sign_up(&email, "secret-pw").await;
}

#[tokio::test]
async fn imported_password_hashes_and_custom_ids() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let id = uuid::Uuid::new_v4();
    let hash = bcrypt::hash_with_result("imported-pw", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let user: Value = admin(
        &app,
        Method::POST,
        "/admin/users",
        Some(json!({"id": id, "email": email, "password_hash": hash, "email_confirm": true, "role": "editor"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(user["id"], id.to_string());
    assert_eq!(user["role"], "editor");
    assert_eq!(app.sign_in(&email, "imported-pw").await.status(), 200);
    assert_error(
        admin(
            &app,
            Method::POST,
            "/admin/users",
            Some(json!({"email": random_email(), "password_hash": "md5:abc"})),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let phone_user: Value = admin(
        &app,
        Method::POST,
        "/admin/users",
        Some(json!({"phone": "+1 555 0100 123", "phone_confirm": true})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(phone_user["phone"], "15550100123");
    assert_eq!(phone_user["app_metadata"]["provider"], "phone");
}

#[tokio::test]
async fn audit_entries_name_the_actor_as_gotrue_does() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let account = json!({
        "email": email, "email_confirm": true, "password": "secret-pw",
        "phone": "+1 555 0100 124", "phone_confirm": true,
        "user_metadata": {"full_name": "Ada Lovelace"},
    });
    let created = admin(&app, Method::POST, "/admin/users", Some(account)).await;
    assert_eq!(created.status(), 200);
    assert_eq!(app.sign_in(&email, "secret-pw").await.status(), 200);
    let logins = audit(&app, "action:login").await;
    let payload = &logins[0]["payload"];
    // The phone wins over the email (GoTrue's NewAuditLogEntry), and `full_name` is copied.
    assert_eq!(payload["actor_username"], "15550100124", "{payload}");
    assert_eq!(payload["actor_name"], "Ada Lovelace", "{payload}");
    // Without a phone or a name: the email, and no actor_name at all.
    let plain = random_email();
    app.sign_up(&plain, "secret-pw").await;
    let signups = audit(&app, "action:user_signedup").await;
    let own = signups
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["payload"]["actor_username"] == plain.as_str())
        .unwrap_or_else(|| panic!("no sign-up entry for {plain} in {signups}"));
    assert!(own["payload"].get("actor_name").is_none(), "{own}");
}

#[tokio::test]
async fn list_users_with_gotrue_pagination_headers() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        app.sign_up(&format!("list-{i}-{}", random_email()), "secret-pw").await;
    }
    let response = admin(&app, Method::GET, "/auth/v1/admin/users?page=&per_page=", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-total-count"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["users"].as_array().unwrap().len(), 3);
    assert_eq!(body["aud"], "authenticated");
    assert_eq!(body["users"][0]["identities"].as_array().unwrap().len(), 1);

    let response = admin(&app, Method::GET, "/admin/users?page=2&per_page=1", None).await;
    assert_eq!(
        response.headers()["link"],
        "</admin/users?page=3&per_page=1>; rel=\"next\", </admin/users?page=3&per_page=1>; rel=\"last\""
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
    let filtered: Value = admin(&app, Method::GET, "/admin/users?filter=list-1-", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["users"].as_array().unwrap().len(), 1);
    let oldest: Value = admin(&app, Method::GET, "/admin/users?sort=created_at%20asc", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(oldest["users"][0]["email"].as_str().unwrap().starts_with("list-0-"));
    assert_error(
        admin(&app, Method::GET, "/admin/users?page=x", None).await,
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn audit_log_records_admin_changes() {
    let app = TestApp::spawn().await;
    let email = random_email();
    admin(
        &app,
        Method::POST,
        "/admin/users",
        Some(json!({"email": email, "password": "secret-pw"})),
    )
    .await;
    app.sign_up(&random_email(), "secret-pw").await;
    let response = admin(&app, Method::GET, "/admin/audit?query=author:service_role", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-total-count"));
    let entries: Value = response.json().await.unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["payload"]["action"], "user_signedup");
    assert_eq!(entries[0]["payload"]["traits"]["user_email"], email);
    assert_eq!(audit(&app, "action:login").await.as_array().unwrap().len(), 1);
    let accounts = audit(&app, "type:account&per_page=1").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_error(
        admin(&app, Method::GET, "/admin/audit?query=bogus", None).await,
        400,
        "validation_failed",
    )
    .await;
    // Secrets never land in the log.
    let mut db = app.db().await;
    let payloads: Vec<String> = sqlx::query_scalar("select payload::text from _auth_audit_log")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(
        payloads
            .iter()
            .all(|p| !p.contains("secret-pw") && !p.contains("$argon2"))
    );
}
