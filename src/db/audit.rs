//! `_auth_audit_log`: written in the same transaction as the change it records.

use serde_json::{Value, json};
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryScalar};
use sqlx::{PgExecutor, Postgres};
use uuid::Uuid;

/// The statement that records one entry, given the numbers of its three parameters (id,
/// payload, address; bound by [`Entry::bind`]). Statements that record their change and its
/// entry in one round trip embed it as a CTE.
macro_rules! insert_entry_sql {
    ($id:literal, $payload:literal, $ip:literal) => {
        concat!(
            "insert into _auth_audit_log (id, payload, ip_address) values (",
            $id,
            ", ",
            $payload,
            ", ",
            $ip,
            ")"
        )
    };
}
pub(crate) use insert_entry_sql;

/// [`Entry::by_user`]'s payload (no traits), built by the statement from the user row it
/// reads, for a statement that records an entry before the server has seen the user. `$user`
/// names a row with the user's columns; `$action` and `$log_type` are the parameters bound by
/// [`bind_user_action`]. jsonb, as a bound [`Entry::payload`] is, so both are stored as the same
/// text.
macro_rules! user_payload_sql {
    ($user:literal, $action:literal, $log_type:literal) => {
        concat!(
            "jsonb_build_object('actor_id', ",
            $user,
            ".id, 'actor_username', coalesce(nullif(",
            $user,
            ".phone, ''), ",
            $user,
            ".email, ''), 'actor_via_sso', false, 'action', ",
            $action,
            "::text, 'log_type', ",
            $log_type,
            "::text) || case when ",
            $user,
            ".raw_user_meta_data ? 'full_name' then jsonb_build_object('actor_name', ",
            $user,
            ".raw_user_meta_data -> 'full_name') else '{}'::jsonb end"
        )
    };
}
pub(crate) use user_payload_sql;

/// GoTrue's audit actions and the log type each belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    Logout,
    TokenRefreshed,
    TokenRevoked,
    UserSignedUp,
    UserModified,
    UserUpdatePassword,
    UserRepeatedSignup,
    UserDeleted,
    UserInvited,
    UserConfirmationRequested,
    UserRecoveryRequested,
    UserReauthenticateRequested,
    IdentityLinked,
    IdentityUnlinked,
    FactorInProgress,
    FactorUnenrolled,
    ChallengeCreated,
    VerificationAttempted,
    FactorDeleted,
    FactorUpdated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::TokenRefreshed => "token_refreshed",
            Action::TokenRevoked => "token_revoked",
            Action::UserSignedUp => "user_signedup",
            Action::UserModified => "user_modified",
            Action::UserUpdatePassword => "user_updated_password",
            Action::UserRepeatedSignup => "user_repeated_signup",
            Action::UserDeleted => "user_deleted",
            Action::UserInvited => "user_invited",
            Action::UserConfirmationRequested => "user_confirmation_requested",
            Action::UserRecoveryRequested => "user_recovery_requested",
            Action::UserReauthenticateRequested => "user_reauthenticate_requested",
            Action::IdentityLinked => "identity_linked",
            Action::IdentityUnlinked => "identity_unlinked",
            // GoTrue's names for the MFA actions (`models.EnrollFactorAction` & co.).
            Action::FactorInProgress => "factor_in_progress",
            Action::FactorUnenrolled => "factor_unenrolled",
            Action::ChallengeCreated => "challenge_created",
            Action::VerificationAttempted => "verification_attempted",
            Action::FactorDeleted => "factor_deleted",
            Action::FactorUpdated => "factor_updated",
        }
    }

    fn log_type(self) -> &'static str {
        match self {
            Action::Login | Action::Logout => "account",
            Action::TokenRefreshed | Action::TokenRevoked => "token",
            Action::UserSignedUp | Action::UserDeleted | Action::UserInvited => "team",
            Action::UserModified
            | Action::UserUpdatePassword
            | Action::UserRepeatedSignup
            | Action::UserConfirmationRequested
            | Action::UserRecoveryRequested
            | Action::UserReauthenticateRequested
            // GoTrue left `identity_unlinked` out of its log-type map (so `log_type` was "")
            // until August 2026 (supabase/auth 9c45038b); it files it under "user" since, and
            // `identity_linked` (added in 2d4680ef) too.
            | Action::IdentityLinked
            | Action::IdentityUnlinked => "user",
            Action::FactorInProgress
            | Action::FactorUnenrolled
            | Action::ChallengeCreated
            | Action::VerificationAttempted
            | Action::FactorDeleted
            | Action::FactorUpdated => "factor",
        }
    }
}

pub struct Entry<'a> {
    pub actor_id: Uuid,
    pub actor_username: &'a str,
    /// The user's `full_name` metadata, whatever its JSON type (GoTrue copies it as it is).
    pub actor_name: Option<&'a Value>,
    pub action: Action,
    pub traits: Option<Value>,
    pub ip: &'a str,
}

