//! `/admin/users/{id}/factors`: list, rename, delete; deleting a user removes their factors.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{PASSWORD, access, assurance, enrolled, mfa_user, refresh_token};
use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email};

fn user_id(session: &Value) -> String {
    session["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn admins_list_rename_and_delete_factors() {
    let app = TestApp::spawn().await;
    let user = mfa_user(&app).await;
    let id = user_id(&user.aal2);
    let spare = enrolled(&app, access(&user.aal2), "Spare").await;

    let listed: Value = admin(&app, Method::GET, &format!("/admin/users/{id}/factors"), None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["friendly_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["phone app", "Spare"]);
    assert_eq!(listed[0]["status"], "verified");
    assert_eq!(listed[1]["status"], "unverified");
    // The admin's user object lists them too.
    let shown: Value = admin(&app, Method::GET, &format!("/admin/users/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["factors"].as_array().unwrap().len(), 2);

    let path = format!("/admin/users/{id}/factors/{}", spare.id);
    let renamed = admin(&app, Method::PUT, &path, Some(json!({ "friendly_name": "Drawer key" }))).await;
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["friendly_name"], "Drawer key");
    assert_eq!(renamed["id"].as_str(), Some(spare.id.as_str()));
    let taken = admin(&app, Method::PUT, &path, Some(json!({ "friendly_name": "phone app" }))).await;
    assert_error(taken, 422, "mfa_factor_name_conflict").await;
    let unchanged: Value = admin(&app, Method::PUT, &path, Some(json!({ "friendly_name": "" })))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["friendly_name"], "Drawer key");

    // Deleting the verified factor downgrades the session that passed MFA with it.
    let verified = format!("/admin/users/{id}/factors/{}", user.factor.id);
    let deleted = admin(&app, Method::DELETE, &verified, None).await;
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["id"].as_str(), Some(user.factor.id.as_str()));
    let refreshed = app.refreshed(refresh_token(&user.aal2)).await;
    assert_eq!(assurance(&refreshed), ("aal1".into(), vec!["password".into()]));
    assert_error(
        admin(&app, Method::DELETE, &verified, None).await,
        404,
        "mfa_factor_not_found",
    )
    .await;
}

#[tokio::test]
async fn admin_factor_routes_check_their_ids_and_caller() {
    let app = TestApp::spawn().await;
    let session = app.sign_up(&random_email(), PASSWORD).await;
    let id = user_id(&session);
    let factor = enrolled(&app, access(&session), "Phone").await;
    let nobody = Uuid::new_v4();
    let other = app.sign_up(&random_email(), PASSWORD).await;
    let other_id = user_id(&other);
    let cases = [
        (
            Method::GET,
            format!("/admin/users/{nobody}/factors"),
            404,
            "user_not_found",
        ),
        (
            Method::GET,
            "/admin/users/nope/factors".to_owned(),
            404,
            "validation_failed",
        ),
        (
            Method::DELETE,
            format!("/admin/users/{id}/factors/{nobody}"),
            404,
            "mfa_factor_not_found",
        ),
        (
            Method::DELETE,
            format!("/admin/users/{id}/factors/nope"),
            404,
            "validation_failed",
        ),
        // Another user's factor is not found under this user.
        (
            Method::DELETE,
            format!("/admin/users/{other_id}/factors/{}", factor.id),
            404,
            "mfa_factor_not_found",
        ),
        (
            Method::PUT,
            format!("/admin/users/{other_id}/factors/{}", factor.id),
            404,
            "mfa_factor_not_found",
        ),
    ];
    for (method, path, status, code) in cases {
        let body = (method == Method::PUT).then(|| json!({ "friendly_name": "x" }));
        assert_error(admin(&app, method, &path, body).await, status, code).await;
    }
    let path = format!("/admin/users/{id}/factors");
    assert_error(app.get(&path).await, 401, "no_authorization").await;
    assert_error(app.get_auth(&path, access(&session)).await, 403, "not_admin").await;
    let too_long = json!({ "friendly_name": "n".repeat(256) });
    let response = admin(&app, Method::PUT, &format!("{path}/{}", factor.id), Some(too_long)).await;
    assert_error(response, 400, "validation_failed").await;
}

#[tokio::test]
async fn deleting_a_user_deletes_their_factors() {
    let app = TestApp::spawn().await;
    let mut db = app.db().await;
    for soft in [false, true] {
        let user = mfa_user(&app).await;
        let id = user_id(&user.aal2);
        let response = admin(
            &app,
            Method::DELETE,
            &format!("/admin/users/{id}"),
            Some(json!({ "should_soft_delete": soft })),
        )
        .await;
        assert_eq!(response.status(), 200);
        let left: i64 = sqlx::query_scalar("select count(*) from _auth_mfa_factors where user_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(left, 0, "soft delete: {soft}");
    }
}
