//! Multi-factor authentication with TOTP and phone factors, GoTrue's `/factors` API:
//! enrolment (`enroll`), challenges and verification, which lifts the session to `aal2`
//! (`verify`; a phone factor's code goes out by SMS or WhatsApp, `phone`), unenrolment
//! (`unenroll`) and the admin's factor management (`admin`).
//!
//! The rules that span several use cases live here: who may use them (signed in, not
//! anonymous, with a session), and the errors GoTrue answers for unknown factors.

pub mod admin;
pub mod enroll;
pub mod hook;
pub mod phone;
pub mod totp;
pub mod unenroll;
pub mod verify;

use crate::db::Pool;
use url::Url;
use uuid::Uuid;

use crate::auth::session::Sessions;
use crate::config::MfaConfig;
use crate::db::users::UserRow;
use crate::error::{Error, ErrorCode, Result};

pub use hook::{MfaVerificationHook, NoHook};

/// What the MFA use cases need.
pub struct Deps<'a> {
    pub db: &'a Pool,
    /// Tokens for the session a verification lifts to aal2.
    pub sessions: &'a Sessions,
    pub config: &'a MfaConfig,
    /// `GOTRUE_SITE_URL`: its host is the default issuer in the `otpauth://` URI.
    pub site_url: &'a Url,
    /// The MFA verification attempt hook point ([`NoHook`] until hooks exist).
    pub hook: &'a dyn MfaVerificationHook,
    /// How phone factors' codes go out and are checked.
    pub phone: &'a phone::PhoneCodes,
}

/// The signed-in user and the session of their token.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub user: &'a UserRow,
    pub session_id: Option<Uuid>,
}

impl Caller<'_> {
    /// GoTrue's `requireNotAnonymous` on every `/factors` route.
    fn not_anonymous(&self) -> Result<()> {
        if self.user.is_anonymous {
            return Err(Error::forbidden(
                ErrorCode::NoAuthorization,
                "Anonymous user not allowed to perform these actions",
            ));
        }
        Ok(())
    }

    /// The token's session, which enrolment, verification and unenrolment act on. GoTrue
    /// answers a 500 to a token without one; it is the token that is wrong, so a 403 here.
    fn session(&self) -> Result<Uuid> {
        self.not_anonymous()?;
        self.session_id.ok_or_else(|| {
            Error::forbidden(
                ErrorCode::SessionNotFound,
                "A session is required to manage MFA factors",
            )
        })
    }
}

/// The factor type of TOTP factors (GoTrue's `models.TOTP`).
pub const TOTP: &str = "totp";
/// The `amr` method a TOTP verification records.
const TOTP_METHOD: &str = "totp";

/// The `amr` method of a factor type (GoTrue's `amrMethodForFactorType`), for removing it
/// from the sessions that reached aal2 through a factor that goes. WebAuthn factors can only
/// be imported rows here.
fn amr_method(factor_type: &str) -> &'static str {
    match factor_type {
        phone::PHONE => phone::PHONE_METHOD,
        "webauthn" => "mfa/webauthn",
        _ => TOTP_METHOD,
    }
}

/// The longest `friendly_name` or `issuer` accepted. GoTrue has no limit, and a name too long
/// for the unique index on `(friendly_name, user_id)` fails there with a 500.
const MAX_NAME_CHARS: usize = 255;

fn check_name_length(what: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(Error::validation(format!(
            "{what} must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

/// GoTrue's `loadFactor`: a factor id that is not a UUID is a 404.
fn factor_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Error::not_found(ErrorCode::ValidationFailed, "factor_id must be an UUID"))
}

fn factor_not_found() -> Error {
    Error::not_found(ErrorCode::MfaFactorNotFound, "Factor not found")
}

fn name_conflict(name: &str) -> Error {
    Error::unprocessable(
        ErrorCode::MfaFactorNameConflict,
        format!("A factor with the friendly name {name:?} for this user already exists"),
    )
}
