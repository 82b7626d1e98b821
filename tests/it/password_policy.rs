//! One password policy (`GOTRUE_PASSWORD_MIN_LENGTH`, `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`)
//! on every path that sets a password: sign-up, `PUT /user`, admin create and update, and a
//! `generate_link` sign-up. GoTrue's `adminUserCreate` checks it too ("matching
//! adminUserUpdate"); Latchkey's admin create used to skip it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email};

/// At least 10 characters, with a lower-case letter and a digit.
const POLICY: &[(&str, &str)] = &[
    ("GOTRUE_PASSWORD_MIN_LENGTH", "10"),
    (
        "GOTRUE_PASSWORD_REQUIRED_CHARACTERS",
        "abcdefghijklmnopqrstuvwxyz:0123456789",
    ),
];
const STRONG: &str = "long-enough-1";
/// Long enough, but without a digit.
const NO_DIGIT: &str = "long-enough-password";
/// A digit and a letter, but short.
const SHORT: &str = "short1";

async fn assert_weak(response: reqwest::Response, reasons: Value) {
    let body = assert_error(response, 422, "weak_password").await;
    assert_eq!(body["weak_password"]["reasons"], reasons, "{body}");
}

#[tokio::test]
async fn admin_create_enforces_the_policy_like_gotrue() {
    let app = TestApp::spawn_with(POLICY).await;
    let email = random_email();
    for (weak, reasons) in [(NO_DIGIT, json!(["characters"])), (SHORT, json!(["length"]))] {
        let body = json!({"email": email, "password": weak, "email_confirm": true});
        assert_weak(admin(&app, Method::POST, "/admin/users", Some(body)).await, reasons).await;
    }
    // Nothing was created: the address is still free, and the strong password works.
    let body = json!({"email": email, "password": STRONG, "email_confirm": true});
    let created = admin(&app, Method::POST, "/admin/users", Some(body)).await;
    assert_eq!(created.status(), 200);
    assert_eq!(app.sign_in(&email, STRONG).await.status(), 200);
    // An imported hash is not a password the server sees: no policy to apply.
    let hash = bcrypt::hash_with_result("x", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let body = json!({"email": random_email(), "password_hash": hash});
    assert_eq!(
        admin(&app, Method::POST, "/admin/users", Some(body)).await.status(),
        200
    );
}

#[tokio::test]
async fn every_path_that_sets_a_password_gives_the_same_answer() {
    let app = TestApp::spawn_with(POLICY).await;
    let reasons = json!(["characters"]);

    let signup = json!({"email": random_email(), "password": NO_DIGIT});
    assert_weak(app.post_json("/signup", &signup).await, reasons.clone()).await;

    let session = app.sign_up(&random_email(), STRONG).await;
    let token = session["access_token"].as_str().unwrap();
    let change = json!({"password": NO_DIGIT});
    assert_weak(app.put_json_auth("/user", token, &change).await, reasons.clone()).await;

    let create = json!({"email": random_email(), "password": NO_DIGIT});
    assert_weak(
        admin(&app, Method::POST, "/admin/users", Some(create)).await,
        reasons.clone(),
    )
    .await;

    let path = format!("/admin/users/{}", session["user"]["id"].as_str().unwrap());
    let update = json!({"password": NO_DIGIT});
    assert_weak(admin(&app, Method::PUT, &path, Some(update)).await, reasons.clone()).await;

    let link = json!({"type": "signup", "email": random_email(), "password": NO_DIGIT});
    assert_weak(
        admin(&app, Method::POST, "/admin/generate_link", Some(link)).await,
        reasons,
    )
    .await;

    // The message is the same everywhere too; the strong password passes everywhere.
    let create = json!({"email": random_email(), "password": SHORT});
    let body = assert_error(
        admin(&app, Method::POST, "/admin/users", Some(create)).await,
        422,
        "weak_password",
    )
    .await;
    assert_eq!(body["msg"], "Password should be at least 10 characters.");
    let update = json!({"password": STRONG.to_owned() + "2"});
    assert_eq!(admin(&app, Method::PUT, &path, Some(update)).await.status(), 200);
    let link = json!({"type": "signup", "email": random_email(), "password": STRONG});
    assert_eq!(
        admin(&app, Method::POST, "/admin/generate_link", Some(link))
            .await
            .status(),
        200
    );
}
