//! One configurable fake OAuth 2 / OpenID Connect provider on 127.0.0.1:0, for the providers
//! that have no fake of their own: it serves the provider's authorize and token paths, the
//! JSON its API answers at given paths (to a known access token only), and, for OIDC, a
//! discovery document under any prefix and the fixture key's JWKS. Latchkey is pointed at it
//! with `GOTRUE_EXTERNAL_<P>_URL`, which every provider module honours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fake_providers::{CLIENT_ID, CLIENT_SECRET, FIRST_KID, sign_id_token};

const JWKS: &str = include_str!("fixtures/google_test_jwks.json");
const DISCOVERY: &str = "/.well-known/openid-configuration";

/// What the fake serves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub authorize_path: &'static str,
    pub token_path: &'static str,
    /// `GET <path>` (query ignored) → this JSON, for a bearer token the fake issued.
    pub api: Vec<(&'static str, Value)>,
    /// Fields added to the token response (WorkOS's `profile`).
    pub token_extra: Value,
    /// The claims of an ID token in the token response (`iss` defaults to the fake's URL, and
    /// `{url}` in it stands for that URL; `aud` defaults to the client id; `exp`, `iat` are
    /// added).
    pub id_token: Option<Value>,
    /// Serve discovery documents and the JWKS: the issuer a document names is `<url><prefix>`,
    /// where `prefix` is what comes before `/.well-known/openid-configuration` in the request.
    pub oidc: bool,
}

#[derive(Default)]
struct Inner {
    script: Script,
    codes: HashMap<String, String>,
    tokens: Vec<String>,
    last_authorize: HashMap<String, String>,
    last_token_request: HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakeOAuth {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeOAuth {
    pub async fn start(script: Script) -> FakeOAuth {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeOAuth {
            url: format!("http://{}", listener.local_addr().unwrap()),
            inner: Arc::new(Mutex::new(Inner {
                script,
                ..Inner::default()
            })),
        };
        let app = Router::new().fallback(serve).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// The variables that enable provider `name` against this fake.
    pub fn vars(&self, name: &str) -> Vec<(String, String)> {
        let p = name.to_uppercase();
        vec![
            (format!("GOTRUE_EXTERNAL_{p}_ENABLED"), "true".into()),
            (format!("GOTRUE_EXTERNAL_{p}_CLIENT_ID"), CLIENT_ID.into()),
            (format!("GOTRUE_EXTERNAL_{p}_SECRET"), CLIENT_SECRET.into()),
            (format!("GOTRUE_EXTERNAL_{p}_URL"), self.url.clone()),
        ]
    }

    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.inner.lock().unwrap().last_authorize.clone()
    }

    /// The form of the last token request, with `client_secret` replaced by where the client
    /// credentials were (`basic` or `body`).
    pub fn last_token_request(&self) -> HashMap<String, String> {
        self.inner.lock().unwrap().last_token_request.clone()
    }
}

async fn serve(State(fake): State<FakeOAuth>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let query: HashMap<String, String> = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let path = parts.uri.path();
    let script = fake.inner.lock().unwrap().script.clone();
    if parts.method == Method::GET && path == script.authorize_path {
        return authorize(&fake, query);
    }
    if parts.method == Method::POST && path == script.token_path {
        return token(&fake, &script, &parts.headers, &body);
    }
    if script.oidc
        && let Some(prefix) = path.strip_suffix(DISCOVERY)
    {
        return discovery(&fake, &script, prefix);
    }
    if script.oidc && path == "/certs" {
        return ([(header::CONTENT_TYPE, "application/json")], JWKS).into_response();
    }
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !fake.inner.lock().unwrap().tokens.iter().any(|t| t == bearer) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match script.api.iter().find(|(p, _)| *p == path) {
        Some((_, answer)) => axum::Json(answer.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn authorize(fake: &FakeOAuth, query: HashMap<String, String>) -> Response {
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    if param("client_id") != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let mut back = url::Url::parse(&param("redirect_uri")).unwrap();
    let code = Uuid::new_v4().simple().to_string();
    let mut inner = fake.inner.lock().unwrap();
    inner.codes.insert(code.clone(), param("redirect_uri"));
    inner.last_authorize = query.clone();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &param("state"));
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

fn token(fake: &FakeOAuth, script: &Script, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let in_header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Basic {basic}"));
    let in_body = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !in_header && !in_body {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    let code = form.get("code").cloned().unwrap_or_default();
    let redirect_uri = inner.codes.remove(&code);
    if redirect_uri.is_none() || form.get("redirect_uri") != redirect_uri.as_ref() {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    }
    form.insert("client_secret".into(), if in_header { "basic" } else { "body" }.into());
    inner.last_token_request = form;
    let access_token = format!("provider-access-{}", Uuid::new_v4().simple());
    inner.tokens.push(access_token.clone());
    let mut answer = json!({"access_token": access_token, "token_type": "bearer", "expires_in": 3600});
    if let Some(extra) = script.token_extra.as_object() {
        answer.as_object_mut().unwrap().extend(extra.clone());
    }
    if let Some(claims) = &script.id_token {
        let now = chrono::Utc::now().timestamp();
        let mut claims = claims.clone();
        let object = claims.as_object_mut().unwrap();
        // `{url}` in a given issuer stands for the fake's URL (Azure's `<tenant URL>/v2.0`).
        let issuer = object
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or("{url}")
            .replace("{url}", &fake.url);
        object.insert("iss".into(), json!(issuer));
        object.entry("aud").or_insert(json!(CLIENT_ID));
        object.insert("iat".into(), json!(now));
        object.insert("exp".into(), json!(now + 600));
        answer["id_token"] = json!(sign_id_token(&claims, FIRST_KID));
    }
    axum::Json(answer).into_response()
}

fn discovery(fake: &FakeOAuth, script: &Script, prefix: &str) -> Response {
    let base = &fake.url;
    axum::Json(json!({
        "issuer": format!("{base}{prefix}"),
        "authorization_endpoint": format!("{base}{}", script.authorize_path),
        "token_endpoint": format!("{base}{}", script.token_path),
        "jwks_uri": format!("{base}/certs"),
    }))
    .into_response()
}
