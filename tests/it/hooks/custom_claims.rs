//! The custom access token hook: claims added by a Postgres function reach row-level
//! security; the HTTP transport is signed; a refusing or broken hook issues no session.

use axum::response::IntoResponse;
use latchkey::rls::Rls;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

use super::{Receiver, WEBHOOK_SECRET};
use crate::helpers::{JWT_SECRET, TestApp, assert_error, expect_session, jwt_payload, random_email};

const PASSWORD: &str = "correct horse battery staple";

/// Tenants and scopes per user, the function that puts them into tokens (and records each
/// call, to show that its writes commit with the request), and a table whose policies filter
/// on the claims.
const SCHEMA: &str = r#"
create table public.tenant_members (user_id uuid primary key, tenant_id text not null, scopes text[] not null);
create table public.hook_calls (user_id uuid, method text);
create function public.add_tenant_claims(event jsonb) returns jsonb language plpgsql as $$
declare
  member public.tenant_members;
begin
  insert into public.hook_calls values ((event->>'user_id')::uuid, event->>'authentication_method');
  select * into member from public.tenant_members where user_id = (event->>'user_id')::uuid;
  if not found then
    return jsonb_build_object('claims', event->'claims');
  end if;
  return jsonb_build_object('claims', event->'claims'
    || jsonb_build_object('tenant_id', member.tenant_id, 'scopes', to_jsonb(member.scopes)));
end $$;

create table public.documents (tenant_id text not null, body text not null);
alter table public.documents enable row level security;
grant select, insert on public.documents to authenticated;
create policy tenant_reads on public.documents for select to authenticated
  using (tenant_id = auth.jwt()->>'tenant_id');
create policy writers_write on public.documents for insert to authenticated
  with check (tenant_id = auth.jwt()->>'tenant_id' and auth.jwt()->'scopes' ? 'write');
insert into public.documents values ('acme', 'acme plan'), ('globex', 'globex plan');
"#;

fn pg_hook(function: &str) -> [(&'static str, String); 2] {
    [
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true".to_owned()),
        (
            "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
            format!("pg-functions://postgres/public/{function}"),
        ),
    ]
}

async fn spawn(vars: &[(&'static str, String)]) -> TestApp {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&vars).await;
    sqlx::raw_sql(SCHEMA).execute(&mut app.db().await).await.unwrap();
    app
}

async fn member(app: &TestApp, user_id: &str, tenant: &str, scopes: &[&str]) {
    sqlx::query("insert into public.tenant_members values ($1::uuid, $2, $3)")
        .bind(user_id)
        .bind(tenant)
        .bind(scopes)
        .execute(&mut app.db().await)
        .await
        .unwrap();
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut app.db().await)
        .await
        .unwrap()
}

/// Signs up `email` in `tenant` and signs in: the access token of the new session.
async fn tenant_user(app: &TestApp, email: &str, tenant: &str, scopes: &[&str]) -> String {
    let signed_up = app.sign_up(email, PASSWORD).await;
    member(app, signed_up["user"]["id"].as_str().unwrap(), tenant, scopes).await;
    let session = app.signed_in(email, PASSWORD).await;
    session["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn claims_from_a_postgres_function_reach_row_level_security() {
    let app = spawn(&pg_hook("add_tenant_claims")).await;
    let writer = tenant_user(&app, &random_email(), "acme", &["read", "write"]).await;
    let reader = tenant_user(&app, &random_email(), "globex", &["read"]).await;

    let claims = jwt_payload(&writer);
    assert_eq!(
        (claims["tenant_id"].clone(), claims["scopes"].clone()),
        (json!("acme"), json!(["read", "write"]))
    );
    assert_eq!(claims["role"], "authenticated", "GoTrue's claims stay: {claims}");
    assert!(claims["sub"].is_string() && claims["session_id"].is_string());

    let pool = PgPoolOptions::new().connect(&app.database_url).await.unwrap();
    let rls = Rls::with_default_roles(&SecretString::from(JWT_SECRET));
    for (token, tenant, may_write) in [(&writer, "acme", true), (&reader, "globex", false)] {
        let mut tx = rls.begin(&pool, token).await.unwrap();
        let seen: Vec<String> = sqlx::query_scalar("select tenant_id from public.documents")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, [tenant], "each tenant sees its own rows only");
        let wrote = sqlx::query("insert into public.documents values ($1, 'new')")
            .bind(tenant)
            .execute(&mut *tx)
            .await;
        assert_eq!(wrote.is_ok(), may_write, "only the write scope inserts: {wrote:?}");
    }
}

#[tokio::test]
async fn refreshed_tokens_go_through_the_hook_too() {
    let app = spawn(&pg_hook("add_tenant_claims")).await;
    let email = random_email();
    let signed_up = app.sign_up(&email, PASSWORD).await;
    member(&app, signed_up["user"]["id"].as_str().unwrap(), "acme", &["read"]).await;
    let session = app.signed_in(&email, PASSWORD).await;
    let refreshed = app.refreshed(session["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        jwt_payload(refreshed["access_token"].as_str().unwrap())["tenant_id"],
        "acme"
    );
    // The function's own writes committed with each request, with GoTrue's method names.
    let methods: Vec<String> = sqlx::query_scalar("select method from public.hook_calls")
        .fetch_all(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(
        methods,
        ["password", "password", "token_refresh"],
        "sign-up, sign-in, refresh"
    );
}

/// Each hook answer that must not become a token: the client's error, and no session left.
#[tokio::test]
async fn a_refusing_or_broken_hook_issues_no_session() {
    let cases = [
        // Claims that break GoTrue's schema: a 500 naming the claim.
        (
            "returns jsonb language sql as $$ select jsonb_build_object('claims', (event->'claims') - 'sub') $$",
            500,
            "sub is required",
        ),
        (
            "returns jsonb language sql as $$ select jsonb_build_object('claims', \
             jsonb_set(event->'claims', '{exp}', '\"tomorrow\"')) $$",
            500,
            "exp: Invalid type",
        ),
        (
            "returns jsonb language sql as $$ select '{}'::jsonb $$",
            500,
            "output claims field is missing",
        ),
        // GoTrue's error shape: the hook's status and message.
        (
            "returns jsonb language sql as $$ select '{\"error\": {\"http_code\": 403, \
             \"message\": \"Tenant suspended\"}}'::jsonb $$",
            403,
            "Tenant suspended",
        ),
        (
            "returns jsonb language plpgsql as $$ begin raise exception 'boom'; end $$",
            500,
            "Error running hook URI",
        ),
        (
            "returns jsonb language plpgsql as $$ begin perform pg_sleep(3); return event; end $$",
            422,
            "Failed to reach hook within maximum time",
        ),
    ];
    for (body, status, message) in cases {
        let app = spawn(&pg_hook("claims_hook")).await;
        let email = random_email();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "create function public.claims_hook(event jsonb) {body}"
        )))
        .execute(&mut app.db().await)
        .await
        .unwrap();
        let response = app
            .post_json("/auth/v1/signup", &json!({ "email": email, "password": PASSWORD }))
            .await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["msg"].as_str().unwrap().contains(message), "{body}: {error}");
        assert_eq!(
            count(&app, "select count(*) from auth._auth_sessions").await,
            0,
            "{body}: no session"
        );
        assert_eq!(count(&app, "select count(*) from auth._auth_refresh_tokens").await, 0);
        assert_eq!(
            count(&app, "select count(*) from auth._auth_users").await,
            0,
            "sign-up undone"
        );
    }
}

