//! Issue #14, part 2: an account that holds an address nobody has proven becomes the mailbox
//! owner's once they prove it, and nothing an earlier holder put there survives: their
//! identities, password, metadata and sessions. Every order of events from the issue: an
//! attacker signs in with an unverified GitHub email, or pre-registers with a password; then
//! the owner proves the address through Google, a sign-up, a magic link or code, the original
//! link, password recovery. Each time the attacker's next sign-in stays out of the account.

use std::collections::HashMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::email::{fragment, location};
use crate::fake_providers::{FakeProvider, FakeUser};
use crate::helpers::{TestApp, assert_error, random_email};
use crate::oauth::{pairs, sign_in, spawn_with, user_of};
use crate::smtp_sink::SmtpSink;

const ATTACKER_PASSWORD: &str = "the attacker's password";
const OWNER_PASSWORD: &str = "the owner's own password";

struct World {
    app: TestApp,
    sink: SmtpSink,
    github: FakeProvider,
    google: FakeProvider,
}

/// GitHub, Google and a mail sink; confirmation required, no send-frequency limit.
async fn world() -> World {
    world_with(&[]).await
}

async fn world_with(extra: &[(&str, &str)]) -> World {
    let github = FakeProvider::github().await;
    let google = FakeProvider::google().await;
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let mut vars = vec![
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", port.as_str()),
        ("GOTRUE_SMTP_ADMIN_EMAIL", "auth@latchkey.test"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "false"),
        ("GOTRUE_SMTP_MAX_FREQUENCY", "0"),
    ];
    vars.extend_from_slice(extra);
    let app = spawn_with(&[&github, &google], &vars).await;
    World {
        app,
        sink,
        github,
        google,
    }
}

fn someone(email: &str, verified: bool, name: &str) -> FakeUser {
    FakeUser {
        name: name.to_owned(),
        ..FakeUser::new(email, verified)
    }
}

/// Signs in at GitHub as `who`; returns the fragment Latchkey redirects to.
async fn github_sign_in(world: &World, who: &FakeUser) -> HashMap<String, String> {
    world.github.set_user(who.clone());
    pairs(sign_in(&world.app, "provider=github").await.fragment())
}

/// The attacker signs in with GitHub, which does not vouch for the victim's address: an
/// unconfirmed account holding the address, refused until confirmed. Returns its id.
async fn attacker_signs_in_with_github(world: &World, attacker: &FakeUser) -> String {
    let refused = github_sign_in(world, attacker).await;
    assert_eq!(
        refused["error_code"], "provider_email_needs_verification",
        "{refused:?}"
    );
    account_id(&world.app, &attacker.email).await
}

/// The attacker signs up with the victim's address, a password and metadata of their own.
async fn attacker_pre_registers(app: &TestApp, email: &str) -> String {
    let body = json!({"email": email, "password": ATTACKER_PASSWORD, "data": {"name": "Mallory"}});
    assert_eq!(app.post_json("/signup", &body).await.status(), 200);
    account_id(app, email).await
}

async fn account_id(app: &TestApp, email: &str) -> String {
    let id: Uuid = sqlx::query_scalar("select id from _auth_users where email = $1")
        .bind(email)
        .fetch_one(&mut app.db().await)
        .await
        .unwrap();
    id.to_string()
}

