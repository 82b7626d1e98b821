//! Latchkey as an OAuth client of GitHub and Google: the provider's authorize URL, the code
//! exchange (the `oauth2` crate over reqwest) and the user profile, reduced to what account
//! resolution needs.

mod github;
mod google;
pub mod link;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    RedirectUrl, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::config::ProviderConfig;
use crate::error::{Error, ErrorCode, Kind, Result};

/// The providers Latchkey implements, by GoTrue's names.
pub const PROVIDERS: [&str; 2] = ["github", "google"];

/// What the provider says about the user.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    /// The provider's subject (`_auth_identities.provider_id`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for `email`. Only then may it be linked to an account.
    pub email_verified: bool,
    /// GoTrue's identity claims, also merged into `user_metadata`.
    pub identity_data: Value,
}

/// The provider's tokens, handed back to the client as `provider_token` /
/// `provider_refresh_token`.
#[derive(Debug, Clone)]
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// Endpoints of one provider for one request.
struct Endpoints {
    authorize: String,
    token: String,
    default_scopes: &'static [&'static str],
}

/// A token response that keeps the OIDC `id_token` (Google's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}
type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type Client = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The provider's authorize URL for a flow whose id is `state`. `scopes` are added to the
/// provider's defaults; `extra` query parameters are forwarded as GoTrue forwards them.
pub async fn authorize_url(
    http: &reqwest::Client,
    provider: &str,
    config: &ProviderConfig,
    redirect_uri: &str,
    state: &str,
    scopes: &[String],
    extra: &[(String, String)],
) -> Result<Url> {
    let endpoints = endpoints(http, provider, config).await?;
    let client = client(config, &endpoints, redirect_uri)?;
    let state = state.to_owned();
    let mut request = client.authorize_url(move || CsrfToken::new(state));
    for scope in endpoints
        .default_scopes
        .iter()
        .map(|s| (*s).to_owned())
        .chain(scopes.iter().cloned())
    {
        request = request.add_scope(Scope::new(scope));
    }
    for (key, value) in extra {
        request = request.add_extra_param(key.clone(), value.clone());
    }
    Ok(request.url().0)
}

/// Exchanges the callback's `code` and reads the user's profile.
pub async fn complete(
    http: &reqwest::Client,
    provider: &str,
    config: &ProviderConfig,
    redirect_uri: &str,
    code: &str,
) -> Result<(ProviderTokens, ProviderUser)> {
    let endpoints = endpoints(http, provider, config).await?;
    let client = client(config, &endpoints, redirect_uri)?;
    // Each request future owns a (cheap, shared) clone of the client: a future borrowing it
    // trips rustc's higher-ranked `Send` check in the handler (rust-lang/rust#102211).
    let send = |request| {
        let http = http.clone();
        async move { send(&http, request).await }
    };
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .request_async(&send)
        .await
        // The error names the failure (status, OAuth error code); it carries no token.
        .map_err(|err| upstream("Unable to exchange external code", err))?;
    let tokens = ProviderTokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
    };
    let id_token = response.extra_fields().id_token.as_deref();
    let user = match provider {
        "github" => github::user(http, config, &tokens.access_token)
            .await
            .map_err(|e| e.to_string()),
        _ => google::user(http, config, &tokens.access_token, id_token).await,
    }
    .map_err(|err| upstream("Error getting user profile from external provider", err))?;
    Ok((tokens, user))
}

async fn endpoints(http: &reqwest::Client, provider: &str, config: &ProviderConfig) -> Result<Endpoints> {
    match provider {
        "github" => Ok(github::endpoints(config)),
        "google" => google::endpoints(http, config)
            .await
            .map_err(|err| upstream("Unable to read the provider's OpenID configuration", err)),
        _ => Err(unsupported(provider)),
    }
}

fn client(config: &ProviderConfig, endpoints: &Endpoints, redirect_uri: &str) -> Result<Client> {
    let bad_url = |err: url::ParseError| Error::internal(format!("bad provider URL: {err}"));
    Ok(oauth2::Client::new(ClientId::new(config.client_id.clone()))
        .set_client_secret(ClientSecret::new(config.secret.expose_secret().to_owned()))
        .set_auth_uri(AuthUrl::new(endpoints.authorize.clone()).map_err(bad_url)?)
        .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(bad_url)?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(bad_url)?))
}

/// The reqwest 0.13 adapter for `oauth2` (its own `reqwest` feature would pull reqwest 0.12).
async fn send(http: &reqwest::Client, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut out = oauth2::HttpResponse::new(response.bytes().await?.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// GoTrue's 400 for a provider that is unknown, disabled or misconfigured.
pub fn unsupported(provider: &str) -> Error {
    Error::validation(format!("Unsupported provider: {provider}"))
}

/// A failure talking to the provider: 500 with GoTrue's message; the cause goes to the log.
fn upstream(message: &'static str, cause: impl std::fmt::Display) -> Error {
    tracing::warn!(%cause, "{message}");
    Error::new(Kind::Internal, ErrorCode::UnexpectedFailure, message)
}

/// A JSON GET with the provider's access token.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
) -> Result<T, reqwest::Error> {
    http.get(url)
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, "application/json")
        // GitHub refuses requests without a User-Agent.
        .header(reqwest::header::USER_AGENT, "Latchkey")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}