#[tokio::test]
async fn a_refused_sign_in_or_refresh_leaves_no_session_and_the_token_unrotated() {
    let app = spawn(&pg_hook("claims_hook")).await;
    sqlx::raw_sql(
        "create table public.hook_switch (broken boolean not null); insert into public.hook_switch values (false);
         create function public.claims_hook(event jsonb) returns jsonb language plpgsql as $$
         begin
           if (select broken from public.hook_switch) then
             return '{\"error\": {\"http_code\": 403, \"message\": \"Refresh refused\"}}'::jsonb;
           end if;
           return jsonb_build_object('claims', event->'claims');
         end $$;",
    )
    .execute(&mut app.db().await)
    .await
    .unwrap();
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let refresh_token = session["refresh_token"].as_str().unwrap();
    sqlx::raw_sql("update public.hook_switch set broken = true")
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let tokens_before = count(&app, "select count(*) from auth._auth_refresh_tokens").await;
    // A password sign-in runs without a transaction of its own: the refused token must still
    // take its new session with it.
    let sessions_before = count(&app, "select count(*) from auth._auth_sessions").await;
    assert_eq!(app.sign_in(&email, PASSWORD).await.status(), 403);
    assert_eq!(
        count(&app, "select count(*) from auth._auth_sessions").await,
        sessions_before
    );
    let response = app.refresh(refresh_token).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        count(&app, "select count(*) from auth._auth_refresh_tokens").await,
        tokens_before
    );
    sqlx::raw_sql("update public.hook_switch set broken = false")
        .execute(&mut app.db().await)
        .await
        .unwrap();
    expect_session(app.refresh(refresh_token).await).await;
}

#[tokio::test]
async fn an_http_hook_is_signed_and_its_claims_are_signed_into_the_token() {
    let receiver = Receiver::start(|input: &Value| {
        let mut claims = input["claims"].clone();
        claims["tenant_id"] = json!("acme");
        claims["scopes"] = json!(["read"]);
        axum::Json(json!({ "claims": claims })).into_response()
    })
    .await;
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI", &receiver.url),
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    let email = random_email();
    let session = app.sign_up(&email, PASSWORD).await;
    let claims = jwt_payload(session["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["tenant_id"].as_str(), claims["scopes"].clone()),
        (Some("acme"), json!(["read"]))
    );

    let inputs = receiver.inputs.lock().unwrap().clone();
    assert_eq!(inputs.len(), 1);
    let input = &inputs[0];
    assert_eq!(input["user_id"], session["user"]["id"]);
    assert_eq!(input["authentication_method"], "password");
    assert_eq!(input["claims"]["email"], email.as_str());
    assert_eq!(input["metadata"]["name"], "customize-access-token");
}

#[tokio::test]
async fn a_receiver_that_rejects_the_signature_gets_no_session_issued() {
    let receiver =
        Receiver::start(|input: &Value| axum::Json(json!({ "claims": input["claims"] })).into_response()).await;
    let app = TestApp::spawn_with(&[
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
        ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI", &receiver.url),
        // Another secret than the receiver's.
        (
            "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS",
            "v1,whsec_YW5vdGhlciB0ZXN0IHNlY3JldCBvZiAzMiBieXRlcyE=",
        ),
    ])
    .await;
    let response = app
        .post_json(
            "/auth/v1/signup",
            &json!({ "email": random_email(), "password": PASSWORD }),
        )
        .await;
    let body = assert_error(response, 500, "unexpected_failure").await;
    assert_eq!(body["msg"], "Hook requires authorization token");
    assert!(receiver.inputs.lock().unwrap().is_empty());
    assert_eq!(count(&app, "select count(*) from auth._auth_users").await, 0);
}
