//! `export-gotrue`: Latchkey's users and identities back into GoTrue's tables.

use sqlx::Connection;
use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, fresh_database, random_email};

/// id, email, encrypted_password, confirmation_token, email_change
type ExportedUser = (Uuid, Option<String>, Option<String>, String, String);

#[tokio::test]
async fn users_go_back_with_their_new_hashes_and_their_sessions_end() {
    // The project's GoTrue database, imported into a Latchkey database of its own.
    let gotrue = gotrue_project().await;
    let latchkey_db = fresh_database().await;
    latchkey_ok(&latchkey_db, &["import-gotrue", &format!("--from={}", gotrue.url())]).await;
    let app = TestApp::spawn_on(&latchkey_db, &[]).await;
    app.signed_in("alice@example.com", ALICE_PASSWORD).await;
    let newcomer = random_email();
    app.sign_up(&newcomer, "a-long-new-password").await;
    let deleted = admin_user(&app, reqwest::Method::DELETE, BOB).await;
    assert_eq!(deleted.status(), 200);
    // Carol's unverified factor goes in Latchkey.
    let removed = app
        .request(
            reqwest::Method::DELETE,
            &format!("/auth/v1/admin/users/{CAROL}/factors/{CAROL_FACTOR}"),
        )
        .bearer_auth(app.api_key("service_role"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let mut latchkey = sqlx::PgConnection::connect(latchkey_db.url()).await.unwrap();
    let alice_hash: String = sqlx::query_scalar("select encrypted_password from auth._auth_users where id = $1")
        .bind(Uuid::parse_str(ALICE).unwrap())
        .fetch_one(&mut latchkey)
        .await
        .unwrap();

    // A dry run says what would happen and writes nothing.
    let to = format!("--to={}", gotrue.url());
    let mut conn = connect(&gotrue).await;
    let before = gotrue_data(&mut conn).await;
    let dry = latchkey_ok(&latchkey_db, &["export-gotrue", &to, "--dry-run"]).await;
    for expected in [
        "users added 1, updated 2, removed 1",
        "password hashes GoTrue verifies 2, does not 0",
        "1 sessions in GoTrue's tables end",
        "MFA factors 1 (1 removed; 0 Latchkey could not hold left as they are)",
    ] {
        assert!(dry.contains(expected), "{expected:?} in:\n{dry}");
    }
    assert!(!dry.contains(gotrue.url()), "the connection string is never echoed");
    assert_eq!(gotrue_data(&mut conn).await, before);

    latchkey_ok(&latchkey_db, &["export-gotrue", &to]).await;
    let users: Vec<ExportedUser> = sqlx::query_as(
        "select id, email, encrypted_password, confirmation_token, email_change from auth.users order by created_at",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(users.len(), 3, "alice, carol, the newcomer; bob is gone: {users:?}");
    assert_eq!(users[0].0.to_string(), ALICE);
    assert_eq!(
        users[0].2.as_deref(),
        Some(alice_hash.as_str()),
        "the argon2id hash goes back"
    );
    assert!(latchkey::gotrue::gotrue_verifies(&alice_hash).is_ok());
    assert_eq!(users[2].1.as_deref(), Some(newcomer.as_str()));
    assert!(
        users.iter().all(|u| u.3.is_empty() && u.4.is_empty()),
        "'' rather than NULL, as GoTrue reads them"
    );
    let sessions: i64 = sqlx::query_scalar("select count(*) from auth.sessions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let tokens: i64 = sqlx::query_scalar("select count(*) from auth.refresh_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (sessions, tokens),
        (0, 0),
        "sessions cannot go back; GoTrue's old ones must not come back"
    );
    // The newcomer's profile is made by the project's trigger in GoTrue's database; bob's went
    // with him.
    let profiles: Vec<Option<String>> = sqlx::query_scalar("select email from public.profiles order by email")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut expected = vec![Some("alice@example.com".to_owned()), Some(newcomer.clone())];
    expected.sort();
    expected.push(None);
    assert_eq!(profiles, expected);
    // Identities: Bob's went with him; the others are there.
    let identities: i64 = sqlx::query_scalar("select count(*) from auth.identities")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(identities, 3);
    // Alice's factor is as it was; Carol's went as it did in Latchkey.
    let factors: Vec<(Uuid, String, String)> =
        sqlx::query_as("select id, secret, status::text from auth.mfa_factors order by id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        factors,
        [(
            ALICE_FACTOR.parse().unwrap(),
            ALICE_TOTP_SECRET.to_owned(),
            "verified".to_owned()
        )]
    );

    // Exporting again changes nothing.
    let again = latchkey_ok(&latchkey_db, &["export-gotrue", &to]).await;
    assert!(again.contains("users added 0, updated 3, removed 0"), "{again}");
    assert_eq!(rows(&mut conn, "auth.users").await.len(), 3);
}

#[tokio::test]
async fn an_empty_gotrue_database_receives_every_user() {
    let project = gotrue_project().await;
    latchkey_ok(&project, &["import-gotrue"]).await;
    let fresh_gotrue = gotrue_schema_only().await;
    let output = latchkey_ok(&project, &["export-gotrue", &format!("--to={}", fresh_gotrue.url())]).await;
    assert!(output.contains("users added 3, updated 0, removed 0"), "{output}");
    let mut conn = connect(&fresh_gotrue).await;
    let ids: Vec<Uuid> = sqlx::query_scalar("select id from auth.users order by id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let expected: Vec<Uuid> = [ALICE, BOB, CAROL].iter().map(|id| id.parse().unwrap()).collect();
    assert_eq!(ids, expected);
    // The factors round-trip: GoTrue's rows, column for column (ids, names, secrets, times).
    let mut source = connect(&project).await;
    assert_eq!(
        rows(&mut conn, "auth.mfa_factors").await,
        rows(&mut source, "auth.mfa_factors").await
    );
    assert_eq!(rows(&mut conn, "auth.mfa_factors").await.len(), 2);
    // A database without GoTrue's tables is refused with the reason.
    let empty = fresh_database().await;
    let refused = latchkey_fails(&project, &["export-gotrue", &format!("--to={}", empty.url())]).await;
    assert!(refused.contains("GoTrue's tables in schema auth lack"), "{refused}");
}
