//! `POST /logout?scope=global|local|others` (GoTrue), and `POST /logout {refresh_token}`
//! without a bearer token (HeliosDB Nano's shape): ends that token's session.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::AuthUser;
use crate::api::extract::{OptionalJson, Query};
use crate::api::state::AppState;
use crate::auth::refresh;
use crate::auth::session::Client;
use crate::db::audit::{self, Action};
use crate::db::sessions;
use crate::error::{Error, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_logout))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogoutQuery {
    /// `global` (default: every session of the user), `local` (this session) or `others`.
    pub scope: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LogoutBody {
    /// Without a bearer token: end the session this refresh token belongs to.
    pub refresh_token: Option<String>,
}

#[derive(Clone, Copy)]
enum Scope {
    Global,
    Local,
    Others,
}

/// Sign out.
#[utoipa::path(
    post, path = "/logout", tag = "auth",
    params(LogoutQuery),
    request_body(content = Option<LogoutBody>, description = "Only for signing out by refresh token, without a bearer token"),
    responses(
        (status = 204, description = "Signed out"),
        (status = 400, description = "Unsupported scope, or a body that is not JSON", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, or its session is already gone", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn post_logout(
    State(state): State<AppState>,
    Query(query): Query<LogoutQuery>,
    client: Client,
    auth: Result<AuthUser, Error>,
    OptionalJson(body): OptionalJson<LogoutBody>,
) -> Result<StatusCode> {
    let auth = match (auth, body.refresh_token.as_deref().filter(|t| !t.is_empty())) {
        (Ok(auth), _) => auth,
        (Err(_), Some(token)) => return logout_by_refresh_token(&state, token).await,
        (Err(err), None) => return Err(err),
    };
    let scope = match query.scope.as_deref().unwrap_or("global") {
        "global" => Scope::Global,
        "local" => Scope::Local,
        "others" => Scope::Others,
        _ => return Err(Error::validation("Unsupported logout scope")),
    };
    let mut tx = state.db.begin().await?;
    match (scope, auth.session_id) {
        // A token without a session can only sign out everywhere.
        (Scope::Global, _) | (_, None) => sessions::delete_all_for_user(&mut *tx, auth.user.id).await?,
        (Scope::Local, Some(id)) => sessions::delete(&mut *tx, id).await?,
        (Scope::Others, Some(id)) => sessions::delete_others(&mut *tx, auth.user.id, id).await?,
    };
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(
            &auth.user,
            Action::Logout,
            Some(json!({ "scope": query.scope.as_deref().unwrap_or("global") })),
            &client.ip_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logout_by_refresh_token(state: &AppState, token: &str) -> Result<StatusCode> {
    // Unknown tokens are not an error: the session is gone either way.
    if refresh::looks_valid(token) {
        sessions::delete_by_refresh_token(&state.db, &refresh::hash(token)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
