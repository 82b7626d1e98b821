//! `GET /admin/audit`: the audit log, newest first.

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::admin::{Admin, PageParams};
use crate::api::extract::Query;
use crate::api::state::AppState;
use crate::db::audit::{self, AuditFilter};
use crate::error::{Error, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// `author:<id or email>`, `action:<action>` or `type:<log type>`.
    #[param(example = "action:login")]
    pub query: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryResponse {
    id: Uuid,
    #[schema(value_type = Object)]
    payload: Value,
    created_at: DateTime<Utc>,
    ip_address: String,
}

/// Audit log entries.
#[utoipa::path(
    get, path = "/admin/audit", tag = "admin",
    params(PageParams, AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = Vec<AuditEntryResponse>),
        (status = 400, description = "Bad query or paging parameters", body = crate::api::ErrorBody),
        (status = 401, description = "No bearer token", body = crate::api::ErrorBody),
        (status = 403, description = "Not an admin token", body = crate::api::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit(
    State(state): State<AppState>,
    _admin: Admin,
    OriginalUri(uri): OriginalUri,
    Query(page): Query<PageParams>,
    Query(query): Query<AuditQuery>,
) -> Result<(HeaderMap, axum::Json<Vec<AuditEntryResponse>>)> {
    let page = page.resolve()?;
    let filter = match query.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        None => AuditFilter::All,
        Some(q) => match q.split_once(':') {
            Some(("author", value)) => AuditFilter::Author(value.trim()),
            Some(("action", value)) => AuditFilter::Action(value.trim()),
            Some(("type", value)) => AuditFilter::Type(value.trim()),
            _ => {
                return Err(Error::validation("Invalid query scope: use author:, action: or type:"));
            }
        },
    };
    let rows = audit::list(&state.db, filter, page.per_page, page.offset()).await?;
    let total = audit::count(&state.db, filter).await?;
    let entries = rows
        .into_iter()
        .map(|row| AuditEntryResponse {
            id: row.id,
            payload: row.payload,
            created_at: row.created_at,
            ip_address: row.ip_address,
        })
        .collect();
    Ok((page.headers(uri.path(), total), axum::Json(entries)))
}
