//! Callback → user (GoTrue's `createAccountFromExternalIdentity` and `models/linking.go`):
//! an existing identity signs its user in; otherwise a provider-**verified** email links the
//! identity to the account holding that email; anything else makes a new account, never
//! taking an address that already belongs to someone.
//!
//! An account whose address nobody had proven becomes the account of whoever a provider now
//! vouches for, and keeps nothing its earlier holders added (`auth::proven_address`).
//!
//! One deliberate difference: GoTrue counts every provider email as verified when
//! `GOTRUE_MAILER_AUTOCONFIRM` is on. That lets anyone who controls an OAuth account with an
//! unverified address take over the matching Latchkey account, so Latchkey only believes the
//! provider.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::accounts::AccountRules;
use crate::auth::email::{self, Outgoing};
use crate::auth::identities::{refresh_providers, update_from_identities};
use crate::auth::outbox::Outbox;
use crate::auth::proven_address::{self, Proof};
use crate::db::audit::{self, Action};
use crate::db::identities::IdentityRow;
use crate::db::one_time_tokens::Confirms;
use crate::db::users::{self, NewUser, UserRow};
use crate::db::{identities, is_unique_violation};
use crate::error::{Error, ErrorCode, Result};
use crate::providers::ProviderUser;

/// The outcome of a callback.
#[derive(Debug)]
pub enum Resolved {
    /// Sign this user in.
    SignedIn(Box<UserRow>),
    /// Sign this user in; the account is new (the after-user-created hook follows the commit).
    Created(Box<UserRow>),
    /// Keep what was done (the new account or identity, the confirmation mail) but end the
    /// callback with this error: GoTrue's `storage.NewCommitWithError`.
    Refused(Error),
}

/// A new account whose provider email is unverified: a confirmation mail went out and the
/// sign-in waits for it.
fn needs_verification(provider: &str) -> Resolved {
    Resolved::Refused(Error::unprocessable(
        ErrorCode::ProviderEmailNeedsVerification,
        format!("Unverified email with {provider}. A confirmation email has been sent to your {provider} email"),
    ))
}

pub async fn resolve(
    conn: &mut PgConnection,
    outbox: &Outbox,
    rules: &AccountRules,
    provider: &str,
    profile: &ProviderUser,
    redirect_to: &str,
    ip: &str,
) -> Result<Resolved> {
    if profile.subject.is_empty() {
        return Err(Error::internal("provider returned no subject"));
    }
    if let Some(identity) = identities::find_for_update(&mut *conn, provider, &profile.subject).await? {
        return sign_in_known_identity(conn, provider, profile, identity, ip).await;
    }
    let existing = match &profile.email {
        Some(email) => users::find_by_email(&mut *conn, email).await?,
        None => None,
    };
    // Locked: a confirmation or another callback for the address must not interleave with
    // what follows. (Deleted meanwhile: the address is free again.)
    let existing = match existing {
        Some(user) => users::lock(&mut *conn, user.id).await?,
        None => None,
    };
    match existing {
        // The provider vouches for the address: the identity joins the account.
        Some(user) if profile.email_verified => Ok(Resolved::SignedIn(Box::new(
            join_account(conn, user, provider, profile, ip).await?,
        ))),
        // Unverified at the provider and taken here: a separate account without the address.
        Some(_) => Ok(Resolved::Created(Box::new(
            create(conn, rules, provider, profile, None).await?,
        ))),
        None => {
            let user = create(conn, rules, provider, profile, profile.email.as_deref()).await?;
            if user.email.is_some() && user.email_confirmed_at.is_none() {
                // The link proves the address alone: the unverified identity that asked for
                // it does not survive it (issue #14; GoTrue keeps it). Its owner links it again
                // once signed in, or verifies the address at the provider first.
                send_confirmation(conn, outbox, user.id, redirect_to, Confirms::default()).await?;
                return Ok(needs_verification(provider));
            }
            Ok(Resolved::Created(Box::new(user)))
        }
    }
}

