//! Seeds the database the server migrated: users with a real argon2id hash of the bench
//! password (so sign-in does the real work), their email identities, two sessions per user
//! (one named by the pgbench `GET /user` script), the history of a user base in use
//! (`history`), and fresh refresh-token chains for the pgbench refresh script. Ids are derived
//! from integers so that pgbench's `random()` can name them.

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

use crate::server::Argon2Params;

/// `k` → the uuid of seeded user k (`00000000-0000-4000-8000-00000000000k`).
pub const USER_ID: &str = "('00000000-0000-4000-8000-' || lpad(cast(k as text), 12, '0'))::uuid";

/// Seeded user k signed up k seconds after the first (`user{users}` is the newest), so that
/// the admin list has one order, as on a real user base, and its pages can be named by k.
const CREATED_AT: &str = "now() - make_interval(secs => $1 - k)";

/// Session `s` (0 or 1) of seeded user k.
const SESSION: &str = "('00000000-0000-4000-' || case s when 0 then '9000' else 'b000' end \
                       || '-' || lpad(cast(k as text), 12, '0'))::uuid";

pub async fn connect(database_url: &str) -> anyhow::Result<PgConnection> {
    let options: PgConnectOptions = database_url.parse()?;
    Ok(options.options([("search_path", "auth")]).connect().await?)
}

pub fn argon2_hash(params: Argon2Params, password: &str) -> anyhow::Result<String> {
    let params = Params::new(params.m_kib, params.t, params.p, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}

pub async fn users(conn: &mut PgConnection, count: u32, password_hash: &str) -> anyhow::Result<()> {
    let user_id = USER_ID;
    let email = "'user' || k || '@bench.test'";
    let created_at = CREATED_AT;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into _auth_users (id, aud, role, email, encrypted_password, email_confirmed_at, \
             raw_app_meta_data, raw_user_meta_data, created_at, updated_at) \
         select {user_id}, 'authenticated', 'authenticated', {email}, $2, now(), \
             '{{\"provider\": \"email\", \"providers\": [\"email\"]}}', \
             jsonb_build_object('sub', {user_id}, 'email', {email}, 'email_verified', true, 'phone_verified', false), \
             {created_at}, {created_at} \
         from generate_series(1, $1) k on conflict do nothing"
    )))
    .bind(count as i32)
    .bind(password_hash)
    .execute(&mut *conn)
    .await?;
    sqlx::raw_sql(
        "insert into _auth_identities (provider_id, user_id, identity_data, provider, last_sign_in_at) \
         select id::text, id, raw_user_meta_data, 'email', now() from _auth_users \
         where email like 'user%@bench.test' on conflict do nothing",
    )
    .execute(&mut *conn)
    .await?;
    // Two sessions per user: `...-9000-<k>` is named by the pgbench GET /user script, and
    // `...-b000-<k>` is the user's other device (see `history`).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into _auth_sessions (id, user_id, amr) \
         select {SESSION}, {user_id}, '[{{\"method\": \"password\", \"timestamp\": 1700000000}}]' \
         from generate_series(1, $1) k, generate_series(0, 1) s on conflict do nothing"
    )))
    .bind(count as i32)
    .execute(&mut *conn)
    .await?;
    history(conn, count).await?;
    sqlx::raw_sql("vacuum analyze").execute(&mut *conn).await?;
    Ok(())
}

/// What a user base that has been signed into for a while holds besides its users and their
/// two sessions: ten refresh tokens per user, five per session (four rotated away and
/// revoked, one live), so a million users come with two million sessions and ten million
/// tokens. Written by the database itself (`generate_series`), not over HTTP. They are recent,
/// so the cleanup task leaves them alone during the run.
async fn history(conn: &mut PgConnection, count: u32) -> anyhow::Result<()> {
    let user_id = USER_ID;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent, revoked) \
         select 'seed-' || k || '-' || s || '-' || n, {user_id}, {SESSION}, n, \
             case when n > 0 then 'seed-' || k || '-' || s || '-' || (n - 1) end, n < 4 \
         from generate_series(1, $1) k, generate_series(0, 1) s, generate_series(0, 4) n \
         on conflict do nothing"
    )))
    .bind(count as i32)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One fresh chain per pgbench client `c` (1-based): session `...-a000-<c>` of user
/// `((c-1) % users) + 1`, with live token number 0 whose stored hash is `c * 1000000`. Token
/// number n of that chain is `c * 1000000 + n`, which the script computes.
pub async fn refresh_chains(conn: &mut PgConnection, clients: usize, users: u32) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "delete from _auth_sessions where id between '00000000-0000-4000-a000-000000000000' \
         and '00000000-0000-4000-a000-ffffffffffff'",
    )
    .execute(&mut *conn)
    .await?;
    let session = "('00000000-0000-4000-a000-' || lpad(cast(c as text), 12, '0'))::uuid";
    let user = "('00000000-0000-4000-8000-' || lpad(cast(((c - 1) % $2) + 1 as text), 12, '0'))::uuid";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into _auth_sessions (id, user_id, amr) \
         select {session}, {user}, '[{{\"method\": \"password\", \"timestamp\": 1700000000}}]' \
         from generate_series(1, $1) c"
    )))
    .bind(clients as i32)
    .bind(users as i32)
    .execute(&mut *conn)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter) \
         select cast(c * 1000000 as text), {user}, {session}, 0 from generate_series(1, $1) c"
    )))
    .bind(clients as i32)
    .bind(users as i32)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
