//! `POST /factors`: a new, unverified TOTP factor with its secret, `otpauth://` URI and QR
//! code (the only time the secret leaves the server), or a phone factor for a number.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::phone::PHONE;
use super::{Caller, Deps, TOTP, check_name_length, name_conflict, totp};
use crate::auth::phone as numbers;
use crate::auth::session::Client;
use crate::db::audit::{self, Action};
use crate::db::mfa_factors::{self, FactorRow, NewFactor};
use crate::db::{self as database, users};
use crate::error::{Error, ErrorCode, Result};

/// What the request asks for.
#[derive(Debug, Default)]
pub struct Params<'a> {
    pub factor_type: &'a str,
    pub friendly_name: &'a str,
    /// The issuer shown by authenticator apps; the site's host when absent.
    pub issuer: Option<&'a str>,
    /// A phone factor's number, as the client typed it.
    pub phone: Option<&'a str>,
}

/// The new factor and, for TOTP, what the user's authenticator app needs.
pub struct Enrolled {
    pub factor: FactorRow,
    pub totp: Option<TotpKeys>,
}

pub struct TotpKeys {
    pub secret: String,
    pub uri: String,
    /// An SVG document.
    pub qr_code: String,
}

pub async fn enroll(deps: &Deps<'_>, caller: &Caller<'_>, client: &Client, params: &Params<'_>) -> Result<Enrolled> {
    let session_id = caller.session()?;
    check_type(deps, params.factor_type)?;
    check_name_length("friendly_name", params.friendly_name)?;
    if let Some(issuer) = params.issuer {
        check_name_length("issuer", issuer)?;
    }
    let user = caller.user;
    let (keys, phone) = match params.factor_type {
        PHONE => (None, Some(phone_number(params.phone)?)),
        _ => (Some(totp_keys(deps, caller, params.issuer)?), None),
    };

    let mut tx = deps.db.begin().await?;
    // One enrolment at a time per user, so that the limits below cannot be raced.
    users::lock(&mut *tx, user.id).await?.ok_or_else(user_gone)?;
    mfa_factors::delete_expired(&mut *tx, user.id, deps.config.factor_expiry).await?;
    let mut existing = mfa_factors::for_user(&mut *tx, user.id).await?;
    if let Some(phone) = &phone {
        existing = make_room_for_phone(&mut tx, existing, user.id, phone).await?;
    }
    let aal2 = session_is_aal2(&mut tx, session_id, user.id).await?;
    check_limits(deps, &existing, params.friendly_name, aal2)?;
    let factor = mfa_factors::insert(
        &mut *tx,
        &NewFactor {
            id: Uuid::new_v4(),
            user_id: user.id,
            friendly_name: params.friendly_name,
            factor_type: if phone.is_some() { PHONE } else { TOTP },
            secret: keys.as_ref().map(|keys| keys.secret.as_str()),
            phone: phone.as_deref(),
        },
    )
    .await
    .map_err(|err| {
        // Two enrolments cannot race past the check above (the user's row is locked); the
        // index stays the last word.
        if database::is_unique_violation(&err, mfa_factors::FRIENDLY_NAME_UNIQUE) {
            name_conflict(params.friendly_name)
        } else {
            err.into()
        }
    })?;
    let traits = json!({ "factor_id": factor.id, "factor_type": factor.factor_type });
    audit::insert(
        &mut *tx,
        audit::Entry::by_user(user, Action::FactorInProgress, Some(traits), &client.ip_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(Enrolled { factor, totp: keys })
}

/// A new TOTP secret and how an authenticator app takes it.
fn totp_keys(deps: &Deps<'_>, caller: &Caller<'_>, issuer: Option<&str>) -> Result<TotpKeys> {
    let secret = totp::new_secret();
    let uri = totp::otpauth_uri(
        &secret,
        &totp::issuer(issuer, deps.site_url),
        caller.user.email_or_empty(),
    );
    let qr_code = totp::qr_svg(&uri)?;
    Ok(TotpKeys { secret, uri, qr_code })
}

/// A phone factor's number, normalised as GoTrue stores it, with GoTrue's errors.
fn phone_number(raw: Option<&str>) -> Result<String> {
    match raw.map(str::trim) {
        None | Some("") => Err(Error::validation("Phone number required to enroll Phone factor")),
        Some(raw) => numbers::normalize(raw),
    }
}

/// GoTrue's phone enrolment rules: a verified factor for the number already is refused, and
/// unverified ones for it are replaced by the new one (so they count toward no limit).
async fn make_room_for_phone(
    tx: &mut PgConnection,
    existing: Vec<FactorRow>,
    user_id: Uuid,
    phone: &str,
) -> Result<Vec<FactorRow>> {
    let same_number = |f: &FactorRow| f.factor_type == PHONE && f.phone.as_deref() == Some(phone);
    if existing.iter().any(|f| same_number(f) && f.is_verified()) {
        return Err(Error::unprocessable(
            ErrorCode::MfaVerifiedFactorExists,
            "A verified phone factor already exists, unenroll the existing factor to continue",
        ));
    }
    mfa_factors::delete_unverified_phone(&mut *tx, user_id, phone).await?;
    Ok(existing.into_iter().filter(|f| !same_number(f)).collect())
}

/// Without the secret, which the URI and the QR code hold too: a `{:?}` in a log line must not
/// leak it.
impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("factor", &self.factor)
            .finish_non_exhaustive()
    }
}

