//! Sign-in with an OAuth provider: `GET /authorize` sends the browser to the provider with
//! `state` = the id of a new `_auth_flow_state` row, and `GET`/`POST /callback` finishes the
//! flow: the session in the fragment (implicit) or `?code=` for `POST /token?grant_type=pkce`.
//! All flow state lives in Postgres, so a flow survives a restart and works on any instance.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::extract::Query;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::verify::{encode, error_pairs, with_fragment, with_query};
use crate::auth::oauth::{self, link::Resolved};
use crate::auth::pkce;
use crate::auth::session::{self, Client};
use crate::config::ProviderConfig;
use crate::db::flow_state::{self, FlowStateRow, NewFlowState};
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_authorize))
        .routes(routes!(get_callback, post_callback))
}

/// Query parameters of `/authorize` that are Latchkey's own or that the provider must not get
/// from the client (GoTrue's reserved list); every other parameter is forwarded.
const RESERVED: [&str; 13] = [
    "provider",
    "skip_http_redirect",
    "scopes",
    "redirect_to",
    "code_challenge",
    "code_challenge_method",
    "invite_token",
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "state",
    "code_verifier",
];

// The handlers read the raw query (unknown parameters go on to the provider), so utoipa cannot
// infer where these live from a `Query<...>` extractor: say it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuthorizeQuery {
    /// `github` or `google`.
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
    let url = start_flow(&state, query.as_deref(), &redirect_to, None).await?;
    Ok((StatusCode::FOUND, [(LOCATION, url.to_string())]).into_response())
}

/// Creates the flow and returns the provider's authorize URL; `linking_target` is the
/// signed-in user for `/user/identities/authorize`.
pub async fn start_flow(
    state: &AppState,
    query: Option<&str>,
    redirect_to: &str,
    linking_target: Option<Uuid>,
) -> Result<url::Url> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let provider = get("provider").unwrap_or("").trim().to_lowercase();
    let config = state
        .config
        .external
        .provider(&provider)
        .ok_or_else(|| oauth::unsupported(&provider))?;
    let challenge = pkce::parse_params(get("code_challenge"), get("code_challenge_method"))?;
    let scopes: Vec<String> = get("scopes")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let extra: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .cloned()
        .collect();
    let flow = flow_state::insert(
        &state.db,
        &NewFlowState {
            user_id: None,
            code_challenge_method: challenge.as_ref().map(|c| c.method.as_str()),
            code_challenge: challenge.as_ref().map(|c| c.challenge.as_str()),
            provider_type: &provider,
            authentication_method: "oauth",
            referrer: Some(redirect_to),
            linking_target_id: linking_target,
        },
    )
    .await?;
    oauth::authorize_url(
        &state.http,
        &provider,
        config,
        &redirect_uri(state, config),
        &flow.id.to_string(),
        &scopes,
        &extra,
    )
    .await
}

