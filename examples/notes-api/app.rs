//! The notes service: schema, routes and handlers. `main.rs` runs it; the integration tests
//! (`tests/it/rls.rs`) include this very file, so the code they test is the example's code.
//!
//! Every handler runs its SQL inside `rls.begin(...)` with the caller's token, so the database
//! policies below, the same ones a Supabase project writes for PostgREST, decide what each
//! caller sees. The handlers contain no `where owner = ...`: forgetting it cannot leak notes.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use latchkey::rls::{Rls, RlsError, bearer_token};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Idempotent, and serialised by an advisory lock so that replicas can start together.
/// Needs Latchkey's migrations (`latchkey migrate`): they create `auth.uid()` and the roles.
const SCHEMA: &str = r#"
select pg_advisory_xact_lock(hashtext('notes-api schema'));

do $$
begin
    if to_regprocedure('auth.uid()') is null
       or not exists (select 1 from pg_roles where rolname = 'authenticated') then
        raise exception 'auth.uid() or the authenticated role is missing: run `latchkey migrate` on this database first';
    end if;
end
$$;

create table if not exists public.notes (
    id uuid primary key default gen_random_uuid(),
    -- Filled in from the caller's token: clients never say who they are.
    owner uuid not null default auth.uid(),
    body text not null check (length(body) between 1 and 10000),
    created_at timestamptz not null default now()
);
create index if not exists notes_owner_idx on public.notes (owner);

-- Without a policy nobody but the owner of the table and BYPASSRLS roles (service_role) sees
-- a row; the policy lets signed-in users read and write their own notes, and `with check`
-- stops them from inserting or moving a note into someone else's name.
alter table public.notes enable row level security;
do $$
begin
    if not exists (select 1 from pg_policies
                   where schemaname = 'public' and tablename = 'notes'
                     and policyname = 'owners manage their notes') then
        create policy "owners manage their notes" on public.notes
            for all to authenticated
            using (owner = auth.uid())
            with check (owner = auth.uid());
    end if;
end
$$;

-- Grants decide which statements a role may run at all, policies which rows. anon may query
-- (as with Supabase's default grants) but no policy matches it, so it sees no rows.
grant usage on schema public to anon, authenticated, service_role;
grant select on public.notes to anon;
grant select, insert, update, delete on public.notes to authenticated;
grant all on public.notes to service_role;
"#;

/// Creates the `notes` table and its policies if they are not there yet.
pub async fn create_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await
}

#[derive(Clone)]
pub struct NotesState {
    pub pool: PgPool,
    pub rls: Rls,
}

pub fn router(state: NotesState) -> Router {
    Router::new()
        .route("/notes", get(list_notes).post(create_note))
        .route("/notes/{id}", patch(update_note).delete(delete_note))
        .with_state(state)
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: Uuid,
    pub owner: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub struct NoteParams {
    pub body: String,
}

/// A transaction running as the caller: their token's role and claims, or `anon` without an
/// `Authorization` header. A header that is not `Bearer <token>` is refused, not ignored.
async fn as_caller(state: &NotesState, headers: &HeaderMap) -> Result<Transaction<'static, Postgres>, NotesError> {
    let token = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or(RlsError::MissingToken)?,
        ),
    };
    Ok(state.rls.begin_optional(&state.pool, token).await?)
}

async fn list_notes(State(state): State<NotesState>, headers: HeaderMap) -> Result<Json<Vec<Note>>, NotesError> {
    let mut tx = as_caller(&state, &headers).await?;
    let notes =
        sqlx::query_as::<_, Note>("select id, owner, body, created_at from public.notes order by created_at, id")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Json(notes))
}

async fn create_note(
    State(state): State<NotesState>,
    headers: HeaderMap,
    params: Result<Json<NoteParams>, JsonRejection>,
) -> Result<(StatusCode, Json<Note>), NotesError> {
    let Json(params) = params.map_err(|e| NotesError::BadRequest(e.body_text()))?;
    let mut tx = as_caller(&state, &headers).await?;
    let note =
        sqlx::query_as::<_, Note>("insert into public.notes (body) values ($1) returning id, owner, body, created_at")
            .bind(params.body)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(note)))
}

async fn update_note(
    State(state): State<NotesState>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
    params: Result<Json<NoteParams>, JsonRejection>,
) -> Result<Json<Note>, NotesError> {
    let Path(id) = id.map_err(|_| NotesError::NotFound)?;
    let Json(params) = params.map_err(|e| NotesError::BadRequest(e.body_text()))?;
    let mut tx = as_caller(&state, &headers).await?;
    // Someone else's note is invisible under the policy: 0 rows, hence 404, not 403.
    let note = sqlx::query_as::<_, Note>(
        "update public.notes set body = $2 where id = $1 returning id, owner, body, created_at",
    )
    .bind(id)
    .bind(params.body)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(NotesError::NotFound)?;
    tx.commit().await?;
    Ok(Json(note))
}

async fn delete_note(
    State(state): State<NotesState>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<StatusCode, NotesError> {
    let Path(id) = id.map_err(|_| NotesError::NotFound)?;
    let mut tx = as_caller(&state, &headers).await?;
    sqlx::query_scalar::<_, Uuid>("delete from public.notes where id = $1 returning id")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(NotesError::NotFound)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug)]
pub enum NotesError {
    Rls(RlsError),
    NotFound,
    BadRequest(String),
}

impl From<RlsError> for NotesError {
    fn from(err: RlsError) -> Self {
        NotesError::Rls(err)
    }
}

impl From<sqlx::Error> for NotesError {
    fn from(err: sqlx::Error) -> Self {
        NotesError::Rls(RlsError::Database(err))
    }
}

impl IntoResponse for NotesError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            NotesError::NotFound => (StatusCode::NOT_FOUND, "note not found".to_owned()),
            NotesError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            NotesError::Rls(RlsError::ForbiddenRole(_)) => {
                (StatusCode::FORBIDDEN, "this role is not allowed".to_owned())
            }
            NotesError::Rls(err @ (RlsError::MissingToken | RlsError::InvalidToken(_) | RlsError::ExpiredToken)) => {
                (StatusCode::UNAUTHORIZED, err.to_string())
            }
            NotesError::Rls(err @ RlsError::KeysUnavailable(_)) => {
                tracing::warn!("{err}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the token cannot be checked now".to_owned(),
                )
            }
            NotesError::Rls(RlsError::Database(err)) => database_error(&err),
        };
        (status, Json(json!({ "message": message }))).into_response()
    }
}

/// Postgres' verdicts on the caller map to 4xx (as PostgREST maps them); anything else is a
/// bug or an outage, logged here once, without the request's token.
fn database_error(err: &sqlx::Error) -> (StatusCode, String) {
    let code = err.as_database_error().and_then(|db| db.code());
    match code.as_deref() {
        // insufficient_privilege: no grant for this role, or a `with check` policy refused
        // the row.
        Some("42501") => (StatusCode::FORBIDDEN, "permission denied".to_owned()),
        // not_null_violation (e.g. no `sub` to own the note), check_violation (empty body).
        Some("23502" | "23514") => (
            StatusCode::BAD_REQUEST,
            "the note is not valid for this caller".to_owned(),
        ),
        _ => {
            tracing::error!(error = %err, "database error");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
        }
    }
}
