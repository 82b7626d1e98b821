//! Auth hooks: GoTrue's `GOTRUE_HOOK_<NAME>_ENABLED`, `_URI` and `_SECRETS`. A hook is a
//! Postgres function (`pg-functions://<db>/<schema>/<function>`) or an HTTP endpoint
//! (`https://`, or `http://` on the local machine only) that Latchkey calls with a signed
//! JSON body. Everything is checked here, at start-up, so that a typo stops the server with
//! the variable's name instead of failing the first sign-in.

use std::fmt;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

/// The hooks Latchkey can call, in GoTrue's variable spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    CustomAccessToken,
    PasswordVerificationAttempt,
    MfaVerificationAttempt,
    BeforeUserCreated,
    SendEmail,
    AfterUserCreated,
    SendSms,
}

impl HookKind {
    /// The `<NAME>` in `GOTRUE_HOOK_<NAME>_*`.
    pub fn variable_name(self) -> &'static str {
        match self {
            HookKind::CustomAccessToken => "CUSTOM_ACCESS_TOKEN",
            HookKind::PasswordVerificationAttempt => "PASSWORD_VERIFICATION_ATTEMPT",
            HookKind::MfaVerificationAttempt => "MFA_VERIFICATION_ATTEMPT",
            HookKind::BeforeUserCreated => "BEFORE_USER_CREATED",
            HookKind::SendEmail => "SEND_EMAIL",
            HookKind::AfterUserCreated => "AFTER_USER_CREATED",
            HookKind::SendSms => "SEND_SMS",
        }
    }

    /// GoTrue's name of the hook in the input's `metadata.name`.
    pub fn wire_name(self) -> &'static str {
        match self {
            HookKind::CustomAccessToken => "customize-access-token",
            HookKind::PasswordVerificationAttempt => "password-verification",
            HookKind::MfaVerificationAttempt => "mfa-verification",
            HookKind::BeforeUserCreated => "before-user-created",
            HookKind::SendEmail => "send-email",
            HookKind::AfterUserCreated => "after-user-created",
            HookKind::SendSms => "send-sms",
        }
    }
}

/// Where an enabled hook is called.
#[derive(Clone)]
pub enum HookTarget {
    /// `pg-functions://<db>/<schema>/<function>`: `function` is the quoted, schema-qualified
    /// name (`"public"."claims_hook"`), safe to put in SQL as it is.
    Postgres { function: String },
    /// `https://...` or `http://localhost...`, signed with every secret (Standard Webhooks'
    /// `whsec_` base64 keys, the `v1,` prefix removed).
    Http { url: Url, secrets: Vec<SecretString> },
}

impl fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookTarget::Postgres { function } => write!(f, "pg-functions {function}"),
            // The URL may carry a token in its query: the host is enough to tell hooks apart.
            HookTarget::Http { url, secrets } => write!(
                f,
                "http {} ({} secrets)",
                url.host_str().unwrap_or_default(),
                secrets.len()
            ),
        }
    }
}

/// One enabled hook.
#[derive(Debug, Clone)]
pub struct HookConfig {
    pub kind: HookKind,
    pub target: HookTarget,
}

/// Every enabled hook.
#[derive(Debug, Clone, Default)]
pub struct HooksConfig {
    pub custom_access_token: Option<HookConfig>,
    pub password_verification_attempt: Option<HookConfig>,
    pub mfa_verification_attempt: Option<HookConfig>,
    pub before_user_created: Option<HookConfig>,
    /// Replaces SMTP for every mail when set (`auth::email_hook`).
    pub send_email: Option<HookConfig>,
    /// Told about each new user once it is committed (`auth::user_hooks`).
    pub after_user_created: Option<HookConfig>,
    /// Sends every SMS code instead of the SMS provider.
    pub send_sms: Option<HookConfig>,
}

pub(super) fn from_env(env: &Env) -> Result<HooksConfig, ConfigError> {
    Ok(HooksConfig {
        custom_access_token: hook(env, HookKind::CustomAccessToken)?,
        password_verification_attempt: hook(env, HookKind::PasswordVerificationAttempt)?,
        mfa_verification_attempt: hook(env, HookKind::MfaVerificationAttempt)?,
        before_user_created: hook(env, HookKind::BeforeUserCreated)?,
        send_email: hook(env, HookKind::SendEmail)?,
        after_user_created: hook(env, HookKind::AfterUserCreated)?,
        send_sms: hook(env, HookKind::SendSms)?,
    })
}

