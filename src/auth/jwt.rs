//! Access tokens: JWTs with GoTrue's claims, plus a unique `jti`, signed by the signing key of
//! `GOTRUE_JWT_KEYS` (or HS256 with the secret) and always naming it in `kid`. [`TokenIssuer`]
//! is the one place where they are minted and verified; [`keys`] holds the keys.

pub mod jwk;
mod keys;
mod reasons;
mod verified;

pub use keys::{JwtError, JwtKeys, KeyRing, KeySettings};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::config::JwtConfig;
use crate::db::users::UserRow;

/// One entry of the `amr` claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AmrEntry {
    pub method: String,
    pub timestamp: i64,
}

/// What an access token says of its user: the claims taken from the user's row, whether
/// decoded ([`UserRow`]) or read as Postgres sent it (`db::users::current::UserView`).
pub struct TokenUser<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    pub role: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub app_metadata: Cow<'a, Value>,
    pub user_metadata: Cow<'a, Value>,
    pub is_anonymous: bool,
}

impl<'a> From<&'a UserRow> for TokenUser<'a> {
    fn from(user: &'a UserRow) -> Self {
        TokenUser {
            id: user.id,
            aud: &user.aud,
            role: &user.role,
            email: user.email.as_deref(),
            phone: user.phone.as_deref(),
            app_metadata: Cow::Borrowed(&user.raw_app_meta_data),
            user_metadata: Cow::Borrowed(&user.raw_user_meta_data),
            is_anonymous: user.is_anonymous,
        }
    }
}

/// GoTrue's access-token claims (`tokens/service.go:AccessTokenClaims`), in its order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub email: String,
    pub phone: String,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub role: String,
    pub aal: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub amr: Vec<AmrEntry>,
    pub session_id: String,
    pub is_anonymous: bool,
    pub jti: String,
}

/// Claims as they arrive on a request: everything optional, because API keys (`role: anon`,
/// no `sub`) and tokens from other issuers are valid JWTs too. Only the claims the server
/// reads are kept; serde skips the others (metadata, amr) without building them, which matters
/// on every authenticated request. The RLS API, which passes every claim on, uses
/// [`JwtKeys::verify`] with a map of claims.
#[derive(Debug, Clone, Deserialize)]
pub struct IncomingClaims {
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "string_or_first")]
    pub aud: Option<String>,
    pub role: Option<String>,
    pub session_id: Option<String>,
    pub exp: Option<i64>,
}

/// `aud` may be a string or an array of strings (RFC 7519).
fn string_or_first<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(items)) => items.into_iter().find_map(|v| v.as_str().map(str::to_owned)),
        _ => None,
    })
}

/// Mints access tokens with GoTrue's claims and verifies incoming ones: the signing keys and
/// the rules of the claims (`GOTRUE_JWT_EXP`, `GOTRUE_JWT_ISSUER`) in one place.
#[derive(Clone, Debug)]
pub struct TokenIssuer {
    keys: JwtKeys,
    /// Access-token lifetime in seconds.
    lifetime: i64,
    issuer: Option<String>,
}

/// A signed access token and when it expires.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub expires_in: i64,
    pub expires_at: i64,
}

impl TokenIssuer {
    pub fn new(keys: JwtKeys, config: &JwtConfig) -> TokenIssuer {
        TokenIssuer {
            keys,
            lifetime: config.exp,
            issuer: config.issuer.clone(),
        }
    }

    /// The keys, for API keys and for callers that sign claims of their own (tests).
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    pub fn verify(&self, token: &str) -> Result<IncomingClaims, JwtError> {
        self.keys.verify::<IncomingClaims>(token)
    }

    /// The claims of an access token for `user`'s session `session_id` at assurance level
    /// `aal`, for a custom access token hook to change, then [`TokenIssuer::sign`].
    pub fn claims(&self, user: TokenUser<'_>, session_id: Uuid, aal: &str, amr: Vec<AmrEntry>) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: user.aud.to_owned(),
            exp: now + self.lifetime,
            iat: now,
            email: user.email.unwrap_or_default().to_owned(),
            phone: user.phone.unwrap_or_default().to_owned(),
            app_metadata: user.app_metadata.into_owned(),
            user_metadata: user.user_metadata.into_owned(),
            role: user.role.to_owned(),
            aal: aal.to_owned(),
            amr,
            session_id: session_id.to_string(),
            is_anonymous: user.is_anonymous,
            jti: new_jti(),
        }
    }

    /// Signs `claims` (built by [`TokenIssuer::claims`], perhaps changed by a hook); the
    /// response's `expires_at` is the one Latchkey chose, as in GoTrue.
    pub fn sign<T: Serialize>(&self, claims: &T, expires_at: i64) -> Result<Minted, jsonwebtoken::errors::Error> {
        Ok(Minted {
            token: self.keys.sign(claims)?,
            expires_in: self.lifetime,
            expires_at,
        })
    }
}

/// GoTrue's audience check (`UserGet`, `DeleteIdentity`): the token must name an audience,
/// and it must be the request's audience, which is the `X-JWT-Aud` header when one is sent
/// (GoTrue's `requestAud`; without the header the request takes the token's own audience).
pub fn token_audience_matches(header: Option<&str>, token_aud: Option<&str>) -> bool {
    match token_aud.filter(|aud| !aud.is_empty()) {
        None => false,
        Some(token_aud) => header
            .filter(|h| !h.is_empty())
            .is_none_or(|requested| requested == token_aud),
    }
}

/// An API key as Supabase mints them: `{"role": <role>, "iss": "supabase", "iat", "exp"}`.
pub fn api_key(
    keys: &JwtKeys,
    role: &str,
    now: i64,
    lifetime_secs: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    keys.sign(&serde_json::json!({ "iss": "supabase", "role": role, "iat": now, "exp": now + lifetime_secs }))
}

pub fn new_jti() -> String {
    Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests;
