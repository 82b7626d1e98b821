//! Google's key set is fetched again for an ID token that names an unknown `kid`, but at most
//! once a minute: a flood of tokens with random kids does not become a flood of requests to
//! Google. (The minute itself is unit-tested in `providers::oidc::cache` with chosen instants.)

use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::{assert_error, random_email};
use crate::oauth::{pairs, sign_in, spawn_with};

#[tokio::test]
async fn tokens_with_unknown_kids_refetch_the_keys_once_a_minute() {
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&google], &[]).await;
    google.set_user(FakeUser::new(&random_email(), true));
    let signed_in = |end: url::Url| pairs(end.fragment()).contains_key("access_token");
    assert!(signed_in(sign_in(&app, "provider=google").await));
    assert_eq!(google.metadata_requests(), (1, 1));

    // Ten tokens naming keys nobody published: one fetch again, then none.
    for i in 0..10 {
        google.sign_with_unpublished_kid(&format!("random-kid-{i}"));
        let end = sign_in(&app, "provider=google").await;
        assert!(!signed_in(end.clone()), "{end}");
    }
    assert_eq!(google.metadata_requests(), (1, 2));
}

/// A discovery document must describe the issuer it was fetched for (OIDC Discovery 4.3, as
/// go-oidc and so GoTrue check): one naming another issuer is refused, and not cached.
#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let google = FakeProvider::google().await;
    let app = spawn_with(&[&google], &[]).await;
    google.set_user(FakeUser::new(&random_email(), true));
    google.announce_issuer("https://accounts.google.com");
    let body = assert_error(app.get("/authorize?provider=google").await, 500, "unexpected_failure").await;
    assert_eq!(body["msg"], "Unable to read the provider's OpenID configuration");
    assert_eq!(google.metadata_requests(), (1, 0));

    google.announce_issuer(&google.url);
    let end = sign_in(&app, "provider=google").await;
    assert!(pairs(end.fragment()).contains_key("access_token"), "{end}");
    assert_eq!(google.metadata_requests(), (2, 1));
}
