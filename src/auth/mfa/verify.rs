//! `POST /factors/{id}/challenge` and `POST /factors/{id}/verify`: a challenge binds a
//! verification to a client address and a time; a right code on it verifies the factor and
//! lifts the caller's session to `aal2` with new tokens.
//!
//! Stricter than GoTrue: a TOTP code is accepted once. Each factor keeps the number of the last
//! time step whose code it accepted, and verifications of one factor run one after the other
//! (row lock), so neither a replay nor two racing requests can use a code twice. A phone
//! factor's code belongs to its challenge, which a verification uses up.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::hook::{Attempt, DEFAULT_REJECTION_MESSAGE, Decision};
use super::phone::{PHONE, PHONE_METHOD};
use super::{Caller, Deps, TOTP, TOTP_METHOD, factor_id, factor_not_found, totp};
use crate::auth::codes;
use crate::auth::session::{self, Client, Tokens};
use crate::db::audit::{self, Action};
use crate::db::identities::{self, IdentityRow};
use crate::db::mfa_challenges::{self, ChallengeRow};
use crate::db::mfa_factors::{self, FactorRow, LockedFactor};
use crate::db::sessions;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

/// A new challenge: its id and until when it can be verified.
#[derive(Debug)]
pub struct Challenged {
    pub id: Uuid,
    pub factor_type: String,
    pub expires_at: DateTime<Utc>,
}

/// A new challenge of a factor; a phone factor's goes out on `channel` (`sms` when `None`).
pub async fn challenge(
    deps: &Deps<'_>,
    caller: &Caller<'_>,
    client: &Client,
    raw_factor_id: &str,
    channel: Option<&str>,
) -> Result<Challenged> {
    caller.not_anonymous()?;
    let id = factor_id(raw_factor_id)?;
    let mut tx = deps.db.begin().await?;
    // Locked, so that two challenges of a phone factor cannot both pass its frequency limit.
    let factor = mfa_factors::lock_owned(&mut *tx, id, caller.user.id)
        .await?
        .ok_or_else(factor_not_found)?
        .factor;
    check_verify_enabled(deps, &factor)?;
    let otp_code = match factor.factor_type.as_str() {
        PHONE => text_code(deps, &mut tx, caller, &factor, channel).await?,
        _ => None,
    };
    let challenge_id = Uuid::new_v4();
    let ip = client_ip(client);
    let created_at = mfa_challenges::insert(&mut *tx, challenge_id, factor.id, ip, otp_code.as_deref()).await?;
    let traits = json!({ "factor_id": factor.id, "factor_status": factor.status });
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(caller.user, Action::ChallengeCreated, Some(traits), &client.ip_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(Challenged {
        id: challenge_id,
        factor_type: factor.factor_type,
        expires_at: created_at + deps.config.challenge_expiry,
    })
}

/// GoTrue's `challengePhoneFactor` before the challenge is written: a usable channel, the
/// factor's frequency limit, then the code sent. Returns what the challenge keeps of the code.
async fn text_code(
    deps: &Deps<'_>,
    tx: &mut PgConnection,
    caller: &Caller<'_>,
    factor: &FactorRow,
    channel: Option<&str>,
) -> Result<Option<String>> {
    let channel = deps.phone.channel(channel)?;
    let frequency = deps.config.phone_max_frequency;
    if let Some(wait) = codes::wait_before_resend(factor.last_challenged_at, Utc::now(), frequency) {
        return Err(Error::too_many_requests(
            ErrorCode::OverSmsSendRateLimit,
            format!("For security purposes, you can only request this after {wait} seconds."),
        ));
    }
    let phone = factor
        .phone
        .as_deref()
        .ok_or_else(|| Error::internal("phone factor without a number"))?;
    deps.phone.send(tx, caller.user, phone, channel).await
}

/// A verified code: the session's new tokens, with the user (factors included) read back.
#[derive(Debug)]
pub struct Verified {
    pub tokens: Tokens,
    pub user: UserRow,
    pub identities: Vec<IdentityRow>,
}

pub async fn verify(
    deps: &Deps<'_>,
    caller: &Caller<'_>,
    client: &Client,
    raw_factor_id: &str,
    challenge_id: Option<Uuid>,
    code: &str,
) -> Result<Verified> {
    let session_id = caller.session()?;
    let id = factor_id(raw_factor_id)?;
    let user_id = caller.user.id;
    let mut tx = deps.db.begin().await?;
    let locked = mfa_factors::lock_owned(&mut *tx, id, user_id)
        .await?
        .ok_or_else(factor_not_found)?;
    if code.is_empty() {
        return Err(Error::validation("Code needs to be non-empty"));
    }
    check_verify_enabled(deps, &locked.factor)?;
    let challenge = usable_challenge(&mut tx, &locked.factor, challenge_id, client).await?;
    if Utc::now() > challenge.created_at + deps.config.challenge_expiry {
        // GoTrue deletes an expired challenge; kept deleted although the request fails.
        mfa_challenges::delete(&mut *tx, challenge.id).await?;
        tx.commit().await?;
        return Err(challenge_expired(challenge.id));
    }
    let phone = locked.factor.factor_type == PHONE;
    let (valid, step) = if phone {
        let number = locked.factor.phone.as_deref().unwrap_or_default();
        (
            deps.phone.check(number, challenge.otp_code.as_deref(), code).await?,
            None,
        )
    } else {
        let step = accepted_step(&locked, code)?;
        (step.is_some(), step)
    };
    let attempt = Attempt {
        user_id,
        factor_id: id,
        factor_type: &locked.factor.factor_type,
        valid,
    };
    if let Decision::Reject { message } = deps.hook.mfa_verification_attempt(&attempt).await? {
        // GoTrue signs the user out everywhere when the hook rejects an attempt.
        sessions::delete_all_for_user(&mut *tx, user_id).await?;
        tx.commit().await?;
        let message = message.unwrap_or_else(|| DEFAULT_REJECTION_MESSAGE.to_owned());
        return Err(Error::forbidden(ErrorCode::MfaVerificationRejected, message));
    }
    if !valid {
        let message = if phone {
            "Invalid MFA Phone code entered"
        } else {
            "Invalid TOTP code entered"
        };
        return Err(Error::unprocessable(ErrorCode::MfaVerificationFailed, message));
    }
    let traits = json!({ "factor_id": id, "challenge_id": challenge.id, "factor_type": locked.factor.factor_type });
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(
            caller.user,
            Action::VerificationAttempted,
            Some(traits),
            &client.ip_string(),
        ),
    )
    .await?;
    mfa_challenges::mark_verified(&mut *tx, challenge.id).await?;
    mfa_factors::mark_verified(&mut *tx, id, step).await?;
    let verified = lift_session(&mut tx, deps, user_id, session_id, &locked.factor).await?;
    tx.commit().await?;
    Ok(verified)
}

