//! `POST /recover` (the password-reset mail) and `POST /resend` (the sign-up confirmation or
//! the email-change mails again). Neither may tell anyone whether an address has an account,
//! so once the input is valid, every address gets the same answer in the same time:
//!
//! - success, whether a mail went out or not: unknown address, nothing pending, or a mail of
//!   the kind sent within `GOTRUE_SMTP_MAX_FREQUENCY` (GoTrue answers that last case with a
//!   429, which only a registered address can get; Latchkey sends nothing and says nothing);
//! - `429 over_email_send_rate_limit` when the server-wide email budget
//!   (`GOTRUE_RATE_LIMIT_EMAIL_SENT`) is spent: every request takes one unit of it, mail or
//!   not, so the budget and the 429 do not depend on the address either;
//! - an answer without a mail waits as long as a recent send took (`auth::send_timing`).

use crate::db::Pool;
use tokio::time::Instant;

use crate::auth::accounts::{self, AccountRules};
use crate::auth::email::{self, Action, Outgoing};
use crate::auth::outbox::Outbox;
use crate::auth::phone::resend::{self as phone_resend, Holder, Resend};
use crate::auth::pkce::{self, Challenge};
use crate::auth::proven_address;
use crate::auth::send_timing::{Route, SendTiming};
use crate::auth::session::Client;
use crate::db::audit::{self, Action as AuditAction};
use crate::db::one_time_tokens::Confirms;
use crate::db::users;
use crate::error::{Error, ErrorCode, Result};

/// What these requests need.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub accounts: &'a AccountRules,
    pub outbox: &'a Outbox,
    /// Recent send durations, to time the answers that send nothing the same.
    pub timing: &'a SendTiming,
}

/// A request to mail a link again, its fields trimmed (`None` when blank).
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub email: Option<&'a str>,
    /// Only `/resend` reads it.
    pub phone: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    /// The validated target of the link.
    pub redirect_to: &'a str,
}

/// `POST /recover`.
pub async fn recover(deps: &Deps<'_>, client: &Client, request: &Request<'_>) -> Result<()> {
    let started = Instant::now();
    if !deps.accounts.email_enabled {
        return Err(Error::bad_request(
            ErrorCode::EmailProviderDisabled,
            "Email logins are disabled",
        ));
    }
    let (email, challenge) = read(request, "Password recovery requires an email")?;
    let outcome = send_recovery(deps, client, &email, &outgoing(request, &challenge)).await;
    answer(deps, Route::Recover, started, outcome).await
}

/// `POST /resend` with `type` (`signup`, `email_change`; `sms` and `phone_change` text the
/// code again, `auth::phone::resend`). The input is judged in GoTrue's order, so each mistake
/// gets its message. Returns the message id of a text sent (else empty).
pub async fn resend(
    deps: &Deps<'_>,
    client: &Client,
    resend_type: Option<&str>,
    request: &Request<'_>,
) -> Result<String> {
    let started = Instant::now();
    let action = match resend_type {
        Some("signup") => Ok(Action::Confirmation),
        Some("email_change") => Ok(Action::EmailChange),
        Some("sms") => Err(Resend::Sms),
        Some("phone_change") => Err(Resend::PhoneChange),
        _ => {
            return Err(Error::validation(
                "Missing one of these types: signup, email_change, sms, phone_change",
            ));
        }
    };
    match (resend_type, request.email, request.phone) {
        (Some("signup"), None, _) => return Err(Error::validation("Type provided requires an email address")),
        (Some("sms"), _, None) => return Err(Error::validation("Type provided requires a phone number")),
        (_, Some(_), Some(_)) => {
            return Err(Error::validation(
                "Only an email address or phone number should be provided.",
            ));
        }
        (_, None, None) => return Err(Error::validation("Missing email address or phone number")),
        (_, None, Some(phone)) => {
            let kind = match action {
                Err(kind) => kind,
                // GoTrue looks the number up for `signup` and `email_change` too, then finds no
                // address to mail: nothing is sent.
                Ok(_) => {
                    deps.outbox.sms(crate::auth::outbox::PhoneUse::Resend)?;
                    crate::auth::phone::normalize(phone)?;
                    return Ok(String::new());
                }
            };
            return phone_resend::resend(deps.db, deps.outbox, client, kind, Holder::Phone(phone)).await;
        }
        (_, Some(_), None) => {}
    }
    if !deps.accounts.email_enabled {
        return Err(Error::bad_request(
            ErrorCode::EmailProviderDisabled,
            "Email logins are disabled",
        ));
    }
    let (email, challenge) = read(request, "Type provided requires an email address")?;
    let action = match action {
        Ok(action) => action,
        // `phone_change` for an address: the user's pending number gets its code again.
        Err(kind) => return phone_resend::resend(deps.db, deps.outbox, client, kind, Holder::Email(&email)).await,
    };
    let outcome = send_again(deps, &email, action, &outgoing(request, &challenge)).await;
    answer(deps, Route::Resend, started, outcome).await?;
    Ok(String::new())
}

