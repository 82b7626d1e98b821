//! Reading GoTrue's tables, a page at a time, into temporary tables of the import's
//! transaction (`pg_temp.gotrue_*`, gone at commit or rollback). Everything the import checks
//! and writes is then set-based SQL over these tables, whether GoTrue's tables are in the
//! same database or behind `--from`.
//!
//! Rows travel as JSON (`to_jsonb(row)`, `jsonb_populate_recordset`): a column an older
//! GoTrue lacks simply arrives as null, and Rust never needs GoTrue's column list.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Schema, sql};

/// Rows per page: a few megabytes of JSON at most.
pub const PAGE_ROWS: i64 = 2000;

/// The GoTrue tables read page by page, each keyed by its `id` (a uuid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Identities,
    Sessions,
    MfaFactors,
    AuditLog,
}

impl Table {
    pub fn gotrue_name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Identities => "identities",
            Table::Sessions => "sessions",
            Table::MfaFactors => "mfa_factors",
            Table::AuditLog => "audit_log_entries",
        }
    }
}

/// The GoTrue tables and columns the import reads. Their absence means a GoTrue older than
/// early 2024 (before `users.is_anonymous`), whose own migrations must run first.
const REQUIRED: &[(&str, &str)] = &[
    ("users", "is_anonymous"),
    ("users", "is_sso_user"),
    ("users", "deleted_at"),
    ("identities", "provider_id"),
    ("identities", "id"),
    ("sessions", "aal"),
    ("refresh_tokens", "session_id"),
    ("mfa_amr_claims", "authentication_method"),
    ("mfa_factors", "status"),
    ("audit_log_entries", "ip_address"),
    ("one_time_tokens", "token_hash"),
];

/// `table.column` for each required column that `schema` lacks (or has only in a view).
pub async fn missing_columns(db: impl PgExecutor<'_>, schema: &Schema) -> sqlx::Result<Vec<String>> {
    let (tables, columns): (Vec<&str>, Vec<&str>) = REQUIRED.iter().copied().unzip();
    sqlx::query_scalar(
        "select r.t || '.' || r.c from unnest($2::text[], $3::text[]) with ordinality as r(t, c, n) \
         where not exists ( \
             select 1 from pg_attribute a join pg_class k on k.oid = a.attrelid \
             join pg_namespace s on s.oid = k.relnamespace \
             where s.nspname = $1 and k.relname = r.t and k.relkind in ('r', 'p') \
               and a.attname = r.c and not a.attisdropped) \
         order by r.n",
    )
    .bind(schema.name())
    .bind(tables)
    .bind(columns)
    .fetch_all(db)
    .await
}

/// How the import holds GoTrue's tables while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Nobody writes (GoTrue must be stopped, but this makes sure): a consistent copy.
    Share,
    /// For `--retarget`, which moves the tables: taken before the first read, because taking
    /// it after reading (a lock upgrade) deadlocks with autovacuum or any other reader.
    Exclusive,
}

/// Locks every GoTrue table present in `schema`.
pub async fn hold(conn: &mut PgConnection, schema: &Schema, hold: Hold) -> sqlx::Result<()> {
    let present: Vec<String> = sqlx::query_scalar(
        "select format('%I.%I', n.nspname, c.relname) from pg_class c \
         join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p') order by 1",
    )
    .bind(schema.name())
    .bind(super::GOTRUE_TABLES)
    .fetch_all(&mut *conn)
    .await?;
    if present.is_empty() {
        return Ok(());
    }
    let mode = match hold {
        Hold::Share => "share",
        Hold::Exclusive => "access exclusive",
    };
    let text = format!("lock table {} in {mode} mode", present.join(", "));
    sqlx::query(sql(text)).execute(conn).await?;
    Ok(())
}

