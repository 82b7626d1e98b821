//! `GET /user/identities/authorize` (supabase-js `linkIdentity`) and
//! `DELETE /user/identities/{identity_id}` (`unlinkIdentity`, GoTrue's `DeleteIdentity`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::AuthUser;
use crate::api::external::{oauth_flows, query_pairs};
use crate::api::extract::RequestedAudience;
use crate::api::redirect::RedirectTo;
use crate::api::state::AppState;
use crate::auth::external;
use crate::auth::session::Client;
use crate::auth::unlink::{self, UnlinkRequest};
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(delete_identity))
        .routes(routes!(get_link_identity))
}

/// Link another provider to the signed-in user (supabase-js `linkIdentity`): the same query
/// as `/authorize`; with `skip_http_redirect=true` the provider URL comes back as JSON.
#[utoipa::path(
    get, path = "/user/identities/authorize", tag = "user",
    params(crate::api::external::AuthorizeQuery,
        ("skip_http_redirect" = Option<bool>, Query, description = "Answer 200 `{\"url\"}` instead of a redirect")),
    responses(
        (status = 200, description = "`{\"url\": \"<provider authorize URL>\"}`"),
        (status = 302, description = "Redirect to the provider"),
        (status = 400, description = "validation_failed: unsupported provider or bad PKCE parameters", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token; unexpected_audience (the token has no audience, or not the one `X-JWT-Aud` asks for)", body = crate::api::ErrorBody),
        (status = 404, description = "manual_linking_disabled", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_link_identity(
    State(state): State<AppState>,
    auth: AuthUser,
    RedirectTo(redirect_to): RedirectTo,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let query = query_pairs(query.as_deref());
    let skip_redirect = query.iter().any(|(k, v)| k == "skip_http_redirect" && v == "true");
    let url = external::start(&oauth_flows(&state), &query, &redirect_to, Some(auth.user.id)).await?;
    if skip_redirect {
        return Ok(axum::Json(json!({ "url": url.to_string() })).into_response());
    }
    Ok((StatusCode::FOUND, [(LOCATION, url.to_string())]).into_response())
}

/// Unlink one of the user's identities. Needs `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`; the
/// last identity cannot go. When no identity left carries the user's email, the email of one
/// that does not belong to another account takes its place (GoTrue's rules, in `auth::unlink`).
#[utoipa::path(
    delete, path = "/user/identities/{identity_id}", tag = "user",
    params(("identity_id" = Uuid, Path, description = "The identity's `identity_id`")),
    responses(
        (status = 200, description = "Unlinked: `{}`"),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token; unexpected_audience (the token has no audience, or not the one `X-JWT-Aud` asks for)", body = crate::api::ErrorBody),
        (status = 404, description = "manual_linking_disabled; validation_failed (identity_id is not a UUID)", body = crate::api::ErrorBody),
        (status = 422, description = "single_identity_not_deletable, identity_not_found, email_conflict_identity_not_deletable (every identity left has an email another account holds)", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_identity(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    RequestedAudience(audience): RequestedAudience,
    Path(identity_id): Path<String>,
) -> Result<axum::Json<Value>> {
    let request = UnlinkRequest {
        manual_linking_enabled: state.config.manual_linking_enabled,
        mailer_autoconfirm: state.config.mailer_autoconfirm,
        user_id: auth.user.id,
        identity_id: &identity_id,
        token_audience: auth.claims.aud.as_deref(),
        requested_audience: audience.as_deref(),
        ip: &client.ip_string(),
    };
    unlink::delete_identity(&state.db, request).await?;
    Ok(axum::Json(json!({})))
}
