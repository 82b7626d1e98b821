//! Issuing a code: a fresh one replaces the user's code of the same purpose, with its count of
//! wrong guesses back at zero. Only the hash is stored; the channel sends the code.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Identifier, Purpose, generate, token_hash, with_flow_prefix};
use crate::db::one_time_tokens::{self, Confirms};
use crate::error::Result;

/// A code to issue.
#[derive(Debug)]
pub struct NewCode<'a> {
    pub user_id: Uuid,
    pub purpose: Purpose,
    /// Where it goes: the hash covers it, and only a code typed in for it matches.
    pub to: &'a Identifier,
    /// For a PKCE flow: the stored hash, and so the link, starts with `pkce_`.
    pub pkce: bool,
    /// Digits (`GOTRUE_MAILER_OTP_LENGTH` for mail).
    pub length: usize,
    /// What a confirmation code confirms besides the identifier (`auth::proven_address`);
    /// ignored for other purposes.
    pub confirms: &'a Confirms,
}

/// The code for the channel to send, and the stored hash (what a link carries).
pub struct Issued {
    pub code: String,
    pub hash: String,
}

/// Never prints the code or the hash: either lets its holder in.
impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(..)")
    }
}

/// Stores a new code, in the caller's transaction. The caller holds the user's row lock, so
/// that codes are written in the order every writer and verification keeps: the user, then
/// the code ([`super::lock_for_use`]). A confirmation code always records what it confirms,
/// so that it never inherits what the one it replaces confirmed.
pub async fn issue(conn: &mut PgConnection, new: &NewCode<'_>) -> Result<Issued> {
    issue_code(conn, new, generate(new.length)).await
}

/// [`issue`] with a code chosen by the caller: a test number's fixed code
/// (`GOTRUE_SMS_TEST_OTP`), stored hashed like any other.
pub async fn issue_code(conn: &mut PgConnection, new: &NewCode<'_>, code: String) -> Result<Issued> {
    let hash = with_flow_prefix(&token_hash(new.to, &code), new.pkce);
    let to = new.to.as_str();
    match new.purpose {
        Purpose::Confirmation => {
            one_time_tokens::upsert_confirmation(&mut *conn, new.user_id, &hash, to, new.confirms).await?;
        }
        purpose => one_time_tokens::upsert(&mut *conn, new.user_id, purpose.token_type(), &hash, to).await?,
    }
    Ok(Issued { code, hash })
}
