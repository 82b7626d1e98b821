//! Checking and using a presented code, in two steps, because a wrong code must be counted
//! although the request fails: a typed-in code is checked in a short transaction of its own,
//! committed whatever the outcome, where a wrong one counts against the identifier's codes
//! (`LATCHKEY_OTP_MAX_ATTEMPTS`); then, in the caller's transaction, [`lock_for_use`] locks
//! the user and the code (which must still be there) and [`is_usable`] checks that it is
//! current and unexpired. GoTrue counts no attempts and takes no lock on the code; Latchkey
//! does both, so a code cannot be guessed and a burst of uses of one code succeeds once.

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Codes, Identifier, PKCE_PREFIX, Purpose, is_expired, matches};
use crate::db::one_time_tokens::{self, OneTimeTokenRow, TokenType};
use crate::db::users::{self, UserRow};
use crate::error::Result;

/// A stored code that matched what a client presented (a link's hash or a typed-in code),
/// found before the transaction that uses it.
pub struct Matched {
    id: Uuid,
    user_id: Uuid,
    hash: String,
    purpose: Purpose,
    to: Identifier,
}

impl Matched {
    /// `None` for a row of a kind this version does not know.
    fn from_row(row: OneTimeTokenRow) -> Option<Matched> {
        Some(Matched {
            purpose: Purpose::of(row.kind()?),
            to: Identifier::from_stored(&row.relates_to),
            id: row.id,
            user_id: row.user_id,
            hash: row.token_hash,
        })
    }

    /// The stored code's id (what a confirmation confirms is kept with it).
    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Where the code was sent.
    pub fn to(&self) -> &Identifier {
        &self.to
    }

    /// Issued for a PKCE flow.
    pub fn is_pkce(&self) -> bool {
        self.hash.starts_with(PKCE_PREFIX)
    }
}

/// Never prints the hash, which a link carries as a credential.
impl std::fmt::Debug for Matched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matched")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

fn token_types(purposes: &[Purpose]) -> Vec<TokenType> {
    purposes.iter().map(|p| p.token_type()).collect()
}

fn log_died(codes: i64) {
    if codes > 0 {
        tracing::info!(codes, "one-time code died after too many wrong guesses");
    }
}

/// The code of one of `purposes` whose stored hash a link carries. Such a hash is 56 hex
/// digits of SHA-224 over the identifier and the code: it cannot be guessed, and a wrong one
/// names no code to count it against.
pub async fn find_by_hash(codes: &Codes, hash: &str, purposes: &[Purpose]) -> Result<Option<Matched>> {
    let row = one_time_tokens::find_by_hash(&codes.db, hash, &token_types(purposes)).await?;
    Ok(row.and_then(Matched::from_row))
}

/// The code of one of `purposes` sent to `to` that `code` is. Guesses for one identifier are
/// checked one at a time; a wrong one counts against every code of `purposes` sent there and
/// kills those that reach the limit. Committed whatever the outcome.
pub async fn find_by_code(codes: &Codes, to: &Identifier, code: &str, purposes: &[Purpose]) -> Result<Option<Matched>> {
    let types = token_types(purposes);
    let mut tx = codes.db.begin().await?;
    one_time_tokens::lock_guessing(&mut *tx, to.as_str()).await?;
    let found = one_time_tokens::find_by_address(&mut *tx, to.as_str(), &types)
        .await?
        .into_iter()
        .find(|row| matches(&row.token_hash, to, code));
    if found.is_none() {
        let died = one_time_tokens::count_failure_at_address(&mut *tx, to.as_str(), &types, codes.max_attempts).await?;
        log_died(died);
    }
    tx.commit().await?;
    Ok(found.and_then(Matched::from_row))
}

