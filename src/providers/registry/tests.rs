use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::*;
use crate::config::ProviderConfig;

fn provider(redirect_uri: Option<&str>, url: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        client_ids: vec!["the-client".into(), "the-ios-client".into()],
        secret: Some(SecretString::from("the-secret")),
        redirect_uri: redirect_uri.map(|u| Url::parse(u).unwrap()),
        url: url.map(|u| Url::parse(u).unwrap()),
        skip_nonce_check: false,
    }
}

fn config(providers: &[(&str, ProviderConfig)]) -> ExternalConfig {
    ExternalConfig {
        providers: providers.iter().map(|(n, p)| (n.to_string(), p.clone())).collect(),
        ..ExternalConfig::default()
    }
}

fn build(config: ExternalConfig) -> Registry {
    Registry::new(&config, &Url::parse("https://auth.example.com/").unwrap()).unwrap()
}

#[test]
fn only_enabled_providers_are_registered() {
    let registry = build(config(&[
        ("github", provider(None, None)),
        ("twitter", provider(None, None)),
    ]));
    assert_eq!(
        registry.get("github").map(|p| p.name().to_owned()).as_deref(),
        Some("github")
    );
    // Disabled, unknown (Twitter's OAuth 1.0a), or not GoTrue's spelling: "Unsupported provider".
    for name in ["google", "twitter", "", "GitHub", "github "] {
        assert!(registry.get(name).is_none(), "{name:?}");
        assert!(!registry.is_enabled(name), "{name:?}");
    }
    assert!(build(ExternalConfig::default()).get("github").is_none());
}

#[test]
fn every_provider_is_registered_under_its_own_name() {
    let all: Vec<(&str, ProviderConfig)> = IMPLEMENTED
        .iter()
        .map(|i| (i.name, provider(None, Some("https://idp.example.com/realms/x"))))
        .collect();
    let registry = build(config(&all));
    for implemented in &IMPLEMENTED {
        let provider = registry.get(implemented.name).unwrap();
        assert_eq!(provider.name(), implemented.name);
        assert_eq!(
            provider.accepts_id_tokens(),
            implemented.id_tokens,
            "{}",
            implemented.name
        );
    }
    let github = registry.get("github").unwrap();
    assert_eq!(github.default_scopes(), ["user:email"]);
    assert_eq!(registry.get("google").unwrap().default_scopes(), ["email", "profile"]);
    assert!(registry.get("x").unwrap().requires_pkce());
    assert!(registry.get("facebook").unwrap().skips_nonce_check());
}

#[test]
fn the_redirect_uri_is_the_configured_one_or_our_callback() {
    let registry = build(config(&[
        ("github", provider(None, None)),
        ("google", provider(Some("https://app.example.com/auth/callback"), None)),
    ]));
    let github = registry.get("github").unwrap();
    assert_eq!(github.client().redirect_uri(), "https://auth.example.com/callback");
    assert_eq!(github.client().client_id(), "the-client");
    let google = registry.get("google").unwrap();
    assert_eq!(google.client().redirect_uri(), "https://app.example.com/auth/callback");
    assert_eq!(registry.custom().redirect_uri(), "https://auth.example.com/callback");
}

#[test]
fn settings_a_provider_cannot_do_without_stop_start_up() {
    let url = Url::parse("https://auth.example.com/").unwrap();
    let no_secret = ProviderConfig {
        secret: None,
        ..provider(None, None)
    };
    let err = Registry::new(&config(&[("github", no_secret.clone())]), &url).unwrap_err();
    assert!(
        matches!(err, RegistryError::Config(ref e) if e.var == "GOTRUE_EXTERNAL_GITHUB_SECRET"),
        "{err}"
    );
    // ID-token providers work without one (native apps only).
    let registry = Registry::new(&config(&[("apple", no_secret)]), &url).unwrap();
    assert!(registry.is_enabled("apple"));
    let err = Registry::new(&config(&[("keycloak", provider(None, None))]), &url).unwrap_err();
    assert!(
        matches!(err, RegistryError::Config(ref e) if e.var == "GOTRUE_EXTERNAL_KEYCLOAK_URL"),
        "{err}"
    );
}

#[tokio::test]
async fn the_authorize_url_carries_the_client_the_flow_and_the_scopes() {
    let registry = build(config(&[("github", provider(None, Some("https://git.example.com")))]));
    let github = registry.get("github").unwrap();
    let extra = [("login".to_owned(), "ada".to_owned())];
    let url = github
        .authorize_url("flow-id", "repo, gist", &extra, None)
        .await
        .unwrap();
    assert_eq!(url.origin().ascii_serialization(), "https://git.example.com");
    assert_eq!(url.path(), "/login/oauth/authorize");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "the-client");
    assert_eq!(query["redirect_uri"], "https://auth.example.com/callback");
    assert_eq!(query["state"], "flow-id");
    assert_eq!(query["scope"], "user:email repo gist");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["login"], "ada");
    assert!(!query.contains_key("code_challenge"));
    // The secret never travels in the browser.
    assert!(!url.as_str().contains("the-secret"));

    // PKCE towards the provider: the S256 challenge of the flow's verifier.
    let verifier = "a-verifier-of-the-flow-that-is-long-enough-for-rfc-7636";
    let url = github.authorize_url("flow-id", "", &[], Some(verifier)).await.unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    let s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(query["code_challenge"], s256);
}
