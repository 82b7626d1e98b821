//! What would go wrong, found in the staged rows (see `stage`) before anything is written.
//! Each check mirrors a constraint of Latchkey's tables that GoTrue's do not have, or a row
//! the import would otherwise drop silently.

use futures::TryStreamExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// Drops from the staging tables the users an earlier import brought in, with their rows: a
/// later run leaves them as Latchkey has them. Returns how many users were dropped.
pub async fn drop_already_imported(conn: &mut PgConnection) -> sqlx::Result<u64> {
    // Autovacuum never analyzes temporary tables: without statistics the planner takes the
    // staged tables for tiny and picks nested loops over 100 000 rows.
    sqlx::raw_sql(
        "analyze pg_temp.gotrue_users; analyze pg_temp.gotrue_identities; \
         analyze pg_temp.gotrue_sessions; analyze pg_temp.gotrue_refresh_tokens; \
         analyze pg_temp.gotrue_mfa_factors;",
    )
    .execute(&mut *conn)
    .await?;
    let dropped =
        sqlx::query("delete from pg_temp.gotrue_users g using _auth_gotrue_imported_users i where i.id = g.id")
            .execute(&mut *conn)
            .await?
            .rows_affected();
    sqlx::raw_sql(
        "delete from pg_temp.gotrue_identities x \
             where not exists (select 1 from pg_temp.gotrue_users g where g.id = x.user_id); \
         delete from pg_temp.gotrue_sessions x \
             where not exists (select 1 from pg_temp.gotrue_users g where g.id = x.user_id); \
         delete from pg_temp.gotrue_refresh_tokens x \
             where not exists (select 1 from pg_temp.gotrue_sessions s where s.id = x.session_id); \
         delete from pg_temp.gotrue_mfa_factors x \
             where not exists (select 1 from pg_temp.gotrue_users g where g.id = x.user_id);",
    )
    .execute(conn)
    .await?;
    Ok(dropped)
}

/// Users (by GoTrue id) that the import cannot bring in as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conflicts {
    /// A Latchkey user that the import did not make already has this id.
    pub id_taken: Vec<Uuid>,
    /// Emails equal but for case among the GoTrue users, or held by a Latchkey user: Latchkey's
    /// unique index is on `lower(email)`, GoTrue's on `email`.
    pub duplicate_email: Vec<Uuid>,
    /// The same phone number twice (among GoTrue's users, or held by a Latchkey user).
    pub duplicate_phone: Vec<Uuid>,
    /// A provider account (`provider`, `provider_id`) or an identity id already belonging to
    /// another Latchkey user: copying it would give one login to two accounts.
    pub identity_taken: Vec<Uuid>,
    /// Users with a verified MFA factor Latchkey cannot check (see `gotrue::factors`).
    pub unusable_verified_factor: Vec<Uuid>,
    /// Users with a factor whose id another Latchkey user's factor already has.
    pub factor_id_taken: Vec<Uuid>,
}

const ID_TAKEN: &str = "select g.id from pg_temp.gotrue_users g join _auth_users u on u.id = g.id order by 1";

/// Each check below is one pass over the staged users (a window for duplicates among them)
/// plus an index lookup per user in Latchkey's table: linear in the number of users.
const DUPLICATE_EMAIL: &str = "\
    select id from ( \
        select g.id, count(*) over (partition by lower(g.email)) as holders, \
            exists (select 1 from _auth_users u where lower(u.email) = lower(g.email) \
                    and u.id <> g.id and u.is_sso_user = false) as taken \
        from pg_temp.gotrue_users g \
        where not coalesce(g.is_sso_user, false) and nullif(g.email, '') is not null) x \
    where holders > 1 or taken \
    order by 1";

const DUPLICATE_PHONE: &str = "\
    select id from ( \
        select g.id, count(*) over (partition by g.phone) as holders, \
            exists (select 1 from _auth_users u where u.phone = g.phone and u.id <> g.id) as taken \
        from pg_temp.gotrue_users g where nullif(g.phone, '') is not null) x \
    where holders > 1 or taken \
    order by 1";

const IDENTITY_TAKEN: &str = "\
    select distinct g.user_id from pg_temp.gotrue_identities g \
    where exists (select 1 from _auth_identities i \
                  where i.provider = g.provider and i.provider_id = g.provider_id and i.user_id <> g.user_id) \
       or exists (select 1 from _auth_identities i where i.id = g.id and i.user_id <> g.user_id) \
    order by 1";

const UNUSABLE_VERIFIED_FACTOR: &str = "\
    select distinct user_id from pg_temp.gotrue_mfa_factors \
    where status = 'verified' and unusable is not null order by 1";

const FACTOR_ID_TAKEN: &str = "\
    select distinct g.user_id from pg_temp.gotrue_mfa_factors g join _auth_mfa_factors f on f.id = g.id \
    where g.unusable is null order by 1";

