//! Consuming email tokens (`/verify`, the reauthentication nonce): find the token by the hash a
//! link carries or by recomputing it from a typed-in code, check that it is current and not
//! expired, apply its effect, and clear the user's one-time tokens so each works once.
//!
//! Two steps, because a wrong code must be counted although the request fails: [`find`] checks
//! a typed-in code in a short transaction of its own, committed whatever the outcome, where
//! a wrong code counts against the address's tokens (`LATCHKEY_OTP_MAX_ATTEMPTS`); then
//! [`verify`], in the caller's transaction, locks the user and the token (which must still be
//! there) and applies the effect. The nonce of `PUT /user` goes the same way
//! ([`check_nonce`], [`use_nonce`]). GoTrue counts no attempts and takes no lock on the token;
//! Latchkey does both, so a code cannot be guessed and a burst of verifications of one token
//! gives one session.

use chrono::Utc;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::auth::{otp, proven_address};
use crate::config::Config;
use crate::db::audit::{self, Action};
use crate::db::identities;
use crate::db::one_time_tokens::{self, Confirms, OneTimeTokenRow, TokenType};
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// What checking one-time codes needs: a pool for the short transactions that count wrong
/// codes, and the rules (`GOTRUE_MAILER_OTP_EXP`, `LATCHKEY_OTP_MAX_ATTEMPTS`, secure email
/// change, autoconfirm).
#[derive(Debug, Clone)]
pub struct Codes {
    db: PgPool,
    lifetime: std::time::Duration,
    max_attempts: i32,
    secure_email_change: bool,
    autoconfirm: bool,
}

impl Codes {
    pub fn new(db: PgPool, config: &Config) -> Codes {
        Codes {
            db,
            lifetime: config.mailer.otp_exp,
            max_attempts: config.mailer.otp_max_attempts,
            secure_email_change: config.mailer.secure_email_change_enabled,
            autoconfirm: config.mailer_autoconfirm,
        }
    }
}

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

fn invalid(presented: Presented<'_>) -> Error {
    let message = match presented {
        Presented::Hash(_) => "Email link is invalid or has expired",
        Presented::Code { .. } => "Token has expired or is invalid",
    };
    Error::forbidden(ErrorCode::OtpExpired, message)
}

/// A token a client presented, found by [`find`] for [`verify`].
#[derive(Debug)]
pub struct Found<'a> {
    row: OneTimeTokenRow,
    presented: Presented<'a>,
}

/// Finds the token a client presented, before the verification's transaction. A typed-in code
/// is checked in a transaction of its own (see [`find_by_code`]), so that a wrong one stays
/// counted.
pub async fn find<'a>(codes: &Codes, vtype: VerifyType, presented: Presented<'a>) -> Result<Found<'a>> {
    let types = vtype.token_types();
    let row = match presented {
        // A link's hash is 56 hex digits of SHA-224 over the address and the code: it cannot
        // be guessed, and a wrong one names no token to count it against.
        Presented::Hash(hash) => one_time_tokens::find_by_hash(&codes.db, hash, types).await?,
        Presented::Code { email, code } => find_by_code(codes, email, code, types).await?,
    };
    let row = row.ok_or_else(|| invalid(presented))?;
    Ok(Found { row, presented })
}

/// The token of `types` sent to `email` whose code is `code`. Guesses for one address are
/// checked one at a time; a wrong one counts against every token of `types` sent there, and
/// kills those that reach the limit. Committed whatever the outcome.
async fn find_by_code(codes: &Codes, email: &str, code: &str, types: &[TokenType]) -> Result<Option<OneTimeTokenRow>> {
    let mut tx = codes.db.begin().await?;
    one_time_tokens::lock_guessing(&mut *tx, email).await?;
    let found = one_time_tokens::find_by_address(&mut *tx, email, types)
        .await?
        .into_iter()
        .find(|row| otp::otp_matches(&row.token_hash, email, code));
    if found.is_none() {
        let max = codes.max_attempts;
        let died = one_time_tokens::count_failure_at_address(&mut *tx, email, types, max).await?;
        log_died(died);
    }
    tx.commit().await?;
    Ok(found)
}

fn log_died(tokens: i64) {
    if tokens > 0 {
        tracing::info!(tokens, "one-time code died after too many wrong guesses");
    }
}

/// Locks the token's user, then the token, if it is still live. In that order, as everywhere
/// else (`email::send` locks the user, then writes its tokens), so the two cannot deadlock.
/// Of concurrent verifications of one token the first gets it; the others wait for the user
/// and then find the token used.
async fn lock_for_use(conn: &mut PgConnection, codes: &Codes, row: &OneTimeTokenRow) -> Result<Option<UserRow>> {
    let Some(user) = users::lock(&mut *conn, row.user_id).await? else {
        return Ok(None);
    };
    let max = codes.max_attempts;
    let live = one_time_tokens::lock_live(&mut *conn, row.id, &row.token_hash, max).await?;
    Ok(live.then_some(user))
}

