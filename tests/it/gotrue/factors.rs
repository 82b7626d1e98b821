//! GoTrue's MFA factors: TOTP factors come over and keep working (a code from the secret the
//! user's authenticator app holds reaches aal2); factors Latchkey cannot check (phone,
//! WebAuthn, secrets encrypted by GoTrue) stop the import until the operator accepts leaving
//! them behind, and are never silently dropped or half-imported.

use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, assert_error, expect_session};
use crate::mfa::{access, assurance, challenge, challenge_and_verify, code, enrolled, stable_step};

#[tokio::test]
async fn an_imported_totp_factor_verifies_codes_from_its_secret() {
    let database = gotrue_project().await;
    let output = latchkey_ok(&database, &["import-gotrue"]).await;
    assert!(
        output.contains("MFA factors (TOTP)       2 (1 verified); 0 Latchkey cannot check"),
        "{output}"
    );
    assert!(
        output.contains("imported: 3 users, 4 identities, 2 MFA factors"),
        "{output}"
    );
    assert!(!output.contains(ALICE_TOTP_SECRET), "secrets are never printed");
    let app = TestApp::spawn_on(&database, &[]).await;

    // Alice's session reached aal2 in GoTrue through her factor: it stays aal2.
    let refreshed = app.refreshed(ALICE_TOKEN).await;
    let (aal, methods) = assurance(&refreshed);
    assert_eq!(aal, "aal2");
    assert!(methods.contains(&"totp".to_owned()), "{methods:?}");

    // A new sign-in is aal1; her factor is there with GoTrue's id and name.
    let signed_in = app.signed_in("alice@example.com", ALICE_PASSWORD).await;
    assert_eq!(assurance(&signed_in).0, "aal1");
    let factors = signed_in["user"]["factors"].as_array().cloned().unwrap_or_default();
    assert_eq!(factors.len(), 1, "{factors:?}");
    assert_eq!(factors[0]["id"], ALICE_FACTOR);
    assert_eq!(factors[0]["friendly_name"], "authenticator");
    assert_eq!(factors[0]["status"], "verified");
    assert!(factors[0].get("secret").is_none());

    // A wrong code is refused; the code her authenticator app shows reaches aal2.
    let step = stable_step().await;
    let right = code(ALICE_TOTP_SECRET, step);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    assert_error(
        challenge_and_verify(&app, access(&signed_in), ALICE_FACTOR, wrong).await,
        422,
        "mfa_verification_failed",
    )
    .await;
    let aal2 = expect_session(challenge_and_verify(&app, access(&signed_in), ALICE_FACTOR, &right).await).await;
    let (aal, methods) = assurance(&aal2);
    assert_eq!(aal, "aal2");
    assert!(methods.contains(&"totp".to_owned()), "{methods:?}");
}

const BOB_PHONE_FACTOR: &str = "fac70000-0000-4000-8000-0000000000b1";
const ALICE_ENCRYPTED_FACTOR: &str = "fac70000-0000-4000-8000-0000000000a2";

/// Factors a Supabase project can hold that Latchkey cannot check.
const UNUSABLE: &str = "
    -- Alice also has a TOTP factor whose secret GoTrue's database encryption hides.
    insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
    values ('fac70000-0000-4000-8000-0000000000a2', 'a11ce000-0000-4000-8000-000000000001', 'old phone',
        'totp', 'verified', now(), now(),
        '{\"key_id\":\"k1\",\"alg\":\"aes-gcm-hkdf\",\"data\":\"c2VjcmV0\",\"nonce\":\"AAAAAAAAAAAAAAAA\"}');
    -- Bob's only verified factor is a phone, his session reached aal2 through it; an
    -- unverified TOTP factor with an encrypted secret too.
    insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, phone)
    values ('fac70000-0000-4000-8000-0000000000b1', 'b0b00000-0000-4000-8000-000000000002', 'sms',
        'phone', 'verified', now(), now(), '15550002222');
    insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
    values ('fac70000-0000-4000-8000-0000000000b2', 'b0b00000-0000-4000-8000-000000000002', '',
        'totp', 'unverified', now(), now(),
        '{\"key_id\":\"k1\",\"alg\":\"aes-gcm-hkdf\",\"data\":\"c2VjcmV0\",\"nonce\":\"AAAAAAAAAAAAAAAA\"}');
    update auth.sessions set aal = 'aal2', factor_id = 'fac70000-0000-4000-8000-0000000000b1'
        where user_id = 'b0b00000-0000-4000-8000-000000000002';
    insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
    values ('6f1c0a52-3b7e-4d2a-9c51-2f8e7d6b5a40', now(), now(), 'mfa/phone', gen_random_uuid());
    -- Carol's only verified factor is a passkey.
    insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at,
        web_authn_credential)
    values ('fac70000-0000-4000-8000-0000000000c2', 'ca201000-0000-4000-8000-000000000003', 'passkey',
        'webauthn', 'verified', now(), now(), '{\"id\": \"cred\"}');
";

