//! The notes example (`examples/notes-api/app.rs`) over real HTTP, against the real policies.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

use super::notes_app::{self, NotesState};
use super::{api_key, backend_pool, bad_tokens, rls, user_token};
use crate::helpers::TestApp;

/// Latchkey (for its migrations) plus the notes service on its own port, one fresh database.
pub(super) struct Notes {
    pub app: TestApp,
    url: String,
    client: reqwest::Client,
}

impl Notes {
    pub async fn spawn() -> Notes {
        let app = TestApp::spawn().await;
        let pool = backend_pool(&app, 5).await;
        notes_app::create_schema(&pool).await.unwrap();
        // Idempotent: a second start (or replica) finds everything in place.
        notes_app::create_schema(&pool).await.unwrap();
        let router = notes_app::router(NotesState { pool, rls: rls() });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Notes {
            app,
            url,
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn list(&self, token: Option<&str>) -> Vec<Value> {
        let response = self.call(Method::GET, "/notes", token, None).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn create(&self, token: &str, body: &str) -> Value {
        let response = self
            .call(Method::POST, "/notes", Some(token), Some(json!({ "body": body })))
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }
}

fn bodies(notes: &[Value]) -> Vec<&str> {
    notes.iter().map(|n| n["body"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn users_see_and_change_only_their_own_notes() {
    let notes = Notes::spawn().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alice_token = user_token(alice, "alice@example.com");
    let bob_token = user_token(bob, "bob@example.com");

    let a1 = notes.create(&alice_token, "alice 1").await;
    notes.create(&alice_token, "alice 2").await;
    let b1 = notes.create(&bob_token, "bob 1").await;
    // The owner comes from the token, not from the client.
    assert_eq!(a1["owner"], alice.to_string());
    assert_eq!(b1["owner"], bob.to_string());

    let alices = notes.list(Some(&alice_token)).await;
    assert_eq!(bodies(&alices), ["alice 1", "alice 2"]);
    assert!(alices.iter().all(|n| n["owner"] == alice.to_string()));
    assert_eq!(bodies(&notes.list(Some(&bob_token)).await), ["bob 1"]);

    // Bob can neither change nor delete Alice's note: under the policy it does not exist.
    let a1_path = format!("/notes/{}", a1["id"].as_str().unwrap());
    let edit = Some(json!({ "body": "bob was here" }));
    let response = notes
        .call(Method::PATCH, &a1_path, Some(&bob_token), edit.clone())
        .await;
    assert_eq!(response.status(), 404);
    let response = notes.call(Method::DELETE, &a1_path, Some(&bob_token), None).await;
    assert_eq!(response.status(), 404);
    assert_eq!(bodies(&notes.list(Some(&alice_token)).await), ["alice 1", "alice 2"]);

    // Alice can.
    let response = notes
        .call(
            Method::PATCH,
            &a1_path,
            Some(&alice_token),
            Some(json!({ "body": "alice 1b" })),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(
        (updated["body"].as_str(), &updated["owner"]),
        (Some("alice 1b"), &json!(alice.to_string()))
    );
    let response = notes.call(Method::DELETE, &a1_path, Some(&alice_token), None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(bodies(&notes.list(Some(&alice_token)).await), ["alice 2"]);
    assert_eq!(bodies(&notes.list(Some(&bob_token)).await), ["bob 1"]);

    // Anonymous callers (no header, or the anon API key) see nothing and write nothing.
    assert!(notes.list(None).await.is_empty());
    let anon_key = api_key("anon");
    assert!(notes.list(Some(&anon_key)).await.is_empty());
    for token in [None, Some(anon_key.as_str())] {
        let response = notes
            .call(Method::POST, "/notes", token, Some(json!({ "body": "spam" })))
            .await;
        assert_eq!(response.status(), 403, "anon insert");
    }

    // The service key bypasses RLS and sees everyone's notes.
    let all = notes.list(Some(&api_key("service_role"))).await;
    assert_eq!(bodies(&all), ["alice 2", "bob 1"]);
}

#[tokio::test]
async fn the_example_refuses_bad_tokens_and_bad_input() {
    let notes = Notes::spawn().await;
    let owner = Uuid::new_v4();
    let token = user_token(owner, "carol@example.com");
    notes.create(&token, "carol's secret").await;

    for (what, bad) in bad_tokens(owner) {
        let expected = if what == "role postgres" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        let response = notes.call(Method::GET, "/notes", Some(&bad), None).await;
        assert_eq!(response.status(), expected, "{what}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].is_string(), "{what}: {body}");
        let response = notes
            .call(Method::POST, "/notes", Some(&bad), Some(json!({ "body": "x" })))
            .await;
        assert_eq!(response.status(), expected, "{what} insert");
    }
    // An Authorization header that is not a bearer token is refused, not treated as anon.
    let response = notes
        .client
        .get(format!("{}/notes", notes.url))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = notes
        .call(Method::POST, "/notes", Some(&token), Some(json!({ "text": "x" })))
        .await;
    assert_eq!(response.status(), 400);
    let response = notes
        .call(Method::POST, "/notes", Some(&token), Some(json!({ "body": "" })))
        .await;
    assert_eq!(response.status(), 400);
    let response = notes
        .call(
            Method::PATCH,
            "/notes/not-a-uuid",
            Some(&token),
            Some(json!({ "body": "x" })),
        )
        .await;
    assert_eq!(response.status(), 404);
    let response = notes
        .call(
            Method::DELETE,
            &format!("/notes/{}", Uuid::new_v4()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
    // None of that changed anything.
    assert_eq!(bodies(&notes.list(Some(&token)).await), ["carol's secret"]);
}
