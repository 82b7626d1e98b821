//! Small holes of issue #14: wildcards in the admin list filter, and CORS with credentials.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::admin;
use crate::helpers::{TestApp, random_email};

/// The `full_name`s of the users `filter` lists, and the `X-Total-Count`.
async fn listed(app: &TestApp, filter: &str) -> (Vec<String>, String) {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", filter)
        .finish();
    let response = admin(app, Method::GET, &format!("/admin/users?{query}"), None).await;
    assert_eq!(response.status(), 200);
    let total = response.headers()["x-total-count"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let mut names: Vec<String> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_metadata"]["full_name"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    (names, total)
}

#[tokio::test]
async fn admin_filter_matches_percent_underscore_and_backslash_literally() {
    let app = TestApp::spawn().await;
    for name in ["100% real", "snake_case", r"back\slash", "Plain Name"] {
        let user = json!({"email": random_email(), "user_metadata": {"full_name": name}});
        assert_eq!(
            admin(&app, Method::POST, "/admin/users", Some(user)).await.status(),
            200
        );
    }
    // Without escaping, `%` would list everyone and `_` would match any character.
    assert_eq!(listed(&app, "%").await, (vec!["100% real".to_owned()], "1".to_owned()));
    assert_eq!(listed(&app, "_").await, (vec!["snake_case".to_owned()], "1".to_owned()));
    assert_eq!(
        listed(&app, r"\").await,
        (vec![r"back\slash".to_owned()], "1".to_owned())
    );
    assert_eq!(listed(&app, "0%_").await.1, "0");
    // An ordinary filter is still a case-insensitive substring of the name or the email.
    assert_eq!(listed(&app, "plain n").await.0, ["Plain Name"]);
    assert_eq!(listed(&app, "@EXAMPLE.com").await.1, "4");
}

#[tokio::test]
async fn cors_never_pairs_an_origin_with_credentials() {
    let app = TestApp::spawn().await;
    let evil = "https://evil.example";
    let preflight = app
        .request(Method::OPTIONS, "/auth/v1/user")
        .header("Origin", evil)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization, apikey")
        .send()
        .await
        .unwrap();
    let session = app.sign_up(&random_email(), "secret-pw").await;
    let actual = app
        .request(Method::GET, "/auth/v1/user")
        .header("Origin", evil)
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 200);
    for response in [&preflight, &actual] {
        let headers = response.headers();
        // Any origin may read the answer (supabase-js from any site), but without credentials:
        // no reflected origin, and no Access-Control-Allow-Credentials.
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(headers.get("access-control-allow-credentials").is_none(), "{headers:?}");
    }
}