/// The normalised address and the link's PKCE challenge; `missing` is GoTrue's message for a
/// request without an address.
fn read(request: &Request<'_>, missing: &'static str) -> Result<(String, Option<Challenge>)> {
    let email = request.email.ok_or_else(|| Error::validation(missing))?;
    let email = accounts::normalize_email(email)?;
    let challenge = pkce::parse_params(request.code_challenge, request.code_challenge_method)?;
    Ok((email, challenge))
}

/// How these mails go: to the request's target, within `GOTRUE_SMTP_MAX_FREQUENCY`.
fn outgoing<'a>(request: &Request<'a>, challenge: &'a Option<Challenge>) -> Outgoing<'a> {
    Outgoing {
        redirect_to: request.redirect_to,
        pkce: challenge.as_ref(),
        check_frequency: true,
    }
}

async fn send_recovery(deps: &Deps<'_>, client: &Client, email: &str, out: &Outgoing<'_>) -> Result<Outcome> {
    let mut tx = deps.db.begin().await?;
    let Some(user) = users::find_by_email(&mut *tx, email).await? else {
        return nothing_sent(deps).await;
    };
    let ip = client.ip_string();
    let requested = audit::Entry::by_user(&user, AuditAction::UserRecoveryRequested, None, &ip);
    audit::insert(&mut *tx, requested).await?;
    let sent = email::send_if_due(
        &mut tx,
        deps.outbox,
        user.id,
        Action::Recovery,
        out,
        &Confirms::default(),
    )
    .await?;
    if sent.is_none() {
        // Dropping the transaction rolls back the audit entry.
        return nothing_sent(deps).await;
    }
    tx.commit().await?;
    Ok(Outcome::Sent)
}

async fn send_again(deps: &Deps<'_>, email: &str, action: Action, out: &Outgoing<'_>) -> Result<Outcome> {
    let mut tx = deps.db.begin().await?;
    let Some(user) = users::find_by_email(&mut *tx, email).await? else {
        return nothing_sent(deps).await;
    };
    let pending = match action {
        Action::Confirmation => user.email_confirmed_at.is_none(),
        _ => user.email_change.as_deref().is_some_and(|e| !e.is_empty()),
    };
    if !pending {
        return nothing_sent(deps).await;
    }
    // The new link confirms what the one it replaces did.
    let confirms = match action {
        Action::Confirmation => proven_address::confirms_again(&mut tx, user.id).await?,
        _ => Confirms::default(),
    };
    let sent = email::send_if_due(&mut tx, deps.outbox, user.id, action, out, &confirms).await?;
    if sent.is_none() {
        return nothing_sent(deps).await;
    }
    tx.commit().await?;
    Ok(Outcome::Sent)
}

/// Whether a request ended with a mail sent.
enum Outcome {
    Sent,
    NothingSent,
}

/// A request that sends nothing takes a unit of the server's email budget all the same, so
/// that `429 over_email_send_rate_limit` comes, or not, whoever the address belongs to. (A
/// secure email change, two mails, takes two: the one difference left, for a rare case.)
async fn nothing_sent(deps: &Deps<'_>) -> Result<Outcome> {
    deps.outbox.take_budget().await?;
    Ok(Outcome::NothingSent)
}

/// A request that sent a mail records how long it took; any other answer from here on
/// (nothing sent, or an error) first waits as long as a recent send took.
async fn answer(deps: &Deps<'_>, route: Route, started: Instant, outcome: Result<Outcome>) -> Result<()> {
    match outcome {
        Ok(Outcome::Sent) => deps.timing.record_send(route, started).await,
        Ok(Outcome::NothingSent) | Err(_) => deps.timing.wait_like_a_send(route, started).await,
    }
    outcome.map(|_| ())
}
