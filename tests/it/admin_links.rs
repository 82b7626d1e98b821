//! `POST /invite` and `POST /admin/generate_link`: the tokens they issue verify through
//! `/verify`, and generate_link sends no mail.

use reqwest::Method;
use serde_json::{Value, json};

use crate::email::{fragment, location, mail_app};
use crate::helpers::{TestApp, assert_error, random_email};

async fn admin_post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    let key = app.api_key("service_role");
    app.request(Method::POST, path)
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn invite_mails_a_link_that_signs_the_user_in() {
    let (app, sink) = mail_app(&[]).await;
    let email = random_email();
    let response = admin_post(
        &app,
        "/auth/v1/invite",
        json!({"email": email, "data": {"team": "blue"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], email);
    assert!(user["invited_at"].is_string() && user["confirmation_sent_at"].is_string());
    assert_eq!(user["user_metadata"]["team"], "blue");

    let mail = sink.last_to(&email).await;
    let link = mail.link();
    assert!(link.contains("type=invite"), "{link}");
    let tokens = fragment(&location(&app.client.get(link).send().await.unwrap()));
    assert_eq!(tokens["type"], "invite");
    let me: Value = app
        .get_auth("/user", &tokens["access_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email);
    assert!(me["email_confirmed_at"].is_string());

    // A confirmed address cannot be invited again; non-admins cannot invite.
    assert_error(
        admin_post(&app, "/invite", json!({"email": email})).await,
        422,
        "email_exists",
    )
    .await;
    let anon = app.api_key("anon");
    let response = app
        .request(Method::POST, "/invite")
        .bearer_auth(&anon)
        .json(&json!({"email": random_email()}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "not_admin").await;
    let mut db = app.db().await;
    let invited: i64 =
        sqlx::query_scalar("select count(*) from _auth_audit_log where payload->>'action' = 'user_invited'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(invited, 1);
}

/// Every link type: no mail leaves, the flat response carries the user and the link, and the
/// hashed token verifies with `POST /verify`.
#[tokio::test]
async fn generate_link_for_every_type_verifies() {
    let (app, sink) = mail_app(&[]).await;
    let known = random_email();
    admin_post(
        &app,
        "/admin/users",
        json!({"email": known, "password": "secret-pw", "email_confirm": true}),
    )
    .await;

    let cases = [
        (
            "signup",
            random_email(),
            json!({"password": "secret-pw"}),
            "signup",
            "signup",
        ),
        ("invite", random_email(), json!({}), "invite", "invite"),
        ("magiclink", known.clone(), json!({}), "magiclink", "magiclink"),
        ("magiclink", random_email(), json!({}), "signup", "signup"),
        ("recovery", known.clone(), json!({}), "recovery", "recovery"),
    ];
    for (link_type, email, extra, expected_type, verify_type) in cases {
        let mut body = json!({"type": link_type, "email": email, "redirect_to": "http://localhost:3000/welcome"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let response = admin_post(&app, "/auth/v1/admin/generate_link", body).await;
        assert_eq!(response.status(), 200, "{link_type}");
        let link: Value = response.json().await.unwrap();
        assert_eq!(link["email"], email, "flat user fields");
        assert_eq!(link["verification_type"], expected_type);
        assert_eq!(link["redirect_to"], "http://localhost:3000/welcome");
        assert_eq!(link["email_otp"].as_str().unwrap().len(), 6);
        assert!(
            link["action_link"]
                .as_str()
                .unwrap()
                .contains(link["hashed_token"].as_str().unwrap())
        );
        let verified = app
            .post_json(
                "/verify",
                &json!({"type": verify_type, "token_hash": link["hashed_token"]}),
            )
            .await;
        let status = verified.status();
        let session: Value = verified.json().await.unwrap();
        assert_eq!(status, 200, "{link_type} verifies: {session}");
        assert_eq!(session["user"]["email"], email);
    }
    assert!(sink.messages().is_empty(), "generate_link sends no mail");
}

#[tokio::test]
async fn generate_link_for_email_changes() {
    let (app, _sink) = mail_app(&[]).await;
    for side in ["email_change_new", "email_change_current"] {
        let email = random_email();
        admin_post(
            &app,
            "/admin/users",
            json!({"email": email, "password": "secret-pw", "email_confirm": true}),
        )
        .await;
        let new_email = random_email();
        let response = admin_post(
            &app,
            "/admin/generate_link",
            json!({"type": side, "email": email, "new_email": new_email}),
        )
        .await;
        let link: Value = response.json().await.unwrap();
        assert_eq!(link["verification_type"], side);
        assert_eq!(link["new_email"], new_email);
        let verified = app
            .post_json(
                "/verify",
                &json!({"type": "email_change", "token_hash": link["hashed_token"]}),
            )
            .await;
        assert_eq!(verified.status(), 200, "{side}");
        let session: Value = verified.json().await.unwrap();
        assert_eq!(session["user"]["email"], new_email, "{side} applies the change");
        assert_eq!(app.sign_in(&new_email, "secret-pw").await.status(), 200);
    }
}

#[tokio::test]
async fn generate_link_errors() {
    let (app, _sink) = mail_app(&[]).await;
    let unknown = random_email();
    for link_type in ["recovery", "email_change_new", "email_change_current"] {
        let response = admin_post(
            &app,
            "/admin/generate_link",
            json!({"type": link_type, "email": unknown, "new_email": random_email()}),
        )
        .await;
        assert_error(response, 404, "user_not_found").await;
    }
    assert_error(
        admin_post(&app, "/admin/generate_link", json!({"type": "bogus", "email": unknown})).await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        admin_post(
            &app,
            "/admin/generate_link",
            json!({"type": "signup", "email": unknown}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let known = random_email();
    admin_post(
        &app,
        "/admin/users",
        json!({"email": known, "password": "secret-pw", "email_confirm": true}),
    )
    .await;
    assert_error(
        admin_post(
            &app,
            "/admin/generate_link",
            json!({"type": "signup", "email": known, "password": "secret-pw"}),
        )
        .await,
        422,
        "email_exists",
    )
    .await;
    let other = random_email();
    admin_post(
        &app,
        "/admin/users",
        json!({"email": other, "password": "secret-pw", "email_confirm": true}),
    )
    .await;
    assert_error(
        admin_post(
            &app,
            "/admin/generate_link",
            json!({"type": "email_change_new", "email": known, "new_email": other}),
        )
        .await,
        422,
        "email_exists",
    )
    .await;
    // An unlisted redirect_to falls back to the site URL.
    let link: Value = admin_post(
        &app,
        "/admin/generate_link",
        json!({"type": "recovery", "email": known, "redirect_to": "https://evil.example/x"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(link["redirect_to"], "http://localhost:3000");
    assert!(!link["action_link"].as_str().unwrap().contains("evil"));
}
