//! `DELETE /user/identities/{identity_id}`: unlinking a provider from the signed-in user
//! (GoTrue's `DeleteIdentity`; supabase-js `unlinkIdentity`).

use axum::extract::{Path, State};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::auth_user::AuthUser;
use crate::auth::oauth::link::refresh_providers;
use crate::db::identities;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(delete_identity))
}

/// Unlink one of the user's identities. Needs `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`; the
/// last identity cannot go.
#[utoipa::path(
    delete, path = "/user/identities/{identity_id}", tag = "user",
    params(("identity_id" = Uuid, Path, description = "The identity's `identity_id`")),
    responses(
        (status = 200, description = "Unlinked: `{}`"),
        (status = 404, description = "manual_linking_disabled", body = crate::api::ErrorBody),
        (status = 422, description = "single_identity_not_deletable, identity_not_found", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_identity(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(identity_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    if !state.config.manual_linking_enabled {
        return Err(ApiError::not_found(
            ErrorCode::ManualLinkingDisabled,
            "Manual linking is disabled",
        ));
    }
    let not_found = || ApiError::unprocessable(ErrorCode::IdentityNotFound, "Identity doesn't exist");
    let identity_id = Uuid::parse_str(&identity_id).map_err(|_| not_found())?;
    let mut tx = state.db.begin().await?;
    let owned = identities::for_user(&mut *tx, auth.user.id).await?;
    if owned.len() <= 1 {
        return Err(ApiError::unprocessable(
            ErrorCode::SingleIdentityNotDeletable,
            "User must have at least 1 identity after unlinking",
        ));
    }
    if !owned.iter().any(|i| i.id == identity_id) {
        return Err(not_found());
    }
    identities::delete_one(&mut *tx, auth.user.id, identity_id).await?;
    refresh_providers(&mut tx, auth.user.id).await?;
    tx.commit().await?;
    Ok(axum::Json(json!({})))
}
