//! Auth hooks (issue #18) through the real server: a `pg-functions://` hook in the test
//! database and an HTTP receiver on a local port that checks the Standard Webhooks signature
//! with the specification authors' crate.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod after_user_created;
mod attempts;
mod before_user_created;
mod custom_claims;
mod latency;
mod send_email;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// The webhook secret of the tests (`v1,whsec_` + base64 of 32 bytes).
pub const WEBHOOK_SECRET: &str = "v1,whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IG9mIDMyIGJ5dGVz";

/// A hook endpoint on a local port: each call's signature is verified with the
/// `standardwebhooks` crate (the specification's reference Rust implementation) before
/// `answer` sees the input; unsigned or badly signed calls get a 401, as a real receiver
/// would answer. Every verified input is kept.
pub struct Receiver {
    pub url: String,
    pub inputs: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub async fn start<F>(answer: F) -> Receiver
    where
        F: Fn(&Value) -> Response + Clone + Send + Sync + 'static,
    {
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let kept = inputs.clone();
        let verifier = Arc::new(standardwebhooks::Webhook::new(WEBHOOK_SECRET.trim_start_matches("v1,")).unwrap());
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (answer, kept, verifier) = (answer.clone(), kept.clone(), verifier.clone());
                async move {
                    if verifier.verify(&body, &headers).is_err() {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let input: Value = serde_json::from_slice(&body).unwrap();
                    let response = answer(&input);
                    kept.lock().unwrap().push(input);
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inputs }
    }
}

/// The JSON body of a 200 answer (the body is shown when the status is another).
pub async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}