impl<'a> Entry<'a> {
    /// An entry whose actor is an admin: the token's `sub` (nil for a service key) and role.
    pub fn by_admin(id: Uuid, role: &'a str, action: Action, traits: Value, ip: &'a str) -> Self {
        Entry {
            actor_id: id,
            actor_username: role,
            actor_name: None,
            action,
            traits: Some(traits),
            ip,
        }
    }

    /// An entry whose actor is the user themselves (everything but admin actions). Like
    /// GoTrue's `NewAuditLogEntry`, the username is the phone when the user has one, else the
    /// email.
    pub fn by_user(user: &'a crate::db::users::UserRow, action: Action, traits: Option<Value>, ip: &'a str) -> Self {
        let phone = user.phone.as_deref().filter(|p| !p.is_empty());
        Entry {
            actor_id: user.id,
            actor_username: phone.unwrap_or_else(|| user.email_or_empty()),
            actor_name: user.raw_user_meta_data.get("full_name"),
            action,
            traits,
            ip,
        }
    }

    /// `identity_linked` / `identity_unlinked`, naming the identity the way GoTrue does.
    pub fn identity(
        user: &'a crate::db::users::UserRow,
        action: Action,
        identity: &crate::db::identities::IdentityRow,
        ip: &'a str,
    ) -> Self {
        let traits = json!({
            "identity_id": identity.id,
            "provider": identity.provider,
            "provider_id": identity.provider_id,
        });
        Self::by_user(user, action, Some(traits), ip)
    }

    /// GoTrue's audit payload for this entry.
    pub fn payload(&self) -> Value {
        let mut payload = json!({
            "actor_id": self.actor_id,
            "actor_username": self.actor_username,
            "actor_via_sso": false,
            "action": self.action.as_str(),
            "log_type": self.action.log_type(),
        });
        if let Some(name) = self.actor_name {
            payload["actor_name"] = name.clone();
        }
        if let Some(traits) = &self.traits {
            payload["traits"] = traits.clone();
        }
        payload
    }

    /// Binds the entry's id, payload and address, in the order of [`insert_entry_sql`]'s
    /// parameters, as the next three parameters of `query`.
    pub fn bind<'q>(&self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        query.bind(Uuid::new_v4()).bind(self.payload()).bind(self.ip.to_owned())
    }

    /// [`Entry::bind`] for a statement that returns one value.
    pub fn bind_scalar<'q, O>(
        &self,
        query: QueryScalar<'q, Postgres, O, PgArguments>,
    ) -> QueryScalar<'q, Postgres, O, PgArguments> {
        query.bind(Uuid::new_v4()).bind(self.payload()).bind(self.ip.to_owned())
    }
}

/// Binds a new entry id, `action` and its log type (for [`user_payload_sql`]) and the
/// address, as the next four parameters of `query`.
pub fn bind_user_action<'q>(
    query: Query<'q, Postgres, PgArguments>,
    action: Action,
    ip: &str,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(Uuid::new_v4())
        .bind(action.as_str())
        .bind(action.log_type())
        .bind(ip.to_owned())
}

/// Records one entry, in the caller's transaction.
pub async fn insert(db: impl PgExecutor<'_>, entry: Entry<'_>) -> sqlx::Result<()> {
    entry
        .bind(sqlx::query(insert_entry_sql!("$1", "$2", "$3")))
        .execute(db)
        .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub payload: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub ip_address: String,
}

/// What `GET /admin/audit?query=` searches: `author:` (actor id or username), `action:` or
/// `type:` (log type).
#[derive(Debug, Clone, Copy)]
pub enum AuditFilter<'a> {
    All,
    Author(&'a str),
    Action(&'a str),
    Type(&'a str),
}

const AUDIT_WHERE: &str = "($1 = 'all') \
    or ($1 = 'author' and (payload ->> 'actor_id' = $2 or payload ->> 'actor_username' ilike $2)) \
    or ($1 = 'action' and payload ->> 'action' = $2) \
    or ($1 = 'type' and payload ->> 'log_type' = $2)";

fn filter_parts(filter: AuditFilter<'_>) -> (&'static str, &str) {
    match filter {
        AuditFilter::All => ("all", ""),
        AuditFilter::Author(v) => ("author", v),
        AuditFilter::Action(v) => ("action", v),
        AuditFilter::Type(v) => ("type", v),
    }
}

pub async fn list(
    db: impl PgExecutor<'_>,
    filter: AuditFilter<'_>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<AuditRow>> {
    let (kind, value) = filter_parts(filter);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select id, payload::jsonb as payload, created_at, ip_address from _auth_audit_log where {AUDIT_WHERE} \
         order by created_at desc, id limit $3 offset $4"
    )))
    .bind(kind)
    .bind(value)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub async fn count(db: impl PgExecutor<'_>, filter: AuditFilter<'_>) -> sqlx::Result<i64> {
    let (kind, value) = filter_parts(filter);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from _auth_audit_log where {AUDIT_WHERE}"
    )))
    .bind(kind)
    .bind(value)
    .fetch_one(db)
    .await
}
