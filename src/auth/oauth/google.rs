//! Google through OpenID Connect discovery: `authorization_endpoint`, `token_endpoint` and
//! `jwks_uri` come from `<issuer>/.well-known/openid-configuration`. The issuer is
//! `https://accounts.google.com` unless `GOTRUE_EXTERNAL_GOOGLE_URL` names another (GoTrue
//! ignores that variable; Latchkey honours it for tests and self-hosted IdPs). The discovery
//! document and the key set are cached for an hour (see [`CACHE_FOR`]); an ID token naming a
//! key the cached set lacks fetches the set again, at most once a minute (see
//! [`REFETCH_AT_MOST_EVERY`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Endpoints, ProviderUser, get_json};
use crate::config::ProviderConfig;

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GOOGLE_USERINFO: &str = "https://www.googleapis.com/userinfo/v2/me";

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
}

fn issuer(config: &ProviderConfig) -> String {
    config
        .url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| GOOGLE_ISSUER.to_owned())
}

/// How long a discovery document or key set is used before it is fetched again. Google
/// publishes new signing keys well before it signs with them, and an ID token whose key is not
/// in the cached set fetches the set again, so an hour costs nothing in correctness and saves
/// two or three requests to Google per sign-in.
const CACHE_FOR: Duration = Duration::from_secs(3600);

/// The shortest time between two fetches of one key set caused by an unknown `kid`: tokens
/// naming random keys must not make every sign-in a request to Google. A real rotation is
/// picked up by the first token that names the new key, or a minute after a flood of bad ones.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// Provider metadata by URL: public, the same for every flow, so it may live in process
/// memory (unlike flow state, which is in Postgres). Failures are not cached.
struct Cache<T> {
    entries: LazyLock<Mutex<HashMap<String, Fetched<T>>>>,
}

/// A document and when it was fetched.
type Fetched<T> = (Instant, Arc<T>);

impl<T> Cache<T> {
    const fn new() -> Self {
        Cache {
            entries: LazyLock::new(Mutex::default),
        }
    }

    fn get(&self, url: &str) -> Option<Arc<T>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(url)
            .filter(|(fetched, _)| fetched.elapsed() < CACHE_FOR)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, url: &str, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (fetched, _)| fetched.elapsed() < CACHE_FOR);
        entries.insert(url.to_owned(), (Instant::now(), value.clone()));
        value
    }
}

static DISCOVERY: Cache<Discovery> = Cache::new();
static JWKS: Cache<JwkSet> = Cache::new();
static JWKS_REFETCHES: RefetchGate = RefetchGate::new();

/// When each key set was last fetched because of an unknown `kid`.
struct RefetchGate {
    last: LazyLock<Mutex<HashMap<String, Instant>>>,
}

impl RefetchGate {
    const fn new() -> Self {
        RefetchGate {
            last: LazyLock::new(Mutex::default),
        }
    }

    /// Whether `url` may be fetched again now; if so, the fetch is counted from `now`, before
    /// it starts, so that concurrent tokens with unknown keys cause one fetch, not one each
    /// (and a failing fetch is not retried at once either).
    fn try_claim(&self, url: &str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        last.retain(|_, at| now.saturating_duration_since(*at) < REFETCH_AT_MOST_EVERY);
        if last.contains_key(url) {
            return false;
        }
        last.insert(url.to_owned(), now);
        true
    }
}

async fn fetch<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, reqwest::Error> {
    http.get(url).send().await?.error_for_status()?.json().await
}

async fn discover(http: &reqwest::Client, config: &ProviderConfig) -> Result<Arc<Discovery>, reqwest::Error> {
    let url = format!("{}/.well-known/openid-configuration", issuer(config));
    match DISCOVERY.get(&url) {
        Some(discovery) => Ok(discovery),
        None => Ok(DISCOVERY.put(&url, fetch(http, &url).await?)),
    }
}

/// The key set, from the cache unless `fresh` is asked for (a token names a key it lacks).
async fn key_set(http: &reqwest::Client, url: &str, fresh: bool) -> Result<Arc<JwkSet>, reqwest::Error> {
    match JWKS.get(url).filter(|_| !fresh) {
        Some(keys) => Ok(keys),
        None => Ok(JWKS.put(url, fetch(http, url).await?)),
    }
}

pub(super) async fn endpoints(http: &reqwest::Client, config: &ProviderConfig) -> Result<Endpoints, reqwest::Error> {
    let discovery = discover(http, config).await?;
    Ok(Endpoints {
        authorize: discovery.authorization_endpoint.clone(),
        token: discovery.token_endpoint.clone(),
        default_scopes: &["email", "profile"],
    })
}

