//! Whole-shape checks of the session, user and identity objects against GoTrue's field lists
//! (`/work/shared/reference/gotrue-api.md` §2.1–2.3; supabase/auth `internal/tokens/service.go`
//! `AccessTokenResponse`, `internal/models/user.go` `User`, `internal/models/identity.go`
//! `Identity`): which keys, and in which order, since Go's encoding/json writes a struct's
//! fields in declaration order. Each case states which of the fields GoTrue leaves out when
//! empty (`omitempty`) it expects; everything else must be exactly GoTrue's list. A new field,
//! a dropped one or a reordering fails here, whichever endpoint it comes from.
//!
//! `serde_json::Value` sorts object keys, so the keys are read from the response text in
//! order (`Ordered`). Maps (`app_metadata`, `user_metadata`, `identity_data`) are Go maps,
//! which encoding/json writes with sorted keys: checked too.

use base64::Engine;
use reqwest::{Method, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::admin::admin;
use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::{TestApp, fresh_database, random_email};

mod ordered;

use ordered::Ordered;

/// A field of a GoTrue object: always written, or left out when empty (`omitempty`).
#[derive(Clone, Copy)]
enum Field {
    Always(&'static str),
    WhenSet(&'static str),
}

use Field::{Always, WhenSet};

/// `AccessTokenResponse`. `id_token` is only for GoTrue's OAuth server, which Latchkey has
/// not; listed so that the list stays GoTrue's.
const SESSION: &[Field] = &[
    Always("access_token"),
    Always("token_type"),
    Always("expires_in"),
    Always("expires_at"),
    Always("refresh_token"),
    Always("user"),
    WhenSet("provider_token"),
    WhenSet("provider_refresh_token"),
    WhenSet("weak_password"),
    WhenSet("id_token"),
];

/// `models.User`. `factors` (MFA) and `banned_reason` (a recent GoTrue addition) are not
/// written by Latchkey; listed so that the list stays GoTrue's.
const USER: &[Field] = &[
    Always("id"),
    Always("aud"),
    Always("role"),
    Always("email"),
    WhenSet("email_confirmed_at"),
    WhenSet("invited_at"),
    Always("phone"),
    WhenSet("phone_confirmed_at"),
    WhenSet("confirmation_sent_at"),
    WhenSet("confirmed_at"),
    WhenSet("recovery_sent_at"),
    WhenSet("new_email"),
    WhenSet("email_change_sent_at"),
    WhenSet("new_phone"),
    WhenSet("phone_change_sent_at"),
    WhenSet("reauthentication_sent_at"),
    WhenSet("last_sign_in_at"),
    Always("app_metadata"),
    Always("user_metadata"),
    WhenSet("factors"),
    Always("identities"),
    Always("created_at"),
    Always("updated_at"),
    WhenSet("banned_until"),
    WhenSet("banned_reason"),
    WhenSet("deleted_at"),
    Always("is_anonymous"),
];

/// `models.Identity`: note the swapped names (`identity_id` is the row, `id` the subject).
const IDENTITY: &[Field] = &[
    Always("identity_id"),
    Always("id"),
    Always("user_id"),
    WhenSet("identity_data"),
    Always("provider"),
    WhenSet("last_sign_in_at"),
    Always("created_at"),
    Always("updated_at"),
    WhenSet("email"),
];

/// GoTrue's keys for an object of `fields` in which the optional fields `set` are present.
fn expected(fields: &[Field], set: &[&str]) -> Vec<&'static str> {
    for name in set {
        assert!(
            fields.iter().any(|f| matches!(f, WhenSet(n) if n == name)),
            "{name} is not an optional field of this object"
        );
    }
    fields
        .iter()
        .filter_map(|field| match *field {
            Always(name) => Some(name),
            WhenSet(name) => set.contains(&name).then_some(name),
        })
        .collect()
}

/// The body of a 200, with its keys in order.
async fn body(response: Response) -> Ordered {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    Ordered::parse(&text)
}

/// A Go map: keys sorted, as encoding/json writes them.
fn assert_go_map(what: &str, map: &Ordered) {
    let keys = map.keys();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "{what}: a Go map's keys come out sorted");
}

/// The user's keys are GoTrue's with `set` present; it has one identity per entry of
/// `identities` (provider, the identity's optional fields present), in any order.
fn assert_user(what: &str, user: &Ordered, set: &[&str], identities: &[(&str, &[&str])]) {
    assert_eq!(user.keys(), expected(USER, set), "{what}: user");
    assert_go_map(what, user.get("app_metadata"));
    assert_go_map(what, user.get("user_metadata"));
    let items = user.get("identities").items();
    let mut providers: Vec<&str> = items.iter().map(|i| i.get("provider").str()).collect();
    let mut wanted: Vec<&str> = identities.iter().map(|(provider, _)| *provider).collect();
    providers.sort_unstable();
    wanted.sort_unstable();
    assert_eq!(providers, wanted, "{what}: identities");
    for identity in items {
        let provider = identity.get("provider").str();
        let (_, set) = identities.iter().find(|(p, _)| *p == provider).unwrap();
        assert_eq!(identity.keys(), expected(IDENTITY, set), "{what}: {provider} identity");
        assert_go_map(what, identity.get("identity_data"));
    }
}

fn assert_session(what: &str, session: &Ordered, set: &[&str]) {
    assert_eq!(session.keys(), expected(SESSION, set), "{what}: session");
}

/// An email or OAuth identity: its claims, when it was last used, and its address.
const WITH_EMAIL: &[&str] = &["identity_data", "last_sign_in_at", "email"];
/// A phone identity has no address.
const WITHOUT_EMAIL: &[&str] = &["identity_data", "last_sign_in_at"];
/// A user whose address is confirmed, after a sign-in.
const CONFIRMED: &[&str] = &["email_confirmed_at", "confirmed_at", "last_sign_in_at"];

#[tokio::test]
async fn a_confirmed_email_user_wherever_it_is_answered() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let signup = json!({"email": email, "password": "secret-pw", "data": {"b": 1, "a": 2}});
    let signed_up = body(app.post_json("/signup", &signup).await).await;
    let signed_in = body(app.sign_in(&email, "secret-pw").await).await;
    let refreshed = body(app.refresh(signed_up.get("refresh_token").str()).await).await;
    for (what, session) in [
        ("sign-up", &signed_up),
        ("sign-in", &signed_in),
        ("refresh", &refreshed),
    ] {
        assert_session(what, session, &[]);
        assert_user(what, session.get("user"), CONFIRMED, &[("email", WITH_EMAIL)]);
    }
    let access = refreshed.get("access_token").str();
    let user = body(app.get_auth("/user", access).await).await;
    assert_user("GET /user", &user, CONFIRMED, &[("email", WITH_EMAIL)]);
    let updated = body(app.put_json_auth("/user", access, &json!({"data": {"z": 0}})).await).await;
    assert_user("PUT /user", &updated, CONFIRMED, &[("email", WITH_EMAIL)]);
}

