//! Sessions: starting one (new session row, first refresh token, access token) and refreshing
//! one (rotation under a row lock).

use std::net::IpAddr;

use chrono::Utc;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::auth::access_token_hook;
use crate::auth::jwt::{AmrEntry, TokenIssuer, TokenUser};
use crate::auth::refresh::{self, RefreshKey};
use crate::config::RefreshConfig;
use crate::db::audit::{self, Action};
use crate::db::identities::IdentityRow;
use crate::db::sessions;
use crate::db::sessions::NewSession;
use crate::db::users::UserRow;
use crate::error::Error;
use crate::hooks::Hook;

mod refresh_grant;

pub use refresh_grant::{Refreshed, refresh};

/// The tokens of a session, ready to be sent.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub expires_at: i64,
}

/// What sessions need: the access-token issuer, the key refresh tokens are derived with, and
/// the rotation rules.
#[derive(Debug, Clone)]
pub struct Sessions {
    tokens: TokenIssuer,
    refresh_key: RefreshKey,
    rules: RefreshConfig,
    /// `GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_*`: changes the claims of every access token.
    access_token_hook: Option<Hook>,
}

impl Sessions {
    pub fn new(tokens: TokenIssuer, refresh_key: RefreshKey, rules: RefreshConfig) -> Sessions {
        Sessions {
            tokens,
            refresh_key,
            rules,
            access_token_hook: None,
        }
    }

    /// Every access token's claims go through `hook` before they are signed.
    pub fn with_access_token_hook(mut self, hook: Option<Hook>) -> Sessions {
        self.access_token_hook = hook;
        self
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    /// The tokens to send for a session: a new access token and `refresh_token`. With a
    /// custom access token hook, the hook runs on `conn` (the caller's transaction, so that a
    /// refused token also undoes the session change it was for); `method` is GoTrue's
    /// `authentication_method` of the hook's input.
    pub async fn tokens_for(
        &self,
        conn: &mut PgConnection,
        user: TokenUser<'_>,
        session: (Uuid, &str),
        amr: Vec<AmrEntry>,
        refresh_token: String,
        method: &str,
    ) -> Result<Tokens, Error> {
        let (session_id, aal) = session;
        let claims = self.tokens.claims(user, session_id, aal, amr);
        let minted = match &self.access_token_hook {
            None => self.tokens.sign(&claims, claims.exp),
            Some(hook) => {
                let customized = access_token_hook::customize(hook, conn, &claims, method).await?;
                self.tokens.sign(&customized, claims.exp)
            }
        }
        .map_err(Error::internal)?;
        Ok(Tokens {
            access_token: minted.token,
            refresh_token,
            expires_in: minted.expires_in,
            expires_at: minted.expires_at,
        })
    }
}

/// Who asked, for the session row and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn ip_string(&self) -> String {
        self.ip.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// Starts a session for `user` signed in with `method` (GoTrue's amr method names:
/// `password`, `anonymous`, `otp`, ...): one statement, run on the caller's connection or
/// transaction. Returns the user with `last_sign_in_at` updated, and their identities.
pub async fn start(
    conn: &mut PgConnection,
    sessions: &Sessions,
    user: &UserRow,
    method: &str,
    client: &Client,
) -> Result<(Tokens, UserRow, Vec<IdentityRow>), Error> {
    if sessions.access_token_hook.is_none() {
        return start_session(conn, sessions, user, method, client).await;
    }
    // The hook may refuse the token: then no session may remain, even when the caller runs
    // without a transaction (a savepoint when it has one).
    let mut tx = conn.begin().await?;
    let started = start_session(&mut tx, sessions, user, method, client).await?;
    tx.commit().await?;
    Ok(started)
}

async fn start_session(
    conn: &mut PgConnection,
    sessions: &Sessions,
    user: &UserRow,
    method: &str,
    client: &Client,
) -> Result<(Tokens, UserRow, Vec<IdentityRow>), Error> {
    let session_id = Uuid::new_v4();
    let amr = vec![AmrEntry {
        method: method.to_owned(),
        timestamp: Utc::now().timestamp(),
    }];
    let amr_json = serde_json::to_value(&amr).map_err(Error::internal)?;
    let refresh_token = sessions.refresh_key.token(session_id, 0);
    let ip = client.ip_string();
    let started = sessions::start(
        &mut *conn,
        &NewSession {
            id: session_id,
            user_id: user.id,
            amr: &amr_json,
            user_agent: client.user_agent.as_deref(),
            ip: client.ip,
        },
        &refresh::hash(&refresh_token),
        &audit::Entry::by_user(user, Action::Login, Some(json!({ "provider": provider_of(user) })), &ip),
    )
    .await?;
    let tokens = sessions
        .tokens_for(
            &mut *conn,
            (&started.user).into(),
            (session_id, "aal1"),
            amr,
            refresh_token,
            method,
        )
        .await?;
    // Counted when the session row is written: in the rare case that the caller's transaction
    // fails after this, one sign-in too many is counted.
    metrics::counter!("latchkey_sign_ins_total", "method" => sign_in_method(method)).increment(1);
    Ok((tokens, started.user, started.identities.0))
}

/// The metric label of an amr method: the names Latchkey writes, anything else `other` (the
/// PKCE flow's method comes from a database row).
fn sign_in_method(method: &str) -> &'static str {
    match method {
        "password" => "password",
        "otp" => "otp",
        "magiclink" => "magiclink",
        "oauth" => "oauth",
        "anonymous" => "anonymous",
        "recovery" => "recovery",
        "invite" => "invite",
        "email/signup" => "email_signup",
        "email_change" => "email_change",
        "reauthentication" => "reauthentication",
        _ => "other",
    }
}

