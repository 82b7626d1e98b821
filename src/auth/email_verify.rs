//! Consuming email tokens (`/verify`, the reauthentication nonce): find the token by the hash a
//! link carries or by recomputing it from a typed-in code, check that it is current and not
//! expired, apply its effect, and clear the user's one-time tokens so each works once.

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;

use crate::auth::{otp, proven_address};
use crate::db::audit::{self, Action};
use crate::db::identities;
use crate::db::one_time_tokens::{self, Confirms, OneTimeTokenRow, TokenType};
use crate::db::users::{self, UserRow};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

/// The `type` of a verification (`sms`/`phone_change` need the phone provider, which is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyType {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    EmailChange,
    /// A typed-in email code: the confirmation code, else the magic-link code.
    Email,
}

impl VerifyType {
    pub fn parse(raw: &str) -> Option<VerifyType> {
        Some(match raw {
            "signup" => VerifyType::Signup,
            "invite" => VerifyType::Invite,
            "magiclink" => VerifyType::MagicLink,
            "recovery" => VerifyType::Recovery,
            "email_change" => VerifyType::EmailChange,
            "email" => VerifyType::Email,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VerifyType::Signup => "signup",
            VerifyType::Invite => "invite",
            VerifyType::MagicLink => "magiclink",
            VerifyType::Recovery => "recovery",
            VerifyType::EmailChange => "email_change",
            VerifyType::Email => "email",
        }
    }

    fn token_types(self) -> &'static [TokenType] {
        match self {
            VerifyType::Signup | VerifyType::Invite => &[TokenType::Confirmation],
            VerifyType::MagicLink | VerifyType::Recovery => &[TokenType::Recovery],
            VerifyType::EmailChange => &[TokenType::EmailChangeNew, TokenType::EmailChangeCurrent],
            VerifyType::Email => &[TokenType::Confirmation, TokenType::Recovery],
        }
    }
}

/// What the client presented.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// The hash from an email link (`token_hash`, or `token` on `GET /verify`).
    Hash(&'a str),
    /// The code from the mail, with the address it was sent to.
    Code { email: &'a str, code: &'a str },
}

#[derive(Debug)]
pub enum Outcome {
    /// Verified: the caller issues a session, or for a PKCE token a code of the user's
    /// newest flow among `flow_methods`.
    Verified {
        user: Box<UserRow>,
        pkce: bool,
        flow_methods: &'static [&'static str],
    },
    /// The first of the two confirmations of a secure email change.
    EmailChangeFirstLeg,
}

fn invalid(presented: Presented<'_>) -> ApiError {
    let message = match presented {
        Presented::Hash(_) => "Email link is invalid or has expired",
        Presented::Code { .. } => "Token has expired or is invalid",
    };
    ApiError::forbidden(ErrorCode::OtpExpired, message)
}

pub async fn verify(
    conn: &mut PgConnection,
    state: &AppState,
    vtype: VerifyType,
    presented: Presented<'_>,
    ip: &str,
) -> ApiResult<Outcome> {
    let types = vtype.token_types();
    let row = match presented {
        Presented::Hash(hash) => one_time_tokens::find_by_hash(&mut *conn, hash, types).await?,
        Presented::Code { email, code } => one_time_tokens::find_by_address(&mut *conn, email, types)
            .await?
            .into_iter()
            .find(|row| otp::otp_matches(&row.token_hash, email, code)),
    };
    let row = row.ok_or_else(|| invalid(presented))?;
    let kind = row.kind().ok_or_else(|| invalid(presented))?;
    let user = users::lock(&mut *conn, row.user_id)
        .await?
        .ok_or_else(|| invalid(presented))?;
    if user.is_banned(Utc::now()) {
        return Err(ApiError::forbidden(ErrorCode::UserBanned, "User is banned"));
    }
    if !is_current(&row, kind, &user) || is_expired(state, kind, &user) {
        return Err(invalid(presented));
    }
    let pkce = row.token_hash.starts_with(otp::PKCE_PREFIX);
    let (user, flow_methods): (UserRow, &'static [&'static str]) = match kind {
        TokenType::Confirmation => (confirm(conn, &user, &row, ip).await?, &["email/signup", "invite"]),
        TokenType::Recovery => {
            let user = if user.email_confirmed_at.is_none() {
                confirm(conn, &user, &row, ip).await?
            } else {
                user
            };
            (user, &["magiclink", "recovery"])
        }
        TokenType::EmailChangeNew | TokenType::EmailChangeCurrent => {
            match change_email(conn, state, &user, kind, ip).await? {
                Some(user) => (user, &["email_change"]),
                None => return Ok(Outcome::EmailChangeFirstLeg),
            }
        }
        TokenType::Reauthentication => return Err(invalid(presented)),
    };
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    Ok(Outcome::Verified {
        user: Box::new(user),
        pkce,
        flow_methods,
    })
}

/// A token is only good for the address it was sent to, while that is still the address.
fn is_current(row: &OneTimeTokenRow, kind: TokenType, user: &UserRow) -> bool {
    let expected = match kind {
        TokenType::EmailChangeNew => user.email_change.as_deref(),
        _ => user.email.as_deref(),
    };
    expected.is_some_and(|address| address.eq_ignore_ascii_case(&row.relates_to))
}

