//! `GET /verify` (the link in a mail: answers with a 303 redirect carrying the session in the
//! fragment, a `?code=` for PKCE links, or the error) and `POST /verify` (a code or token hash
//! sent by the client: answers with a session).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use url::Url;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, Query};
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::api::types::SessionResponse;
use crate::auth::accounts;
use crate::auth::codes::PKCE_PREFIX;
use crate::auth::session::{Client, Tokens};
use crate::auth::verification::{self, Followed, Verified};
use crate::error::{Error, ErrorCode, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_verify, post_verify))
}

const SINGLE_CONFIRMATION_ACCEPTED: &str =
    "Confirmation link accepted. Please proceed to confirm link sent to the other email";

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerifyQuery {
    /// The token hash from the email link (`pkce_...` for PKCE flows).
    pub token: Option<String>,
    /// `signup`, `invite`, `magiclink`, `recovery` or `email_change`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub verify_type: Option<String>,
    /// Where to go afterwards; must be the site or on `GOTRUE_URI_ALLOW_LIST`.
    pub redirect_to: Option<String>,
}

/// Follow an email link: confirms and redirects (303) with the session in the URL fragment,
/// `?code=` for PKCE links, or `#error=...` when the link is invalid or expired.
#[utoipa::path(
    get, path = "/verify", tag = "auth",
    params(VerifyQuery),
    responses(
        (status = 303, description = "Redirect to redirect_to with the session, a PKCE code, or the error"),
        (status = 400, description = "Missing token or type", body = crate::api::ErrorBody),
    ),
    security(())
)]
pub async fn get_verify(
    State(state): State<AppState>,
    client: Client,
    RedirectTo(redirect_to): RedirectTo,
    Query(query): Query<VerifyQuery>,
) -> Result<Response> {
    let verify_type = query.verify_type.as_deref().unwrap_or("").trim();
    if verify_type.is_empty() {
        return Err(Error::validation("Verify requires a verification type"));
    }
    let token = query.token.as_deref().unwrap_or("").trim();
    if token.is_empty() {
        return Err(Error::validation("Verify requires a token or a token hash"));
    }
    let is_pkce = token.starts_with(PKCE_PREFIX);
    let location = match verification::follow_link(&deps(&state), &client, verify_type, token).await {
        Ok(Followed::Session(tokens)) => with_fragment(&redirect_to, &session_fragment(&tokens, verify_type)),
        Ok(Followed::Code(code)) => with_query(&redirect_to, &[("code", &code)]),
        Ok(Followed::FirstLeg) => {
            let fragment = encode(&[("message", SINGLE_CONFIRMATION_ACCEPTED), ("sb", "")]);
            let base = if is_pkce {
                with_query(&redirect_to, &[("message", SINGLE_CONFIRMATION_ACCEPTED)])
            } else {
                redirect_to.clone()
            };
            with_fragment(&base, &fragment)
        }
        Err(err) => error_location(&redirect_to, &err, is_pkce),
    };
    Ok((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response())
}

fn deps(state: &AppState) -> verification::Deps<'_> {
    verification::Deps {
        db: &state.db,
        codes: &state.codes,
        sessions: &state.sessions,
        outbox: &state.outbox,
    }
}

/// The session as GoTrue puts it in the fragment of a followed link.
fn session_fragment(tokens: &Tokens, verify_type: &str) -> String {
    encode(&[
        ("access_token", &tokens.access_token),
        ("expires_at", &tokens.expires_at.to_string()),
        ("expires_in", &tokens.expires_in.to_string()),
        ("refresh_token", &tokens.refresh_token),
        ("sb", ""),
        ("token_type", "bearer"),
        ("type", verify_type),
    ])
}

/// `key=value&...`, form-encoded, in the given (sorted, as Go's `url.Values`) order.
pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

pub(crate) fn with_fragment(base: &str, fragment: &str) -> String {
    match Url::parse(base) {
        Ok(mut url) => {
            url.set_fragment(Some(fragment));
            url.to_string()
        }
        Err(_) => format!("{}#{fragment}", base.split('#').next().unwrap_or("")),
    }
}

/// Sets query parameters (replacing ones of the same name) and drops the fragment.
pub(crate) fn with_query(base: &str, set: &[(&str, &str)]) -> String {
    let Ok(mut url) = Url::parse(base) else {
        return base.to_owned();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| !set.iter().any(|(name, _)| key == name))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (key, value) in &kept {
            query.append_pair(key, value);
        }
        for (key, value) in set {
            query.append_pair(key, value);
        }
    }
    url.set_fragment(None);
    url.to_string()
}

/// GoTrue's `prepErrorRedirectURL`: the error in the fragment (and the query for PKCE).
pub(crate) fn error_location(redirect_to: &str, err: &Error, is_pkce: bool) -> String {
    let mut pairs = error_pairs(err, None);
    let base = if is_pkce {
        with_query(redirect_to, &pairs)
    } else {
        redirect_to.to_owned()
    };
    pairs.push(("sb", ""));
    with_fragment(&base, &encode(&pairs))
}