/// The provider vouches for the address of an existing account: the identity joins it.
async fn join_account(
    conn: &mut PgConnection,
    user: UserRow,
    provider: &str,
    profile: &ProviderUser,
    ip: &str,
) -> Result<UserRow> {
    let identity = identities::insert(&mut *conn, user.id, provider, &profile.subject, &profile.identity_data).await?;
    let user = if user.email_confirmed_at.is_none() {
        // Nobody had proven the address before: the account is now this identity's, and
        // whatever its earlier holders added goes, password included (issue #14).
        proven_address::claim_account_for_proven_address(conn, &user, Proof::Provider(&identity), ip).await?
    } else {
        users::merge_user_metadata(&mut *conn, user.id, &profile.identity_data).await?;
        refresh_providers(conn, user.id).await?
    };
    // Audited like manual linking (GoTrue's automatic LinkAccount does the same).
    audit::insert(
        &mut *conn,
        audit::Entry::identity(&user, Action::IdentityLinked, &identity, ip),
    )
    .await?;
    Ok(user)
}

/// An identity seen before signs its user in, its data refreshed from the provider.
async fn sign_in_known_identity(
    conn: &mut PgConnection,
    provider: &str,
    profile: &ProviderUser,
    identity: IdentityRow,
    ip: &str,
) -> Result<Resolved> {
    let identity = identities::refresh_data(&mut *conn, identity.id, &profile.identity_data).await?;
    let mut user = users::merge_user_metadata(&mut *conn, identity.user_id, &profile.identity_data).await?;
    if user.email.is_some() && user.email_confirmed_at.is_none() {
        let vouched = profile.email_verified && profile.email.as_deref() == user.email.as_deref();
        if !vouched {
            // Still waiting for the confirmation mail sent when the account was made.
            return Ok(needs_verification(provider));
        }
        // The provider now vouches for the address: the account is this identity's, and
        // nothing unproven on it survives (issue #14).
        user = proven_address::claim_account_for_proven_address(conn, &user, Proof::Provider(&identity), ip).await?;
    }
    Ok(Resolved::SignedIn(Box::new(user)))
}

/// Manual linking (`/user/identities/authorize`, GoTrue's `linkIdentityToUser`): the identity
/// joins the signed-in user who started the flow and must not belong to anyone yet. It is
/// audited as `identity_linked`; a user without an email takes one from their identities.
#[allow(clippy::too_many_arguments)]
pub async fn link_to(
    conn: &mut PgConnection,
    outbox: &Outbox,
    rules: &AccountRules,
    target: Uuid,
    provider: &str,
    profile: &ProviderUser,
    redirect_to: &str,
    ip: &str,
) -> Result<Resolved> {
    // Locked: the email taken from the identities must not race a change of the user's own.
    // A deleted user's flow goes with them (on delete cascade), so a missing user here only
    // means a deletion raced this callback.
    let user = users::lock(&mut *conn, target)
        .await?
        .ok_or_else(|| Error::unprocessable(ErrorCode::UserNotFound, "Linking target user not found"))?;
    if let Some(identity) = identities::find_for_update(&mut *conn, provider, &profile.subject).await? {
        return Err(already_linked(if identity.user_id == user.id {
            "Identity is already linked"
        } else {
            "Identity is already linked to another user"
        }));
    }
    let identity =
        match identities::insert(&mut *conn, user.id, provider, &profile.subject, &profile.identity_data).await {
            // A concurrent callback for the same provider account got there first.
            Err(err) if is_unique_violation(&err, "_auth_identities_provider_id_provider_key") => {
                return Err(already_linked("Identity is already linked"));
            }
            other => other?,
        };
    audit::insert(
        &mut *conn,
        audit::Entry::identity(&user, Action::IdentityLinked, &identity, ip),
    )
    .await?;
    let refusal = if user.email.as_deref().unwrap_or("").is_empty() {
        email_from_new_identity(conn, outbox, rules, user, provider, profile, redirect_to).await?
    } else {
        None
    };
    // GoTrue leaves `app_metadata.providers` alone when it refuses below, although the
    // identity stays linked; Latchkey keeps the list true to the identities either way.
    let user = refresh_providers(conn, target).await?;
    Ok(match refusal {
        Some(err) => Resolved::Refused(err),
        None => Resolved::SignedIn(Box::new(user)),
    })
}

