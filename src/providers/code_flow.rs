//! The authorization-code flow every provider shares: the authorize URL and the code exchange
//! (the `oauth2` crate over reqwest 0.13), and authenticated JSON reads of the provider's API.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, StandardRevocableToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::http::Http;
use super::{Endpoints, ProviderError, ProviderTokens};

/// Latchkey's registration at one provider, and the HTTP client that reaches it.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub(super) http: Http,
    client_id: String,
    /// `None`: the provider is configured for ID tokens only; the redirect flow is refused.
    secret: Option<SecretString>,
    /// Where the provider sends the browser back: `GOTRUE_EXTERNAL_<P>_REDIRECT_URI`, else
    /// `<API_EXTERNAL_URL>/callback`.
    redirect_uri: String,
    /// How the token endpoint is told who Latchkey is: HTTP Basic (RFC 6749's preference), or
    /// `client_id`/`client_secret` form fields for providers that read only those.
    auth_in_body: bool,
}

/// What the authorize URL carries besides the client and the redirect URI.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest<'a> {
    /// The flow id, sent back by the provider as `state`.
    pub state: &'a str,
    pub scopes: Vec<String>,
    /// Query parameters forwarded as they are.
    pub params: Vec<(String, String)>,
    /// PKCE towards the provider: the verifier whose S256 challenge goes along (X and custom
    /// providers ask for it).
    pub code_verifier: Option<&'a str>,
}

/// A token response read leniently: `token_type` may be missing (WorkOS, Figma) and every
/// field beyond RFC 6749's is kept (`id_token`, WorkOS's `profile`, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenResponse {
    access_token: AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

impl oauth2::TokenResponse for TokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<std::time::Duration> {
        None
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

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

impl OAuthClient {
    pub(super) fn new(http: Http, client_id: String, secret: Option<SecretString>, redirect_uri: String) -> Self {
        OAuthClient {
            http,
            client_id,
            secret,
            redirect_uri,
            auth_in_body: false,
        }
    }

    /// The token endpoint reads the client's credentials from the form, not HTTP Basic.
    pub(super) fn with_credentials_in_body(mut self) -> Self {
        self.auth_in_body = true;
        self
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    pub(super) fn secret(&self) -> Option<&SecretString> {
        self.secret.as_ref()
    }

    /// The provider's authorize URL for one flow.
    pub fn authorize_url(&self, endpoints: &Endpoints, request: &AuthorizeRequest<'_>) -> Result<Url, ProviderError> {
        let client = self.oauth2_client(endpoints)?;
        let state = request.state.to_owned();
        let mut builder = client.authorize_url(move || CsrfToken::new(state));
        for scope in &request.scopes {
            builder = builder.add_scope(Scope::new(scope.clone()));
        }
        for (key, value) in &request.params {
            builder = builder.add_extra_param(key.clone(), value.clone());
        }
        if let Some(verifier) = request.code_verifier {
            let verifier = PkceCodeVerifier::new(verifier.to_owned());
            builder = builder.set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
        }
        Ok(builder.url().0)
    }

    /// Exchanges an authorization code for the provider's tokens.
    pub async fn exchange_code(
        &self,
        endpoints: &Endpoints,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<ProviderTokens, ProviderError> {
        let client = self.oauth2_client(endpoints)?;
        // Each request future owns a (cheap, shared) clone of the HTTP client: a future
        // borrowing it trips rustc's higher-ranked `Send` check (rust-lang/rust#102211).
        let send = |request| {
            let http = self.http.clone();
            async move { send(&http, request).await }
        };
        let mut exchange = client.exchange_code(AuthorizationCode::new(code.to_owned()));
        if let Some(verifier) = code_verifier {
            exchange = exchange.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        }
        let response = exchange
            .request_async(&send)
            .await
            // The error names the failure (status, OAuth error code); it carries no token.
            .map_err(|err| ProviderError::CodeExchange(err.to_string()))?;
        let mut extra = response.extra;
        let id_token = match extra.remove("id_token") {
            Some(Value::String(token)) if !token.is_empty() => Some(token),
            _ => None,
        };
        Ok(ProviderTokens {
            access_token: response.access_token.secret().clone(),
            refresh_token: response.refresh_token.map(|t| t.secret().clone()),
            id_token,
            extra,
        })
    }

    /// A JSON GET of the provider's API with its access token (and `headers`).
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        access_token: &str,
        headers: &[(&str, &str)],
    ) -> Result<T, ProviderError> {
        let profile = |err: super::http::HttpError| ProviderError::Profile(err.to_string());
        let mut request = self
            .http
            .get(url)
            .map_err(profile)?
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            // GitHub refuses requests without a User-Agent.
            .header(reqwest::header::USER_AGENT, "Latchkey");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.http.json(request).await.map_err(profile)
    }

    fn oauth2_client(&self, endpoints: &Endpoints) -> Result<Client, ProviderError> {
        let secret = self.secret.as_ref().ok_or(ProviderError::NoSecret)?;
        let bad_url = |err: url::ParseError| ProviderError::BadUrl(err.to_string());
        let auth_type = if self.auth_in_body {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        };
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
            .set_auth_type(auth_type)
            .set_auth_uri(AuthUrl::new(endpoints.authorize.clone()).map_err(bad_url)?)
            .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(bad_url)?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(bad_url)?))
    }
}

/// The reqwest 0.13 adapter for `oauth2` (its own `reqwest` feature would pull reqwest 0.12),
/// through [`Http`] so that a custom provider's token URL passes its guard.
async fn send(http: &Http, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, super::http::HttpError> {
    let (parts, body) = request.into_parts();
    let builder = http
        .request(parts.method, &parts.uri.to_string())?
        .headers(parts.headers)
        .body(body);
    let (response, bytes) = http.send(builder).await?;
    let mut out = oauth2::HttpResponse::new(bytes);
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    Ok(out)
}