#[tokio::test]
async fn factors_latchkey_cannot_check_stop_the_import_until_the_operator_accepts() {
    let database = gotrue_project().await;
    let mut conn = connect(&database).await;
    sqlx::raw_sql(UNUSABLE).execute(&mut conn).await.unwrap();
    let factors_before = rows(&mut conn, "auth.mfa_factors").await;

    let dry = latchkey_ok(&database, &["import-gotrue", "--dry-run"]).await;
    for expected in [
        "MFA factors (TOTP)       2 (1 verified); 4 Latchkey cannot check stay in GoTrue's tables",
        "problem: 3 users have a verified MFA factor Latchkey cannot check (1 TOTP factors whose secret GoTrue's \
         database encryption (GOTRUE_SECURITY_DB_ENCRYPTION_*) hides, 1 phone factors (Latchkey has no phone MFA), \
         1 WebAuthn factors (Latchkey has no WebAuthn)); imported without it, 2 of them would sign in with no \
         second factor at all",
        "--skip-unusable-factors",
        "note: unverified MFA factors Latchkey cannot check are not imported (1 TOTP factors whose secret",
        "the import would stop: 1 problems",
    ] {
        assert!(dry.contains(expected), "{expected:?} in:\n{dry}");
    }
    for secret in [ALICE_TOTP_SECRET, "c2VjcmV0", "15550002222"] {
        assert!(!dry.contains(secret), "the report never shows {secret:?}");
    }
    let refused = latchkey_fails(&database, &["import-gotrue"]).await;
    assert!(refused.contains("nothing was imported: 1 problems"), "{refused}");
    let latchkey_tables: bool = sqlx::query_scalar("select to_regclass('auth._auth_users') is not null")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!latchkey_tables, "nothing was written");

    // Accepted: the users come without those factors, which stay in GoTrue's table.
    let output = latchkey_ok(&database, &["import-gotrue", "--skip-unusable-factors"]).await;
    for expected in [
        "--skip-unusable-factors: 3 users are imported without their verified",
        "2 of them sign in with no second factor until they enrol a TOTP factor",
        "1 sessions reached aal2 through a factor that is not imported: they are imported at aal1",
        "imported: 3 users, 4 identities, 2 MFA factors, 2 sessions",
    ] {
        assert!(output.contains(expected), "{expected:?} in:\n{output}");
    }
    let imported: Vec<Uuid> = sqlx::query_scalar("select id from auth._auth_mfa_factors order by id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let expected: Vec<Uuid> = [ALICE_FACTOR, CAROL_FACTOR]
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(imported, expected);
    // Bob's session no longer claims the phone factor it cannot renew.
    let (aal, factor, amr): (String, Option<Uuid>, serde_json::Value) =
        sqlx::query_as("select aal, factor_id, amr from auth._auth_sessions where user_id = $1")
            .bind(Uuid::parse_str(BOB).unwrap())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((aal.as_str(), factor), ("aal1", None));
    assert_eq!(amr.as_array().unwrap().len(), 1, "only oauth is left: {amr}");
    assert_eq!(amr[0]["method"], "oauth");
    let app = TestApp::spawn_on(&database, &[]).await;
    let bob = app.refreshed(BOB_TOKEN).await;
    assert_eq!(assurance(&bob).0, "aal1");
    // A factor Latchkey cannot check is not one it offers to verify.
    let signed_in = app.signed_in("alice@example.com", ALICE_PASSWORD).await;
    let response = challenge(&app, access(&signed_in), ALICE_ENCRYPTED_FACTOR).await;
    assert_eq!(response.status(), 404);

    // Going back leaves the factors Latchkey never held as they were; a factor named like one
    // of them would clash in GoTrue's table and is named first.
    let bob = app.signed_in("bob@example.com", BOB_PASSWORD).await;
    let clashing = enrolled(&app, access(&bob), "sms").await;
    let dry = latchkey_ok(&database, &["export-gotrue", "--dry-run"]).await;
    assert!(dry.contains("the export would stop: 1 problems"), "{dry}");
    let refused = latchkey_fails(&database, &["export-gotrue"]).await;
    assert!(refused.contains("nothing was exported"), "{refused}");
    assert!(
        refused.contains(&format!("problem: 1 users have a factor named like one of their factors that stayed in GoTrue's tables (phone, WebAuthn, unreadable secret); rename one of them first: {BOB}")),
        "{refused}"
    );
    let unenrolled = app
        .request(
            reqwest::Method::DELETE,
            &format!("/auth/v1/admin/users/{BOB}/factors/{}", clashing.id),
        )
        .bearer_auth(app.api_key("service_role"))
        .send()
        .await
        .unwrap();
    assert_eq!(unenrolled.status(), 200);
    let exported = latchkey_ok(&database, &["export-gotrue"]).await;
    assert!(
        exported.contains("MFA factors 2 (0 removed; 4 Latchkey could not hold left as they are)"),
        "{exported}"
    );
    assert_eq!(rows(&mut conn, "auth.mfa_factors").await, factors_before);
    let phone: i64 = sqlx::query_scalar("select count(*) from auth.mfa_factors where id = $1")
        .bind(Uuid::parse_str(BOB_PHONE_FACTOR).unwrap())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(phone, 1);
}