fn hook(env: &Env, kind: HookKind) -> Result<Option<HookConfig>, ConfigError> {
    let prefix = format!("GOTRUE_HOOK_{}", kind.variable_name());
    let (enabled_var, uri_var, secrets_var) = (
        format!("{prefix}_ENABLED"),
        format!("{prefix}_URI"),
        format!("{prefix}_SECRETS"),
    );
    // Read all three so that none is reported as "set but read by nothing".
    let enabled = env.bool_or(&[&enabled_var], false)?;
    let uri = env.get(&[&uri_var]).map(|(_, v)| v);
    let secrets = env.get(&[&secrets_var]).map(|(_, v)| v);
    if !enabled {
        return Ok(None);
    }
    let error = |var: &str, message: String| ConfigError {
        var: var.to_owned(),
        message,
    };
    let uri = uri.ok_or_else(|| error(&uri_var, format!("required when {enabled_var} is true")))?;
    let url = Url::parse(&uri).map_err(|err| error(&uri_var, format!("not a URL: {err}")))?;
    let target = match url.scheme() {
        "pg-functions" => HookTarget::Postgres {
            function: postgres_function(&url).map_err(|message| error(&uri_var, message))?,
        },
        "https" => HookTarget::Http {
            secrets: parse_secrets(secrets.as_deref()).map_err(|message| error(&secrets_var, message))?,
            url,
        },
        "http" if is_local_host(&url) => HookTarget::Http {
            secrets: parse_secrets(secrets.as_deref()).map_err(|message| error(&secrets_var, message))?,
            url,
        },
        "http" => {
            return Err(error(
                &uri_var,
                "http:// is only for localhost, 127.0.0.1, ::1 and host.docker.internal; use https://".into(),
            ));
        }
        other => {
            return Err(error(
                &uri_var,
                format!("unsupported scheme {other:?}: use pg-functions:// or https://"),
            ));
        }
    };
    Ok(Some(HookConfig { kind, target }))
}

/// GoTrue's local hosts for plain-HTTP hooks (`conf.ValidateExtensibilityPoint`).
fn is_local_host(url: &Url) -> bool {
    matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1" | "host.docker.internal")
    )
}

