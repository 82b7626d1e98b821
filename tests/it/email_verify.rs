//! `/verify` input errors, and where links may redirect to.

use serde_json::json;
use url::Url;

use crate::email::{fragment, location, mail_app, query};
use crate::helpers::{assert_error, random_email};

#[tokio::test]
async fn redirects_only_to_the_site_or_the_allow_list() {
    let (app, sink) = mail_app(&[("GOTRUE_URI_ALLOW_LIST", "https://*.myapp.test/**,myapp://auth")]).await;
    for (redirect, expected) in [
        ("https://evil.example.com/steal", "http://localhost:3000"),
        (
            "https://preview.myapp.test/welcome?x=1",
            "https://preview.myapp.test/welcome?x=1",
        ),
        ("http://localhost:3000/account", "http://localhost:3000/account"),
        ("myapp://auth", "myapp://auth"),
    ] {
        let email = random_email();
        let response = app
            .request(reqwest::Method::POST, "/signup")
            .query(&[("redirect_to", redirect)])
            .json(&json!({"email": email, "password": "secret-pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let link = sink.last_to(&email).await.link();
        assert_eq!(query(&Url::parse(&link).unwrap())["redirect_to"], expected);
        // Even a link edited to carry another target cannot leave the allowed set.
        let mut tampered = Url::parse(&link).unwrap();
        let pairs: Vec<(String, String)> = tampered.query_pairs().into_owned().collect();
        tampered.query_pairs_mut().clear();
        for (key, value) in pairs {
            let value = if key == "redirect_to" {
                "https://evil.example.com/x".to_owned()
            } else {
                value
            };
            tampered.query_pairs_mut().append_pair(&key, &value);
        }
        let response = app.client.get(tampered).send().await.unwrap();
        let raw = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(!raw.contains("evil"), "{raw}");
        assert!(raw.starts_with("http://localhost:3000/#access_token="), "{raw}");
    }
    // The redirect_to header is honoured too, and errors go to the validated target.
    let response = app
        .request(reqwest::Method::GET, "/verify?token=nope&type=signup")
        .header("redirect_to", "https://a.myapp.test/cb")
        .send()
        .await
        .unwrap();
    let target = location(&response);
    assert!(
        target
            .as_str()
            .starts_with("https://a.myapp.test/cb#error=access_denied"),
        "{target}"
    );
}

#[tokio::test]
async fn verify_input_errors() {
    let (app, _sink) = mail_app(&[]).await;
    for (body, status, code) in [
        (json!({"token": "123456", "email": "a@b.co"}), 400, "validation_failed"),
        (json!({"type": "signup"}), 400, "validation_failed"),
        (
            json!({"type": "signup", "token": "1", "token_hash": "x"}),
            400,
            "validation_failed",
        ),
        (json!({"type": "signup", "token": "123456"}), 400, "validation_failed"),
        (
            json!({"type": "signup", "token": "123456", "email": "nope"}),
            422,
            "validation_failed",
        ),
        (json!({"type": "bogus", "token_hash": "x"}), 400, "validation_failed"),
        (json!({"type": "signup", "token_hash": "x"}), 403, "otp_expired"),
        // GoTrue looks for a phone code whether or not phone logins are on (`wire_compat`).
        (
            json!({"type": "sms", "token": "123456", "phone": "15550001"}),
            403,
            "otp_expired",
        ),
    ] {
        assert_error(app.post_json("/verify", &body).await, status, code).await;
    }
    assert_error(app.get("/verify?type=signup").await, 400, "validation_failed").await;
    assert_error(app.get("/verify?token=abc").await, 400, "validation_failed").await;
    let unknown = fragment(&location(&app.get("/verify?token=abc&type=nonsense").await));
    assert_eq!(unknown["error_code"], "validation_failed");
    assert_eq!(unknown["error"], "invalid_request");
}
