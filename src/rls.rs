//! Row-level security for Rust backends: run SQL as the caller of a request, under the same
//! policies a Supabase project writes for PostgREST.
//!
//! PostgREST verifies the request's JWT, then opens a transaction in which it switches to the
//! role named by the `role` claim and publishes the claims as transaction-local settings that
//! `auth.uid()`, `auth.role()`, `auth.email()` and `auth.jwt()` read. [`Rls::begin`] does the
//! same, so a policy such as `using (owner = auth.uid())` protects rows whether they are read
//! through PostgREST or through a Rust service:
//!
//! Tokens are verified with the HS256 secret ([`Rls::new`]), a JWK set given in code
//! ([`Rls::from_key_set`]) or a JWKS URL fetched and cached ([`Rls::from_jwks_url`]).
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool, token: &str) -> Result<(), latchkey::rls::RlsError> {
//! use latchkey::rls::Rls;
//! let rls = Rls::from_jwks_url("https://auth.example.com/auth/v1/.well-known/jwks.json", ["anon", "authenticated"])?;
//! let mut tx = rls.begin(&pool, token).await?;
//! let notes: Vec<(String,)> = sqlx::query_as("select body from notes")
//!     .fetch_all(&mut *tx)
//!     .await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

mod claim_settings;
mod remote;

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use secrecy::SecretString;
use serde_json::{Map, Value};
use sqlx::{PgPool, Postgres, Transaction};

use self::remote::RemoteKeys;
use crate::auth::jwt::{JwtError, JwtKeys, KeyRing};

/// The roles a Supabase database grants to the Data API, and the default allow list.
pub const DEFAULT_ROLES: [&str; 3] = ["anon", "authenticated", "service_role"];

/// The role of requests without a token (PostgREST's `db-anon-role`).
pub const ANON_ROLE: &str = "anon";

#[derive(Debug, thiserror::Error)]
pub enum RlsError {
    /// The request carried no bearer token where one was required.
    #[error("no bearer token was given")]
    MissingToken,
    /// Bad signature, wrong algorithm (`none` included), malformed, or no `exp`. The message
    /// comes from the JWT library and never contains the token.
    #[error("invalid JWT: {0}")]
    InvalidToken(String),
    #[error("JWT expired")]
    ExpiredToken,
    /// A correctly signed token asked for a role outside the allow list.
    #[error("role {0:?} is not allowed")]
    ForbiddenRole(String),
    /// The JWK set could not be fetched from its URL (answer 503: the token may be fine).
    #[error("the JWT keys could not be fetched: {0}")]
    KeysUnavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a verified token asks for: the database role to switch to and the claims to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestClaims {
    role: String,
    claims: Map<String, Value>,
    /// Whether [`apply`] also publishes `jwt.<claim>` ([`Rls::publish_claims_as_jwt_settings`]).
    jwt_settings: bool,
}

impl RequestClaims {
    pub fn role(&self) -> &str {
        &self.role
    }

    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The legacy `request.jwt.claim.<name>` settings that PostgREST before v9 set, one per
    /// scalar claim; GoTrue's `auth.uid()` & co. still read them first.
    ///
    /// Only names made of lower-case ASCII letters, digits, `_` and `$` (not starting with a
    /// digit or `$`) are published. Postgres refuses other characters in setting names, and
    /// setting names are case-insensitive: a claim `SUB` would otherwise overwrite
    /// `request.jwt.claim.sub`. Objects, arrays and nulls are only in `request.jwt.claims`,
    /// as with PostgREST. Values containing NUL cannot be stored in a setting and are skipped.
    pub fn legacy_settings(&self) -> Vec<(String, String)> {
        self.claims
            .iter()
            .filter(|(name, _)| is_plain_setting_name(name))
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null | Value::Array(_) | Value::Object(_) => return None,
                };
                (!text.contains('\0')).then(|| (format!("request.jwt.claim.{name}"), text))
            })
            .collect()
    }
}

impl RequestClaims {
    /// The `jwt.<claim>` settings, when the [`Rls`] that verified the token publishes them
    /// (see [`Rls::publish_claims_as_jwt_settings`]); empty otherwise.
    pub fn jwt_settings(&self) -> Vec<(String, String)> {
        if self.jwt_settings {
            claim_settings::jwt_settings(&self.claims)
        } else {
            Vec::new()
        }
    }
}

fn is_plain_setting_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '$'))
        && name.len() <= 63
}