fn already_linked(message: &'static str) -> Error {
    Error::unprocessable(ErrorCode::IdentityAlreadyExists, message)
}

/// A user without an email (an anonymous one, say) who links an identity takes the email of
/// their identities. An address the provider has not verified gets a confirmation mail and
/// the callback ends in 422 `email_not_confirmed`, the link kept (GoTrue's
/// `NewCommitWithError`); a verified one is confirmed and the user is no longer anonymous.
async fn email_from_new_identity(
    conn: &mut PgConnection,
    outbox: &Outbox,
    rules: &AccountRules,
    user: UserRow,
    provider: &str,
    profile: &ProviderUser,
    redirect_to: &str,
) -> Result<Option<Error>> {
    let email_exists = || {
        Error::bad_request(
            ErrorCode::EmailExists,
            "A user with this email address has already been registered",
        )
    };
    let user = update_from_identities(conn, user, rules.autoconfirm, email_exists).await?;
    if user.email.as_deref().unwrap_or("").is_empty() {
        // An identity without an email (a phone one) kept the user without one. GoTrue goes
        // on to mail or confirm the empty address; there is nothing to confirm.
        return Ok(None);
    }
    if !profile.email_verified {
        // The signed-in holder put the address on their own account: following the link
        // confirms it and changes nothing else.
        send_confirmation(conn, outbox, user.id, redirect_to, Confirms::Account).await?;
        return Ok(Some(Error::unprocessable(
            ErrorCode::EmailNotConfirmed,
            format!("Unverified email with {provider}. A confirmation email has been sent to your {provider} email"),
        )));
    }
    users::confirm_email(&mut *conn, user.id).await?;
    if user.is_anonymous {
        users::clear_anonymous(&mut *conn, user.id).await?;
    }
    Ok(None)
}

/// Mails the confirmation link of an address a provider has not verified; `confirms` is what
/// the link confirms besides the address.
async fn send_confirmation(
    conn: &mut PgConnection,
    outbox: &Outbox,
    user_id: Uuid,
    redirect_to: &str,
    confirms: Confirms,
) -> Result<()> {
    let out = Outgoing {
        redirect_to,
        ..Outgoing::default()
    };
    // Boxed as `dyn Send`: rustc cannot otherwise prove the nested future `Send` for every
    // lifetime (rust-lang/rust#102211) once it sits inside the callback.
    let sending: std::pin::Pin<Box<dyn std::future::Future<Output = Result<email::Sent>> + Send + '_>> =
        Box::pin(async move {
            email::send_confirmation(conn, outbox, user_id, email::Action::Confirmation, &out, &confirms).await
        });
    sending.await?;
    Ok(())
}

/// A new user with the provider's identity; `email` is confirmed when the provider verified it.
async fn create(
    conn: &mut PgConnection,
    rules: &AccountRules,
    provider: &str,
    profile: &ProviderUser,
    email: Option<&str>,
) -> Result<UserRow> {
    if rules.signup_disabled {
        return Err(Error::unprocessable(
            ErrorCode::SignupDisabled,
            "Signups not allowed for this instance",
        ));
    }
    let mut identity_data = profile.identity_data.clone();
    if email.is_none() {
        // The address belongs to another account; this one must not claim it anywhere.
        identity_data["email"] = Value::Null;
        identity_data["email_verified"] = json!(false);
    }
    let app_metadata = json!({ "provider": provider, "providers": [provider] });
    let new_user = NewUser {
        id: Uuid::new_v4(),
        aud: &rules.aud,
        role: &rules.role,
        email,
        phone: None,
        encrypted_password: None,
        email_confirmed: email.is_some() && profile.email_verified,
        phone_confirmed: false,
        confirmation_sent: false,
        app_metadata: &app_metadata,
        user_metadata: &identity_data,
        is_anonymous: false,
    };
    crate::auth::user_hooks::before_user_created(conn, rules.before_user_created.as_ref(), &new_user).await?;
    let user = users::insert(&mut *conn, &new_user).await?;
    identities::insert(&mut *conn, user.id, provider, &profile.subject, &identity_data).await?;
    crate::auth::accounts::count_sign_up("oauth");
    Ok(user)
}
