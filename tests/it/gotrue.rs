//! `latchkey import-gotrue` / `export-gotrue` on a Supabase project's database: GoTrue's
//! tables from `fixtures/gotrue_schema.sql`, the project (a `profiles` table with a foreign key
//! to auth.users and the sign-up trigger, and its users) from `fixtures/gotrue_project.sql`.
//! The commands run as the real binary; the server then runs on the same database.

mod export;
mod factors;
mod import;
mod odd_rows;
mod retarget;

use std::process::Output;

use sqlx::{Connection, PgConnection};

use crate::helpers::{TestDatabase, fresh_database};

pub const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
pub const ALICE_PASSWORD: &str = "correct horse battery staple";
pub const BOB: &str = "b0b00000-0000-4000-8000-000000000002";
pub const BOB_PASSWORD: &str = "bob's old password";
pub const CAROL: &str = "ca201000-0000-4000-8000-000000000003";
/// Alice's verified TOTP factor and its secret (base32), as her authenticator app holds it.
pub const ALICE_FACTOR: &str = "fac70000-0000-4000-8000-000000000001";
pub const ALICE_TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// Carol's unverified TOTP factor.
pub const CAROL_FACTOR: &str = "fac70000-0000-4000-8000-000000000003";
/// Alice's live v1 refresh token, and the one it replaced.
pub const ALICE_TOKEN: &str = "q7mzk2xv4npa";
pub const ALICE_OLD_TOKEN: &str = "k3n5x2q7w9ra";
/// Bob's current v2 refresh token (counter 3) and the one before it.
pub const BOB_TOKEN: &str = "AG8cClI7fk0qnFEvjn1rWkADfyZ0VAcVcOqR5d4VfBBEfS7RSHM";
pub const BOB_PREVIOUS_TOKEN: &str = "AG8cClI7fk0qnFEvjn1rWkACRlfkUxxYg2RsKxebNsvb-LIlBmE";

/// A fresh database holding GoTrue's schema and the project.
pub async fn gotrue_project() -> TestDatabase {
    let database = gotrue_schema_only().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(include_str!("fixtures/gotrue_project.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    database
}

/// A fresh database holding GoTrue's (empty) tables, as a new GoTrue leaves them.
pub async fn gotrue_schema_only() -> TestDatabase {
    let database = fresh_database().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(include_str!("fixtures/gotrue_schema.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    database
}

pub async fn connect(database: &TestDatabase) -> PgConnection {
    PgConnection::connect(database.url()).await.unwrap()
}

/// Runs `latchkey <args>` against `database`, with nothing else in its environment.
pub async fn latchkey(database: &TestDatabase, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database.url())
        .output()
        .await
        .unwrap()
}

/// Runs `latchkey <args>`, fails the test unless it succeeds, and returns its standard output.
pub async fn latchkey_ok(database: &TestDatabase, args: &[&str]) -> String {
    let output = latchkey(database, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "latchkey {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `latchkey <args>`, fails the test if it succeeds, and returns stdout and stderr.
pub async fn latchkey_fails(database: &TestDatabase, args: &[&str]) -> String {
    let output = latchkey(database, args).await;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "latchkey {args:?} succeeded:\n{text}");
    text
}

/// `method /auth/v1/admin/users/<id>` with the service role's key.
pub async fn admin_user(app: &crate::helpers::TestApp, method: reqwest::Method, id: &str) -> reqwest::Response {
    app.request(method, &format!("/auth/v1/admin/users/{id}"))
        .bearer_auth(app.api_key("service_role"))
        .send()
        .await
        .unwrap()
}

/// The schema objects a project sees, each as one line: tables and views of the `auth` and
/// `public` schemas with their privileges, foreign keys, triggers (and whether they fire),
/// indexes, schemas. Latchkey's own `_auth_*` tables are left out.
pub async fn structure(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "select format('relation %s %s %s', c.oid::regclass, c.relkind, coalesce(c.relacl::text, '')) \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname in ('auth', 'public', 'auth_gotrue_backup') and c.relkind in ('r', 'v', 'S') \
               and c.relname not like '\\_auth\\_%' and c.relname <> '_sqlx_migrations' \
         union all \
         select format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
             from pg_constraint where contype in ('f', 'u', 'p', 'c') \
               and conrelid::regclass::text not like '%\\_auth\\_%' and conrelid::regclass::text not like '%\\_sqlx%' \
               and connamespace in (select oid from pg_namespace where nspname in ('auth', 'public', 'auth_gotrue_backup')) \
         union all \
         select format('trigger %s %s %s', tgrelid::regclass, pg_get_triggerdef(oid), tgenabled) \
             from pg_trigger where not tgisinternal \
         union all \
         select format('index %s', pg_get_indexdef(i.indexrelid)) from pg_index i \
             join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname in ('auth', 'public', 'auth_gotrue_backup') and c.relname not like '\\_auth\\_%' \
               and c.relname <> '_sqlx_migrations' \
         union all \
         select format('schema %s', nspname) from pg_namespace where nspname like 'auth%' \
         order by 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

/// The rows of `table`, as text, in a stable order.
pub async fn rows(conn: &mut PgConnection, table: &str) -> Vec<String> {
    let query = format!("select t::text from {table} t order by t::text");
    sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_all(conn)
        .await
        .unwrap()
}

/// Every row of GoTrue's tables and of the project's `profiles`.
pub async fn gotrue_data(conn: &mut PgConnection) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for table in [
        "auth.users",
        "auth.identities",
        "auth.sessions",
        "auth.refresh_tokens",
        "auth.mfa_factors",
        "auth.mfa_amr_claims",
        "auth.audit_log_entries",
        "public.profiles",
    ] {
        all.push(rows(conn, table).await);
    }
    all
}