/// `pg-functions://<db>/<schema>/<function>` → `"<schema>"."<function>"`. Both names must be
/// plain Postgres identifiers (GoTrue's rule), so the quoted result is safe in SQL.
fn postgres_function(url: &Url) -> Result<String, String> {
    let parts: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
    let [schema, function] = parts[..] else {
        return Err("expected pg-functions://<database>/<schema>/<function>".into());
    };
    for name in [schema, function] {
        if !is_identifier(name) {
            return Err(format!(
                "{name:?} is not a plain Postgres name (letters, digits, _; at most 63)"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a pg-functions URI has no query or fragment".into());
    }
    Ok(format!("\"{schema}\".\"{function}\""))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// `v1,whsec_<base64>` secrets separated by `|` (GoTrue's separator, for rotation). At least
/// one is needed: an unsigned hook call could be forged by anyone who can reach the endpoint.
/// GoTrue's asymmetric `v1a,` keys are refused: it does not sign with them either.
fn parse_secrets(raw: Option<&str>) -> Result<Vec<SecretString>, String> {
    let mut secrets = Vec::new();
    for part in raw
        .unwrap_or_default()
        .split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some(key) = part.strip_prefix("v1,whsec_") else {
            return Err("each secret must look like v1,whsec_<base64> (several separated by |)".into());
        };
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(bytes) if bytes.len() >= 24 => secrets.push(SecretString::from(key.to_owned())),
            Ok(_) => return Err("a whsec_ secret must hold at least 24 random bytes".into()),
            Err(_) => return Err("the part after whsec_ is not base64".into()),
        }
    }
    if secrets.is_empty() {
        return Err("an HTTP hook needs at least one v1,whsec_<base64> secret".into());
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use crate::config::Config;

    use super::*;

    const SECRET: &str = "v1,whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IG9mIDMyIGJ5dGVz";

    fn config(pairs: &[(&str, &str)]) -> Result<HooksConfig, ConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(vars).map(|c| c.hooks)
    }

    #[test]
    fn off_unless_enabled() {
        let hooks = config(&[(
            "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
            "pg-functions://postgres/public/f",
        )])
        .unwrap();
        assert!(hooks.custom_access_token.is_none());
    }

    #[test]
    fn pg_functions_and_http_targets() {
        let hooks = config(&[
            ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
            (
                "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
                "pg-functions://postgres/public/add_claims",
            ),
        ])
        .unwrap();
        let Some(HookConfig {
            target: HookTarget::Postgres { function },
            ..
        }) = hooks.custom_access_token
        else {
            panic!("expected a Postgres hook");
        };
        assert_eq!(function, "\"public\".\"add_claims\"");

        for uri in [
            "https://hooks.example.com/claims",
            "http://localhost:8080/x",
            "http://127.0.0.1:1/x",
        ] {
            let hooks = config(&[
                ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
                ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI", uri),
                ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS", &format!("{SECRET}|{SECRET}")),
            ])
            .unwrap();
            let Some(HookConfig {
                target: HookTarget::Http { secrets, .. },
                ..
            }) = hooks.custom_access_token
            else {
                panic!("expected an HTTP hook for {uri}");
            };
            assert_eq!(secrets.len(), 2);
            assert!(!secrets[0].expose_secret().starts_with("v1,"));
        }
    }

    /// Every bad value stops start-up naming the variable at fault.
    #[test]
    fn bad_values_name_the_variable() {
        let enabled = ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true");
        let uri = "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI";
        let secrets = "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS";
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "maybe")],
                "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED",
            ),
            (&[enabled], uri),
            (&[enabled, (uri, "not a url")], uri),
            (&[enabled, (uri, "ftp://host/x")], uri),
            // Plain HTTP to another machine would send signed user data in the clear.
            (&[enabled, (uri, "http://hooks.example.com/x"), (secrets, SECRET)], uri),
            (&[enabled, (uri, "http://127.0.0.1.evil.com/x"), (secrets, SECRET)], uri),
            (&[enabled, (uri, "pg-functions://postgres/public")], uri),
            (&[enabled, (uri, "pg-functions://postgres/public/f/g")], uri),
            // SQL injection through the function name.
            (
                &[enabled, (uri, "pg-functions://postgres/public/f();drop table x")],
                uri,
            ),
            (&[enabled, (uri, "pg-functions://postgres/pub\"lic/f")], uri),
            (&[enabled, (uri, "pg-functions://postgres/1public/f")], uri),
            (&[enabled, (uri, "https://hooks.example.com/x")], secrets),
            (
                &[enabled, (uri, "https://hooks.example.com/x"), (secrets, "whsec_abc")],
                secrets,
            ),
            (
                &[enabled, (uri, "https://hooks.example.com/x"), (secrets, "v1,whsec_!!!")],
                secrets,
            ),
            (
                &[
                    enabled,
                    (uri, "https://hooks.example.com/x"),
                    (secrets, "v1,whsec_c2hvcnQ="),
                ],
                secrets,
            ),
            (
                &[enabled, (uri, "https://hooks.example.com/x"), (secrets, "v1a,whpk_abc")],
                secrets,
            ),
            (&[("GOTRUE_HOOK_SEND_SMS_ENABLED", "true")], "GOTRUE_HOOK_SEND_SMS_URI"),
        ];
        for (pairs, var) in cases {
            let err = config(pairs).unwrap_err();
            assert_eq!(err.var, *var, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn the_send_email_and_after_user_created_hooks_are_accepted() {
        let hooks = config(&[
            ("GOTRUE_HOOK_SEND_EMAIL_ENABLED", "true"),
            (
                "GOTRUE_HOOK_SEND_EMAIL_URI",
                "pg-functions://postgres/public/send_email",
            ),
            ("GOTRUE_HOOK_AFTER_USER_CREATED_ENABLED", "true"),
            (
                "GOTRUE_HOOK_AFTER_USER_CREATED_URI",
                "pg-functions://postgres/public/after",
            ),
        ])
        .unwrap();
        assert_eq!(hooks.send_email.map(|hook| hook.kind), Some(HookKind::SendEmail));
        let after = hooks.after_user_created.map(|hook| hook.kind);
        assert_eq!(after, Some(HookKind::AfterUserCreated));
    }

    #[test]
    fn debug_output_shows_no_secret_or_path() {
        let hooks = config(&[
            ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED", "true"),
            (
                "GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI",
                "https://hooks.example.com/x?token=abc",
            ),
            ("GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS", SECRET),
        ])
        .unwrap();
        let shown = format!("{hooks:?}");
        assert!(!shown.contains("dGhpcyBp") && !shown.contains("token=abc"), "{shown}");
    }
}
