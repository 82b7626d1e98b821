//! Creating accounts: a user row plus its identity, in the caller's transaction.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::user_hooks;
use crate::config::Config;
use crate::db::identities::{self, IdentityRow};
use crate::db::users::{self, NewUser, UserRow};
use crate::error::{Error, ErrorCode};
use crate::hooks::Hook;

/// The rules for new accounts, from the configuration (`GOTRUE_JWT_AUD`,
/// `GOTRUE_JWT_DEFAULT_GROUP_NAME`, `GOTRUE_DISABLE_SIGNUP`, `GOTRUE_MAILER_AUTOCONFIRM`,
/// `GOTRUE_EXTERNAL_EMAIL_ENABLED`, `GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED`).
#[derive(Debug, Clone)]
pub struct AccountRules {
    /// `aud` of new users and their tokens.
    pub aud: String,
    /// `role` of new users.
    pub role: String,
    pub signup_disabled: bool,
    /// New addresses count as confirmed without a mail.
    pub autoconfirm: bool,
    /// Email/password sign-ups are allowed.
    pub email_enabled: bool,
    /// Anonymous sign-ins are allowed.
    pub anonymous_enabled: bool,
    /// `GOTRUE_HOOK_BEFORE_USER_CREATED_*`: may refuse any new user before it is written.
    pub before_user_created: Option<Hook>,
    /// `GOTRUE_HOOK_AFTER_USER_CREATED_*`: told about each new user once it is committed.
    pub after_user_created: Option<Hook>,
}

impl AccountRules {
    pub fn from_config(config: &Config) -> AccountRules {
        AccountRules {
            aud: config.jwt.aud.clone(),
            role: config.jwt.default_group_name.clone(),
            signup_disabled: config.disable_signup,
            autoconfirm: config.mailer_autoconfirm,
            email_enabled: config.external_email_enabled,
            anonymous_enabled: config.anonymous_users_enabled,
            before_user_created: None,
            after_user_created: None,
        }
    }

    /// The hooks every new user goes through: before it is written, and once committed.
    pub fn with_user_hooks(mut self, before: Option<Hook>, after: Option<Hook>) -> AccountRules {
        self.before_user_created = before;
        self.after_user_created = after;
        self
    }
}

pub struct NewEmailAccount<'a> {
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub user_metadata: Value,
    pub confirmed: bool,
    /// Whether the identity's claims also go into `user_metadata`: GoTrue merges them on a
    /// self-service sign-up (`/signup`, `/otp`), while an admin's generated sign-up or invite
    /// link keeps exactly the metadata given.
    pub identity_in_metadata: bool,
}