/// `error` (the OAuth name GoTrue gives the error, else `fallback`, else left out),
/// `error_code` and `error_description` of an error that ends in a redirect. A 5xx is logged
/// here, its one log line.
pub(crate) fn error_pairs<'e>(err: &'e Error, fallback: Option<&'static str>) -> Vec<(&'static str, &'e str)> {
    if err.kind().is_server_error() {
        tracing::error!(
            code = err.code().as_str(),
            cause = err.cause().unwrap_or(""),
            "redirect flow failed"
        );
    }
    let denied = matches!(
        err.code(),
        ErrorCode::SignupDisabled | ErrorCode::UserBanned | ErrorCode::ProviderEmailNeedsVerification
    );
    let oauth_error = match crate::api::error::status(err.kind()).as_u16() {
        _ if denied => Some("access_denied"),
        400 => Some("invalid_request"),
        401 => Some("unauthorized_client"),
        403 => Some("access_denied"),
        500 => Some("server_error"),
        503 => Some("temporarily_unavailable"),
        _ => fallback,
    };
    let mut pairs = Vec::new();
    if let Some(error) = oauth_error {
        pairs.push(("error", error));
    }
    pairs.push(("error_code", err.code().as_str()));
    pairs.push(("error_description", err.message()));
    pairs
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"type": "email", "email": "someone@example.com", "token": "123456"}))]
pub struct VerifyParams {
    /// `signup`, `invite`, `magiclink`, `recovery`, `email_change` or `email`.
    #[serde(rename = "type", default)]
    pub verify_type: Option<String>,
    /// The code from the mail (with `email`).
    #[serde(default)]
    pub token: Option<String>,
    /// The hash from the link (alone).
    #[serde(default)]
    pub token_hash: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub redirect_to: Option<String>,
}

/// The account a `POST /verify` code is tried against, spelled as the handler looks it up:
/// `email:` and the normalised email, or `phone:` and the phone's digits. `None` without a
/// code, or when the email is invalid (the handler refuses such a request before any lookup).
/// The rate limiter keys its per-account bucket on this.
pub fn code_account(params: &VerifyParams) -> Option<String> {
    given(&params.token)?;
    if let Some(raw) = given(&params.email) {
        return accounts::normalize_email(raw)
            .ok()
            .map(|email| format!("email:{email}"));
    }
    let digits: String = given(&params.phone)?.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("phone:{digits}"))
}

/// A parameter as the handler reads it: trimmed, `None` when blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Verify a code from a mail (`{type, email, token}`) or a link's hash (`{type, token_hash}`)
/// and get a session.
#[utoipa::path(
    post, path = "/verify", tag = "auth",
    request_body = VerifyParams,
    responses(
        (status = 200, description = "A session; or, for the first of two email-change confirmations, {msg, code}", body = SessionResponse),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 403, description = "otp_expired: the token is invalid, used or expired, or its code died after LATCHKEY_OTP_MAX_ATTEMPTS wrong ones", body = crate::api::ErrorBody),
    ),
    security((), ("apikey" = []))
)]
pub async fn post_verify(
    State(state): State<AppState>,
    client: Client,
    Json(params): Json<VerifyParams>,
) -> Result<Response> {
    let request = verification::Request {
        verify_type: given(&params.verify_type),
        token: given(&params.token),
        token_hash: given(&params.token_hash),
        email: given(&params.email),
        phone: given(&params.phone),
        redirect_to: given(&params.redirect_to),
    };
    Ok(match verification::verify(&deps(&state), &client, &request).await? {
        Verified::FirstLeg => axum::Json(json!({ "msg": SINGLE_CONFIRMATION_ACCEPTED, "code": "200" })).into_response(),
        Verified::Session {
            tokens,
            user,
            identities,
        } => axum::Json(SessionResponse::new(tokens, *user, identities, None)).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_replace_and_codes_join_the_query() {
        assert_eq!(
            with_fragment("http://localhost:3000/cb?x=1#old", "a=1&sb="),
            "http://localhost:3000/cb?x=1#a=1&sb="
        );
        assert_eq!(
            with_query("http://localhost:3000/cb?x=1&code=old#f", &[("code", "abc")]),
            "http://localhost:3000/cb?x=1&code=abc"
        );
    }

    #[test]
    fn errors_are_gotrue_shaped() {
        let err = Error::forbidden(ErrorCode::OtpExpired, "Email link is invalid or has expired");
        assert_eq!(
            error_location("http://localhost:3000/", &err, false),
            "http://localhost:3000/#error=access_denied&error_code=otp_expired&error_description=Email+link+is+invalid+or+has+expired&sb="
        );
        let pkce = error_location("http://localhost:3000/", &err, true);
        assert!(
            pkce.starts_with("http://localhost:3000/?error=access_denied&error_code=otp_expired&"),
            "{pkce}"
        );
    }
}