/// GoTrue's `validateChallenge` up to the expiry: the challenge is one of this factor's,
/// unused, and asked for from the same address.
async fn usable_challenge(
    tx: &mut PgConnection,
    factor: &FactorRow,
    challenge_id: Option<Uuid>,
    client: &Client,
) -> Result<ChallengeRow> {
    let found = match challenge_id {
        Some(id) => mfa_challenges::lock(&mut *tx, id, factor.id).await?,
        None => None,
    };
    let challenge = found.ok_or_else(|| {
        Error::unprocessable(
            ErrorCode::MfaFactorNotFound,
            "MFA factor with the provided challenge ID not found",
        )
    })?;
    let same_address = challenge.ip_address.parse::<IpAddr>().ok() == Some(client_ip(client));
    if challenge.verified_at.is_some() || !same_address {
        return Err(Error::unprocessable(
            ErrorCode::MfaIpAddressMismatch,
            "Challenge and verify IP addresses mismatch.",
        ));
    }
    Ok(challenge)
}

fn challenge_expired(id: Uuid) -> Error {
    Error::unprocessable(
        ErrorCode::MfaChallengeExpired,
        format!("MFA challenge {id} has expired, verify against another challenge or create a new challenge."),
    )
}

/// The time step of `code` if it is right and newer than the last step this factor
/// accepted; `None` for a wrong or replayed code.
fn accepted_step(locked: &LockedFactor, code: &str) -> Result<Option<i64>> {
    let secret = locked
        .secret
        .as_deref()
        .ok_or_else(|| Error::internal("TOTP factor without a secret"))?;
    let step = totp::matching_step(secret, code, totp::now())?.and_then(|s| i64::try_from(s).ok());
    Ok(step.filter(|s| locked.last_totp_time_step.is_none_or(|last| *s > last)))
}

/// The session becomes aal2 with new tokens; the user's sessions still below aal2 end and
/// their other unverified TOTP factors go (GoTrue's order).
async fn lift_session(
    tx: &mut PgConnection,
    deps: &Deps<'_>,
    user_id: Uuid,
    session_id: Uuid,
    factor: &FactorRow,
) -> Result<Verified> {
    let (amr_method, method) = match factor.factor_type.as_str() {
        PHONE => (PHONE_METHOD, PHONE_METHOD),
        _ => (TOTP_METHOD, "mfa/totp"),
    };
    let (refresh_token, amr) =
        session::raise_to_aal2(&mut *tx, deps.sessions, user_id, session_id, factor.id, amr_method)
            .await?
            .ok_or_else(|| {
                Error::forbidden(
                    ErrorCode::SessionNotFound,
                    "Session from session_id claim in JWT does not exist",
                )
            })?;
    sessions::delete_below_aal2(&mut *tx, user_id).await?;
    mfa_factors::delete_unverified(&mut *tx, user_id, &factor.factor_type).await?;
    let user = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished during MFA verification"))?;
    let identities = identities::for_user(&mut *tx, user_id).await?;
    let tokens = deps
        .sessions
        .tokens_for(
            &mut *tx,
            (&user).into(),
            (session_id, "aal2"),
            amr,
            refresh_token,
            method,
        )
        .await?;
    Ok(Verified {
        tokens,
        user,
        identities,
    })
}

fn check_verify_enabled(deps: &Deps<'_>, factor: &FactorRow) -> Result<()> {
    match factor.factor_type.as_str() {
        TOTP if deps.config.totp_verify_enabled => Ok(()),
        TOTP => Err(Error::unprocessable(
            ErrorCode::MfaTotpVerifyDisabled,
            "MFA verification is disabled for TOTP",
        )),
        PHONE if deps.config.phone_verify_enabled => Ok(()),
        PHONE => Err(Error::unprocessable(
            ErrorCode::MfaPhoneVerifyDisabled,
            "MFA verification is disabled for Phone",
        )),
        // Imported WebAuthn factors: Latchkey cannot verify them.
        _ => Err(Error::unprocessable(
            ErrorCode::MfaWebAuthnVerifyDisabled,
            "MFA verification is disabled for WebAuthn",
        )),
    }
}

/// The address a challenge is bound to. Every request over a socket has one; a caller
/// without (in-process) gets the unspecified address, on both ends alike.
fn client_ip(client: &Client) -> IpAddr {
    client.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}
