//! The HTTP transport against a real local server: signatures, GoTrue's status rules, the
//! deadline, the retries and the size limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::*;
use crate::error::Kind;

const SECRET_A: &str = "dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IG9mIDMyIGJ5dGVz";
const SECRET_B: &str = "YW5vdGhlciB0ZXN0IHNlY3JldCBvZiAzMiBieXRlcyE=";

fn fast() -> HttpLimits {
    HttpLimits {
        deadline: Duration::from_secs(2),
        attempts: 3,
        backoff: Duration::from_millis(20),
        max_response_bytes: 1024,
    }
}

/// Serves `answer` (given the attempt number, from 1) on `/hook`; returns the URL and the
/// attempt counter.
async fn serve<F>(answer: F) -> (Url, Arc<AtomicU32>)
where
    F: Fn(u32, HeaderMap, axum::body::Bytes) -> Response + Clone + Send + Sync + 'static,
{
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let answer = answer.clone();
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move { answer(n, headers, body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Url::parse(&format!("http://{addr}/hook")).unwrap(), count)
}

fn hook(url: Url, limits: HttpLimits) -> HttpHook {
    let secrets = [SecretString::from(SECRET_A), SecretString::from(SECRET_B)];
    HttpHook::new(url, &secrets, limits).unwrap()
}

fn json_answer(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}

#[tokio::test]
async fn signed_with_every_secret_so_either_verifies() {
    let (url, _) = serve(|_, headers, body| {
        // A receiver that knows only one of the two secrets (a rotation in progress).
        for secret in [SECRET_A, SECRET_B] {
            let receiver = Webhook::new(secret).unwrap();
            if receiver.verify(&body, &headers).is_err() {
                return StatusCode::UNAUTHORIZED.into_response();
            }
        }
        let wrong = Webhook::new("d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=").unwrap();
        assert!(wrong.verify(&body, &headers).is_err());
        json_answer(json!({"echo": serde_json::from_slice::<Value>(&body).unwrap()}))
    })
    .await;
    let output = hook(url, fast()).call(&json!({"user_id": "u1"})).await.unwrap();
    assert_eq!(output["echo"]["user_id"], "u1");
}

#[tokio::test]
async fn unreachable_hooks_are_tried_three_times_then_fail_with_422() {
    // Bind and drop a listener: nothing answers on that port.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = Url::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap();
    let err = hook(url, fast()).call(&json!({})).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (Kind::Unprocessable, ErrorCode::HookTimeoutAfterRetry)
    );
}

// The slow receiver runs on a thread of its own: one blocking a worker of the test's runtime
// could hold the client's task (Tokio does not steal a worker's LIFO slot) and make the
// deadline look late.
#[tokio::test]
async fn a_slow_hook_hits_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
    std::thread::spawn(move || {
        // Accepts the call and says nothing for longer than the deadline.
        if let Ok((connection, _)) = listener.accept() {
            std::thread::sleep(Duration::from_millis(600));
            drop(connection);
        }
    });
    let limits = HttpLimits {
        deadline: Duration::from_millis(200),
        ..fast()
    };
    let started = std::time::Instant::now();
    let err = hook(url, limits).call(&json!({})).await.unwrap_err();
    assert_eq!((err.kind(), err.code()), (Kind::Unprocessable, ErrorCode::HookTimeout));
    assert!(
        started.elapsed() < Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn busy_answers_with_retry_after_are_retried() {
    let (url, count) = serve(|n, _, _| {
        if n < 3 {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")]).into_response()
        } else {
            json_answer(json!({"ok": true}))
        }
    })
    .await;
    let output = hook(url, fast()).call(&json!({})).await.unwrap();
    assert_eq!((output["ok"].as_bool(), count.load(Ordering::SeqCst)), (Some(true), 3));

    // Without Retry-After: no retry, GoTrue's 500.
    let (url, count) = serve(|_, _, _| StatusCode::TOO_MANY_REQUESTS.into_response()).await;
    let err = hook(url, fast()).call(&json!({})).await.unwrap_err();
    assert_eq!((err.kind(), count.load(Ordering::SeqCst)), (Kind::Internal, 1));
    assert_eq!(err.message(), "Service currently unavailable due to hook");
}

#[tokio::test]
async fn answers_are_checked() {
    type Expected = Result<Value, (Kind, &'static str)>;
    let cases: Vec<(Response, Expected)> = vec![
        (StatusCode::NO_CONTENT.into_response(), Ok(Value::Null)),
        (
            (
                StatusCode::OK,
                [("content-type", "application/json; charset=utf-8")],
                "{\"a\":1}",
            )
                .into_response(),
            Ok(json!({"a": 1})),
        ),
        (
            (StatusCode::OK, [("content-type", "text/plain")], "{}").into_response(),
            Err((Kind::BadRequest, "hook_payload_invalid_content_type")),
        ),
        (
            (StatusCode::OK, [("content-type", "application/json")], "x".repeat(2000)).into_response(),
            Err((Kind::Unprocessable, "hook_payload_over_size_limit")),
        ),
        (
            (StatusCode::OK, [("content-type", "application/json")], "{not json").into_response(),
            Err((Kind::Internal, "unexpected_failure")),
        ),
        (
            StatusCode::BAD_REQUEST.into_response(),
            Err((Kind::Internal, "unexpected_failure")),
        ),
        (
            StatusCode::UNAUTHORIZED.into_response(),
            Err((Kind::Internal, "unexpected_failure")),
        ),
        // A redirect is not followed: the signed body goes nowhere else.
        (
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", "http://127.0.0.1:1/elsewhere")],
            )
                .into_response(),
            Err((Kind::Internal, "unexpected_failure")),
        ),
    ];
    for (answer, expected) in cases {
        let answer = Arc::new(std::sync::Mutex::new(Some(answer)));
        let (url, _) = serve(move |_, _, _| answer.lock().unwrap().take().unwrap()).await;
        let got = hook(url, fast())
            .call(&json!({}))
            .await
            .map_err(|err| (err.kind(), err.code().as_str()));
        assert_eq!(got, expected);
    }
}
