//! `GET /user` and `PUT /user`: the signed-in user reads and changes their account.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth_user::AuthUser;
use crate::api::extract::Json;
use crate::api::types::UserResponse;
use crate::auth::accounts;
use crate::auth::password::{self, MAX_PASSWORD_BYTES, Verification};
use crate::auth::session::Client;
use crate::db::audit::{self, Action};
use crate::db::users::UserRow;
use crate::db::{identities, sessions, users};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_user, put_user))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/user", tag = "user",
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 400, description = "A token whose sub or session_id is not a UUID", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, unknown user or session", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_user(State(state): State<AppState>, auth: AuthUser) -> ApiResult<axum::Json<UserResponse>> {
    let identities = identities::for_user(&state.db, auth.user.id).await?;
    Ok(axum::Json(UserResponse::new(auth.user, identities)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"data": {"name": "New Name"}}))]
pub struct UpdateUserParams {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub current_password: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    /// Shallow-merged into `user_metadata`; a `null` value deletes the key.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub app_metadata: Option<Value>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// Update the signed-in user: metadata, password, or start an email change.
#[utoipa::path(
    put, path = "/user", tag = "user",
    request_body = UpdateUserParams,
    responses(
        (status = 200, description = "The updated user", body = UserResponse),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Invalid token, or app_metadata without admin rights", body = crate::api::ErrorBody),
        (status = 422, description = "Same or weak password, email taken", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_user(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Json(params): Json<UpdateUserParams>,
) -> ApiResult<axum::Json<UserResponse>> {
    let config = &state.config;
    if params.app_metadata.as_ref().is_some_and(|v| !v.is_null()) && !config.jwt.admin_roles.contains(&auth.user.role) {
        return Err(ApiError::forbidden(
            ErrorCode::NotAdmin,
            "Updating app_metadata requires admin privileges",
        ));
    }
    if let Some(data) = params.data.as_ref().filter(|d| !d.is_null())
        && !data.is_object()
    {
        return Err(ApiError::validation("data must be a JSON object"));
    }
    if params.phone.as_deref().is_some_and(|p| !p.trim().is_empty()) {
        return Err(ApiError::bad_request(
            ErrorCode::PhoneProviderDisabled,
            "Phone logins are disabled",
        ));
    }
    let new_password_hash = match params.password.as_deref() {
        Some(password) if !password.is_empty() => Some(check_new_password(&state, &auth.user, password).await?),
        _ => None,
    };
    let new_email = match params.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(raw) => {
            let email = accounts::normalize_email(raw)?;
            (Some(email.as_str()) != auth.user.email.as_deref()).then_some(email)
        }
        None => None,
    };

    let mut tx = state.db.begin().await?;
    let mut user = auth.user.clone();
    if let Some(data) = params.data.as_ref().filter(|d| d.is_object()) {
        user = users::merge_user_metadata(&mut *tx, user.id, data).await?;
    }
    if let Some(hash) = &new_password_hash {
        user = users::set_password(&mut *tx, user.id, hash).await?;
        // A new password ends every other session of the user (GoTrue does the same).
        match auth.session_id {
            Some(current) => sessions::delete_others(&mut *tx, user.id, current).await?,
            None => sessions::delete_all_for_user(&mut *tx, user.id).await?,
        };
        record(&mut tx, &user, Action::UserUpdatePassword, &client).await?;
    }
    if let Some(email) = &new_email {
        if users::email_taken(&mut *tx, email, user.id).await? {
            return Err(ApiError::unprocessable(
                ErrorCode::EmailExists,
                "A user with this email address has already been registered",
            ));
        }
        // The change waits in `new_email` until confirmed through the links the email flow
        // sends to the addresses.
        user = users::set_email_change(&mut *tx, user.id, email).await?;
    }
    record(&mut tx, &user, Action::UserModified, &client).await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
}

/// Length, policy and "not the same as before"; returns the new hash.
async fn check_new_password(state: &AppState, user: &UserRow, password: &str) -> ApiResult<String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation("Password cannot be longer than 72 characters"));
    }
    if let Err(weak) = password::check_policy(&state.config.password, password) {
        return Err(ApiError::weak_password(weak.message, weak.reasons));
    }
    if let Some(stored) = user.encrypted_password.as_deref().filter(|s| !s.is_empty()) {
        let same = state
            .hasher
            .verify(password, Some(stored))
            .await
            .map_err(ApiError::internal)?;
        if matches!(same, Verification::Valid { .. }) {
            return Err(ApiError::unprocessable(
                ErrorCode::SamePassword,
                "New password should be different from the old password.",
            ));
        }
    }
    state.hasher.hash(password).await.map_err(ApiError::internal)
}

async fn record(tx: &mut sqlx::PgConnection, user: &UserRow, action: Action, client: &Client) -> ApiResult<()> {
    audit::insert(
        &mut *tx,
        audit::Entry {
            actor_id: user.id,
            actor_username: user.email_or_empty(),
            action,
            traits: Some(json!({})),
            ip: &client.ip_string(),
        },
    )
    .await?;
    Ok(())
}
