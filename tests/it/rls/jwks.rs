//! The RLS API with asymmetric tokens: from a key set given in code, and from a JWKS URL
//! fetched and cached (a counting fake here, the real server's endpoint in the first test).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use latchkey::rls::{DEFAULT_ROLES, Rls, RlsError};
use serde_json::Value;
use uuid::Uuid;

use super::{backend_pool, claims, insert_user};
use crate::helpers::TestApp;
use crate::signing_keys::{generated, key_set, verify_only};

#[tokio::test]
async fn tokens_of_an_asymmetric_server_open_transactions_through_its_jwks() {
    let es = generated(Algorithm::ES256);
    let app = TestApp::spawn_with(&[("GOTRUE_JWT_KEYS", &key_set(&[&es]))]).await;
    let (id, email) = (Uuid::new_v4(), "ada@example.com");
    insert_user(&app, id, email).await;
    let token = app
        .state
        .sessions
        .tokens()
        .keys()
        .sign(&claims(id, email, "authenticated", 60))
        .unwrap();
    let pool = backend_pool(&app, 2).await;

    let from_url = Rls::from_jwks_url(app.url("/auth/v1/.well-known/jwks.json"), DEFAULT_ROLES).unwrap();
    let set: JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let in_code = Rls::from_key_set(&set, DEFAULT_ROLES);
    for rls in [from_url, in_code] {
        let mut tx = rls.begin(&pool, &token).await.unwrap();
        let uid: Option<Uuid> = sqlx::query_scalar("select auth.uid()")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(uid, Some(id));
        drop(tx);
        // The secret does not verify an ES256 token, nor the key set an HS256 one.
        let hs256 = super::keys().sign(&claims(id, email, "authenticated", 60)).unwrap();
        assert!(matches!(rls.verify(&hs256).await, Err(RlsError::InvalidToken(_))));
    }
    assert!(matches!(
        super::rls().verify(&token).await,
        Err(RlsError::InvalidToken(_))
    ));
}

/// A JWKS endpoint serving `set`, counting its requests.
#[derive(Clone, Default)]
struct FakeJwks {
    set: Arc<Mutex<Value>>,
    requests: Arc<Mutex<usize>>,
}

impl FakeJwks {
    async fn start(set: Value) -> (FakeJwks, String) {
        let fake = FakeJwks {
            set: Arc::new(Mutex::new(set)),
            ..FakeJwks::default()
        };
        let serve = |State(fake): State<FakeJwks>| async move {
            *fake.requests.lock().unwrap() += 1;
            Json(fake.set.lock().unwrap().clone())
        };
        let router = axum::Router::new()
            .route("/jwks.json", get(serve))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (fake, url)
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

/// The published set of `keys` (public halves) and a token signed by the first one.
fn published(keys: &[&Value]) -> (Value, latchkey::auth::jwt::JwtKeys) {
    let keys = latchkey::auth::jwt::JwtKeys::from_settings(&latchkey::auth::jwt::KeySettings {
        secret: &super::JWT_SECRET.to_owned().into(),
        secret_kid: None,
        private_keys: Some(&key_set(keys).into()),
        valid_methods: None,
        secret_still_verifies: false,
    })
    .unwrap();
    (serde_json::to_value(keys.public_keys()).unwrap(), keys)
}

#[tokio::test]
async fn a_jwks_url_is_fetched_once_and_again_on_a_new_kid_at_most_once_a_minute() {
    let (first, second) = (generated(Algorithm::ES256), generated(Algorithm::RS256));
    let (set, signer) = published(&[&first]);
    let (fake, url) = FakeJwks::start(set).await;
    let rls = Rls::from_jwks_url(url, DEFAULT_ROLES).unwrap();
    let token = signer
        .sign(&claims(Uuid::new_v4(), "a@example.com", "authenticated", 60))
        .unwrap();
    assert_eq!(fake.requests(), 0, "nothing is fetched before a token arrives");
    for _ in 0..3 {
        assert_eq!(rls.verify(&token).await.unwrap().role(), "authenticated");
    }
    assert_eq!(fake.requests(), 1, "one fetch for many tokens");

    // The issuer rotates: a token names a key the cached set lacks, and the set is fetched
    // again, once.
    let (with_both, rotated_signer) = published(&[&second, &verify_only(first.clone())]);
    *fake.set.lock().unwrap() = with_both;
    let new_token = rotated_signer
        .sign(&claims(Uuid::new_v4(), "b@example.com", "authenticated", 60))
        .unwrap();
    assert!(rls.verify(&new_token).await.is_ok());
    assert!(rls.verify(&token).await.is_ok(), "the old key is still in the set");
    assert_eq!(fake.requests(), 2);

    // Tokens naming random keys within the same minute: no fetch at all.
    for n in 0..5 {
        let stranger = published(&[&generated(Algorithm::EdDSA)]).1;
        let forged = stranger
            .sign(&claims(Uuid::new_v4(), "c@example.com", "service_role", 60))
            .unwrap();
        assert!(
            matches!(rls.verify(&forged).await, Err(RlsError::InvalidToken(_))),
            "{n}"
        );
    }
    assert_eq!(fake.requests(), 2, "at most one refetch a minute");
}

#[tokio::test]
async fn an_unreachable_jwks_url_is_a_distinct_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let rls = Rls::from_jwks_url(url, DEFAULT_ROLES).unwrap();
    let (_, signer) = published(&[&generated(Algorithm::ES256)]);
    let token = signer
        .sign(&claims(Uuid::new_v4(), "a@example.com", "authenticated", 60))
        .unwrap();
    assert!(matches!(rls.verify(&token).await, Err(RlsError::KeysUnavailable(_))));
    // A malformed token is refused before any fetch.
    assert!(matches!(rls.verify("not.a.jwt").await, Err(RlsError::InvalidToken(_))));
}