fn provider_of(user: &UserRow) -> String {
    user.raw_app_meta_data
        .get("provider")
        .and_then(|p| p.as_str())
        .unwrap_or("anonymous")
        .to_owned()
}

/// An MFA verification of `factor_id` on the user's session `session_id`, inside the caller's
/// transaction: `method` joins the session's `amr` (replacing an older entry of it, newest
/// first), the session becomes `aal2`, and it gets a new refresh token, its only one (see
/// `db::sessions::upgrade_to_aal2`). Returns that token and the new `amr`, for
/// [`Sessions::tokens_for`] once the caller has read the user back; `None` when the session
/// has ended meanwhile.
pub async fn raise_to_aal2(
    tx: &mut PgConnection,
    sessions: &Sessions,
    user_id: Uuid,
    session_id: Uuid,
    factor_id: Uuid,
    method: &str,
) -> Result<Option<(String, Vec<AmrEntry>)>, Error> {
    let Some(locked) = sessions::lock(&mut *tx, session_id, user_id).await? else {
        return Ok(None);
    };
    let existing: Vec<AmrEntry> = serde_json::from_value(locked.amr).unwrap_or_default();
    let amr = with_method(existing, method, Utc::now().timestamp());
    let amr_json = serde_json::to_value(&amr).map_err(Error::internal)?;
    let counter = locked.refresh_token_counter + 1;
    let refresh_token = sessions.refresh_key.token(session_id, counter);
    sessions::upgrade_to_aal2(
        &mut *tx,
        session_id,
        user_id,
        factor_id,
        &amr_json,
        &refresh::hash(&refresh_token),
        counter,
    )
    .await?;
    Ok(Some((refresh_token, amr)))
}

/// `amr` with `method` done at `now`: one entry per method, as GoTrue's `mfa_amr_claims`
/// (unique per session and method), newest first.
fn with_method(mut amr: Vec<AmrEntry>, method: &str, now: i64) -> Vec<AmrEntry> {
    amr.retain(|entry| entry.method != method);
    // First, and a stable sort: within the same second the new method still comes first.
    amr.insert(
        0,
        AmrEntry {
            method: method.to_owned(),
            timestamp: now,
        },
    );
    amr.sort_by_key(|entry| std::cmp::Reverse(entry.timestamp));
    amr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(method: &str, timestamp: i64) -> AmrEntry {
        AmrEntry {
            method: method.to_owned(),
            timestamp,
        }
    }

    #[test]
    fn a_method_is_recorded_once_newest_first() {
        let amr = with_method(vec![entry("password", 100)], "totp", 200);
        assert_eq!(amr, [entry("totp", 200), entry("password", 100)]);
        let again = with_method(amr, "totp", 300);
        assert_eq!(again, [entry("totp", 300), entry("password", 100)]);
        assert_eq!(with_method(Vec::new(), "totp", 5), [entry("totp", 5)]);
        let same_second = with_method(vec![entry("password", 100)], "totp", 100);
        assert_eq!(same_second, [entry("totp", 100), entry("password", 100)]);
    }
}
