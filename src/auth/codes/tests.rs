use std::collections::HashMap;

use chrono::Duration as Span;
use serde_json::json;
use uuid::Uuid;

use super::*;

fn user() -> UserRow {
    let now = Utc::now();
    UserRow {
        id: Uuid::new_v4(),
        aud: "authenticated".into(),
        role: "authenticated".into(),
        email: Some("someone@example.com".into()),
        encrypted_password: None,
        email_confirmed_at: None,
        invited_at: None,
        confirmation_sent_at: None,
        recovery_sent_at: None,
        email_change: None,
        email_change_sent_at: None,
        email_change_confirm_status: 0,
        last_sign_in_at: None,
        raw_app_meta_data: json!({}),
        raw_user_meta_data: json!({}),
        created_at: now,
        updated_at: now,
        phone: Some("15551234567".into()),
        phone_confirmed_at: None,
        phone_change: None,
        phone_change_sent_at: None,
        confirmed_at: None,
        banned_until: None,
        reauthentication_sent_at: None,
        is_sso_user: false,
        deleted_at: None,
        is_anonymous: false,
        factors: Default::default(),
    }
}

fn email(address: &str) -> Identifier {
    Identifier::Email(address.into())
}

fn phone(digits: &str) -> Identifier {
    Identifier::Phone(digits.into())
}

#[test]
fn purposes_are_gotrues_one_time_token_types() {
    // models.OneTimeTokenType in GoTrue, one purpose each.
    let names: Vec<&str> = Purpose::ALL.iter().map(|p| p.token_type().as_str()).collect();
    assert_eq!(
        names,
        [
            "confirmation_token",
            "recovery_token",
            "email_change_token_new",
            "email_change_token_current",
            "phone_change_token",
            "reauthentication_token",
        ]
    );
    for purpose in Purpose::ALL {
        assert_eq!(Purpose::of(purpose.token_type()), purpose);
        assert_eq!(
            TokenType::parse(purpose.token_type().as_str()),
            Some(purpose.token_type())
        );
    }
}

#[test]
fn each_purpose_expires_from_its_own_send_time() {
    let mut user = user();
    let sent = Utc::now() - Span::minutes(5);
    user.confirmation_sent_at = Some(sent);
    user.recovery_sent_at = Some(sent - Span::minutes(1));
    user.email_change_sent_at = Some(sent - Span::minutes(2));
    user.phone_change_sent_at = Some(sent - Span::minutes(3));
    user.reauthentication_sent_at = Some(sent - Span::minutes(4));
    assert_eq!(Purpose::Confirmation.sent_at(&user), user.confirmation_sent_at);
    assert_eq!(Purpose::Recovery.sent_at(&user), user.recovery_sent_at);
    assert_eq!(Purpose::EmailChangeNew.sent_at(&user), user.email_change_sent_at);
    assert_eq!(Purpose::EmailChangeCurrent.sent_at(&user), user.email_change_sent_at);
    assert_eq!(Purpose::PhoneChange.sent_at(&user), user.phone_change_sent_at);
    assert_eq!(Purpose::Reauthentication.sent_at(&user), user.reauthentication_sent_at);
}

#[test]
fn expiry_counts_from_the_send_time() {
    let now = Utc::now();
    let hour = Duration::from_secs(3600);
    assert!(!is_expired(Some(now - Span::minutes(59)), now, hour));
    assert!(is_expired(Some(now - Span::minutes(61)), now, hour));
    assert!(is_expired(None, now, hour));
    // A lifetime past the end of the calendar never ends instead of overflowing.
    assert!(!is_expired(Some(now), now, Duration::MAX));
    assert!(!is_expired(Some(now), now, Duration::from_secs(10_000_000_000_000)));
}

#[tokio::test]
async fn mailed_codes_live_for_the_mailer_setting_and_texted_ones_for_the_sms_default() {
    let vars = HashMap::from([("GOTRUE_MAILER_OTP_EXP".to_owned(), "600".to_owned())]);
    let config = Config::from_vars(vars).unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://localhost/unused")
        .unwrap();
    let codes = Codes::new(crate::db::Pool::new(pool, false), &config);
    assert_eq!(codes.lifetime(&email("a@b.co")), Duration::from_secs(600));
    assert_eq!(codes.lifetime(&phone("15551234567")), Duration::from_secs(60));
}