/// Uses a token found by [`find`], inside the caller's transaction.
pub async fn verify(conn: &mut PgConnection, codes: &Codes, found: Found<'_>, ip: &str) -> Result<Outcome> {
    let Found { row, presented } = found;
    let kind = row.kind().ok_or_else(|| invalid(presented))?;
    let user = lock_for_use(conn, codes, &row)
        .await?
        .ok_or_else(|| invalid(presented))?;
    if user.is_banned(Utc::now()) {
        return Err(Error::forbidden(ErrorCode::UserBanned, "User is banned"));
    }
    if !is_current(&row, kind, &user) || is_expired(codes, kind, &user) {
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
            match change_email(conn, codes, &user, kind, ip).await? {
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

fn is_expired(codes: &Codes, kind: TokenType, user: &UserRow) -> bool {
    let sent_at = match kind {
        TokenType::Confirmation => user.confirmation_sent_at,
        TokenType::Recovery => user.recovery_sent_at,
        TokenType::EmailChangeNew | TokenType::EmailChangeCurrent => user.email_change_sent_at,
        TokenType::Reauthentication => user.reauthentication_sent_at,
    };
    otp::is_expired(sent_at, Utc::now(), codes.lifetime)
}

/// GoTrue's `signupVerify` / `User.Confirm`, and for an unconfirmed account whatever proving
/// its address does to it (`auth::proven_address`). Only a confirmation token confirms more
/// than the address; a magic link or recovery link proves the address alone.
async fn confirm(conn: &mut PgConnection, user: &UserRow, token: &OneTimeTokenRow, ip: &str) -> Result<UserRow> {
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
    codes: &Codes,
    user: &UserRow,
    kind: TokenType,
    ip: &str,
) -> Result<Option<UserRow>> {
    let other = if kind == TokenType::EmailChangeNew {
        TokenType::EmailChangeCurrent
    } else {
        TokenType::EmailChangeNew
    };
    // With secure email change both addresses must confirm. (GoTrue decides this from the
    // confirm status alone; checking that the other token exists also copes with a setting
    // changed between sending and clicking.)
    if !codes.autoconfirm
        && codes.secure_email_change
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
        return Err(Error::unprocessable(
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
    codes: &Codes,
    user: &UserRow,
    ip: &str,
) -> Result<UserRow> {
    let changed = change_email(conn, codes, user, TokenType::EmailChangeNew, ip)
        .await?
        .ok_or_else(|| Error::internal("autoconfirmed email change asked for a second confirmation"))?;
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    Ok(changed)
}

/// A reauthentication nonce whose code matched, for [`use_nonce`].
#[derive(Debug)]
pub struct CheckedNonce(OneTimeTokenRow);

fn nonce_not_valid() -> Error {
    Error::unprocessable(ErrorCode::ReauthenticationNotValid, "Nonce has expired or is invalid")
}

/// Checks the `nonce` of `PUT /user` (GoTrue's `verifyReauthentication`), the code mailed by
/// `GET /reauthenticate`, before the update's transaction and like a typed-in code in [`find`]:
/// guesses one at a time, a wrong one counted against the nonce (which dies at the limit),
/// committed whatever the outcome.
pub async fn check_nonce(codes: &Codes, user: &UserRow, nonce: &str) -> Result<CheckedNonce> {
    let mut tx = codes.db.begin().await?;
    one_time_tokens::lock_guessing(&mut *tx, &user.id.to_string()).await?;
    let row = one_time_tokens::find_for_user(&mut *tx, user.id, TokenType::Reauthentication).await?;
    let Some(row) = row else {
        return Err(nonce_not_valid());
    };
    let matched = otp::otp_matches(&row.token_hash, user.email_or_empty(), nonce.trim());
    if !matched {
        let max = codes.max_attempts;
        let died = one_time_tokens::count_failure_for_user(&mut *tx, user.id, TokenType::Reauthentication, max).await?;
        log_died(died);
    }
    tx.commit().await?;
    matched.then_some(CheckedNonce(row)).ok_or_else(nonce_not_valid)
}

/// Uses a nonce checked by [`check_nonce`] inside the update's transaction: it must still be
/// live, for the current address, and unexpired. Used once.
pub async fn use_nonce(conn: &mut PgConnection, codes: &Codes, nonce: CheckedNonce) -> Result<()> {
    let CheckedNonce(row) = nonce;
    let user = lock_for_use(conn, codes, &row).await?.ok_or_else(nonce_not_valid)?;
    if !is_current(&row, TokenType::Reauthentication, &user) || is_expired(codes, TokenType::Reauthentication, &user) {
        return Err(nonce_not_valid());
    }
    one_time_tokens::delete(&mut *conn, user.id, TokenType::Reauthentication).await?;
    Ok(())
}

async fn record(conn: &mut PgConnection, user: &UserRow, action: Action, ip: &str) -> Result<()> {
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(user, action, Some(json!({ "provider": "email" })), ip),
    )
    .await?;
    Ok(())
}
