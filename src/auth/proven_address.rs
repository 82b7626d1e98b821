//! What proving the address of an unconfirmed account does to it (issue #14).
//!
//! Anyone can put someone else's address on an account that waits for confirmation: sign up
//! with it and a password of their own, or sign in with a provider that does not vouch for it.
//! When the mailbox owner later proves the address (a mailed link or code, or a provider that
//! verified it), the account becomes theirs, and nothing that someone who never proved the
//! address added may survive: otherwise the attacker signs in again with their identity or
//! password once the owner has confirmed, and reads whatever the owner puts there.
//!
//! GoTrue's `RemoveUnconfirmedIdentities` runs only when an OAuth sign-in or a sign-up adds an
//! identity to such an account. Latchkey claims the account on every proof, and further: the
//! other identities go (unverified provider identities too, even the one whose sign-in sent the
//! confirmation mail: the owner links it again once signed in), every session ends, a password
//! set before the proof goes unless the proof carries one, and `user_metadata` becomes the
//! confirming identity's. Confirmed accounts are never touched.
//!
//! The one kind of link that keeps the account as it stands is one whose sender made it so
//! ([`Confirms::Account`]): the confirmation of the sign-up that created the account (its
//! password and metadata stay, as in GoTrue), of an admin-made account, or of an address the
//! account's signed-in holder added.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::identities::refresh_providers;
use crate::db::audit::{self, Action};
use crate::db::identities::{self, IdentityRow};
use crate::db::one_time_tokens::{self, Confirms};
use crate::db::sessions;
use crate::db::users::{self, UserRow};
use crate::error::Result;

/// How the address was proven.
#[derive(Debug)]
pub enum Proof<'a> {
    /// A link or code mailed to it. `password_hash`: the password the mail's token sets (the
    /// one a repeated sign-up asked for), if any.
    Mailbox { password_hash: Option<String> },
    /// A provider that verified it, through this identity of the account.
    Provider(&'a IdentityRow),
}

/// A link or code mailed to `user`'s address was followed; `confirms` is what its token
/// confirms besides the address (a magic link or recovery link: the address alone). `user`
/// must be locked by the caller.
pub async fn confirm_by_mail(conn: &mut PgConnection, user: &UserRow, confirms: Confirms, ip: &str) -> Result<UserRow> {
    match confirms {
        _ if user.email_confirmed_at.is_some() => confirm_as_is(conn, user, ip).await,
        Confirms::Account => confirm_as_is(conn, user, ip).await,
        Confirms::Address { password_hash } => {
            claim_account_for_proven_address(conn, user, Proof::Mailbox { password_hash }, ip).await
        }
    }
}

/// GoTrue's `signupVerify` / `User.Confirm`: the address is confirmed, nothing else changes.
async fn confirm_as_is(conn: &mut PgConnection, user: &UserRow, ip: &str) -> Result<UserRow> {
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(user, Action::UserSignedUp, Some(json!({ "provider": "email" })), ip),
    )
    .await?;
    let confirmed = users::confirm_email(&mut *conn, user.id).await?;
    identities::mark_email_verified(&mut *conn, user.id, confirmed.email_or_empty()).await?;
    Ok(confirmed)
}

/// Hands the unconfirmed account `user` (locked by the caller) to whoever just proved its
/// address, in the caller's transaction: every identity but the confirming one is deleted
/// (for a mailbox proof that is the `email` identity, made if missing), the password becomes
/// the proof's (none for a provider), `user_metadata` the confirming identity's claims, every
/// session and one-time token of the account ends, `app_metadata.providers` is brought up to
/// date and the address confirmed. The caller starts the new session.
pub async fn claim_account_for_proven_address(
    conn: &mut PgConnection,
    user: &UserRow,
    proof: Proof<'_>,
    ip: &str,
) -> Result<UserRow> {
    let (confirming, password_hash) = match proof {
        Proof::Mailbox { password_hash } => (email_identity(conn, user).await?, password_hash),
        Proof::Provider(identity) => (identity.clone(), None),
    };
    let removed = identities::delete_all_except(&mut *conn, user.id, confirming.id).await?;
    let ended_sessions = sessions::delete_all_for_user(&mut *conn, user.id).await?;
    // Links mailed before the proof were asked for by anyone; the caller's own token goes too.
    one_time_tokens::delete_all_for_user(&mut *conn, user.id).await?;
    users::claim(&mut *conn, user.id, password_hash.as_deref(), &confirming.identity_data).await?;
    let claimed = refresh_providers(conn, user.id).await?;

    // GoTrue's action names: each identity removed is `identity_unlinked`, the confirmation
    // `user_signedup`; the traits say what else went.
    for identity in &removed {
        audit::insert(
            &mut *conn,
            audit::Entry::identity(&claimed, Action::IdentityUnlinked, identity, ip),
        )
        .await?;
    }
    let password_removed = user.encrypted_password.is_some() && user.encrypted_password != password_hash;
    let traits = json!({
        "provider": confirming.provider,
        "ended_sessions": ended_sessions,
        "password_removed": password_removed,
    });
    audit::insert(
        &mut *conn,
        audit::Entry::by_user(&claimed, Action::UserSignedUp, Some(traits), ip),
    )
    .await?;
    Ok(claimed)
}

/// The account's `email` identity, made if missing, with nothing in it but what the proof
/// established: whoever created it may have put anything else there.
async fn email_identity(conn: &mut PgConnection, user: &UserRow) -> Result<IdentityRow> {
    let claims = json!({
        "sub": user.id.to_string(),
        "email": user.email_or_empty(),
        "email_verified": true,
        "phone_verified": false,
    });
    Ok(
        match identities::email_identity_for_update(&mut *conn, user.id).await? {
            Some(identity) => identities::refresh_data(&mut *conn, identity.id, &claims).await?,
            None => identities::insert(&mut *conn, user.id, "email", &user.id.to_string(), &claims).await?,
        },
    )
}

/// What a confirmation mailed again (`/resend`, an admin's `signup` link for an unconfirmed
/// account) confirms: what the pending one did. Without one, an account that was never sent a
/// confirmation and has no provider identity was made by an admin (every self-service path
/// that leaves an address unconfirmed mails a confirmation in the same transaction, and the
/// address of a provider identity was never checked), so the link confirms it as it stands;
/// any other proves the address alone. Locks the user row, so that a sign-up racing this
/// cannot slip in between the read and the new token.
pub async fn confirms_again(conn: &mut PgConnection, user_id: Uuid) -> Result<Confirms> {
    let Some(user) = users::lock(&mut *conn, user_id).await? else {
        return Ok(Confirms::default());
    };
    if let Some(pending) = one_time_tokens::pending_confirms(&mut *conn, user.id).await? {
        return Ok(pending);
    }
    let identities = identities::for_user(&mut *conn, user.id).await?;
    let admin_made = user.confirmation_sent_at.is_none()
        && identities
            .iter()
            .all(|identity| matches!(identity.provider.as_str(), "email" | "phone"));
    Ok(if admin_made {
        Confirms::Account
    } else {
        Confirms::default()
    })
}