/// Opens transactions that run as the caller of a request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Rls {
    keys: Keys,
    allowed_roles: Vec<String>,
    jwt_settings: bool,
}

/// Where the verifying keys come from.
#[derive(Debug, Clone)]
enum Keys {
    Ring(KeyRing),
    Remote(Arc<RemoteKeys>),
}

impl Rls {
    /// `secret` is the `GOTRUE_JWT_SECRET` the tokens were signed with (PostgREST's
    /// `PGRST_JWT_SECRET`): HS256 tokens, whatever `kid` they name; `allowed_roles` the roles
    /// a token may switch to.
    pub fn new<R: Into<String>>(secret: &SecretString, allowed_roles: impl IntoIterator<Item = R>) -> Rls {
        Rls::with_ring(KeyRing::from_secret(secret), allowed_roles)
    }

    /// Allows `anon`, `authenticated` and `service_role`, like a Supabase project.
    pub fn with_default_roles(secret: &SecretString) -> Rls {
        Rls::new(secret, DEFAULT_ROLES)
    }

    /// Verifies with a server's own keys (every key of its set, and the secret as it does).
    pub fn from_keys<R: Into<String>>(keys: JwtKeys, allowed_roles: impl IntoIterator<Item = R>) -> Rls {
        Rls::with_ring(keys.ring().clone(), allowed_roles)
    }

    /// Verifies with the public keys of `set` (Latchkey's `/.well-known/jwks.json`, read from
    /// a file or a variable): a token must name one of them in `kid` and be signed with its
    /// `alg`. Symmetric keys in the set are ignored.
    pub fn from_key_set<R: Into<String>>(set: &JwkSet, allowed_roles: impl IntoIterator<Item = R>) -> Rls {
        Rls::with_ring(KeyRing::from_jwks(set), allowed_roles)
    }

    /// Verifies with the JWK set at `url`, fetched on first use and kept for ten minutes; a
    /// token naming a key the kept set lacks fetches it again, at most once a minute.
    pub fn from_jwks_url<R: Into<String>>(
        url: impl Into<String>,
        allowed_roles: impl IntoIterator<Item = R>,
    ) -> Result<Rls, RlsError> {
        Ok(Rls {
            keys: Keys::Remote(Arc::new(RemoteKeys::new(url.into())?)),
            allowed_roles: allowed_roles.into_iter().map(Into::into).collect(),
            jwt_settings: false,
        })
    }

    fn with_ring<R: Into<String>>(ring: KeyRing, allowed_roles: impl IntoIterator<Item = R>) -> Rls {
        Rls {
            keys: Keys::Ring(ring),
            allowed_roles: allowed_roles.into_iter().map(Into::into).collect(),
            jwt_settings: false,
        }
    }

    /// With `true`, every transaction also publishes each top-level claim as the setting
    /// `jwt.<claim>`, for policies written as `current_setting('jwt.tenant_id', true)`
    /// (besides `request.jwt.claims`, which `auth.jwt()` reads). Off by default: claim names
    /// become setting names, so only plain lower-case names are published (see
    /// [`RequestClaims::jwt_settings`]).
    pub fn publish_claims_as_jwt_settings(mut self, publish: bool) -> Rls {
        self.jwt_settings = publish;
        self
    }

    pub fn allowed_roles(&self) -> &[String] {
        &self.allowed_roles
    }

    /// Verifies `token` (signature by a known key with its own algorithm, and `exp`, as
    /// Latchkey verifies its own tokens) and checks its role against the allow list. No
    /// database work; a request only when the keys come from a URL not fetched recently.
    pub async fn verify(&self, token: &str) -> Result<RequestClaims, RlsError> {
        if token.trim().is_empty() {
            return Err(RlsError::MissingToken);
        }
        let verified = match &self.keys {
            Keys::Ring(ring) => ring.verify::<Map<String, Value>>(token),
            Keys::Remote(remote) => {
                let header =
                    jsonwebtoken::decode_header(token).map_err(|err| RlsError::InvalidToken(err.to_string()))?;
                remote.ring(header.kid.as_deref()).await?.verify(token)
            }
        };
        let claims = verified.map_err(|err| match err {
            JwtError::Expired => RlsError::ExpiredToken,
            JwtError::Invalid(reason) => RlsError::InvalidToken(reason),
        })?;
        let role = match claims.get("role") {
            // PostgREST runs a signed token without a role claim as the anonymous role.
            None => ANON_ROLE.to_owned(),
            Some(Value::String(role)) => role.clone(),
            Some(_) => {
                return Err(RlsError::InvalidToken("the role claim is not a string".into()));
            }
        };
        self.check_role(&role)?;
        Ok(RequestClaims {
            role,
            claims,
            jwt_settings: self.jwt_settings,
        })
    }

