//! `/verify` as use cases: following an email link (`GET`) and checking a code or a link's
//! hash sent by the client (`POST`). The tokens themselves are found, counted and used by
//! `auth::email_verify`; this decides what the verification ends in.

use crate::db::Pool;

use crate::auth::accounts;
use crate::auth::email_verify::{self, Codes, Outcome, Presented, VerifyType};
use crate::auth::outbox::Outbox;
use crate::auth::phone::{self, verify::PhoneVerifyType};
use crate::auth::pkce;
use crate::auth::session::{self, Client, Sessions, Tokens};
use crate::db::identities::{self, IdentityRow};
use crate::db::users::UserRow;
use crate::error::{Error, ErrorCode, Result};

/// What a verification needs.
pub struct Deps<'a> {
    pub db: &'a Pool,
    pub codes: &'a Codes,
    pub sessions: &'a Sessions,
    /// Whether an SMS gateway is configured, and which (Twilio Verify checks its codes).
    pub outbox: &'a Outbox,
}

/// How following a link ends.
pub enum Followed {
    /// Signed in.
    Session(Tokens),
    /// A PKCE link: the auth code to exchange for the session.
    Code(String),
    /// The first of the two confirmations of a secure email change.
    FirstLeg,
}

/// How verifying a code ends.
pub enum Verified {
    Session {
        tokens: Tokens,
        user: Box<UserRow>,
        identities: Vec<IdentityRow>,
    },
    /// The first of the two confirmations of a secure email change.
    FirstLeg,
}

/// `GET /verify?type=...&token=<hash>`: everything the link does, in one transaction, so
/// nothing is kept if any step fails. (A link's hash is not a guess to count: see
/// `email_verify`.)
pub async fn follow_link(deps: &Deps<'_>, client: &Client, verify_type: &str, token: &str) -> Result<Followed> {
    let verify_type = VerifyType::parse(verify_type)
        .filter(|t| *t != VerifyType::Email)
        .ok_or_else(|| Error::validation("Unsupported verification type"))?;
    let found = email_verify::find(deps.codes, verify_type, Presented::Hash(token)).await?;
    let mut tx = deps.db.begin().await?;
    let followed = match email_verify::verify(&mut tx, deps.codes, found, &client.ip_string()).await? {
        Outcome::EmailChangeFirstLeg => Followed::FirstLeg,
        Outcome::Verified {
            user,
            pkce: true,
            flow_methods,
        } => Followed::Code(pkce::issue_code(&mut tx, user.id, flow_methods).await?),
        Outcome::Verified { user, .. } => {
            let (tokens, _, _) = session::start(&mut tx, deps.sessions, &user, "otp", client).await?;
            Followed::Session(tokens)
        }
    };
    tx.commit().await?;
    Ok(followed)
}

/// A `POST /verify` body, each field trimmed and `None` when blank.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub verify_type: Option<&'a str>,
    /// The code from the mail (with `email`).
    pub token: Option<&'a str>,
    /// The hash from the link (alone).
    pub token_hash: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub redirect_to: Option<&'a str>,
}

/// `POST /verify`: a code with its address, or a link's hash, for a session. GoTrue answers
/// with a session even for a PKCE token.
pub async fn verify(deps: &Deps<'_>, client: &Client, request: &Request<'_>) -> Result<Verified> {
    let verify_type = request
        .verify_type
        .ok_or_else(|| Error::validation("Verify requires a verification type"))?;
    let normalized;
    let presented = match (request.token, request.token_hash) {
        (Some(code), None) => match (request.email, request.phone) {
            (Some(raw), None) => {
                normalized = accounts::normalize_email(raw)
                    .map_err(|_| Error::unprocessable(ErrorCode::ValidationFailed, "Invalid email format"))?;
                Presented::Code {
                    email: &normalized,
                    code,
                }
            }
            (None, Some(raw)) => {
                let phone = phone::normalize(raw)?;
                return verify_phone_code(deps, client, verify_type, &phone, code).await;
            }
            _ => {
                return Err(Error::validation(
                    "Only an email address or phone number should be provided on verify",
                ));
            }
        },
        (None, Some(hash)) => {
            if request.email.is_some() || request.phone.is_some() || request.redirect_to.is_some() {
                return Err(Error::validation("Only the token_hash and type should be provided"));
            }
            Presented::Hash(hash)
        }
        _ => return Err(Error::validation("Verify requires either a token or a token hash")),
    };
    let verify_type = match verify_type {
        // A phone code comes with its number; a texted code has no link to carry a hash.
        "sms" | "phone_change" => return Err(no_phone_code()),
        other => VerifyType::parse(other).ok_or_else(|| Error::validation("Unsupported verification type"))?,
    };
    // Before the transaction: a wrong code is counted even though this request fails.
    let found = email_verify::find(deps.codes, verify_type, presented).await?;
    let mut tx = deps.db.begin().await?;
    let verified = match email_verify::verify(&mut tx, deps.codes, found, &client.ip_string()).await? {
        Outcome::EmailChangeFirstLeg => Verified::FirstLeg,
        Outcome::Verified { user, .. } => {
            let (tokens, user, _) = session::start(&mut tx, deps.sessions, &user, "otp", client).await?;
            let identities = identities::for_user(&mut *tx, user.id).await?;
            Verified::Session {
                tokens,
                user: Box::new(user),
                identities,
            }
        }
    };
    tx.commit().await?;
    Ok(verified)
}

/// A code texted to `phone` (normalised): `sms` signs in (confirming the number), and
/// `phone_change` makes the pending number the user's, then signs in. Any other type with a
/// number finds no code, as in GoTrue.
async fn verify_phone_code(
    deps: &Deps<'_>,
    client: &Client,
    verify_type: &str,
    phone: &str,
    code: &str,
) -> Result<Verified> {
    let vtype = PhoneVerifyType::parse(verify_type).ok_or_else(no_phone_code)?;
    // Before the transaction: a wrong code is counted even though this request fails.
    let found = phone::verify::find(deps.codes, deps.outbox, vtype, phone, code).await?;
    let mut tx = deps.db.begin().await?;
    let user = phone::verify::verify(&mut tx, deps.codes, found, &client.ip_string()).await?;
    let (tokens, user, _) = session::start(&mut tx, deps.sessions, &user, "otp", client).await?;
    let identities = identities::for_user(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok(Verified::Session {
        tokens,
        user: Box::new(user),
        identities,
    })
}

/// GoTrue's answer when no texted code can match: `403 otp_expired`, as for any wrong code.
fn no_phone_code() -> Error {
    Error::forbidden(ErrorCode::OtpExpired, "Token has expired or is invalid")
}