/// `GET /user` writes its answer straight from the row (`api::current_user`), not through
/// `UserResponse` as every other endpoint does: the text must still be the same, byte for
/// byte, for metadata that a `serde_json::Value` would reorder, re-escape or re-format, and
/// with a factor and a pending email change.
#[tokio::test]
async fn get_user_writes_the_same_text_as_the_other_endpoints() {
    let app = TestApp::spawn().await;
    let email = random_email();
    let metadata = json!({
        "zeta": [3, 2.50, -1, 18446744073709551615u64, 1.5e300, {"y": "é", "b": null}],
        "nested": {
            "deep": {"z": true, "a": false},
            "empty": {},
            "list": [],
            "a key with \"quotes\" and \\": "tab\there, \u{1}control, / slash"
        },
        "名前": "ユーザー",
        "b": 1
    });
    let signup = json!({"email": email, "password": "secret-pw", "data": metadata});
    let session = body(app.post_json("/signup", &signup).await).await;
    let access = session.get("access_token").str();
    crate::mfa::enrolled(&app, access, "phone app").await;
    let change = json!({"email": random_email(), "data": {"added": {"y": 2, "x": 1}}});
    let updated = app.put_json_auth("/user", access, &change).await;
    assert_eq!(updated.status(), 200);
    let updated = updated.text().await.unwrap();
    let read = app.get_auth("/user", access).await.text().await.unwrap();
    assert_eq!(read, updated, "GET /user against PUT /user's answer for the same row");
    for part in [
        r#""new_email":"#,
        r#""factors":[{"#,
        r#""a key with \"quotes\" and \\":"#,
        r#""added":{"x":1,"y":2}"#,
    ] {
        assert!(read.contains(part), "{part} in {read}");
    }
}

