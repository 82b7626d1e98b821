//! Access tokens: GoTrue's `GOTRUE_JWT_*` settings.

use secrecy::SecretString;

use super::Env;

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
}

/// `secret` is read by the caller (`GOTRUE_JWT_SECRET`, `JWT_SECRET`).
pub(super) fn from_env(env: &Env, secret: Option<SecretString>) -> Result<JwtConfig, super::ConfigError> {
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
    })
}
