//! `/admin/users/{user_id}/factors`: supabase-js `auth.admin.mfa.listFactors` and
//! `deleteFactor`, and GoTrue's rename.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::admin::Admin;
use crate::api::extract::Json;
use crate::api::state::AppState;
use crate::api::types::FactorResponse;
use crate::auth::mfa::admin;
use crate::auth::session::Client;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_factors))
        .routes(routes!(update_factor, delete_factor))
}

/// A user's factors, verified or not, oldest first.
#[utoipa::path(
    get, path = "/admin/users/{user_id}/factors", tag = "admin",
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, description = "The factors", body = Vec<FactorResponse>),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "Unknown user, or not a UUID", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_factors(
    State(state): State<AppState>,
    _admin: Admin,
    Path(user_id): Path<String>,
) -> Result<axum::Json<Vec<FactorResponse>>> {
    let factors = admin::list(&state.db, &user_id).await?;
    Ok(axum::Json(factors.into_iter().map(FactorResponse::from).collect()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"friendly_name": "Work phone"}))]
pub struct UpdateFactorParams {
    /// The new name; blank or absent leaves it.
    pub friendly_name: Option<String>,
    /// For phone factors, which Latchkey does not have; ignored.
    pub phone: Option<String>,
}

/// Rename a factor.
#[utoipa::path(
    put, path = "/admin/users/{user_id}/factors/{factor_id}", tag = "admin",
    params(
        ("user_id" = String, Path, description = "The user's UUID"),
        ("factor_id" = String, Path, description = "The factor's id"),
    ),
    request_body = UpdateFactorParams,
    responses(
        (status = 200, description = "The factor", body = FactorResponse),
        (status = 400, description = "validation_failed: a name over 255 characters", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "Unknown user or factor, or not a UUID", body = crate::api::ErrorBody),
        (status = 422, description = "mfa_factor_name_conflict", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_factor(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    Path((user_id, factor_id)): Path<(String, String)>,
    Json(params): Json<UpdateFactorParams>,
) -> Result<axum::Json<FactorResponse>> {
    let factor = admin::rename(
        &state.db,
        &admin.actor(&client),
        &user_id,
        &factor_id,
        params.friendly_name.as_deref(),
    )
    .await?;
    Ok(axum::Json(factor.into()))
}

/// Delete a factor; the sessions that reached aal2 through it are aal1 again.
#[utoipa::path(
    delete, path = "/admin/users/{user_id}/factors/{factor_id}", tag = "admin",
    params(
        ("user_id" = String, Path, description = "The user's UUID"),
        ("factor_id" = String, Path, description = "The factor's id"),
    ),
    responses(
        (status = 200, description = "The factor as it was", body = FactorResponse),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "Unknown user or factor, or not a UUID", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_factor(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    Path((user_id, factor_id)): Path<(String, String)>,
) -> Result<axum::Json<FactorResponse>> {
    let factor = admin::delete(&state.db, &admin.actor(&client), &user_id, &factor_id).await?;
    Ok(axum::Json(factor.into()))
}