pub async fn conflicts(conn: &mut PgConnection) -> sqlx::Result<Conflicts> {
    let mut ids = Vec::new();
    for query in [
        ID_TAKEN,
        DUPLICATE_EMAIL,
        DUPLICATE_PHONE,
        IDENTITY_TAKEN,
        UNUSABLE_VERIFIED_FACTOR,
        FACTOR_ID_TAKEN,
    ] {
        ids.push(sqlx::query_scalar(query).fetch_all(&mut *conn).await?);
    }
    let mut ids = ids.into_iter();
    let mut next = || ids.next().unwrap_or_default();
    Ok(Conflicts {
        id_taken: next(),
        duplicate_email: next(),
        duplicate_phone: next(),
        identity_taken: next(),
        unusable_verified_factor: next(),
        factor_id_taken: next(),
    })
}

/// Users whose metadata (`raw_app_meta_data`, `raw_user_meta_data`) or an identity's
/// `identity_data` holds JSON that is not an object (an array, a string, `null`): GoTrue could
/// not read it either, and Latchkey's code merges keys into these objects. They are imported
/// with `{}` there, and named in the report so that nothing changes unseen.
const NOT_OBJECTS: &str = "\
    select id from pg_temp.gotrue_users \
        where jsonb_typeof(raw_app_meta_data) <> 'object' or jsonb_typeof(raw_user_meta_data) <> 'object' \
    union \
    select user_id from pg_temp.gotrue_identities where jsonb_typeof(identity_data) <> 'object' \
    order by 1";

pub async fn not_objects(conn: &mut PgConnection) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(NOT_OBJECTS).fetch_all(conn).await
}

/// What is staged, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StagedCounts {
    pub users: i64,
    pub identities: i64,
    pub sessions: i64,
    pub refresh_tokens: i64,
    pub sso_users: i64,
    pub anonymous_users: i64,
}

pub async fn staged_counts(conn: &mut PgConnection) -> sqlx::Result<StagedCounts> {
    let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from pg_temp.gotrue_users), \
                (select count(*) from pg_temp.gotrue_identities), \
                (select count(*) from pg_temp.gotrue_sessions), \
                (select count(*) from pg_temp.gotrue_refresh_tokens), \
                (select count(*) from pg_temp.gotrue_users where is_sso_user), \
                (select count(*) from pg_temp.gotrue_users where is_anonymous)",
    )
    .fetch_one(conn)
    .await?;
    Ok(StagedCounts {
        users: row.0,
        identities: row.1,
        sessions: row.2,
        refresh_tokens: row.3,
        sso_users: row.4,
        anonymous_users: row.5,
    })
}

/// The staged MFA factors of the users to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagedFactors {
    /// TOTP factors Latchkey holds from now on, and how many of them are verified.
    pub usable: i64,
    pub usable_verified: i64,
    /// Factors left in GoTrue's tables: (reason, verified, count), by reason.
    pub unusable: Vec<(String, bool, i64)>,
    /// Users whose every verified factor is unusable: with `--skip-unusable-factors` they
    /// sign in with the password (or provider) alone.
    pub left_without_mfa: i64,
    /// aal2 sessions reached through a factor that is not imported: imported at aal1.
    pub sessions_lowered: i64,
}

pub async fn staged_factors(conn: &mut PgConnection) -> sqlx::Result<StagedFactors> {
    let (usable, usable_verified, left_without_mfa, sessions_lowered): (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from pg_temp.gotrue_mfa_factors where unusable is null), \
                (select count(*) from pg_temp.gotrue_mfa_factors where unusable is null and status = 'verified'), \
                (select count(distinct f.user_id) from pg_temp.gotrue_mfa_factors f \
                 where f.status = 'verified' and f.unusable is not null \
                   and not exists (select 1 from pg_temp.gotrue_mfa_factors o where o.user_id = f.user_id \
                                   and o.status = 'verified' and o.unusable is null)), \
                (select count(*) from pg_temp.gotrue_sessions s where s.factor_id is not null \
                   and not exists (select 1 from pg_temp.gotrue_mfa_factors f \
                                   where f.id = s.factor_id and f.unusable is null))",
    )
    .fetch_one(&mut *conn)
    .await?;
    let unusable = sqlx::query_as(
        "select unusable, status is not distinct from 'verified', count(*) from pg_temp.gotrue_mfa_factors \
         where unusable is not null group by 1, 2 order by 1, 2 desc",
    )
    .fetch_all(conn)
    .await?;
    Ok(StagedFactors {
        usable,
        usable_verified,
        unusable,
        left_without_mfa,
        sessions_lowered,
    })
}

/// Calls `each` with every staged user that has a password hash, to judge its format.
pub async fn for_each_password_hash(conn: &mut PgConnection, mut each: impl FnMut(Uuid, &str)) -> sqlx::Result<()> {
    let mut rows = sqlx::query_as::<_, (Uuid, String)>(
        "select id, encrypted_password from pg_temp.gotrue_users \
         where nullif(encrypted_password, '') is not null order by id",
    )
    .fetch(conn);
    while let Some((id, hash)) = rows.try_next().await? {
        each(id, &hash);
    }
    Ok(())
}
