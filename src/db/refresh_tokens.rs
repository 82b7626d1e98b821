//! `_auth_refresh_tokens`: rows hold only `hex(sha256(token))`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Row};
use uuid::Uuid;

use crate::db::audit;
use crate::db::columns::{Columns, read_in_order};
use crate::db::identities::{IdentityRow, identities_json};
use crate::db::users::current::UserView;
use crate::db::users::{UserRow, user_columns};

/// A presented refresh token with the state of its session, read under a row lock on the
/// session so that concurrent refreshes of one session run one after the other, together with
/// everything the answer needs (the user and their identities, the session's aal and amr).
#[derive(Debug, Clone, FromRow)]
pub struct LockedToken {
    pub token_hash: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub counter: i64,
    pub revoked: bool,
    pub token_updated_at: DateTime<Utc>,
    pub session_counter: i64,
    pub session_not_after: Option<DateTime<Utc>>,
    pub session_aal: String,
    pub session_amr: Value,
    /// The version of the session row read (its `xmin`): any change to the session since
    /// (a rotation, an MFA step up or down, its end) gives it another one.
    pub session_version: String,
    #[sqlx(flatten)]
    pub user: UserRow,
    pub identities: Json<Vec<IdentityRow>>,
}

/// The read of a presented refresh token: the token, its session (`for update of s` when
/// locking), the user and the user's identities. A token's user always exists (tokens are
/// deleted with their user), so the join cannot lose a token. The user row is read at the
/// statement's snapshot, like the token row.
macro_rules! token_with_session {
    ($lock:literal) => {
        concat!(
            "select l.*, ",
            user_columns!(),
            ", ",
            identities_json!("l.user_id"),
            " as identities \
             from (select t.token_hash, t.user_id, t.session_id, t.counter, t.revoked, \
                     t.updated_at as token_updated_at, s.refresh_token_counter as session_counter, \
                     s.not_after as session_not_after, s.aal as session_aal, s.amr as session_amr, \
                     s.xmin::text as session_version \
                   from _auth_refresh_tokens t join _auth_sessions s on s.id = t.session_id \
                   where t.token_hash = $1",
            $lock,
            ") l join _auth_users on _auth_users.id = l.user_id"
        )
    };
}

/// One round trip: the token and its session (locked), the user and the user's identities.
pub async fn find_and_lock_session(db: impl PgExecutor<'_>, token_hash: &str) -> sqlx::Result<Option<LockedToken>> {
    sqlx::query_as(token_with_session!(" for update of s"))
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// The row of [`rotate_live`], kept as Postgres sent it: its answer is written straight from
/// it ([`RotationRow::user`]), as `GET /user`'s is (`db::users::current`).
pub struct RotationRow(PgRow);

impl RotationRow {
    /// Whether the statement rotated the chain.
    pub fn rotated(&self) -> sqlx::Result<bool> {
        self.0.try_get("rotated")
    }

    /// What the new access token needs: a few columns, without the identities and factors.
    pub fn claims(&self) -> sqlx::Result<ClaimsView<'_>> {
        ClaimsView::read(&self.0)
    }

    /// The user with their identities, for the answer.
    pub fn user(&self) -> sqlx::Result<UserView<'_>> {
        UserView::read(&self.0)
    }
}

/// The session and the user's columns an access token takes, borrowed from the row. The
/// metadata are parsed, as the token's claims hold them.
pub struct ClaimsView<'r> {
    pub session_id: Uuid,
    pub session_aal: &'r str,
    pub session_amr: Json<&'r RawValue>,
    pub id: Uuid,
    pub aud: &'r str,
    pub role: &'r str,
    pub email: Option<&'r str>,
    pub raw_app_meta_data: Json<Value>,
    pub raw_user_meta_data: Json<Value>,
    pub phone: Option<&'r str>,
    pub is_anonymous: bool,
}

impl<'r> ClaimsView<'r> {
    /// The columns in the order `token_with_session!` lists them ([`Columns`]).
    fn read(row: &'r PgRow) -> sqlx::Result<Self> {
        let mut columns = Columns::of(row);
        read_in_order!(columns: session_id, session_aal, session_amr, id, aud, role, email);
        read_in_order!(columns: raw_app_meta_data, raw_user_meta_data, phone, is_anonymous);
        Ok(ClaimsView {
            session_id,
            session_aal,
            session_amr,
            id,
            aud,
            role,
            email,
            raw_app_meta_data,
            raw_user_meta_data,
            phone,
            is_anonymous,
        })
    }
}

