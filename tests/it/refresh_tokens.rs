//! Latchkey's refresh tokens name their session and number, so that the common refresh is one
//! statement (`db::refresh_tokens::rotate_live`). These tests check what that statement
//! writes, and that what a token claims is never trusted on its own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::admin;
use crate::helpers::{TestApp, assert_error, random_email, refresh_token};

const PASSWORD: &str = "secret-pw-refresh";

/// (live, revoked) refresh tokens and `token_refreshed` entries in the database.
async fn written(app: &TestApp) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from _auth_refresh_tokens where not revoked), \
                (select count(*) from _auth_refresh_tokens where revoked), \
                (select count(*) from _auth_audit_log where payload->>'action' = 'token_refreshed')",
    )
    .fetch_one(&mut app.db().await)
    .await
    .unwrap()
}

/// The stored texts of the `token_refreshed` entries for `user`, oldest first.
async fn refresh_entries(app: &TestApp, user: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select payload::text from _auth_audit_log where payload->>'actor_id' = $1 \
         and payload->>'action' = 'token_refreshed' order by created_at",
    )
    .bind(user)
    .fetch_all(&mut app.db().await)
    .await
    .unwrap()
}

/// The one statement writes its `token_refreshed` entry itself, from the user row it reads;
/// the locking path's entry is built by the server (`audit::Entry::by_user`). Both must name
/// the user alike (GoTrue's `NewAuditLogEntry`: the phone when there is one, and `full_name`
/// as it is, whatever its type), down to the stored text.
#[tokio::test]
async fn the_refresh_entry_names_the_user_as_the_server_would() {
    let app = TestApp::spawn().await;
    let users = [
        json!({"phone": "15550001234", "user_metadata": {"full_name": "Ada \"Countess\" Lovelace"}}),
        json!({"user_metadata": {"full_name": null}}),
        json!({"user_metadata": {"full_name": {"given": "Ada", "list": [1, 2.5, "é"]}}}),
        json!({"user_metadata": {"fullname": "not this key"}}),
        json!({}),
    ];
    for extra in users {
        let email = random_email();
        let mut body = json!({"email": email, "password": PASSWORD, "email_confirm": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let response = admin(&app, Method::POST, "/admin/users", Some(body)).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let session = app.signed_in(&email, PASSWORD).await;
        let user = session["user"]["id"].as_str().unwrap().to_owned();
        // Rotated by the one statement; then the same token again, which the locking path
        // answers with the current token (GoTrue's rule for the parent of the live token).
        let next = app.refreshed(refresh_token(&session)).await;
        let again = app.refreshed(refresh_token(&session)).await;
        assert_eq!(refresh_token(&again), refresh_token(&next));
        let entries = refresh_entries(&app, &user).await;
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0], entries[1], "for {extra}");
    }
}

/// The token as issued, as bytes: version, session id, number, MAC.
fn bytes_of(token: &str) -> Vec<u8> {
    let bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    assert_eq!(bytes.len(), 45, "{token}");
    bytes
}

/// Made-up tokens in Latchkey's format find nothing and change nothing, whatever session and
/// number they name: only the stored hash of the whole token lets a refresh through.
#[tokio::test]
async fn what_a_token_names_is_never_trusted_on_its_own() {
    let app = TestApp::spawn().await;
    let mine = app.sign_up(&random_email(), PASSWORD).await;
    let theirs = app.sign_up(&random_email(), PASSWORD).await;
    let before = written(&app).await;
    let real = bytes_of(refresh_token(&mine));
    let their_session = &bytes_of(refresh_token(&theirs))[1..17];

    let mut made_up = Vec::new();
    // The right session and number with a wrong MAC.
    let mut wrong_mac = real.clone();
    wrong_mac[44] ^= 1;
    made_up.push(wrong_mac);
    // Another user's session with this token's MAC.
    let mut spliced = real.clone();
    spliced[1..17].copy_from_slice(their_session);
    made_up.push(spliced);
    // A later number of the same session, and the largest numbers (the next of the largest
    // does not exist; the statement must never compute it).
    for counter in [1, i64::MAX - 1, i64::MAX] {
        let mut later = real.clone();
        later[17..25].copy_from_slice(&i64::to_be_bytes(counter));
        made_up.push(later);
    }
    // A session that does not exist.
    let mut nowhere = real.clone();
    nowhere[1..17].copy_from_slice(Uuid::new_v4().as_bytes());
    made_up.push(nowhere);
    for bytes in made_up {
        let token = URL_SAFE_NO_PAD.encode(&bytes);
        assert_error(app.refresh(&token).await, 400, "refresh_token_not_found").await;
    }
    assert_eq!(written(&app).await, before, "nothing rotated, nothing recorded");
    // Both real tokens still work, each in its own session.
    let next = app.refreshed(refresh_token(&mine)).await;
    assert_eq!(next["user"]["id"], mine["user"]["id"]);
    let next = app.refreshed(refresh_token(&theirs)).await;
    assert_eq!(next["user"]["id"], theirs["user"]["id"]);
}

