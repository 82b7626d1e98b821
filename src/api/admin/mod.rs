//! The admin API (`/admin/...`): callers present a JWT whose `role` is one of
//! `GOTRUE_JWT_ADMIN_ROLES` (a service_role key, typically).

pub mod audit;
pub mod custom_providers;
pub mod factors;
pub mod links;
pub mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::api::auth_user::verified_claims;
use crate::api::state::AppState;
use crate::auth::admin_users::AdminActor;
use crate::auth::session::Client;
use crate::db::sessions;
use crate::error::{Error, ErrorCode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router())
        .merge(audit::router())
        .merge(links::router())
        .merge(factors::router())
        .merge(custom_providers::router())
}

/// A caller with an admin role. GoTrue does not require a user behind the token (the
/// service_role key has no `sub`); if the token names a session, it must still exist.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The token's `sub` when it is a UUID, for the audit log.
    pub id: Uuid,
    pub role: String,
}

impl Admin {
    /// This admin as the actor of the audit log's entries, calling from `client`.
    pub fn actor(&self, client: &Client) -> AdminActor<'_> {
        AdminActor {
            id: self.id,
            role: &self.role,
            ip: client.ip_string(),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let claims = verified_claims(parts, state)?;
        let role = claims.role.clone().unwrap_or_default();
        if !state.config.jwt.admin_roles.contains(&role) {
            return Err(Error::forbidden(ErrorCode::NotAdmin, "User not allowed"));
        }
        if let Some(session_id) = claims.session_id.as_deref().and_then(|s| Uuid::parse_str(s).ok())
            && !session_id.is_nil()
            && sessions::find(&state.db, session_id).await?.is_none()
        {
            return Err(Error::forbidden(ErrorCode::SessionExpired, "Session has expired"));
        }
        let id = claims
            .sub
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(Uuid::nil);
        Ok(Admin { id, role })
    }
}

/// `page` and `per_page`, tolerating the empty values supabase-js sends (`?page=&per_page=`).
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct PageParams {
    #[param(value_type = Option<u32>, example = 1)]
    pub page: Option<String>,
    #[param(value_type = Option<u32>, example = 50)]
    pub per_page: Option<String>,
}

pub struct Page {
    pub page: i64,
    pub per_page: i64,
}

impl PageParams {
    pub fn resolve(&self) -> Result<Page, Error> {
        let parse =
            |raw: &Option<String>, default: i64, name: &str| -> Result<i64, Error> {
                match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    None => Ok(default),
                    Some(value) => value.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::bad_request(ErrorCode::ValidationFailed, format!("Bad {name} parameter"))
                    }),
                }
            };
        Ok(Page {
            page: parse(&self.page, 1, "Page")?,
            per_page: parse(&self.per_page, 50, "Pagination")?.min(1000),
        })
    }
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// GoTrue's pagination headers, exactly: `X-Total-Count`, and `Link` with `rel="next"`
    /// (when there is a next page) and `rel="last"`. `page` must come first in each link:
    /// supabase-js reads the page number as the first character after the first `=`.
    pub fn headers(&self, path: &str, total: i64) -> HeaderMap {
        let last = total / self.per_page + i64::from(total % self.per_page > 0);
        let mut links = Vec::new();
        if self.page < last {
            links.push(format!(
                "<{path}?page={}&per_page={}>; rel=\"next\"",
                self.page + 1,
                self.per_page
            ));
        }
        links.push(format!("<{path}?page={last}&per_page={}>; rel=\"last\"", self.per_page));
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
            headers.insert("link", value);
        }
        headers.insert("x-total-count", HeaderValue::from(total));
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_page_values_use_defaults() {
        let page = PageParams {
            page: Some(String::new()),
            per_page: Some(String::new()),
        }
        .resolve()
        .unwrap();
        assert_eq!((page.page, page.per_page), (1, 50));
        assert!(
            PageParams {
                page: Some("x".into()),
                per_page: None
            }
            .resolve()
            .is_err()
        );
        assert!(
            PageParams {
                page: Some("0".into()),
                per_page: None
            }
            .resolve()
            .is_err()
        );
    }

    #[test]
    fn link_header_matches_gotrue() {
        let page = Page { page: 2, per_page: 1 };
        let headers = page.headers("/admin/users", 37);
        assert_eq!(
            headers["link"],
            "</admin/users?page=3&per_page=1>; rel=\"next\", </admin/users?page=37&per_page=1>; rel=\"last\""
        );
        assert_eq!(headers["x-total-count"], "37");
        let last = Page { page: 4, per_page: 10 }.headers("/admin/users", 35);
        assert_eq!(last["link"], "</admin/users?page=4&per_page=10>; rel=\"last\"");
    }
}
