//! `_auth_one_time_tokens`: at most one live token per user and kind; stored as the hash
//! a link carries (see `auth::codes`), with the number of wrong codes typed in for it.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

/// GoTrue's one-time token kinds (`models.OneTimeTokenType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Confirmation,
    Recovery,
    EmailChangeNew,
    EmailChangeCurrent,
    PhoneChange,
    Reauthentication,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Confirmation => "confirmation_token",
            TokenType::Recovery => "recovery_token",
            TokenType::EmailChangeNew => "email_change_token_new",
            TokenType::EmailChangeCurrent => "email_change_token_current",
            TokenType::PhoneChange => "phone_change_token",
            TokenType::Reauthentication => "reauthentication_token",
        }
    }

    pub fn parse(raw: &str) -> Option<TokenType> {
        [
            TokenType::Confirmation,
            TokenType::Recovery,
            TokenType::EmailChangeNew,
            TokenType::EmailChangeCurrent,
            TokenType::PhoneChange,
            TokenType::Reauthentication,
        ]
        .into_iter()
        .find(|t| t.as_str() == raw)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct OneTimeTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_type: String,
    pub token_hash: String,
    pub relates_to: String,
    pub created_at: DateTime<Utc>,
}

impl OneTimeTokenRow {
    pub fn kind(&self) -> Option<TokenType> {
        TokenType::parse(&self.token_type)
    }
}

fn names(types: &[TokenType]) -> Vec<&'static str> {
    types.iter().map(|t| t.as_str()).collect()
}

/// Stores a user's token of one kind, replacing the previous one. Confirmation tokens go
/// through [`upsert_confirmation`], which also records what they confirm.
pub async fn upsert(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    token_type: TokenType,
    token_hash: &str,
    relates_to: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into _auth_one_time_tokens (user_id, token_type, token_hash, relates_to) values ($1, $2, $3, lower($4)) \
         on conflict (user_id, token_type) do update set token_hash = excluded.token_hash, \
             failed_attempts = 0, \
             relates_to = excluded.relates_to, created_at = now(), updated_at = now()",
    )
    .bind(user_id)
    .bind(token_type.as_str())
    .bind(token_hash)
    .bind(relates_to)
    .execute(db)
    .await?;
    Ok(())
}

/// What following a confirmation link approves besides the address (the columns
/// `confirms_account` and `confirms_password_hash`; see `auth::proven_address`).
#[derive(Clone, PartialEq, Eq)]
pub enum Confirms {
    /// Only that the address is the clicker's: the account is handed to them, and whatever
    /// nobody proved goes. `password_hash` is the password the confirmation sets, if any.
    Address { password_hash: Option<String> },
    /// The account as it stands: the request that mailed the link made it so.
    Account,
}

impl Default for Confirms {
    /// The safe choice for a token whose sender did not say.
    fn default() -> Self {
        Confirms::Address { password_hash: None }
    }
}

impl Confirms {
    fn from_columns((account, password_hash): (bool, Option<String>)) -> Confirms {
        if account {
            Confirms::Account
        } else {
            Confirms::Address { password_hash }
        }
    }
}

/// Never prints the hash.
impl std::fmt::Debug for Confirms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Confirms::Address { password_hash } => f
                .debug_struct("Address")
                .field("password", &password_hash.as_ref().map(|_| "<hash>"))
                .finish(),
            Confirms::Account => f.write_str("Account"),
        }
    }
}

/// Stores the user's confirmation token, replacing the previous one and what it confirmed.
pub async fn upsert_confirmation(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    token_hash: &str,
    relates_to: &str,
    confirms: &Confirms,
) -> sqlx::Result<()> {
    let (account, password_hash) = match confirms {
        Confirms::Address { password_hash } => (false, password_hash.as_deref()),
        Confirms::Account => (true, None),
    };
    sqlx::query(
        "insert into _auth_one_time_tokens (user_id, token_type, token_hash, relates_to, confirms_account, \
             confirms_password_hash) values ($1, 'confirmation_token', $2, lower($3), $4, $5) \
         on conflict (user_id, token_type) do update set token_hash = excluded.token_hash, \
             failed_attempts = 0, \
             relates_to = excluded.relates_to, confirms_account = excluded.confirms_account, \
             confirms_password_hash = excluded.confirms_password_hash, created_at = now(), updated_at = now()",
    )
    .bind(user_id)
    .bind(token_hash)
    .bind(relates_to)
    .bind(account)
    .bind(password_hash)
    .execute(db)
    .await?;
    Ok(())
}

/// What the confirmation token `token_id` confirms (`None`: no such token).
pub async fn confirms_of(db: impl PgExecutor<'_>, token_id: Uuid) -> sqlx::Result<Option<Confirms>> {
    let row: Option<(bool, Option<String>)> = sqlx::query_as(
        "select confirms_account, confirms_password_hash from _auth_one_time_tokens \
         where id = $1 and token_type = 'confirmation_token'",
    )
    .bind(token_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Confirms::from_columns))
}

/// What the user's pending confirmation token confirms (`None`: there is none).
pub async fn pending_confirms(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<Confirms>> {
    let row: Option<(bool, Option<String>)> = sqlx::query_as(
        "select confirms_account, confirms_password_hash from _auth_one_time_tokens \
         where user_id = $1 and token_type = 'confirmation_token'",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Confirms::from_columns))
}

