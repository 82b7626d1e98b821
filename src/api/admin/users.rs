//! `/admin/users` and `/admin/users/{user_id}`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::admin::{Admin, PageParams};
use crate::api::extract::{Json, OptionalJson, Query};
use crate::api::state::AppState;
use crate::api::types::UserResponse;
use crate::auth::accounts::{self, AdminAccount};
use crate::auth::password::{self, PasswordUse};
use crate::auth::session::Client;
use crate::config::parse_duration;
use crate::db::audit::{self, Action};
use crate::db::users::{AdminChanges, UserRow};
use crate::db::{identities, sessions, users};
use crate::error::{Error, ErrorCode, Result};

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
    let rows = users::list(&state.db, filter, ascending, page.per_page, page.offset()).await?;
    let total = users::count(&state.db, filter).await?;
    let ids: Vec<Uuid> = rows.iter().map(|u| u.id).collect();
    let mut all_identities = identities::for_users(&state.db, &ids).await?;
    let users = rows
        .into_iter()
        .map(|user| {
            let (mine, rest): (Vec<_>, Vec<_>) = all_identities.drain(..).partition(|i| i.user_id == user.id);
            all_identities = rest;
            UserResponse::new(user, mine)
        })
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
    pub id: Option<Uuid>,
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
    let email = params
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(accounts::normalize_email)
        .transpose()?;
    let phone = params
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(accounts::normalize_phone)
        .transpose()?;
    if email.is_none() && phone.is_none() {
        return Err(Error::validation(
            "Cannot create a user without either an email or phone",
        ));
    }
    let password_hash = password_hash_for(&state, &params).await?;
    let banned_until = params.ban_duration.as_deref().map(ban_until).transpose()?.flatten();
    let mut tx = state.db.begin().await?;
    let (mut user, identities) = accounts::create_admin_user(
        &mut tx,
        AdminAccount {
            id: params.id.unwrap_or_else(Uuid::new_v4),
            aud: params.aud.as_deref().unwrap_or(&state.config.jwt.aud),
            role: params.role.as_deref().unwrap_or(&state.config.jwt.default_group_name),
            email: email.as_deref(),
            phone: phone.as_deref(),
            password_hash: password_hash.as_deref(),
            email_confirmed: params.email_confirm,
            phone_confirmed: params.phone_confirm,
            user_metadata: object_or_empty(params.user_metadata),
            app_metadata: object_or_empty(params.app_metadata),
        },
    )
    .await?;
    if banned_until.is_some() {
        let changes = AdminChanges {
            banned_until: Some(banned_until),
            ..Default::default()
        };
        user = users::apply_admin_changes(&mut *tx, user.id, &changes).await?;
    }
    let traits = json!({ "user_id": user.id, "user_email": user.email_or_empty(), "user_phone": user.phone });
    audit::insert(
        &mut *tx,
        admin.audit_entry(Action::UserSignedUp, traits, &client.ip_string()),
    )
    .await?;
    tx.commit().await?;
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
    let user = find_user(&state, &user_id).await?;
    let identities = identities::for_user(&state.db, user.id).await?;
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
    let user = find_user(&state, &user_id).await?;
    if let Some(password) = params.password.as_deref().filter(|p| !p.is_empty()) {
        // Length first, as in GoTrue's strength check.
        password::check_length(password, PasswordUse::New)?;
        if let Err(weak) = password::check_policy(&state.config.password, password) {
            return Err(Error::weak_password(weak.message, weak.reasons));
        }
    }
    let email = params
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(accounts::normalize_email)
        .transpose()?;
    let phone = params
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(accounts::normalize_phone)
        .transpose()?;
    let password_hash = password_hash_for(&state, &params).await?;
    let banned_until = params.ban_duration.as_deref().map(ban_until).transpose()?;

    let mut tx = state.db.begin().await?;
    if let Some(email) = &email
        && users::email_taken(&mut *tx, email, user.id).await?
    {
        return Err(Error::unprocessable(
            ErrorCode::EmailExists,
            "A user with this email address has already been registered",
        ));
    }
    if let Some(phone) = &phone
        && users::phone_taken(&mut *tx, phone, user.id).await?
    {
        return Err(Error::unprocessable(
            ErrorCode::PhoneExists,
            "A user with this phone number has already been registered",
        ));
    }
    let changes = AdminChanges {
        email: email.as_deref(),
        phone: phone.as_deref(),
        role: params.role.as_deref().filter(|r| !r.is_empty()),
        confirm_email: params.email_confirm,
        confirm_phone: params.phone_confirm,
        banned_until,
    };
    // The checks above read before this write: a concurrent update can still take the address
    // or number first, and the unique index then says so.
    let mut updated = match users::apply_admin_changes(&mut *tx, user.id, &changes).await {
        Err(err) if crate::db::is_unique_violation(&err, "_auth_users_email_key") => {
            return Err(Error::unprocessable(
                ErrorCode::EmailExists,
                "A user with this email address has already been registered",
            ));
        }
        Err(err) if crate::db::is_unique_violation(&err, "_auth_users_phone_key") => {
            return Err(Error::unprocessable(
                ErrorCode::PhoneExists,
                "A user with this phone number has already been registered",
            ));
        }
        other => other?,
    };
    if let Some(email) = &email {
        identities::set_email(&mut *tx, user.id, email, updated.email_confirmed_at.is_some()).await?;
    }
    if let Some(metadata) = params.user_metadata.as_ref().filter(|m| m.is_object()) {
        updated = users::merge_user_metadata(&mut *tx, user.id, metadata).await?;
    }
    if let Some(metadata) = params.app_metadata.as_ref().filter(|m| m.is_object()) {
        updated = users::merge_app_metadata(&mut *tx, user.id, metadata).await?;
    }
    if let Some(hash) = &password_hash {
        updated = users::set_password(&mut *tx, user.id, hash).await?;
    }
    let banned_now = updated.is_banned(Utc::now());
    if password_hash.is_some() || banned_now {
        sessions::delete_all_for_user(&mut *tx, user.id).await?;
    }
    let traits = json!({ "user_id": user.id, "user_email": updated.email_or_empty(), "user_phone": updated.phone });
    audit::insert(
        &mut *tx,
        admin.audit_entry(Action::UserModified, traits, &client.ip_string()),
    )
    .await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok(axum::Json(UserResponse::new(updated, identities)))
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
    let user = find_user(&state, &user_id).await?;
    let mut tx = state.db.begin().await?;
    if params.should_soft_delete {
        sessions::delete_all_for_user(&mut *tx, user.id).await?;
        identities::delete_for_user(&mut *tx, user.id).await?;
        users::soft_delete(&mut *tx, user.id).await?;
    } else {
        users::delete(&mut *tx, user.id).await?;
    }
    let traits = json!({ "user_id": user.id, "user_email": user.email_or_empty(), "user_phone": user.phone });
    audit::insert(
        &mut *tx,
        admin.audit_entry(Action::UserDeleted, traits, &client.ip_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(json!({})))
}

