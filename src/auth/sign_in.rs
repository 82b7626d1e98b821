//! `POST /token?grant_type=password`: sign-in with an email or phone number and a password.

use sqlx::Connection;

use crate::auth::accounts::{self, AccountRules};
use crate::auth::attempt_hooks::{self, PasswordDecision};
use crate::auth::password::{self, Hasher, PasswordUse, Verification, WeakPassword};
use crate::auth::phone;
use crate::auth::session::{self, Client, Sessions, Tokens};
use crate::config::PasswordConfig;
use crate::db::hot::HotPool;
use crate::db::identities::IdentityRow;
use crate::db::sessions;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};
use crate::hooks::Hook;

/// What a password sign-in needs.
pub struct Deps<'a> {
    pub hot: &'a HotPool,
    pub accounts: &'a AccountRules,
    pub sessions: &'a Sessions,
    pub hasher: &'a Hasher,
    /// The password policy, to tell the client when a password no longer meets it.
    pub policy: &'a PasswordConfig,
    /// `GOTRUE_HOOK_PASSWORD_VERIFICATION_ATTEMPT_*`: told of every attempt on an account.
    pub attempt_hook: Option<&'a Hook>,
    /// The phone provider is on (`GOTRUE_EXTERNAL_PHONE_ENABLED` with an SMS gateway).
    pub phone_enabled: bool,
}

/// A new session, and GoTrue's `weak_password` note when the password no longer meets the
/// policy (it still signs in).
pub struct SignedIn {
    pub tokens: Tokens,
    pub user: UserRow,
    pub identities: Vec<IdentityRow>,
    pub weak_password: Option<WeakPassword>,
}

/// Who signs in.
#[derive(Debug, Clone, Copy)]
enum Login<'a> {
    Email(&'a str),
    Phone(&'a str),
}

/// Signs in with `email` or `phone` and `password`.
pub async fn with_password(
    deps: &Deps<'_>,
    client: &Client,
    email: Option<&str>,
    phone: Option<&str>,
    password: &str,
) -> Result<SignedIn> {
    // Refused before any lookup or hashing, so the answer says nothing about the account. Up
    // to the limit a stored bcrypt hash reads only the first 72 bytes (`password::limits`).
    password::check_length(password, PasswordUse::Presented)?;
    // GoTrue's checks and statuses, in its order (the provider refusals are 422 here).
    let login = match (email, phone) {
        (Some(_), Some(_)) => {
            return Err(Error::validation(
                "Only an email address or phone number should be provided on login.",
            ));
        }
        (Some(email), None) => Login::Email(email),
        (None, Some(phone)) => Login::Phone(phone),
        (None, None) => return Err(Error::validation("missing email or phone")),
    };
    match login {
        Login::Email(_) if !deps.accounts.email_enabled => {
            return Err(Error::unprocessable(
                ErrorCode::EmailProviderDisabled,
                "Email logins are disabled",
            ));
        }
        Login::Phone(_) if !deps.phone_enabled => {
            return Err(Error::unprocessable(
                ErrorCode::PhoneProviderDisabled,
                "Phone logins are disabled",
            ));
        }
        _ => {}
    }
    let (user, needs_rehash) = check_password(deps, login, password).await?;
    if user.is_banned(chrono::Utc::now()) {
        return Err(Error::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    match login {
        Login::Email(_) if user.email_confirmed_at.is_none() => {
            return Err(Error::bad_request(ErrorCode::EmailNotConfirmed, "Email not confirmed"));
        }
        Login::Phone(_) if user.phone_confirmed_at.is_none() => {
            return Err(Error::bad_request(ErrorCode::PhoneNotConfirmed, "Phone not confirmed"));
        }
        _ => {}
    }
    let weak_password = password::check_policy(deps.policy, password).err();
    let new_hash = match needs_rehash {
        true => Some(deps.hasher.hash(password).await.map_err(Error::internal)?),
        false => None,
    };
    let mut conn = deps.hot.acquire().await?;
    let (tokens, user, identities) = match &new_hash {
        // Starting a session is one statement: no transaction needed around it.
        None => session::start(&mut conn, deps.sessions, &user, "password", client).await?,
        Some(hash) => {
            // Imported bcrypt/argon2 hashes are upgraded to the current argon2id parameters.
            let mut tx = conn.begin().await?;
            users::set_password(&mut *tx, user.id, hash).await?;
            let started = session::start(&mut tx, deps.sessions, &user, "password", client).await?;
            tx.commit().await?;
            started
        }
    };
    conn.release().await?;
    Ok(SignedIn {
        tokens,
        user,
        identities,
        weak_password,
    })
}

/// The user whose password `password` is, and whether its hash is due an upgrade. An unknown
/// or malformed address or number costs the same hashing work as a wrong password (the dummy
/// hash), so the answer's time says nothing about which addresses exist.
async fn check_password(deps: &Deps<'_>, login: Login<'_>, password: &str) -> Result<(UserRow, bool)> {
    let user = match login {
        Login::Email(email) => match accounts::normalize_email(email) {
            Ok(email) => {
                let mut conn = deps.hot.acquire().await?;
                let user = users::find_by_email(&mut *conn, &email).await?;
                conn.release().await?;
                user
            }
            Err(_) => None,
        },
        Login::Phone(phone) => match phone::normalize(phone) {
            Ok(phone) => {
                let mut conn = deps.hot.acquire().await?;
                let user = users::find_by_phone(&mut *conn, &phone).await?;
                conn.release().await?;
                user
            }
            Err(_) => None,
        },
    };
    let stored = user.as_ref().and_then(|u| u.encrypted_password.as_deref());
    let verification = deps.hasher.verify(password, stored).await.map_err(Error::internal)?;
    if let (Some(user), Some(hook)) = (&user, deps.attempt_hook) {
        let valid = matches!(verification, Verification::Valid { .. });
        obey_attempt_hook(deps, hook, user, valid).await?;
    }
    match (user, verification) {
        (Some(user), Verification::Valid { needs_rehash }) => Ok((user, needs_rehash)),
        _ => Err(invalid_credentials()),
    }
}

/// GoTrue's password verification attempt hook: told of an attempt on an existing account
/// (right or wrong), it may refuse it, and first sign the user out everywhere. Unknown
/// addresses are not reported: there is no user to tell about.
async fn obey_attempt_hook(deps: &Deps<'_>, hook: &Hook, user: &UserRow, valid: bool) -> Result<()> {
    let mut conn = deps.hot.acquire().await?;
    let decision = attempt_hooks::password_attempt(hook, &mut conn, user.id, valid).await?;
    if let PasswordDecision::Reject { message, sign_out } = decision {
        if sign_out {
            sessions::delete_all_for_user(&mut *conn, user.id).await?;
        }
        conn.release().await?;
        return Err(Error::bad_request(ErrorCode::InvalidCredentials, message));
    }
    conn.release().await?;
    Ok(())
}

fn invalid_credentials() -> Error {
    Error::bad_request(ErrorCode::InvalidCredentials, "Invalid login credentials")
}
