//! `_auth_custom_oauth_providers`: the custom OAuth / OIDC providers added through the admin API.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct CustomProviderRow {
    pub id: Uuid,
    /// `oauth2` or `oidc`.
    pub provider_type: String,
    /// `custom:<id>`.
    pub identifier: String,
    pub name: String,
    pub client_id: String,
    #[sqlx(try_from = "String")]
    pub client_secret: SecretString,
    pub acceptable_client_ids: Vec<String>,
    pub scopes: Vec<String>,
    pub pkce_enabled: bool,
    pub attribute_mapping: Value,
    pub authorization_params: Value,
    pub enabled: bool,
    pub email_optional: bool,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub skip_nonce_check: bool,
    pub cached_discovery: Option<Value>,
    pub discovery_cached_at: Option<DateTime<Utc>>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_uri: Option<String>,
    pub custom_claims_allowlist: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, provider_type, identifier, name, client_id, client_secret, acceptable_client_ids, scopes, \
         pkce_enabled, attribute_mapping, authorization_params, enabled, email_optional, issuer, discovery_url, \
         skip_nonce_check, cached_discovery, discovery_cached_at, authorization_url, token_url, userinfo_url, \
         jwks_uri, custom_claims_allowlist, created_at, updated_at"
    };
}

/// Every provider, newest first; only those of `provider_type` when given.
pub async fn list(db: impl PgExecutor<'_>, provider_type: Option<&str>) -> sqlx::Result<Vec<CustomProviderRow>> {
    sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from _auth_custom_oauth_providers where $1::text is null or provider_type = $1 \
         order by created_at desc, id"
    ))
    .bind(provider_type)
    .fetch_all(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, identifier: &str) -> sqlx::Result<Option<CustomProviderRow>> {
    sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from _auth_custom_oauth_providers where identifier = $1"
    ))
    .bind(identifier)
    .fetch_optional(db)
    .await
}

/// Serialises creations within the caller's transaction, so that a quota check and the
/// insert after it are not interleaved with another creation.
pub async fn lock_for_create(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('_auth_custom_oauth_providers'))")
        .execute(db)
        .await?;
    Ok(())
}

pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from _auth_custom_oauth_providers")
        .fetch_one(db)
        .await
}

/// Inserts `row` (its timestamps are the database's); `None` when the identifier is taken.
pub async fn insert(db: impl PgExecutor<'_>, row: &CustomProviderRow) -> sqlx::Result<Option<CustomProviderRow>> {
    let query = sqlx::query_as(concat!(
        "insert into _auth_custom_oauth_providers (id, provider_type, identifier, name, client_id, client_secret, \
             acceptable_client_ids, scopes, pkce_enabled, attribute_mapping, authorization_params, enabled, \
             email_optional, issuer, discovery_url, skip_nonce_check, cached_discovery, discovery_cached_at, \
             authorization_url, token_url, userinfo_url, jwks_uri, custom_claims_allowlist) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
             $22, $23) \
         on conflict (identifier) do nothing returning ",
        columns!()
    ))
    .bind(row.id)
    .bind(&row.provider_type)
    .bind(&row.identifier);
    bind_settings(query, row).fetch_optional(db).await
}

/// Writes every changeable column of `row`; `None` when it was deleted meanwhile.
pub async fn update(db: impl PgExecutor<'_>, row: &CustomProviderRow) -> sqlx::Result<Option<CustomProviderRow>> {
    let query = sqlx::query_as(concat!(
        "update _auth_custom_oauth_providers set name = $2, client_id = $3, client_secret = $4, \
             acceptable_client_ids = $5, scopes = $6, pkce_enabled = $7, attribute_mapping = $8, \
             authorization_params = $9, enabled = $10, email_optional = $11, issuer = $12, discovery_url = $13, \
             skip_nonce_check = $14, cached_discovery = $15, discovery_cached_at = $16, authorization_url = $17, \
             token_url = $18, userinfo_url = $19, jwks_uri = $20, custom_claims_allowlist = $21, updated_at = now() \
         where id = $1 returning ",
        columns!()
    ))
    .bind(row.id);
    bind_settings(query, row).fetch_optional(db).await
}

type RowQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, CustomProviderRow, sqlx::postgres::PgArguments>;

/// Binds the settings `insert` and `update` both write, from `name` to `custom_claims_allowlist`
/// in the order of the table's columns.
fn bind_settings<'q>(query: RowQuery<'q>, row: &'q CustomProviderRow) -> RowQuery<'q> {
    query
        .bind(&row.name)
        .bind(&row.client_id)
        .bind(row.client_secret.expose_secret())
        .bind(&row.acceptable_client_ids)
        .bind(&row.scopes)
        .bind(row.pkce_enabled)
        .bind(&row.attribute_mapping)
        .bind(&row.authorization_params)
        .bind(row.enabled)
        .bind(row.email_optional)
        .bind(&row.issuer)
        .bind(&row.discovery_url)
        .bind(row.skip_nonce_check)
        .bind(&row.cached_discovery)
        .bind(row.discovery_cached_at)
        .bind(&row.authorization_url)
        .bind(&row.token_url)
        .bind(&row.userinfo_url)
        .bind(&row.jwks_uri)
        .bind(&row.custom_claims_allowlist)
}

pub async fn delete(db: impl PgExecutor<'_>, identifier: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query("delete from _auth_custom_oauth_providers where identifier = $1")
        .bind(identifier)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() > 0)
}