/// The refresh grant's common case in one statement: reads the token hashed `presented_hash`
/// as [`find_and_lock_session`] does, without the lock, and rotates its session's chain to the
/// token hashed `next_hash` — with the `token_refreshed` entry, as [`rotate_and_record`] does —
/// only when all of these hold at the statement's snapshot:
///
/// - the token's row stands at `position` (the session and number the token names, see
///   `auth::refresh::position`), is not revoked, and is its session's live token;
/// - the user is not banned and the session not past its `not_after` (by the database's clock);
/// - the session row is still the version read when the update gets its lock. Concurrent
///   rotations queue on that lock, and Postgres checks the condition again on the version
///   left by the one before, so a rotation, MFA step or sign-out in between makes the
///   update, and with it the whole rotation, skip the session.
///
/// `None` when no token has that hash. Otherwise the row as read, and whether it rotated
/// ([`RotationRow::rotated`]); when it did not, the caller decides on the locking path.
pub async fn rotate_live(
    db: impl PgExecutor<'_>,
    presented_hash: &str,
    position: (Uuid, i64),
    next_hash: &str,
    ip: &str,
) -> sqlx::Result<Option<RotationRow>> {
    let (session_id, counter) = position;
    let query = sqlx::query(concat!(
        "with found as (",
        token_with_session!(""),
        "), moved as ( \
             update _auth_sessions set refresh_token_counter = $3 + 1, refreshed_at = now(), updated_at = now() \
             from found \
             where _auth_sessions.id = $2 and found.session_id = $2 and found.counter = $3 \
               and found.session_counter = $3 and not found.revoked \
               and _auth_sessions.xmin::text = found.session_version \
               and (found.banned_until is null or found.banned_until <= now()) \
               and (found.session_not_after is null or now() <= found.session_not_after) \
             returning _auth_sessions.id \
         ), revoked as ( \
             update _auth_refresh_tokens set revoked = true, updated_at = now() \
             where session_id = (select id from moved) and revoked = false \
         ), recorded as ( \
             insert into _auth_audit_log (id, payload, ip_address) select $5, ",
        audit::user_payload_sql!("found", "$6", "$7"),
        ", $8 from found where exists (select 1 from moved) \
         ), inserted as ( \
             insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent) \
             select $4, found.user_id, $2, $3 + 1, $1 from found where exists (select 1 from moved) \
         ) \
         select found.*, exists (select 1 from moved) as rotated from found"
    ));
    let query = query
        .bind(presented_hash)
        .bind(session_id)
        .bind(counter)
        .bind(next_hash);
    let row = audit::bind_user_action(query, audit::Action::TokenRefreshed, ip)
        .fetch_optional(db)
        .await?;
    Ok(row.map(RotationRow))
}

/// Rotation: every live token of the session is revoked, the session's counter moves on and
/// the new token is stored, with the audit entry that records it, in one statement.
pub async fn rotate_and_record(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    user_id: Uuid,
    parent_hash: &str,
    new_hash: &str,
    new_counter: i64,
    entry: &audit::Entry<'_>,
) -> sqlx::Result<()> {
    let query = sqlx::query(concat!(
        "with revoked as ( \
             update _auth_refresh_tokens set revoked = true, updated_at = now() \
             where session_id = $1 and revoked = false \
         ), moved as ( \
             update _auth_sessions set refresh_token_counter = $5, refreshed_at = now(), updated_at = now() \
             where id = $1 \
         ), recorded as (",
        audit::insert_entry_sql!("$6", "$7", "$8"),
        ") \
         insert into _auth_refresh_tokens (token_hash, user_id, session_id, counter, parent) \
         values ($4, $2, $1, $5, $3)",
    ));
    let query = query
        .bind(session_id)
        .bind(user_id)
        .bind(parent_hash)
        .bind(new_hash)
        .bind(new_counter);
    entry.bind(query).execute(db).await?;
    Ok(())
}

#[derive(Debug, FromRow)]
pub struct CurrentAndPresented {
    /// The session's current token is stored and not revoked.
    pub current_is_live: bool,
    /// The presented token is still stored.
    pub presented_exists: bool,
}

/// Whether the token hashed `current_hash` is the live one of its session, and whether the
/// token hashed `presented_hash` still exists, at this statement's snapshot (newer than the
/// locking read's, which a concurrent change of the session may have outdated).
pub async fn current_and_presented(
    db: impl PgExecutor<'_>,
    current_hash: &str,
    presented_hash: &str,
) -> sqlx::Result<CurrentAndPresented> {
    sqlx::query_as(
        "select exists (select 1 from _auth_refresh_tokens where token_hash = $1 and revoked = false) \
                    as current_is_live, \
                exists (select 1 from _auth_refresh_tokens where token_hash = $2) as presented_exists",
    )
    .bind(current_hash)
    .bind(presented_hash)
    .fetch_one(db)
    .await
}
