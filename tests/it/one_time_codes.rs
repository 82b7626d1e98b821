//! The one-time code core (`auth::codes`, issue #15): it takes a phone number like an
//! address, so SMS sign-in needs a sender, not a copy of the email flows; until a sender
//! exists, every route that would send or check a code by SMS refuses with GoTrue's
//! `phone_provider_disabled` and its message for that route. Its time rules hold for any
//! setting.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha224};
use uuid::Uuid;

use latchkey::auth::codes::{self, Identifier, NewCode, Purpose};
use latchkey::db::one_time_tokens::Confirms;
use latchkey::db::users;

use crate::email::{fragment, location, mail_app};
use crate::helpers::{TestApp, assert_error, random_email};
use crate::otp_attempts::{failed_attempts, wrong_code};

const PHONE: &str = "15551234567";

/// The error's legacy `msg` after the checks of `assert_error`.
async fn refusal(response: reqwest::Response) -> String {
    let body = assert_error(response, 400, "phone_provider_disabled").await;
    body["msg"].as_str().unwrap_or_default().to_owned()
}

async fn anonymous(app: &TestApp) -> (Uuid, String) {
    let response = app.post_json("/signup", &json!({})).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    let id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    (id, session["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_phone_route_refuses_with_gotrues_message() {
    let app = TestApp::spawn().await;
    let unsupported = "Unsupported phone provider";
    for (path, body, message) in [
        (
            "/signup",
            json!({"phone": PHONE, "password": "secret-pw"}),
            "Phone signups are disabled",
        ),
        ("/otp", json!({"phone": PHONE}), unsupported),
        // `/verify` looks for the code instead (`wire_compat`).
        (
            "/resend",
            json!({"type": "sms", "phone": PHONE}),
            "Phone logins are disabled",
        ),
        (
            "/resend",
            json!({"type": "phone_change", "phone": PHONE}),
            "Phone logins are disabled",
        ),
    ] {
        assert_eq!(
            refusal(app.post_json(path, &body).await).await,
            message,
            "{path} {body}"
        );
    }

    // A signed-in account: changing its number, and a nonce for an account with a phone only.
    let (id, access) = anonymous(&app).await;
    let change = app.put_json_auth("/user", &access, &json!({"phone": PHONE})).await;
    assert_eq!(refusal(change).await, "Phone logins are disabled");
    let no_address = app.get_auth("/reauthenticate", &access).await;
    assert_error(no_address, 400, "validation_failed").await;
    sqlx::query("update _auth_users set phone = $2 where id = $1")
        .bind(id)
        .bind(PHONE)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    assert_eq!(
        refusal(app.get_auth("/reauthenticate", &access).await).await,
        unsupported
    );
}

/// A user with a phone number only (as an admin can make one), and their id.
async fn phone_user(app: &TestApp) -> Uuid {
    let response = app
        .request(Method::POST, "/admin/users")
        .bearer_auth(app.api_key("service_role"))
        .json(&json!({"phone": format!("+{PHONE}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    user["id"].as_str().unwrap().parse().unwrap()
}

/// Issues a code as an SMS channel would: the user locked, the code stored, the purpose's
/// `*_sent_at` stamped `sent_ago` before now.
async fn issue(app: &TestApp, user_id: Uuid, purpose: Purpose, to: &Identifier, sent_ago: Duration) -> codes::Issued {
    let mut tx = app.state.db.begin().await.unwrap();
    users::lock(&mut *tx, user_id).await.unwrap().unwrap();
    let new = NewCode {
        user_id,
        purpose,
        to,
        pkce: false,
        length: 6,
        confirms: &Confirms::default(),
    };
    let issued = codes::issue(&mut tx, &new).await.unwrap();
    let stamp = match purpose {
        Purpose::Confirmation => "update _auth_users set confirmation_sent_at = $2 where id = $1",
        Purpose::PhoneChange => "update _auth_users set phone_change_sent_at = $2 where id = $1",
        other => panic!("not a phone purpose here: {other:?}"),
    };
    sqlx::query(stamp)
        .bind(user_id)
        .bind(Utc::now() - sent_ago)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    issued
}

/// Whether the code is usable now, as a verification would find it (rolled back).
async fn usable(app: &TestApp, found: &codes::Matched) -> bool {
    let codes = &app.state.codes;
    let mut tx = app.state.db.begin().await.unwrap();
    let user = codes::lock_for_use(&mut tx, codes, found).await.unwrap();
    user.is_some_and(|user| codes::is_usable(codes, found, &user))
}

#[tokio::test]
async fn a_texted_code_goes_through_the_same_core_as_a_mailed_one() {
    let app = TestApp::spawn().await;
    let codes = &app.state.codes;
    let user_id = phone_user(&app).await;
    let phone = Identifier::phone(&format!("+{PHONE}")).unwrap();
    let issued = issue(&app, user_id, Purpose::Confirmation, &phone, Duration::zero()).await;

    // Stored as GoTrue stores it: the hash over the number's digits and the code, for the number.
    let (hash, relates_to): (String, String) =
        sqlx::query_as("select token_hash, relates_to from _auth_one_time_tokens where user_id = $1")
            .bind(user_id)
            .fetch_one(&mut app.db().await)
            .await
            .unwrap();
    let expected = hex::encode(Sha224::digest(format!("{PHONE}{}", issued.code)));
    assert_eq!((hash.as_str(), relates_to.as_str()), (expected.as_str(), PHONE));

    // A wrong code is counted against it; the right one finds it, and it is usable once.
    let purposes = [Purpose::Confirmation];
    let wrong = wrong_code(&issued.code, 0);
    assert!(
        codes::find_by_code(codes, &phone, &wrong, &purposes)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(failed_attempts(&app, user_id, "confirmation_token").await, Some(1));
    let found = codes::find_by_code(codes, &phone, &issued.code, &purposes)
        .await
        .unwrap()
        .expect("the right code");
    assert_eq!((found.purpose(), found.to()), (Purpose::Confirmation, &phone));
    assert!(usable(&app, &found).await);
    // A texted code proves the number, never an address: its hash, which whoever holds the
    // code can compute, is no email link.
    let as_link = json!({"type": "signup", "token_hash": issued.hash});
    assert_error(app.post_json("/verify", &as_link).await, 403, "otp_expired").await;
    assert!(usable(&app, &found).await, "still there for the number");
    // The same code typed in for an address does not match.
    let address = Identifier::Email("someone@example.com".into());
    assert!(
        codes::find_by_code(codes, &address, &issued.code, &purposes)
            .await
            .unwrap()
            .is_none()
    );

    // A phone change: good for the pending number, for the SMS lifetime (GoTrue's 60 s).
    let new_number = "4915112345678";
    sqlx::query("update _auth_users set phone_change = $2 where id = $1")
        .bind(user_id)
        .bind(new_number)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    let to = Identifier::Phone(new_number.into());
    let fresh = issue(&app, user_id, Purpose::PhoneChange, &to, Duration::seconds(5)).await;
    let change = [Purpose::PhoneChange];
    let found = codes::find_by_code(codes, &to, &fresh.code, &change)
        .await
        .unwrap()
        .unwrap();
    assert!(usable(&app, &found).await);
    let stale = issue(&app, user_id, Purpose::PhoneChange, &to, Duration::seconds(90)).await;
    let found = codes::find_by_code(codes, &to, &stale.code, &change)
        .await
        .unwrap()
        .unwrap();
    assert!(!usable(&app, &found).await, "past the SMS lifetime");
    let by_link = codes::find_by_hash(codes, &stale.hash, &change).await.unwrap();
    assert!(by_link.is_some_and(|code| code.purpose() == Purpose::PhoneChange));
}

/// Lifetimes and send frequencies so long that the end falls past the calendar's: such a code
/// never expires and such a wait never ends (before, the sum overflowed and the request
/// failed with a 500).
#[tokio::test]
async fn lifetimes_and_frequencies_of_millennia_never_end() {
    let millennia = "10000000000000"; // seconds: some 317 000 years
    let (app, sink) = mail_app(&[
        ("GOTRUE_MAILER_OTP_EXP", millennia),
        ("GOTRUE_SMTP_MAX_FREQUENCY", millennia),
    ])
    .await;
    let email = random_email();
    let signup = app
        .post_json("/signup", &json!({"email": email, "password": "secret-pw"}))
        .await;
    assert_eq!(signup.status(), 200);
    // Within the frequency: nothing is sent again, and the answer is the usual one.
    let resend = app
        .post_json("/resend", &json!({"type": "signup", "email": email}))
        .await;
    assert_eq!(resend.status(), 200);
    assert_eq!(sink.to(&email).len(), 1);
    let link = sink.last_to(&email).await.link();
    let signed_in = fragment(&location(&app.client.get(link).send().await.unwrap()));
    assert!(signed_in.contains_key("access_token"), "{signed_in:?}");
    assert_eq!(app.post_json("/otp", &json!({"email": email})).await.status(), 200);
    let again = app.post_json("/otp", &json!({"email": email})).await;
    assert_error(again, 429, "over_email_send_rate_limit").await;
}
