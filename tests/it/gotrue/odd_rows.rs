//! Rows GoTrue's tables allow but no GoTrue would write, as an attacker or a hand-edited
//! database leaves them: every one is imported and named in the report, none stops the
//! import with an error, none is dropped, and the server answers for them without a 5xx.

use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, assert_error};

const FRANK: &str = "f0000000-0000-4000-8000-000000000001";
const GRACE: &str = "f0000000-0000-4000-8000-000000000002";
const HEIDI: &str = "f0000000-0000-4000-8000-000000000003";

const ODD_ROWS: &str = "
    insert into auth.users (id, email, encrypted_password, raw_app_meta_data, raw_user_meta_data,
        created_at, updated_at)
    values
        -- A bcrypt cost no sign-in should pay for, metadata that is not an object, an email in
        -- capitals (GoTrue lower-cases emails; this row did not come through GoTrue).
        ('f0000000-0000-4000-8000-000000000001', 'Frank@Example.COM',
         '$2a$31$5HmCXxusfTiUNzKk8JuICe22PTvwH6B6H4DqSABSLxVSUMCynGd92', '[1, 2]', '\"text\"', now(), now()),
        -- A password in clear where the hash belongs, an empty email, no timestamps.
        ('f0000000-0000-4000-8000-000000000002', '', 'hunter2-in-clear', null, null, null, null),
        -- A truncated bcrypt hash, JSON null as metadata.
        ('f0000000-0000-4000-8000-000000000003', 'heidi@example.com', '$2a$10$short', 'null', '{}', now(), now());
    insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
    values
        ('odd id ☃', 'f0000000-0000-4000-8000-000000000001', 'null', 'custom:x', now(), now()),
        ('', 'f0000000-0000-4000-8000-000000000003', '[]', '', null, null);
    -- A session with a key that is too short to be GoTrue's and a negative counter, and a
    -- refresh token row without text.
    insert into auth.sessions (id, user_id, aal, refresh_token_hmac_key, refresh_token_counter)
    values ('f0000000-0000-4000-8000-0000000000a1', 'f0000000-0000-4000-8000-000000000001', null, 'AAEC', -5);
    insert into auth.refresh_tokens (token, user_id, revoked, session_id)
    values (null, 'not a uuid', null, 'f0000000-0000-4000-8000-0000000000a1'),
           ('orphantoken1', 'x', false, null);
";

#[tokio::test]
async fn odd_rows_are_reported_and_imported_never_dropped_or_fatal() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(ODD_ROWS).execute(&mut conn).await.unwrap();

    let output = latchkey_ok(&database, &["import-gotrue"]).await;
    for expected in [
        format!("user {FRANK}: password hash is refused: Invalid password hash: the bcrypt cost"),
        format!("user {GRACE}: password hash is refused: Invalid password hash format"),
        format!("user {HEIDI}: password hash is refused: Invalid password hash format"),
        format!(
            "2 users have metadata or identity data that is not a JSON object (GoTrue cannot read it either); imported with {{}} there: {FRANK}, {HEIDI}"
        ),
        "1 live refresh tokens from before GoTrue had sessions".to_owned(),
        "imported: 6 users, 6 identities, 2 MFA factors, 3 sessions".to_owned(),
    ] {
        assert!(output.contains(&expected), "{expected:?} in:\n{output}");
    }
    for secret in ["hunter2-in-clear", "$2a$31$", "orphantoken1", "Frank@Example.COM"] {
        assert!(!output.contains(secret), "the report never shows {secret:?}:\n{output}");
    }
    let (app_meta, user_meta, email): (serde_json::Value, serde_json::Value, Option<String>) =
        sqlx::query_as("select raw_app_meta_data, raw_user_meta_data, email from auth._auth_users where id = $1")
            .bind(Uuid::parse_str(FRANK).unwrap())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((app_meta, user_meta), (serde_json::json!({}), serde_json::json!({})));
    assert_eq!(
        email.as_deref(),
        Some("Frank@Example.COM"),
        "emails are copied as they are"
    );

    // The server handles these users: no hash is trusted that should not be, nothing fails.
    let app = TestApp::spawn_on(&database, &[]).await;
    assert_error(
        app.sign_in("frank@example.com", "any password").await,
        400,
        "invalid_credentials",
    )
    .await;
    assert_error(
        app.sign_in("heidi@example.com", "any password").await,
        400,
        "invalid_credentials",
    )
    .await;
    for (id, identities) in [(FRANK, 1), (GRACE, 0), (HEIDI, 1)] {
        let response = admin_user(&app, reqwest::Method::GET, id).await;
        assert_eq!(response.status(), 200, "{id}");
        let user: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            user["identities"].as_array().map(Vec::len),
            Some(identities),
            "{id}: {user}"
        );
    }
}