/// An email/password user with its `email` identity; `app_metadata` names the provider.
pub async fn create_email_user(
    conn: &mut PgConnection,
    rules: &AccountRules,
    account: NewEmailAccount<'_>,
) -> Result<(UserRow, Vec<IdentityRow>), Error> {
    let id = Uuid::new_v4();
    let identity_data = json!({
        "sub": id.to_string(),
        "email": account.email,
        "email_verified": account.confirmed,
        "phone_verified": false,
    });
    let mut user_metadata = match account.user_metadata {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let (true, Value::Object(claims)) = (account.identity_in_metadata, &identity_data) {
        for (key, value) in claims {
            user_metadata.insert(key.clone(), value.clone());
        }
    }
    let app_metadata = json!({ "provider": "email", "providers": ["email"] });
    let new_user = NewUser {
        id,
        aud: &rules.aud,
        role: &rules.role,
        email: Some(account.email),
        phone: None,
        encrypted_password: account.password_hash,
        email_confirmed: account.confirmed,
        phone_confirmed: false,
        confirmation_sent: !account.confirmed,
        app_metadata: &app_metadata,
        user_metadata: &Value::Object(user_metadata),
        is_anonymous: false,
    };
    user_hooks::before_user_created(conn, rules.before_user_created.as_ref(), &new_user).await?;
    let insert = users::insert(&mut *conn, &new_user).await;
    let user = match insert {
        Ok(user) => user,
        // Two sign-ups of one address racing: the loser sees the unique index.
        Err(err) if crate::db::is_unique_violation(&err, "_auth_users_email_key") => {
            return Err(Error::unprocessable(
                ErrorCode::UserAlreadyExists,
                "User already registered",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let identity = identities::insert(&mut *conn, user.id, "email", &user.id.to_string(), &identity_data).await?;
    count_sign_up("email");
    Ok((user, vec![identity]))
}

/// An anonymous user: no email, no phone, no identity; `app_metadata` stays `{}`.
pub async fn create_anonymous_user(
    conn: &mut PgConnection,
    rules: &AccountRules,
    user_metadata: Value,
) -> Result<UserRow, Error> {
    let user_metadata = if user_metadata.is_object() {
        user_metadata
    } else {
        json!({})
    };
    let new_user = NewUser {
        id: Uuid::new_v4(),
        aud: &rules.aud,
        role: &rules.role,
        email: None,
        phone: None,
        encrypted_password: None,
        email_confirmed: false,
        phone_confirmed: false,
        confirmation_sent: false,
        app_metadata: &json!({}),
        user_metadata: &user_metadata,
        is_anonymous: true,
    };
    user_hooks::before_user_created(conn, rules.before_user_created.as_ref(), &new_user).await?;
    Ok(users::insert(&mut *conn, &new_user)
        .await
        .inspect(|_| count_sign_up("anonymous"))?)
}

/// What an admin may set when creating a user (`POST /admin/users`).
pub struct AdminAccount<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    pub role: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub email_confirmed: bool,
    pub phone_confirmed: bool,
    pub user_metadata: Value,
    pub app_metadata: Value,
}

impl AdminAccount<'_> {
    /// `email` and `phone`, those given, in that order.
    fn providers(&self) -> Vec<&'static str> {
        [self.email.map(|_| "email"), self.phone.map(|_| "phone")]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The claims of the account's identity for `provider`.
    fn identity_data(&self, provider: &str) -> Value {
        json!({
            "sub": self.id.to_string(),
            "email": if provider == "email" { self.email } else { None },
            "phone": if provider == "phone" { self.phone } else { None },
            "email_verified": provider == "email" && self.email_confirmed,
            "phone_verified": provider == "phone" && self.phone_confirmed,
        })
    }
}

/// A user created by an admin, with an identity for each of email and phone. `app_metadata`
/// names the first as provider; the admin's own keys are merged over that.
pub async fn create_admin_user(
    conn: &mut PgConnection,
    rules: &AccountRules,
    mut account: AdminAccount<'_>,
) -> Result<(UserRow, Vec<IdentityRow>), Error> {
    let providers = account.providers();
    let mut app_metadata = json!({ "provider": providers.first(), "providers": providers });
    merge_object(&mut app_metadata, &account.app_metadata);
    // GoTrue keeps exactly the metadata the admin gave: identity claims stay in the identities.
    let user_metadata = std::mem::take(&mut account.user_metadata);
    let new_user = NewUser {
        id: account.id,
        aud: account.aud,
        role: account.role,
        email: account.email,
        phone: account.phone,
        encrypted_password: account.password_hash,
        email_confirmed: account.email_confirmed,
        phone_confirmed: account.phone_confirmed,
        confirmation_sent: false,
        app_metadata: &app_metadata,
        user_metadata: &user_metadata,
        is_anonymous: false,
    };
    user_hooks::before_user_created(conn, rules.before_user_created.as_ref(), &new_user).await?;
    let insert = users::insert(&mut *conn, &new_user).await;
    let user = insert.map_err(|err| {
        if crate::db::is_unique_violation(&err, "_auth_users_pkey") {
            Error::unprocessable(ErrorCode::UserAlreadyExists, "User already registered")
        } else {
            address_taken(err)
        }
    })?;
    let mut created = Vec::new();
    for provider in providers {
        let data = account.identity_data(provider);
        created.push(identities::insert(&mut *conn, user.id, provider, &user.id.to_string(), &data).await?);
    }
    count_sign_up("admin");
    Ok((user, created))
}

/// `latchkey_sign_ups_total{method}`, counted when the user row is written (a transaction
/// that fails after this still counts: rare, as the write is the last risky step but for a
/// confirmation mail that cannot be sent).
pub fn count_sign_up(method: &'static str) {
    metrics::counter!("latchkey_sign_ups_total", "method" => method).increment(1);
}

/// GoTrue's `sanitizeUser`: a random id, no role, no identities, fresh timestamps.
pub fn obfuscated_user(rules: &AccountRules, existing: &UserRow, data: Option<&Value>) -> UserRow {
    let now = chrono::Utc::now();
    let mut fake = existing.clone();
    fake.id = Uuid::new_v4();
    fake.role = String::new();
    fake.aud = rules.aud.clone();
    fake.email_change = None;
    fake.created_at = now;
    fake.updated_at = now;
    fake.confirmation_sent_at = Some(now);
    fake.last_sign_in_at = None;
    fake.confirmed_at = None;
    fake.email_change_sent_at = None;
    fake.email_confirmed_at = None;
    fake.phone_confirmed_at = None;
    fake.phone = None;
    fake.banned_until = None;
    fake.raw_user_meta_data = data.cloned().unwrap_or_else(|| json!({}));
    fake.raw_app_meta_data = json!({ "provider": "email", "providers": ["email"] });
    // GoTrue leaves the real user's factors in its fake answer, which tells anyone who signs up
    // with an address whether its account uses MFA; a new user has none.
    fake.factors = Default::default();
    fake
}

/// GoTrue's answer when another user has the address.
pub fn email_exists() -> Error {
    Error::unprocessable(
        ErrorCode::EmailExists,
        "A user with this email address has already been registered",
    )
}

/// GoTrue's answer when another user has the number.
pub fn phone_exists() -> Error {
    Error::unprocessable(
        ErrorCode::PhoneExists,
        "A user with this phone number has already been registered",
    )
}

/// A write of a user's email or phone that ran into the unique index (another transaction
/// took the address between a check and the write): the same 422 as the check's. Other
/// errors pass as they are.
pub fn address_taken(err: sqlx::Error) -> Error {
    if crate::db::is_unique_violation(&err, "_auth_users_email_key") {
        email_exists()
    } else if crate::db::is_unique_violation(&err, "_auth_users_phone_key") {
        phone_exists()
    } else {
        err.into()
    }
}

/// An optional email as the admin API and `PUT /user` take it: blank means none, anything
/// else must be valid.
pub fn optional_email(raw: Option<&str>) -> Result<Option<String>, Error> {
    raw.map(str::trim)
        .filter(|e| !e.is_empty())
        .map(normalize_email)
        .transpose()
}

/// Copies the keys of `patch` (an object) into `target` (an object); `null` removes a key.
pub fn merge_object(target: &mut Value, patch: &Value) {
    if let (Value::Object(target), Value::Object(patch)) = (target, patch) {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// GoTrue's email check (checkmail's format, the HTML form's): a local part of letters,
/// digits and ``.!#$%&'*+/=?^_`{|}~-``, then a host of letter-digit-hyphen labels of at most
/// 63 characters, which may be a single label (`a@b`); at most 255 characters. Returns the
/// address lower-cased, as GoTrue stores it. Latchkey also trims surrounding whitespace, which
/// GoTrue refuses as a bad format.
pub fn normalize_email(raw: &str) -> Result<String, Error> {
    let email = raw.trim().to_lowercase();
    let invalid = || Error::validation("Unable to validate email address: invalid format");
    if email.len() > 255 {
        return Err(Error::validation("An email address is too long"));
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
    if local_ok && domain.split('.').all(is_host_label) {
        Ok(email)
    } else {
        Err(invalid())
    }
}

/// `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`
fn is_host_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    bytes.len() <= 63
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// How a sign-up ends, by email, phone or anonymously: a session (autoconfirm, or anonymous),
/// or the user while the confirmation is pending (or a made-up one, for an address or number
/// that is already registered).
pub enum SignedUp {
    Session {
        tokens: crate::auth::session::Tokens,
        user: UserRow,
        identities: Vec<IdentityRow>,
    },
    Pending {
        user: UserRow,
        identities: Vec<IdentityRow>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Someone@Example.COM ").unwrap(),
            "someone@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a b@c.de",
            "xx:;x@x.x",
            "a\"b@c.de",
            "a@-b.com",
            "a@b-.com",
            "a@b_c.com",
            "é@b.com",
            "a@bü.com",
            "a@b@c.de",
            "a@.com",
            "a@b..com",
            "a@b.com.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(normalize_email(&format!("{}@x.io", "a".repeat(300))).is_err());
        assert!(normalize_email(&format!("a@{}.io", "b".repeat(64))).is_err());
    }

    #[test]
    fn addresses_gotrue_accepts_are_accepted() {
        for good in [
            "a@b",
            "a@localhost",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.com",
            "x!#$%&'*+/=?^_`{|}~-@a-b.example",
            "a@1.2.3.4",
        ] {
            assert!(normalize_email(good).is_ok(), "{good}");
        }
        assert!(normalize_email(&format!("a@{}.io", "b".repeat(63))).is_ok());
    }
}
