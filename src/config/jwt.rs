//! Access tokens: GoTrue's `GOTRUE_JWT_*` settings.

use jsonwebtoken::Algorithm;
use secrecy::SecretString;

use super::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `GOTRUE_JWT_SECRET` as given; `startup::jwt_secret` decides whether it may be used (and
    /// makes one in the zero-setup mode).
    pub secret: Option<SecretString>,
    /// Access-token lifetime in seconds.
    pub exp: i64,
    pub aud: String,
    pub default_group_name: String,
    pub admin_roles: Vec<String>,
    pub issuer: Option<String>,
    /// `GOTRUE_JWT_KEYS`: a JSON array of private JWKs, one of them the signing key. A secret;
    /// parsed and checked by `auth::jwt::JwtKeys` at start-up (an error names the variable).
    pub keys: Option<SecretString>,
    /// `GOTRUE_JWT_KEY_ID`: the `kid` of tokens signed with the secret.
    pub key_id: Option<String>,
    /// `GOTRUE_JWT_VALID_METHODS`: the algorithms incoming tokens may be signed with; `None`
    /// means those of the keys (GoTrue's default).
    pub valid_methods: Option<Vec<Algorithm>>,
}

/// `secret` is read by the caller (`GOTRUE_JWT_SECRET`, `JWT_SECRET`).
pub(super) fn from_env(env: &Env, secret: Option<SecretString>) -> Result<JwtConfig, ConfigError> {
    Ok(JwtConfig {
        secret,
        exp: env.parse_or(&["GOTRUE_JWT_EXP", "JWT_EXP"], 3600i64)?,
        aud: env.string_or(&["GOTRUE_JWT_AUD", "JWT_AUD"], "authenticated"),
        default_group_name: env.string_or(
            &["GOTRUE_JWT_DEFAULT_GROUP_NAME", "JWT_DEFAULT_GROUP_NAME"],
            "authenticated",
        ),
        admin_roles: {
            let roles = env.list(&["GOTRUE_JWT_ADMIN_ROLES", "JWT_ADMIN_ROLES"]);
            if roles.is_empty() {
                vec!["service_role".into(), "supabase_admin".into()]
            } else {
                roles
            }
        },
        issuer: env.get(&["GOTRUE_JWT_ISSUER", "JWT_ISSUER"]).map(|(_, v)| v),
        keys: env
            .get(&["GOTRUE_JWT_KEYS", "JWT_KEYS"])
            .map(|(_, v)| SecretString::from(v)),
        key_id: env.get(&["GOTRUE_JWT_KEY_ID", "JWT_KEY_ID"]).map(|(_, v)| v),
        valid_methods: valid_methods(env)?,
    })
}

/// `GOTRUE_JWT_VALID_METHODS`: comma-separated JWS algorithm names (`ES256,HS256`).
fn valid_methods(env: &Env) -> Result<Option<Vec<Algorithm>>, ConfigError> {
    let names = env.list(&["GOTRUE_JWT_VALID_METHODS", "JWT_VALID_METHODS"]);
    if names.is_empty() {
        return Ok(None);
    }
    names
        .iter()
        .map(|name| {
            // `none` is no algorithm jsonwebtoken knows, so it is refused here too.
            name.parse::<Algorithm>().map_err(|_| ConfigError {
                var: "GOTRUE_JWT_VALID_METHODS".into(),
                message: format!("{name:?} is not a JWS algorithm (HS256, RS256, ES256, EdDSA, ...)"),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
