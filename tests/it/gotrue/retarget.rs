//! `import-gotrue --retarget` and `--undo`: the project keeps working on Latchkey, and goes
//! back to GoTrue as it was.

use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, assert_error, random_email};

/// The test: after `import-gotrue --retarget`, the old password signs in, the old
/// refresh tokens refresh, a sign-up gets its profile through the moved trigger, and
/// `select email from auth.users` lists everyone; `export-gotrue` then `--undo` put GoTrue's
/// tables, keys and triggers back as they were.
#[tokio::test]
async fn a_project_moves_to_latchkey_with_sessions_alive_and_back() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    // Latchkey's tables first (the import would make them too), so that what follows compares
    // the project before and after the import alone.
    latchkey_ok(&database, &["migrate"]).await;
    let structure_before = structure(&mut conn).await;

    let output = latchkey_ok(&database, &["import-gotrue", "--retarget"]).await;
    assert!(
        output.contains("imported: 3 users, 4 identities, 2 MFA factors, 2 sessions"),
        "{output}"
    );
    assert!(output.contains("foreign key profiles_id_fkey"), "{output}");
    assert!(output.contains("trigger on_auth_user_created"), "{output}");

    let app = TestApp::spawn_on(&database, &[]).await;
    // bcrypt hashes from another implementation verify (and are upgraded to argon2id).
    let alice = app.signed_in("alice@example.com", ALICE_PASSWORD).await;
    assert_eq!(alice["user"]["id"], ALICE);
    assert_eq!(alice["user"]["user_metadata"]["name"], "Alice");
    let upgraded: String = sqlx::query_scalar("select encrypted_password from auth._auth_users where id = $1")
        .bind(Uuid::parse_str(ALICE).unwrap())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    app.signed_in("bob@example.com", BOB_PASSWORD).await;
    assert_error(
        app.sign_in("bob@example.com", "wrong password").await,
        400,
        "invalid_credentials",
    )
    .await;

    // GoTrue's refresh tokens refresh: a v1 token and a v2 one. The answer is a Latchkey token,
    // and the chain goes on from there.
    let refreshed = app.refreshed(ALICE_TOKEN).await;
    assert_eq!(refreshed["user"]["id"], ALICE);
    let next = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert!(
        latchkey::auth::refresh::position(&next).is_some(),
        "a token in Latchkey's format: {next}"
    );
    app.refreshed(&next).await;
    let bob = app.refreshed(BOB_TOKEN).await;
    assert_eq!(bob["user"]["id"], BOB);
    assert_eq!(bob["user"]["identities"].as_array().unwrap().len(), 2);
    // A token GoTrue had already rotated away is not a way in.
    assert_error(app.refresh(ALICE_OLD_TOKEN).await, 400, "refresh_token_already_used").await;

    // A sign-up gets its profile from the project's trigger, now on Latchkey's users.
    let new_email = random_email();
    let signed_up = app.sign_up(&new_email, "a-long-new-password").await;
    let new_id = Uuid::parse_str(signed_up["user"]["id"].as_str().unwrap()).unwrap();
    let profile: Option<String> = sqlx::query_scalar("select email from public.profiles where id = $1")
        .bind(new_id)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    assert_eq!(profile.as_deref(), Some(new_email.as_str()));

    // Existing SQL reads users through the compatibility view.
    let emails: Vec<Option<String>> = sqlx::query_scalar("select email from auth.users order by created_at")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let expected = [
        Some("alice@example.com".to_owned()),
        Some("bob@example.com".to_owned()),
        None,
        Some(new_email.clone()),
    ];
    assert_eq!(emails, expected);

    // The way back: export, then undo. GoTrue's tables, keys and triggers are as they were.
    let exported = latchkey_ok(&database, &["export-gotrue"]).await;
    assert!(exported.contains("users added 1, updated 3, removed 0"), "{exported}");
    latchkey_ok(&database, &["import-gotrue", "--undo"]).await;
    assert_eq!(structure(&mut conn).await, structure_before);
    let emails: Vec<Option<String>> = sqlx::query_scalar("select email from auth.users order by created_at")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        emails, expected,
        "GoTrue's own table now, with the user who signed up on Latchkey"
    );
    let hash: String = sqlx::query_scalar("select encrypted_password from auth.users where id = $1")
        .bind(Uuid::parse_str(ALICE).unwrap())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(hash, upgraded, "the argon2id hash went back (GoTrue verifies it)");
    let latchkey_users: i64 = sqlx::query_scalar("select count(*) from auth._auth_users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(latchkey_users, 0, "Latchkey's copies are gone");
    // The trigger fires on GoTrue's table again.
    sqlx::query("insert into auth.users (id, email, created_at, updated_at) values (gen_random_uuid(), 'dave@example.com', now(), now())")
        .execute(&mut conn)
        .await
        .unwrap();
    let profiles: i64 = sqlx::query_scalar("select count(*) from public.profiles where email = 'dave@example.com'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(profiles, 1);
}

#[tokio::test]
async fn undo_right_after_the_import_leaves_everything_as_it_was() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    latchkey_ok(&database, &["migrate"]).await;
    let (structure_before, data_before) = (structure(&mut conn).await, gotrue_data(&mut conn).await);
    latchkey_ok(&database, &["import-gotrue", "--retarget"]).await;
    assert_ne!(structure(&mut conn).await, structure_before);
    let dry = latchkey_ok(&database, &["import-gotrue", "--undo", "--dry-run"]).await;
    assert!(dry.contains("undo: foreign key profiles_id_fkey"), "{dry}");
    assert!(dry.contains("nothing was changed"), "{dry}");
    assert!(catalog_is_retargeted(&mut conn).await, "a dry run changes nothing");
    latchkey_ok(&database, &["import-gotrue", "--undo"]).await;
    assert_eq!(structure(&mut conn).await, structure_before);
    assert_eq!(gotrue_data(&mut conn).await, data_before);
    // And the import can run again.
    latchkey_ok(&database, &["import-gotrue", "--retarget"]).await;
}

