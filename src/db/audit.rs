//! `_auth_audit_log`: written in the same transaction as the change it records.

use serde_json::{Value, json};
use sqlx::PgExecutor;
use uuid::Uuid;

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
    UserConfirmationRequested,
    UserRecoveryRequested,
    UserReauthenticateRequested,
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
            Action::UserConfirmationRequested => "user_confirmation_requested",
            Action::UserRecoveryRequested => "user_recovery_requested",
            Action::UserReauthenticateRequested => "user_reauthenticate_requested",
        }
    }

    fn log_type(self) -> &'static str {
        match self {
            Action::Login | Action::Logout => "account",
            Action::TokenRefreshed | Action::TokenRevoked => "token",
            Action::UserSignedUp => "team",
            Action::UserModified
            | Action::UserUpdatePassword
            | Action::UserRepeatedSignup
            | Action::UserConfirmationRequested
            | Action::UserRecoveryRequested
            | Action::UserReauthenticateRequested => "user",
        }
    }
}

pub struct Entry<'a> {
    pub actor_id: Uuid,
    pub actor_username: &'a str,
    pub action: Action,
    pub traits: Option<Value>,
    pub ip: &'a str,
}

pub async fn insert(db: impl PgExecutor<'_>, entry: Entry<'_>) -> sqlx::Result<()> {
    let mut payload = json!({
        "actor_id": entry.actor_id,
        "actor_username": entry.actor_username,
        "actor_via_sso": false,
        "action": entry.action.as_str(),
        "log_type": entry.action.log_type(),
    });
    if let Some(traits) = entry.traits {
        payload["traits"] = traits;
    }
    sqlx::query("insert into _auth_audit_log (id, payload, ip_address) values ($1, $2, $3)")
        .bind(Uuid::new_v4())
        .bind(payload)
        .bind(entry.ip)
        .execute(db)
        .await?;
    Ok(())
}