fn is_expired(state: &AppState, kind: TokenType, user: &UserRow) -> bool {
    let sent_at = match kind {
        TokenType::Confirmation => user.confirmation_sent_at,
        TokenType::Recovery => user.recovery_sent_at,
        TokenType::EmailChangeNew | TokenType::EmailChangeCurrent => user.email_change_sent_at,
        TokenType::Reauthentication => user.reauthentication_sent_at,
    };
    otp::is_expired(sent_at, Utc::now(), state.config.mailer.otp_exp)
}

/// GoTrue's `signupVerify` / `User.Confirm`, and for an unconfirmed account whatever proving
/// its address does to it (`auth::proven_address`). Only a confirmation token confirms more
/// than the address; a magic link or recovery link proves the address alone.
async fn confirm(conn: &mut PgConnection, user: &UserRow, token: &OneTimeTokenRow, ip: &str) -> ApiResult<UserRow> {
    let confirms = match token.kind() {
        Some(TokenType::Confirmation) => one_time_tokens::confirms_of(&mut *conn, token.id)
            .await?
            .unwrap_or_default(),
        _ => Confirms::default(),
    };
    proven_address::confirm_by_mail(conn, user, confirms, ip).await
}

/// GoTrue's `emailChangeVerify`. `None` when this was the first of two confirmations.
async fn change_email(
    conn: &mut PgConnection,
    state: &AppState,
    user: &UserRow,
    kind: TokenType,
    ip: &str,
) -> ApiResult<Option<UserRow>> {
    let other = if kind == TokenType::EmailChangeNew {
        TokenType::EmailChangeCurrent
    } else {
        TokenType::EmailChangeNew
    };
    let config = &state.config;
    // With secure email change both addresses must confirm. (GoTrue decides this from the
    // confirm status alone; checking that the other token exists also copes with a setting
    // changed between sending and clicking.)
    if !config.mailer_autoconfirm
        && config.mailer.secure_email_change_enabled
        && !user.email_or_empty().is_empty()
        && one_time_tokens::find_for_user(&mut *conn, user.id, other)
            .await?
            .is_some()
    {
        one_time_tokens::delete(&mut *conn, user.id, kind).await?;
        users::set_email_change_confirm_status(&mut *conn, user.id, 1).await?;
        return Ok(None);
    }
    let new_email = user.email_change.clone().unwrap_or_default();
    if users::email_taken(&mut *conn, &new_email, user.id).await? {
        return Err(ApiError::unprocessable(
            ErrorCode::EmailExists,
            "A user with this email address has already been registered",
        ));
    }
    record(conn, user, Action::UserModified, ip).await?;
    let changed = users::apply_email_change(&mut *conn, user.id).await?;
    if !identities::set_email(&mut *conn, user.id, &new_email, true).await? {
        // An anonymous user adding an address gets an email identity, as in GoTrue.
        let claims = json!({
            "sub": user.id.to_string(),
            "email": new_email,
            "email_verified": true,
            "phone_verified": false,
        });
        identities::insert(&mut *conn, user.id, "email", &user.id.to_string(), &claims).await?;
    }
    Ok(Some(changed))
}

/// Applies the pending `email_change` at once (an anonymous user adding an address while
/// autoconfirm is on).
pub async fn apply_email_change_now(
    conn: &mut PgConnection,
    state: &AppState,
    user: &UserRow,
    ip: &str,
) -> ApiResult<UserRow> {
    let changed = change_email(conn, state, user, TokenType::EmailChangeNew, ip)
        .await?
        .ok_or_else(|| ApiError::internal("autoconfirmed email change asked for a second confirmation"))?;
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    Ok(changed)
}

/// The `nonce` of `PUT /user` (GoTrue's `verifyReauthentication`): the code mailed by
/// `GET /reauthenticate`, for the current address, unexpired. Used once.
pub async fn verify_nonce(conn: &mut PgConnection, state: &AppState, user: &UserRow, nonce: &str) -> ApiResult<()> {
    let not_valid = || ApiError::unprocessable(ErrorCode::ReauthenticationNotValid, "Nonce has expired or is invalid");
    let row = one_time_tokens::find_for_user(&mut *conn, user.id, TokenType::Reauthentication)
        .await?
        .ok_or_else(not_valid)?;
    let email = user.email_or_empty();
    if !is_current(&row, TokenType::Reauthentication, user)
        || is_expired(state, TokenType::Reauthentication, user)
        || !otp::otp_matches(&row.token_hash, email, nonce.trim())
    {
        return Err(not_valid());
    }
    one_time_tokens::delete(&mut *conn, user.id, TokenType::Reauthentication).await?;
    Ok(())
}

async fn record(conn: &mut PgConnection, user: &UserRow, action: Action, ip: &str) -> ApiResult<()> {
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(user, action, Some(json!({ "provider": "email" })), ip),
    )
    .await?;
    Ok(())
}
