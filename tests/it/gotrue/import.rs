//! `import-gotrue` without `--retarget`: the dry run, the problems that stop it, running it
//! twice, `--from`, `--audit-log`.

use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, assert_error, fresh_database};

/// Trouble GoTrue's tables allow and Latchkey's do not, or that Latchkey cannot carry over.
const TROUBLE: &str = "
    -- GoTrue's unique index is on email as written: these two only differ in case.
    insert into auth.users (id, email, created_at, updated_at)
        values ('d0d00000-0000-4000-8000-000000000004', 'ALICE@example.com', now(), now());
    -- A verified factor whose secret is gone: Latchkey could not check it.
    insert into auth.users (id, email, encrypted_password, created_at, updated_at)
        values ('e7e00000-0000-4000-8000-000000000005', 'erin@example.com',
                '$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==,sk=ZWtleQ==$c2FsdA==$aGFzaA==', now(), now());
    insert into auth.mfa_factors (id, user_id, factor_type, status, created_at, updated_at)
        values (gen_random_uuid(), 'e7e00000-0000-4000-8000-000000000005', 'totp', 'verified', now(), now());
    -- A v2 key encrypted with GoTrue's database encryption.
    update auth.sessions set refresh_token_hmac_key =
        '{\"key_id\":\"k1\",\"alg\":\"aes-gcm-hkdf\",\"data\":\"AAAA\",\"nonce\":\"AAAAAAAAAAAAAAAA\"}'
        where user_id = 'b0b00000-0000-4000-8000-000000000002';
";

