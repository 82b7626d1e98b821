//! The admin user list as the user base grows (issue #23): one order for every page in both
//! directions, even among users created at the same instant; GoTrue's substring filter on the
//! email and `full_name`; and the indexes that keep a deep page and the filter from reading
//! the whole table (`20261205000010_growth_indexes.sql`, measured in BENCHMARKS.md).

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::admin;
use crate::helpers::TestApp;

/// Every email of `GET /admin/users` pages of `per_page`, in order.
async fn all_pages(app: &TestApp, sort: &str, per_page: usize) -> Vec<String> {
    let mut emails = Vec::new();
    for page in 1.. {
        let path = format!("/admin/users?page={page}&per_page={per_page}&sort={sort}");
        let body: Value = admin(app, Method::GET, &path, None).await.json().await.unwrap();
        let users = body["users"].as_array().unwrap();
        emails.extend(users.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        if users.len() < per_page {
            return emails;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn pages_cover_every_user_once_in_one_order_both_ways() {
    let app = TestApp::spawn().await;
    let mut db = app.db().await;
    // Seven users created at one instant (an import, a seed) and three after.
    sqlx::raw_sql(
        "insert into _auth_users (id, aud, role, email, created_at) \
         select gen_random_uuid(), 'authenticated', 'authenticated', 'same-' || k || '@example.com', \
         '2026-01-01T00:00:00Z' from generate_series(1, 7) k; \
         insert into _auth_users (id, aud, role, email, created_at) \
         select gen_random_uuid(), 'authenticated', 'authenticated', 'later-' || k || '@example.com', \
         '2026-01-01T00:00:00Z'::timestamptz + make_interval(secs => k) from generate_series(1, 3) k",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let newest_first = all_pages(&app, "created_at%20desc", 3).await;
    let oldest_first = all_pages(&app, "created_at%20asc", 3).await;
    assert_eq!(newest_first.len(), 10, "{newest_first:?}");
    let mut unique = newest_first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "a user on two pages: {newest_first:?}");
    assert_eq!(
        &newest_first[..3],
        ["later-3@example.com", "later-2@example.com", "later-1@example.com"]
    );
    let mut reversed = oldest_first.clone();
    reversed.reverse();
    assert_eq!(reversed, newest_first);
    // The last page, as GoTrue's Link header names it, ends the list.
    let response = admin(&app, Method::GET, "/admin/users?page=4&per_page=3", None).await;
    assert_eq!(response.headers()["x-total-count"], "10");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["users"][0]["email"], *newest_first.last().unwrap());
}

#[tokio::test]
async fn filter_finds_substrings_of_email_and_full_name_in_any_case() {
    let app = TestApp::spawn().await;
    for (email, name) in [
        ("ada@example.com", "Ada Lovelace"),
        ("grace@example.com", "Grace Hopper"),
        ("alan_t@example.com", "Alan Turing"),
        ("alanxt@example.com", "Someone Else"),
    ] {
        let created = admin(
            &app,
            Method::POST,
            "/admin/users",
            Some(json!({"email": email, "password": "secret-pw", "user_metadata": {"full_name": name}})),
        )
        .await;
        assert_eq!(created.status(), 200);
    }
    let emails = |body: Value| -> Vec<String> {
        let mut emails: Vec<String> = body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect();
        emails.sort();
        emails
    };
    for (filter, expected) in [
        ("LOVEL", vec!["ada@example.com"]),
        ("hopper", vec!["grace@example.com"]),
        ("ce@exa", vec!["grace@example.com"]),
        // `_` is a character here, not a wildcard.
        ("alan_t", vec!["alan_t@example.com"]),
        ("%", vec![]),
        ("no such user", vec![]),
    ] {
        let path = format!("/admin/users?filter={}", urlencode(filter));
        let response = admin(&app, Method::GET, &path, None).await;
        assert_eq!(response.status(), 200, "{filter}");
        assert_eq!(
            response.headers()["x-total-count"],
            expected.len().to_string().as_str(),
            "{filter}"
        );
        assert_eq!(emails(response.json().await.unwrap()), expected, "{filter}");
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The plan of `sql` with sequential scans and sorts priced out: the planner still takes them
/// when no index fits, so their absence shows that one does.
async fn plan(db: &mut sqlx::PgConnection, sql: &str) -> String {
    sqlx::raw_sql("set enable_seqscan = off; set enable_sort = off")
        .execute(&mut *db)
        .await
        .unwrap();
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("explain {sql}")))
        .fetch_all(&mut *db)
        .await
        .unwrap();
    lines.join("\n")
}

#[tokio::test]
async fn deep_pages_and_the_filter_are_found_through_indexes() {
    let app = TestApp::spawn().await;
    let mut db = app.db().await;
    for direction in ["", " desc"] {
        let sql = format!(
            "select id, created_at from _auth_users order by created_at{direction}, id{direction} limit 50 offset 500000"
        );
        let plan = plan(&mut db, &sql).await;
        assert!(
            plan.contains("Index Only Scan") && plan.contains("_auth_users_created_at_id_idx"),
            "{plan}"
        );
        assert!(!plan.contains("Sort"), "{plan}");
    }
    let plan = plan(
        &mut db,
        "select id from _auth_users where email ilike '%user42@%' escape '\\' \
         or raw_user_meta_data ->> 'full_name' ilike '%user42@%' escape '\\'",
    )
    .await;
    assert!(plan.contains("_auth_users_email_trgm_idx"), "{plan}");
    assert!(plan.contains("_auth_users_full_name_trgm_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

/// `X-Total-Count` of the unfiltered list.
async fn total(app: &TestApp) -> i64 {
    let response = admin(app, Method::GET, "/admin/users?per_page=1", None).await;
    assert_eq!(response.status(), 200);
    response.headers()["x-total-count"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn total_count_follows_sign_ups_deletions_bulk_writes_and_truncation() {
    let app = TestApp::spawn().await;
    assert_eq!(total(&app).await, 0);
    for _ in 0..3 {
        app.sign_up(&crate::helpers::random_email(), "secret-pw").await;
    }
    assert_eq!(total(&app).await, 3);
    let mut db = app.db().await;
    // An import in one statement, by a client whose search_path does not name the schema.
    sqlx::raw_sql(
        "set search_path to public; \
         insert into auth._auth_users (id, aud, role, email) \
         select gen_random_uuid(), 'authenticated', 'authenticated', 'bulk-' || k || '@example.com' \
         from generate_series(1, 20) k; \
         delete from auth._auth_users where email in ('bulk-1@example.com', 'bulk-2@example.com'); \
         set search_path to auth, public",
    )
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(total(&app).await, 21);
    let body: Value = admin(&app, Method::GET, "/admin/users?per_page=1", None)
        .await
        .json()
        .await
        .unwrap();
    let id = body["users"][0]["id"].as_str().unwrap();
    let deleted = admin(&app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(total(&app).await, 20);
    // A transaction that rolls back leaves the count alone; the count is count(*)'s.
    sqlx::raw_sql("begin; delete from _auth_users; rollback")
        .execute(&mut db)
        .await
        .unwrap();
    let counted: i64 = sqlx::query_scalar("select count(*) from _auth_users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(counted, 20);
    assert_eq!(total(&app).await, 20);
    sqlx::raw_sql("truncate _auth_users cascade")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(total(&app).await, 0);
}
