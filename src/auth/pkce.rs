//! PKCE (RFC 7636) as GoTrue applies it: `code_challenge` + `code_challenge_method`
//! (`s256` or `plain`, any case) on the request that starts a flow, `code_verifier` on the
//! exchange.

use base64::Engine;
use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::auth::session::Sessions;
use crate::auth::session::{self, Client, Tokens};
use crate::db::flow_state::{self, FlowStateRow};
use crate::db::identities::IdentityRow;
use crate::db::users::{self, UserRow};
use crate::error::{Error, ErrorCode, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    S256,
    Plain,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::S256 => "s256",
            Method::Plain => "plain",
        }
    }

    pub fn parse(raw: &str) -> Option<Method> {
        match raw.to_ascii_lowercase().as_str() {
            "s256" => Some(Method::S256),
            "plain" => Some(Method::Plain),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub method: Method,
    pub challenge: String,
}

/// GoTrue's `validatePKCEParams`: both parameters or neither (neither = implicit flow).
pub fn parse_params(challenge: Option<&str>, method: Option<&str>) -> Result<Option<Challenge>, Error> {
    let challenge = challenge.map(str::trim).filter(|c| !c.is_empty());
    let method = method.map(str::trim).filter(|m| !m.is_empty());
    let (challenge, method) = match (challenge, method) {
        (None, None) => return Ok(None),
        (Some(c), Some(m)) => (c, m),
        _ => {
            return Err(Error::validation(
                "PKCE flow requires code_challenge_method and code_challenge",
            ));
        }
    };
    if !(43..=128).contains(&challenge.len()) {
        return Err(Error::validation(
            "code challenge has to be between 43 and 128 characters",
        ));
    }
    if !challenge.bytes().all(is_unreserved) {
        return Err(Error::validation(
            "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
        ));
    }
    let method = Method::parse(method)
        .ok_or_else(|| Error::validation(format!("unsupported code_challenge method {method:?}")))?;
    Ok(Some(Challenge {
        method,
        challenge: challenge.to_owned(),
    }))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether `verifier` answers the stored challenge, compared in constant time.
pub fn verify(method: Method, challenge: &str, verifier: &str) -> bool {
    let computed = match method {
        Method::S256 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        Method::Plain => verifier.to_owned(),
    };
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Hands out the auth code of the user's newest flow among `methods` (GET `/verify` of a
/// `pkce_` link): stamps `auth_code_issued_at` and returns the code.
pub async fn issue_code(conn: &mut PgConnection, user_id: Uuid, methods: &[&str]) -> Result<String> {
    let flow = flow_state::latest_for_user(&mut *conn, user_id, methods)
        .await?
        .ok_or_else(|| {
            Error::bad_request(
                ErrorCode::FlowStateNotFound,
                "No associated flow state found. No valid flow state found for user.",
            )
        })?;
    Ok(flow_state::mark_code_issued(&mut *conn, flow.id).await?.auth_code)
}

/// What a PKCE code was exchanged for.
pub struct Exchanged {
    pub tokens: Tokens,
    pub user: UserRow,
    pub identities: Vec<IdentityRow>,
    /// The flow, deleted by now: the provider's tokens of an OAuth flow are read from it.
    pub flow: FlowStateRow,
}

/// `POST /token?grant_type=pkce`: checks the code and verifier, starts a session with the
/// flow's authentication method, and deletes the flow (each code works once).
pub async fn exchange(
    conn: &mut PgConnection,
    sessions: &Sessions,
    flow_state_expiry: std::time::Duration,
    auth_code: &str,
    code_verifier: &str,
    client: &Client,
) -> Result<Exchanged> {
    let (auth_code, code_verifier) = (auth_code.trim(), code_verifier.trim());
    if auth_code.is_empty() || code_verifier.is_empty() {
        return Err(Error::validation(
            "invalid request: both auth code and code verifier should be non-empty",
        ));
    }
    let not_found = || {
        Error::not_found(
            ErrorCode::FlowStateNotFound,
            "invalid flow state, no valid flow state found",
        )
    };
    let flow = flow_state::find_by_auth_code_for_update(&mut *conn, auth_code)
        .await?
        .ok_or_else(not_found)?;
    // A code that was never handed out (the link not yet followed) cannot be exchanged.
    let issued_at = flow.auth_code_issued_at.ok_or_else(not_found)?;
    let user_id = flow.user_id.ok_or_else(not_found)?;
    // GoTrue measures expiry from created_at except for magic links; for email links that
    // would make any link clicked more than 5 minutes after it was sent fail at the exchange.
    // The link's own lifetime is GOTRUE_MAILER_OTP_EXP, so email flows count from the moment
    // the code was handed out; other flows (OAuth) from creation, as GoTrue does.
    let start = if flow.provider_type == "email" {
        issued_at
    } else {
        flow.created_at
    };
    let expiry = chrono::Duration::from_std(flow_state_expiry).unwrap_or(chrono::Duration::MAX);
    if Utc::now() > start + expiry {
        return Err(Error::unprocessable(
            ErrorCode::FlowStateExpired,
            "invalid flow state, flow state has expired",
        ));
    }
    check_verifier(&flow, code_verifier)?;
    let user = users::find_by_id(&mut *conn, user_id).await?.ok_or_else(not_found)?;
    if user.is_banned(Utc::now()) {
        return Err(Error::bad_request(ErrorCode::UserBanned, "User is banned"));
    }
    flow_state::delete(&mut *conn, flow.id).await?;
    let (tokens, user, identities) =
        session::start(&mut *conn, sessions, &user, &flow.authentication_method, client).await?;
    Ok(Exchanged {
        tokens,
        user,
        identities,
        flow,
    })
}

/// The verifier must hash to the challenge the flow was started with, by its method.
fn check_verifier(flow: &FlowStateRow, code_verifier: &str) -> Result<()> {
    let bad_verifier = || {
        Error::bad_request(
            ErrorCode::BadCodeVerifier,
            "code challenge does not match previously saved code verifier",
        )
    };
    let method = flow.code_challenge_method.as_deref().and_then(Method::parse);
    match (method, flow.code_challenge.as_deref()) {
        (Some(method), Some(challenge)) if verify(method, challenge, code_verifier) => Ok(()),
        _ => Err(bad_verifier()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Challenge computed independently: base64url(sha256(verifier)) with Python hashlib.
    const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K1kOpO0cJmZ1JMFkdDwN1Ns9IXw6ByXxg";
    const CHALLENGE: &str = "lP-ldtpVRzrCGT73_AON8rL5PnYPe6UPv1anYsJ_k1I";

    #[test]
    fn s256_matches_an_independent_computation() {
        assert!(verify(Method::S256, CHALLENGE, VERIFIER));
        assert!(!verify(
            Method::S256,
            CHALLENGE,
            "dBjftJeZ4CVP-mJ92K1kOpO0cJmZ1JMFkdDwN1Ns9IXw6ByXxh"
        ));
        assert!(!verify(Method::S256, CHALLENGE, ""));
    }

    #[test]
    fn plain_compares_directly() {
        assert!(verify(Method::Plain, VERIFIER, VERIFIER));
        assert!(!verify(Method::Plain, VERIFIER, CHALLENGE));
    }

    #[test]
    fn params_are_both_or_neither() {
        assert_eq!(parse_params(None, None).unwrap(), None);
        assert_eq!(parse_params(Some(""), Some(" ")).unwrap(), None);
        assert!(parse_params(Some(CHALLENGE), None).is_err());
        assert!(parse_params(None, Some("s256")).is_err());
        let parsed = parse_params(Some(CHALLENGE), Some("S256")).unwrap().unwrap();
        assert_eq!(parsed.method, Method::S256);
        assert_eq!(
            parse_params(Some(CHALLENGE), Some("PLAIN")).unwrap().unwrap().method,
            Method::Plain
        );
    }

    #[test]
    fn bad_challenges_are_validation_errors() {
        for (challenge, method) in [
            ("short", "s256"),
            (&"a".repeat(129)[..], "s256"),
            (&format!("{}!", &CHALLENGE[..43])[..], "s256"),
            (CHALLENGE, "md5"),
        ] {
            let err = parse_params(Some(challenge), Some(method)).unwrap_err();
            assert_eq!(err.kind(), crate::error::Kind::BadRequest, "{challenge} {method}");
            assert_eq!(err.code(), crate::error::ErrorCode::ValidationFailed);
        }
    }
}