/// `GOTRUE_EXTERNAL_<P>_REDIRECT_URI`, else `<API_EXTERNAL_URL>/callback`.
fn redirect_uri(state: &AppState, config: &ProviderConfig) -> String {
    match &config.redirect_uri {
        Some(uri) => uri.to_string(),
        None => format!("{}/callback", state.external_url.as_str().trim_end_matches('/')),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
pub struct CallbackParams {
    code: Option<String>,
    /// The flow id sent to the provider.
    state: Option<String>,
    /// Set by the provider when the user declined or the request failed.
    error: Option<String>,
    error_description: Option<String>,
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
    let flow = match claim(state, &params).await {
        Ok(flow) => flow,
        Err(err) => {
            // No usable flow, so no validated redirect_to: back to the site, as GoTrue does.
            let location = error_location(state.config.site_url.as_str(), &err);
            return (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response();
        }
    };
    // The referrer was judged by `/authorize`; it is judged again here against today's
    // policy (a flow may predate a change of the allow list, or of Latchkey), so every
    // Location below is built from a judged URL, the operator's redirect URL or the site URL.
    let referrer: String = state.redirects.choose([flow.referrer.as_deref()]).into();
    let redirect_to = match &state.config.external.redirect_url {
        Some(url) => url.to_string(),
        None => referrer.clone(),
    };
    let location = if let Some(error) = params.error.as_deref().filter(|e| !e.is_empty()) {
        provider_error_location(&redirect_to, error, params.error_description.as_deref().unwrap_or(""))
    } else {
        match finish(state, client, &flow, params.code.as_deref().unwrap_or(""), &referrer).await {
            Ok(Finished::Code(code)) => with_query(&redirect_to, &[("code", &code)]),
            Ok(Finished::Session(fragment)) => with_fragment(&redirect_to, &fragment),
            Err(err) => error_location(&redirect_to, &err),
        }
    };
    (StatusCode::FOUND, [(LOCATION, location)]).into_response()
}

/// The flow named by `state`, claimed for this callback (each state works once).
async fn claim(state: &AppState, params: &CallbackParams) -> Result<FlowStateRow> {
    let raw = params.state.as_deref().unwrap_or("").trim();
    if raw.is_empty() {
        return Err(bad_state(ErrorCode::BadOauthCallback, "OAuth state parameter missing"));
    }
    let id = Uuid::parse_str(raw).map_err(|_| invalid_state())?;
    let Some(flow) = flow_state::claim_for_callback(&state.db, id).await? else {
        // Already claimed (a replay) or not an OAuth flow at all.
        return Err(match flow_state::find(&state.db, id).await? {
            Some(flow) if flow.authentication_method == "oauth" => {
                bad_state(ErrorCode::FlowStateAlreadyUsed, "Flow state already used")
            }
            _ => invalid_state(),
        });
    };
    let expiry = chrono::Duration::from_std(state.config.flow_state_expiry).unwrap_or(chrono::Duration::MAX);
    if chrono::Utc::now() > flow.created_at + expiry {
        return Err(bad_state(ErrorCode::FlowStateExpired, "Flow state has expired"));
    }
    Ok(flow)
}

fn invalid_state() -> Error {
    bad_state(ErrorCode::BadOauthState, "OAuth callback with invalid state")
}

fn bad_state(code: ErrorCode, message: &'static str) -> Error {
    Error::bad_request(code, message)
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

enum Finished {
    Code(String),
    Session(String),
}

/// `redirect_to` is where confirmation mails sent on the way (a new identity's email) lead.
async fn finish(
    state: &AppState,
    client: &Client,
    flow: &FlowStateRow,
    code: &str,
    redirect_to: &str,
) -> Result<Finished> {
    if code.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::BadOauthCallback,
            "OAuth callback with missing authorization code",
        ));
    }
    let provider = flow.provider_type.as_str();
    let config = state
        .config
        .external
        .provider(provider)
        .ok_or_else(|| oauth::unsupported(provider))?;
    let (tokens, profile) = oauth::complete(&state.http, provider, config, &redirect_uri(state, config), code).await?;
    let mut tx = state.db.begin().await?;
    let ip = client.ip_string();
    let resolved = match flow.linking_target_id {
        Some(target) => {
            oauth::link::link_to(
                &mut tx,
                &state.outbox,
                &state.accounts,
                target,
                provider,
                &profile,
                redirect_to,
                &ip,
            )
            .await?
        }
        None => {
            oauth::link::resolve(
                &mut tx,
                &state.outbox,
                &state.accounts,
                provider,
                &profile,
                redirect_to,
                &ip,
            )
            .await?
        }
    };
    let user = match resolved {
        Resolved::SignedIn(user) => *user,
        Resolved::Refused(err) => {
            // What was done is kept (an account or identity, its confirmation mail); the
            // sign-in is refused.
            tx.commit().await?;
            return Err(err);
        }
    };
    if user.is_banned(chrono::Utc::now()) {
        return Err(Error::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    let finished = if flow.code_challenge.is_some() {
        let flow = flow_state::complete_oauth(
            &mut *tx,
            flow.id,
            user.id,
            &tokens.access_token,
            tokens.refresh_token.as_deref(),
        )
        .await?;
        Finished::Code(flow.auth_code)
    } else {
        flow_state::delete(&mut *tx, flow.id).await?;
        let (session, _, _) = session::start(&mut tx, &state.sessions, &user, "oauth", client).await?;
        Finished::Session(encode(&[
            ("access_token", &session.access_token),
            ("expires_at", &session.expires_at.to_string()),
            ("expires_in", &session.expires_in.to_string()),
            ("provider_refresh_token", tokens.refresh_token.as_deref().unwrap_or("")),
            ("provider_token", &tokens.access_token),
            ("refresh_token", &session.refresh_token),
            ("sb", ""),
            ("token_type", "bearer"),
        ]))
    };
    tx.commit().await?;
    Ok(finished)
}
