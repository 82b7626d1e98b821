//! `/admin/users` and `/admin/users/{user_id}`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::admin::{Admin, PageParams};
use crate::api::extract::{Json, OptionalJson, Query};
use crate::api::state::AppState;
use crate::api::types::UserResponse;
use crate::auth::admin_users::{self, Deps, UserFields};
use crate::auth::session::Client;
use crate::error::{Error, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user_by_id, update_user_by_id, delete_user_by_id))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Matches email addresses and `user_metadata.full_name`.
    pub filter: Option<String>,
    /// `created_at asc` or `created_at desc` (default).
    pub sort: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserListResponse {
    users: Vec<UserResponse>,
    aud: String,
}

/// List users, newest first, with GoTrue's `X-Total-Count` and `Link` headers.
#[utoipa::path(
    get, path = "/admin/users", tag = "admin",
    params(PageParams, ListParams),
    responses(
        (status = 200, description = "A page of users", body = UserListResponse),
        (status = 400, description = "Bad paging or sort parameters", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: Admin,
    OriginalUri(uri): OriginalUri,
    Query(page): Query<PageParams>,
    Query(list): Query<ListParams>,
) -> Result<(HeaderMap, axum::Json<UserListResponse>)> {
    let page = page.resolve()?;
    let filter = list.filter.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let ascending = match list.sort.as_deref().map(str::trim).unwrap_or("") {
        "" | "created_at desc" | "created_at" => false,
        "created_at asc" => true,
        _ => return Err(Error::validation("Bad Sort Parameters")),
    };
    let (rows, total) = admin_users::list(&state.db, filter, ascending, page.per_page, page.offset()).await?;
    let users = rows
        .into_iter()
        .map(|(user, identities)| UserResponse::new(user, identities))
        .collect();
    let headers = page.headers(uri.path(), total);
    Ok((
        headers,
        axum::Json(UserListResponse {
            users,
            aud: state.config.jwt.aud.clone(),
        }),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"email": "new-user@example.com", "password": "a-long-password", "email_confirm": true}))]
pub struct AdminUserParams {
    /// The new user's id (a UUID, not the nil one); `POST` only.
    pub id: Option<String>,
    pub aud: Option<String>,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password: Option<String>,
    /// An existing bcrypt (`$2a$...`) or argon2 (`$argon2id$...`) hash, e.g. exported from GoTrue.
    pub password_hash: Option<String>,
    #[serde(default)]
    pub email_confirm: bool,
    #[serde(default)]
    pub phone_confirm: bool,
    #[schema(value_type = Option<Object>)]
    pub user_metadata: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub app_metadata: Option<Value>,
    /// A duration such as `24h`, or `none` to lift a ban.
    pub ban_duration: Option<String>,
}

impl AdminUserParams {
    fn fields(&self) -> UserFields<'_> {
        UserFields {
            id: self.id.as_deref(),
            aud: self.aud.as_deref(),
            role: self.role.as_deref(),
            email: self.email.as_deref(),
            phone: self.phone.as_deref(),
            password: self.password.as_deref(),
            password_hash: self.password_hash.as_deref(),
            email_confirm: self.email_confirm,
            phone_confirm: self.phone_confirm,
            user_metadata: self.user_metadata.as_ref(),
            app_metadata: self.app_metadata.as_ref(),
            ban_duration: self.ban_duration.as_deref(),
        }
    }
}

/// Create a user (no confirmation mail; `email_confirm` confirms the address at once).
#[utoipa::path(
    post, path = "/admin/users", tag = "admin",
    request_body = AdminUserParams,
    responses(
        (status = 200, description = "The new user", body = UserResponse),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 422, description = "Email or phone already registered", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    Json(params): Json<AdminUserParams>,
) -> Result<axum::Json<UserResponse>> {
    let (user, identities) = admin_users::create(&deps(&state), &admin.actor(&client), params.fields()).await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
}

/// One user.
#[utoipa::path(
    get, path = "/admin/users/{user_id}", tag = "admin",
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "Unknown user, or not a UUID", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_user_by_id(
    State(state): State<AppState>,
    _admin: Admin,
    Path(user_id): Path<String>,
) -> Result<axum::Json<UserResponse>> {
    let (user, identities) = admin_users::get(&state.db, &user_id).await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
}

/// Update a user. A new password or a ban ends all of the user's sessions.
#[utoipa::path(
    put, path = "/admin/users/{user_id}", tag = "admin",
    params(("user_id" = String, Path, description = "The user's UUID")),
    request_body = AdminUserParams,
    responses(
        (status = 200, description = "The updated user", body = UserResponse),
        (status = 400, description = "Invalid input", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "Unknown user", body = crate::api::ErrorBody),
        (status = 422, description = "Email or phone taken, weak password", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_user_by_id(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    Path(user_id): Path<String>,
    Json(params): Json<AdminUserParams>,
) -> Result<axum::Json<UserResponse>> {
    let (user, identities) =
        admin_users::update(&deps(&state), &admin.actor(&client), &user_id, params.fields()).await?;
    Ok(axum::Json(UserResponse::new(user, identities)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteUserParams {
    /// Keep the row (emails and phone freed, sign-in impossible) instead of deleting it.
    #[serde(default)]
    pub should_soft_delete: bool,
}

/// Delete a user, and with it every session and refresh token.
#[utoipa::path(
    delete, path = "/admin/users/{user_id}", tag = "admin",
    params(("user_id" = String, Path, description = "The user's UUID")),
    request_body(content = Option<DeleteUserParams>),
    responses(
        (status = 200, description = "Deleted", body = Object),
        (status = 400, description = "A body that is not JSON", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
        (status = 404, description = "Unknown user", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_user_by_id(
    State(state): State<AppState>,
    admin: Admin,
    client: Client,
    Path(user_id): Path<String>,
    OptionalJson(params): OptionalJson<DeleteUserParams>,
) -> Result<axum::Json<Value>> {
    admin_users::delete(
        &deps(&state),
        &admin.actor(&client),
        &user_id,
        params.should_soft_delete,
    )
    .await?;
    Ok(axum::Json(json!({})))
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        hasher: &state.hasher,
        policy: &state.config.password,
        accounts: &state.accounts,
    }
}
