//! `POST /otp` and `POST /magiclink` with an email: passwordless sign-in. A known, confirmed
//! address gets a magic link (with a code); an unknown one is signed up (unless the caller
//! said not to create users) and gets the confirmation mail, which signs in just the same.

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::auth::accounts::{self, AccountRules, NewEmailAccount};
use crate::auth::email::{self, Action, Outgoing};
use crate::auth::outbox::Outbox;
use crate::auth::pkce;
use crate::auth::session::Client;
use crate::auth::user_hooks;
use crate::db::Pool;
use crate::db::audit::{self, Action as AuditAction};
use crate::db::one_time_tokens::Confirms;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// What sending a magic link needs.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub accounts: &'a AccountRules,
    pub outbox: &'a Outbox,
}

/// A request for a magic link.
#[derive(Debug)]
pub struct Request<'a> {
    /// As typed: normalised here.
    pub email: &'a str,
    /// Sign up an unknown address (`create_user`, true unless the client says otherwise).
    pub create_user: bool,
    /// `user_metadata` of a new user.
    pub data: Option<&'a Value>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    /// The validated target of the link.
    pub redirect_to: &'a str,
}

/// Sends the link, signing the address up first when it is new.
pub async fn send(deps: &Deps<'_>, client: &Client, request: &Request<'_>) -> Result<()> {
    if !deps.accounts.email_enabled {
        return Err(Error::unprocessable(
            ErrorCode::EmailProviderDisabled,
            "Email logins are disabled",
        ));
    }
    if !deps.outbox.settings().magic_link_enabled {
        return Err(Error::unprocessable(
            ErrorCode::EmailProviderDisabled,
            "Login with magic link is disabled",
        ));
    }
    let email = accounts::normalize_email(request.email)?;
    let challenge = pkce::parse_params(request.code_challenge, request.code_challenge_method)?;
    let data = request.data.filter(|d| !d.is_null());
    if data.is_some_and(|d| !d.is_object()) {
        return Err(Error::validation("data must be a JSON object"));
    }
    let out = |check_frequency| Outgoing {
        redirect_to: request.redirect_to,
        pkce: challenge.as_ref(),
        check_frequency,
    };
    let mut tx = deps.db.begin().await?;
    let mut created = None;
    let user = match users::find_by_email(&mut *tx, &email).await? {
        // Unlike the other email endpoints this one says that the address is unknown: the
        // caller asked not to create users (GoTrue does the same).
        None if !request.create_user => {
            return Err(Error::unprocessable(
                ErrorCode::OtpDisabled,
                "Signups not allowed for otp",
            ));
        }
        None => {
            let user = sign_up(&mut tx, deps, client, &email, data, &out(false)).await?;
            created = Some(user.id);
            // With autoconfirm the new user gets the magic link; otherwise the confirmation
            // mail went out.
            Some(user).filter(|_| deps.accounts.autoconfirm)
        }
        Some(user) if user.email_confirmed_at.is_none() => {
            // Not confirmed yet: the confirmation mail is the sign-in link. It proves the
            // address alone, so whatever someone else set on the account goes when it is
            // followed (`auth::proven_address`), a password too.
            email::send(&mut tx, deps.outbox, user.id, Action::Confirmation, &out(true)).await?;
            None
        }
        Some(user) => Some(user),
    };
    if let Some(user) = user {
        let ip = client.ip_string();
        let requested = audit::Entry::by_user(&user, AuditAction::UserRecoveryRequested, None, &ip);
        audit::insert(&mut *tx, requested).await?;
        email::send(&mut tx, deps.outbox, user.id, Action::MagicLink, &out(true)).await?;
    }
    tx.commit().await?;
    if let Some(user_id) = created {
        // GoTrue signs the address up through `/signup`, and answers as it does.
        user_hooks::after_user_created(deps.db, deps.accounts.after_user_created.as_ref(), user_id)
            .await
            .map_err(user_hooks::signup_hook_failed)?;
    }
    Ok(())
}

/// A passwordless sign-up: the new user, confirmed with autoconfirm (to get a magic link);
/// otherwise unconfirmed, and the confirmation mail has gone out.
async fn sign_up(
    tx: &mut PgConnection,
    deps: &Deps<'_>,
    client: &Client,
    email: &str,
    data: Option<&Value>,
    out: &Outgoing<'_>,
) -> Result<UserRow> {
    let rules = deps.accounts;
    if rules.signup_disabled {
        return Err(Error::unprocessable(
            ErrorCode::SignupDisabled,
            "Signups not allowed for this instance",
        ));
    }
    let account = NewEmailAccount {
        email,
        password_hash: None,
        user_metadata: data.cloned().unwrap_or_else(|| json!({})),
        confirmed: rules.autoconfirm,
        identity_in_metadata: true,
    };
    let (user, _) = accounts::create_email_user(&mut *tx, rules, account).await?;
    let ip = client.ip_string();
    let signed_up = audit::Entry::by_user(
        &user,
        AuditAction::UserSignedUp,
        Some(json!({ "provider": "email" })),
        &ip,
    );
    audit::insert(&mut *tx, signed_up).await?;
    if rules.autoconfirm {
        return Ok(user);
    }
    // The link confirms the account as this sign-up made it, metadata included.
    email::send_confirmation(
        &mut *tx,
        deps.outbox,
        user.id,
        Action::Confirmation,
        out,
        &Confirms::Account,
    )
    .await?;
    Ok(user)
}