/// GoTrue's answers per factor type: TOTP and phone follow `GOTRUE_MFA_TOTP_ENROLL_ENABLED`
/// and `GOTRUE_MFA_PHONE_ENROLL_ENABLED`, WebAuthn factors are off (Latchkey has none).
fn check_type(deps: &Deps<'_>, factor_type: &str) -> Result<()> {
    let disabled = |code, kind: &str| Err(Error::unprocessable(code, format!("MFA enroll is disabled for {kind}")));
    match factor_type {
        TOTP if deps.config.totp_enroll_enabled => Ok(()),
        TOTP => disabled(ErrorCode::MfaTotpEnrollDisabled, "TOTP"),
        PHONE if deps.config.phone_enroll_enabled => Ok(()),
        PHONE => disabled(ErrorCode::MfaPhoneEnrollDisabled, "Phone"),
        "webauthn" => disabled(ErrorCode::MfaWebAuthnEnrollDisabled, "WebAuthn"),
        _ => Err(Error::validation("factor_type needs to be totp, phone, or webauthn")),
    }
}

/// GoTrue's `validateFactors`, in its order: a free name (blank counts as a name, as in
/// GoTrue), room for another factor, and aal2 once a verified factor exists, so that whoever
/// has only the password cannot add a second factor of their own.
fn check_limits(deps: &Deps<'_>, existing: &[FactorRow], name: &str, aal2: bool) -> Result<()> {
    if existing.iter().any(|f| f.friendly_name == name) {
        return Err(name_conflict(name));
    }
    let verified = existing.iter().filter(|f| f.is_verified()).count();
    let too_many = || {
        Error::unprocessable(
            ErrorCode::TooManyEnrolledMfaFactors,
            "Maximum number of verified factors reached, unenroll to continue",
        )
    };
    if existing.len() >= deps.config.max_enrolled_factors as usize {
        return Err(too_many());
    }
    if verified >= deps.config.max_verified_factors as usize {
        return Err(too_many());
    }
    if verified > 0 && !aal2 {
        return Err(Error::forbidden(
            ErrorCode::InsufficientAal,
            "AAL2 required to enroll a new factor",
        ));
    }
    Ok(())
}

/// Read inside the transaction rather than taken from the request's first look, so that a
/// session downgraded meanwhile counts as downgraded.
async fn session_is_aal2(tx: &mut PgConnection, session_id: Uuid, user_id: Uuid) -> Result<bool> {
    let session = crate::db::sessions::find(&mut *tx, session_id).await?;
    Ok(session.is_some_and(|s| s.user_id == user_id && s.aal == "aal2"))
}

fn user_gone() -> Error {
    Error::forbidden(ErrorCode::UserNotFound, "User from sub claim in JWT does not exist")
}