async fn catalog_is_retargeted(conn: &mut sqlx::PgConnection) -> bool {
    sqlx::query_scalar("select to_regclass('auth_gotrue_backup.latchkey_retarget') is not null")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn undo_refuses_while_latchkey_holds_what_gotrue_lacks() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    latchkey_ok(&database, &["import-gotrue", "--retarget"]).await;
    let app = TestApp::spawn_on(&database, &[]).await;
    app.sign_up(&random_email(), "a-long-new-password").await;
    let refused = latchkey_fails(&database, &["import-gotrue", "--undo"]).await;
    assert!(refused.contains("export-gotrue"), "{refused}");
    assert!(catalog_is_retargeted(&mut conn).await, "nothing was undone");

    // A sign-in alone (no new user) is activity too.
    latchkey_ok(&database, &["export-gotrue"]).await;
    app.signed_in("alice@example.com", ALICE_PASSWORD).await;
    let refused = latchkey_fails(&database, &["import-gotrue", "--undo"]).await;
    assert!(refused.contains("audit events"), "{refused}");
    latchkey_ok(&database, &["export-gotrue"]).await;
    latchkey_ok(&database, &["import-gotrue", "--undo"]).await;
}

#[tokio::test]
async fn the_compatibility_views_are_read_only_and_readable_as_before() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    latchkey_ok(&database, &["import-gotrue", "--retarget"]).await;
    for statement in [
        "update auth.users set email = 'mallory@example.com'",
        "delete from auth.identities",
        "insert into auth.sessions (id, user_id) values (gen_random_uuid(), gen_random_uuid())",
    ] {
        let error = sqlx::query(statement).execute(&mut conn).await.unwrap_err();
        assert!(error.to_string().contains("read-only view"), "{statement}: {error}");
    }
    // Whoever could read GoTrue's users table (here: everyone) reads the view.
    let acl: String = sqlx::query_scalar("select relacl::text from pg_class where oid = 'auth.users'::regclass")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(acl.contains("=r/"), "{acl}");
    let sessions: Vec<(Uuid, String)> = sqlx::query_as("select user_id, aal from auth.sessions order by user_id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 2);
    let identities: i64 = sqlx::query_scalar(
        "select count(*) from auth.identities where provider = 'github' and email = 'bob@example.com'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(identities, 1);
}

#[tokio::test]
async fn retarget_refuses_objects_that_would_go_on_reading_the_backup() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(
        "create view public.user_emails as select id, email from auth.users; \
         create table public.audit_refs (session_id uuid references auth.sessions (id));",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let structure_before = structure(&mut conn).await;
    let dry = latchkey_ok(&database, &["import-gotrue", "--retarget", "--dry-run"]).await;
    assert!(
        dry.contains("view or rule on user_emails") || dry.contains("public.user_emails"),
        "{dry}"
    );
    assert!(dry.contains("audit_refs_session_id_fkey"), "{dry}");
    assert!(dry.contains("the import would stop"), "{dry}");
    let refused = latchkey_fails(&database, &["import-gotrue", "--retarget"]).await;
    assert!(refused.contains("nothing was imported"), "{refused}");
    assert_eq!(structure(&mut conn).await, structure_before);
    let latchkey_tables: bool = sqlx::query_scalar("select to_regclass('auth._auth_users') is not null")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!latchkey_tables, "nothing was written, not even Latchkey's tables");
}
