//! The `redirect_to` of a request (GoTrue's `GetReferrer`): the `redirect_to` header, else the
//! `redirect_to` query parameter, else the `Referer` header — the first one that the
//! start-up's `RedirectPolicy` allows — else the site URL.

use axum::extract::FromRequestParts;
use axum::http::header::REFERER;
use axum::http::request::Parts;

use crate::api::state::AppState;

/// A judged redirect target, re-serialised from its parsed form; never an address outside
/// the site and the allow list.
#[derive(Debug, Clone)]
pub struct RedirectTo(pub String);

impl FromRequestParts<AppState> for RedirectTo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let explicit = header("redirect_to").filter(|v| !v.is_empty()).or_else(|| {
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(key, _)| key == "redirect_to")
                .map(|(_, value)| value.into_owned())
        });
        let referer = header(REFERER.as_str());
        let chosen = state.redirects.choose([explicit.as_deref(), referer.as_deref()]);
        Ok(RedirectTo(chosen.into()))
    }
}
