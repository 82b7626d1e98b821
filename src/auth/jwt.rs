//! Access tokens: HS256 JWTs with GoTrue's claims, plus a unique `jti`. [`TokenIssuer`] is
//! the one place where they are minted and verified.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
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
/// [`JwtKeys::verify_raw`].
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

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("token is expired")]
    Expired,
    #[error("unable to parse or verify signature, {0}")]
    Invalid(String),
}

impl JwtKeys {
    pub fn new(secret: &SecretString) -> JwtKeys {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256 is accepted: `alg: none` and algorithm confusion are refused by the
        // library because the algorithm list is fixed. Like GoTrue, `aud` and `iss` are not
        // checked here and there is no leeway on `exp`.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
        JwtKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Result<IncomingClaims, JwtError> {
        jsonwebtoken::decode::<IncomingClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                _ => JwtError::Invalid(err.to_string()),
            })
    }

    /// Verifies and returns the raw claim set (for the RLS API, which passes every claim on).
    pub fn verify_raw(&self, token: &str) -> Result<serde_json::Map<String, Value>, JwtError> {
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                _ => JwtError::Invalid(err.to_string()),
            })
    }
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
    pub fn new(secret: &SecretString, config: &JwtConfig) -> TokenIssuer {
        TokenIssuer {
            keys: JwtKeys::new(secret),
            lifetime: config.exp,
            issuer: config.issuer.clone(),
        }
    }

    /// The keys, for API keys and for callers that sign claims of their own (tests).
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    pub fn verify(&self, token: &str) -> Result<IncomingClaims, JwtError> {
        self.keys.verify(token)
    }

    /// The access token of `user`'s session `session_id` at assurance level `aal`.
    pub fn mint(
        &self,
        user: &UserRow,
        session_id: Uuid,
        aal: &str,
        amr: Vec<AmrEntry>,
    ) -> Result<Minted, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: user.aud.clone(),
            exp: now + self.lifetime,
            iat: now,
            email: user.email.clone().unwrap_or_default(),
            phone: user.phone.clone().unwrap_or_default(),
            app_metadata: user.raw_app_meta_data.clone(),
            user_metadata: user.raw_user_meta_data.clone(),
            role: user.role.clone(),
            aal: aal.to_owned(),
            amr,
            session_id: session_id.to_string(),
            is_anonymous: user.is_anonymous,
            jti: new_jti(),
        };
        Ok(Minted {
            token: self.keys.sign(&claims)?,
            expires_in: self.lifetime,
            expires_at: now + self.lifetime,
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
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> JwtKeys {
        JwtKeys::new(&SecretString::from("test-secret-that-is-long-enough-32chars"))
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn round_trip_keeps_claims() {
        let keys = keys();
        let token = keys
            .sign(
                &serde_json::json!({"sub": "abc", "aud": "authenticated", "role": "authenticated", "exp": now() + 60}),
            )
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("abc"));
        assert_eq!(claims.aud.as_deref(), Some("authenticated"));
    }

    #[test]
    fn the_token_audience_must_be_present_and_match_the_requested_one() {
        assert!(token_audience_matches(None, Some("authenticated")));
        assert!(token_audience_matches(Some(""), Some("authenticated")));
        assert!(token_audience_matches(Some("authenticated"), Some("authenticated")));
        assert!(!token_audience_matches(Some("other"), Some("authenticated")));
        // GoTrue falls back to the configured audience when the token has none, which can
        // never equal a missing or empty claim.
        assert!(!token_audience_matches(None, None));
        assert!(!token_audience_matches(None, Some("")));
        assert!(!token_audience_matches(Some("authenticated"), None));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = keys();
        let token = keys.sign(&serde_json::json!({"sub": "abc", "exp": now() - 1})).unwrap();
        assert!(matches!(keys.verify(&token), Err(JwtError::Expired)));
    }

    #[test]
    fn other_secrets_and_alg_none_are_refused() {
        let other = JwtKeys::new(&SecretString::from("another-secret-another-secret-xx"));
        let token = other
            .sign(&serde_json::json!({"sub": "abc", "exp": now() + 60}))
            .unwrap();
        assert!(matches!(keys().verify(&token), Err(JwtError::Invalid(_))));

        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"abc","role":"service_role","exp":{}}}"#, now() + 60));
        assert!(keys().verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn tokens_without_exp_are_refused() {
        let token = keys().sign(&serde_json::json!({"sub": "abc"})).unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn api_keys_carry_the_role_and_no_subject() {
        let keys = keys();
        let key = api_key(&keys, "service_role", now(), 3600).unwrap();
        let claims = keys.verify(&key).unwrap();
        assert_eq!(claims.role.as_deref(), Some("service_role"));
        assert!(claims.sub.is_none());
    }
}