#[test]
fn resend_waits_are_rounded_up() {
    let now = Utc::now();
    let minute = Duration::from_secs(60);
    assert_eq!(wait_before_resend(None, now, minute), None);
    assert_eq!(wait_before_resend(Some(now - Span::seconds(61)), now, minute), None);
    assert_eq!(
        wait_before_resend(Some(now - Span::milliseconds(500)), now, minute),
        Some(60)
    );
    assert_eq!(wait_before_resend(Some(now - Span::seconds(50)), now, minute), Some(10));
    // A frequency past the end of the calendar waits for ever instead of overflowing.
    assert_eq!(wait_before_resend(Some(now), now, Duration::MAX), Some(i64::MAX));
}

#[test]
fn a_code_counts_only_for_the_identifier_the_user_has_now() {
    let mut user = user();
    user.email_change = Some("new@example.com".into());
    user.phone_change = Some("15550009999".into());
    let cases = [
        (Purpose::Confirmation, email("someone@example.com"), true),
        (Purpose::Confirmation, email("SomeOne@Example.com"), true),
        (Purpose::Confirmation, email("other@example.com"), false),
        (Purpose::Confirmation, phone("15551234567"), true),
        (Purpose::Confirmation, phone("15551234568"), false),
        (Purpose::Recovery, email("someone@example.com"), true),
        (Purpose::Recovery, phone("15551234567"), true),
        (Purpose::Reauthentication, email("someone@example.com"), true),
        (Purpose::Reauthentication, phone("15551234567"), true),
        (Purpose::EmailChangeNew, email("new@example.com"), true),
        (Purpose::EmailChangeNew, email("someone@example.com"), false),
        (Purpose::EmailChangeCurrent, email("someone@example.com"), true),
        (Purpose::EmailChangeCurrent, email("new@example.com"), false),
        (Purpose::PhoneChange, phone("15550009999"), true),
        (Purpose::PhoneChange, phone("15551234567"), false),
    ];
    for (purpose, to, current) in cases {
        assert_eq!(purpose.is_current(&user, &to), current, "{purpose:?} {}", to.as_str());
    }
    user.email = None;
    user.phone = None;
    user.email_change = None;
    assert!(!Purpose::Confirmation.is_current(&user, &email("")));
    assert!(!Purpose::Recovery.is_current(&user, &phone("15551234567")));
    assert!(!Purpose::EmailChangeNew.is_current(&user, &email("new@example.com")));
}

#[test]
fn identifiers_are_normalised_and_read_back_from_storage() {
    assert_eq!(
        Identifier::email("  Someone@Example.COM ").unwrap(),
        email("someone@example.com")
    );
    assert_eq!(Identifier::phone("+1 555 123 4567").unwrap(), phone("15551234567"));
    // GoTrue drops one `+` and the spaces, nothing else.
    for refused in ["+1 (555) 123-4567", "1-555-123-4567", "++15551234567", "1555.123.4567"] {
        assert!(Identifier::phone(refused).is_err(), "{refused}");
    }
    assert!(Identifier::email("nope").is_err());
    assert!(Identifier::phone("+0123").is_err());
    assert_eq!(Identifier::from_stored("a@b.co"), email("a@b.co"));
    assert_eq!(Identifier::from_stored("15551234567"), phone("15551234567"));
    // Never printed in full.
    assert_eq!(format!("{:?}", email("a@b.co")), "Email(..)");
    assert_eq!(format!("{:?}", phone("15551234567")), "Phone(..)");
}

#[test]
fn a_users_own_code_goes_to_the_email_else_the_phone() {
    let mut user = user();
    assert_eq!(Identifier::of_user(&user), email("someone@example.com"));
    user.email = Some(String::new());
    assert_eq!(Identifier::of_user(&user), phone("15551234567"));
    user.phone = None;
    assert_eq!(Identifier::of_user(&user), email(""));
}