async fn latchkey_tables_exist(conn: &mut sqlx::PgConnection) -> bool {
    sqlx::query_scalar("select to_regclass('auth._auth_users') is not null")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Latchkey's tables live in the same schema as GoTrue's (`auth`), where index names must be
/// unique: none of Latchkey's may take a name GoTrue uses.
#[tokio::test]
async fn latchkey_migrates_beside_gotrues_tables_and_leaves_them_alone() {
    let database = gotrue_schema_only().await;
    let mut conn = connect(&database).await;
    let indexes = "select indexrelid::regclass::text || ' on ' || indrelid::regclass::text from pg_index \
                   where indrelid::regclass::text not like 'auth.\\_%' \
                     and indrelid::regclass::text like 'auth.%' order by 1";
    let before: Vec<String> = sqlx::query_scalar(indexes).fetch_all(&mut conn).await.unwrap();
    latchkey_ok(&database, &["migrate"]).await;
    let after: Vec<String> = sqlx::query_scalar(indexes).fetch_all(&mut conn).await.unwrap();
    assert_eq!(after, before);
    assert!(before.contains(&"auth.mfa_factors_user_friendly_name_unique on auth.mfa_factors".to_owned()));
}

/// Supabase grants the API roles some of GoTrue's tables; migrating Latchkey's tables in
/// (here through the import, which migrates in its own transaction) leaves those grants.
#[tokio::test]
async fn the_import_leaves_the_api_roles_grants_on_gotrues_tables() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(
        "do $$ begin create role service_role nologin; exception when duplicate_object then null; end $$; \
         grant select on auth.identities to service_role;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    latchkey_ok(&database, &["import-gotrue"]).await;
    let granted: bool = sqlx::query_scalar("select has_table_privilege('service_role', 'auth.identities', 'select')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(granted, "the RLS migration must not take GoTrue's grants away");
}

#[tokio::test]
async fn the_dry_run_counts_and_lists_problems_and_nothing_is_written_while_there_are_any() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(TROUBLE).execute(&mut conn).await.unwrap();
    let data_before = gotrue_data(&mut conn).await;

    let dry = latchkey_ok(&database, &["import-gotrue", "--dry-run"]).await;
    for expected in [
        "dry run: nothing is written",
        "users to import          5",
        "identities               4",
        "sessions                 2",
        "MFA factors (TOTP)       2 (1 verified); 1 Latchkey cannot check",
        "problem: 2 users share an email (ignoring case) with another user",
        "a11ce000-0000-4000-8000-000000000001, d0d00000-0000-4000-8000-000000000004",
        "problem: 1 users have a verified MFA factor Latchkey cannot check (1 factors without a TOTP secret",
        "user e7e00000-0000-4000-8000-000000000005: password hash is Firebase scrypt",
        "1 sessions keep their v2 refresh-token key encrypted",
        "the import would stop: 2 problems",
    ] {
        assert!(dry.contains(expected), "{expected:?} in:\n{dry}");
    }
    assert!(
        !dry.contains("alice@example.com"),
        "problems name users by id only:\n{dry}"
    );
    assert!(!latchkey_tables_exist(&mut conn).await, "a dry run leaves no trace");

    let refused = latchkey_fails(&database, &["import-gotrue"]).await;
    assert!(refused.contains("nothing was imported: 2 problems"), "{refused}");
    assert!(!latchkey_tables_exist(&mut conn).await);
    assert_eq!(gotrue_data(&mut conn).await, data_before);

    // Fixed in GoTrue's tables, and the factor left behind: the import goes ahead.
    sqlx::query("update auth.users set email = 'dora@example.com' where id = 'd0d00000-0000-4000-8000-000000000004'")
        .execute(&mut conn)
        .await
        .unwrap();
    let output = latchkey_ok(&database, &["import-gotrue", "--skip-unusable-factors"]).await;
    assert!(
        output.contains("--skip-unusable-factors: 1 users are imported without their verified"),
        "{output}"
    );
    assert!(output.contains("imported: 5 users"), "{output}");
    // Bob's encrypted key could not be carried: his v2 token is unknown; his session stays.
    let app = TestApp::spawn_on(&database, &[]).await;
    assert_error(app.refresh(BOB_TOKEN).await, 400, "refresh_token_not_found").await;
    app.refreshed(ALICE_TOKEN).await;
}

#[tokio::test]
async fn a_second_run_changes_nothing_and_brings_nothing_back() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    latchkey_ok(&database, &["import-gotrue"]).await;
    let tables = [
        "auth._auth_users",
        "auth._auth_identities",
        "auth._auth_sessions",
        "auth._auth_refresh_tokens",
    ];
    let mut after_first = Vec::new();
    for table in tables {
        after_first.push(rows(&mut conn, table).await);
    }
    let second = latchkey_ok(&database, &["import-gotrue"]).await;
    assert!(second.contains("users to import          0"), "{second}");
    assert!(second.contains("already imported         3"), "{second}");
    for (table, first) in tables.iter().zip(&after_first) {
        assert_eq!(&rows(&mut conn, table).await, first, "{table}");
    }

    // Deleted and signed out in Latchkey: a later run does not bring them back.
    let app = TestApp::spawn_on(&database, &[]).await;
    let deleted = admin_user(&app, reqwest::Method::DELETE, BOB).await;
    assert_eq!(deleted.status(), 200);
    let alice = app.refreshed(ALICE_TOKEN).await;
    let logout = app
        .post_json_auth(
            "/auth/v1/logout",
            alice["access_token"].as_str().unwrap(),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    latchkey_ok(&database, &["import-gotrue"]).await;
    let bob: i64 = sqlx::query_scalar("select count(*) from auth._auth_users where id = $1")
        .bind(Uuid::parse_str(BOB).unwrap())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(bob, 0, "the deleted user stays deleted");
    assert_error(app.refresh(ALICE_TOKEN).await, 400, "refresh_token_not_found").await;
}

#[tokio::test]
async fn from_another_database_with_the_audit_log() {
    let gotrue = gotrue_project().await;
    let latchkey_db = fresh_database().await;
    let from = format!("--from={}", gotrue.url());
    let output = latchkey_ok(&latchkey_db, &["import-gotrue", &from, "--audit-log"]).await;
    assert!(
        output.contains("GoTrue's tables in the database given as --from"),
        "{output}"
    );
    assert!(!output.contains(gotrue.url()), "the connection string is never echoed");
    assert!(output.contains("1 audit log entries"), "{output}");

    let app = TestApp::spawn_on(&latchkey_db, &[]).await;
    app.signed_in("bob@example.com", BOB_PASSWORD).await;
    // The v2 token before the current one (a client that lost a refresh response) still works.
    let bob = app.refreshed(BOB_PREVIOUS_TOKEN).await;
    assert_eq!(bob["user"]["id"], BOB);
    let mut conn = sqlx::PgConnection::connect(latchkey_db.url()).await.unwrap();
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from auth._auth_audit_log where id = 'a0d17000-0000-4000-8000-000000000001'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(audit, 1);
    // GoTrue's database was only read.
    let mut source = connect(&gotrue).await;
    let gotrue_tables: bool = sqlx::query_scalar("select to_regclass('auth._auth_users') is null")
        .fetch_one(&mut source)
        .await
        .unwrap();
    assert!(gotrue_tables);
}

#[tokio::test]
async fn bad_invocations_and_old_schemas_are_refused_with_a_reason() {
    let database = gotrue_project().await;
    let refused = latchkey_fails(
        &database,
        &["import-gotrue", "--retarget", "--from=postgres://x@127.0.0.1/y"],
    )
    .await;
    assert!(refused.contains("cannot be used with"), "{refused}");
    let refused = latchkey_fails(&database, &["import-gotrue", "--from=not a dsn"]).await;
    assert!(
        refused.contains("--from is not a valid PostgreSQL connection string"),
        "{refused}"
    );
    let mut conn = connect(&database).await;
    sqlx::query("alter table auth.users drop column is_anonymous")
        .execute(&mut conn)
        .await
        .unwrap();
    let refused = latchkey_fails(&database, &["import-gotrue", "--dry-run"]).await;
    assert!(refused.contains("users.is_anonymous"), "{refused}");
    assert!(refused.contains("older than 2024"), "{refused}");
}

use sqlx::Connection;
