//! Latchkey's users, identities and MFA factors into GoTrue's tables (`export-gotrue`).
//!
//! Latchkey's rows are read page by page and staged on GoTrue's side (`pg_temp.latchkey_*`,
//! shaped like GoTrue's tables), then written with set-based statements, so the same code
//! serves GoTrue's tables in this database and behind `--to`.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::stage::PAGE_ROWS;
use super::{Schema, sql};

/// Latchkey's tables exported, each keyed by its `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Identities,
    MfaFactors,
}

/// A page of Latchkey's `table` after `after`, as JSON objects with GoTrue's column names.
pub async fn read_page(db: impl PgExecutor<'_>, table: Table, after: Option<Uuid>) -> sqlx::Result<Vec<Value>> {
    let from = match table {
        Table::Users => "_auth_users",
        Table::Identities => "_auth_identities",
        Table::MfaFactors => "_auth_mfa_factors",
    };
    let text = format!("select to_jsonb(x) from {from} x where $1::uuid is null or x.id > $1 order by x.id limit $2");
    let rows: Vec<Json<Value>> = sqlx::query_scalar(sql(text))
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// Users the import brought in and Latchkey has deleted since.
pub async fn deleted_since_import(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select i.id from _auth_gotrue_imported_users i \
         where not exists (select 1 from _auth_users u where u.id = i.id) order by 1",
    )
    .fetch_all(db)
    .await
}

