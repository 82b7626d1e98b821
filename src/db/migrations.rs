//! Around the migrator: which migrations a database lacks (`serve --no-migrate`), and the
//! privileges of the API roles on objects that are not Latchkey's, kept across the RLS
//! migration.
//!
//! `20261123000002_rls.sql` revokes every privilege of `anon`, `authenticated` and
//! `service_role` on *all* tables and sequences of the namespace, not only Latchkey's
//! `_auth_*` ones. In a database where that schema already holds other objects (Supabase's
//! `auth` schema, with GoTrue's tables and whatever a project added there), that took away
//! grants Latchkey has no business with. Migrations are append-only, so on a fresh database
//! that migration still runs; [`keep_api_grants`] notes those grants first, and
//! `20261205000001_rls_own_tables.sql` gives back any it took.

use sqlx::{PgConnection, PgPool};

use super::MIGRATOR;

/// The migration whose revoke went too wide.
const RLS_MIGRATION: i64 = 20261123000002;

/// The versions (with descriptions) of this build's migrations that the database has not
/// applied, oldest first.
pub async fn pending_migrations(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    let applied: Vec<i64> = if table_exists(pool).await? {
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration() && !applied.contains(&migration.version))
        .map(|migration| format!("{}_{}", migration.version, migration.description))
        .collect())
}

async fn table_exists(pool: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
        .fetch_one(pool)
        .await
}

/// Before the migrator runs on `conn` (whose `search_path` starts with the namespace): when
/// the RLS migration is still to come, copies the API roles' privileges on the namespace's
/// other relations into a temporary table that `20261205000001_rls_own_tables.sql` reads.
///
/// Runs no statement that can fail on a fresh database, so that it also works inside a
/// transaction (`import-gotrue` migrates in its own).
pub(crate) async fn keep_api_grants(conn: &mut PgConnection) -> sqlx::Result<()> {
    let migrated: bool = sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
        .fetch_one(&mut *conn)
        .await?;
    let rls_applied: bool = migrated
        && sqlx::query_scalar("select exists (select 1 from _sqlx_migrations where version = $1)")
            .bind(RLS_MIGRATION)
            .fetch_one(&mut *conn)
            .await?;
    if rls_applied {
        return Ok(());
    }
    sqlx::query(
        "create temporary table if not exists latchkey_api_grants_before_rls \
         (schema_name text, relation text, kind text, grantee text, privilege text, grantable boolean)",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into latchkey_api_grants_before_rls \
         select n.nspname, c.relname, c.relkind::text, r.rolname, a.privilege_type, a.is_grantable \
         from pg_class c \
         join pg_namespace n on n.oid = c.relnamespace \
         cross join lateral aclexplode(c.relacl) a \
         join pg_roles r on r.oid = a.grantee \
         where n.nspname = current_schema() \
           and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') \
           and c.relname not like '\\_auth\\_%' \
           and r.rolname in ('anon', 'authenticated', 'service_role')",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// After the migrator: the copy has served its purpose (and the connection goes back to the
/// pool).
pub(crate) async fn forget_api_grants(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("drop table if exists pg_temp.latchkey_api_grants_before_rls")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