/// The token an email link carries.
pub async fn find_by_hash(
    db: impl PgExecutor<'_>,
    token_hash: &str,
    types: &[TokenType],
) -> sqlx::Result<Option<OneTimeTokenRow>> {
    sqlx::query_as(
        "select id, user_id, token_type, token_hash, relates_to, created_at from _auth_one_time_tokens \
         where token_hash = $1 and token_type = any($2) limit 1",
    )
    .bind(token_hash)
    .bind(names(types))
    .fetch_optional(db)
    .await
}

/// The tokens sent to an address; the caller checks a typed-in code against them.
pub async fn find_by_address(
    db: impl PgExecutor<'_>,
    relates_to: &str,
    types: &[TokenType],
) -> sqlx::Result<Vec<OneTimeTokenRow>> {
    sqlx::query_as(
        "select id, user_id, token_type, token_hash, relates_to, created_at from _auth_one_time_tokens \
         where relates_to = lower($1) and token_type = any($2) order by created_at desc",
    )
    .bind(relates_to)
    .bind(names(types))
    .fetch_all(db)
    .await
}

pub async fn find_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    token_type: TokenType,
) -> sqlx::Result<Option<OneTimeTokenRow>> {
    sqlx::query_as(
        "select id, user_id, token_type, token_hash, relates_to, created_at from _auth_one_time_tokens \
         where user_id = $1 and token_type = $2",
    )
    .bind(user_id)
    .bind(token_type.as_str())
    .fetch_optional(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, user_id: Uuid, token_type: TokenType) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("delete from _auth_one_time_tokens where user_id = $1 and token_type = $2")
            .bind(user_id)
            .bind(token_type.as_str())
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// GoTrue's `ClearAllOneTimeTokensForUser`, run after every successful verification.
pub async fn delete_all_for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from _auth_one_time_tokens where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected())
}

/// The class (first key) of the advisory locks taken by [`lock_guessing`], so that they cannot
/// meet another use of advisory locks in the database ("LKOT").
const GUESSING_LOCK_CLASS: i32 = 0x4c4b_4f54;

/// Serialises the checking of typed-in codes for one `key` (an address; a user id for the
/// reauthentication nonce) until the transaction ends: each guess is compared with the tokens
/// as the guesses before it left them, so a burst of concurrent guesses cannot try more codes
/// than the attempt limit allows. Only the short code-checking transactions take this lock,
/// and they wait for no row lock while holding it (see [`count_failure_at_address`]), so it
/// cannot close a deadlock with the row locks of other transactions.
pub async fn lock_guessing(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext(lower($2)))")
        .bind(GUESSING_LOCK_CLASS)
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Counts a wrong code against every token of `types` sent to `address`; a token whose count
/// reaches `max_attempts` is deleted instead. Rows another transaction holds (a verification
/// or a new code in progress, which end them) are skipped rather than waited for, so the
/// caller never waits for a row lock while it holds [`lock_guessing`]. Returns the number of
/// tokens deleted. (Postgres runs both data-modifying parts of the statement in full, whether
/// or not the final select reads them.)
pub async fn count_failure_at_address(
    db: impl PgExecutor<'_>,
    address: &str,
    types: &[TokenType],
    max_attempts: i32,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "with hit as ( \
             select id, failed_attempts + 1 >= $3 as dead from _auth_one_time_tokens \
             where relates_to = lower($1) and token_type = any($2) for update skip locked), \
         deleted as (delete from _auth_one_time_tokens where id in (select id from hit where dead) returning id), \
         counted as (update _auth_one_time_tokens set failed_attempts = failed_attempts + 1, updated_at = now() \
             where id in (select id from hit where not dead)) \
         select count(*) from deleted",
    )
    .bind(address)
    .bind(names(types))
    .bind(max_attempts)
    .fetch_one(db)
    .await
}

/// [`count_failure_at_address`] for the user's token of one kind (the reauthentication nonce).
pub async fn count_failure_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    token_type: TokenType,
    max_attempts: i32,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "with hit as ( \
             select id, failed_attempts + 1 >= $3 as dead from _auth_one_time_tokens \
             where user_id = $1 and token_type = $2 for update skip locked), \
         deleted as (delete from _auth_one_time_tokens where id in (select id from hit where dead) returning id), \
         counted as (update _auth_one_time_tokens set failed_attempts = failed_attempts + 1, updated_at = now() \
             where id in (select id from hit where not dead)) \
         select count(*) from deleted",
    )
    .bind(user_id)
    .bind(token_type.as_str())
    .bind(max_attempts)
    .fetch_one(db)
    .await
}

/// Locks a token found earlier, for the verification that uses it, if it is still live: not
/// used (deleted), not replaced by a newer code, and under the attempt limit. Of concurrent
/// verifications of one token, the first holds this lock until it commits, having deleted the
/// token; the others then find nothing.
pub async fn lock_live(db: impl PgExecutor<'_>, id: Uuid, token_hash: &str, max_attempts: i32) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "select 1 from _auth_one_time_tokens where id = $1 and token_hash = $2 and failed_attempts < $3 for update",
    )
    .bind(id)
    .bind(token_hash)
    .bind(max_attempts)
    .fetch_optional(db)
    .await?
    .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_never_prints_the_password_hash() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let printed = format!(
            "{:?}",
            Confirms::Address {
                password_hash: Some(hash.to_owned())
            }
        );
        assert!(!printed.contains("argon2"), "{printed}");
        assert_eq!(Confirms::default(), Confirms::Address { password_hash: None });
        assert_eq!(Confirms::from_columns((true, None)), Confirms::Account);
    }
}