/// That answer's columns are read in the statement's order (`db::columns::Columns`): each
/// is still found by its name, so a statement listing them in another order is an error,
/// never one column read as another.
#[tokio::test]
async fn columns_read_in_order_are_found_by_name() {
    use latchkey::db::columns::Columns;
    let app = TestApp::spawn().await;
    let row = sqlx::query("select 'first' as aud, 'x' as id, 'a' as aud, 'r' as role, 'b' as email")
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    let mut columns = Columns::of(&row);
    assert_eq!(columns.read::<&str>("id").unwrap(), "x");
    assert_eq!(
        columns.read::<&str>("aud").unwrap(),
        "a",
        "the aud after id, not the first one"
    );
    assert_eq!(columns.read::<&str>("email").unwrap(), "b", "role passed over");
    assert!(columns.read::<&str>("role").is_err(), "role comes before email");
    assert!(columns.read::<&str>("email").is_err(), "past the last column");
    let mut columns = Columns::of(&row);
    assert!(columns.read::<&str>("phone").is_err());
    assert_eq!(
        columns.read::<&str>("aud").unwrap(),
        "first",
        "a failed read moves nothing"
    );
    assert!(columns.read::<i32>("id").is_err(), "a text column is not an int");
}

#[tokio::test]
async fn an_unconfirmed_user_from_sign_up() {
    let app = TestApp::spawn_with(&[("GOTRUE_MAILER_AUTOCONFIRM", "false")]).await;
    let signup = json!({"email": random_email(), "password": "secret-pw"});
    let user = body(app.post_json("/signup", &signup).await).await;
    assert_user("sign-up", &user, &["confirmation_sent_at"], &[("email", WITH_EMAIL)]);
}

#[tokio::test]
async fn an_anonymous_user() {
    let app = TestApp::spawn().await;
    let session = body(app.post_json("/signup", &json!({})).await).await;
    assert_session("anonymous sign-in", &session, &[]);
    assert_user("anonymous sign-in", session.get("user"), &["last_sign_in_at"], &[]);
}

#[tokio::test]
async fn a_password_sign_in_under_a_tightened_policy_reports_the_weak_password() {
    let database = fresh_database().await;
    let email = random_email();
    TestApp::spawn_on(&database, &[]).await.sign_up(&email, "short1").await;
    let strict = TestApp::spawn_on(&database, &[("GOTRUE_PASSWORD_MIN_LENGTH", "10")]).await;
    let session = body(strict.sign_in(&email, "short1").await).await;
    assert_session("weak password", &session, &["weak_password"]);
    assert_eq!(session.get("weak_password").keys(), ["message", "reasons"]);
    assert_user(
        "weak password",
        session.get("user"),
        CONFIRMED,
        &[("email", WITH_EMAIL)],
    );
}

