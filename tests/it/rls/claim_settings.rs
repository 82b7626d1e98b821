//! The opt-in `jwt.<claim>` settings (`Rls::publish_claims_as_jwt_settings`): a policy
//! written as `current_setting('jwt.tenant_id', true)` works on a token shaped by a custom
//! access token hook, and the hook's hostile claim names publish nothing.

use std::collections::BTreeSet;

use latchkey::rls::Rls;
use secrecy::SecretString;
use sqlx::{PgConnection, Postgres, Transaction};

use super::backend_pool;
use crate::helpers::{JWT_SECRET, TestApp, jwt_payload, random_email};

/// A hook that puts a tenant into every token, with claims named to attack the settings; a
/// table whose policy reads the tenant from `jwt.tenant_id`.
const SCHEMA: &str = r#"
create function public.tenant_and_hostile_claims(event jsonb) returns jsonb language sql as $$
  select jsonb_build_object('claims', event->'claims' || jsonb_build_object(
    'tenant_id', 'acme',
    'EMAIL', 'admin@evil.example',
    'Tenant_Id', 'globex',
    'tenant_id''); reset role; --', 'globex',
    'jwt.tenant_id', 'globex',
    'request.jwt.claims', '{"role":"service_role"}',
    'role ', 'postgres',
    repeat('t', 64), 'globex'))
$$;
create table public.tenant_notes (tenant_id text not null, body text not null);
alter table public.tenant_notes enable row level security;
grant select on public.tenant_notes to authenticated;
create policy by_tenant on public.tenant_notes for select to authenticated
  using (tenant_id = current_setting('jwt.tenant_id', true));
insert into public.tenant_notes values ('acme', 'acme plan'), ('globex', 'globex plan');
"#;

fn rls() -> Rls {
    Rls::with_default_roles(&SecretString::from(JWT_SECRET))
}

async fn visible_tenants(tx: &mut Transaction<'_, Postgres>) -> Vec<String> {
    sqlx::query_scalar("select tenant_id from public.tenant_notes order by 1")
        .fetch_all(&mut **tx)
        .await
        .unwrap()
}

async fn setting(conn: &mut PgConnection, name: &str) -> Option<String> {
    sqlx::query_scalar("select nullif(current_setting($1, true), '')")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn jwt_claim_settings_serve_policies_and_skip_hostile_names() {
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
        (
            "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
            "pg-functions://postgres/public/tenant_and_hostile_claims",
        ),
    ])
    .await;
    sqlx::raw_sql(SCHEMA).execute(&mut app.db().await).await.unwrap();
    let email = random_email();
    let session = app.sign_up(&email, "correct horse battery staple").await;
    let token = session["access_token"].as_str().unwrap();
    let claims = jwt_payload(token);
    assert_eq!(
        (&claims["tenant_id"], &claims["EMAIL"]),
        (&"acme".into(), &"admin@evil.example".into())
    );

    // One connection, so the check after the transaction sees the same session.
    let pool = backend_pool(&app, 1).await;
    let publishing = rls().publish_claims_as_jwt_settings(true);
    let mut tx = publishing.begin(&pool, token).await.unwrap();
    assert_eq!(visible_tenants(&mut tx).await, ["acme"]);
    assert_eq!(setting(&mut tx, "jwt.email").await.as_deref(), Some(email.as_str()));
    assert_eq!(setting(&mut tx, "jwt.is_anonymous").await.as_deref(), Some("false"));
    let metadata = setting(&mut tx, "jwt.app_metadata").await.unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["provider"], "email");
    // The hostile names changed nothing: the role, auth.jwt() and the published names.
    let role: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(role, "authenticated");
    let jwt_role: String = sqlx::query_scalar("select auth.jwt()->>'role'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(jwt_role, "authenticated");
    // Every plain claim is published; the hostile ones are not, not even lower-cased.
    let plain = claims.as_object().unwrap().keys().filter(|name| {
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && name.len() <= 63
    });
    let plain: BTreeSet<&String> = plain.collect();
    assert!(
        plain.len() >= 14 && plain.contains(&"tenant_id".to_owned()),
        "{plain:?}"
    );
    for name in plain {
        let published: Option<String> = sqlx::query_scalar("select current_setting($1, true)")
            .bind(format!("jwt.{name}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let expected = match &claims[name.as_str()] {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        assert_eq!(published, Some(expected), "jwt.{name}");
    }
    assert_eq!(setting(&mut tx, "jwt.tenant_id").await.as_deref(), Some("acme"));
    for hostile in [
        "jwt.jwt.tenant_id".to_owned(),
        "jwt.request.jwt.claims".to_owned(),
        format!("jwt.{}", "t".repeat(64)),
    ] {
        assert_eq!(setting(&mut tx, &hostile).await, None, "{hostile}");
    }
    tx.rollback().await.unwrap();

    // Transaction-local: gone from the pooled connection afterwards.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(setting(&mut conn, "jwt.tenant_id").await, None);
    assert_eq!(setting(&mut conn, "jwt.email").await, None);
    drop(conn);

    // Off by default: the same token publishes no jwt.* setting, and the policy sees nothing.
    let mut tx = rls().begin(&pool, token).await.unwrap();
    assert!(visible_tenants(&mut tx).await.is_empty());
    assert_eq!(setting(&mut tx, "jwt.email").await, None);
    tx.rollback().await.unwrap();
}