/// The live code of one of `purposes` sent to `to`, for a gateway that made and checked the
/// typed-in code itself (Twilio Verify): `accepted` is its answer. The stored code still makes
/// the gateway's code single-use, current and expiring like any other; a refusal counts as a
/// wrong guess. Committed whatever the outcome.
pub async fn find_checked_by_gateway(
    codes: &Codes,
    to: &Identifier,
    purposes: &[Purpose],
    accepted: bool,
) -> Result<Option<Matched>> {
    let types = token_types(purposes);
    let mut tx = codes.db.begin().await?;
    one_time_tokens::lock_guessing(&mut *tx, to.as_str()).await?;
    let rows = one_time_tokens::find_by_address(&mut *tx, to.as_str(), &types).await?;
    let found = if accepted { rows.into_iter().next() } else { None };
    if found.is_none() {
        let died = one_time_tokens::count_failure_at_address(&mut *tx, to.as_str(), &types, codes.max_attempts).await?;
        log_died(died);
    }
    tx.commit().await?;
    Ok(found.and_then(Matched::from_row))
}

/// The user's code of `purpose` if `code`, sent to `to`, is it (the reauthentication nonce,
/// checked for the signed-in user): like [`find_by_code`], guesses one at a time for the user,
/// a wrong one counted against that code (which dies at the limit), committed whatever the
/// outcome.
pub async fn find_users_code(
    codes: &Codes,
    user_id: Uuid,
    purpose: Purpose,
    to: &Identifier,
    code: &str,
) -> Result<Option<Matched>> {
    find_users_code_judged(codes, user_id, purpose, |row| matches(&row.token_hash, to, code)).await
}

/// [`find_users_code`] for a code a gateway made and checked itself (Twilio Verify):
/// `accepted` is its answer; the stored code keeps the nonce single-use and expiring.
pub async fn find_users_code_checked_by_gateway(
    codes: &Codes,
    user_id: Uuid,
    purpose: Purpose,
    accepted: bool,
) -> Result<Option<Matched>> {
    find_users_code_judged(codes, user_id, purpose, |_| accepted).await
}

async fn find_users_code_judged(
    codes: &Codes,
    user_id: Uuid,
    purpose: Purpose,
    is_it: impl FnOnce(&OneTimeTokenRow) -> bool,
) -> Result<Option<Matched>> {
    let mut tx = codes.db.begin().await?;
    one_time_tokens::lock_guessing(&mut *tx, &user_id.to_string()).await?;
    let Some(row) = one_time_tokens::find_for_user(&mut *tx, user_id, purpose.token_type()).await? else {
        return Ok(None);
    };
    let matched = is_it(&row);
    if !matched {
        let died = one_time_tokens::count_failure_for_user(&mut *tx, user_id, purpose.token_type(), codes.max_attempts)
            .await?;
        log_died(died);
    }
    tx.commit().await?;
    Ok(if matched { Matched::from_row(row) } else { None })
}

/// Locks the code's user, then the code, if it is still live: not used (deleted), not
/// replaced by a newer code, under the attempt limit. In that order, as everywhere else
/// (issuing locks the user, then writes the code), so the two cannot deadlock. Of concurrent
/// uses of one code the first gets it; the others wait for the user and then find it gone.
pub async fn lock_for_use(conn: &mut PgConnection, codes: &Codes, code: &Matched) -> Result<Option<UserRow>> {
    let Some(user) = users::lock(&mut *conn, code.user_id).await? else {
        return Ok(None);
    };
    let live = one_time_tokens::lock_live(&mut *conn, code.id, &code.hash, codes.max_attempts).await?;
    Ok(live.then_some(user))
}

/// Whether a locked code still counts for its (locked) user: sent to the address or number
/// that is still theirs for its purpose, and not past its lifetime.
pub fn is_usable(codes: &Codes, code: &Matched, user: &UserRow) -> bool {
    code.purpose.is_current(user, &code.to)
        && !is_expired(code.purpose.sent_at(user), Utc::now(), codes.lifetime(&code.to))
}
