//! `_auth_users` for the admin API: listing with a filter, changes as given, deletion.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::{UserRow, user_columns};

/// `%filter%` for `ilike ... escape '\'`: `%`, `_` and `\` in the filter match themselves.
/// GoTrue passes them on as wildcards, so its `filter=%` lists everyone and `filter=_` matches
/// any single character; an admin UI that forwards what a person typed should not do that.
fn contains_pattern(filter: &str) -> String {
    let mut pattern = String::with_capacity(filter.len() + 2);
    pattern.push('%');
    for c in filter.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// GoTrue's `filter`: a case-insensitive substring of the email or of `full_name`, pattern `$3`
/// (`$1` in the count). Both sides have a trigram index.
macro_rules! filter_matches {
    () => {
        "(email ilike $3 escape '\\' or raw_user_meta_data ->> 'full_name' ilike $3 escape '\\')"
    };
}

macro_rules! filter_count_matches {
    () => {
        "(email ilike $1 escape '\\' or raw_user_meta_data ->> 'full_name' ilike $1 escape '\\')"
    };
}

/// One page of users for the admin list, newest first unless `ascending`, optionally
/// filtered by a case-insensitive substring of the email or `full_name` (GoTrue's `filter`).
///
/// GoTrue pages by number, so a page is an offset. Without a filter the offset is walked in
/// the `(created_at, id)` index alone (an index-only scan of two columns), and only the page's
/// rows are read from the table: page 10 000 of a million users costs a skip over half a
/// million index entries, not half a million rows. Ties in `created_at` follow `id` in the
/// direction of the sort, so one index serves both orders. With a filter the trigram indexes
/// of `20261205000010_growth_indexes.sql` find the matches. The two cases are two statements:
/// one with `$1 is null or ...` would be planned once for both and use neither index.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: Option<&str>,
    ascending: bool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<UserRow>> {
    let sql = match (filter.is_some(), ascending) {
        (false, true) => concat!(
            "select ",
            user_columns!(),
            " from (select id, created_at as listed_at from _auth_users order by created_at, id \
             limit $1 offset $2) page join _auth_users using (id) order by page.listed_at, page.id"
        ),
        (false, false) => concat!(
            "select ",
            user_columns!(),
            " from (select id, created_at as listed_at from _auth_users order by created_at desc, id desc \
             limit $1 offset $2) page join _auth_users using (id) order by page.listed_at desc, page.id desc"
        ),
        (true, true) => concat!(
            "select ",
            user_columns!(),
            " from _auth_users where ",
            filter_matches!(),
            " order by created_at, id limit $1 offset $2"
        ),
        (true, false) => concat!(
            "select ",
            user_columns!(),
            " from _auth_users where ",
            filter_matches!(),
            " order by created_at desc, id desc limit $1 offset $2"
        ),
    };
    let query = sqlx::query_as(sql).bind(limit).bind(offset);
    match filter {
        Some(filter) => query.bind(contains_pattern(filter)),
        None => query,
    }
    .fetch_all(db)
    .await
}

/// How many users the admin list holds in all (`X-Total-Count`), with the filter of [`list`].
pub async fn count(db: impl PgExecutor<'_>, filter: Option<&str>) -> sqlx::Result<i64> {
    match filter {
        // Kept by triggers (`20261205000010_growth_indexes.sql`): count(*) reads every row.
        None => sqlx::query_scalar("select coalesce(sum(users), 0)::bigint from _auth_users_count"),
        Some(filter) => sqlx::query_scalar(concat!(
            "select count(*) from _auth_users where ",
            filter_count_matches!()
        ))
        .bind(contains_pattern(filter)),
    }
    .fetch_one(db)
    .await
}

/// Admin changes applied as they are given; `None` leaves a column alone.
#[derive(Debug, Default)]
pub struct AdminChanges<'a> {
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub role: Option<&'a str>,
    pub confirm_email: bool,
    pub confirm_phone: bool,
    /// `Some(None)` lifts a ban.
    pub banned_until: Option<Option<chrono::DateTime<chrono::Utc>>>,
}

pub async fn apply_admin_changes(
    db: impl PgExecutor<'_>,
    id: Uuid,
    changes: &AdminChanges<'_>,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(concat!(
        "update _auth_users set \
             email = coalesce($2, email), \
             phone = coalesce($3, phone), \
             role = coalesce($4, role), \
             email_confirmed_at = case when $5 then coalesce(email_confirmed_at, now()) else email_confirmed_at end, \
             phone_confirmed_at = case when $6 then coalesce(phone_confirmed_at, now()) else phone_confirmed_at end, \
             banned_until = case when $7 then $8 else banned_until end, \
             updated_at = now() \
         where id = $1 returning ",
        user_columns!()
    ))
    .bind(id)
    .bind(changes.email)
    .bind(changes.phone)
    .bind(changes.role)
    .bind(changes.confirm_email)
    .bind(changes.confirm_phone)
    .bind(changes.banned_until.is_some())
    .bind(changes.banned_until.flatten())
    .fetch_one(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_users where id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected())
}

/// GoTrue's soft delete: the row stays (for foreign keys and history) but can no longer sign
/// in, and its email and phone are freed.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update _auth_users set email = null, phone = null, encrypted_password = null, \
             raw_app_meta_data = '{}'::jsonb, raw_user_meta_data = '{}'::jsonb, \
             deleted_at = now(), updated_at = now() \
         where id = $1",
    )
    .bind(id)
    .execute(db)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_wildcards_are_escaped() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern("%"), r"%\%%");
        assert_eq!(contains_pattern("a_b"), r"%a\_b%");
        assert_eq!(contains_pattern(r"c:\x"), r"%c:\\x%");
        assert_eq!(contains_pattern("é%"), r"%é\%%");
    }
}
