//! The RLS migration: roles, helpers, auth tables out of the API roles' reach, and a database
//! owner without CREATEROLE can still migrate.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{insert_user, sqlstate};
use crate::helpers::{TestApp, base_vars, fresh_database};

#[tokio::test]
async fn migration_creates_roles_and_helpers_and_locks_auth_tables() {
    let app = TestApp::spawn().await;
    let mut db = app.db().await;

    let roles: Vec<(String, bool, bool)> = sqlx::query_as(
        "select rolname::text, rolcanlogin, rolbypassrls from pg_roles \
         where rolname in ('anon', 'authenticated', 'service_role') order by rolname",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let expected = [
        ("anon", false, false),
        ("authenticated", false, false),
        ("service_role", false, true),
    ];
    let roles: Vec<(&str, bool, bool)> = roles.iter().map(|(n, l, b)| (n.as_str(), *l, *b)).collect();
    assert_eq!(roles, expected);

    for function in ["auth.uid()", "auth.role()", "auth.email()", "auth.jwt()"] {
        let ok: bool = sqlx::query_scalar(
            "select to_regprocedure($1) is not null \
             and has_function_privilege('anon', $1, 'execute') \
             and has_function_privilege('authenticated', $1, 'execute')",
        )
        .bind(function)
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert!(ok, "{function} exists and the API roles may call it");
    }

    // Every _auth_* table, including any a later migration adds: RLS on, no API-role grant.
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, \
                (select bool_or(has_table_privilege(r, c.oid, p)) \
                   from unnest(array['anon', 'authenticated', 'service_role']) r, \
                        unnest(array['select', 'insert', 'update', 'delete', 'truncate', \
                                     'references', 'trigger']) p) \
           from pg_class c \
          where c.relnamespace = 'auth'::regnamespace and c.relkind = 'r' \
            and c.relname like '\\_auth\\_%' order by 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(tables.len() >= 5, "{tables:?}");
    for (table, rls_on, any_privilege) in &tables {
        assert!(rls_on, "RLS enabled on {table}");
        assert!(!any_privilege, "API roles have no privilege on {table}");
    }

    // And in practice: with a user stored, neither API role can read the table.
    insert_user(&app, Uuid::new_v4(), "stored@example.com").await;
    for role in ["anon", "authenticated"] {
        let mut tx = sqlx::Connection::begin(&mut db).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("set local role {role}")))
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query("select email from auth._auth_users")
            .fetch_all(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{role}: {err}");
        assert!(err.to_string().contains("permission denied"), "{err}");
    }
}

#[tokio::test]
async fn a_database_owner_without_createrole_can_migrate() {
    // A login that owns its database but may not create roles or grant memberships: the
    // migration must finish (with notices) and still lock the auth tables.
    let database = fresh_database().await;
    let mut admin = PgConnection::connect(database.url()).await.unwrap();
    let owner = format!("lk_owner_{}", Uuid::new_v4().simple());
    let password = Uuid::new_v4().simple().to_string();
    database.drop_role_with_it(&owner);
    let database_name = database.name();
    for statement in [
        format!("create role {owner} login nocreaterole nosuperuser password '{password}'"),
        format!("alter database {database_name} owner to {owner}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let mut url = url::Url::parse(database.url()).unwrap();
    url.set_username(&owner).unwrap();
    url.set_password(Some(&password)).unwrap();
    let config = latchkey::config::Config::from_vars(base_vars(url.as_str())).unwrap();
    let pool = latchkey::db::migration_pool(&config, url.as_str()).unwrap();
    latchkey::db::migrate(&pool, "auth").await.unwrap();

    let (rls_on, owned_by): (bool, String) = sqlx::query_as(
        "select relrowsecurity, pg_get_userbyid(relowner)::text from pg_class \
         where oid = 'auth._auth_users'::regclass",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(rls_on);
    assert_eq!(owned_by, owner);
    let uid_exists: bool = sqlx::query_scalar("select to_regprocedure('auth.uid()') is not null")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(uid_exists);
    pool.close().await;
}