/// A session of the account before its address is proven (what GoTrue's
/// `GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS`, or a holder who moved their account to
/// an unproven address, leaves behind): (access token, refresh token).
async fn session_before_the_proof(app: &TestApp, user_id: &str) -> (String, String) {
    let mut conn = app.db().await;
    let user = latchkey::db::users::find_by_id(&mut conn, user_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let client = latchkey::auth::session::Client::default();
    let (tokens, _, _) = latchkey::auth::session::start(&mut conn, &app.state.sessions, &user, "password", &client)
        .await
        .unwrap();
    (tokens.access_token, tokens.refresh_token)
}

async fn assert_session_ended(app: &TestApp, (access, refresh): &(String, String)) {
    assert_error(app.get_auth("/user", access).await, 403, "session_not_found").await;
    assert_error(app.refresh(refresh).await, 400, "refresh_token_not_found").await;
}

/// Follows a mailed link; returns the session in the fragment.
async fn follow(app: &TestApp, link: &str) -> HashMap<String, String> {
    let session = fragment(&location(&app.client.get(link).send().await.unwrap()));
    assert!(session.contains_key("access_token"), "{session:?}");
    session
}

/// `POST /verify` with the code mailed last to `email`; returns the session.
async fn verify_code(world: &World, email: &str, verify_type: &str) -> Value {
    let code = world.sink.last_to(email).await.code();
    let body = json!({"type": verify_type, "email": email, "token": code});
    let response = world.app.post_json("/verify", &body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The account is the owner's through `provider` alone: one identity, whose claims are the
/// metadata, the address confirmed.
fn assert_owned_through(user: &Value, provider: &str) {
    let identities = user["identities"].as_array().unwrap();
    assert_eq!(identities.len(), 1, "{user}");
    assert_eq!(identities[0]["provider"], provider, "{user}");
    assert_eq!(user["user_metadata"], identities[0]["identity_data"], "{user}");
    assert_eq!(user["app_metadata"]["provider"], provider);
    assert_eq!(user["app_metadata"]["providers"], json!([provider]));
    assert!(user["email_confirmed_at"].is_string(), "{user}");
}

/// The attacker signs in with GitHub again: they get an account of their own, without the
/// address, not the owner's.
async fn assert_github_stays_out(world: &World, attacker: &FakeUser, account: &str) {
    let session = github_sign_in(world, attacker).await;
    let token = session.get("access_token").unwrap_or_else(|| panic!("{session:?}"));
    let user = user_of(&world.app, token).await;
    assert_ne!(user["id"], account, "the attacker is back in the owner's account");
    assert_eq!(user["email"], "", "{user}");
}

async fn assert_password_refused(app: &TestApp, email: &str, password: &str) {
    assert_error(app.sign_in(email, password).await, 400, "invalid_credentials").await;
}

async fn audit_actions(app: &TestApp, user_id: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "select payload from _auth_audit_log where payload->>'actor_id' = $1 \
         and payload->>'action' in ('identity_unlinked', 'user_signedup') order by created_at",
    )
    .bind(user_id)
    .fetch_all(&mut app.db().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn unverified_github_then_the_owner_signs_in_with_google() {
    let world = world().await;
    let victim = random_email();
    let attacker = someone(&victim, false, "Mallory");
    let account = attacker_signs_in_with_github(&world, &attacker).await;
    let before = session_before_the_proof(&world.app, &account).await;

    world.google.set_user(someone(&victim, true, "Victoria"));
    let session = pairs(sign_in(&world.app, "provider=google").await.fragment());
    let user = user_of(&world.app, &session["access_token"]).await;
    assert_eq!(user["id"], account.as_str());
    assert_owned_through(&user, "google");
    assert_eq!(user["user_metadata"]["full_name"], "Victoria");
    assert_session_ended(&world.app, &before).await;

    // Audited with GoTrue's action names, in the same transaction.
    let entries = audit_actions(&world.app, &account).await;
    let unlinked: Vec<&Value> = entries.iter().filter(|e| e["action"] == "identity_unlinked").collect();
    assert_eq!(unlinked.len(), 1, "{entries:?}");
    assert_eq!(unlinked[0]["traits"]["provider"], "github");
    assert_eq!(unlinked[0]["traits"]["provider_id"], attacker.id.as_str());
    let signed_up = entries.last().unwrap();
    assert_eq!(signed_up["action"], "user_signedup", "{entries:?}");
    assert_eq!(signed_up["traits"]["provider"], "google");
    assert_eq!(signed_up["traits"]["ended_sessions"], 1);

    assert_github_stays_out(&world, &attacker, &account).await;
    // The owner's Google sign-in still reaches the account.
    let again = pairs(sign_in(&world.app, "provider=google").await.fragment());
    assert_eq!(
        user_of(&world.app, &again["access_token"]).await["id"],
        account.as_str()
    );
}

#[tokio::test]
async fn unverified_github_then_the_owner_signs_up_and_follows_the_newest_link() {
    let world = world().await;
    let victim = random_email();
    let attacker = someone(&victim, false, "Mallory");
    let account = attacker_signs_in_with_github(&world, &attacker).await;
    let before = session_before_the_proof(&world.app, &account).await;

    let body = json!({"email": victim, "password": OWNER_PASSWORD});
    assert_eq!(world.app.post_json("/signup", &body).await.status(), 200);
    let session = follow(&world.app, &world.sink.last_to(&victim).await.link()).await;
    let user = user_of(&world.app, &session["access_token"]).await;
    assert_eq!(user["id"], account.as_str());
    assert_owned_through(&user, "email");
    assert_session_ended(&world.app, &before).await;

    assert_github_stays_out(&world, &attacker, &account).await;
    let signed_in: Value = world.app.sign_in(&victim, OWNER_PASSWORD).await.json().await.unwrap();
    assert_eq!(signed_in["user"]["id"], account.as_str(), "{signed_in}");
}

#[tokio::test]
async fn unverified_github_then_the_owner_uses_a_magic_link_or_code() {
    let world = world().await;
    for by_code in [false, true] {
        let victim = random_email();
        let attacker = someone(&victim, false, "Mallory");
        let account = attacker_signs_in_with_github(&world, &attacker).await;
        let before = session_before_the_proof(&world.app, &account).await;

        assert_eq!(
            world.app.post_json("/otp", &json!({"email": victim})).await.status(),
            200
        );
        let token = if by_code {
            verify_code(&world, &victim, "email").await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            follow(&world.app, &world.sink.last_to(&victim).await.link()).await["access_token"].clone()
        };
        let user = user_of(&world.app, &token).await;
        assert_eq!(user["id"], account.as_str());
        assert_owned_through(&user, "email");
        assert_session_ended(&world.app, &before).await;
        assert_github_stays_out(&world, &attacker, &account).await;
    }
}

#[tokio::test]
async fn unverified_github_then_the_owner_follows_the_link_that_sign_in_mailed() {
    let world = world().await;
    let victim = random_email();
    let attacker = someone(&victim, false, "Mallory");
    let account = attacker_signs_in_with_github(&world, &attacker).await;
    let before = session_before_the_proof(&world.app, &account).await;

    // The only mail: the confirmation GitHub's sign-in asked for.
    assert_eq!(world.sink.to(&victim).len(), 1);
    let session = follow(&world.app, &world.sink.last_to(&victim).await.link()).await;
    let user = user_of(&world.app, &session["access_token"]).await;
    assert_eq!(user["id"], account.as_str());
    // Stricter than GoTrue: the unverified identity that asked for the link goes too.
    assert_owned_through(&user, "email");
    assert_session_ended(&world.app, &before).await;
    assert_github_stays_out(&world, &attacker, &account).await;
}

#[tokio::test]
async fn a_pre_registered_password_does_not_survive_the_owners_magic_link() {
    let world = world().await;
    let victim = random_email();
    let account = attacker_pre_registers(&world.app, &victim).await;
    let before = session_before_the_proof(&world.app, &account).await;

    assert_eq!(
        world.app.post_json("/otp", &json!({"email": victim})).await.status(),
        200
    );
    let session = verify_code(&world, &victim, "email").await;
    assert_eq!(session["user"]["id"], account.as_str());
    assert_owned_through(&session["user"], "email");
    assert!(session["user"]["user_metadata"].get("name").is_none());
    assert_session_ended(&world.app, &before).await;
    assert_password_refused(&world.app, &victim, ATTACKER_PASSWORD).await;
    let entries = audit_actions(&world.app, &account).await;
    let signed_up = entries.last().unwrap();
    assert_eq!(signed_up["traits"]["password_removed"], true, "{entries:?}");
}

#[tokio::test]
async fn a_pre_registered_password_does_not_survive_the_owners_password_recovery() {
    let world = world().await;
    let victim = random_email();
    let account = attacker_pre_registers(&world.app, &victim).await;
    let before = session_before_the_proof(&world.app, &account).await;

    assert_eq!(
        world
            .app
            .post_json("/recover", &json!({"email": victim}))
            .await
            .status(),
        200
    );
    let session = follow(&world.app, &world.sink.last_to(&victim).await.link()).await;
    let token = &session["access_token"];
    let user = user_of(&world.app, token).await;
    assert_eq!(user["id"], account.as_str());
    assert_owned_through(&user, "email");
    assert_session_ended(&world.app, &before).await;
    assert_password_refused(&world.app, &victim, ATTACKER_PASSWORD).await;

    // The owner sets a password of their own, as after any recovery.
    let response = world
        .app
        .put_json_auth("/user", token, &json!({"password": OWNER_PASSWORD}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(world.app.sign_in(&victim, OWNER_PASSWORD).await.status(), 200);
    assert_password_refused(&world.app, &victim, ATTACKER_PASSWORD).await;
}

#[tokio::test]
async fn a_repeated_sign_up_replaces_the_pre_registered_password_when_confirmed() {
    let world = world().await;
    let victim = random_email();
    let account = attacker_pre_registers(&world.app, &victim).await;
    let before = session_before_the_proof(&world.app, &account).await;

    let body = json!({"email": victim, "password": OWNER_PASSWORD, "data": {"name": "Victoria"}});
    assert_eq!(world.app.post_json("/signup", &body).await.status(), 200);
    // Nothing changes before the link is followed.
    assert_error(
        world.app.sign_in(&victim, OWNER_PASSWORD).await,
        400,
        "invalid_credentials",
    )
    .await;
    // A resend (by anyone) mails a link that confirms what the newest sign-up asked for.
    let resend = json!({"type": "signup", "email": victim});
    assert_eq!(world.app.post_json("/resend", &resend).await.status(), 200);
    let session = follow(&world.app, &world.sink.last_to(&victim).await.link()).await;
    let user = user_of(&world.app, &session["access_token"]).await;
    assert_eq!(user["id"], account.as_str());
    // As in GoTrue, a repeated sign-up's data is not applied; the attacker's is gone.
    assert_owned_through(&user, "email");
    assert_session_ended(&world.app, &before).await;
    assert_password_refused(&world.app, &victim, ATTACKER_PASSWORD).await;
    assert_eq!(world.app.sign_in(&victim, OWNER_PASSWORD).await.status(), 200);
}

/// Normal users see no change: their own sign-up, passwordless sign-up and admin-made account
/// are confirmed as they are, password and metadata included.
#[tokio::test]
async fn a_confirmation_of_the_sign_up_itself_keeps_its_password_and_metadata() {
    let world = world().await;
    let app = &world.app;
    let email = random_email();
    let body = json!({"email": email, "password": OWNER_PASSWORD, "data": {"plan": "pro"}});
    assert_eq!(app.post_json("/signup", &body).await.status(), 200);
    let session = follow(app, &world.sink.last_to(&email).await.link()).await;
    let user = user_of(app, &session["access_token"]).await;
    assert_eq!(user["user_metadata"]["plan"], "pro");
    assert_eq!(user["user_metadata"]["email_verified"], true);
    assert_eq!(user["identities"][0]["identity_data"]["email_verified"], true);
    assert_eq!(app.sign_in(&email, OWNER_PASSWORD).await.status(), 200);

    let passwordless = random_email();
    let body = json!({"email": passwordless, "data": {"plan": "team"}});
    assert_eq!(app.post_json("/otp", &body).await.status(), 200);
    let session = verify_code(&world, &passwordless, "email").await;
    assert_eq!(session["user"]["user_metadata"]["plan"], "team");

    // An admin-made account confirmed through `/resend`.
    let admin_made = random_email();
    let body = json!({"email": admin_made, "password": OWNER_PASSWORD, "user_metadata": {"plan": "admin"}});
    let response = crate::admin::admin(app, reqwest::Method::POST, "/admin/users", Some(body)).await;
    assert_eq!(response.status(), 200);
    let resend = json!({"type": "signup", "email": admin_made});
    assert_eq!(app.post_json("/resend", &resend).await.status(), 200);
    let session = follow(app, &world.sink.last_to(&admin_made).await.link()).await;
    assert_eq!(
        user_of(app, &session["access_token"]).await["user_metadata"]["plan"],
        "admin"
    );
    assert_eq!(app.sign_in(&admin_made, OWNER_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_invitation_of_a_pre_registered_account_proves_the_address_alone() {
    let world = world().await;
    let victim = random_email();
    let account = attacker_pre_registers(&world.app, &victim).await;
    let body = json!({"email": victim});
    let response = crate::admin::admin(&world.app, reqwest::Method::POST, "/invite", Some(body)).await;
    assert_eq!(response.status(), 200);
    let session = follow(&world.app, &world.sink.last_to(&victim).await.link()).await;
    let user = user_of(&world.app, &session["access_token"]).await;
    assert_eq!(user["id"], account.as_str());
    assert_owned_through(&user, "email");
    assert_password_refused(&world.app, &victim, ATTACKER_PASSWORD).await;
}

/// A real way to hold live sessions on an unproven address: a confirmed user links GitHub with
/// someone else's unverified address and unlinks their own email identity, so the account
/// moves to that address, unconfirmed. Then they have it mailed a confirmation (`/resend`).
/// The owner follows it: everything of the holder's goes.
#[tokio::test]
async fn a_holder_who_moved_to_an_unproven_address_loses_the_account_to_its_owner() {
    use crate::oauth_linking::{identity_id, link, unlink};
    let world = world_with(&[("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true")]).await;
    let app = &world.app;
    let own = random_email();
    let body = json!({"email": own, "password": ATTACKER_PASSWORD});
    assert_eq!(app.post_json("/signup", &body).await.status(), 200);
    let session = follow(app, &world.sink.last_to(&own).await.link()).await;
    let token = session["access_token"].clone();
    let refresh = session["refresh_token"].clone();

    let victim = random_email();
    let attacker = someone(&victim, false, "Mallory");
    link(app, &world.github, "github", &token, attacker.clone()).await;
    let user = user_of(app, &token).await;
    assert_eq!(unlink(app, &token, &identity_id(&user, "email")).await.status(), 200);
    let moved = user_of(app, &token).await;
    assert_eq!(moved["email"], victim.as_str());
    assert!(moved.get("email_confirmed_at").is_none(), "{moved}");
    let account = moved["id"].as_str().unwrap().to_owned();

    let resend = json!({"type": "signup", "email": victim});
    assert_eq!(app.post_json("/resend", &resend).await.status(), 200);
    let session = follow(app, &world.sink.last_to(&victim).await.link()).await;
    let user = user_of(app, &session["access_token"]).await;
    assert_eq!(user["id"], account.as_str());
    assert_owned_through(&user, "email");
    assert_session_ended(app, &(token, refresh)).await;
    assert_password_refused(app, &victim, ATTACKER_PASSWORD).await;
    assert_github_stays_out(&world, &attacker, &account).await;
}