/// The temporary tables, with GoTrue's column names (types as Latchkey needs them).
pub async fn create_staging(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::raw_sql(
        "create temp table gotrue_users ( \
             instance_id uuid, id uuid primary key, aud text, role text, email text, \
             encrypted_password text, email_confirmed_at timestamptz, invited_at timestamptz, \
             confirmation_sent_at timestamptz, recovery_sent_at timestamptz, email_change text, \
             email_change_sent_at timestamptz, email_change_confirm_status smallint, \
             last_sign_in_at timestamptz, raw_app_meta_data jsonb, raw_user_meta_data jsonb, \
             is_super_admin boolean, created_at timestamptz, updated_at timestamptz, phone text, \
             phone_confirmed_at timestamptz, phone_change text, phone_change_sent_at timestamptz, \
             banned_until timestamptz, reauthentication_sent_at timestamptz, is_sso_user boolean, \
             deleted_at timestamptz, is_anonymous boolean \
         ) on commit drop; \
         create temp table gotrue_identities ( \
             id uuid primary key, provider_id text, user_id uuid, identity_data jsonb, provider text, \
             last_sign_in_at timestamptz, created_at timestamptz, updated_at timestamptz \
         ) on commit drop; \
         create index on gotrue_identities (user_id); \
         create temp table gotrue_sessions ( \
             id uuid primary key, user_id uuid, created_at timestamptz, updated_at timestamptz, \
             factor_id uuid, aal text, not_after timestamptz, \
             refreshed_at timestamp, user_agent text, ip inet, tag text, amr jsonb, \
             chain_counter bigint not null default 0 \
         ) on commit drop; \
         create index on gotrue_sessions (user_id); \
         create temp table gotrue_refresh_tokens ( \
             token_hash text primary key, session_id uuid, user_id uuid, counter bigint, \
             parent text, revoked boolean, created_at timestamptz, updated_at timestamptz \
         ) on commit drop; \
         create index on gotrue_refresh_tokens (session_id); \
         create temp table gotrue_mfa_factors ( \
             id uuid primary key, user_id uuid, friendly_name text, factor_type text, status text, \
             created_at timestamptz, updated_at timestamptz, secret text, phone text, \
             last_challenged_at timestamptz, web_authn_credential jsonb, web_authn_aaguid uuid, \
             last_webauthn_challenge_data jsonb, \
             unusable text \
         ) on commit drop; \
         create index on gotrue_mfa_factors (user_id);",
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn page_sql(schema: &Schema, table: Table) -> String {
    let s = schema.quoted();
    let (row, from) = match table {
        Table::Users => ("to_jsonb(x)".to_owned(), format!("{s}.users x")),
        // A session with its authentication methods (newest first, as Latchkey keeps them)
        // and its v1 refresh tokens (oldest first).
        Table::Sessions => (
            format!(
                "to_jsonb(x) || jsonb_build_object( \
                     'amr', coalesce((select jsonb_agg(jsonb_build_object( \
                                 'method', c.authentication_method, \
                                 'timestamp', floor(extract(epoch from c.updated_at))::bigint) \
                             order by c.updated_at desc) \
                         from {s}.mfa_amr_claims c where c.session_id = x.id), '[]'::jsonb), \
                     'tokens', coalesce((select jsonb_agg(jsonb_build_object( \
                                 'token', t.token, 'revoked', coalesce(t.revoked, false), \
                                 'created_at', t.created_at, 'updated_at', t.updated_at) order by t.id) \
                         from {s}.refresh_tokens t where t.session_id = x.id), '[]'::jsonb))"
            ),
            format!("{s}.sessions x"),
        ),
        Table::Identities => ("to_jsonb(x)".to_owned(), format!("{s}.identities x")),
        // The enums (factor_type, status) arrive as their labels.
        Table::MfaFactors => ("to_jsonb(x)".to_owned(), format!("{s}.mfa_factors x")),
        Table::AuditLog => ("to_jsonb(x)".to_owned(), format!("{s}.audit_log_entries x")),
    };
    format!("select {row} from {from} where $1::uuid is null or x.id > $1 order by x.id limit $2")
}

/// The rows of `table` after the key `after` (from the start with `None`), in key order.
pub async fn read_page(
    db: impl PgExecutor<'_>,
    schema: &Schema,
    table: Table,
    after: Option<Uuid>,
) -> sqlx::Result<Vec<Value>> {
    let rows: Vec<Json<Value>> = sqlx::query_scalar(sql(page_sql(schema, table)))
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// The key of a page's last row, to read the next page after it.
pub fn last_key(rows: &[Value]) -> Option<Uuid> {
    rows.last()?.get("id")?.as_str()?.parse().ok()
}

pub async fn count(db: impl PgExecutor<'_>, schema: &Schema, table: Table) -> sqlx::Result<i64> {
    let text = format!("select count(*) from {}.{}", schema.quoted(), table.gotrue_name());
    sqlx::query_scalar(sql(text)).fetch_one(db).await
}

/// Where staged rows of each kind go.
#[derive(Debug, Clone, Copy)]
pub enum Staged {
    Users,
    Identities,
    Sessions,
    RefreshTokens,
    /// With `unusable` set to why Latchkey cannot hold the factor (null: it can).
    MfaFactors,
}

/// Adds `rows` (JSON objects with the staging table's column names) to the staging table.
pub async fn stage(db: impl PgExecutor<'_>, into: Staged, rows: &[Value]) -> sqlx::Result<u64> {
    let table = match into {
        Staged::Users => "gotrue_users",
        Staged::Identities => "gotrue_identities",
        Staged::Sessions => "gotrue_sessions",
        Staged::RefreshTokens => "gotrue_refresh_tokens",
        Staged::MfaFactors => "gotrue_mfa_factors",
    };
    let text = format!(
        "insert into pg_temp.{table} select * from jsonb_populate_recordset(null::pg_temp.{table}, $1) \
         on conflict do nothing"
    );
    let done = sqlx::query(sql(text)).bind(Json(rows)).execute(db).await?;
    Ok(done.rows_affected())
}

/// Facts about GoTrue's tables that are not staged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFacts {
    /// Live v1 tokens without a session (issued before GoTrue had sessions, 2022).
    pub tokens_without_session: i64,
}

pub async fn source_facts(conn: &mut PgConnection, schema: &Schema) -> sqlx::Result<SourceFacts> {
    let s = schema.quoted();
    let tokens_without_session = sqlx::query_scalar(sql(format!(
        "select count(*) from {s}.refresh_tokens where session_id is null and not coalesce(revoked, false)"
    )))
    .fetch_one(conn)
    .await?;
    Ok(SourceFacts { tokens_without_session })
}
