//! Local fakes of GitHub and Google (OIDC) on 127.0.0.1:0, reached over real sockets. The
//! authorize page approves at once and redirects back with a code; the token endpoint checks
//! the client's credentials and redirect URI; Google's ID token is RS256-signed with the
//! test-only key in `fixtures/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

pub const CLIENT_ID: &str = "latchkey-test-client";
pub const CLIENT_SECRET: &str = "latchkey-test-secret";
const KEY_PEM: &str = include_str!("fixtures/google_test_key.pem");
const JWKS: &str = include_str!("fixtures/google_test_jwks.json");

/// The account the fake provider says is signing in.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub id: String,
    pub email: String,
    pub verified: bool,
    pub name: String,
}

impl FakeUser {
    pub fn new(email: &str, verified: bool) -> FakeUser {
        FakeUser {
            id: (Uuid::new_v4().as_u128() % 1_000_000_000).to_string(),
            email: email.to_owned(),
            verified,
            name: "Ada Lovelace".into(),
        }
    }
}

#[derive(Default)]
struct Inner {
    user: Option<FakeUser>,
    /// The next authorize request answers `error=<this>` instead of a code.
    deny: Option<String>,
    /// Google: leave the ID token out, so the userinfo endpoint is used.
    no_id_token: bool,
    codes: HashMap<String, (FakeUser, String)>,
    tokens: HashMap<String, FakeUser>,
    last_authorize: Vec<(String, String)>,
    /// Google: the `kid` of the signing key, in ID tokens and the JWKS (after `rotate_key`).
    kid: Option<String>,
    /// Google: ID tokens name this `kid` instead, which the JWKS does not publish.
    unpublished_kid: Option<String>,
    /// Google: the issuer the discovery document names, when not the fake's own URL.
    announced_issuer: Option<String>,
    /// Google: how often the discovery document and the JWKS were fetched.
    discovery_requests: usize,
    jwks_requests: usize,
}

/// The name of the fixture key in the JWKS until `rotate_key`.
pub const FIRST_KID: &str = "test-key-1";

#[derive(Clone)]
pub struct FakeProvider {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    github: bool,
}

impl FakeProvider {
    pub async fn github() -> FakeProvider {
        FakeProvider::start(true).await
    }

    pub async fn google() -> FakeProvider {
        FakeProvider::start(false).await
    }

    async fn start(github: bool) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeProvider {
            url,
            inner: Arc::default(),
            github,
        };
        let router = if github {
            Router::new()
                .route("/login/oauth/authorize", get(authorize))
                .route("/login/oauth/access_token", post(token))
                .route("/api/v3/user", get(github_user))
                .route("/api/v3/user/emails", get(github_emails))
        } else {
            Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route("/o/oauth2/auth", get(authorize))
                .route("/token", post(token))
                .route("/certs", get(jwks))
                .route("/userinfo", get(google_userinfo))
        };
        let app = router.with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// The variables that enable this provider in Latchkey.
    pub fn vars(&self) -> Vec<(String, String)> {
        let p = if self.github { "GITHUB" } else { "GOOGLE" };
        vec![
            (format!("GOTRUE_EXTERNAL_{p}_ENABLED"), "true".into()),
            (format!("GOTRUE_EXTERNAL_{p}_CLIENT_ID"), CLIENT_ID.into()),
            (format!("GOTRUE_EXTERNAL_{p}_SECRET"), CLIENT_SECRET.into()),
            (format!("GOTRUE_EXTERNAL_{p}_URL"), self.url.clone()),
        ]
    }

    pub fn set_user(&self, user: FakeUser) {
        self.inner.lock().unwrap().user = Some(user);
    }

    pub fn deny_next(&self, error: &str) {
        self.inner.lock().unwrap().deny = Some(error.to_owned());
    }

    pub fn without_id_token(&self) {
        self.inner.lock().unwrap().no_id_token = true;
    }

    /// Google: signs from now on with a key named `kid`, and publishes it under that name only
    /// (the key material stays the same; the name is what a rotation changes for a client).
    pub fn rotate_key(&self, kid: &str) {
        self.inner.lock().unwrap().kid = Some(kid.to_owned());
    }

    /// Google: names `kid`, a key the JWKS does not have, in the ID tokens from now on.
    pub fn sign_with_unpublished_kid(&self, kid: &str) {
        self.inner.lock().unwrap().unpublished_kid = Some(kid.to_owned());
    }

