//! The two routes whose budget depends on the body: `POST /signup` (anonymous or not) and
//! `POST /verify` (which account a code is tried against). The body is read here (at most
//! 1 MiB, the `DefaultBodyLimit` layer outside the limiter) and handed back to the handler.
//!
//! Each probe parses the body into the handler's own parameter type and asks the handler's
//! own function, so the limiter and the handler cannot read one request two ways. A body the
//! handler will refuse (not JSON, wrong types) takes the stricter path: a normal sign-up, no
//! per-account bucket (the handler answers 400 before it looks anything up).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;

use crate::api::extract::body_error;
use crate::api::signup::SignupParams;
use crate::api::verify::{self, VerifyParams};
use crate::error::Error;
use crate::ratelimit::AccountKey;

/// Whether a sign-up is anonymous (neither email nor phone, as the handler decides), and the
/// request with its body restored.
pub(super) async fn signup(parts: Parts, body: Body) -> Result<(bool, Request), Error> {
    let (bytes, parts) = read(parts, body).await?;
    let anonymous = serde_json::from_slice::<SignupParams>(&bytes).is_ok_and(|params| params.is_anonymous());
    Ok((anonymous, Request::from_parts(parts, Body::from(bytes))))
}

/// The account a verification code is tried against, if any, and the request with its body
/// restored.
pub(super) async fn verify_code(parts: Parts, body: Body) -> Result<(Option<Account>, Request), Error> {
    let (bytes, parts) = read(parts, body).await?;
    let account = serde_json::from_slice::<VerifyParams>(&bytes)
        .ok()
        .and_then(|params| verify::code_account(&params))
        .map(|account| Account {
            key: AccountKey::new(&account),
            domain: account.split_once('@').map(|(_, domain)| domain.to_owned()),
        });
    Ok((account, Request::from_parts(parts, Body::from(bytes))))
}

/// The factor a `POST /factors/{id}/verify` code is tried against, by its id in `path`, so
/// that guesses from many client addresses share one budget. The id is read as a UUID (any
/// spelling of one id is one bucket); anything else names no factor, and the handler answers
/// 404 without trying a code.
pub(super) fn factor(path: &str) -> Option<Account> {
    let id = path.strip_prefix("/factors/")?.split('/').next()?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some(Account {
        key: AccountKey::new(&format!("mfa-factor:{id}")),
        domain: None,
    })
}

/// An account's bucket key, and what of it may be logged: the email's domain, never more.
pub(super) struct Account {
    pub key: AccountKey,
    pub domain: Option<String>,
}

async fn read(parts: Parts, body: Body) -> Result<(Bytes, Parts), Error> {
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(body_error)?;
    Ok((bytes, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_factor_id_is_one_bucket() {
        let id = "0b6d2b5e-7f5a-4d5e-9f2a-1c2d3e4f5a6b";
        let key = |path: &str| factor(path).map(|account| account.key);
        let lower = key(&format!("/factors/{id}/verify")).expect("a factor id");
        assert!(key(&format!("/factors/{}/verify", id.to_uppercase())) == Some(lower));
        assert!(key(&format!("/factors/{}/verify", id.replace('-', ""))) == Some(lower));
        assert!(key("/factors/0b6d2b5e-7f5a-4d5e-9f2a-1c2d3e4f5a6c/verify") != Some(lower));
        assert!(key("/factors/not-a-uuid/verify").is_none());
        assert!(
            factor(&format!("/factors/{id}/verify")).unwrap().domain.is_none(),
            "nothing to log"
        );
    }

    fn split(body: &str) -> (Parts, Body) {
        Request::new(Body::from(body.to_owned())).into_parts()
    }

    #[tokio::test]
    async fn anonymous_sign_ups_are_told_apart_by_the_handlers_rule() {
        for (body, anonymous) in [
            (r#"{"data": {"a": 1}}"#, true),
            (r#"{"email": "", "phone": null}"#, true),
            // The handler trims: blank is no email, however it is written.
            (r#"{"email": " "}"#, true),
            (r#"{"email": "\t\n", "phone": "  "}"#, true),
            (r#"{"email": "\u00a0\u3000"}"#, true),
            (r#"{"email": "a@example.com", "password": "x"}"#, false),
            (r#"{"phone": "+15555550100"}"#, false),
            (r#"{"email": " ", "phone": "+15555550100"}"#, false),
            (r#"{"email": 12}"#, false),
            (r#"{"email": "\u200b"}"#, false),
            ("{not json", false),
        ] {
            let (parts, body_in) = split(body);
            let (found, request) = signup(parts, body_in).await.unwrap();
            assert_eq!(found, anonymous, "{body}");
            let kept = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
            assert_eq!(kept, body.as_bytes(), "the handler still gets the body");
        }
    }

    #[tokio::test]
    async fn a_code_is_keyed_by_the_normalised_account() {
        let key = |body: &'static str| async move {
            let (parts, body_in) = split(body);
            let (account, request) = verify_code(parts, body_in).await.unwrap();
            let kept = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
            assert_eq!(kept, body.as_bytes());
            account.map(|a| (a.key, a.domain))
        };
        let victim = Some((
            AccountKey::new("email:victim@example.com"),
            Some("example.com".to_owned()),
        ));
        for body in [
            r#"{"type": "email", "email": "victim@example.com", "token": "123456"}"#,
            r#"{"type": "email", "email": "  Victim@Example.COM ", "token": "000000"}"#,
        ] {
            assert_eq!(key(body).await, victim, "{body}");
        }
        let phone = Some((AccountKey::new("phone:15555550100"), None));
        assert_eq!(
            key(r#"{"type": "sms", "phone": "+1 (555) 555-0100", "token": "1"}"#).await,
            phone
        );
        for body in [
            r#"{"type": "email", "token_hash": "abc"}"#,
            r#"{"type": "email", "email": "victim@example.com"}"#,
            r#"{"type": "email", "email": "victim@example.com", "token": " "}"#,
            r#"{"type": "email", "email": "not-an-email", "token": "123456"}"#,
            r#"{"type": "sms", "phone": "+", "token": "123456"}"#,
            r#"{"email": 1, "token": "123456"}"#,
            "not json",
        ] {
            assert_eq!(key(body).await, None, "{body}");
        }
    }
}
