//! Staged GoTrue rows into Latchkey's tables, and the import's bookkeeping.
//!
//! The statements have no `on conflict`: `checks` found every conflict the data can have
//! before this runs, so a conflict here is a race (someone wrote meanwhile) and fails the
//! whole transaction rather than dropping a row.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};

use super::{Schema, sql};

/// GoTrue leaves some columns null or empty where Latchkey has a default or means "none":
/// `''` for no email, phone or pending change, null for no metadata or timestamps.
const USERS: &str = "\
    with inserted as ( \
        insert into _auth_users (instance_id, id, aud, role, email, encrypted_password, \
            email_confirmed_at, invited_at, confirmation_sent_at, recovery_sent_at, email_change, \
            email_change_sent_at, email_change_confirm_status, last_sign_in_at, raw_app_meta_data, \
            raw_user_meta_data, is_super_admin, created_at, updated_at, phone, phone_confirmed_at, \
            phone_change, phone_change_sent_at, banned_until, reauthentication_sent_at, is_sso_user, \
            deleted_at, is_anonymous) \
        select coalesce(instance_id, '00000000-0000-0000-0000-000000000000'), id, coalesce(aud, ''), \
            coalesce(role, ''), nullif(email, ''), nullif(encrypted_password, ''), \
            email_confirmed_at, invited_at, confirmation_sent_at, recovery_sent_at, \
            nullif(email_change, ''), email_change_sent_at, coalesce(email_change_confirm_status, 0), \
            last_sign_in_at, \
            case when jsonb_typeof(raw_app_meta_data) = 'object' then raw_app_meta_data else '{}' end, \
            case when jsonb_typeof(raw_user_meta_data) = 'object' then raw_user_meta_data else '{}' end, \
            is_super_admin, coalesce(created_at, now()), coalesce(updated_at, created_at, now()), \
            nullif(phone, ''), phone_confirmed_at, nullif(phone_change, ''), phone_change_sent_at, \
            banned_until, reauthentication_sent_at, coalesce(is_sso_user, false), deleted_at, \
            coalesce(is_anonymous, false) \
        from pg_temp.gotrue_users \
        returning id) \
    insert into _auth_gotrue_imported_users (id) select id from inserted";

const IDENTITIES: &str = "\
    insert into _auth_identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at, \
        created_at, updated_at) \
    select id, provider_id, user_id, \
        case when jsonb_typeof(identity_data) = 'object' then identity_data else '{}' end, provider, last_sign_in_at, \
        coalesce(created_at, now()), coalesce(updated_at, created_at, now()) \
    from pg_temp.gotrue_identities";

/// The TOTP factors Latchkey can check (`unusable` is null), as they are: same ids, names,
/// secrets, timestamps. A blank name is `''` in GoTrue and here.
const FACTORS: &str = "\
    insert into _auth_mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, \
        secret, phone, last_challenged_at, web_authn_credential, web_authn_aaguid, last_webauthn_challenge_data) \
    select id, user_id, friendly_name, factor_type, status, coalesce(created_at, now()), \
        coalesce(updated_at, created_at, now()), secret, phone, last_challenged_at, web_authn_credential, \
        web_authn_aaguid, last_webauthn_challenge_data \
    from pg_temp.gotrue_mfa_factors where unusable is null";

/// GoTrue's `refreshed_at` is a `timestamp` written in UTC. A session stays aal2 only through a
/// factor imported with it; one reached through a factor left behind is imported as GoTrue's
/// `DowngradeSessionsToAAL1` would leave it (aal1, no factor, without that factor's method in
/// `amr`), so no session claims an assurance Latchkey cannot renew.
const SESSIONS: &str = "\
    insert into _auth_sessions (id, user_id, created_at, updated_at, factor_id, aal, not_after, \
        refreshed_at, user_agent, ip, tag, amr, refresh_token_counter) \
    select s.id, s.user_id, coalesce(s.created_at, now()), coalesce(s.updated_at, s.created_at, now()), \
        case when kept then s.factor_id end, \
        case when kept then coalesce(s.aal, 'aal1') else 'aal1' end, \
        s.not_after, s.refreshed_at at time zone 'UTC', s.user_agent, s.ip, s.tag, \
        case when kept then coalesce(s.amr, '[]') else coalesce(( \
            select jsonb_agg(e.entry order by e.n) \
            from jsonb_array_elements(coalesce(s.amr, '[]')) with ordinality as e(entry, n) \
            where coalesce(e.entry ->> 'method', '') <> all (case f.factor_type \
                when 'totp' then array['totp'] when 'phone' then array['mfa/phone'] \
                when 'webauthn' then array['mfa/webauthn'] \
                else array['totp', 'mfa/phone', 'mfa/webauthn'] end)), '[]') end, \
        s.chain_counter \
    from pg_temp.gotrue_sessions s \
    left join pg_temp.gotrue_mfa_factors f on f.id = s.factor_id \
    cross join lateral (select s.factor_id is null or (f.id is not null and f.unusable is null) as kept) k";