/// Pending changes and sent mails fill the optional timestamps, each in its place. No SMTP
/// server: the mail goes to the log.
#[tokio::test]
async fn a_user_with_mail_sent_and_an_email_change_pending() {
    let app = TestApp::spawn_with(&[("GOTRUE_MAILER_AUTOCONFIRM", "false")]).await;
    let email = random_email();
    let account = json!({"email": email, "password": "secret-pw", "email_confirm": true});
    assert_eq!(
        admin(&app, Method::POST, "/admin/users", Some(account)).await.status(),
        200
    );
    let session = body(app.sign_in(&email, "secret-pw").await).await;
    let access = session.get("access_token").str();
    let change = json!({"email": random_email()});
    let changing = body(app.put_json_auth("/user", access, &change).await).await;
    let pending = [
        "email_confirmed_at",
        "confirmed_at",
        "new_email",
        "email_change_sent_at",
        "last_sign_in_at",
    ];
    assert_user("email change", &changing, &pending, &[("email", WITH_EMAIL)]);
    assert_eq!(app.get_auth("/reauthenticate", access).await.status(), 200);
    assert_eq!(app.post_json("/recover", &json!({"email": email})).await.status(), 200);
    let user = body(app.get_auth("/user", access).await).await;
    let all = [
        "email_confirmed_at",
        "confirmed_at",
        "recovery_sent_at",
        "new_email",
        "email_change_sent_at",
        "reauthentication_sent_at",
        "last_sign_in_at",
    ];
    assert_user("mail sent", &user, &all, &[("email", WITH_EMAIL)]);
}

/// The admin API's users: a confirmed phone beside the address, a ban, an invitation.
#[tokio::test]
async fn users_of_the_admin_api() {
    let app = TestApp::spawn().await;
    let account = json!({
        "email": random_email(), "phone": "+1 555 0100 777", "password": "secret-pw",
        "email_confirm": true, "phone_confirm": true,
    });
    let created = body(admin(&app, Method::POST, "/admin/users", Some(account)).await).await;
    let both = ["email_confirmed_at", "phone_confirmed_at", "confirmed_at"];
    let identities = [("email", WITH_EMAIL), ("phone", WITHOUT_EMAIL)];
    assert_user("admin create", &created, &both, &identities);
    let path = format!("/admin/users/{}", created.get("id").str());
    let ban = json!({"ban_duration": "24h"});
    let banned = body(admin(&app, Method::PUT, &path, Some(ban)).await).await;
    let set = [
        "email_confirmed_at",
        "phone_confirmed_at",
        "confirmed_at",
        "banned_until",
    ];
    assert_user("admin ban", &banned, &set, &identities);
    let fetched = body(admin(&app, Method::GET, &path, None).await).await;
    assert_user("admin get", &fetched, &set, &identities);

    let invite = json!({"email": random_email()});
    let invited = body(admin(&app, Method::POST, "/invite", Some(invite)).await).await;
    let set = ["invited_at", "confirmation_sent_at"];
    assert_user("invite", &invited, &set, &[("email", WITH_EMAIL)]);
}

const VERIFIER: &str = "a-code-verifier-for-the-shape-tests-long-enough-for-pkce";

/// The PKCE exchange after an OAuth sign-in carries the provider's tokens (GitHub hands out
/// no refresh token: the field is left out, as GoTrue's `omitempty` does); the identity is
/// the provider's.
#[tokio::test]
async fn an_oauth_session_and_identity() {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
    for (fake, provider, tokens) in [
        (FakeProvider::github().await, "github", &["provider_token"][..]),
        (
            FakeProvider::google().await,
            "google",
            &["provider_token", "provider_refresh_token"][..],
        ),
    ] {
        fake.set_user(FakeUser::new(&random_email(), true));
        let app = crate::oauth::spawn_with(&[&fake], &[]).await;
        let query = format!("provider={provider}&code_challenge={challenge}&code_challenge_method=s256");
        let end = crate::oauth::sign_in(&app, &query).await;
        let code = crate::oauth::pairs(end.query())["code"].clone();
        let exchange = json!({"auth_code": code, "code_verifier": VERIFIER});
        let session = body(app.post_json("/token?grant_type=pkce", &exchange).await).await;
        assert_session(provider, &session, tokens);
        assert_user(provider, session.get("user"), CONFIRMED, &[(provider, WITH_EMAIL)]);
    }
}