/// Staging tables on GoTrue's side, shaped like its `users` and `identities`.
pub async fn create_staging(conn: &mut PgConnection, gotrue: &Schema) -> sqlx::Result<()> {
    let g = gotrue.quoted();
    sqlx::raw_sql(sql(format!(
        "create temp table latchkey_users (like {g}.users) on commit drop; \
         alter table latchkey_users add primary key (id); \
         create temp table latchkey_identities (like {g}.identities) on commit drop; \
         alter table latchkey_identities add primary key (id); \
         create temp table latchkey_mfa_factors (like {g}.mfa_factors) on commit drop; \
         alter table latchkey_mfa_factors add primary key (id); \
         create temp table latchkey_removed_factors (id uuid primary key) on commit drop; \
         create temp table latchkey_deleted_users (id uuid primary key) on commit drop;"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn stage(db: impl PgExecutor<'_>, table: Table, rows: &[Value]) -> sqlx::Result<u64> {
    let into = match table {
        Table::Users => "latchkey_users",
        Table::Identities => "latchkey_identities",
        Table::MfaFactors => "latchkey_mfa_factors",
    };
    let text = format!("insert into pg_temp.{into} select * from jsonb_populate_recordset(null::pg_temp.{into}, $1)");
    Ok(sqlx::query(sql(text))
        .bind(Json(rows))
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn stage_deleted(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<u64> {
    let done = sqlx::query("insert into pg_temp.latchkey_deleted_users select unnest($1::uuid[])")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// GoTrue's factors of the exported users that Latchkey does not have, as JSON rows (secret
/// included, to judge whether Latchkey could ever have held them).
pub async fn factors_missing_here(db: impl PgExecutor<'_>, gotrue: &Schema) -> sqlx::Result<Vec<Value>> {
    let g = gotrue.quoted();
    let rows: Vec<Json<Value>> = sqlx::query_scalar(sql(format!(
        "select to_jsonb(f) from {g}.mfa_factors f \
         where f.user_id in (select id from pg_temp.latchkey_users) \
           and not exists (select 1 from pg_temp.latchkey_mfa_factors l where l.id = f.id) order by f.id"
    )))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// Factors to delete from GoTrue's table: Latchkey held them and removed them since.
pub async fn stage_removed_factors(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<u64> {
    let done = sqlx::query("insert into pg_temp.latchkey_removed_factors select unnest($1::uuid[])")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Users with a factor whose friendly name one of their factors that stays in GoTrue's table
/// (one Latchkey could not hold) already has: GoTrue's unique index on `(friendly_name,
/// user_id)` would refuse it.
pub async fn factor_name_clashes(db: impl PgExecutor<'_>, gotrue: &Schema) -> sqlx::Result<Vec<Uuid>> {
    let g = gotrue.quoted();
    sqlx::query_scalar(sql(format!(
        "select distinct l.user_id from pg_temp.latchkey_mfa_factors l \
         join {g}.mfa_factors f on f.user_id = l.user_id and f.friendly_name = l.friendly_name and f.id <> l.id \
         where trim(l.friendly_name) <> '' \
           and not exists (select 1 from pg_temp.latchkey_mfa_factors o where o.id = f.id) \
           and not exists (select 1 from pg_temp.latchkey_removed_factors r where r.id = f.id) \
         order by 1"
    )))
    .fetch_all(db)
    .await
}

/// What the export will do, counted before it does it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub users_added: i64,
    pub users_updated: i64,
    pub users_deleted: i64,
    pub identities: i64,
    pub identities_removed: i64,
    pub sessions_ended: i64,
    pub mfa_factors: i64,
    pub mfa_factors_removed: i64,
    /// Factors Latchkey could not hold (phone, WebAuthn, unreadable secrets), left as they are.
    pub mfa_factors_kept: i64,
}

pub async fn plan(conn: &mut PgConnection, gotrue: &Schema) -> sqlx::Result<Plan> {
    // Temporary tables get no statistics unless asked (see `checks::drop_already_imported`).
    sqlx::raw_sql("analyze pg_temp.latchkey_users; analyze pg_temp.latchkey_identities;")
        .execute(&mut *conn)
        .await?;
    let g = gotrue.quoted();
    let row: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(sql(format!(
        "select \
           (select count(*) from pg_temp.latchkey_users l where not exists (select 1 from {g}.users u where u.id = l.id)), \
           (select count(*) from pg_temp.latchkey_users l where exists (select 1 from {g}.users u where u.id = l.id)), \
           (select count(*) from {g}.users u join pg_temp.latchkey_deleted_users d using (id)), \
           (select count(*) from pg_temp.latchkey_identities), \
           (select count(*) from {g}.identities i where exists (select 1 from pg_temp.latchkey_users l where l.id = i.user_id) \
                and not exists (select 1 from pg_temp.latchkey_identities l where l.id = i.id)), \
           (select count(*) from {g}.sessions s where exists (select 1 from pg_temp.latchkey_users l where l.id = s.user_id)), \
           (select count(*) from pg_temp.latchkey_mfa_factors)"
    )))
    .fetch_one(conn)
    .await?;
    Ok(Plan {
        users_added: row.0,
        users_updated: row.1,
        users_deleted: row.2,
        identities: row.3,
        identities_removed: row.4,
        sessions_ended: row.5,
        mfa_factors: row.6,
        mfa_factors_removed: 0,
        mfa_factors_kept: 0,
    })
}

/// The user columns written; GoTrue's plaintext token columns are set to `''` ("none": a
/// NULL there breaks GoTrue's reads), so no link mailed before the import works again.
const USER_COLUMNS: &str = "instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, \
    invited_at, confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at, \
    email_change_token_new, email_change, email_change_sent_at, last_sign_in_at, raw_app_meta_data, \
    raw_user_meta_data, is_super_admin, created_at, updated_at, phone, phone_confirmed_at, phone_change, \
    phone_change_token, phone_change_sent_at, email_change_token_current, email_change_confirm_status, \
    banned_until, reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous";

const USER_VALUES: &str = "instance_id, id, coalesce(aud, ''), coalesce(role, ''), email, encrypted_password, \
    email_confirmed_at, invited_at, '', confirmation_sent_at, '', recovery_sent_at, '', \
    coalesce(email_change, ''), email_change_sent_at, last_sign_in_at, raw_app_meta_data, \
    raw_user_meta_data, is_super_admin, created_at, updated_at, phone, phone_confirmed_at, \
    coalesce(phone_change, ''), '', phone_change_sent_at, '', email_change_confirm_status, banned_until, \
    '', reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous";

/// GoTrue's factor columns Latchkey writes, those a GoTrue of 2024 lacks included: only the
/// ones its table has are written (see [`factor_columns`]).
const FACTOR_COLUMNS: &[&str] = &[
    "id",
    "user_id",
    "friendly_name",
    "factor_type",
    "status",
    "created_at",
    "updated_at",
    "secret",
    "phone",
    "last_challenged_at",
    "web_authn_credential",
    "web_authn_aaguid",
    "last_webauthn_challenge_data",
];

/// The columns of [`FACTOR_COLUMNS`] that GoTrue's factor table has (its copy, staged).
async fn factor_columns(conn: &mut PgConnection) -> sqlx::Result<String> {
    let present: Vec<String> = sqlx::query_scalar(
        "select attname::text from pg_attribute \
         where attrelid = 'pg_temp.latchkey_mfa_factors'::regclass and attnum > 0 and not attisdropped",
    )
    .fetch_all(&mut *conn)
    .await?;
    let columns: Vec<&str> = FACTOR_COLUMNS
        .iter()
        .copied()
        .filter(|c| present.iter().any(|p| p == c))
        .collect();
    Ok(columns.join(", "))
}

const IDENTITY_COLUMNS: &str =
    "provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id";

fn excluded(columns: &str) -> String {
    let list: Vec<&str> = columns.split(',').map(str::trim).filter(|c| *c != "id").collect();
    let targets = list.join(", ");
    let values: Vec<String> = list.iter().map(|c| format!("excluded.{c}")).collect();
    format!("({targets}) = ({})", values.join(", "))
}

/// Writes the staged rows into GoTrue's tables. Sessions of exported users end (their refresh
/// tokens are stored hashed here and cannot go back), and so do GoTrue's own older sessions,
/// tokens and pending links of those users, which would otherwise come back to life.
pub async fn write(conn: &mut PgConnection, gotrue: &Schema) -> sqlx::Result<()> {
    let g = gotrue.quoted();
    let exported = "select id from pg_temp.latchkey_users";
    let statements = [
        format!("delete from {g}.users where id in (select id from pg_temp.latchkey_deleted_users)"),
        format!("delete from {g}.sessions where user_id in ({exported})"),
        format!("delete from {g}.refresh_tokens where user_id in (select id::text from pg_temp.latchkey_users)"),
        format!("delete from {g}.one_time_tokens where user_id in ({exported})"),
        format!(
            "delete from {g}.identities i where i.user_id in ({exported}) \
             and not exists (select 1 from pg_temp.latchkey_identities l where l.id = i.id)"
        ),
        // Emails and phones may have moved between users: free them first, so that the unique
        // indexes never see two rows holding one address halfway through.
        format!("update {g}.users set email = null, phone = null where id in ({exported})"),
        format!(
            "insert into {g}.users ({USER_COLUMNS}) select {USER_VALUES} from pg_temp.latchkey_users \
             on conflict (id) do update set {}",
            excluded(USER_COLUMNS)
        ),
        format!(
            "insert into {g}.identities ({IDENTITY_COLUMNS}) select {IDENTITY_COLUMNS} from pg_temp.latchkey_identities \
             on conflict (id) do update set {}",
            excluded(IDENTITY_COLUMNS)
        ),
    ];
    for statement in statements {
        sqlx::query(sql(statement)).execute(&mut *conn).await?;
    }
    // Factors after their users; those Latchkey removed go first, freeing their names.
    let factors = factor_columns(&mut *conn).await?;
    for statement in [
        format!("delete from {g}.mfa_factors where id in (select id from pg_temp.latchkey_removed_factors)"),
        format!(
            "insert into {g}.mfa_factors ({factors}) select {factors} from pg_temp.latchkey_mfa_factors \
             on conflict (id) do update set {}",
            excluded(&factors)
        ),
    ] {
        sqlx::query(sql(statement)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Every staged password hash, to judge whether GoTrue can verify it.
pub async fn password_hashes(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "select id, encrypted_password from pg_temp.latchkey_users \
         where nullif(encrypted_password, '') is not null order by id",
    )
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_set_every_column_but_the_key() {
        assert_eq!(excluded("a, id, b"), "(a, b) = (excluded.a, excluded.b)");
    }
}
