//! Manual linking and unlinking of identities (supabase-js `linkIdentity` / `unlinkIdentity`).

use serde_json::{Value, json};

use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::{assert_error, random_email};
use crate::oauth::{location, spawn_with, user_of};

#[tokio::test]
async fn identities_link_and_unlink_under_gotrue_rules() {
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&google], &[("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true")]).await;
    let email = random_email();
    let session = app.sign_up(&email, "correct horse battery").await;
    let token = session["access_token"].as_str().unwrap();
    // Another address at Google: this is manual linking, not linking by email.
    google.set_user(FakeUser::new(&random_email(), true));
    let response = app
        .request(
            reqwest::Method::GET,
            "/user/identities/authorize?provider=google&skip_http_redirect=true",
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let provider_url = response.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = location(&app.client.get(&provider_url).send().await.unwrap(), 302);
    let end = location(&app.client.get(&callback).send().await.unwrap(), 302);
    assert!(end.contains("#access_token="), "{end}");
    let user = user_of(&app, token).await;
    assert_eq!(user["email"], email.as_str());

    // The same Google account cannot be linked to a second user.
    let other = app.sign_up(&random_email(), "correct horse battery").await;
    let response = app
        .request(reqwest::Method::GET, "/user/identities/authorize?provider=google")
        .bearer_auth(other["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = location(&app.client.get(location(&response, 302)).send().await.unwrap(), 302);
    let end = location(&app.client.get(&callback).send().await.unwrap(), 302);
    assert!(end.contains("error_code=identity_already_exists"), "{end}");

    let id_of = |provider: &str| {
        user["identities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["provider"] == provider)
            .unwrap()["identity_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let delete = |id: String| {
        app.request(reqwest::Method::DELETE, &format!("/user/identities/{id}"))
            .bearer_auth(token)
            .send()
    };

    assert_error(
        delete(uuid::Uuid::new_v4().to_string()).await.unwrap(),
        422,
        "identity_not_found",
    )
    .await;
    let response = delete(id_of("google")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    assert_error(
        delete(id_of("email")).await.unwrap(),
        422,
        "single_identity_not_deletable",
    )
    .await;
    assert_eq!(
        user_of(&app, token).await["app_metadata"]["providers"],
        json!(["email"])
    );

    let locked = spawn_with(&[&google], &[]).await;
    let session = locked.sign_up(&random_email(), "correct horse battery").await;
    let response = locked
        .request(
            reqwest::Method::DELETE,
            &format!("/user/identities/{}", uuid::Uuid::new_v4()),
        )
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "manual_linking_disabled").await;
    let response = locked
        .request(reqwest::Method::GET, "/user/identities/authorize?provider=google")
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "manual_linking_disabled").await;
}
