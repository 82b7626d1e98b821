//! Sign-in with an OAuth provider: `GET /authorize` sends the browser to the provider, and
//! `GET`/`POST /callback` finishes the flow with a redirect: the session in the fragment
//! (implicit) or `?code=` for `POST /token?grant_type=pkce`. The flows themselves are
//! `auth::external`'s; here they become redirects.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Query;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::verify::{encode, error_pairs, with_fragment, with_query};
use crate::auth::external::{self, Callback, CallbackEnd, OAuthFlows, SignedIn};
use crate::auth::session::{Client, Tokens};
use crate::error::{Error, Result};
use crate::providers::ProviderTokens;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_authorize))
        .routes(routes!(get_callback, post_callback))
}

/// What the OAuth flows need, from the application's state.
pub(crate) fn oauth_flows(state: &AppState) -> OAuthFlows<'_> {
    OAuthFlows {
        db: &state.db,
        providers: &state.providers,
        custom_providers: &state.config.external.custom,
        outbox: &state.outbox,
        accounts: &state.accounts,
        sessions: &state.sessions,
        redirects: &state.redirects,
        redirect_url: state.config.external.redirect_url.as_ref(),
        flow_state_expiry: state.config.flow_state_expiry,
        manual_linking_enabled: state.config.manual_linking_enabled,
    }
}

/// The raw query, decoded: `/authorize` forwards the parameters it does not know.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

// The handlers read the raw query (unknown parameters go on to the provider), so utoipa cannot
// infer where these live from a `Query<...>` extractor: say it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuthorizeQuery {
    /// GoTrue's name of an enabled provider (`github`, `google`, `apple`, `azure`, ...), or
    /// `custom:<id>` for a custom provider.
    provider: String,
    /// Extra scopes, comma-separated, added to the provider's defaults.
    scopes: Option<String>,
    /// Where the callback ends (validated against the site URL and the allow list).
    redirect_to: Option<String>,
    /// PKCE: makes the callback end with `?code=` instead of a session in the fragment.
    code_challenge: Option<String>,
    /// `s256` or `plain`.
    code_challenge_method: Option<String>,
}

/// Start signing in with a provider: redirects (302) to the provider's authorize page.
/// Other query parameters are forwarded to the provider.
#[utoipa::path(get, path = "/authorize", tag = "auth", params(AuthorizeQuery),
    responses(
        (status = 302, description = "Redirect to the provider"),
        (status = 400, description = "validation_failed: unsupported provider or bad PKCE parameters", body = crate::api::ErrorBody),
    ),
    security(())
)]
pub async fn get_authorize(
    State(state): State<AppState>,
    RedirectTo(redirect_to): RedirectTo,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let url = external::start(&oauth_flows(&state), &query_pairs(query.as_deref()), &redirect_to, None).await?;
    Ok((StatusCode::FOUND, [(LOCATION, url.to_string())]).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
pub struct CallbackParams {
    code: Option<String>,
    /// The flow id sent to the provider.
    state: Option<String>,
    /// Set by the provider when the user declined or the request failed.
    error: Option<String>,
    error_description: Option<String>,
    /// Apple (posted): the user's name, on the first sign-in only.
    user: Option<String>,
}

/// The provider's redirect back: finishes the flow and redirects (302) to the flow's
/// `redirect_to` with the session in the fragment, `?code=` (PKCE) or the error.
#[utoipa::path(get, path = "/callback", tag = "auth", params(CallbackParams),
    responses(
        (status = 302, description = "Redirect with the session, the PKCE code, or the error"),
        (status = 303, description = "Unusable state: redirect to the site URL with the error"),
    ),
    security(())
)]
pub async fn get_callback(
    State(state): State<AppState>,
    client: Client,
    Query(params): Query<CallbackParams>,
) -> Response {
    callback(&state, &client, params).await
}

/// The same as `GET /callback`, for providers that post the result (`response_mode=form_post`).
#[utoipa::path(post, path = "/callback", tag = "auth",
    request_body(content = CallbackParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 302, description = "Redirect with the session, the PKCE code, or the error"),
        (status = 303, description = "Unusable state: redirect to the site URL with the error"),
    ),
    security(())
)]
pub async fn post_callback(State(state): State<AppState>, client: Client, body: Bytes) -> Response {
    let params = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    callback(&state, &client, params).await
}

async fn callback(state: &AppState, client: &Client, params: CallbackParams) -> Response {
    let params = Callback {
        code: params.code.as_deref(),
        state: params.state.as_deref(),
        error: params.error.as_deref(),
        error_description: params.error_description.as_deref(),
        posted_user: params.user.as_deref(),
    };
    let (status, location) = match external::callback(&oauth_flows(state), client, params).await {
        CallbackEnd::NoFlow(err) => (
            StatusCode::SEE_OTHER,
            error_location(state.config.site_url.as_str(), &err),
        ),
        CallbackEnd::ProviderRefused {
            redirect_to,
            error,
            description,
        } => (
            StatusCode::FOUND,
            provider_error_location(&redirect_to, &error, &description),
        ),
        CallbackEnd::Finished { redirect_to, outcome } => (
            StatusCode::FOUND,
            match outcome {
                Ok(SignedIn::Code(code)) => with_query(&redirect_to, &[("code", &code)]),
                Ok(SignedIn::Session { session, provider }) => {
                    with_fragment(&redirect_to, &session_fragment(&session, &provider))
                }
                Err(err) => error_location(&redirect_to, &err),
            },
        ),
    };
    (status, [(LOCATION, location)]).into_response()
}

/// The implicit flow's fragment, GoTrue's names in its (sorted) order.
fn session_fragment(session: &Tokens, provider: &ProviderTokens) -> String {
    encode(&[
        ("access_token", &session.access_token),
        ("expires_at", &session.expires_at.to_string()),
        ("expires_in", &session.expires_in.to_string()),
        (
            "provider_refresh_token",
            provider.refresh_token.as_deref().unwrap_or(""),
        ),
        ("provider_token", &provider.access_token),
        ("refresh_token", &session.refresh_token),
        ("sb", ""),
        ("token_type", "bearer"),
    ])
}

/// GoTrue's `redirectErrors`: unlike `/verify`, the callback puts the error in the query and
/// the fragment whatever the flow, and always names it: `server_error` where the status has
/// no OAuth name (a 422 such as `identity_already_exists`, say).
fn error_location(redirect_to: &str, err: &Error) -> String {
    let mut pairs = error_pairs(err, Some("server_error"));
    let base = with_query(redirect_to, &pairs);
    pairs.push(("sb", ""));
    with_fragment(&base, &encode(&pairs))
}

/// The provider's own `error` is passed through, in the query and the fragment.
fn provider_error_location(redirect_to: &str, error: &str, description: &str) -> String {
    let pairs = [("error", error), ("error_description", description)];
    let base = with_query(redirect_to, &pairs);
    with_fragment(&base, &encode(&[pairs[0], pairs[1], ("sb", "")]))
}