const REFRESH_TOKENS: &str = "\
    insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent, revoked, \
        created_at, updated_at) \
    select token_hash, user_id, session_id, counter, parent, coalesce(revoked, false), \
        coalesce(created_at, now()), coalesce(updated_at, created_at, now()) \
    from pg_temp.gotrue_refresh_tokens";

/// Rows written, by table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Loaded {
    pub users: u64,
    pub identities: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub mfa_factors: u64,
    pub audit_log_entries: u64,
}

/// Writes every staged row, users first.
pub async fn load_staged(conn: &mut PgConnection) -> sqlx::Result<Loaded> {
    let mut counts = Vec::new();
    for statement in [USERS, IDENTITIES, FACTORS, SESSIONS, REFRESH_TOKENS] {
        counts.push(sqlx::query(statement).execute(&mut *conn).await?.rows_affected());
    }
    Ok(Loaded {
        users: counts[0],
        identities: counts[1],
        mfa_factors: counts[2],
        sessions: counts[3],
        refresh_tokens: counts[4],
        audit_log_entries: 0,
    })
}

/// Copies a page of GoTrue's `audit_log_entries`; entries already here are skipped.
pub async fn copy_audit_entries(db: impl PgExecutor<'_>, rows: &[Value]) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "insert into _auth_audit_log (instance_id, id, payload, created_at, ip_address) \
         select coalesce(instance_id, '00000000-0000-0000-0000-000000000000'), id, \
             coalesce(payload, '{}'), coalesce(created_at, now()), left(coalesce(ip_address, ''), 64) \
         from jsonb_to_recordset($1) as r(instance_id uuid, id uuid, payload json, \
             created_at timestamptz, ip_address text) \
         on conflict (id) do nothing",
    )
    .bind(Json(rows))
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Import,
    Export,
    Undo,
}

pub async fn record_run(db: impl PgExecutor<'_>, run: Run, counts: &Value) -> sqlx::Result<()> {
    let kind = match run {
        Run::Import => "import",
        Run::Export => "export",
        Run::Undo => "undo",
    };
    sqlx::query("insert into _auth_gotrue_runs (kind, counts) values ($1, $2)")
        .bind(kind)
        .bind(Json(counts))
        .execute(db)
        .await?;
    Ok(())
}

/// When GoTrue's tables last matched Latchkey's: the newest import or export.
pub async fn last_sync(db: impl PgExecutor<'_>) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("select max(finished_at) from _auth_gotrue_runs where kind in ('import', 'export')")
        .fetch_one(db)
        .await
}

/// Audit entries Latchkey wrote after `since`: sign-ins, sign-ups, changes GoTrue's tables
/// lack unless they were exported.
pub async fn activity_since(db: impl PgExecutor<'_>, since: DateTime<Utc>) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from _auth_audit_log where created_at > $1")
        .bind(since)
        .fetch_one(db)
        .await
}

/// Latchkey users that GoTrue's `users` table in `schema` lacks.
pub async fn users_missing_in_gotrue(db: impl PgExecutor<'_>, schema: &Schema) -> sqlx::Result<i64> {
    let text = format!(
        "select count(*) from _auth_users u where not exists (select 1 from {}.users g where g.id = u.id)",
        schema.quoted()
    );
    sqlx::query_scalar(sql(text)).fetch_one(db).await
}

/// Deletes from Latchkey the users GoTrue's `users` table in `schema` holds (with their
/// identities, sessions and tokens), and forgets they were imported, so that a later import
/// starts afresh. Returns the number of users deleted.
pub async fn forget_gotrue_users(conn: &mut PgConnection, schema: &Schema) -> sqlx::Result<u64> {
    let s = schema.quoted();
    let deleted = sqlx::query(sql(format!(
        "delete from _auth_users u using {s}.users g where g.id = u.id"
    )))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(sql(format!(
        "delete from _auth_gotrue_imported_users i using {s}.users g where g.id = i.id"
    )))
    .execute(conn)
    .await?;
    Ok(deleted)
}