/// From the ID token when the token response has one (checked against the discovery JWKS,
/// `aud` = our client id), else from the userinfo endpoint.
pub(super) async fn user(
    http: &reqwest::Client,
    config: &ProviderConfig,
    access_token: &str,
    id_token: Option<&str>,
) -> Result<ProviderUser, String> {
    let discovery = discover(http, config).await.map_err(|e| e.to_string())?;
    let claims: Value = match id_token {
        Some(id_token) => {
            let kid = jsonwebtoken::decode_header(id_token)
                .map_err(|e| format!("id_token header: {e}"))?
                .kid;
            let mut jwks = key_set(http, &discovery.jwks_uri, false)
                .await
                .map_err(|e| e.to_string())?;
            if kid.as_deref().is_some_and(|kid| jwks.find(kid).is_none())
                && JWKS_REFETCHES.try_claim(&discovery.jwks_uri, Instant::now())
            {
                // Signed with a key newer than the cached set: Google rotated its keys.
                jwks = key_set(http, &discovery.jwks_uri, true)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            verify_id_token(id_token, kid.as_deref(), &jwks, &discovery.issuer, &config.client_id)?
        }
        None => {
            let url = discovery.userinfo_endpoint.as_deref().unwrap_or(GOOGLE_USERINFO);
            get_json(http, url, access_token).await.map_err(|e| e.to_string())?
        }
    };
    Ok(from_claims(&discovery.issuer, &claims))
}

/// `kid` is the token header's, read by the caller to pick the key set.
fn verify_id_token(
    token: &str,
    kid: Option<&str>,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
) -> Result<Value, String> {
    let jwk = match kid {
        Some(kid) => jwks.find(kid),
        None => jwks.keys.first(),
    }
    .ok_or("id_token signed with an unknown key")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWKS key: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client_id]);
    // Google writes its issuer both with and without the scheme.
    let bare = issuer.trim_start_matches("https://").to_owned();
    validation.set_issuer(&[issuer.to_owned(), bare]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("id_token: {e}"))
}

/// `email_verified` may be a boolean or the string "true"; userinfo v2 calls it `verified_email`.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn from_claims(issuer: &str, claims: &Value) -> ProviderUser {
    let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
    let subject = text("sub").or_else(|| text("id")).unwrap_or_default();
    let email = text("email").map(|e| e.to_lowercase());
    let email_verified =
        email.is_some() && (truthy(claims.get("email_verified")) || truthy(claims.get("verified_email")));
    let mut identity_data = json!({
        "iss": issuer,
        "sub": subject,
        "provider_id": subject,
        "name": text("name"),
        "full_name": text("name"),
        "picture": text("picture"),
        "avatar_url": text("picture"),
        "email": email,
        "email_verified": email_verified,
        "phone_verified": false,
    });
    if let Some(hd) = text("hd") {
        identity_data["custom_claims"] = json!({ "hd": hd });
    }
    ProviderUser {
        subject,
        email,
        email_verified,
        identity_data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_refetch_a_key_set_at_most_once_a_minute() {
        let gate = RefetchGate::new();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert!(gate.try_claim("https://a/certs", at(0)));
        for second in [0, 1, 30, 59] {
            assert!(!gate.try_claim("https://a/certs", at(second)), "{second} s");
        }
        // Each key set has its own minute.
        assert!(gate.try_claim("https://b/certs", at(30)));
        assert!(gate.try_claim("https://a/certs", at(60)));
        assert!(!gate.try_claim("https://b/certs", at(89)));
        assert!(gate.try_claim("https://b/certs", at(90)));
        assert!(!gate.try_claim("https://a/certs", at(119)));
        assert!(gate.try_claim("https://a/certs", at(120)));
    }

    #[test]
    fn verified_flags_come_in_several_spellings() {
        let user = from_claims("i", &json!({"sub": "1", "email": "A@x.io", "email_verified": "true"}));
        assert!(user.email_verified);
        assert_eq!(user.email.as_deref(), Some("a@x.io"));
        let user = from_claims(
            "i",
            &json!({"id": "2", "email": "a@x.io", "verified_email": true, "hd": "x.io"}),
        );
        assert!(user.email_verified);
        assert_eq!(user.subject, "2");
        assert_eq!(user.identity_data["custom_claims"]["hd"], "x.io");
        assert!(!from_claims("i", &json!({"sub": "3", "email": "a@x.io"})).email_verified);
    }
}
