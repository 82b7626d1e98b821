//! Keeping a user true to their identities when they change: GoTrue's
//! `UpdateUserEmailFromIdentities` (the email a user is left with when an identity is unlinked,
//! or linked to a user who has no email) and `UpdateAppMetaDataProviders`.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::identities::{self, IdentityRow};
use crate::db::users::{self, UserRow};
use crate::db::{is_unique_violation, one_time_tokens};
use crate::error::{Error, ErrorCode, Result};

/// Linking and unlinking identities by hand (`/user/identities/...`) needs
/// `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`; GoTrue answers 404 without it.
pub fn require_manual_linking(enabled: bool) -> Result<()> {
    if enabled {
        return Ok(());
    }
    Err(Error::not_found(
        ErrorCode::ManualLinkingDisabled,
        "Manual linking is disabled",
    ))
}

/// The user keeps their email while one of their identities still carries it; otherwise it
/// becomes the email of the most trusted identity whose address no other account holds.
/// With none such the answer is `conflict()`, which each caller words the way GoTrue does
/// there. Returns the user as they now are.
pub async fn update_from_identities(
    conn: &mut PgConnection,
    user: UserRow,
    mailer_autoconfirm: bool,
    conflict: fn() -> Error,
) -> Result<UserRow> {
    let owned = identities::for_user(&mut *conn, user.id).await?;
    let owned: Vec<&IdentityRow> = owned.iter().collect();
    if keeps_email(user.email.as_deref(), &owned) {
        return Ok(user);
    }
    for candidate in by_preference(&owned) {
        let email = email_of(candidate);
        // GoTrue looks for the address among users of the same `aud`; Latchkey's unique index
        // spans every audience, so any holder counts (else the update below would fail).
        if let Some(address) = email
            && users::email_taken(&mut *conn, address, user.id).await?
        {
            continue;
        }
        // An unverified address stays confirmed only where sign-ups are confirmed without
        // proof anyway (GOTRUE_MAILER_AUTOCONFIRM), as in GoTrue.
        let confirmed = email.is_some() && (is_verified(candidate) || mailer_autoconfirm);
        let updated = match users::replace_email(&mut *conn, user.id, email, confirmed).await {
            // Someone took the address since the check above.
            Err(err) if is_unique_violation(&err, "_auth_users_email_key") => return Err(conflict()),
            other => other?,
        };
        // Links and codes mailed to the old address must not work for the new one.
        one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
        return Ok(updated);
    }
    Err(conflict())
}

fn email_of(identity: &IdentityRow) -> Option<&str> {
    identity.email.as_deref().filter(|e| !e.is_empty())
}

fn is_verified(identity: &IdentityRow) -> bool {
    identity.identity_data.get("email_verified").and_then(Value::as_bool) == Some(true)
}

/// Whether an identity still has the user's email (or, for a user without one, no email
/// either). GoTrue compares exactly; identity emails are stored lower-cased, so Latchkey
/// ignores case, which also keeps an imported mixed-case address from counting as taken by
/// its own user.
fn keeps_email(current: Option<&str>, left: &[&IdentityRow]) -> bool {
    let current = current.filter(|e| !e.is_empty()).map(str::to_lowercase);
    left.iter().any(|i| email_of(i).map(str::to_lowercase) == current)
}

/// GoTrue's order of preference: identities whose provider verified the email, then those
/// with an unverified email, then those without one; oldest first within each.
fn by_preference<'a>(left: &[&'a IdentityRow]) -> Vec<&'a IdentityRow> {
    let rank = |i: &IdentityRow| match (email_of(i), is_verified(i)) {
        (None, _) => 2,
        (Some(_), false) => 1,
        (Some(_), true) => 0,
    };
    let mut sorted = left.to_vec();
    sorted.sort_by_key(|i| (rank(i), i.created_at, i.id));
    sorted
}

/// GoTrue's `UpdateAppMetaDataProviders`: `app_metadata.providers` lists the user's identity
/// providers, oldest first, without repeats, and `app_metadata.provider` is the first of them
/// (left alone when there is none).
pub async fn refresh_providers(conn: &mut PgConnection, user_id: Uuid) -> Result<UserRow> {
    let mut providers: Vec<String> = Vec::new();
    for identity in identities::for_user(&mut *conn, user_id).await? {
        if !providers.contains(&identity.provider) {
            providers.push(identity.provider);
        }
    }
    let mut patch = json!({ "providers": providers });
    if let Some(first) = providers.first() {
        patch["provider"] = json!(first);
    }
    Ok(users::merge_app_metadata(&mut *conn, user_id, &patch).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use serde_json::json;
    use uuid::Uuid;

    fn identity(provider: &str, email: Option<&str>, verified: Option<bool>, age_minutes: i64) -> IdentityRow {
        let mut data = json!({ "sub": "1" });
        if let Some(email) = email {
            data["email"] = json!(email);
        }
        if let Some(verified) = verified {
            data["email_verified"] = json!(verified);
        }
        let created = Utc::now() - Duration::minutes(age_minutes);
        IdentityRow {
            id: Uuid::new_v4(),
            provider_id: "1".into(),
            user_id: Uuid::nil(),
            identity_data: data,
            provider: provider.into(),
            last_sign_in_at: None,
            created_at: created,
            updated_at: created,
            email: email.map(str::to_lowercase),
        }
    }

    #[test]
    fn verified_emails_come_first_then_unverified_then_none_oldest_first() {
        let none = identity("phone", None, None, 50);
        let unverified_old = identity("github", Some("a@example.com"), Some(false), 40);
        let missing_flag = identity("github", Some("b@example.com"), None, 30);
        let verified_new = identity("google", Some("c@example.com"), Some(true), 10);
        let verified_old = identity("google", Some("d@example.com"), Some(true), 20);
        let left = [&none, &unverified_old, &missing_flag, &verified_new, &verified_old];
        let order: Vec<Uuid> = by_preference(&left).iter().map(|i| i.id).collect();
        assert_eq!(
            order,
            [
                verified_old.id,
                verified_new.id,
                unverified_old.id,
                missing_flag.id,
                none.id
            ]
        );
    }

    #[test]
    fn verified_means_the_boolean_true() {
        let mut odd = identity("github", Some("a@example.com"), None, 1);
        odd.identity_data["email_verified"] = json!("true");
        assert!(!is_verified(&odd));
        assert!(is_verified(&identity("github", Some("a@example.com"), Some(true), 1)));
    }

    #[test]
    fn the_email_stays_while_an_identity_carries_it() {
        let github = identity("github", Some("Ada@Example.com"), Some(true), 1);
        let phone = identity("phone", None, None, 1);
        assert!(keeps_email(Some("ada@example.com"), &[&github]));
        assert!(keeps_email(Some("ADA@example.com"), &[&github]));
        assert!(!keeps_email(Some("other@example.com"), &[&github]));
        assert!(!keeps_email(None, &[&github]));
        assert!(keeps_email(None, &[&phone]));
        assert!(keeps_email(Some(""), &[&phone]));
        assert!(!keeps_email(Some("ada@example.com"), &[&phone]));
    }
}