async fn find_user(state: &AppState, raw_id: &str) -> Result<UserRow> {
    let id = Uuid::parse_str(raw_id)
        .map_err(|_| Error::not_found(ErrorCode::ValidationFailed, "user_id must be an UUID"))?;
    users::find_by_id(&state.db, id)
        .await?
        .ok_or_else(|| Error::not_found(ErrorCode::UserNotFound, "User not found"))
}

/// The hash to store: a new argon2id hash of `password`, or an imported `password_hash`.
async fn password_hash_for(state: &AppState, params: &AdminUserParams) -> Result<Option<String>> {
    let password = params.password.as_deref().filter(|p| !p.is_empty());
    let imported = params.password_hash.as_deref().filter(|h| !h.is_empty());
    match (password, imported) {
        (Some(_), Some(_)) => Err(Error::validation(
            "Only a password or a password hash should be provided",
        )),
        (Some(password), None) => {
            password::check_length(password, PasswordUse::New)?;
            Ok(Some(state.hasher.hash(password).await.map_err(Error::internal)?))
        }
        (None, Some(hash)) => {
            // Stored only if it can be verified, at a bounded cost.
            password::check_imported_hash(hash)?;
            Ok(Some(hash.to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// `ban_duration`: `none` lifts a ban (`Some(None)`); a duration bans until now + duration.
fn ban_until(raw: &str) -> Result<Option<chrono::DateTime<Utc>>> {
    if raw.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let duration = parse_duration(raw)
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .ok_or_else(|| Error::validation(format!("invalid format for ban duration: {raw:?}")))?;
    Ok(Some(Utc::now() + duration))
}

fn object_or_empty(value: Option<Value>) -> Value {
    value.filter(Value::is_object).unwrap_or_else(|| json!({}))
}
