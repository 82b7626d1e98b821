//! The authorization-code flow every provider shares: the authorize URL and the code exchange
//! (the `oauth2` crate over reqwest 0.13), and authenticated JSON reads of the provider's API.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    RedirectUrl, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{Endpoints, ProviderError, ProviderTokens, fetch_json};

/// Latchkey's registration at one provider, and the HTTP client that reaches it.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub(super) http: reqwest::Client,
    pub(super) client_id: String,
    secret: SecretString,
    /// Where the provider sends the browser back: `GOTRUE_EXTERNAL_<P>_REDIRECT_URI`, else
    /// `<API_EXTERNAL_URL>/callback`.
    redirect_uri: String,
}

/// A token response that keeps the OIDC `id_token`.
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

impl OAuthClient {
    pub(super) fn new(http: reqwest::Client, client_id: String, secret: SecretString, redirect_uri: String) -> Self {
        OAuthClient {
            http,
            client_id,
            secret,
            redirect_uri,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The provider's authorize URL for the flow whose id is `state`: `default_scopes` and
    /// then `scopes`, and the `extra` query parameters (forwarded as GoTrue forwards them).
    pub fn authorize_url(
        &self,
        endpoints: &Endpoints,
        default_scopes: &[&str],
        state: &str,
        scopes: &[String],
        extra: &[(String, String)],
    ) -> Result<Url, ProviderError> {
        let client = self.oauth2_client(endpoints)?;
        let state = state.to_owned();
        let mut request = client.authorize_url(move || CsrfToken::new(state));
        for scope in default_scopes
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

    /// Exchanges an authorization code for the provider's tokens.
    pub async fn exchange_code(&self, endpoints: &Endpoints, code: &str) -> Result<ProviderTokens, ProviderError> {
        let client = self.oauth2_client(endpoints)?;
        // Each request future owns a (cheap, shared) clone of the HTTP client: a future
        // borrowing it trips rustc's higher-ranked `Send` check (rust-lang/rust#102211).
        let send = |request| {
            let http = self.http.clone();
            async move { send(&http, request).await }
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .request_async(&send)
            .await
            // The error names the failure (status, OAuth error code); it carries no token.
            .map_err(|err| ProviderError::CodeExchange(err.to_string()))?;
        Ok(ProviderTokens {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: response.extra_fields().id_token.clone(),
        })
    }

    /// A JSON GET of the provider's API with its access token.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        access_token: &str,
    ) -> Result<T, ProviderError> {
        let request = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            // GitHub refuses requests without a User-Agent.
            .header(reqwest::header::USER_AGENT, "Latchkey");
        fetch_json(request)
            .await
            .map_err(|err| ProviderError::Profile(err.to_string()))
    }

    fn oauth2_client(&self, endpoints: &Endpoints) -> Result<Client, ProviderError> {
        let bad_url = |err: url::ParseError| ProviderError::BadUrl(err.to_string());
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.secret.expose_secret().to_owned()))
            .set_auth_uri(AuthUrl::new(endpoints.authorize.clone()).map_err(bad_url)?)
            .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(bad_url)?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(bad_url)?))
    }
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