    /// The context of a request without a token: role `anon`, claims `{"role": "anon"}`
    /// (what PostgREST publishes for anonymous requests).
    pub fn anon(&self) -> Result<RequestClaims, RlsError> {
        self.check_role(ANON_ROLE)?;
        let mut claims = Map::new();
        claims.insert("role".into(), Value::String(ANON_ROLE.into()));
        Ok(RequestClaims {
            role: ANON_ROLE.into(),
            claims,
            jwt_settings: self.jwt_settings,
        })
    }

    /// Security: the database login is typically a superuser or a member of powerful roles,
    /// so `SET ROLE` alone would accept `postgres`. A signed token can carry a role nobody
    /// meant to hand out (a custom access-token hook, the admin API setting a user's `role`),
    /// and it must still not escape RLS: only listed roles pass. `none` never passes, even if
    /// listed: for the `role` setting it means `RESET ROLE`, i.e. back to the login itself.
    fn check_role(&self, role: &str) -> Result<(), RlsError> {
        if role != "none" && self.allowed_roles.iter().any(|allowed| allowed == role) {
            Ok(())
        } else {
            Err(RlsError::ForbiddenRole(role.to_owned()))
        }
    }

    /// Begins a transaction running as the token's role with its claims published. Commit it
    /// to keep the changes; dropping it rolls back. Either way the role and settings end with
    /// the transaction, so the pooled connection goes back clean.
    pub async fn begin(&self, pool: &PgPool, token: &str) -> Result<Transaction<'static, Postgres>, RlsError> {
        // Verify before touching the pool: a bad token costs no connection.
        let claims = self.verify(token).await?;
        begin_as(pool, &claims).await
    }

    /// Begins a transaction for a request without a token (role `anon`).
    pub async fn begin_anon(&self, pool: &PgPool) -> Result<Transaction<'static, Postgres>, RlsError> {
        let claims = self.anon()?;
        begin_as(pool, &claims).await
    }

    /// [`Rls::begin`] for a token that may be absent: `None` runs as `anon`.
    pub async fn begin_optional(
        &self,
        pool: &PgPool,
        token: Option<&str>,
    ) -> Result<Transaction<'static, Postgres>, RlsError> {
        match token {
            Some(token) => self.begin(pool, token).await,
            None => self.begin_anon(pool).await,
        }
    }
}

/// Begins a transaction and applies `claims` to it.
pub async fn begin_as(pool: &PgPool, claims: &RequestClaims) -> Result<Transaction<'static, Postgres>, RlsError> {
    let mut tx = pool.begin().await?;
    apply(&mut tx, claims).await?;
    Ok(tx)
}

/// Switches an open transaction to `claims`' role and publishes the claims, in one round trip:
/// `request.jwt.claims`, the legacy `request.jwt.claim.<name>` settings and, when the `Rls`
/// was built with [`Rls::publish_claims_as_jwt_settings`], `jwt.<claim>`.
///
/// Every setting is transaction-local (`is_local = true`, as PostgREST does), which is what
/// keeps one request's identity from leaking into the next user of a pooled connection. That
/// is also why this takes a `Transaction`, not a connection: outside a transaction the settings
/// would vanish after this very statement and the queries that follow would run as the
/// database login, outside RLS. `set_config('role', ..., true)` is exactly what
/// `SET LOCAL ROLE` does (same setting, same membership check), but takes the role name as a
/// bound parameter: nothing from the token is ever spliced into SQL text.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, claims: &RequestClaims) -> Result<(), sqlx::Error> {
    let claims_json = Value::Object(claims.claims.clone()).to_string();
    let settings = claims.legacy_settings().into_iter().chain(claims.jwt_settings());
    let (names, values): (Vec<String>, Vec<String>) = settings.unzip();
    sqlx::query(
        "select set_config('role', $1, true), \
                set_config('request.jwt.claims', $2, true), \
                (select count(set_config(name, value, true)) \
                   from unnest($3::text[], $4::text[]) as claim(name, value))",
    )
    .bind(&claims.role)
    .bind(claims_json)
    .bind(names)
    .bind(values)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive,
/// like GoTrue); `None` for other schemes or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