    /// Google: the discovery document names `issuer` instead of the fake's URL.
    pub fn announce_issuer(&self, issuer: &str) {
        self.inner.lock().unwrap().announced_issuer = Some(issuer.to_owned());
    }

    /// Google: (discovery document, JWKS) requests so far.
    pub fn metadata_requests(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.discovery_requests, inner.jwks_requests)
    }

    /// The query of the last authorize request.
    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.inner.lock().unwrap().last_authorize.iter().cloned().collect()
    }
}

async fn authorize(State(fake): State<FakeProvider>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut inner = fake.inner.lock().unwrap();
    inner.last_authorize = query.clone();
    let mut back = url::Url::parse(&param("redirect_uri")).unwrap();
    if param("client_id") != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    if let Some(error) = inner.deny.take() {
        back.query_pairs_mut()
            .append_pair("error", &error)
            .append_pair("error_description", "The user has denied your application access.")
            .append_pair("state", &param("state"));
    } else {
        let code = Uuid::new_v4().simple().to_string();
        let user = inner.user.clone().expect("a fake user is set");
        inner.codes.insert(code.clone(), (user, param("redirect_uri")));
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &param("state"));
    }
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(
    State(fake): State<FakeProvider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        == Some(&format!("Basic {basic}"))
        || (form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    let code = form.get("code").cloned().unwrap_or_default();
    let Some((user, redirect_uri)) = inner.codes.remove(&code) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    };
    if form.get("redirect_uri") != Some(&redirect_uri)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let access_token = format!("provider-access-{}", Uuid::new_v4().simple());
    inner.tokens.insert(access_token.clone(), user.clone());
    let mut body = json!({
        "access_token": access_token,
        "token_type": "bearer",
        "scope": "email profile",
    });
    if !fake.github {
        body["refresh_token"] = json!(format!("provider-refresh-{}", Uuid::new_v4().simple()));
        body["expires_in"] = json!(3599);
        if !inner.no_id_token {
            let published = inner.kid.clone().unwrap_or_else(|| FIRST_KID.to_owned());
            let kid = inner.unpublished_kid.clone().unwrap_or(published);
            body["id_token"] = json!(id_token(&fake.url, &user, &kid));
        }
    }
    Json(body).into_response()
}

/// `claims` as an RS256 token signed with the fixture key (what the fakes publish), naming `kid`.
pub fn sign_id_token(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap()).unwrap()
}

fn id_token(issuer: &str, user: &FakeUser, kid: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": issuer, "aud": CLIENT_ID, "sub": user.id, "email": user.email,
        "email_verified": user.verified, "name": user.name, "picture": "https://example.com/a.png",
        "iat": now, "exp": now + 3600,
    });
    sign_id_token(&claims, kid)
}

fn bearer_user(fake: &FakeProvider, headers: &HeaderMap) -> Option<FakeUser> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    fake.inner.lock().unwrap().tokens.get(token).cloned()
}

async fn github_user(State(fake): State<FakeProvider>, headers: HeaderMap) -> Response {
    match bearer_user(&fake, &headers) {
        Some(user) => Json(json!({
            "id": user.id.parse::<i64>().unwrap(), "login": "ada", "name": user.name,
            "avatar_url": "https://example.com/ada.png", "email": null,
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn github_emails(State(fake): State<FakeProvider>, headers: HeaderMap) -> Response {
    match bearer_user(&fake, &headers) {
        Some(user) => Json(json!([
            {"email": "secondary@example.org", "primary": false, "verified": true},
            {"email": user.email, "primary": true, "verified": user.verified},
        ]))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn jwks(State(fake): State<FakeProvider>) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    inner.jwks_requests += 1;
    let kid = inner.kid.clone().unwrap_or_else(|| FIRST_KID.to_owned());
    let body = JWKS.replace(&format!("\"{FIRST_KID}\""), &format!("\"{kid}\""));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn discovery(State(fake): State<FakeProvider>) -> Json<Value> {
    let mut inner = fake.inner.lock().unwrap();
    inner.discovery_requests += 1;
    let base = &fake.url;
    Json(json!({
        "issuer": inner.announced_issuer.as_deref().unwrap_or(base),
        "authorization_endpoint": format!("{base}/o/oauth2/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/certs"),
        "userinfo_endpoint": format!("{base}/userinfo"),
    }))
}

async fn google_userinfo(State(fake): State<FakeProvider>, headers: HeaderMap) -> Response {
    match bearer_user(&fake, &headers) {
        Some(user) => Json(json!({
            "id": user.id, "email": user.email, "verified_email": user.verified, "name": user.name,
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
