//! `_auth_flow_state`: PKCE flows (email links now, OAuth later).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct FlowStateRow {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub auth_code: String,
    pub code_challenge_method: Option<String>,
    pub code_challenge: Option<String>,
    pub provider_type: String,
    pub provider_access_token: Option<String>,
    pub provider_refresh_token: Option<String>,
    pub authentication_method: String,
    pub auth_code_issued_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub referrer: Option<String>,
    pub linking_target_id: Option<Uuid>,
    /// PKCE towards the provider: the verifier the code exchange sends.
    pub provider_code_verifier: Option<String>,
}

macro_rules! flow_state_columns {
    () => {
        "id, user_id, auth_code, code_challenge_method, code_challenge, provider_type, provider_access_token, \
         provider_refresh_token, authentication_method, auth_code_issued_at, created_at, referrer, linking_target_id, \
         provider_code_verifier"
    };
}

pub struct NewFlowState<'a> {
    pub user_id: Option<Uuid>,
    pub code_challenge_method: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub provider_type: &'a str,
    pub authentication_method: &'a str,
    pub referrer: Option<&'a str>,
    /// Manual linking: the user the provider's identity joins.
    pub linking_target_id: Option<Uuid>,
    /// PKCE towards the provider: the verifier kept for the code exchange.
    pub provider_code_verifier: Option<&'a str>,
}

/// A new flow with a fresh random id and auth code (UUID v4 strings, as GoTrue makes them).
pub async fn insert(db: impl PgExecutor<'_>, flow: &NewFlowState<'_>) -> sqlx::Result<FlowStateRow> {
    sqlx::query_as(concat!(
        "insert into _auth_flow_state (id, user_id, auth_code, code_challenge_method, code_challenge, \
             provider_type, authentication_method, referrer, linking_target_id, provider_code_verifier) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning ",
        flow_state_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(flow.user_id)
    .bind(Uuid::new_v4().to_string())
    .bind(flow.code_challenge_method)
    .bind(flow.code_challenge)
    .bind(flow.provider_type)
    .bind(flow.authentication_method)
    .bind(flow.referrer)
    .bind(flow.linking_target_id)
    .bind(flow.provider_code_verifier)
    .fetch_one(db)
    .await
}

/// The newest flow of a user for one of `methods` (GoTrue's `FindFlowStateByUserID`).
pub async fn latest_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    methods: &[&str],
) -> sqlx::Result<Option<FlowStateRow>> {
    sqlx::query_as(concat!(
        "select ",
        flow_state_columns!(),
        " from _auth_flow_state where user_id = $1 and authentication_method = any($2) \
         order by created_at desc limit 1"
    ))
    .bind(user_id)
    .bind(methods)
    .fetch_optional(db)
    .await
}

/// Marks the auth code as handed out (`?code=` in a redirect).
pub async fn mark_code_issued(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<FlowStateRow> {
    sqlx::query_as(concat!(
        "update _auth_flow_state set auth_code_issued_at = now(), updated_at = now() where id = $1 returning ",
        flow_state_columns!()
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// The flow an auth code belongs to, locked so that two exchanges cannot both use it.
pub async fn find_by_auth_code_for_update(
    db: impl PgExecutor<'_>,
    auth_code: &str,
) -> sqlx::Result<Option<FlowStateRow>> {
    sqlx::query_as(concat!(
        "select ",
        flow_state_columns!(),
        " from _auth_flow_state where auth_code = $1 for update"
    ))
    .bind(auth_code)
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_flow_state where id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<FlowStateRow>> {
    sqlx::query_as(concat!(
        "select ",
        flow_state_columns!(),
        " from _auth_flow_state where id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Claims an OAuth flow for its callback: returns it only to the first caller.
pub async fn claim_for_callback(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<FlowStateRow>> {
    sqlx::query_as(concat!(
        "update _auth_flow_state set callback_at = now(), updated_at = now() \
         where id = $1 and authentication_method = 'oauth' and callback_at is null returning ",
        flow_state_columns!()
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A PKCE OAuth flow back from the provider: the user, the provider's tokens (returned by the
/// exchange as `provider_token` / `provider_refresh_token`) and the auth code handed out.
pub async fn complete_oauth(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user_id: Uuid,
    provider_access_token: &str,
    provider_refresh_token: Option<&str>,
) -> sqlx::Result<FlowStateRow> {
    sqlx::query_as(concat!(
        "update _auth_flow_state set user_id = $2, provider_access_token = $3, provider_refresh_token = $4, \
             auth_code_issued_at = now(), updated_at = now() where id = $1 returning ",
        flow_state_columns!()
    ))
    .bind(id)
    .bind(user_id)
    .bind(provider_access_token)
    .bind(provider_refresh_token)
    .fetch_one(db)
    .await
}