/// A refresh the one statement must not do — a banned user, an ended session — writes nothing:
/// the locking path answers with GoTrue's error.
#[tokio::test]
async fn a_refused_refresh_writes_nothing() {
    let app = TestApp::spawn().await;
    let banned = app.sign_up(&random_email(), PASSWORD).await;
    let ended = app.sign_up(&random_email(), PASSWORD).await;
    let mut db = app.db().await;
    sqlx::query("update _auth_users set banned_until = now() + interval '1 hour' where id = $1::uuid")
        .bind(banned["user"]["id"].as_str().unwrap())
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("update _auth_sessions set not_after = now() - interval '1 second' where user_id = $1::uuid")
        .bind(ended["user"]["id"].as_str().unwrap())
        .execute(&mut db)
        .await
        .unwrap();
    let before = written(&app).await;
    assert_error(app.refresh(refresh_token(&banned)).await, 400, "user_banned").await;
    assert_error(app.refresh(refresh_token(&ended)).await, 400, "session_expired").await;
    assert_eq!(written(&app).await, before);
}

/// `text` with the value of each `"key":` in `keys` (a string or a number) left out.
fn blanked(text: &str, keys: &[&str]) -> String {
    let mut text = text.to_owned();
    for key in keys {
        let label = format!("\"{key}\":");
        let start = text.find(&label).unwrap_or_else(|| panic!("no {key} in {text}")) + label.len();
        let end = start + text[start..].find([',', '}']).unwrap();
        text.replace_range(start..end, "_");
    }
    text
}

/// The text of a JWT's claims.
fn claims_text(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The one statement's answer is written from the row as Postgres sent it; the locking path's
/// from decoded values. Both are the same text, and so are their access tokens' claims, for
/// metadata a `serde_json::Value` would reorder, re-escape and re-format.
#[tokio::test]
async fn both_paths_answer_with_the_same_text() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let body = json!({
        "email": email, "password": PASSWORD, "email_confirm": true,
        "user_metadata": {"zeta": 1, "alpha": {"b": [1, 2.50, 1e2], "a": "\u{e9}\n/"}, "full_name": "Z"},
        "app_metadata": {"roles": ["x", "y"], "tier": 2},
    });
    let response = admin(&app, Method::POST, "/admin/users", Some(body)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let session = app.signed_in(&email, PASSWORD).await;
    // The live token: rotated by the one statement. The same token again: the parent of the
    // live one, which the locking path answers with the current token.
    let rotated = app.refresh(refresh_token(&session)).await.text().await.unwrap();
    let decided = app.refresh(refresh_token(&session)).await.text().await.unwrap();
    let token_of = |text: &str| serde_json::from_str::<Value>(text).unwrap()["access_token"].clone();
    let (rotated_token, decided_token) = (token_of(&rotated), token_of(&decided));
    assert_eq!(
        blanked(&rotated, &["access_token", "expires_at"]),
        blanked(&decided, &["access_token", "expires_at"])
    );
    assert!(
        rotated.contains(r#""user_metadata":{"alpha":{"a":"é\n/","b":[1,2.5,100.0]},"full_name":"Z","zeta":1}"#),
        "{rotated}"
    );
    let claims = [rotated_token, decided_token].map(|token| claims_text(token.as_str().unwrap()));
    assert_eq!(
        blanked(&claims[0], &["exp", "iat", "jti"]),
        blanked(&claims[1], &["exp", "iat", "jti"])
    );
}
